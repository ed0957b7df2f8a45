// Where the library's log lines go: never to stdout unless the embedding program asked for it
// (a program that serves MCP over its stdio would have its messages corrupted), and into the
// program's own spdlog default logger when it set one.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "pmcp/process_mcp.hpp"

namespace {

// With the sandbox off the host plugin warns at start-up: a log line for sure.
std::string config() {
  return std::string("plugin_dirs = [\"") + PMCP_PLUGIN_DIR +
         "\"]\nexecutor = \"host\"\n[host]\nsandbox = { enabled = false }\n";
}

// Runs fn with fd 1 sent to a temporary file; returns what was written there.
template <class Fn>
std::string stdout_of(Fn fn) {
  char path[] = "/tmp/pmcp-library-stdout-XXXXXX";
  const int file = mkstemp(path);
  EXPECT_GE(file, 0);
  std::fflush(stdout);
  const int saved = dup(1);
  dup2(file, 1);
  fn();
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(file);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  return text.str();
}

class LibraryLogging : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = spdlog::default_logger(); }
  void TearDown() override { spdlog::set_default_logger(previous_); }
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LibraryLogging, SpdlogsOwnDefaultIsReplacedAndNothingGoesToStdout) {
  // spdlog's initial state: an unnamed logger on stdout.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "", std::make_shared<spdlog::sinks::stdout_color_sink_mt>()));
  const std::string out = stdout_of([] {
    auto created = pmcp::create_process_mcp({.config_toml = config()});
    ASSERT_TRUE(created.ok()) << created.error;
    auto r = (*created.value)->executor().spawn({.command = "echo hi"});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.value->exit_code, 0);
    (*created.value)->cleanup();
  });
  EXPECT_EQ(out, "");
  EXPECT_EQ(spdlog::default_logger()->name(), "process-mcp");
}

TEST_F(LibraryLogging, TheProgramsOwnDefaultLoggerIsKeptAndUsed) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto mine = std::make_shared<spdlog::logger>("embedder", sink);
  mine->set_level(spdlog::level::trace);
  spdlog::set_default_logger(mine);
  {
    auto created = pmcp::create_process_mcp({.config_toml = config()});
    ASSERT_TRUE(created.ok()) << created.error;
    (*created.value)->cleanup();
  }
  EXPECT_EQ(spdlog::default_logger(), mine);
  bool warned = false;
  for (const std::string& line : sink->last_formatted()) {
    warned = warned || line.find("host sandbox is off") != std::string::npos;
  }
  EXPECT_TRUE(warned) << "the host plugin's warning should reach the program's logger";
}

}  // namespace
