// The filtering proxy: listeners, one Session per client connection (protocol detection, the
// SOCKS5 or HTTP handshake, the checked connect) and the relay of bytes both ways.
#include "pmcp/netpolicy/proxy.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "http_head.hpp"
#include "pmcp/fd_passing.hpp"

namespace pmcp::netpolicy {

namespace {

namespace asio = boost::asio;
namespace fdpass = pmcp::fdpass;
using asio::awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using ClientSocket = asio::generic::stream_protocol::socket;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

// Completion token: results as a tuple with the error code, no exceptions. Note for editors:
// GCC 12 miscompiles a co_await inside an if condition (the resumed coroutine reads its frame
// at the wrong place), so every co_await here is a statement of its own.
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// Host names from clients may hold any byte; logs and replies get a printable copy.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 255)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

std::string endpoint_text(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// A pipe for splice(2), non-blocking at both ends, asked for `want` bytes of capacity (the
// kernel may give less: pipe-max-size, or a user over pipe-user-pages-soft). ok() is false when
// no pipe could be made, e.g. out of descriptors.
struct KernelPipe {
  int read_fd = -1;
  int write_fd = -1;
  std::size_t capacity = 0;

  explicit KernelPipe(std::size_t want) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return;
    read_fd = fds[0];
    write_fd = fds[1];
    fcntl(write_fd, F_SETPIPE_SZ, static_cast<int>(std::min<std::size_t>(want, 1 << 20)));
    const int size = fcntl(write_fd, F_GETPIPE_SZ);
    capacity = size > 0 ? static_cast<std::size_t>(size) : 4096;
  }
  KernelPipe(const KernelPipe&) = delete;
  KernelPipe& operator=(const KernelPipe&) = delete;
  ~KernelPipe() {
    if (read_fd >= 0) close(read_fd);
    if (write_fd >= 0) close(write_fd);
  }
  bool ok() const { return read_fd >= 0; }
};

// splice(2) into a socket whose peer is gone raises SIGPIPE for the calling thread (there is no
// MSG_NOSIGNAL for it). The proxy thread blocks SIGPIPE, so it stays pending there; this takes
// it back. Embedders' own SIGPIPE handling is not touched.
void clear_pending_sigpipe() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  const timespec zero{};
  while (sigtimedwait(&set, nullptr, &zero) > 0) {
  }
}

std::string http_reply(int status, std::string_view reason, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

// How the checked connect ended; each maps to one SOCKS5 reply code and one HTTP status.
enum class Outcome {
  connected,
  refused,
  bad_name,
  unresolved,
  conn_refused,
  net_unreachable,
  unreachable,
  timed_out
};

struct ConnectResult {
  Outcome outcome = Outcome::connected;
  std::string reason;  // for the log and the HTTP body
};

uint8_t socks_code(Outcome o) {
  switch (o) {
    case Outcome::connected:
      return 0x00;
    case Outcome::refused:
      return 0x02;  // connection not allowed by ruleset
    case Outcome::net_unreachable:
      return 0x03;
    case Outcome::conn_refused:
      return 0x05;
    default:
      return 0x04;  // host unreachable
  }
}

}  // namespace

struct Proxy::Impl {
  Policy policy;
  std::string socket_path;
  LogFn log;
  ProxyOptions options;
  std::unique_ptr<asio::io_context> io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_acceptors;
  std::thread thread;
  std::mutex mutex;  // guards tcp_acceptors and stopped against concurrent public calls
  bool stopped = false;
  ino_t socket_inode = 0;
  std::size_t connections = 0;  // io thread only

  void emit(LogLevel level, const std::string& line) const {
    if (!log) return;
    try {
      log(level, line);
    } catch (...) {
    }
  }
};

namespace {

// One client connection, from accept to close. Lives on the proxy thread; owned by the
// coroutines that run it (shared_ptr), so it ends when the last of them does.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Proxy::Impl& impl, ClientSocket client)
      : impl_(impl),
        client_(std::move(client)),
        upstream_(client_.get_executor()),
        resolver_(client_.get_executor()),
        deadline_(client_.get_executor()) {
    ++impl_.connections;
  }
  ~Session() { --impl_.connections; }

  // Serves the connection; exceptions end it and reach the completion handler of co_spawn.
  awaitable<void> run() {
    auto keep_alive = shared_from_this();
    co_await serve();
    if (!target_.empty()) {
      impl_.emit(LogLevel::debug, "closed " + protocol_ + " " + target_ + ": " +
                                      std::to_string(sent_) + " bytes out, " +
                                      std::to_string(received_) + " bytes in");
    }
  }

 private:
  const ProxyOptions& options() const { return impl_.options; }

  // The deadline closes the client (handshake, linger) or, while connecting, only the upstream
  // attempt, so that the client still gets a reply.
  void arm(std::chrono::milliseconds after, bool connecting) {
    const unsigned generation = ++generation_;
    connecting_ = connecting;
    timed_out_ = false;
    deadline_.expires_after(after);
    deadline_.async_wait([weak = weak_from_this(), generation](error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->generation_ != generation) return;
      self->timed_out_ = true;
      error_code ignored;
      self->resolver_.cancel();
      self->upstream_.close(ignored);
      if (!self->connecting_) self->client_.close(ignored);
    });
  }

  void disarm() {
    ++generation_;
    deadline_.cancel();
  }

  void close_all() {
    error_code ignored;
    client_.close(ignored);
    upstream_.close(ignored);
  }

  // Reads until head_ holds at least n bytes; false on close, error or when n is too large.
  awaitable<bool> fill(std::size_t n) {
    std::array<char, 4096> chunk;
    while (head_.size() < n) {
      if (n > options().max_head_bytes) co_return false;
      const std::size_t room = std::min(chunk.size(), options().max_head_bytes - head_.size());
      auto [ec, got] = co_await client_.async_read_some(asio::buffer(chunk.data(), room), kAwait);
      if (ec) co_return false;
      head_.append(chunk.data(), got);
    }
    co_return true;
  }

  awaitable<void> write_client(std::string_view bytes) {
    co_await asio::async_write(client_, asio::buffer(bytes.data(), bytes.size()), kAwait);
  }

  // Sends a last reply, then lets the client read it before the connection goes: half-close
  // and drain until the client closes or the deadline passes (closing with unread input would
  // reset the connection and could destroy the reply in flight).
  awaitable<void> reply_and_close(std::string bytes) {
    arm(options().handshake_timeout, false);
    co_await write_client(bytes);
    error_code ec;
    client_.shutdown(asio::socket_base::shutdown_send, ec);
    std::array<char, 4096> sink;
    while (!ec)
      std::tie(ec, std::ignore) = co_await client_.async_read_some(asio::buffer(sink), kAwait);
    disarm();
  }

  // While send_request still reads the client (it drains what follows the request): reply,
  // half-close, drop the upstream and give the client the linger time to read and close.
  awaitable<void> final_reply(std::string bytes) {
    co_await write_client(bytes);
    error_code ignored;
    client_.shutdown(asio::socket_base::shutdown_send, ignored);
    upstream_.close(ignored);
    arm(options().handshake_timeout, false);
  }

  void refuse_log(const std::string& reason) {
    impl_.emit(LogLevel::warning, "refused " + protocol_ + " " + target_ + ": " + reason);
  }

  awaitable<void> serve() {
    bool filled = false;
    arm(options().handshake_timeout, false);
    bool taken = false;
    taken = co_await take_passed_connection();
    if (!taken) co_return;
    filled = co_await fill(1);
    if (!filled) co_return;
    if (head_[0] == 0x05) {
      protocol_ = "socks5";
      co_await socks5();
    } else {
      co_await http();
    }
  }

  // pmcp-net-bridge hands over each connection it accepted in a sandbox: one NUL byte with
  // the TCP socket attached (SCM_RIGHTS), first on a unix connection of its own (no client
  // speaking HTTP or SOCKS5 begins with a NUL). From then on this session serves that socket,
  // so the bytes cross this relay only. False when the connection is to be dropped.
  awaitable<bool> take_passed_connection() {
    int domain = 0;
    socklen_t size = sizeof domain;
    if (getsockopt(client_.native_handle(), SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0 ||
        domain != AF_UNIX)
      co_return true;
    auto [ec] = co_await client_.async_wait(asio::socket_base::wait_read, kAwait);
    if (ec) co_return false;
    char first = 1;
    if (::recv(client_.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT) != 1 || first != '\0')
      co_return true;  // a client of the unix socket itself (or its end: fill() sees that)
    char byte = 1;
    iovec iov{&byte, 1};
    char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    int passed = -1;
    if (::recvmsg(client_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1)
      fdpass::take_fds(msg, &passed, 1);
    const int family = passed >= 0 ? tcp_stream_family(passed) : 0;
    if (family == 0) {
      if (passed >= 0) ::close(passed);
      impl_.emit(LogLevel::warning,
                 "dropped a unix connection that passed no TCP connection after its NUL byte");
      co_return false;
    }
    client_ = ClientSocket(client_.get_executor(),
                           asio::generic::stream_protocol(family, IPPROTO_TCP), passed);
    co_return true;
  }

  // AF_INET or AF_INET6 for a TCP stream socket that does not listen, else 0.
  static int tcp_stream_family(int fd) {
    int domain = 0, type = 0, protocol = 0, listening = 1;
    socklen_t size = sizeof(int);
    const auto get = [&](int option, int& value) {
      size = sizeof(int);
      return getsockopt(fd, SOL_SOCKET, option, &value, &size) == 0;
    };
    if (!get(SO_DOMAIN, domain) || !get(SO_TYPE, type) || !get(SO_PROTOCOL, protocol) ||
        !get(SO_ACCEPTCONN, listening))
      return 0;
    if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM ||
        protocol != IPPROTO_TCP || listening != 0)
      return 0;
    return domain;
  }

  // ---- the checked connect ----

  awaitable<ConnectResult> connect_checked(const std::string& requested, uint16_t port) {
    const std::string host = normalize_host(requested);
    target_ = endpoint_text(printable(host), port);
    if (!is_valid_host(host)) {
      co_return ConnectResult{Outcome::bad_name,
                              "\"" + printable(requested) + "\" is not a valid host name"};
    }
    const NameDecision decision = check_name(impl_.policy, host);
    if (decision.verdict == NameVerdict::denied) {
      co_return ConnectResult{
          Outcome::refused,
          host + " is denied by the denied domains (entry \"" + decision.rule + "\")"};
    }
    if (decision.verdict == NameVerdict::not_allowed) {
      co_return ConnectResult{Outcome::refused, host + " is not in the allowed domains"};
    }

    std::vector<tcp::endpoint> endpoints;
    const bool literal = is_ip_literal(host);
    if (literal) {
      endpoints.emplace_back(asio::ip::make_address(host), port);
    } else {
      for (const auto& [name, address] : impl_.policy.test_resolve) {
        if (normalize_host(name) == host) {
          endpoints.emplace_back(asio::ip::make_address(normalize_host(address)), port);
        }
      }
    }
    arm(options().connect_timeout, true);
    if (endpoints.empty()) {
      auto [ec, results] = co_await resolver_.async_resolve(host, std::to_string(port),
                                                            tcp::resolver::numeric_service, kAwait);
      if (ec || results.empty()) {
        co_return ConnectResult{Outcome::unresolved,
                                host + " could not be resolved: " +
                                    (timed_out_ ? std::string("timed out") : ec.message())};
      }
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }

    if (decision.verdict != NameVerdict::allowed_exactly) {
      for (const auto& ep : endpoints) {
        const std::string_view kind = forbidden_address_kind(ep.address());
        if (kind.empty()) continue;
        const std::string address = ep.address().to_string();
        co_return ConnectResult{
            Outcome::refused,
            (literal ? host + " is a " : host + " resolves to " + address + ", a ") +
                std::string(kind) +
                " address; only an exact entry in the allowed domains permits it"};
      }
    }

    error_code last;
    for (const auto& ep : endpoints) {
      if (timed_out_) break;
      error_code ignored;
      upstream_.close(ignored);
      auto [ec] = co_await upstream_.async_connect(ep, kAwait);
      if (!ec) {
        upstream_.set_option(tcp::no_delay(true), ignored);
        impl_.emit(LogLevel::info, "allowed " + protocol_ + " " + target_ + " (entry \"" +
                                       decision.rule + "\") to " +
                                       endpoint_text(ep.address().to_string(), ep.port()));
        co_return ConnectResult{};
      }
      last = ec;
    }
    if (timed_out_)
      co_return ConnectResult{Outcome::timed_out, "connecting to " + target_ + " timed out"};
    const std::string why = "cannot connect to " + target_ + ": " + last.message();
    if (last == asio::error::connection_refused)
      co_return ConnectResult{Outcome::conn_refused, why};
    if (last == asio::error::network_unreachable) {
      co_return ConnectResult{Outcome::net_unreachable, why};
    }
    co_return ConnectResult{Outcome::unreachable, why};
  }

  void log_failure(const ConnectResult& r) {
    if (r.outcome == Outcome::refused) {
      refuse_log(r.reason);
    } else {
      impl_.emit(LogLevel::warning, "failed " + protocol_ + " " + target_ + ": " + r.reason);
    }
  }

  // ---- SOCKS5 (RFC 1928), no authentication, CONNECT only ----

  awaitable<void> socks_reply(uint8_t code) {
    const std::array<char, 10> reply{5, static_cast<char>(code), 0, 1, 0, 0, 0, 0, 0, 0};
    co_await write_client({reply.data(), reply.size()});
  }

  awaitable<void> socks5() {
    bool filled = false;
    filled = co_await fill(2);
    if (!filled) co_return;
    const std::size_t methods = static_cast<uint8_t>(head_[1]);
    filled = co_await fill(2 + methods);
    if (!filled) co_return;
    if (std::string_view(head_).substr(2, methods).find('\0') == std::string_view::npos) {
      impl_.emit(LogLevel::warning,
                 "refused socks5: the client offers no method without "
                 "authentication");
      co_await write_client("\x05\xff");
      co_return;
    }
    co_await write_client({"\x05\x00", 2});
    head_.erase(0, 2 + methods);

    filled = co_await fill(4);
    if (!filled) co_return;
    if (head_[0] != 0x05) co_return;
    const auto command = static_cast<uint8_t>(head_[1]);
    const auto type = static_cast<uint8_t>(head_[3]);
    std::size_t length = 0;
    if (type == 1) {
      length = 4;
    } else if (type == 4) {
      length = 16;
    } else if (type == 3) {
      filled = co_await fill(5);
      if (!filled) co_return;
      length = 1 + static_cast<uint8_t>(head_[4]);
    } else {
      impl_.emit(LogLevel::warning,
                 "refused socks5: address type " + std::to_string(type) + " is not supported");
      co_await socks_reply(0x08);
      co_return;
    }
    filled = co_await fill(4 + length + 2);
    if (!filled) co_return;
    const auto* a = reinterpret_cast<const unsigned char*>(head_.data() + 4);
    std::string host;
    if (type == 1) {
      host = asio::ip::address_v4({a[0], a[1], a[2], a[3]}).to_string();
    } else if (type == 4) {
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), a, 16);
      host = asio::ip::address_v6(bytes).to_string();
    } else {
      host.assign(head_.data() + 5, length - 1);
    }
    const uint16_t port = static_cast<uint16_t>(a[length] << 8 | a[length + 1]);
    head_.erase(0, 4 + length + 2);
    if (command != 1) {
      target_ = endpoint_text(printable(host), port);
      refuse_log("command " + std::to_string(command) + " is not supported (only CONNECT)");
      co_await socks_reply(0x07);
      co_return;
    }

    const ConnectResult result = co_await connect_checked(host, port);
    if (result.outcome != Outcome::connected) {
      log_failure(result);
      co_await socks_reply(socks_code(result.outcome));
      co_return;
    }
    error_code ec;
    const tcp::endpoint bound = upstream_.local_endpoint(ec);
    std::string reply{5, 0, 0};
    if (bound.address().is_v6()) {
      reply += '\x04';
      const auto bytes = bound.address().to_v6().to_bytes();
      reply.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    } else {
      reply += '\x01';
      const auto bytes = bound.address().to_v4().to_bytes();
      reply.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    reply += static_cast<char>(bound.port() >> 8);
    reply += static_cast<char>(bound.port() & 0xff);
    disarm();
    co_await write_client(reply);
    co_await tunnel();
  }

  // ---- HTTP: CONNECT and absolute-form requests ----

  awaitable<void> http() {
    bool filled = false;
    std::size_t end;
    while ((end = head_.find("\r\n\r\n")) == std::string::npos) {
      if (head_.size() >= options().max_head_bytes) {
        impl_.emit(LogLevel::warning, "refused http: request head larger than " +
                                          std::to_string(options().max_head_bytes) + " bytes");
        co_await reply_and_close(
            http_reply(431, "Request Header Fields Too Large", "request head too large\n"));
        co_return;
      }
      filled = co_await fill(head_.size() + 1);
      if (!filled) co_return;
    }
    end += 4;
    std::string error;
    auto request = http::parse_request_head(std::string_view(head_).substr(0, end), error);
    if (!request) {
      impl_.emit(LogLevel::warning, "refused http: " + error);
      co_await reply_and_close(http_reply(400, "Bad Request", error + "\n"));
      co_return;
    }

    if (request->method == "CONNECT") {
      protocol_ = "http-connect";
      auto destination = http::parse_authority(request->target, 0);
      if (!destination) {
        error = "CONNECT needs host:port, not \"" + printable(request->target) + "\"";
        impl_.emit(LogLevel::warning, "refused http-connect: " + error);
        co_await reply_and_close(http_reply(400, "Bad Request", error + "\n"));
        co_return;
      }
      const ConnectResult result = co_await connect_checked(destination->host, destination->port);
      if (result.outcome != Outcome::connected) {
        co_await refuse_http(result);
        co_return;
      }
      head_.erase(0, end);
      disarm();
      co_await write_client("HTTP/1.1 200 Connection Established\r\n\r\n");
      co_await tunnel();
      co_return;
    }

    auto url = http::parse_http_url(request->target, error);
    auto framing = url ? http::request_body_framing(request->headers, error) : std::nullopt;
    if (!url || !framing) {
      impl_.emit(LogLevel::warning, "refused http: " + error);
      co_await reply_and_close(http_reply(400, "Bad Request", error + "\n"));
      co_return;
    }
    const ConnectResult result =
        co_await connect_checked(url->destination.host, url->destination.port);
    if (result.outcome != Outcome::connected) {
      co_await refuse_http(result);
      co_return;
    }
    head_.erase(0, end);
    disarm();
    co_await (send_request(http::upstream_request_head(*request, *url), *framing) &&
              relay_response());
  }

  awaitable<void> refuse_http(const ConnectResult& r) {
    log_failure(r);
    const std::string body = "process-mcp proxy: " + target_ + " refused: " + r.reason + "\n";
    switch (r.outcome) {
      case Outcome::refused:
        co_await reply_and_close(http_reply(403, "Forbidden", body));
        break;
      case Outcome::bad_name:
        co_await reply_and_close(http_reply(400, "Bad Request", body));
        break;
      case Outcome::timed_out:
        co_await reply_and_close(http_reply(504, "Gateway Timeout", body));
        break;
      default:
        co_await reply_and_close(http_reply(502, "Bad Gateway", body));
        break;
    }
  }

  // Sends the rewritten head and exactly the request's body upstream. Whatever the client sends
  // after the body (a pipelined second request) is read and dropped, never forwarded: it was not
  // checked.
  awaitable<void> send_request(std::string upstream_head, http::BodyFraming framing) {
    uint64_t remaining = framing.length;
    http::ChunkedScanner chunks;
    bool done = framing.kind == http::BodyFraming::Kind::none;
    uint64_t dropped = 0;
    // Returns how much of data belongs to the body, and updates done.
    auto body_part = [&](std::string_view data) -> std::size_t {
      std::size_t take = 0;
      if (framing.kind == http::BodyFraming::Kind::length) {
        take = static_cast<std::size_t>(std::min<uint64_t>(remaining, data.size()));
        remaining -= take;
        done = remaining == 0;
      } else if (framing.kind == http::BodyFraming::Kind::chunked) {
        take = chunks.feed(data);
        done = chunks.done();
      }
      return take;
    };

    std::string first = std::move(upstream_head);
    const std::size_t take = done ? 0 : body_part(head_);
    first.append(head_, 0, take);
    dropped += head_.size() - take;
    head_.clear();
    sent_ += first.size();
    auto [first_ec, first_n] = co_await asio::async_write(upstream_, asio::buffer(first), kAwait);
    if (first_ec) {
      close_all();
      co_return;
    }
    std::vector<char> buffer(done ? 4096 : options().buffer_bytes);
    while (!done && !chunks.failed()) {
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(buffer), kAwait);
      if (ec) {
        if (ec != asio::error::eof) close_all();
        co_return;
      }
      const std::size_t part = body_part({buffer.data(), n});
      dropped += n - part;
      sent_ += part;
      auto [wec, m] =
          co_await asio::async_write(upstream_, asio::buffer(buffer.data(), part), kAwait);
      if (wec) {
        close_all();
        co_return;
      }
    }
    if (chunks.failed()) {
      impl_.emit(LogLevel::warning, "closed http " + target_ + ": malformed chunked request body");
      close_all();
      co_return;
    }
    for (;;) {
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(buffer), kAwait);
      if (ec) break;
      dropped += n;
    }
    if (dropped > 0) {
      impl_.emit(LogLevel::debug, "dropped " + std::to_string(dropped) +
                                      " bytes after the request to " + target_ +
                                      ": a proxy connection carries one request");
    }
  }

  // Relays the response with `Connection: close` in its head, then lingers for the client to
  // close (bounded by the handshake timeout).
  awaitable<void> relay_response() {
    std::vector<char> buffer(options().buffer_bytes);
    std::string head;
    for (;;) {
      std::size_t end;
      while ((end = head.find("\r\n\r\n")) == std::string::npos) {
        if (head.size() >= options().max_response_head_bytes) {
          impl_.emit(LogLevel::warning, "failed http " + target_ + ": response head too large");
          co_await final_reply(http_reply(502, "Bad Gateway", "response head too large\n"));
          co_return;
        }
        auto [ec, n] = co_await upstream_.async_read_some(asio::buffer(buffer), kAwait);
        if (ec) {
          if (head.empty() && received_ == 0) {
            impl_.emit(LogLevel::warning, "failed http " + target_ + ": no response");
            co_await final_reply(http_reply(502, "Bad Gateway", "no response from upstream\n"));
          } else {
            close_all();
          }
          co_return;
        }
        head.append(buffer.data(), n);
      }
      end += 4;
      int status = 0;
      std::string out =
          http::downstream_response_head(std::string_view(head).substr(0, end), status);
      const bool interim = status >= 100 && status < 200 && status != 101;
      if (interim || status == 101) out = head.substr(0, end);  // forwarded as they are
      head.erase(0, end);
      if (!interim) {
        out += head;
        head.clear();
      }
      received_ += out.size();
      auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(out), kAwait);
      if (wec) {
        close_all();
        co_return;
      }
      if (!interim) break;
    }
    buffer = std::vector<char>();
    co_await pump(upstream_, client_, received_);
    arm(options().handshake_timeout, false);
  }

  // ---- the relay ----

  // Moves bytes one way until `from` ends (passed on as a half-close) or either side fails.
  // Bytes go socket -> pipe -> socket with splice(2), so they are never copied into this
  // process; where that is refused (a kernel or socket without splice, or no descriptor left
  // for the pipe) they are copied through a buffer of `buffer_bytes`.
  template <class From, class To>
  awaitable<void> pump(From& from, To& to, uint64_t& count) {
    {
      KernelPipe pipe(options().buffer_bytes);
      if (pipe.ok()) {
        bool spliced = false;
        co_await splice_pump(from, to, pipe, count, spliced);
        if (spliced) co_return;
      }
    }
    std::vector<char> buffer(options().buffer_bytes);
    co_await copy_pump(from, to, std::span(buffer), count);
  }

  // Sets `spliced` unless splice(2) was refused before the first byte (the caller then copies).
  template <class From, class To>
  awaitable<void> splice_pump(From& from, To& to, KernelPipe& pipe, uint64_t& count,
                              bool& spliced) {
    spliced = true;
    error_code ec;
    from.native_non_blocking(true, ec);  // splice(2) waits on a blocking socket
    if (!ec) to.native_non_blocking(true, ec);
    if (ec) {
      close_all();
      co_return;
    }
    bool first = true;
    for (;;) {
      if (!from.is_open() || !to.is_open()) co_return;  // the other direction closed both
      const ssize_t n = ::splice(from.native_handle(), nullptr, pipe.write_fd, nullptr,
                                 pipe.capacity, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          auto [wec] = co_await from.async_wait(asio::socket_base::wait_read, kAwait);
          if (wec) {
            close_all();
            co_return;
          }
          continue;
        }
        if (first && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
          spliced = false;
          co_return;
        }
        close_all();
        co_return;
      }
      first = false;
      if (n == 0) {
        error_code ignored;
        to.shutdown(asio::socket_base::shutdown_send, ignored);
        co_return;
      }
      auto held = static_cast<std::size_t>(n);
      while (held > 0) {
        const ssize_t m = ::splice(pipe.read_fd, nullptr, to.native_handle(), nullptr, held,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) {
            auto [wec] = co_await to.async_wait(asio::socket_base::wait_write, kAwait);
            if (wec) {
              close_all();
              co_return;
            }
            continue;
          }
          if (errno == EPIPE) clear_pending_sigpipe();
          close_all();
          co_return;
        }
        held -= static_cast<std::size_t>(m);
        count += static_cast<uint64_t>(m);
      }
    }
  }

  template <class From, class To>
  awaitable<void> copy_pump(From& from, To& to, std::span<char> buffer, uint64_t& count) {
    for (;;) {
      auto [ec, n] =
          co_await from.async_read_some(asio::buffer(buffer.data(), buffer.size()), kAwait);
      if (n > 0) {
        auto [wec, m] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), kAwait);
        count += m;
        if (wec) {
          close_all();
          co_return;
        }
      }
      if (ec == asio::error::eof) {
        error_code ignored;
        to.shutdown(asio::socket_base::shutdown_send, ignored);
        co_return;
      }
      if (ec) {
        close_all();
        co_return;
      }
    }
  }

  // Relays both ways until both sides have closed; a half-close travels to the other side.
  awaitable<void> tunnel() {
    if (!head_.empty()) {
      sent_ += head_.size();
      auto [ec, n] = co_await asio::async_write(upstream_, asio::buffer(head_), kAwait);
      if (ec) {
        close_all();
        co_return;
      }
    }
    head_ = std::string();
    co_await (pump(client_, upstream_, sent_) && pump(upstream_, client_, received_));
  }

  Proxy::Impl& impl_;
  ClientSocket client_;
  tcp::socket upstream_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  unsigned generation_ = 0;
  bool connecting_ = false;
  bool timed_out_ = false;
  std::string head_;  // bytes read from the client and not yet consumed or forwarded
  std::string protocol_ = "http";
  std::string target_;  // host:port, for logs
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
};

template <class Acceptor>
awaitable<void> accept_loop(Proxy::Impl& impl, Acceptor& acceptor, std::string where) {
  error_code ec;
  const asio::generic::stream_protocol protocol(acceptor.local_endpoint(ec).protocol());
  for (;;) {
    auto [aec, socket] = co_await acceptor.async_accept(kAwait);
    if (aec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (aec) {
      impl.emit(LogLevel::warning, "accept on " + where + " failed: " + aec.message());
      asio::steady_timer pause(acceptor.get_executor(), 100ms);  // e.g. out of descriptors
      co_await pause.async_wait(kAwait);
      continue;
    }
    if (impl.connections >= impl.options.max_connections) {
      impl.emit(LogLevel::warning, "closed a connection on " + where + ": already " +
                                       std::to_string(impl.connections) + " open");
      continue;
    }
    if constexpr (std::is_same_v<Acceptor, tcp::acceptor>) {
      socket.set_option(tcp::no_delay(true), ec);
    }
    const int fd = socket.release(ec);
    if (ec) continue;
    auto session =
        std::make_shared<Session>(impl, ClientSocket(acceptor.get_executor(), protocol, fd));
    asio::co_spawn(acceptor.get_executor(), session->run(), [&impl](std::exception_ptr e) {
      try {
        if (e) std::rethrow_exception(e);
      } catch (const std::exception& x) {
        impl.emit(LogLevel::error, "proxy connection failed: " + std::string(x.what()));
      }
    });
  }
}

// Makes room for a new socket at path: a stale socket file goes, a live one or anything else
// is an error.
void clear_socket_path(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) {
    throw std::runtime_error("cannot listen on " + path + ": the path exists and is not a socket");
  }
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool live =
      probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (probe >= 0) close(probe);
  if (live)
    throw std::runtime_error("cannot listen on " + path + ": another process listens there");
  unlink(path.c_str());
}

}  // namespace

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Proxy::~Proxy() { stop(); }

std::unique_ptr<Proxy> Proxy::start(Policy policy, std::string socket_path, LogFn log,
                                    ProxyOptions options) {
  if (auto error = validate(policy); !error.empty()) {
    throw std::runtime_error("network policy: " + error);
  }
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("cannot listen on \"" + socket_path +
                             "\": a unix socket path needs 1 to " +
                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  clear_socket_path(socket_path);

  auto impl = std::make_unique<Impl>();
  impl->policy = std::move(policy);
  impl->socket_path = std::move(socket_path);
  impl->log = std::move(log);
  impl->options = options;
  impl->io = std::make_unique<asio::io_context>(1);
  auto& acceptor = impl->unix_acceptor.emplace(*impl->io);
  error_code ec;
  acceptor.open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor.bind(asio::local::stream_protocol::endpoint(impl->socket_path), ec);
  struct stat st {};
  if (!ec && (chmod(impl->socket_path.c_str(), options.socket_mode) != 0 ||
              stat(impl->socket_path.c_str(), &st) != 0)) {
    ec = error_code(errno, boost::system::system_category());
  }
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.close();
    unlink(impl->socket_path.c_str());
    throw std::runtime_error("cannot listen on " + impl->socket_path + ": " + ec.message());
  }
  impl->socket_inode = st.st_ino;
  asio::co_spawn(*impl->io, accept_loop(*impl, acceptor, impl->socket_path), asio::detached);
  impl->work.emplace(impl->io->get_executor());
  impl->thread = std::thread([io = impl->io.get(), raw = impl.get()] {
    sigset_t pipe_signal;  // see clear_pending_sigpipe
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    for (;;) {
      try {
        io->run();
        return;
      } catch (const std::exception& e) {
        raw->emit(LogLevel::error, std::string("proxy thread: ") + e.what());
      }
    }
  });
  impl->emit(LogLevel::debug, "proxy listening on " + impl->socket_path);
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

uint16_t Proxy::listen_tcp(const std::string& address, uint16_t port) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) throw std::runtime_error("the proxy is stopped");
  error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("cannot listen on \"" + address + "\": not an IP address");
  auto acceptor = std::make_unique<tcp::acceptor>(*impl_->io);
  const tcp::endpoint endpoint(ip, port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  const tcp::endpoint bound = ec ? tcp::endpoint() : acceptor->local_endpoint(ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + endpoint_text(address, port) + ": " +
                             ec.message());
  }
  asio::co_spawn(*impl_->io,
                 accept_loop(*impl_, *acceptor, endpoint_text(ip.to_string(), bound.port())),
                 asio::detached);
  impl_->tcp_acceptors.push_back(std::move(acceptor));
  return bound.port();
}

const std::string& Proxy::socket_path() const { return impl_->socket_path; }

void Proxy::stop() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->io->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->unix_acceptor.reset();
  impl_->tcp_acceptors.clear();
  impl_->work.reset();
  impl_->io.reset();  // destroys every session and with it its sockets
  struct stat st {};
  if (lstat(impl_->socket_path.c_str(), &st) == 0 && st.st_ino == impl_->socket_inode) {
    unlink(impl_->socket_path.c_str());
  }
}

}  // namespace pmcp::netpolicy
