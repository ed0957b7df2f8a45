// Parsing of the [http] table; see http_config.hpp for the keys and their defaults.
#include "http_config.hpp"

#include <array>
#include <boost/json.hpp>
#include <cstdlib>
#include <limits>

#include "pmcp/plugin.hpp"

namespace pmcp::http {
namespace {

namespace json = boost::json;
using pmcp::sdk::Error;

// clang-format off
constexpr std::array<std::string_view, 20> kKeys = {
    "listen",          "path",           "allowed_hosts",      "allowed_origins",
    "auth_token",      "auth_token_env", "max_body_bytes",     "max_header_bytes",
    "max_connections", "max_connections_per_client", "max_sessions",
    "max_sessions_per_client", "idle_timeout_ms", "session_timeout_ms", "history_events",
    "retry_ms",        "keepalive_ms",   "port_file",          "tls_cert",
    "tls_key"};
// clang-format on

[[noreturn]] void fail(std::string_view key, std::string_view why) {
  throw Error(PMCP_ERR_INVALID_ARGUMENT, "http." + std::string(key) + " " + std::string(why));
}

std::string get_string(const json::value& v, std::string_view key) {
  if (!v.is_string()) fail(key, "must be a string");
  return std::string(v.get_string());
}

uint64_t get_uint(const json::value& v, std::string_view key, uint64_t min, uint64_t max) {
  uint64_t n = 0;
  if (v.is_int64() && v.get_int64() >= 0) {
    n = static_cast<uint64_t>(v.get_int64());
  } else if (v.is_uint64()) {
    n = v.get_uint64();
  } else {
    fail(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  if (n < min || n > max) {
    fail(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                  ", got " + std::to_string(n));
  }
  return n;
}

std::vector<std::string> get_names(const json::value& v, std::string_view key) {
  if (!v.is_array()) fail(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v.get_array()) {
    if (!item.is_string() || item.get_string().empty()) {
      fail(key, "must be an array of non-empty strings");
    }
    std::string s(item.get_string());
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

bool split_listen_address(std::string_view text, std::string& host, uint16_t& port) {
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos ||
        text.substr(0, colon).find(':') != std::string_view::npos) {
      return false;
    }
    host = std::string(text.substr(0, colon));
  }
  std::string_view digits = text.substr(colon + 1);
  if (host.empty() || digits.empty() || digits.size() > 5) return false;
  uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

HttpConfig parse_http_config(std::string_view text) {
  HttpConfig config;
  boost::system::error_code ec;
  json::value root = json::parse(text.empty() ? std::string_view("{}") : text, ec);
  if (ec || !root.is_object()) throw Error(PMCP_ERR_INVALID_ARGUMENT, "[http] must be a table");
  std::string token_env;
  constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  for (const auto& [k, v] : root.get_object()) {
    std::string_view key = k;
    if (key == "listen") {
      std::string listen = get_string(v, key);
      if (!split_listen_address(listen, config.listen_host, config.listen_port)) {
        fail(key, "must be \"HOST:PORT\" (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"), got \"" +
                      listen + "\"");
      }
    } else if (key == "path") {
      config.path = get_string(v, key);
      if (config.path.empty() || config.path.front() != '/' ||
          config.path.find_first_of("?# ") != std::string::npos) {
        fail(key, "must be an absolute URL path such as \"/mcp\"");
      }
    } else if (key == "allowed_hosts") {
      config.allowed_hosts = get_names(v, key);
    } else if (key == "allowed_origins") {
      config.allowed_origins = get_names(v, key);
    } else if (key == "auth_token") {
      config.auth_token = get_string(v, key);
      if (config.auth_token.empty()) fail(key, "must not be empty (omit it to disable auth)");
    } else if (key == "auth_token_env") {
      token_env = get_string(v, key);
      if (token_env.empty()) fail(key, "must name an environment variable");
    } else if (key == "max_body_bytes") {
      config.max_body_bytes = get_uint(v, key, 1024, 1u << 30);
    } else if (key == "max_header_bytes") {
      config.max_header_bytes = get_uint(v, key, 1024, 1u << 20);
    } else if (key == "max_connections") {
      config.max_connections = get_uint(v, key, 1, 1u << 20);
    } else if (key == "max_connections_per_client") {
      config.max_connections_per_client = get_uint(v, key, 1, 1u << 20);
    } else if (key == "max_sessions") {
      config.max_sessions = get_uint(v, key, 1, 1u << 20);
    } else if (key == "max_sessions_per_client") {
      config.max_sessions_per_client = get_uint(v, key, 1, 1u << 20);
    } else if (key == "idle_timeout_ms") {
      config.idle_timeout_ms = get_uint(v, key, 100, kMaxU32);
    } else if (key == "session_timeout_ms") {
      config.session_timeout_ms = get_uint(v, key, 0, kMaxU32);
    } else if (key == "history_events") {
      config.history_events = get_uint(v, key, 0, 1u << 20);
    } else if (key == "retry_ms") {
      config.retry_ms = get_uint(v, key, 0, kMaxU32);
    } else if (key == "keepalive_ms") {
      config.keepalive_ms = get_uint(v, key, 100, kMaxU32);
    } else if (key == "port_file") {
      config.port_file = get_string(v, key);
    } else if (key == "tls_cert") {
      config.tls_cert = get_string(v, key);
      if (config.tls_cert.empty()) fail(key, "must name a PEM certificate file");
    } else if (key == "tls_key") {
      config.tls_key = get_string(v, key);
      if (config.tls_key.empty()) fail(key, "must name a PEM private key file");
    } else {
      std::string valid;
      for (auto name : kKeys) {
        valid += (valid.empty() ? "" : ", ") + std::string(name);
      }
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "unknown key 'http." + std::string(key) + "' (valid keys: " + valid + ")");
    }
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    fail(config.tls_cert.empty() ? "tls_key" : "tls_cert",
         "is set but http." + std::string(config.tls_cert.empty() ? "tls_cert" : "tls_key") +
             " is not: TLS needs both the certificate and its private key");
  }
  if (!token_env.empty()) {
    if (!config.auth_token.empty()) {
      fail("auth_token_env", "cannot be combined with http.auth_token");
    }
    const char* value = std::getenv(token_env.c_str());
    if (value == nullptr || *value == '\0') {
      fail("auth_token_env", "names the variable " + token_env + ", which is not set or empty");
    }
    config.auth_token = value;
  }
  return config;
}

}  // namespace pmcp::http
