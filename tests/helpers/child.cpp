// pmcp-test-child: a small, predictable program for tests that run real processes.
//
//   echo ARGS...       prints the arguments separated by spaces, then a newline
//   exit N             exits with status N
//   sleep MS           sleeps MS milliseconds, exits 0
//   spam N             writes N bytes of a fixed printable pattern (child_pattern.hpp)
//   stderr TEXT        prints TEXT and a newline on stderr
//   ignore-term MS     ignores SIGTERM, prints "ready", sleeps MS milliseconds
//   cat                copies stdin to stdout until end of file
//   prompt TEXT        prints TEXT (no newline), reads a line, prints "got: LINE"; until EOF
//   tty                prints "tty yes|no", "TERM <value>" and "size ROWS COLS"
//   winch              prints "ready", then "size ROWS COLS" on every SIGWINCH; until killed
//   pgid               prints "pid P pgid G sid S"
//   fork-sleep MS      forks a grandchild that sleeps MS; prints "parent P child C"; sleeps MS
//   env                prints the environment, one NAME=value a line
//   pwd                prints the working directory
//   fds                prints the open file descriptors (from /proc/self/fd), one a line
// For the sandbox tests, each prints one line: what worked, or the call and its error text.
//   connect IP PORT    TCP connect to an IPv4 or IPv6 literal: "connected" / "connect: ERROR"
//   listen PORT        listens on 127.0.0.1:PORT: "listening" / "listen: ERROR"; then accepts
//                      and closes connections until killed
//   unix-connect PATH  connect to a unix socket: "connected" / "socket: ERROR" / "connect: ..."
//   socketpair         "socketpair ok" / "socketpair: ERROR"
//   tiocsti            pushes a byte into the terminal's input: "tiocsti ok" / "tiocsti: ERROR"
//   kill PID           kill(PID, 0): "kill ok" / "kill: ERROR"
//   proxy-get PORT URL GET URL through the HTTP proxy on 127.0.0.1:PORT: the status line
//   syscalls           tries calls a sandbox refuses: "NAME ok" / "NAME: ERROR", one a line
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "child_pattern.hpp"

// In a sanitizer build this program also runs inside the host sandbox, whose seccomp filter
// blocks ptrace; LeakSanitizer needs ptrace at exit and would fail every run there. Its leaks
// are not what the tests look for, so LeakSanitizer is off for it (AddressSanitizer stays on).
extern "C" int __lsan_is_turned_off() { return 1; }

extern char** environ;

namespace {

void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::_Exit(3);  // stdout went away
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void out(const std::string& s) { write_all(1, s.data(), s.size()); }

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

long number(const char* s) { return s != nullptr ? std::strtol(s, nullptr, 10) : 0; }

std::string window_size(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return "none";
  return std::to_string(ws.ws_row) + " " + std::to_string(ws.ws_col);
}

volatile sig_atomic_t g_winch = 0;

std::string result(const char* what, long rc) {
  if (rc >= 0) return std::string(what) + " ok\n";
  return std::string(what) + ": " + std::strerror(errno) + "\n";
}

int connect_ip(const char* ip, const char* port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(number(port)));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(number(port)));
    len = sizeof *v6;
  } else {
    return -1;
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int usage() {
  std::fprintf(stderr, "usage: pmcp-test-child MODE [ARGS...] (see child.cpp)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  const char* arg = argc > 2 ? argv[2] : nullptr;

  if (mode == "echo") {
    std::string line;
    for (int i = 2; i < argc; ++i) {
      if (i > 2) line += ' ';
      line += argv[i];
    }
    out(line + "\n");
    return 0;
  }
  if (mode == "exit") return static_cast<int>(number(arg));
  if (mode == "sleep") {
    sleep_ms(number(arg));
    return 0;
  }
  if (mode == "spam") {
    const long long total = std::strtoll(arg != nullptr ? arg : "0", nullptr, 10);
    std::vector<char> buf(1 << 16);
    long long offset = 0;
    while (offset < total) {
      size_t n = 0;
      while (n < buf.size() && offset + static_cast<long long>(n) < total) {
        buf[n] = pmcp::test::spam_byte(static_cast<uint64_t>(offset) + n);
        ++n;
      }
      write_all(1, buf.data(), n);
      offset += static_cast<long long>(n);
    }
    return 0;
  }
  if (mode == "stderr") {
    const std::string text = std::string(arg != nullptr ? arg : "") + "\n";
    write_all(2, text.data(), text.size());
    return 0;
  }
  if (mode == "ignore-term") {
    signal(SIGTERM, SIG_IGN);
    out("ready\n");
    sleep_ms(number(arg));
    return 0;
  }
  if (mode == "cat") {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return n == 0 ? 0 : 1;
      write_all(1, buf, static_cast<size_t>(n));
    }
  }
  if (mode == "prompt") {
    const std::string text = arg != nullptr ? arg : "> ";
    std::string line;
    out(text);
    for (;;) {
      char c;
      const ssize_t n = read(0, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      if (c == '\n') {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out("got: " + line + "\n");
        line.clear();
        out(text);
      } else {
        line += c;
      }
    }
  }
  if (mode == "tty") {
    const char* term = std::getenv("TERM");
    out(std::string("tty ") + (isatty(0) ? "yes" : "no") + "\n");
    out(std::string("TERM ") + (term != nullptr ? term : "(unset)") + "\n");
    out("size " + window_size(0) + "\n");
    return 0;
  }
  if (mode == "winch") {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_winch = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, nullptr);
    // SIGWINCH stays blocked except inside sigsuspend, so that none is lost in between.
    sigset_t block;
    sigset_t wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGWINCH);
    out("ready\n");
    for (;;) {
      sigsuspend(&wait_mask);
      if (g_winch != 0) {
        g_winch = 0;
        out("size " + window_size(0) + "\n");
      }
    }
  }
  if (mode == "pgid") {
    out("pid " + std::to_string(getpid()) + " pgid " + std::to_string(getpgrp()) + " sid " +
        std::to_string(getsid(0)) + "\n");
    return 0;
  }
  if (mode == "fork-sleep") {
    const long ms = number(arg);
    const pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
      sleep_ms(ms);
      std::_Exit(0);
    }
    out("parent " + std::to_string(getpid()) + " child " + std::to_string(child) + "\n");
    sleep_ms(ms);
    waitpid(child, nullptr, 0);
    return 0;
  }
  if (mode == "connect" && argc > 3) {
    const int fd = connect_ip(argv[2], argv[3]);
    out(fd >= 0 ? "connected\n" : std::string("connect: ") + std::strerror(errno) + "\n");
    return fd >= 0 ? 0 : 1;
  }
  if (mode == "listen" && arg != nullptr) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::atoi(arg)));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || listen(fd, 16) < 0) {
      out(std::string("listen: ") + std::strerror(errno) + "\n");
      return 1;
    }
    out("listening\n");
    for (;;) {
      const int c = accept(fd, nullptr, nullptr);
      if (c >= 0) close(c);
    }
  }
  if (mode == "unix-connect" && arg != nullptr) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out(std::string("socket: ") + std::strerror(errno) + "\n");
      return 1;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", arg);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      out(std::string("connect: ") + std::strerror(errno) + "\n");
      return 1;
    }
    out("connected\n");
    return 0;
  }
  if (mode == "socketpair") {
    int sv[2];
    const int rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    out(result("socketpair", rc));
    return rc < 0 ? 1 : 0;
  }
  if (mode == "tiocsti") {
    const char c = '#';
    const int rc = ioctl(0, TIOCSTI, &c);
    out(result("tiocsti", rc));
    return rc < 0 ? 1 : 0;
  }
  if (mode == "kill" && arg != nullptr) {
    const int rc = kill(static_cast<pid_t>(number(arg)), 0);
    out(result("kill", rc));
    return rc < 0 ? 1 : 0;
  }
  if (mode == "proxy-get" && argc > 3) {
    const int fd = connect_ip("127.0.0.1", argv[2]);
    if (fd < 0) {
      out(std::string("connect: ") + std::strerror(errno) + "\n");
      return 1;
    }
    const std::string url = argv[3];
    const std::size_t host_at = url.find("://");
    const std::string host = url.substr(host_at + 3, url.find('/', host_at + 3) - host_at - 3);
    const std::string request =
        "GET " + url + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    write_all(fd, request.data(), request.size());
    std::string response;
    char buf[4096];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      response.append(buf, static_cast<size_t>(n));
    }
    const std::size_t eol = response.find("\r\n");
    out((eol == std::string::npos ? response : response.substr(0, eol)) + "\n");
    const std::size_t body = response.find("\r\n\r\n");
    if (body != std::string::npos) out(response.substr(body + 4) + "\n");
    return 0;
  }
  if (mode == "syscalls") {
    out(result("io_uring_setup", syscall(SYS_io_uring_setup, 1, nullptr)));
    out(result("bpf", syscall(SYS_bpf, 0, nullptr, 0)));
    out(result("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0)));
    out(result("unshare", syscall(SYS_unshare, CLONE_NEWUSER)));
    out(result("mount", mount("none", "/tmp", "tmpfs", 0, nullptr)));
    out(result("ptrace", ptrace(PTRACE_ATTACH, getppid(), nullptr, nullptr)));
    out(result("setns", syscall(SYS_setns, 0, 0)));
    out(result("userfaultfd", syscall(SYS_userfaultfd, 0)));
    out(result("perf_event_open", syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0)));
    out(result("clone3", syscall(SYS_clone3, nullptr, 0)));
    // A clone with a namespace flag must fail; without one it works (fork).
    const long pid = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
    out(result("clone-newnet", pid));
    const pid_t plain = fork();
    if (plain == 0) _exit(0);
    if (plain > 0) waitpid(plain, nullptr, 0);
    out(result("fork", plain));
    return 0;
  }
  if (mode == "env") {
    for (char** e = environ; *e != nullptr; ++e) out(std::string(*e) + "\n");
    return 0;
  }
  if (mode == "pwd") {
    char buf[4096];
    if (getcwd(buf, sizeof buf) == nullptr) return 1;
    out(std::string(buf) + "\n");
    return 0;
  }
  if (mode == "fds") {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return 1;
    const int own = dirfd(dir);
    std::string list;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      if (std::atoi(e->d_name) == own) continue;
      list += std::string(e->d_name) + "\n";
    }
    closedir(dir);
    out(list);
    return 0;
  }
  return usage();
}
