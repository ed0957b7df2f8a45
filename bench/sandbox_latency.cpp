// Extra latency of the host sandbox: the round trip of a foreground `echo hi` through the library
// API, unsandboxed, sandboxed without network, and sandboxed with network (which also starts the
// bridge to the filtering proxy). Runs are interleaved so that load on the machine hits all
// alike. Prints a table of median and p99, the time the sandbox adds and the ratio, then one
// JSON line.
//
//   pmcp-bench-sandbox-latency [--short] [iterations=200]
//   --short: 20 iterations (a quick check that every mode works)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "pmcp/process_mcp.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double once(pmcp::ProcessMcp& server) {
  const auto t = Clock::now();
  auto r = server.executor().spawn({.command = "echo hi"});
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  if (!r.ok() || r.value->exit_code != 0) {
    std::fprintf(stderr, "echo hi failed: %s\n", r.ok() ? "exit code" : r.error.c_str());
    std::exit(1);
  }
  return ms;
}

double at(std::vector<double> ms, double q) {
  std::sort(ms.begin(), ms.end());
  return ms[static_cast<std::size_t>(q * static_cast<double>(ms.size() - 1))];
}

std::unique_ptr<pmcp::ProcessMcp> make(const std::string& host_table) {
  pmcp::CreateOptions options;
  options.config_toml = std::string("executor = \"host\"\nplugin_dirs = [\"") + PMCP_PLUGIN_DIR +
                        "\"]\n[host]\n" + host_table;
  auto created = pmcp::create_process_mcp(options);
  if (!created.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", created.error.c_str());
    std::exit(1);
  }
  return std::move(*created.value);
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  const bool quick = argc > 1 && std::string(argv[1]) == "--short";
  if (quick) ++arg;
  const int iterations = argc > arg ? std::max(2, std::atoi(argv[arg])) : quick ? 20 : 200;

  struct Mode {
    const char* name;
    std::unique_ptr<pmcp::ProcessMcp> server;
    std::vector<double> ms;
  };
  std::vector<Mode> modes;
  modes.push_back({"plain", make("sandbox = { enabled = false }\n"), {}});
  modes.push_back({"sandbox", make("network = { allowed_domains = [] }\n"), {}});
  modes.push_back({"sandbox+net", make("network = { allowed_domains = [\"*\"] }\n"), {}});
  for (auto& m : modes) once(*m.server);  // warm-up: page cache, first loads
  for (int i = 0; i < iterations; ++i) {
    for (auto& m : modes) m.ms.push_back(once(*m.server));
  }
  const double base50 = at(modes[0].ms, 0.5);
  const double base99 = at(modes[0].ms, 0.99);
  std::printf("echo hi round trip through the host executor, %d runs each\n", iterations);
  std::printf("%-12s %9s %9s %12s %8s\n", "mode", "p50 ms", "p99 ms", "added p50", "ratio");
  for (const auto& m : modes) {
    std::printf("%-12s %9.2f %9.2f %12.2f %7.2fx\n", m.name, at(m.ms, 0.5), at(m.ms, 0.99),
                at(m.ms, 0.5) - base50, at(m.ms, 0.5) / base50);
  }
  std::printf(
      "{\"bench\":\"sandbox_latency\",\"iterations\":%d,\"plain_p50_ms\":%.3f,"
      "\"plain_p99_ms\":%.3f,\"sandbox_p50_ms\":%.3f,\"sandbox_p99_ms\":%.3f,"
      "\"sandbox_net_p50_ms\":%.3f,\"sandbox_net_p99_ms\":%.3f,\"added_p50_ms\":%.3f,"
      "\"added_net_p50_ms\":%.3f,\"ratio_p50\":%.3f,\"ratio_net_p50\":%.3f}\n",
      iterations, base50, base99, at(modes[1].ms, 0.5), at(modes[1].ms, 0.99), at(modes[2].ms, 0.5),
      at(modes[2].ms, 0.99), at(modes[1].ms, 0.5) - base50, at(modes[2].ms, 0.5) - base50,
      at(modes[1].ms, 0.5) / base50, at(modes[2].ms, 0.5) / base50);
  return 0;
}
