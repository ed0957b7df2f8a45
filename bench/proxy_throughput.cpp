// Download throughput through the filtering proxy (plugins/netpolicy) beside a direct loopback
// connection: a local server sends N MB, read through an HTTP CONNECT tunnel on the proxy's unix
// socket, through pmcp-net-bridge (loopback TCP -> bridge -> unix socket -> proxy), and
// directly. A fourth path, "relay", is the floor of any relay whose client side is loopback TCP,
// as a sandboxed command's is: a bare blocking splice(2) loop with no policy and no event loop.
// Prints the median of several runs per path, its ratio to direct, and one JSON line.
//
//   pmcp-bench-proxy-throughput [--short] [megabytes=100] [runs=5]
//   --short: 10 MB, 3 runs (a quick check that every path works)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "pmcp/netpolicy/proxy.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kChunk = 256 * 1024;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pmcp-bench-proxy-throughput: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A TCP socket listening on a free loopback port; sets `port`.
int listen_loopback(const char* who, uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t length = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    die(std::string(who) + " listen");
  }
  port = ntohs(a.sin_port);
  return fd;
}

// Serves `bytes` bytes to every connection, then closes it.
class Source {
 public:
  explicit Source(std::size_t bytes) : bytes_(bytes) {
    fd_ = listen_loopback("source", port_);
    thread_ = std::thread([this] {
      std::vector<char> data(kChunk, 'x');
      for (;;) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::thread([c, &data, this] {
          std::size_t left = bytes_;
          while (left > 0) {
            const ssize_t n = send(c, data.data(), std::min(left, data.size()), MSG_NOSIGNAL);
            if (n <= 0) break;
            left -= static_cast<std::size_t>(n);
          }
          close(c);
        }).detach();
      }
    });
  }
  ~Source() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  std::size_t bytes_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Relays each accepted loopback TCP connection from a fresh connection to `upstream`, one way,
// with blocking splice(2) through a pipe: the least work a relay can do per byte.
class Relay {
 public:
  explicit Relay(uint16_t upstream) : upstream_(upstream) {
    fd_ = listen_loopback("relay", port_);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        std::thread([client, this] {
          const int from = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          const sockaddr_in a = loopback(upstream_);
          int p[2];
          if (connect(from, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 &&
              pipe2(p, O_CLOEXEC) == 0) {
            fcntl(p[1], F_SETPIPE_SZ, 256 * 1024);
            for (;;) {
              const ssize_t n = splice(from, nullptr, p[1], nullptr, 256 * 1024, SPLICE_F_MOVE);
              if (n <= 0) break;
              ssize_t held = n;
              while (held > 0) {
                const ssize_t m = splice(p[0], nullptr, client, nullptr,
                                         static_cast<std::size_t>(held), SPLICE_F_MOVE);
                if (m <= 0) break;
                held -= m;
              }
              if (held > 0) break;
            }
            close(p[0]);
            close(p[1]);
          }
          close(from);
          close(client);
        }).detach();
      }
    });
  }
  ~Relay() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  uint16_t upstream_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

int connect_tcp(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = loopback(port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) die("connect");
  return fd;
}

int connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect " + path);
  return fd;
}

// Sends CONNECT and reads the reply head byte by byte (so no payload is consumed).
void http_connect(int fd, uint16_t port) {
  const std::string request = "CONNECT 127.0.0.1:" + std::to_string(port) + " HTTP/1.1\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    die("send CONNECT");
  }
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && read(fd, &c, 1) == 1) head += c;
  if (!head.starts_with("HTTP/1.1 200")) {
    std::fprintf(stderr, "CONNECT refused: %s\n", head.c_str());
    std::exit(1);
  }
}

// Reads to end of file; returns MB/s (10^6 bytes) from the start of the connection.
double download(const std::function<int()>& open, std::size_t expected) {
  static std::vector<char> buffer(kChunk);
  const auto t = Clock::now();
  const int fd = open();
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t).count();
  close(fd);
  if (got != expected) {
    std::fprintf(stderr, "short download: %zu of %zu bytes\n", got, expected);
    std::exit(1);
  }
  return static_cast<double>(got) / 1e6 / seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Starts the bridge on a free loopback port; returns its pid and port once it is ready.
std::pair<pid_t, uint16_t> start_bridge(const std::string& socket_path) {
  int ready[2], out[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const std::string bridge = PMCP_NET_BRIDGE_PATH;
  std::vector<std::string> args{bridge,       "--listen", "127.0.0.1:0", "--connect", socket_path,
                                "--ready-fd", "3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, bridge.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
    die("spawn " + bridge);
  }
  posix_spawn_file_actions_destroy(&actions);
  close(ready[1]);
  close(out[1]);
  char byte;
  if (read(ready[0], &byte, 1) != 1) die("bridge not ready");
  char line[128] = {};
  if (read(out[0], line, sizeof line - 1) <= 0) die("bridge port");
  close(ready[0]);
  close(out[0]);
  const char* colon = std::strrchr(line, ':');
  return {pid, static_cast<uint16_t>(std::atoi(colon + 1))};
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  const bool quick = argc > 1 && std::string(argv[1]) == "--short";
  if (quick) ++arg;
  const std::size_t megabytes = argc > arg ? std::strtoul(argv[arg], nullptr, 10)
                                : quick    ? 10
                                           : 100;
  const int runs = argc > arg + 1 ? std::max(1, std::atoi(argv[arg + 1])) : quick ? 3 : 5;
  const std::size_t bytes = megabytes * 1000 * 1000;
  signal(SIGPIPE, SIG_IGN);

  char tmpl[] = "/tmp/pmcp-bench-proxy-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string socket_path = dir + "/proxy.sock";
  Source source(bytes);
  Relay relay(source.port());
  auto proxy =
      pmcp::netpolicy::Proxy::start({.allowed_domains = {"127.0.0.1"}}, socket_path, nullptr);
  const auto [bridge_pid, bridge_port] = start_bridge(socket_path);

  struct Path {
    const char* name;
    std::function<int()> open;
    std::vector<double> rates;
  };
  std::vector<Path> paths{
      {"direct", [&] { return connect_tcp(source.port()); }, {}},
      {"proxy",
       [&] {
         const int fd = connect_unix(socket_path);
         http_connect(fd, source.port());
         return fd;
       },
       {}},
      {"bridge",
       [&] {
         const int fd = connect_tcp(bridge_port);
         http_connect(fd, source.port());
         return fd;
       },
       {}},
      {"relay", [&] { return connect_tcp(relay.port()); }, {}},
  };
  for (int r = 0; r < runs; ++r) {  // interleaved, so that load on the machine hits all alike
    for (auto& p : paths) p.rates.push_back(download(p.open, bytes));
  }
  kill(bridge_pid, SIGTERM);
  waitpid(bridge_pid, nullptr, 0);
  proxy->stop();
  std::filesystem::remove_all(dir);

  const double direct = median(paths[0].rates);
  std::printf("%zu MB download over loopback, median of %d runs\n", megabytes, runs);
  std::printf("%-8s %12s %10s\n", "path", "MB/s", "of direct");
  for (const auto& p : paths) {
    std::printf("%-8s %12.0f %9.0f%%\n", p.name, median(p.rates), 100 * median(p.rates) / direct);
  }
  std::printf(
      "{\"bench\":\"proxy_throughput\",\"megabytes\":%zu,\"runs\":%d,\"direct_mbps\":%.0f,"
      "\"proxy_mbps\":%.0f,\"bridge_mbps\":%.0f,\"relay_mbps\":%.0f,\"proxy_ratio\":%.3f,"
      "\"bridge_ratio\":%.3f,\"relay_ratio\":%.3f}\n",
      megabytes, runs, direct, median(paths[1].rates), median(paths[2].rates),
      median(paths[3].rates), median(paths[1].rates) / direct, median(paths[2].rates) / direct,
      median(paths[3].rates) / direct);
  return 0;
}
