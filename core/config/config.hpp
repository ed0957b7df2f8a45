// The server's configuration: one TOML file (toml++) plus the original server's environment
// variables as overrides, validated at start-up with file, line, key and reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "util/result.hpp"

namespace pmcp::config {

// Defaults of the original TypeScript server, kept so its users can switch.
inline constexpr uint32_t kDefaultTimeoutMs = 10000;
inline constexpr uint32_t kMaxTimeoutMs = 60000;
inline constexpr uint32_t kOutputTruncate = 8196;
inline constexpr uint16_t kTerminalCols = 120;
inline constexpr uint16_t kTerminalRows = 30;

struct Defaults {
  uint32_t timeout_ms = kDefaultTimeoutMs;       // [defaults] timeout_ms
  uint32_t max_timeout_ms = kMaxTimeoutMs;       // [defaults] max_timeout_ms
  uint32_t output_truncate = kOutputTruncate;    // [defaults] output_truncate (characters)
  uint16_t terminal_cols = kTerminalCols;        // [defaults] terminal_cols
  uint16_t terminal_rows = kTerminalRows;        // [defaults] terminal_rows
  std::string workdir;                           // [defaults] workdir; "" = executor's default
  uint32_t stdout_lines = 100;                   // [defaults] stdout_lines (tool `stdout`)

  friend bool operator==(const Defaults&, const Defaults&) = default;
};

struct Limits {
  uint64_t output_buffer_bytes = 1 << 20;  // [limits] output_buffer_bytes, per stream
  uint32_t scrollback_lines = 10000;       // [limits] scrollback_lines, per TTY process
  uint32_t keep_terminated = 100;          // [limits] keep_terminated: ended processes in ps
  uint32_t max_processes = 1000;           // [limits] max_processes running at once
  uint32_t kill_grace_ms = 2000;           // [limits] kill_grace_ms: SIGTERM..SIGKILL on shutdown

  friend bool operator==(const Limits&, const Limits&) = default;
};

struct Environment {
  // [environment] pass: names copied from the server's environment into every child.
  std::vector<std::string> pass = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"};
  // [environment] set: fixed variables for every child (the call's env wins over these).
  std::map<std::string, std::string> set;

  friend bool operator==(const Environment&, const Environment&) = default;
};

struct Config {
  std::string source;                         // file it came from; "" = built-in defaults
  std::string executor = "host";              // executor = "host"   (PROCESS_MODE)
  std::vector<std::string> transports = {"stdio"};  // transports = ["stdio"]
  std::vector<std::string> plugin_dirs;       // plugin_dirs: searched before the built-in dir
  std::string log_level = "info";             // log_level: trace|debug|info|warn|error|off
  // isolation: "shared" (every session sees every process, as the original with one client)
  // or "session" (a session sees and controls only the processes it started).
  std::string isolation = "shared";
  // on_session_end: "keep" (processes outlive the session that started them) or "kill".
  std::string on_session_end = "keep";
  Defaults defaults;
  Limits limits;
  Environment environment;
  // Every other top-level table is a plugin's own config, e.g. [host], [docker], [stdio],
  // [http], passed to that plugin as a JSON object. The line of each table is kept for errors.
  std::map<std::string, boost::json::object> plugin_tables;
  // 0 for a table that only environment overrides created.
  std::map<std::string, int> plugin_table_lines;
  // Environment variables that overrode a value, by name, in the order applied.
  std::vector<std::string> applied_overrides;
};

struct LoadOptions {
  std::optional<std::filesystem::path> explicit_path;  // --config PATH
  // The process environment (PROCESS_MCP_CONFIG, PROCESS_MODE, SANDBOX_*, DOCKER_*, ...).
  std::map<std::string, std::string> env;
  // Where to look when neither --config nor PROCESS_MCP_CONFIG names a file, in order; the
  // first that exists is used; if none exists, the built-in defaults apply.
  std::vector<std::filesystem::path> default_paths;
};

// Loads, applies environment overrides, validates. Errors read like
//   "/etc/process-mcp/process-mcp.toml:12: key 'defaults.timeout_ms': expected an integer
//    from 1 to 3600000, got \"fast\""
// Every problem found is reported, one per line, in file order, then override errors.
Result<Config> load(const LoadOptions& options);

// Parses TOML text (for tests) and applies the overrides in `env`; `origin` names it in error
// messages and becomes Config::source. Relative plugin_dirs resolve against the directory of
// `origin` taken as a path (relative to the working directory if it is relative).
Result<Config> parse(std::string_view toml_text, std::string_view origin,
                     const std::map<std::string, std::string>& env);

// The effective configuration as TOML text, for --check-config.
std::string to_toml(const Config& config);

// Captures environ into a map.
std::map<std::string, std::string> current_environment();

}  // namespace pmcp::config
