// HTTP/1.x pieces the filtering proxy needs: request and response heads, authorities, absolute
// URLs, request body framing and a chunked-body scanner. Internal to plugins/netpolicy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pmcp::netpolicy::http {

struct HostPort {
  std::string host;  // as written, without the brackets of an IPv6 literal
  uint16_t port = 0;
};

// "host:port", "[v6]:port", or "host" when default_port is not 0. Port 1..65535.
std::optional<HostPort> parse_authority(std::string_view authority, uint16_t default_port);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct RequestHead {
  std::string method;
  std::string target;
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  Headers headers;      // names as sent, values without surrounding blanks
};

// Parses a head that ends with the empty line. On failure returns nullopt and sets error to a
// short reason for a 400 reply.
std::optional<RequestHead> parse_request_head(std::string_view head, std::string& error);

struct AbsoluteUrl {
  HostPort destination;
  std::string authority;  // host[:port] as it goes into the Host header
  std::string path;       // origin-form: "/..." with the query
};

// "http://host[:port][/path][?query]"; anything else (https, origin-form, credentials) fails
// with error set.
std::optional<AbsoluteUrl> parse_http_url(std::string_view target, std::string& error);

// The request as it goes upstream: origin-form, Host set to the checked authority, Proxy-*,
// Connection, Keep-Alive, Upgrade and every header named in Connection removed, and
// `Connection: close` added.
std::string upstream_request_head(const RequestHead& request, const AbsoluteUrl& url);

struct BodyFraming {
  enum class Kind { none, length, chunked } kind = Kind::none;
  uint64_t length = 0;
};

// How long the request body is, from Content-Length or Transfer-Encoding; nullopt (error set)
// for ambiguous or malformed framing, which proxies must refuse rather than guess.
std::optional<BodyFraming> request_body_framing(const Headers& headers, std::string& error);

// Follows a chunked body through the bytes fed to it, to know where it ends.
class ChunkedScanner {
 public:
  // Consumes bytes up to the end of the body; returns how many of data belong to it.
  std::size_t feed(std::string_view data);
  bool done() const { return state_ == State::done; }
  bool failed() const { return state_ == State::failed; }

 private:
  enum class State {
    size,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer,
    final_lf,
    done,
    failed
  };
  State state_ = State::size;
  uint64_t remaining_ = 0;
  int digits_ = 0;
};

// The response head as it goes to the client: Connection, Keep-Alive and Proxy-Connection
// removed and `Connection: close` added. Sets status (0 when the status line is malformed, and
// then returns the head unchanged).
std::string downstream_response_head(std::string_view head, int& status);

// Case-insensitive ASCII equality.
bool iequals(std::string_view a, std::string_view b);

}  // namespace pmcp::netpolicy::http
