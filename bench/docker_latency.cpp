// Exec round-trip latency of a foreground `echo hi` in docker mode beside host mode (p50, p99),
// and the start-up time of docker mode (engine check, container create and start), measured
// through the library API. Needs the engine and test image of scripts/docker-test-env.sh.
//
//   pmcp-bench-docker-latency [--short] [iterations=100] [image=pmcp-test-busybox:latest]
//   --short: 5 iterations (a quick check that both modes work)
#include <unistd.h>

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

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Runs `echo hi` in the foreground iterations times; returns each round trip in ms.
std::vector<double> round_trips(pmcp::ProcessMcp& server, int iterations) {
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    const auto t = Clock::now();
    auto r = server.executor().spawn({.command = "echo hi"});
    const double d = ms_since(t);
    if (!r.ok() || r.value->exit_code != 0) {
      std::fprintf(stderr, "echo hi failed: %s\n", r.ok() ? "exit code" : r.error.c_str());
      std::exit(1);
    }
    ms.push_back(d);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

void report(const char* mode, const std::vector<double>& ms) {
  auto at = [&](double q) { return ms[static_cast<std::size_t>(q * (ms.size() - 1))]; };
  std::printf("%-6s echo hi round trip: p50 %7.2f ms  p99 %7.2f ms  (n=%zu)\n", mode, at(0.5),
              at(0.99), ms.size());
}

std::unique_ptr<pmcp::ProcessMcp> make(const std::string& toml) {
  pmcp::CreateOptions options;
  options.config_toml = toml;
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
  const int iterations = argc > arg ? std::max(1, std::atoi(argv[arg])) : quick ? 5 : 100;
  const std::string image = argc > arg + 1 ? argv[arg + 1] : "pmcp-test-busybox:latest";
  const std::string dirs = std::string("plugin_dirs = [\"") + PMCP_PLUGIN_DIR + "\"]\n";
  const std::string tag = std::to_string(getpid());

  auto host = make("executor = \"host\"\n" + dirs);
  report("host", round_trips(*host, iterations));
  host.reset();

  const std::string container = "pmcp-bench-" + tag;
  const std::string volume = "pmcp-bench-vol-" + tag;
  const auto t = Clock::now();
  auto docker = make("executor = \"docker\"\n" + dirs + "[docker]\nimage = \"" + image +
                     "\"\ncontainer = \"" + container + "\"\nvolume = \"" + volume + "\"\n");
  std::printf("docker start-up (engine check, container create and start): %.0f ms\n",
              ms_since(t));
  report("docker", round_trips(*docker, iterations));
  const auto s = Clock::now();
  docker.reset();
  std::printf("docker shut-down (container removed): %.0f ms\n", ms_since(s));
  const std::string rm = "DOCKER_HOST= /usr/bin/docker volume rm -f " + volume + " >/dev/null 2>&1";
  return std::system(rm.c_str()) == 0 ? 0 : 1;
}
