// The whole server in docker mode, through the library API (create_process_mcp with
// executor = "docker"): ids, foreground and background, terminal rendering, stdin, kill and
// clean-up behave as in host mode. Needs the engine and test image of scripts/docker-test-env.sh.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "pmcp/process_mcp.hpp"

namespace {

using namespace std::chrono_literals;

std::string test_image() {
  const char* env = std::getenv("PMCP_TEST_DOCKER_IMAGE");
  return env != nullptr && env[0] != '\0' ? env : "pmcp-test-busybox:latest";
}

int shell(const std::string& command) {
  const int st = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class DockerLibraryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string tag = std::to_string(getpid());
    container_ = "pmcp-test-lib-" + tag;
    volume_ = "pmcp-test-lib-vol-" + tag;
    pmcp::CreateOptions options;
    options.config_toml = R"(
executor = "docker"
plugin_dirs = [")" PMCP_PLUGIN_DIR R"("]
[environment]
pass = ["LANG"]
[docker]
host = "unix:///var/run/docker.sock"
image = ")" + test_image() + R"("
container = ")" + container_ + R"("
volume = ")" + volume_ + R"("
)";
    auto created = pmcp::create_process_mcp(options);
    if (!created.ok()) {
      error_ = created.error;
      return;
    }
    server_ = std::move(*created.value).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    shell("DOCKER_HOST= /usr/bin/docker rm -f " + container_);
    shell("DOCKER_HOST= /usr/bin/docker volume rm -f " + volume_);
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "docker mode did not start: " << error_; }

  pmcp::ProcessExecutor& ex() { return server_->executor(); }

  // Waits until the process has terminated and returns its description.
  pmcp::ProcessInfo wait_terminated(const std::string& pid, std::chrono::seconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto info = ex().get_process(pid);
      EXPECT_TRUE(info.ok()) << info.error;
      if (!info.ok() || info.value->status == "terminated" ||
          std::chrono::steady_clock::now() > deadline)
        return info.ok() ? *info.value : pmcp::ProcessInfo{};
      std::this_thread::sleep_for(50ms);
    }
  }

  static pmcp::ProcessMcp* server_;
  static std::string error_;
  static std::string container_;
  static std::string volume_;
};

pmcp::ProcessMcp* DockerLibraryTest::server_ = nullptr;
std::string DockerLibraryTest::error_;
std::string DockerLibraryTest::container_;
std::string DockerLibraryTest::volume_;

TEST_F(DockerLibraryTest, ForegroundEchoAndExitCode) {
  auto r = ex().spawn({.command = "echo hi; echo oops >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value->pid.rfind("docker-", 0), 0u) << r.value->pid;
  EXPECT_EQ(r.value->status, "terminated");
  EXPECT_EQ(r.value->exit_code, 3);
  EXPECT_NE(r.value->stdout_text.find("hi"), std::string::npos);
  EXPECT_EQ(r.value->stdout_text.find("oops"), std::string::npos);
  EXPECT_NE(r.value->stderr_text.find("oops"), std::string::npos);
  auto cwd = ex().spawn({.command = "pwd"});
  ASSERT_TRUE(cwd.ok()) << cwd.error;
  EXPECT_NE(cwd.value->stdout_text.find("/home/agent"), std::string::npos);
  auto env = ex().spawn({.command = "echo \"$ANSWER\"", .env = {{"ANSWER", "42"}}});
  ASSERT_TRUE(env.ok()) << env.error;
  EXPECT_NE(env.value->stdout_text.find("42"), std::string::npos);
}

TEST_F(DockerLibraryTest, TerminalIsRenderedAtItsSize) {
  auto r = ex().spawn({.command = "stty size", .tty = true});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value->exit_code, 0);
  EXPECT_NE(r.value->stdout_text.find("30 120"), std::string::npos) << r.value->stdout_text;
}

TEST_F(DockerLibraryTest, TimeoutMovesToTheBackground) {
  auto r = ex().spawn({.command = "sleep 1; echo late", .timeout_ms = 200});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value->status, "running");
  const auto info = wait_terminated(r.value->pid);
  EXPECT_EQ(info.exit_code, 0);
  auto out = ex().get_output(r.value->pid);
  ASSERT_TRUE(out.ok()) << out.error;
  EXPECT_NE(out.value->stdout_text.find("late"), std::string::npos);
}

TEST_F(DockerLibraryTest, StdinKillAndCtrlC) {
  auto reader = ex().spawn({.command = "read x; echo got $x", .background = true});
  ASSERT_TRUE(reader.ok()) << reader.error;
  ASSERT_TRUE(ex().stdin(reader.value->pid, "abc\\n").ok());
  wait_terminated(reader.value->pid);
  auto out = ex().get_output(reader.value->pid);
  ASSERT_TRUE(out.ok()) << out.error;
  EXPECT_NE(out.value->stdout_text.find("got abc"), std::string::npos);

  auto sleeper = ex().spawn({.command = "sleep 300", .background = true});
  ASSERT_TRUE(sleeper.ok()) << sleeper.error;
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(ex().kill(sleeper.value->pid, "SIGTERM").ok());
  auto info = wait_terminated(sleeper.value->pid);
  EXPECT_EQ(info.status, "terminated");
  EXPECT_EQ(info.signal, "SIGTERM");

  auto tty = ex().spawn({.command = "echo go; sleep 300", .tty = true, .background = true});
  ASSERT_TRUE(tty.ok()) << tty.error;
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(ex().stdin(tty.value->pid, "\\x03").ok());
  info = wait_terminated(tty.value->pid);
  EXPECT_EQ(info.status, "terminated");
  EXPECT_EQ(info.signal, "SIGINT");
}

// The shipped example config starts as it is, with the original server's variables on top.
TEST(DockerExampleConfig, StartsWithTheOriginalsVariables) {
  const std::string tag = std::to_string(getpid());
  const std::string container = "pmcp-test-example-" + tag;
  const std::string volume = "pmcp-test-example-vol-" + tag;
  pmcp::CreateOptions options;
  options.config_path = PMCP_SOURCE_DIR "/config/docker.example.toml";
  options.env = {{"DOCKER_IMAGE", test_image()},
                 {"DOCKER_CONTAINER", container},
                 {"DOCKER_VOLUME", volume},
                 {"DOCKER_USE_EXISTING", "false"}};
  {
    auto created = pmcp::create_process_mcp(options);
    ASSERT_TRUE(created.ok()) << created.error;
    auto r = (*created.value)->executor().spawn({.command = "echo ok; pwd; echo $HOME"});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.value->exit_code, 0);
    EXPECT_NE(r.value->stdout_text.find("ok\n/home/agent\n/root\n"), std::string::npos)
        << r.value->stdout_text;
  }
  EXPECT_NE(shell("DOCKER_HOST= /usr/bin/docker container inspect " + container), 0)
      << "the container was not removed";
  shell("DOCKER_HOST= /usr/bin/docker rm -f " + container);
  EXPECT_EQ(shell("DOCKER_HOST= /usr/bin/docker volume rm " + volume), 0) << "no volume kept";
}

}  // namespace
