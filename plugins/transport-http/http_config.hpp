// Configuration of the Streamable HTTP transport: the [http] table, parsed and validated.
// Every key has a safe default; an unknown key or a bad value is an error naming the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::http {

struct HttpConfig {
  std::string listen_host = "127.0.0.1";  // a literal address or a name resolved at start
  uint16_t listen_port = 8080;            // 0 = any free port (see port_file)
  std::string path = "/mcp";              // the one MCP endpoint
  // Host header values accepted (host part, any port). "*" accepts every host.
  std::vector<std::string> allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
  // Origin header values accepted: a host name (any scheme and port) or a full origin
  // "scheme://host[:port]". "*" accepts every origin. Requests without Origin are accepted.
  std::vector<std::string> allowed_origins = {"localhost", "127.0.0.1", "[::1]"};
  std::string auth_token;                 // empty = no authentication (resolved from _env too)
  std::size_t max_body_bytes = 4u << 20;  // larger POST bodies get 413
  std::size_t max_header_bytes = 16u << 10;  // larger request headers get 431
  std::size_t max_connections = 512;         // further connections are closed at once
  // Per remote address, so that one client (slow or silent connections) cannot take every
  // connection from the others.
  std::size_t max_connections_per_client = 256;
  std::size_t max_sessions = 256;            // further initialize requests get 503
  std::size_t max_sessions_per_client = 64;  // per remote address
  uint64_t idle_timeout_ms = 60000;  // a connection may wait this long for (the rest of) a request
  uint64_t session_timeout_ms = 3600000;  // a session with no request nor stream ends; 0 = never
  std::size_t history_events = 256;     // SSE events kept per session for Last-Event-ID replay
  uint64_t retry_ms = 1000;             // the SSE retry: hint sent with each priming event
  uint64_t keepalive_ms = 15000;        // an SSE comment is sent after this much silence
  std::string port_file;                // when set, the bound port is written there at start
  // TLS: PEM files of the certificate (chain) and its private key; both or neither. When set,
  // the endpoint speaks HTTPS only (TLS 1.2 or later); the files are loaded at start.
  std::string tls_cert;
  std::string tls_key;
};

// Parses the plugin's table (JSON text). Throws pmcp::sdk::Error (PMCP_ERR_INVALID_ARGUMENT)
// whose message names the offending key, e.g. "http.max_body_bytes must be ...".
// auth_token_env is resolved here: the variable must exist and be non-empty.
HttpConfig parse_http_config(std::string_view json);

// Splits "host:port" or "[v6]:port" into host (without brackets) and port. Returns false when
// the text is not of that form or the port is not 0..65535.
bool split_listen_address(std::string_view text, std::string& host, uint16_t& port);

}  // namespace pmcp::http
