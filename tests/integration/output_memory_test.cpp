// Output is bounded: a child that writes 100 MB through the server (pipes or a PTY) must not
// grow the server's memory past the configured buffers plus a small constant.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "pmcp/process_mcp.hpp"

namespace {

// Peak resident set size of this process in KiB (VmHWM), which holds the whole server here.
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      long kib = 0;
      status >> kib;
      return kib;
    }
    std::getline(status, key);
  }
  return -1;
}

std::unique_ptr<pmcp::ProcessMcp> make_server() {
  pmcp::CreateOptions options;
  options.config_toml = R"(
executor = "host"
plugin_dirs = [")" PMCP_PLUGIN_DIR R"("]
[limits]
output_buffer_bytes = 1048576
)";
  auto created = pmcp::create_process_mcp(options);
  EXPECT_TRUE(created.ok()) << created.error;
  return created.ok() ? std::move(*created.value) : nullptr;
}

TEST(OutputMemory, HundredMegabytesThroughPipesStayBounded) {
  auto server = make_server();
  ASSERT_TRUE(server);
  long before = peak_rss_kib();
  auto r = server->executor().spawn(
      {.command = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 100000000", .timeout_ms = 60000});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value->status, "terminated");
  EXPECT_EQ(r.value->exit_code, 0);
  // The end of the output is there, cut with a marker.
  EXPECT_NE(r.value->stdout_text.find("truncated"), std::string::npos);
  EXPECT_NE(r.value->stdout_text.find("0123456789abcdefghijklmnopqrstuvwxyz\n"), std::string::npos);
  long growth_mib = (peak_rss_kib() - before) / 1024;
  std::printf("peak memory growth for 100 MB through pipes: %ld MiB\n", growth_mib);
  EXPECT_LT(growth_mib, 48) << "server memory grew by " << growth_mib << " MiB for 100 MB of output";
}

TEST(OutputMemory, TwentyMegabytesThroughATerminalStayBounded) {
  auto server = make_server();
  ASSERT_TRUE(server);
  long before = peak_rss_kib();
  auto r = server->executor().spawn(
      {.command = "yes 'terminal line of text' | head -c 20000000; echo; echo DONE",
       .tty = true,
       .timeout_ms = 60000});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value->status, "terminated");
  EXPECT_NE(r.value->stdout_text.find("DONE"), std::string::npos);
  long growth_mib = (peak_rss_kib() - before) / 1024;
  EXPECT_LT(growth_mib, 64) << "server memory grew by " << growth_mib << " MiB for 20 MB through a PTY";
}

}  // namespace
