// Configuration: TOML file -> Config, environment overrides, validation, and back to TOML.
//
// Validation collects every problem in the file (ordered by line) instead of stopping at the
// first, so one start-up attempt shows the user everything to fix.
#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>
#include <utility>

#include "util/text.hpp"

extern char** environ;  // NOLINT: POSIX

namespace pmcp::config {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Small helpers

constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
constexpr std::array<std::string_view, 6> kTopLevelKeys = {
    "executor", "transports", "plugin_dirs", "log_level", "isolation", "on_session_end"};
constexpr std::array<std::string_view, 3> kCoreTables = {"defaults", "limits", "environment"};
constexpr std::array<std::string_view, 7> kDefaultsKeys = {
    "timeout_ms",    "max_timeout_ms", "output_truncate", "terminal_cols",
    "terminal_rows", "workdir",        "stdout_lines"};
constexpr std::array<std::string_view, 5> kLimitsKeys = {
    "output_buffer_bytes", "scrollback_lines", "keep_terminated", "max_processes", "kill_grace_ms"};
constexpr std::array<std::string_view, 2> kEnvironmentKeys = {"pass", "set"};

// Names of plugins, executors and transports: [a-z0-9-]+.
bool is_plugin_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Environment variable names a shell can set: [A-Za-z_][A-Za-z0-9_]*.
bool is_env_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A path a process can be started in: absolute, and without NUL (which no path can hold).
bool is_absolute_path(std::string_view s) {
  return !s.empty() && s.front() == '/' && s.find('\0') == std::string_view::npos;
}

bool is_log_level(std::string_view s) {
  return std::find(kLogLevels.begin(), kLogLevels.end(), s) != kLogLevels.end();
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

template <class Range>
std::string join(const Range& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Levenshtein distance, case-insensitive (keys are short, so the quadratic cost is nothing).
size_t edit_distance(std::string_view a_in, std::string_view b_in) {
  const std::string a = ascii_lower(a_in);
  const std::string b = ascii_lower(b_in);
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest candidate if it is close enough to be a plausible typo, else "".
template <class Range>
std::string_view nearest(std::string_view key, const Range& candidates) {
  std::string_view best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : candidates) {
    const size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  const size_t allowed = std::max<size_t>(2, best.size() / 3);
  return best_distance <= allowed ? best : std::string_view{};
}

// A string for messages: quoted, escaped, shortened.
std::string quote_for_message(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

// What a node is, for "expected X, got Y".
std::string describe(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      return quote_for_message(node.as_string()->get());
    case toml::node_type::integer:
      return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      out << "the float " << node.as_floating_point()->get();
      return out.str();
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "the boolean true" : "the boolean false";
    case toml::node_type::date:
      out << "the date " << node.as_date()->get();
      return out.str();
    case toml::node_type::time:
      out << "the time " << node.as_time()->get();
      return out.str();
    case toml::node_type::date_time:
      out << "the date-time " << node.as_date_time()->get();
      return out.str();
    case toml::node_type::array:
      return node.as_array()->is_array_of_tables() ? "an array of tables" : "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// ---------------------------------------------------------------------------------------------
// TOML -> JSON for plugin tables

json::value to_json(const toml::node& node) {
  std::ostringstream text;
  switch (node.type()) {
    case toml::node_type::table: {
      json::object object;
      for (auto&& [key, value] : *node.as_table()) object[key.str()] = to_json(value);
      return object;
    }
    case toml::node_type::array: {
      json::array array;
      for (auto&& element : *node.as_array()) array.push_back(to_json(element));
      return array;
    }
    case toml::node_type::string:
      return json::string(node.as_string()->get());
    case toml::node_type::integer:
      return node.as_integer()->get();
    case toml::node_type::floating_point:
      return node.as_floating_point()->get();
    case toml::node_type::boolean:
      return node.as_boolean()->get();
    case toml::node_type::date:
      text << node.as_date()->get();
      return json::string(text.str());
    case toml::node_type::time:
      text << node.as_time()->get();
      return json::string(text.str());
    case toml::node_type::date_time:
      text << node.as_date_time()->get();
      return json::string(text.str());
    case toml::node_type::none:
      break;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Validation of a parsed document

class DocumentReader {
 public:
  DocumentReader(std::string_view origin, fs::path base_dir)
      : origin_(origin), base_dir_(std::move(base_dir)) {}

  // Fills `config` from `root`; problems are collected, see errors().
  void read(const toml::table& root, Config& config);

  bool failed() const { return !errors_.empty(); }
  std::string message() const;

 private:
  void fail(const toml::source_region& where, std::string_view key, std::string reason);
  void unknown_key(const toml::key& key, std::string_view table,
                   const std::vector<std::string_view>& valid);

  bool read_string(const toml::key& key, const toml::node& node, std::string_view path,
                   std::string& out);
  template <class T>
  bool read_integer(const toml::key& key, const toml::node& node, std::string_view path,
                    int64_t min, int64_t max, T& out);
  const toml::table* expect_table(const toml::key& key, const toml::node& node,
                                  std::string_view path);
  bool read_string_array(const toml::key& key, const toml::node& node, std::string_view path,
                         std::vector<std::string>& out);

  void read_defaults(const toml::table& table, Defaults& defaults);
  void read_limits(const toml::table& table, Limits& limits);
  void read_environment(const toml::table& table, Environment& environment);

  std::string origin_;
  fs::path base_dir_;
  std::vector<std::pair<uint32_t, std::string>> errors_;  // (line, message)
};

void DocumentReader::fail(const toml::source_region& where, std::string_view key,
                          std::string reason) {
  std::string message = origin_;
  if (where.begin.line > 0) message += ":" + std::to_string(where.begin.line);
  message += ": key '";
  message += key;
  message += "': ";
  message += reason;
  errors_.emplace_back(where.begin.line, std::move(message));
}

std::string DocumentReader::message() const {
  auto sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [line, text] : sorted) {
    if (!out.empty()) out += '\n';
    out += text;
  }
  return out;
}

void DocumentReader::unknown_key(const toml::key& key, std::string_view table,
                                 const std::vector<std::string_view>& valid) {
  std::string path =
      table.empty() ? std::string(key.str()) : std::string(table) + "." + std::string(key.str());
  std::string reason = "unknown key";
  if (auto guess = nearest(key.str(), valid); !guess.empty()) {
    reason += "; did you mean '" + std::string(guess) + "'?";
  }
  reason += " (valid keys in [" + std::string(table) + "]: " + join(valid, ", ") + ")";
  fail(key.source(), path, std::move(reason));
}

bool DocumentReader::read_string(const toml::key& key, const toml::node& node,
                                 std::string_view path, std::string& out) {
  if (!node.is_string()) {
    fail(key.source(), path, "expected a string, got " + describe(node));
    return false;
  }
  out = node.as_string()->get();
  return true;
}

template <class T>
bool DocumentReader::read_integer(const toml::key& key, const toml::node& node,
                                  std::string_view path, int64_t min, int64_t max, T& out) {
  const auto expected =
      "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!node.is_integer()) {
    fail(key.source(), path, expected + ", got " + describe(node));
    return false;
  }
  const int64_t value = node.as_integer()->get();
  if (value < min || value > max) {
    fail(key.source(), path, expected + ", got " + std::to_string(value));
    return false;
  }
  out = static_cast<T>(value);
  return true;
}

const toml::table* DocumentReader::expect_table(const toml::key& key, const toml::node& node,
                                                std::string_view path) {
  if (!node.is_table()) {
    fail(key.source(), path, "expected a table, got " + describe(node));
    return nullptr;
  }
  return node.as_table();
}

bool DocumentReader::read_string_array(const toml::key& key, const toml::node& node,
                                       std::string_view path, std::vector<std::string>& out) {
  if (!node.is_array()) {
    fail(key.source(), path, "expected an array of strings, got " + describe(node));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  size_t index = 0;
  for (auto&& element : *node.as_array()) {
    if (!element.is_string()) {
      fail(element.source(), path,
           "expected an array of strings, got " + describe(element) + " at index " +
               std::to_string(index));
      ok = false;
    } else {
      values.emplace_back(element.as_string()->get());
    }
    ++index;
  }
  if (ok) out = std::move(values);
  return ok;
}

void DocumentReader::read(const toml::table& root, Config& config) {
  config.source = origin_;
  for (auto&& [key, node] : root) {
    const std::string_view name = key.str();
    if (name == "executor") {
      std::string value;
      if (!read_string(key, node, name, value)) continue;
      if (!is_plugin_name(value)) {
        fail(key.source(), name,
             "expected a plugin name of lower-case letters, digits and '-' (e.g. \"host\", "
             "\"docker\"), got " +
                 quote_for_message(value));
        continue;
      }
      config.executor = std::move(value);
    } else if (name == "transports") {
      std::vector<std::string> values;
      if (!read_string_array(key, node, name, values)) continue;
      if (values.empty()) {
        fail(key.source(), name, "expected at least one transport (e.g. [\"stdio\"]), got []");
        continue;
      }
      bool ok = true;
      for (size_t i = 0; i < values.size() && ok; ++i) {
        if (!is_plugin_name(values[i])) {
          fail(key.source(), name,
               "expected plugin names of lower-case letters, digits and '-', got " +
                   quote_for_message(values[i]));
          ok = false;
        } else if (std::find(values.begin(), values.begin() + static_cast<ptrdiff_t>(i),
                             values[i]) != values.begin() + static_cast<ptrdiff_t>(i)) {
          fail(key.source(), name,
               "expected each transport once, got " + quote_for_message(values[i]) + " twice");
          ok = false;
        }
      }
      if (ok) config.transports = std::move(values);
    } else if (name == "plugin_dirs") {
      std::vector<std::string> values;
      if (!read_string_array(key, node, name, values)) continue;
      bool ok = true;
      for (auto& dir : values) {
        if (dir.empty() || dir.find('\0') != std::string::npos) {
          fail(key.source(), name,
               "expected non-empty directory paths, got " + quote_for_message(dir));
          ok = false;
          break;
        }
        const fs::path path(dir);
        if (path.is_relative()) dir = (base_dir_ / path).lexically_normal().string();
      }
      if (ok) config.plugin_dirs = std::move(values);
    } else if (name == "log_level") {
      std::string value;
      if (!read_string(key, node, name, value)) continue;
      if (!is_log_level(value)) {
        fail(key.source(), name,
             "expected one of " + join(kLogLevels, ", ") + ", got " + quote_for_message(value));
        continue;
      }
      config.log_level = std::move(value);
    } else if (name == "isolation" || name == "on_session_end") {
      std::string value;
      if (!read_string(key, node, name, value)) continue;
      const bool isolation = name == "isolation";
      const char* first = isolation ? "shared" : "keep";
      const char* second = isolation ? "session" : "kill";
      if (value != first && value != second) {
        fail(key.source(), name,
             std::string("expected \"") + first + "\" or \"" + second + "\", got " +
                 quote_for_message(value));
        continue;
      }
      (isolation ? config.isolation : config.on_session_end) = std::move(value);
    } else if (name == "defaults") {
      if (const auto* table = expect_table(key, node, name)) read_defaults(*table, config.defaults);
    } else if (name == "limits") {
      if (const auto* table = expect_table(key, node, name)) read_limits(*table, config.limits);
    } else if (name == "environment") {
      if (const auto* table = expect_table(key, node, name)) {
        read_environment(*table, config.environment);
      }
    } else if (node.is_table()) {
      if (!is_plugin_name(name)) {
        std::string reason =
            "a top-level table configures the plugin of that name, and plugin names are "
            "lower-case letters, digits and '-'";
        if (auto guess = nearest(name, kCoreTables); !guess.empty()) {
          reason += "; did you mean [" + std::string(guess) + "]?";
        }
        fail(key.source(), name, std::move(reason));
        continue;
      }
      config.plugin_tables[std::string(name)] = to_json(node).as_object();
      config.plugin_table_lines[std::string(name)] = static_cast<int>(node.source().begin.line);
    } else {
      std::vector<std::string_view> valid(kTopLevelKeys.begin(), kTopLevelKeys.end());
      std::string reason = "unknown top-level key";
      if (auto guess = nearest(name, valid); !guess.empty()) {
        reason += "; did you mean '" + std::string(guess) + "'?";
      }
      reason += " (valid keys: " + join(valid, ", ") +
                "; any other top-level key must be a [table] configuring a plugin)";
      fail(key.source(), name, std::move(reason));
    }
  }
}

void DocumentReader::read_defaults(const toml::table& table, Defaults& defaults) {
  const toml::key* timeout_key = nullptr;
  const toml::key* max_timeout_key = nullptr;
  bool timeouts_ok = true;
  for (auto&& [key, node] : table) {
    const std::string_view name = key.str();
    const std::string path = "defaults." + std::string(name);
    if (name == "timeout_ms") {
      timeout_key = &key;
      timeouts_ok &= read_integer(key, node, path, 1, 3600000, defaults.timeout_ms);
    } else if (name == "max_timeout_ms") {
      max_timeout_key = &key;
      timeouts_ok &= read_integer(key, node, path, 1, 3600000, defaults.max_timeout_ms);
    } else if (name == "output_truncate") {
      read_integer(key, node, path, 64, 100000000, defaults.output_truncate);
    } else if (name == "terminal_cols") {
      read_integer(key, node, path, 2, 1000, defaults.terminal_cols);
    } else if (name == "terminal_rows") {
      read_integer(key, node, path, 2, 500, defaults.terminal_rows);
    } else if (name == "stdout_lines") {
      read_integer(key, node, path, 1, 1000000, defaults.stdout_lines);
    } else if (name == "workdir") {
      std::string value;
      if (!read_string(key, node, path, value)) continue;
      if (!value.empty() && !is_absolute_path(value)) {
        fail(key.source(), path,
             "expected an absolute path (or \"\" for the executor's default), got " +
                 quote_for_message(value));
        continue;
      }
      defaults.workdir = std::move(value);
    } else {
      unknown_key(key, "defaults", {kDefaultsKeys.begin(), kDefaultsKeys.end()});
    }
  }
  if (timeouts_ok && defaults.max_timeout_ms < defaults.timeout_ms &&
      (max_timeout_key != nullptr || timeout_key != nullptr)) {
    const toml::key* at = max_timeout_key != nullptr ? max_timeout_key : timeout_key;
    const std::string reason =
        "expected defaults.max_timeout_ms >= defaults.timeout_ms, got max_timeout_ms " +
        std::to_string(defaults.max_timeout_ms) + " < timeout_ms " +
        std::to_string(defaults.timeout_ms) +
        (max_timeout_key == nullptr ? " (max_timeout_ms is the default; raise it too)" : "");
    fail(at->source(), at == max_timeout_key ? "defaults.max_timeout_ms" : "defaults.timeout_ms",
         reason);
  }
}

void DocumentReader::read_limits(const toml::table& table, Limits& limits) {
  for (auto&& [key, node] : table) {
    const std::string_view name = key.str();
    const std::string path = "limits." + std::string(name);
    if (name == "output_buffer_bytes") {
      read_integer(key, node, path, 4096, int64_t{1} << 32, limits.output_buffer_bytes);
    } else if (name == "scrollback_lines") {
      read_integer(key, node, path, 0, 1000000, limits.scrollback_lines);
    } else if (name == "keep_terminated") {
      read_integer(key, node, path, 0, 100000, limits.keep_terminated);
    } else if (name == "max_processes") {
      read_integer(key, node, path, 1, 100000, limits.max_processes);
    } else if (name == "kill_grace_ms") {
      read_integer(key, node, path, 0, 600000, limits.kill_grace_ms);
    } else {
      unknown_key(key, "limits", {kLimitsKeys.begin(), kLimitsKeys.end()});
    }
  }
}

void DocumentReader::read_environment(const toml::table& table, Environment& environment) {
  for (auto&& [key, node] : table) {
    const std::string_view name = key.str();
    const std::string path = "environment." + std::string(name);
    if (name == "pass") {
      std::vector<std::string> names;
      if (!read_string_array(key, node, path, names)) continue;
      bool ok = true;
      for (size_t i = 0; i < names.size() && ok; ++i) {
        if (!is_env_name(names[i])) {
          fail(key.source(), path,
               "expected variable names ([A-Za-z_][A-Za-z0-9_]*), got " +
                   quote_for_message(names[i]));
          ok = false;
        } else if (std::find(names.begin(), names.begin() + static_cast<ptrdiff_t>(i), names[i]) !=
                   names.begin() + static_cast<ptrdiff_t>(i)) {
          fail(key.source(), path,
               "expected each name once, got " + quote_for_message(names[i]) + " twice");
          ok = false;
        }
      }
      if (ok) environment.pass = std::move(names);
    } else if (name == "set") {
      const auto* set = expect_table(key, node, path);
      if (set == nullptr) continue;
      std::map<std::string, std::string> values;
      bool ok = true;
      for (auto&& [var, value] : *set) {
        const std::string var_path = path + "." + std::string(var.str());
        if (!is_env_name(var.str())) {
          fail(var.source(), var_path,
               "expected a variable name ([A-Za-z_][A-Za-z0-9_]*), got " +
                   quote_for_message(var.str()));
          ok = false;
          continue;
        }
        std::string text;
        if (!read_string(var, value, var_path, text)) {
          ok = false;
          continue;
        }
        if (text.find('\0') != std::string::npos) {
          fail(var.source(), var_path, "expected a string without NUL characters");
          ok = false;
          continue;
        }
        values.emplace(std::string(var.str()), std::move(text));
      }
      if (ok) environment.set = std::move(values);
    } else {
      unknown_key(key, "environment", {kEnvironmentKeys.begin(), kEnvironmentKeys.end()});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Environment overrides of the original server

enum class OverrideKind {
  executor,
  log_level,
  workdir,
  plugin_list,
  plugin_string,
  plugin_bool,
  policy_list,  // the domain policy: host.network.<key>, or docker.<key> in docker mode
};

struct Override {
  std::string_view variable;
  std::string_view target;  // dotted path in the effective config
  OverrideKind kind;
};

constexpr std::array<Override, 12> kOverrides = {{
    {"PROCESS_MODE", "executor", OverrideKind::executor},
    {"PROCESS_MCP_LOG_LEVEL", "log_level", OverrideKind::log_level},
    {"PROCESS_MCP_WORKDIR", "defaults.workdir", OverrideKind::workdir},
    {"SANDBOX_ALLOWED_DOMAINS", "allowed_domains", OverrideKind::policy_list},
    {"SANDBOX_DENIED_DOMAINS", "denied_domains", OverrideKind::policy_list},
    {"SANDBOX_ALLOW_WRITE", "host.filesystem.allow_write", OverrideKind::plugin_list},
    {"SANDBOX_DENY_READ", "host.filesystem.deny_read", OverrideKind::plugin_list},
    {"SANDBOX_DENY_WRITE", "host.filesystem.deny_write", OverrideKind::plugin_list},
    {"DOCKER_IMAGE", "docker.image", OverrideKind::plugin_string},
    {"DOCKER_VOLUME", "docker.volume", OverrideKind::plugin_string},
    {"DOCKER_CONTAINER", "docker.container", OverrideKind::plugin_string},
    {"DOCKER_USE_EXISTING", "docker.use_existing", OverrideKind::plugin_bool},
}};

std::vector<std::string> split_path(std::string_view dotted) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    parts.emplace_back(dotted.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

json::array split_list(std::string_view text) {
  json::array items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const auto item = trim(text.substr(start, comma - start));
    if (!item.empty()) items.emplace_back(json::string(item));
    start = comma + 1;
  }
  return items;
}

// Sets plugin_tables[path[0]][path[1]]...[last] = value, creating tables on the way.
Result<void> set_plugin_value(Config& config, const Override& override_, json::value value) {
  const auto parts = split_path(override_.target);
  const std::string& plugin = parts.front();
  if (config.plugin_tables.find(plugin) == config.plugin_tables.end()) {
    config.plugin_table_lines[plugin] = 0;
  }
  json::object* object = &config.plugin_tables[plugin];
  std::string walked = plugin;
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    walked += "." + parts[i];
    json::value& next = (*object)[parts[i]];
    if (next.is_null()) next = json::object();
    if (!next.is_object()) {
      return make_error(
          ErrorCode::invalid_argument,
          "environment variable " + std::string(override_.variable) + ": cannot set " +
              std::string(override_.target) + " because '" + walked + "' in " +
              (config.source.empty() ? "the config" : config.source) + " is not a table");
    }
    object = &next.as_object();
  }
  (*object)[parts.back()] = std::move(value);
  return {};
}

Result<void> apply_override(Config& config, const Override& override_, const std::string& value) {
  const auto bad = [&](const std::string& reason) {
    return make_error(ErrorCode::invalid_argument,
                      "environment variable " + std::string(override_.variable) + ": " + reason +
                          ", got " + quote_for_message(value));
  };
  switch (override_.kind) {
    case OverrideKind::executor:
      if (!is_plugin_name(value)) {
        return bad(
            "expected an executor plugin name such as host or docker (lower-case "
            "letters, digits and '-')");
      }
      config.executor = value;
      return {};
    case OverrideKind::log_level:
      if (!is_log_level(value)) return bad("expected one of " + join(kLogLevels, ", "));
      config.log_level = value;
      return {};
    case OverrideKind::workdir:
      if (!is_absolute_path(value)) return bad("expected an absolute path");
      config.defaults.workdir = value;
      return {};
    case OverrideKind::plugin_list:
      return set_plugin_value(config, override_, split_list(value));
    case OverrideKind::policy_list: {
      // One policy for every executor: the same variable sets the chosen executor's keys.
      const std::string target = (config.executor == "docker" ? "docker." : "host.network.") +
                                 std::string(override_.target);
      return set_plugin_value(config, Override{override_.variable, target, override_.kind},
                              split_list(value));
    }
    case OverrideKind::plugin_string:
      return set_plugin_value(config, override_, json::string(value));
    case OverrideKind::plugin_bool: {
      const std::string lower = ascii_lower(trim(value));
      bool flag = false;
      if (lower == "true" || lower == "1" || lower == "yes") {
        flag = true;
      } else if (lower == "false" || lower == "0" || lower == "no") {
        flag = false;
      } else {
        return bad("expected true, false, 1, 0, yes or no");
      }
      return set_plugin_value(config, override_, flag);
    }
  }
  return {};
}

// Applies every non-empty override variable in `env`; errors are appended to `errors`.
void apply_environment(Config& config, const std::map<std::string, std::string>& env,
                       std::vector<std::string>& errors) {
  for (const auto& override_ : kOverrides) {
    const auto it = env.find(std::string(override_.variable));
    if (it == env.end() || it->second.empty()) continue;
    // The config is TOML, which holds only UTF-8 text; a value that is not UTF-8 could be
    // neither shown by --check-config nor written in the file.
    if (text::sanitize_utf8(it->second) != it->second) {
      errors.push_back("environment variable " + std::string(override_.variable) +
                       ": not valid UTF-8 (the config holds only UTF-8 text); set it to UTF-8 "
                       "text or unset it");
      continue;
    }
    if (auto applied = apply_override(config, override_, it->second); !applied) {
      errors.push_back(applied.error().message);
      continue;
    }
    config.applied_overrides.emplace_back(override_.variable);
  }
}

Result<Config> parse_with_base(std::string_view text, std::string_view origin,
                               const fs::path& base_dir,
                               const std::map<std::string, std::string>& env) {
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    return make_error(ErrorCode::invalid_argument,
                      std::string(origin) + ":" + std::to_string(where.begin.line) + ":" +
                          std::to_string(where.begin.column) +
                          ": TOML syntax error: " + std::string(e.description()));
  }
#else
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const auto& where = parsed.error().source();
    return make_error(ErrorCode::invalid_argument,
                      std::string(origin) + ":" + std::to_string(where.begin.line) + ":" +
                          std::to_string(where.begin.column) +
                          ": TOML syntax error: " + std::string(parsed.error().description()));
  }
  root = std::move(parsed).table();
#endif

  Config config;
  DocumentReader reader(origin, base_dir);
  reader.read(root, config);
  std::string message = reader.failed() ? reader.message() : std::string();

  std::vector<std::string> env_errors;
  apply_environment(config, env, env_errors);
  for (const auto& error : env_errors) {
    if (!message.empty()) message += '\n';
    message += error;
  }
  if (!message.empty()) return make_error(ErrorCode::invalid_argument, std::move(message));
  return config;
}

fs::path directory_of(std::string_view origin) {
  if (origin.empty()) return {};
  std::error_code ec;
  fs::path absolute = fs::absolute(fs::path(origin), ec);
  if (ec) absolute = fs::path(origin);
  return absolute.lexically_normal().parent_path();
}

// ---------------------------------------------------------------------------------------------
// Config -> TOML text

bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

void write_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void write_key(std::string& out, std::string_view key) {
  if (is_bare_key(key)) {
    out += key;
  } else {
    write_string(out, key);
  }
}

void write_double(std::string& out, double value) {
  if (value != value) {
    out += "nan";
    return;
  }
  if (value == std::numeric_limits<double>::infinity()) {
    out += "inf";
    return;
  }
  if (value == -std::numeric_limits<double>::infinity()) {
    out += "-inf";
    return;
  }
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  std::string text(buf, ec == std::errc() ? end : buf);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  out += text;
}

// TOML has no null and no integers above INT64_MAX; such values are written as comments.
bool representable(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return false;
    case json::kind::uint64:
      return value.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    case json::kind::array:
      return std::all_of(value.get_array().begin(), value.get_array().end(), representable);
    case json::kind::object:
      return std::all_of(value.get_object().begin(), value.get_object().end(),
                         [](const json::key_value_pair& kv) { return representable(kv.value()); });
    default:
      return true;
  }
}

// Writes a representable value in inline form.
void write_inline(std::string& out, const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      break;
    case json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(value.get_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(value.get_uint64());
      break;
    case json::kind::double_:
      write_double(out, value.get_double());
      break;
    case json::kind::string:
      write_string(out, value.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value.get_array()) {
        if (!first) out += ", ";
        first = false;
        write_inline(out, element);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      const auto& object = value.get_object();
      if (object.empty()) {
        out += "{}";
        break;
      }
      out += "{ ";
      bool first = true;
      for (const auto& kv : object) {
        if (!first) out += ", ";
        first = false;
        write_key(out, kv.key());
        out += " = ";
        write_inline(out, kv.value());
      }
      out += " }";
      break;
    }
  }
}

void write_header(std::string& out, const std::vector<std::string>& path) {
  out += "\n[";
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += '.';
    write_key(out, path[i]);
  }
  out += "]\n";
}

// Writes `object` as the table at `path`: its plain values, then its sub-tables, each in key
// order, so that the text does not depend on whether a key came from the file or from an
// environment override (the config fuzz harness's round trip found the difference).
void write_table(std::string& out, std::vector<std::string>& path, const json::object& object) {
  write_header(out, path);
  std::vector<const json::key_value_pair*> sorted;
  sorted.reserve(object.size());
  for (const auto& kv : object) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->key() < b->key(); });
  for (const auto* entry : sorted) {
    const auto& kv = *entry;
    if (kv.value().is_object()) continue;
    if (!representable(kv.value())) {
      out += "# ";
      write_key(out, kv.key());
      out += ": a null or an integer above 2^63-1 has no TOML form; omitted\n";
      continue;
    }
    write_key(out, kv.key());
    out += " = ";
    write_inline(out, kv.value());
    out += '\n';
  }
  for (const auto* entry : sorted) {
    const auto& kv = *entry;
    if (!kv.value().is_object()) continue;
    path.emplace_back(kv.key());
    write_table(out, path, kv.value().get_object());
    path.pop_back();
  }
}

void write_string_array(std::string& out, const std::vector<std::string>& values) {
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    write_string(out, values[i]);
  }
  out += ']';
}

// A line of text safe inside a TOML comment.
std::string comment_safe(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<Config> parse(std::string_view toml_text, std::string_view origin,
                     const std::map<std::string, std::string>& env) {
  return parse_with_base(toml_text, origin, directory_of(origin), env);
}

Result<Config> load(const LoadOptions& options) {
  fs::path path;
  std::string named_by;
  if (options.explicit_path) {
    path = *options.explicit_path;
    named_by = "--config";
  } else if (auto it = options.env.find("PROCESS_MCP_CONFIG");
             it != options.env.end() && !it->second.empty()) {
    path = it->second;
    named_by = "the environment variable PROCESS_MCP_CONFIG";
  } else {
    for (const auto& candidate : options.default_paths) {
      std::error_code ec;
      if (fs::exists(candidate, ec)) {
        path = candidate;
        break;
      }
    }
  }

  if (path.empty()) {
    if (!named_by.empty()) {
      return make_error(ErrorCode::invalid_argument, named_by + " names an empty path");
    }
    Config config;  // built-in defaults, source ""
    std::vector<std::string> errors;
    apply_environment(config, options.env, errors);
    if (!errors.empty()) return make_error(ErrorCode::invalid_argument, join(errors, "\n"));
    return config;
  }

  const std::string name = path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    if (!named_by.empty()) {
      return make_error(ErrorCode::invalid_argument,
                        "config file " + name + " (named by " + named_by + ") does not exist");
    }
    return make_error(ErrorCode::io, "config file " + name + " disappeared while loading");
  }
  if (fs::is_directory(status)) {
    return make_error(ErrorCode::invalid_argument,
                      "config file " + name +
                          (named_by.empty() ? std::string() : " (named by " + named_by + ")") +
                          " is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return make_error(ErrorCode::io,
                      "cannot read config file " + name + ": " + std::strerror(errno));
  }
  return parse_with_base(text.str(), name, directory_of(name), options.env);
}

std::string to_toml(const Config& config) {
  std::string out;
  out += "# Effective process-mcp configuration.\n";
  out += "# Source: " +
         (config.source.empty() ? std::string("built-in defaults (no config file)")
                                : comment_safe(config.source)) +
         "\n";
  if (config.applied_overrides.empty()) {
    out += "# Environment overrides applied: none\n";
  } else {
    out += "# Environment overrides applied:\n";
    for (const auto& variable : config.applied_overrides) {
      std::string_view target;
      for (const auto& override_ : kOverrides) {
        if (override_.variable == variable) target = override_.target;
      }
      out += "#   " + comment_safe(variable);
      if (!target.empty()) out += " -> " + std::string(target);
      out += '\n';
    }
  }
  out += '\n';
  out += "executor = ";
  write_string(out, config.executor);
  out += "\ntransports = ";
  write_string_array(out, config.transports);
  out += "\nplugin_dirs = ";
  write_string_array(out, config.plugin_dirs);
  out += "\nlog_level = ";
  write_string(out, config.log_level);
  out += "\nisolation = ";
  write_string(out, config.isolation);
  out += "\non_session_end = ";
  write_string(out, config.on_session_end);
  out += '\n';

  const auto& d = config.defaults;
  out += "\n[defaults]\n";
  out += "timeout_ms = " + std::to_string(d.timeout_ms) + '\n';
  out += "max_timeout_ms = " + std::to_string(d.max_timeout_ms) + '\n';
  out += "output_truncate = " + std::to_string(d.output_truncate) + '\n';
  out += "terminal_cols = " + std::to_string(d.terminal_cols) + '\n';
  out += "terminal_rows = " + std::to_string(d.terminal_rows) + '\n';
  out += "workdir = ";
  write_string(out, d.workdir);
  out += "\nstdout_lines = " + std::to_string(d.stdout_lines) + '\n';

  const auto& l = config.limits;
  out += "\n[limits]\n";
  out += "output_buffer_bytes = " + std::to_string(l.output_buffer_bytes) + '\n';
  out += "scrollback_lines = " + std::to_string(l.scrollback_lines) + '\n';
  out += "keep_terminated = " + std::to_string(l.keep_terminated) + '\n';
  out += "max_processes = " + std::to_string(l.max_processes) + '\n';
  out += "kill_grace_ms = " + std::to_string(l.kill_grace_ms) + '\n';

  out += "\n[environment]\npass = ";
  write_string_array(out, config.environment.pass);
  out += "\n\n[environment.set]\n";
  for (const auto& [name, value] : config.environment.set) {
    write_key(out, name);
    out += " = ";
    write_string(out, value);
    out += '\n';
  }

  for (const auto& [name, table] : config.plugin_tables) {
    std::vector<std::string> path{name};
    write_table(out, path, table);
  }
  return out;
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

}  // namespace pmcp::config
