// Uses process-mcp as a library, without MCP: run a command, start a background process,
// type into it, read its output, kill it. Mirrors the original's createProcessMCP() example.
#include <chrono>
#include <cstdio>
#include <thread>

#include "pmcp/process_mcp.hpp"

int main() {
  pmcp::CreateOptions options;
  options.config_toml = R"(
executor = "host"
transports = ["stdio"]
[defaults]
workdir = "/tmp"
timeout_ms = 10000
max_timeout_ms = 60000
)";
  auto created = pmcp::create_process_mcp(options);
  if (!created) {
    std::fprintf(stderr, "create_process_mcp failed: %s\n", created.error.c_str());
    return 1;
  }
  auto& mcp = **created.value;
  auto& executor = mcp.executor();

  auto hello = executor.spawn({.command = "echo \"Hello World\""});
  if (!hello) {
    std::fprintf(stderr, "spawn failed: %s\n", hello.error.c_str());
    return 1;
  }
  std::printf("%s %s exit=%d stdout=%s", hello.value->pid.c_str(), hello.value->status.c_str(),
              hello.value->exit_code.value_or(-1), hello.value->stdout_text.c_str());

  // A background process that reads its input.
  auto cat = executor.spawn({.command = "cat", .background = true});
  if (!cat) return 1;
  const std::string& pid = cat.value->pid;
  if (auto sent = executor.stdin(pid, "typed through the library\\n"); !sent) {
    std::fprintf(stderr, "stdin failed: %s\n", sent.error.c_str());
    return 1;
  }
  std::string seen;
  for (int i = 0; i < 100 && seen.find("typed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto out = executor.get_output(pid, 100);
    if (out) seen = out.value->stdout_text;
  }
  std::printf("%s echoed: %s", pid.c_str(), seen.c_str());

  for (const auto& p : executor.list_processes()) {
    std::printf("ps: %s %-10s %s\n", p.pid.c_str(), p.status.c_str(), p.command.c_str());
  }
  if (auto killed = executor.kill(pid, "SIGTERM"); !killed) {
    std::fprintf(stderr, "kill failed: %s\n", killed.error.c_str());
    return 1;
  }
  auto info = executor.get_process(pid);
  std::printf("%s after kill: %s %s\n", pid.c_str(), info.value->status.c_str(),
              info.value->signal.c_str());
  mcp.cleanup();
  bool ok = hello.value->exit_code == 0 && seen.find("typed through the library") != std::string::npos &&
            info.value->status == "terminated";
  std::printf("%s\n", ok ? "library example: OK" : "library example: FAILED");
  return ok ? 0 : 1;
}
