// Integration tests of the filtering proxy (plugins/netpolicy) and of pmcp-net-bridge against
// real servers on loopback: HTTP CONNECT, plain HTTP, SOCKS5, refusals and their messages, and
// the bridge as a separate process. All traffic stays on 127.0.0.1 and ::1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pmcp/fd_passing.hpp"
#include "pmcp/netpolicy/proxy.hpp"

extern char** environ;

namespace pmcp::netpolicy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kBridge = PMCP_NET_BRIDGE_PATH;

// ---- plumbing: sockets, a temp folder, servers ----

void set_timeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  set_timeouts(fd);
  return fd;
}

int connect_tcp(const std::string& address, uint16_t port) {
  sockaddr_storage s{};
  socklen_t length = 0;
  if (address.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&s);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
    length = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&s);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &a->sin_addr);
    length = sizeof *a;
  }
  const int fd = socket(s.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&s), length) != 0) {
    close(fd);
    return -1;
  }
  set_timeouts(fd);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads a socket or pipe until end of file, an error or the 10 s receive timeout.
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string read_exact(int fd, std::size_t count) {
  std::string out;
  char buf[4096];
  while (out.size() < count) {
    const ssize_t n = recv(fd, buf, std::min(sizeof buf, count - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Reads up to the end of an HTTP head.
std::string read_head(int fd) {
  std::string out;
  char c;
  while (out.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) out += c;
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/pmcp-netpolicy-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A TCP server on a loopback address with one thread per connection.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<void(int)> handler,
                          const std::string& address = "127.0.0.1")
      : handler_(std::move(handler)) {
    sockaddr_storage s{};
    socklen_t length;
    if (address.find(':') != std::string::npos) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&s);
      a->sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
      length = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&s);
      a->sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &a->sin_addr);
      length = sizeof *a;
    }
    fd_ = socket(s.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&s), length) != 0 || listen(fd_, 64) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    getsockname(fd_, reinterpret_cast<sockaddr*>(&s), &length);
    port_ = ntohs(s.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&s)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&s)->sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        set_timeouts(c);
        std::lock_guard lock(mutex_);
        clients_.push_back(c);
        threads_.emplace_back([this, c] { handler_(c); });
      }
    });
  }
  ~LoopbackServer() {
    if (fd_ < 0) return;
    shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    close(fd_);
    std::lock_guard lock(mutex_);
    for (int c : clients_) shutdown(c, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int c : clients_) close(c);
  }
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }

 private:
  std::function<void(int)> handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> clients_;
  std::vector<std::thread> threads_;
};

void echo(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (!send_all(fd, {buf, static_cast<std::size_t>(n)})) return;
  }
  shutdown(fd, SHUT_WR);
}

// An origin server that records each request it gets, answers it (claiming keep-alive, which
// the proxy must turn into close), and records whatever else arrives on the connection.
struct Origin {
  std::mutex mutex;
  std::vector<std::string> requests;
  std::string after;

  void serve(int fd) {
    std::string head = read_head(fd);
    if (head.empty()) return;
    std::string body;
    const auto cl = head.find("Content-Length: ");
    if (cl != std::string::npos) body = read_exact(fd, std::stoul(head.substr(cl + 16)));
    const std::string path =
        head.substr(head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
    const std::string reply = "hello from " + path + (body.empty() ? "" : " with " + body);
    send_all(fd, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: " +
                     std::to_string(reply.size()) + "\r\n\r\n" + reply);
    shutdown(fd, SHUT_WR);
    const std::string rest = read_all(fd);
    std::lock_guard lock(mutex);
    requests.push_back(head + body);
    after += rest;
  }
};

struct LogLines {
  std::mutex mutex;
  std::vector<std::pair<LogLevel, std::string>> lines;
  LogFn fn() {
    return [this](LogLevel level, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(level, std::string(line));
    };
  }
  bool has(LogLevel level, const std::string& part) {
    std::lock_guard lock(mutex);
    for (const auto& [l, s] : lines) {
      if (l == level && s.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

class ProxyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Proxy> start(Policy policy, ProxyOptions options = {}) {
    return Proxy::start(std::move(policy), dir.path + "/proxy.sock", log.fn(), options);
  }
  // Sends a CONNECT through a new connection to the proxy; returns the socket and the reply head.
  std::pair<int, std::string> http_connect(const std::string& authority) {
    const int fd = connect_unix(dir.path + "/proxy.sock");
    EXPECT_GE(fd, 0);
    send_all(fd, "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
    return {fd, read_head(fd)};
  }
  TempDir dir;
  LogLines log;
};

std::string authority(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

// ---- HTTP CONNECT ----

TEST_F(ProxyTest, ConnectAllowedTunnelsBothWaysWithHalfClose) {
  LoopbackServer server(echo);
  auto proxy =
      start({.allowed_domains = {"origin.test"}, .test_resolve = {{"origin.test", "127.0.0.1"}}});
  auto [fd, head] = http_connect(authority("origin.test", server.port()));
  EXPECT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  ASSERT_TRUE(send_all(fd, "ping over the tunnel"));
  shutdown(fd, SHUT_WR);  // the server still answers after our half-close
  EXPECT_EQ(read_all(fd), "ping over the tunnel");
  close(fd);
  EXPECT_TRUE(
      log.has(LogLevel::info, "allowed http-connect origin.test:" + std::to_string(server.port())));
}

TEST_F(ProxyTest, ConnectDeniedAndNotAllowedGet403WithTheReason) {
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"*", "origin.test", "127.0.0.1"},
                      .denied_domains = {"*.bad.test", "origin.test"},
                      .test_resolve = {{"origin.test", "127.0.0.1"}}});
  auto [fd, head] = http_connect(authority("Origin.Test.", server.port()));
  EXPECT_TRUE(head.starts_with("HTTP/1.1 403 Forbidden\r\n")) << head;
  std::string body = read_all(fd);
  EXPECT_NE(body.find("origin.test is denied by the denied domains (entry \"origin.test\")"),
            std::string::npos)
      << body;
  close(fd);
  EXPECT_TRUE(log.has(LogLevel::warning, "refused http-connect origin.test:"));
  proxy->stop();

  proxy = start({.allowed_domains = {"other.test"}});
  std::tie(fd, head) = http_connect("origin.test:443");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 403 Forbidden\r\n")) << head;
  body = read_all(fd);
  EXPECT_NE(body.find("origin.test is not in the allowed domains"), std::string::npos) << body;
  close(fd);
}

TEST_F(ProxyTest, LoopbackNeedsAnExactEntry) {
  LoopbackServer server(echo);
  {
    auto proxy =
        start({.allowed_domains = {"*.test"}, .test_resolve = {{"api.test", "127.0.0.1"}}});
    auto [fd, head] = http_connect(authority("api.test", server.port()));
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403 Forbidden\r\n")) << head;
    const std::string body = read_all(fd);
    EXPECT_NE(body.find("api.test resolves to 127.0.0.1, a loopback address"), std::string::npos)
        << body;
    close(fd);
  }
  {
    auto proxy = start({});  // "*" allows the literal as a name, not its address
    auto [fd, head] = http_connect(authority("127.0.0.1", server.port()));
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403 Forbidden\r\n")) << head;
    EXPECT_NE(read_all(fd).find("127.0.0.1 is a loopback address"), std::string::npos);
    close(fd);
  }
  {
    auto proxy = start(
        {.allowed_domains = {"*.test", "api.test"}, .test_resolve = {{"api.test", "127.0.0.1"}}});
    auto [fd, head] = http_connect(authority("api.test", server.port()));
    EXPECT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    send_all(fd, "x");
    EXPECT_EQ(read_exact(fd, 1), "x");
    close(fd);
  }
  {
    auto proxy = start({.test_resolve = {{"meta.test", "::ffff:169.254.169.254"}}});
    auto [fd, head] = http_connect("meta.test:80");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403 Forbidden\r\n")) << head;
    EXPECT_NE(read_all(fd).find("a cloud metadata address"), std::string::npos);
    close(fd);
  }
}

TEST_F(ProxyTest, UnreachableIs502AndBadRequestsAre400) {
  uint16_t closed_port;
  {
    LoopbackServer gone(echo);
    closed_port = gone.port();
  }
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  auto [fd, head] = http_connect(authority("127.0.0.1", closed_port));
  EXPECT_TRUE(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << head;
  EXPECT_NE(read_all(fd).find("cannot connect to 127.0.0.1:"), std::string::npos);
  close(fd);

  for (const std::string request :
       {"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", "GET /origin-form HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET https://a/ HTTP/1.1\r\n\r\n", "garbage\r\n\r\n",
        "POST http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: "
        "chunked\r\n\r\n",
        "CONNECT bad_host!:443 HTTP/1.1\r\n\r\n"}) {
    fd = connect_unix(proxy->socket_path());
    send_all(fd, request);
    head = read_head(fd);
    EXPECT_TRUE(head.starts_with("HTTP/1.1 400 Bad Request\r\n")) << request << " -> " << head;
    close(fd);
  }

  fd = connect_unix(proxy->socket_path());
  send_all(fd, "GET http://127.0.0.1/ HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
  head = read_head(fd);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 431 ")) << head;
  close(fd);
}

// ---- plain HTTP ----

TEST_F(ProxyTest, PlainGetIsRewrittenAndCarriesOneRequestOnly) {
  Origin origin;
  auto server = std::make_unique<LoopbackServer>([&](int fd) { origin.serve(fd); });
  auto proxy = start({.allowed_domains = {"origin.test"},
                      .test_resolve = {{"origin.test", "127.0.0.1"}, {"evil.test", "127.0.0.1"}}});
  const int fd = connect_unix(proxy->socket_path());
  const std::string port = std::to_string(server->port());
  // Two pipelined requests in one write: the second, for a host that is not allowed, must not
  // reach anything.
  ASSERT_TRUE(send_all(fd, "GET http://origin.test:" + port +
                               "/hello?x=1 HTTP/1.1\r\nHost: origin.test\r\nProxy-Authorization: "
                               "Basic eA==\r\nProxy-Connection: keep-alive\r\n\r\n"
                               "GET http://evil.test:" +
                               port + "/steal HTTP/1.1\r\nHost: evil.test\r\n\r\n"));
  const std::string response = read_all(fd);
  close(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos) << response;
  EXPECT_EQ(response.find("keep-alive"), std::string::npos) << response;
  EXPECT_TRUE(response.ends_with("hello from /hello?x=1")) << response;

  proxy->stop();   // closes the upstream side, which ends the origin's connection
  server.reset();  // and joins it: the origin has recorded everything
  std::lock_guard lock(origin.mutex);
  ASSERT_EQ(origin.requests.size(), 1u);
  const std::string& request = origin.requests[0];
  EXPECT_TRUE(request.starts_with("GET /hello?x=1 HTTP/1.1\r\nHost: origin.test:" + port + "\r\n"))
      << request;
  EXPECT_NE(request.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(request.find("Proxy-"), std::string::npos) << request;
  EXPECT_EQ(origin.after, "");
}

TEST_F(ProxyTest, PlainPostForwardsTheBody) {
  Origin origin;
  LoopbackServer server([&](int fd) { origin.serve(fd); });
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  const int fd = connect_unix(proxy->socket_path());
  send_all(fd, "POST http://127.0.0.1:" + std::to_string(server.port()) +
                   "/form HTTP/1.1\r\nContent-Length: 9\r\n\r\nname=");
  send_all(fd, "test");
  const std::string response = read_all(fd);
  close(fd);
  EXPECT_TRUE(response.ends_with("hello from /form with name=test")) << response;
}

TEST_F(ProxyTest, PlainGetRefusalsAre403) {
  auto proxy = start({.allowed_domains = {"*.example.com"}});
  const int fd = connect_unix(proxy->socket_path());
  send_all(fd, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  const std::string response = read_all(fd);
  close(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 403 Forbidden\r\n")) << response;
  EXPECT_NE(response.find("example.com is not in the allowed domains"), std::string::npos);
  EXPECT_TRUE(log.has(LogLevel::warning, "refused http example.com:80"));
}

// ---- SOCKS5 ----

// Greets, sends a CONNECT with the given address part; returns the reply (10 bytes for IPv4
// bound addresses, 22 for IPv6).
std::string socks_connect(int fd, std::string address_part, uint16_t port, char command = 1) {
  send_all(fd, std::string("\x05\x01\x00", 3));
  if (read_exact(fd, 2) != std::string("\x05\x00", 2)) return "greeting refused";
  std::string request{5, command, 0};
  request += address_part;
  request += static_cast<char>(port >> 8);
  request += static_cast<char>(port & 0xff);
  send_all(fd, request);
  std::string reply = read_exact(fd, 4);
  if (reply.size() == 4) reply += read_exact(fd, reply[3] == 4 ? 18 : 6);
  return reply;
}

std::string domain(const std::string& name) {
  return char(3) + std::string(1, char(name.size())) + name;
}

TEST_F(ProxyTest, Socks5DomainIpv4AndIpv6) {
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"origin.test", "127.0.0.1", "::1"},
                      .test_resolve = {{"origin.test", "127.0.0.1"}}});
  {
    const int fd = connect_unix(proxy->socket_path());
    const std::string reply = socks_connect(fd, domain("origin.test"), server.port());
    ASSERT_EQ(reply.size(), 10u);
    EXPECT_EQ(reply[1], 0x00);
    send_all(fd, "via domain");
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(read_all(fd), "via domain");
    close(fd);
  }
  {
    const int fd = connect_unix(proxy->socket_path());
    const std::string reply =
        socks_connect(fd, std::string("\x01\x7f\x00\x00\x01", 5), server.port());
    ASSERT_EQ(reply.size(), 10u);
    EXPECT_EQ(reply[1], 0x00);
    send_all(fd, "via ipv4");
    EXPECT_EQ(read_exact(fd, 8), "via ipv4");
    close(fd);
  }
  LoopbackServer server6(echo, "::1");
  if (!server6.ok()) GTEST_SKIP() << "no ::1 on this machine";
  {
    const int fd = connect_unix(proxy->socket_path());
    std::string v6(1, '\x04');
    v6 += std::string(15, '\0') + '\x01';
    const std::string reply = socks_connect(fd, v6, server6.port());
    ASSERT_EQ(reply.size(), 22u);
    EXPECT_EQ(reply[1], 0x00);
    send_all(fd, "via ipv6");
    EXPECT_EQ(read_exact(fd, 8), "via ipv6");
    close(fd);
  }
}

TEST_F(ProxyTest, Socks5ReplyCodes) {
  uint16_t closed_port;
  {
    LoopbackServer gone(echo);
    closed_port = gone.port();
  }
  auto proxy = start({.allowed_domains = {"127.0.0.1", "*.test"},
                      .denied_domains = {"bad.test"},
                      .test_resolve = {{"api.test", "127.0.0.1"}}});
  auto code = [&](std::string address_part, uint16_t port, char command = 1) {
    const int fd = connect_unix(proxy->socket_path());
    const std::string reply = socks_connect(fd, std::move(address_part), port, command);
    close(fd);
    return reply.size() >= 2 ? static_cast<int>(static_cast<unsigned char>(reply[1])) : -1;
  };
  EXPECT_EQ(code(domain("other.org"), 443), 0x02);  // not allowed
  EXPECT_EQ(code(domain("bad.test"), 443), 0x02);   // denied
  EXPECT_EQ(code(domain("api.test"), 443), 0x02);   // loopback by wildcard
  EXPECT_EQ(code(std::string("\x01\x7f\x00\x00\x01", 5), closed_port), 0x05);  // refused
  EXPECT_EQ(code(domain("api.test"), 443, 2), 0x07);                           // BIND
  {
    const int fd = connect_unix(proxy->socket_path());
    send_all(fd, std::string("\x05\x01\x00", 3));
    read_exact(fd, 2);
    send_all(fd, std::string("\x05\x01\x00\x09", 4));  // address type 9
    const std::string reply = read_exact(fd, 10);
    ASSERT_GE(reply.size(), 2u);
    EXPECT_EQ(reply[1], 0x08);
    close(fd);
  }
  {
    const int fd = connect_unix(proxy->socket_path());  // only username/password offered
    send_all(fd, std::string("\x05\x01\x02", 3));
    EXPECT_EQ(read_exact(fd, 2), std::string("\x05\xff", 2));
    close(fd);
  }
  EXPECT_TRUE(log.has(LogLevel::warning,
                      "refused socks5 other.org:443: other.org is not in the allowed domains"));
}

// ---- life cycle ----

TEST_F(ProxyTest, StopClosesOpenTunnelsPromptly) {
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    auto [fd, head] = http_connect(authority("127.0.0.1", server.port()));
    ASSERT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    fds.push_back(fd);
  }
  const auto t = Clock::now();
  proxy->stop();
  EXPECT_LT(Clock::now() - t, 2s);
  for (int fd : fds) {
    EXPECT_EQ(read_all(fd), "");  // end of file, not the 10 s timeout
    close(fd);
  }
  EXPECT_LT(Clock::now() - t, 5s);
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/proxy.sock"));
  proxy->stop();  // idempotent
}

TEST_F(ProxyTest, IdleHandshakeTimesOut) {
  auto proxy = start({}, {.handshake_timeout = 200ms});
  const int fd = connect_unix(proxy->socket_path());
  const auto t = Clock::now();
  EXPECT_EQ(read_all(fd), "");
  EXPECT_LT(Clock::now() - t, 5s);
  close(fd);
}

TEST_F(ProxyTest, StartErrorsSayWhy) {
  try {
    start({.allowed_domains = {"ok.test", "*bad"}});
    FAIL() << "a bad pattern was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("\"*bad\""), std::string::npos) << e.what();
  }
  const std::string file = dir.path + "/file";
  close(open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_THROW(Proxy::start({}, file, nullptr), std::runtime_error);
  auto live = start({});
  EXPECT_THROW(start({}), std::runtime_error);  // another proxy listens there
  live->stop();
  auto again = start({});  // the socket file is gone or stale: fine
  EXPECT_NE(connect_unix(again->socket_path()), -1);
}

TEST_F(ProxyTest, ListensOnTcpToo) {
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  const uint16_t port = proxy->listen_tcp("127.0.0.1", 0);
  const int fd = connect_tcp("127.0.0.1", port);
  ASSERT_GE(fd, 0);
  send_all(fd, "CONNECT " + authority("127.0.0.1", server.port()) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_head(fd), "HTTP/1.1 200 Connection Established\r\n\r\n");
  close(fd);
}

// Bytes that would show a lost, doubled or reordered piece (no short period).
std::string pattern(std::size_t size) {
  std::string out(size, '\0');
  uint32_t x = 2463534242u;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return out;
}

// Writes `data` on fd and half-closes while reading everything that comes back.
std::string echo_through(int fd, const std::string& data) {
  std::thread writer([&] {
    send_all(fd, data);
    shutdown(fd, SHUT_WR);
  });
  std::string back = read_all(fd);
  writer.join();
  return back;
}

// The relay moves bytes inside the kernel (splice); several MiB both ways at once, far more than
// its pipes hold, arrive whole and in order, and each tunnel counts them in its log line.
TEST_F(ProxyTest, TunnelCarriesEveryByteInOrderBothWaysAtOnce) {
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  const std::string data = pattern(8 << 20);
  for (int round = 0; round < 2; ++round) {
    auto [fd, head] = http_connect(authority("127.0.0.1", server.port()));
    ASSERT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    const std::string back = echo_through(fd, data);
    close(fd);
    ASSERT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data) << "the echoed bytes differ";
  }
  const std::string counted =
      std::to_string(data.size()) + " bytes out, " + std::to_string(data.size()) + " bytes in";
  const auto deadline = Clock::now() + 5s;
  while (!log.has(LogLevel::debug, counted) && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(log.has(LogLevel::debug, counted));
}

// A client that resets its connection in the middle of a download: that tunnel ends, the proxy
// (in this process, where SIGPIPE is not ignored) goes on serving others.
TEST_F(ProxyTest, ClientResetInTheMiddleOfADownloadEndsOnlyThatTunnel) {
  LoopbackServer flood([](int fd) {
    const std::string chunk(1 << 16, 'f');
    for (int i = 0; i < 1024 && send_all(fd, chunk); ++i) {
    }
  });
  LoopbackServer server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  for (int round = 0; round < 5; ++round) {
    auto [fd, head] = http_connect(authority("127.0.0.1", flood.port()));
    ASSERT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    EXPECT_EQ(read_exact(fd, 1 << 20).size(), 1u << 20);
    const linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
  }
  auto [fd, head] = http_connect(authority("127.0.0.1", server.port()));
  ASSERT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  EXPECT_EQ(echo_through(fd, "still here"), "still here");
  close(fd);
}

// ---- a connection handed over (what pmcp-net-bridge does) ----

// Connects to the proxy's unix socket and passes `passed` after one NUL byte (SCM_RIGHTS).
int pass_to_proxy(const std::string& socket_path, int passed) {
  const int fd = connect_unix(socket_path);
  if (fd < 0) return -1;
  const char marker = '\0';
  const pmcp::fdpass::Outgoing out(&marker, 1, &passed, 1);
  EXPECT_EQ(pmcp::fdpass::send(fd, out, MSG_NOSIGNAL), 1) << std::strerror(errno);
  return fd;
}

// A TCP socket listening on 127.0.0.1 on a free port; sets port. -1 on failure.
int listen_loopback(int backlog, uint16_t& port) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(listener, backlog) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    if (listener >= 0) close(listener);
    return -1;
  }
  port = ntohs(a.sin_port);
  return listener;
}

// The proxy serves a TCP connection passed to it as its client: the unix connection it came
// on is done, and the client's own socket gets the answers.
TEST_F(ProxyTest, APassedTcpConnectionIsServedAsTheClient) {
  LoopbackServer echo_server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  // A loopback TCP connection: `client` plays the command, `accepted` is what a bridge accepts.
  uint16_t port = 0;
  const int listener = listen_loopback(1, port);
  ASSERT_GE(listener, 0);
  const int client = connect_tcp("127.0.0.1", port);
  ASSERT_GE(client, 0);
  const int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  ASSERT_GE(accepted, 0);
  const int carrier = pass_to_proxy(dir.path + "/proxy.sock", accepted);
  close(accepted);
  ASSERT_GE(carrier, 0);
  EXPECT_EQ(read_all(carrier), "");  // the proxy let go of the unix connection
  close(carrier);
  send_all(client, "CONNECT " + authority("127.0.0.1", echo_server.port()) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_head(client), "HTTP/1.1 200 Connection Established\r\n\r\n");
  send_all(client, "through a passed socket");
  shutdown(client, SHUT_WR);
  EXPECT_EQ(read_all(client), "through a passed socket");
  close(client);
}

// Anything else after the NUL byte (no descriptor, a pipe, a listening socket) ends the unix
// connection with a warning; the proxy goes on serving.
TEST_F(ProxyTest, APassedDescriptorThatIsNoTcpConnectionIsDropped) {
  LoopbackServer echo_server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  uint16_t port = 0;
  const int listener = listen_loopback(1, port);
  ASSERT_GE(listener, 0);
  for (const int passed : {pipe_fds[0], listener}) {
    const int carrier = pass_to_proxy(dir.path + "/proxy.sock", passed);
    ASSERT_GE(carrier, 0);
    EXPECT_EQ(read_all(carrier), "");
    close(carrier);
  }
  // A NUL byte alone.
  const int bare = connect_unix(dir.path + "/proxy.sock");
  ASSERT_TRUE(send_all(bare, std::string(1, '\0')));
  EXPECT_EQ(read_all(bare), "");
  close(bare);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  close(listener);
  EXPECT_TRUE(log.has(LogLevel::warning, "passed no TCP connection"));
  auto [fd, head] = http_connect(authority("127.0.0.1", echo_server.port()));
  EXPECT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  close(fd);
}

// ---- pmcp-net-bridge ----

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout
  int err = -1;  // its stderr
};

// Starts the bridge with args; its fd 3 is the write end of ready (when ready is not -1) and its
// fd 4 the given listener (when not -1).
Child spawn_bridge(const std::vector<std::string>& args, int ready = -1, int listener = -1) {
  int out[2], err[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (ready >= 0) posix_spawn_file_actions_adddup2(&actions, ready, 3);
  if (listener >= 0) posix_spawn_file_actions_adddup2(&actions, listener, 4);
  std::vector<char*> argv{const_cast<char*>(kBridge.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child c;
  EXPECT_EQ(posix_spawn(&c.pid, kBridge.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  c.out = out[0];
  c.err = err[0];
  return c;
}

// Waits for the child to exit (at most 10 s); returns its exit code, or -1.
int wait_exit(pid_t pid) {
  const auto until = Clock::now() + 10s;
  while (Clock::now() < until) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(10ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class BridgeTest : public ProxyTest {
 protected:
  // Starts the bridge on a free 127.0.0.1 port, forwarding to the proxy; waits for its ready
  // byte; returns the port.
  uint16_t start_bridge() {
    int ready[2];
    EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
    bridge_ = spawn_bridge(
        {"--listen", "127.0.0.1:0", "--connect", dir.path + "/proxy.sock", "--ready-fd", "3"},
        ready[1]);
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 10000), 1) << "no ready byte";
    char byte = 0;
    EXPECT_EQ(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    char buf[256] = {};
    const ssize_t n = read(bridge_.out, buf, sizeof buf - 1);  // written before the ready byte
    const std::string line(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    const std::string prefix = "listening on 127.0.0.1:";
    EXPECT_TRUE(line.starts_with(prefix)) << line;
    return static_cast<uint16_t>(std::stoi(line.substr(prefix.size())));
  }
  void TearDown() override {
    if (bridge_.pid > 0) {
      kill(bridge_.pid, SIGTERM);
      waitpid(bridge_.pid, nullptr, 0);
      close(bridge_.out);
      close(bridge_.err);
    }
  }
  Child bridge_;
};

TEST_F(BridgeTest, ForwardsHttpAndConnectToTheProxy) {
  Origin origin;
  LoopbackServer http_server([&](int fd) { origin.serve(fd); });
  LoopbackServer echo_server(echo);
  auto proxy =
      start({.allowed_domains = {"origin.test"}, .test_resolve = {{"origin.test", "127.0.0.1"}}});
  const uint16_t port = start_bridge();

  int fd = connect_tcp("127.0.0.1", port);
  ASSERT_GE(fd, 0);
  send_all(fd, "GET http://origin.test:" + std::to_string(http_server.port()) +
                   "/through-the-bridge HTTP/1.1\r\nHost: origin.test\r\n\r\n");
  const std::string response = read_all(fd);
  close(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_TRUE(response.ends_with("hello from /through-the-bridge")) << response;

  fd = connect_tcp("127.0.0.1", port);
  send_all(fd, "CONNECT origin.test:" + std::to_string(echo_server.port()) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_head(fd), "HTTP/1.1 200 Connection Established\r\n\r\n");
  const std::string big(1 << 20, 'z');  // more than the buffers on the way
  std::thread writer([&] {
    send_all(fd, big);
    shutdown(fd, SHUT_WR);
  });
  const std::string back = read_all(fd);
  writer.join();
  close(fd);
  EXPECT_EQ(back.size(), big.size());
  EXPECT_TRUE(back == big);

  fd = connect_tcp("127.0.0.1", port);
  send_all(fd, "CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(read_head(fd).starts_with("HTTP/1.1 403 Forbidden\r\n"));
  close(fd);
}

TEST_F(BridgeTest, CarriesEveryByteInOrderAndSurvivesAReset) {
  LoopbackServer echo_server(echo);
  LoopbackServer flood([](int fd) {
    const std::string chunk(1 << 16, 'f');
    for (int i = 0; i < 1024 && send_all(fd, chunk); ++i) {
    }
  });
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  const uint16_t port = start_bridge();
  const auto tunnel = [&](uint16_t target) {
    const int fd = connect_tcp("127.0.0.1", port);
    send_all(fd, "CONNECT " + authority("127.0.0.1", target) + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(read_head(fd), "HTTP/1.1 200 Connection Established\r\n\r\n");
    return fd;
  };
  const std::string data = pattern(8 << 20);
  int fd = tunnel(echo_server.port());
  const std::string back = echo_through(fd, data);
  close(fd);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the echoed bytes differ";

  fd = tunnel(flood.port());
  EXPECT_EQ(read_exact(fd, 1 << 20).size(), 1u << 20);
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  close(fd);

  fd = tunnel(echo_server.port());
  EXPECT_EQ(echo_through(fd, "still here"), "still here");
  close(fd);
  EXPECT_EQ(waitpid(bridge_.pid, nullptr, WNOHANG), 0) << "the bridge exited";
}

// --listen-fd: the sandbox launcher binds the port and starts the bridge beside the command. A
// client that connects before the bridge runs waits in the backlog and is served.
TEST_F(BridgeTest, ServesAnInheritedListenerAndWhatWaitedInItsBacklog) {
  LoopbackServer echo_server(echo);
  auto proxy = start({.allowed_domains = {"127.0.0.1"}});
  uint16_t port = 0;
  const int listener = listen_loopback(16, port);
  ASSERT_GE(listener, 0);

  const int early = connect_tcp("127.0.0.1", port);  // nobody accepts yet
  ASSERT_GE(early, 0);
  send_all(early, "CONNECT " + authority("127.0.0.1", echo_server.port()) + " HTTP/1.1\r\n\r\n");

  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  bridge_ = spawn_bridge({"--listen-fd", "4", "--connect", proxy->socket_path(), "--ready-fd", "3"},
                         ready[1], listener);
  close(ready[1]);
  close(listener);
  char byte = 0;
  EXPECT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);

  EXPECT_EQ(read_head(early), "HTTP/1.1 200 Connection Established\r\n\r\n");
  EXPECT_EQ(echo_through(early, "waited in the backlog"), "waited in the backlog");
  close(early);
  const int later = connect_tcp("127.0.0.1", port);
  ASSERT_GE(later, 0);
  send_all(later, "CONNECT " + authority("127.0.0.1", echo_server.port()) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_head(later), "HTTP/1.1 200 Connection Established\r\n\r\n");
  EXPECT_EQ(echo_through(later, "and after"), "and after");
  close(later);
}

TEST(Bridge, ArgumentErrors) {
  auto run = [](const std::vector<std::string>& args) {
    Child c = spawn_bridge(args);
    const std::string err = read_all(c.err);
    close(c.out);
    close(c.err);
    return std::make_pair(wait_exit(c.pid), err);
  };
  auto [code, err] = run({});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--listen"), std::string::npos) << err;
  std::tie(code, err) = run({"--listen", "127.0.0.1:99999", "--connect", "/x"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("127.0.0.1:99999"), std::string::npos) << err;
  std::tie(code, err) = run({"--listen", "localhost:80", "--connect", "/x"});
  EXPECT_EQ(code, 2);
  std::tie(code, err) = run({"--listen", "127.0.0.1:0"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--connect"), std::string::npos) << err;
  std::tie(code, err) = run({"--listen", "127.0.0.1:0", "--connect", std::string(200, 'p')});
  EXPECT_EQ(code, 2);
  std::tie(code, err) = run({"--listen", "127.0.0.1:0", "--connect", "/x", "--ready-fd", "77"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--ready-fd"), std::string::npos) << err;
  std::tie(code, err) = run({"--bogus"});
  EXPECT_EQ(code, 2);
  std::tie(code, err) = run({"--listen-fd", "1", "--connect", "/x"});  // a pipe, not a socket
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--listen-fd needs"), std::string::npos) << err;

  LoopbackServer taken(echo);  // its port is in use
  const std::string busy = "127.0.0.1:" + std::to_string(taken.port());
  std::tie(code, err) = run({"--listen", busy, "--connect", "/x"});
  EXPECT_EQ(code, 3);
  EXPECT_NE(err.find("cannot listen on " + busy), std::string::npos) << err;
}

}  // namespace
}  // namespace pmcp::netpolicy
