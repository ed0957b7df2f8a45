// process-mcp as a library: create the server from a config, then serve MCP over its
// transports, talk MCP in-process, or drive processes directly through ProcessExecutor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp {

// Constants of the original server, kept so its users can switch.
inline constexpr uint32_t DEFAULT_TIMEOUT_MS = 10000;
inline constexpr uint32_t MAX_TIMEOUT_MS = 60000;
inline constexpr uint32_t OUTPUT_TRUNCATE = 8196;
inline constexpr uint16_t TERMINAL_COLS = 120;
inline constexpr uint16_t TERMINAL_ROWS = 30;

// The result of a library call: a value, or an error message a person can act on.
template <class T>
struct LibResult {
  std::optional<T> value;
  std::string error;
  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }
};
struct Unit {};

struct SpawnOptions {
  std::string command;                      // run as /bin/sh -c command
  std::string cwd;                          // "" = the configured workdir
  std::map<std::string, std::string> env;   // added to the minimal child environment
  bool tty = false;                         // a real terminal (120x30 by default)
  bool background = false;                  // return at once
  std::optional<uint32_t> timeout_ms;       // default 10000, clamped to the maximum
};

struct ProcessInfo {
  std::string pid;        // "host-1"
  std::string command;
  std::string status;     // "running" or "terminated"
  std::optional<int> exit_code;
  std::string signal;     // "SIGTERM" when a signal ended it, else ""
  std::string cwd;
  bool tty = false;
  std::string created_at; // ISO 8601
};

struct SpawnResult {
  std::string pid;
  std::string status;
  std::optional<int> exit_code;
  std::string signal;
  std::string stdout_text;  // cut to OUTPUT_TRUNCATE characters, keeping the end
  std::string stderr_text;
  std::string notice;       // e.g. the timeout was clamped, or it went to the background
};

struct Output {
  std::string stdout_text;  // for a TTY process: the rendered terminal
  std::string stderr_text;
};

namespace server {
class Server;
}

// Direct access to processes, without MCP. Thread-safe: every call runs on the server's core
// thread and waits for the answer. Do not call it from inside a callback of this library.
class ProcessExecutor {
 public:
  LibResult<SpawnResult> spawn(const SpawnOptions& options);
  LibResult<Unit> stdin(std::string_view pid, std::string_view input);  // escapes decoded
  LibResult<ProcessInfo> get_process(std::string_view pid);
  std::vector<ProcessInfo> list_processes();
  LibResult<Output> get_output(std::string_view pid, std::size_t lines = 100);
  LibResult<Unit> kill(std::string_view pid, std::string_view signal = "SIGTERM");
  // Ends every process (SIGTERM, then SIGKILL after the grace time) and stops the server.
  void cleanup();

 private:
  friend class ProcessMcp;
  explicit ProcessExecutor(server::Server* server) : server_(server) {}
  LibResult<std::string> call_tool(std::string_view name, const std::string& arguments_json);
  server::Server* server_;
};

// An MCP session inside this process: hand it JSON-RPC texts, receive texts in on_message.
class LocalSession {
 public:
  ~LocalSession();
  void send(std::string json_rpc_text);

 private:
  friend class ProcessMcp;
  LocalSession(server::Server* server, uint64_t id) : server_(server), id_(id) {}
  server::Server* server_;
  uint64_t id_;
};

struct CreateOptions {
  std::string config_path;  // a TOML file; "" = the default file (or built-in defaults)
  std::string config_toml;  // TOML text used instead of a file when not empty
  // Extra variables applied as environment overrides (PROCESS_MODE, SANDBOX_*, DOCKER_*),
  // on top of the process environment.
  std::map<std::string, std::string> env;
  bool start_transports = false;  // true: also serve the configured transports (stdio, http)
};

// The library's handle, like createProcessMCP() of the original: server + executor + cleanup.
class ProcessMcp {
 public:
  ~ProcessMcp();
  ProcessMcp(const ProcessMcp&) = delete;
  ProcessMcp& operator=(const ProcessMcp&) = delete;

  ProcessExecutor& executor() { return executor_; }
  // Opens an in-process MCP session; on_message receives every text the server sends to it
  // (on the core thread).
  std::unique_ptr<LocalSession> connect(std::function<void(std::string)> on_message);
  // Stops the processes and the server; called by the destructor too.
  void cleanup();

 private:
  friend LibResult<std::unique_ptr<ProcessMcp>> create_process_mcp(const CreateOptions&);
  explicit ProcessMcp(std::unique_ptr<server::Server> server);
  std::unique_ptr<server::Server> server_;
  ProcessExecutor executor_;
};

// Loads the config, the executor plugin and (optionally) the transports, and starts the core
// thread. Errors name the file, key and reason.
LibResult<std::unique_ptr<ProcessMcp>> create_process_mcp(const CreateOptions& options = {});

}  // namespace pmcp
