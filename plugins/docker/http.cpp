#include "http.hpp"

#include <cctype>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace pmcp::docker {

namespace http = boost::beast::http;
using asio::use_awaitable;

namespace {

constexpr std::size_t kBodyLimit = 256u << 20;

// Closes a socket when a deadline passes, so that a pending operation fails; tells afterwards
// whether that is why it failed. Safe against a timer handler that runs after destruction.
class Watchdog {
 public:
  Watchdog(Socket& socket, Client::Duration timeout)
      : timer_(socket.get_executor()), state_(std::make_shared<State>()) {
    state_->socket = &socket;
    timer_.expires_after(timeout);
    timer_.async_wait([state = state_](boost::system::error_code ec) {
      if (ec || !state->alive) return;
      state->fired = true;
      boost::system::error_code ignored;
      state->socket->close(ignored);
    });
  }
  ~Watchdog() {
    state_->alive = false;
    timer_.cancel();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  bool fired() const { return state_->fired; }

 private:
  struct State {
    Socket* socket = nullptr;
    bool alive = true;
    bool fired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

http::request<http::string_body> make_request(http::verb verb, const std::string& target,
                                              std::string body) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "process-mcp");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

}  // namespace

Endpoint parse_endpoint(std::string_view url) {
  Endpoint ep;
  ep.url = std::string(url);
  if (url.starts_with("unix://")) {
    ep.path = std::string(url.substr(7));
  } else if (url.starts_with("/")) {
    ep.path = std::string(url);
  } else if (url.starts_with("tcp://")) {
    ep.is_unix = false;
    std::string_view rest = url.substr(6);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
      throw std::invalid_argument("'" + ep.url + "' has no port (expected tcp://host:port)");
    ep.host = std::string(rest.substr(0, colon));
    if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
      ep.host = ep.host.substr(1, ep.host.size() - 2);
    ep.port = std::string(rest.substr(colon + 1));
  } else {
    throw std::invalid_argument("'" + ep.url +
                                "' is not a Docker engine address (expected unix:///path/to/"
                                "docker.sock or tcp://host:port; TLS is not supported)");
  }
  if (ep.is_unix && ep.path.empty())
    throw std::invalid_argument("'" + ep.url + "' names no socket path");
  return ep;
}

std::string engine_message(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.as_object().if_contains("message"); m && m->is_string())
      return std::string(m->as_string());
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "no reason given" : text;
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Client::full_target(const std::string& target, bool versioned) const {
  if (!versioned || api_version_.empty()) return target;
  return "/v" + api_version_ + target;
}

asio::awaitable<Socket> Client::connect(Duration timeout) {
  Socket socket(io_);
  Watchdog dog(socket, timeout);
  try {
    if (endpoint_.is_unix) {
      asio::local::stream_protocol::endpoint ep(endpoint_.path);
      co_await socket.async_connect(asio::generic::stream_protocol::endpoint(ep), use_awaitable);
    } else {
      asio::ip::tcp::resolver resolver(io_);
      auto results = co_await resolver.async_resolve(endpoint_.host, endpoint_.port, use_awaitable);
      boost::system::error_code last = asio::error::host_not_found;
      for (const auto& entry : results) {
        boost::system::error_code ignored;
        socket.close(ignored);
        auto [ec] = co_await socket.async_connect(
            asio::generic::stream_protocol::endpoint(entry.endpoint()),
            asio::as_tuple(use_awaitable));
        if (!ec) {
          last = {};
          break;
        }
        last = ec;
        if (dog.fired()) break;
      }
      if (last) throw boost::system::system_error(last);
    }
  } catch (const boost::system::system_error& e) {
    const std::string why = dog.fired() ? "timed out" : e.code().message();
    throw ApiError("cannot connect to the Docker engine at " + endpoint_.url + ": " + why, true);
  }
  co_return socket;
}

asio::awaitable<Response> Client::call(http::verb verb, std::string target, std::string body,
                                       Duration timeout, bool versioned) {
  Socket socket = co_await connect(timeout);
  Watchdog dog(socket, timeout);
  const std::string path = full_target(target, versioned);
  Response out;
  try {
    auto req = make_request(verb, path, std::move(body));
    co_await http::async_write(socket, req, use_awaitable);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    co_await http::async_read(socket, buffer, parser, use_awaitable);
    out.status = parser.get().result_int();
    out.body = std::move(parser.get().body());
  } catch (const boost::system::system_error& e) {
    const std::string why =
        dog.fired() ? "no answer in time" : e.code().message();
    throw ApiError("Docker engine call " + std::string(http::to_string(verb)) + " " + path +
                       " failed: " + why,
                   false);
  }
  co_return out;
}

asio::awaitable<Hijacked> Client::hijack(std::string target, std::string body,
                                         Duration timeout) {
  Socket socket = co_await connect(timeout);
  const std::string path = full_target(target, true);
  std::string leftover;
  unsigned status = 0;
  std::string error_body;
  {
    Watchdog dog(socket, timeout);
    try {
      auto req = make_request(http::verb::post, path, std::move(body));
      req.set(http::field::connection, "Upgrade");
      req.set(http::field::upgrade, "tcp");
      co_await http::async_write(socket, req, use_awaitable);
      boost::beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      co_await http::async_read_header(socket, buffer, parser, use_awaitable);
      status = parser.get().result_int();
      if (status == 101 || status == 200) {
        leftover = boost::beast::buffers_to_string(buffer.data());
      } else {
        co_await http::async_read(socket, buffer, parser, use_awaitable);
        error_body = std::move(parser.get().body());
      }
    } catch (const boost::system::system_error& e) {
      const std::string why = dog.fired() ? "no answer in time" : e.code().message();
      throw ApiError("Docker engine call POST " + path + " failed: " + why, false);
    }
  }
  if (status != 101 && status != 200)
    throw ApiError(engine_message(error_body), false, status);
  co_return Hijacked{std::move(socket), std::move(leftover)};
}

}  // namespace pmcp::docker
