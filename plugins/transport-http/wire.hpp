// Small pure functions of the HTTP wire: JSON-RPC body classification, Host/Origin allowlists,
// Accept checks, session ids, SSE event framing. No I/O; unit-testable on their own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::http {

// What the transport needs to know about a POSTed body, no more.
struct BodyKind {
  bool valid = false;          // well-formed JSON: an object or a non-empty array of objects
  bool has_request = false;    // at least one element has "method" and "id"
  bool has_initialize = false;  // some element is an "initialize" request
  bool batch = false;
  std::string error;           // why it is not valid
};
BodyKind classify_body(std::string_view body);

// Lower-cased host part of a Host header value ("Example.com:80" -> "example.com",
// "[::1]:8080" -> "[::1]"). Empty when malformed.
std::string host_of_host_header(std::string_view value);

// True when host (as returned by host_of_host_header) is in allowed or allowed holds "*".
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

// True when origin ("scheme://host[:port]") matches an entry of allowed: "*", an exact origin,
// or a bare host name that matches the origin's host with any scheme and port.
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

// True when the Accept header lists media_type (or type/* or */*), ignoring parameters.
bool accepts(std::string_view accept_header, std::string_view media_type);

// True when the protocol version is one this server speaks.
bool supported_protocol_version(std::string_view version);

// Compares two secrets in time that depends only on their lengths' maximum.
bool constant_time_equal(std::string_view a, std::string_view b);

// A new session id: 128 bits from getrandom(2) as 32 lower-case hex digits. Throws on failure.
std::string random_session_id();

// One SSE event: "id: <id>\n" (when id is not empty), "retry: <n>\n" (when retry_ms > 0),
// then one "data: " line per line of data, then a blank line.
std::string sse_event(std::string_view id, std::string_view data, uint64_t retry_ms = 0);

// Event ids are "<stream>-<sequence>"; parse_event_id returns false when malformed.
std::string event_id(uint64_t stream, uint64_t sequence);
bool parse_event_id(std::string_view text, uint64_t& stream, uint64_t& sequence);

// A JSON-RPC error body with id null, as the transport answers HTTP-level failures.
std::string jsonrpc_error_body(int code, std::string_view message);

}  // namespace pmcp::http
