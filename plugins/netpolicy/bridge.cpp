// pmcp-net-bridge: runs inside a sandbox's network namespace and hands every TCP connection it
// accepts on loopback to the filtering proxy over the proxy's unix socket, which is the
// namespace's only way out. Commands in the sandbox use it as their HTTP(S)/SOCKS5 proxy.
//
//   pmcp-net-bridge --listen 127.0.0.1:PORT [--listen [::1]:PORT ...] --connect PROXY_SOCKET
//                   [--ready-fd N]
//   pmcp-net-bridge --listen-fd N ...   (a socket already listening, inherited as fd N)
//
// Once every listener is bound it writes one byte to fd N and closes it, so a launcher can wait
// for that before it starts the command. A listener asked for port 0 gets a free port, printed
// to stdout as "listening on ADDRESS:PORT" before the ready byte. It runs until it is killed.
//
// It is linked statically and uses only system calls (no name service, no dynamic loading), so
// the same binary runs in any Linux image whatever its libc. One thread, epoll. It carries no
// bytes itself: each connection it accepts is handed to the proxy whole, as the first thing on
// a unix connection of its own (one NUL byte with the TCP socket attached, SCM_RIGHTS), and the
// proxy serves that socket directly. So bytes cross one relay (the proxy's), not two, and a
// half-close or a reset reaches the proxy as it happened.
//
// Exit codes: 2 bad arguments, 3 a listener cannot be bound, 4 the ready byte cannot be written,
// 1 an unexpected system failure. It does not exit on its own otherwise.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pmcp/fd_passing.hpp"

namespace {

constexpr int kExitSystem = 1;
constexpr int kExitUsage = 2;
constexpr int kExitListen = 3;
constexpr int kExitReady = 4;

const char kUsage[] =
    "usage: pmcp-net-bridge --listen ADDRESS:PORT [--listen ADDRESS:PORT ...] --connect "
    "PROXY_SOCKET [--ready-fd N]\n"
    "  ADDRESS is an IPv4 address or an IPv6 address in brackets, e.g. 127.0.0.1:3128 or "
    "[::1]:3128\n"
    "  --listen-fd N instead of (or beside) --listen: a TCP socket that already listens, "
    "inherited as fd N\n";

[[noreturn]] void usage_error(const char* what, const char* value) {
  std::fprintf(stderr, "pmcp-net-bridge: %s%s%s\n%s", what, value ? ": " : "", value ? value : "",
               kUsage);
  std::exit(kExitUsage);
}

struct Listen {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;
  int fd = -1;
};

// Parses "1.2.3.4:80" or "[::1]:80" into a socket address; false when malformed.
bool parse_listen(const char* value, Listen& out) {
  std::string s(value);
  std::string host;
  std::string port;
  bool v6 = false;
  if (!s.empty() && s[0] == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    v6 = true;
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const long number = std::strtol(port.c_str(), nullptr, 10);
  if (number > 65535) return false;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out.address);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(number));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return false;
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&out.address);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(number));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return false;
    out.length = sizeof(sockaddr_in);
  }
  out.text = s;
  return true;
}

uint16_t bound_port(int fd) {
  sockaddr_storage a{};
  socklen_t length = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0) return 0;
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

class Bridge {
 public:
  Bridge(std::vector<Listen> listens, sockaddr_un proxy)
      : listens_(std::move(listens)), proxy_(proxy) {}

  int run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return fail("epoll_create1");
    watch_listeners(true);
    std::vector<epoll_event> events(16);
    for (;;) {
      int timeout = -1;
      if (paused_until_ > 0) {
        timeout = static_cast<int>(paused_until_ - now_ms());
        if (timeout <= 0) {
          paused_until_ = 0;
          watch_listeners(true);
          timeout = -1;
        }
      }
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("epoll_wait");
      }
      for (int i = 0; i < n && paused_until_ == 0; ++i) accept_all(events[i].data.u32);
    }
  }

 private:
  static int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }

  int fail(const char* what) {
    std::fprintf(stderr, "pmcp-net-bridge: %s: %s\n", what, std::strerror(errno));
    return kExitSystem;
  }

  void watch_listeners(bool on) {
    for (std::size_t i = 0; i < listens_.size(); ++i) {
      if (on) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(epoll_, EPOLL_CTL_ADD, listens_[i].fd, &ev);
      } else {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, listens_[i].fd, nullptr);
      }
    }
  }

  void accept_all(std::size_t index) {
    for (;;) {
      const int client =
          accept4(listens_[index].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors or memory: stop accepting for a moment instead of spinning.
          std::fprintf(stderr, "pmcp-net-bridge: accept: %s\n", std::strerror(errno));
          watch_listeners(false);
          paused_until_ = now_ms() + 100;
        }
        return;
      }
      hand_over(client);
    }
  }

  // Hands the accepted connection to the proxy on a unix connection of its own, then lets go of
  // both: from here on the proxy alone holds the client's socket.
  void hand_over(int client) {
    const int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The proxy accepts at once; a blocking connect keeps this simple and is never long.
    const int upstream = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (upstream < 0 ||
        connect(upstream, reinterpret_cast<const sockaddr*>(&proxy_), sizeof proxy_) != 0) {
      std::fprintf(stderr, "pmcp-net-bridge: cannot connect to %s: %s\n", proxy_.sun_path,
                   std::strerror(errno));
    } else {
      const char marker = '\0';
      const pmcp::fdpass::Outgoing out(&marker, 1, &client, 1);
      if (pmcp::fdpass::send(upstream, out, MSG_NOSIGNAL) != 1) {
        std::fprintf(stderr, "pmcp-net-bridge: cannot pass a connection to %s: %s\n",
                     proxy_.sun_path, std::strerror(errno));
      }
    }
    if (upstream >= 0) close(upstream);
    close(client);
  }

  std::vector<Listen> listens_;
  sockaddr_un proxy_;
  int epoll_ = -1;
  int64_t paused_until_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  // Not dumpable: in a sandbox, the command beside us (same user) must not take us over
  // through /proc/PID/mem or pidfd_getfd; we may open unix sockets, it may not.
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  std::vector<Listen> listens;
  const char* connect_path = nullptr;
  int ready_fd = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg != "--listen" && arg != "--listen-fd" && arg != "--connect" && arg != "--ready-fd") {
      usage_error("unknown argument", argv[i]);
    }
    if (i + 1 >= argc) usage_error("missing value after", argv[i]);
    const char* value = argv[++i];
    if (arg == "--listen") {
      Listen l;
      if (!parse_listen(value, l)) usage_error("--listen needs ADDRESS:PORT, not", value);
      listens.push_back(l);
    } else if (arg == "--listen-fd") {
      char* end = nullptr;
      const long fd = std::strtol(value, &end, 10);
      int listening = 0;
      socklen_t size = sizeof listening;
      if (*value == '\0' || *end != '\0' || fd < 0 || fd > 1 << 20 ||
          getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 ||
          listening == 0) {
        usage_error("--listen-fd needs the number of an inherited, listening socket, not", value);
      }
      Listen l;
      l.fd = static_cast<int>(fd);
      l.text = std::string("fd ") + value;
      fcntl(l.fd, F_SETFD, FD_CLOEXEC);
      fcntl(l.fd, F_SETFL, fcntl(l.fd, F_GETFL) | O_NONBLOCK);
      listens.push_back(l);
    } else if (arg == "--connect") {
      if (connect_path) usage_error("--connect given twice", nullptr);
      if (*value == '\0' || std::strlen(value) >= sizeof(sockaddr_un::sun_path)) {
        usage_error("--connect needs a unix socket path of 1 to 107 bytes, not", value);
      }
      connect_path = value;
    } else {
      char* end = nullptr;
      const long fd = std::strtol(value, &end, 10);
      if (*value == '\0' || *end != '\0' || fd < 0 || fd > 1 << 20) {
        usage_error("--ready-fd needs a file descriptor number, not", value);
      }
      if (fcntl(static_cast<int>(fd), F_GETFD) < 0) {
        usage_error("--ready-fd is not an open file descriptor", value);
      }
      ready_fd = static_cast<int>(fd);
    }
  }
  if (listens.empty()) usage_error("at least one --listen or --listen-fd is needed", nullptr);
  if (!connect_path) usage_error("--connect is needed", nullptr);

  sockaddr_un proxy{};
  proxy.sun_family = AF_UNIX;
  std::memcpy(proxy.sun_path, connect_path, std::strlen(connect_path) + 1);

  for (auto& l : listens) {
    if (l.fd >= 0) continue;  // --listen-fd: listens already
    l.fd = socket(l.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (l.fd >= 0) {
      setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (l.address.ss_family == AF_INET6)
        setsockopt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (l.fd < 0 || bind(l.fd, reinterpret_cast<sockaddr*>(&l.address), l.length) != 0 ||
        listen(l.fd, SOMAXCONN) != 0) {
      std::fprintf(stderr, "pmcp-net-bridge: cannot listen on %s: %s\n", l.text.c_str(),
                   std::strerror(errno));
      return kExitListen;
    }
  }
  for (const auto& l : listens) {
    if (bound_port(l.fd) != 0 && l.text.ends_with(":0")) {
      const std::string text =
          l.text.substr(0, l.text.size() - 1) + std::to_string(bound_port(l.fd));
      std::printf("listening on %s\n", text.c_str());
    }
  }
  std::fflush(stdout);
  if (ready_fd >= 0) {
    ssize_t n;
    do {
      n = write(ready_fd, "r", 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      std::fprintf(stderr, "pmcp-net-bridge: cannot write the ready byte to fd %d: %s\n", ready_fd,
                   std::strerror(errno));
      return kExitReady;
    }
    close(ready_fd);
  }
  return Bridge(std::move(listens), proxy).run();
}
