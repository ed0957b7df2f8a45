// A small Docker Engine API client on Boost.Beast: one connection per call over a unix socket or
// TCP (optionally TLS), plus the hijacked connection of an attached exec. Coroutines on the
// caller's io_context.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pmcp::docker {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;

// Where the engine listens: "unix:///var/run/docker.sock", "/path/to.sock", "tcp://host:port"
// or "https://host:port" (TCP with TLS).
struct Endpoint {
  bool is_unix = true;
  bool https = false;  // the address itself asks for TLS
  std::string path;    // unix
  std::string host;    // tcp
  std::string port;    // tcp
  std::string url;     // as given, for messages
  // TLS for tcp: the client context (CA, client certificate); null = plain TCP.
  std::shared_ptr<asio::ssl::context> tls;
};

// Throws std::invalid_argument with a reason when url is not one of the forms above.
Endpoint parse_endpoint(std::string_view url);

// The files of the docker CLI's TLS convention, in one directory (DOCKER_CERT_PATH).
struct TlsFiles {
  std::string ca;    // the CA that signed the engine's certificate (verified, always)
  std::string cert;  // the client certificate the engine checks with --tlsverify ("" = none)
  std::string key;   // its private key ("" = none)
};

// A TLS 1.2+ client context that verifies the engine against files.ca and presents the client
// certificate. Throws std::invalid_argument naming the file and what is wrong with it.
std::shared_ptr<asio::ssl::context> make_tls_context(const TlsFiles& files);

// A connection to the engine: a socket, or TLS over a socket. An Asio AsyncStream (so Beast
// reads and writes it) with the few socket operations the executor needs.
class EngineStream {
 public:
  using executor_type = asio::any_io_executor;
  using TlsStream = asio::ssl::stream<Socket>;

  explicit EngineStream(Socket socket) : plain_(std::make_unique<Socket>(std::move(socket))) {}
  // OWNERSHIP: context is borrowed and must outlive the stream.
  EngineStream(Socket socket, asio::ssl::context& context)
      : tls_(std::make_unique<TlsStream>(std::move(socket), context)) {}

  executor_type get_executor() { return socket().get_executor(); }
  // The socket under TLS, or the socket.
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  TlsStream* tls() { return tls_.get(); }
  bool is_open() { return socket().is_open(); }
  void close(boost::system::error_code& ec) { socket().close(ec); }
  // Ends what we send (the exec's stdin) and keeps reading. Under TLS this half-closes the TCP
  // connection as the docker CLI does; the engine reads it as the end of stdin.
  void shutdown_send(boost::system::error_code& ec) {
    socket().shutdown(asio::socket_base::shutdown_send, ec);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            plain_->async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            plain_->async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  std::unique_ptr<Socket> plain_;
  std::unique_ptr<TlsStream> tls_;
};

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
  EngineStream stream;
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

  // Opens a new connection (and does the TLS handshake when the endpoint has TLS). Throws
  // ApiError(unreachable) with the reason.
  asio::awaitable<EngineStream> connect(Duration timeout);

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
  asio::awaitable<Socket> connect_socket(Duration timeout);
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
