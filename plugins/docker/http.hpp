// A small Docker Engine API client on Boost.Beast: one connection per call over a unix socket or
// TCP, plus the hijacked connection of an attached exec. Coroutines on the caller's io_context.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/verb.hpp>

namespace pmcp::docker {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;

// Where the engine listens: "unix:///var/run/docker.sock", "/path/to.sock" or "tcp://host:port".
struct Endpoint {
  bool is_unix = true;
  std::string path;  // unix
  std::string host;  // tcp
  std::string port;  // tcp
  std::string url;   // as given, for messages
};

// Throws std::invalid_argument with a reason when url is not one of the forms above.
Endpoint parse_endpoint(std::string_view url);

// A failed call. unreachable: no connection could be made (the reason says why, e.g. the
// socket is missing or access was denied); otherwise the engine answered badly or too slowly.
struct ApiError : std::runtime_error {
  ApiError(std::string message, bool unreachable_, unsigned status_ = 0)
      : std::runtime_error(std::move(message)), unreachable(unreachable_), status(status_) {}
  bool unreachable;
  unsigned status;  // HTTP status when the engine answered, else 0
};

struct Response {
  unsigned status = 0;
  std::string body;
};

// The connection of an attached exec after the engine upgraded it: the socket and the first
// bytes of the raw stream that arrived with the response header.
struct Hijacked {
  Socket socket;
  std::string leftover;
};

class Client {
 public:
  using Duration = std::chrono::steady_clock::duration;

  Client(asio::io_context& io, Endpoint endpoint) : io_(io), endpoint_(std::move(endpoint)) {}

  const Endpoint& endpoint() const { return endpoint_; }
  // The API version used in every versioned path ("1.41" gives "/v1.41/...").
  void set_api_version(std::string version) { api_version_ = std::move(version); }
  const std::string& api_version() const { return api_version_; }

  // Opens a new connection. Throws ApiError(unreachable) with the reason.
  asio::awaitable<Socket> connect(Duration timeout);

  // One request on its own connection. target is the path after the version prefix (or the
  // whole path when versioned is false). Throws ApiError on transport failure or timeout; an
  // HTTP error status is returned, not thrown.
  asio::awaitable<Response> call(boost::beast::http::verb verb, std::string target,
                                 std::string body = {}, Duration timeout = std::chrono::seconds(30),
                                 bool versioned = true);

  // POST target with body and "Upgrade: tcp"; on 101/200 returns the raw stream. Other statuses
  // throw ApiError with the engine's message.
  asio::awaitable<Hijacked> hijack(std::string target, std::string body, Duration timeout);

 private:
  std::string full_target(const std::string& target, bool versioned) const;

  asio::io_context& io_;
  Endpoint endpoint_;
  std::string api_version_;
};

// The "message" field of an engine error body, or the body itself when it is not JSON.
std::string engine_message(const std::string& body);

// Percent-encodes a query value or a path segment.
std::string url_encode(std::string_view s);

}  // namespace pmcp::docker
