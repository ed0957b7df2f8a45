// pmcp-net-bridge: runs inside a sandbox's network namespace and forwards every TCP connection
// it accepts on loopback, byte for byte, to the filtering proxy's unix socket, which is the
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
// the same binary runs in any Linux image whatever its libc. One thread, epoll edge-triggered;
// per connection and direction the bytes move socket -> pipe -> socket with splice(2), so they
// are never copied into this process (a 256 KiB buffer is used instead where a pipe cannot be
// made or splice is refused); a half-close is passed on to the other side.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr int kExitSystem = 1;
constexpr int kExitUsage = 2;
constexpr int kExitListen = 3;
constexpr int kExitReady = 4;
constexpr std::size_t kBufferBytes = 256 * 1024;

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

// Bytes travelling one way, from one socket to the other: through a pipe with splice(2), or,
// when no pipe could be made or the kernel refuses to splice these sockets, through a buffer.
struct Direction {
  int pipe_read = -1;
  int pipe_write = -1;
  std::size_t capacity = kBufferBytes;  // of the pipe or the buffer
  std::size_t held = 0;                 // bytes in the pipe
  std::unique_ptr<char[]> buffer;       // the copying fallback
  std::size_t begin = 0;
  std::size_t end = 0;
  bool eof = false;   // the source said end of file
  bool shut = false;  // and it was passed on as shutdown(SHUT_WR)

  Direction() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      use_buffer();
      return;
    }
    pipe_read = fds[0];
    pipe_write = fds[1];
    fcntl(pipe_write, F_SETPIPE_SZ, static_cast<int>(kBufferBytes));  // may be refused
    const int size = fcntl(pipe_write, F_GETPIPE_SZ);
    capacity = size > 0 ? static_cast<std::size_t>(size) : 4096;
  }
  Direction(const Direction&) = delete;
  Direction& operator=(const Direction&) = delete;
  ~Direction() { close_pipe(); }

  bool spliced() const { return pipe_read >= 0; }
  void close_pipe() {
    if (pipe_read >= 0) close(pipe_read);
    if (pipe_write >= 0) close(pipe_write);
    pipe_read = pipe_write = -1;
  }
  // Only before a byte went through the pipe.
  void use_buffer() {
    close_pipe();
    capacity = kBufferBytes;
    buffer.reset(new char[kBufferBytes]);
  }
};

struct Connection;

// What an epoll event points at: a listener (connection == nullptr) or one side of a connection.
struct Tag {
  Connection* connection = nullptr;
  int side = 0;
};

struct Connection {
  int fd[2] = {-1, -1};  // 0: the TCP client, 1: the proxy's unix socket
  Direction way[2];      // way[s] reads fd[s] and writes fd[1 - s]
  Tag tag[2];
  bool dead = false;
};

class Bridge {
 public:
  Bridge(std::vector<Listen> listens, sockaddr_un proxy)
      : listens_(std::move(listens)), proxy_(proxy) {}

  int run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return fail("epoll_create1");
    listen_tags_.resize(listens_.size());
    watch_listeners(true);
    std::vector<epoll_event> events(64);
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
      for (int i = 0; i < n; ++i) {
        auto* tag = static_cast<Tag*>(events[i].data.ptr);
        if (tag->connection == nullptr) {
          accept_all(static_cast<std::size_t>(tag->side));
        } else if (!tag->connection->dead) {
          progress(*tag->connection, (events[i].events & EPOLLERR) != 0);
        }
      }
      graveyard_.clear();
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
        listen_tags_[i] = Tag{nullptr, static_cast<int>(i)};
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &listen_tags_[i];
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
      open_connection(client);
    }
  }

  void open_connection(int client) {
    const int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The proxy accepts at once; a blocking connect keeps this simple and is never long.
    const int upstream = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (upstream < 0 ||
        connect(upstream, reinterpret_cast<const sockaddr*>(&proxy_), sizeof proxy_) != 0 ||
        fcntl(upstream, F_SETFL, fcntl(upstream, F_GETFL) | O_NONBLOCK) != 0) {
      std::fprintf(stderr, "pmcp-net-bridge: cannot connect to %s: %s\n", proxy_.sun_path,
                   std::strerror(errno));
      if (upstream >= 0) close(upstream);
      close(client);
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd[0] = client;
    connection->fd[1] = upstream;
    for (int s = 0; s < 2; ++s) {
      connection->tag[s] = Tag{connection.get(), s};
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = &connection->tag[s];
      epoll_ctl(epoll_, EPOLL_CTL_ADD, connection->fd[s], &ev);
    }
    Connection& c = *connection;
    live_.push_back(std::move(connection));
    progress(c, false);
  }

  enum class Step { idle, moved, failed };

  static Step splice_step(Direction& d, int from, int to) {
    Step step = Step::idle;
    if (!d.eof && d.held < d.capacity) {
      const ssize_t n = splice(from, nullptr, d.pipe_write, nullptr, d.capacity - d.held,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.held += static_cast<std::size_t>(n);
        step = Step::moved;
      } else if (n == 0) {
        d.eof = true;
        step = Step::moved;
      } else if (d.held == 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        d.use_buffer();  // these sockets cannot be spliced: copy from now on
        return copy_step(d, from, to);
      } else if (errno != EAGAIN && errno != EINTR) {
        return Step::failed;
      }
    }
    if (d.held > 0) {
      const ssize_t n =
          splice(d.pipe_read, nullptr, to, nullptr, d.held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.held -= static_cast<std::size_t>(n);
        step = Step::moved;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return Step::failed;
      }
    }
    return step;
  }

  static Step copy_step(Direction& d, int from, int to) {
    Step step = Step::idle;
    if (!d.eof && d.end < d.capacity) {
      const ssize_t n = read(from, d.buffer.get() + d.end, d.capacity - d.end);
      if (n > 0) {
        d.end += static_cast<std::size_t>(n);
        step = Step::moved;
      } else if (n == 0) {
        d.eof = true;
        step = Step::moved;
      } else if (errno != EAGAIN && errno != EINTR) {
        return Step::failed;
      }
    }
    if (d.begin < d.end) {
      const ssize_t n = send(to, d.buffer.get() + d.begin, d.end - d.begin, MSG_NOSIGNAL);
      if (n > 0) {
        d.begin += static_cast<std::size_t>(n);
        if (d.begin == d.end) d.begin = d.end = 0;
        step = Step::moved;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return Step::failed;
      }
    }
    return step;
  }

  // Moves what can move without blocking, until nothing does. With edge-triggered events that
  // is required: a read stopped by a full buffer is retried when the write side drains.
  void progress(Connection& c, bool error) {
    if (error) return finish(c);
    for (bool moved = true; moved;) {
      moved = false;
      for (int s = 0; s < 2; ++s) {
        Direction& d = c.way[s];
        const int from = c.fd[s];
        const int to = c.fd[1 - s];
        const Step step = d.spliced() ? splice_step(d, from, to) : copy_step(d, from, to);
        if (step == Step::failed) return finish(c);
        if (step == Step::moved) moved = true;
        if (d.eof && d.held == 0 && d.begin == d.end && !d.shut) {
          shutdown(to, SHUT_WR);
          d.shut = true;
        }
      }
    }
    if (c.way[0].shut && c.way[1].shut) finish(c);
  }

  void finish(Connection& c) {
    c.dead = true;
    close(c.fd[0]);
    close(c.fd[1]);
    for (auto it = live_.begin(); it != live_.end(); ++it) {
      if (it->get() == &c) {
        // Freed after the current batch of events, which may still point at it.
        graveyard_.push_back(std::move(*it));
        *it = std::move(live_.back());
        live_.pop_back();
        break;
      }
    }
  }

  std::vector<Listen> listens_;
  std::vector<Tag> listen_tags_;
  sockaddr_un proxy_;
  int epoll_ = -1;
  int64_t paused_until_ = 0;
  std::vector<std::unique_ptr<Connection>> live_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
};

}  // namespace

int main(int argc, char** argv) {
  // Not dumpable: in a sandbox, the command beside us (same user) must not take us over
  // through /proc/PID/mem or pidfd_getfd; we may open unix sockets, it may not.
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  // Each connection holds two sockets and two pipes: use the descriptors the hard limit allows.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
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
