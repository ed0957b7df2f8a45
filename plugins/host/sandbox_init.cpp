// pmcp-sandbox-init: the first program of ours inside a host sandbox (run by bubblewrap).
//
// bubblewrap builds the namespaces and the mount view; this launcher finishes the job and then
// gets out of the way of the command:
//   - it binds the network bridge's port (when the policy allows any network) and starts the
//     bridge on it beside the command: the command can connect at once (its connection waits
//     in the backlog), and the start is reported only once the bridge runs;
//   - it forks the command into a session of its own, with the PTY slave as its controlling
//     terminal in PTY mode (so ^C, ^Z, SIGWINCH and job control work; bubblewrap's
//     --new-session is not used, it would take the terminal away);
//   - in the command, before exec: no-new-privs and the seccomp filter (seccomp_filter.cpp);
//   - it tells the supervisor the command's pid (through the kernel's SCM_CREDENTIALS, which
//     translates it into the supervisor's PID namespace), whether the exec worked, and the
//     command's exact wait status when it ends, signals included.
// When the command ends, the launcher exits; bubblewrap's init then ends and the kernel kills
// everything left in the PID namespace.
//
// The launcher and the bridge run without the filter (the bridge must reach the proxy's unix
// socket). The command cannot take them over: ptrace is blocked, and both are not dumpable, so
// /proc/PID/mem and pidfd_getfd are refused too.
//
// argv: pmcp-sandbox-init TAG probe
//       pmcp-sandbox-init TAG pty|pipe CWD --pwd=VALUE|--no-pwd
//                         [--bridge PROGRAM SOCKET PORT] -- COMMAND [ARG...]
// fds:  2 = bubblewrap's messages to the supervisor, 3 = the channel to the supervisor, over
//       which the command's stdio arrives first (protocol.hpp, kStdio).
// PWD: bubblewrap sets it; the command gets it as the executor was given it, or not at all.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "protocol.hpp"
#include "seccomp_filter.hpp"

extern char** environ;

namespace {

namespace proto = pmcp::host::proto;

void send_record(int32_t kind, int32_t a, int32_t b, const std::string& text = {}) {
  char buf[proto::kMaxMessage];
  const proto::Record r{kind, a, b};
  std::memcpy(buf, &r, sizeof r);
  const std::size_t n = std::min(text.size(), sizeof buf - sizeof r);
  std::memcpy(buf + sizeof r, text.data(), n);
  while (send(proto::kSandboxChannelFd, buf, sizeof r + n, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void fail_text(const std::string& text) {
  send_record(proto::kFailedText, proto::kStageSandbox, 0, text);
  _exit(127);
}

[[noreturn]] void child_fail(int errfd, int32_t stage) {
  const proto::Record r{proto::kFailed, stage, errno};
  ssize_t ignored = write(errfd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

void null_stdio(int first, int last) {
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return;
  for (int fd = first; fd <= last; ++fd) dup2(devnull, fd);
  if (devnull > last) close(devnull);
}

// Listens on 127.0.0.1:port in the sandbox's network namespace, for the bridge. Binding here,
// before the command starts, lets the command connect at once: a connection waits in the
// backlog until the bridge, started beside the command, accepts it.
int listen_loopback(const char* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, SOMAXCONN) != 0)
    fail_text("the sandbox's network bridge cannot listen on 127.0.0.1:" + std::string(port) +
              ": " + std::strerror(errno));
  return fd;
}

struct Bridge {
  pid_t pid = -1;
  int ready = -1;  // the bridge writes one byte here once it runs
};

// Starts the bridge on the listening socket; does not wait for it (see wait_bridge).
Bridge start_bridge(const char* program, const char* socket_path, int listener) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) fail_text(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) fail_text(std::string("cannot fork the network bridge: ") + std::strerror(errno));
  if (pid == 0) {
    close(ready[0]);
    null_stdio(0, 2);
    // Not close-on-exec: the bridge takes both.
    const int ready_fd = fcntl(ready[1], F_DUPFD, 5);
    const int listen_fd = fcntl(listener, F_DUPFD, 5);
    if (ready_fd < 0 || listen_fd < 0) _exit(127);
    const std::string ready_text = std::to_string(ready_fd);
    const std::string listen_text = std::to_string(listen_fd);
    const char* argv[] = {program,     "--listen-fd", listen_text.c_str(), "--connect",
                          socket_path, "--ready-fd",  ready_text.c_str(),  nullptr};
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execve(program, const_cast<char**>(argv), environ);
    _exit(127);
  }
  close(ready[1]);
  return Bridge{pid, ready[0]};
}

// Waits until the bridge runs. On failure, ends the command (already started) and reports why.
void wait_bridge(const Bridge& bridge, const char* program, pid_t command) {
  pollfd p{bridge.ready, POLLIN, 0};
  int rc = 0;
  do {
    rc = poll(&p, 1, 10000);
  } while (rc < 0 && errno == EINTR);
  char byte = 0;
  const ssize_t n = rc > 0 ? read(bridge.ready, &byte, 1) : -1;
  close(bridge.ready);
  if (n == 1) return;
  kill(-command, SIGKILL);
  kill(command, SIGKILL);
  kill(bridge.pid, SIGKILL);
  int st = 0;
  waitpid(bridge.pid, &st, 0);
  std::string how = rc == 0 ? "it was not ready within 10 s" : "it exited";
  if (WIFEXITED(st)) how += " with status " + std::to_string(WEXITSTATUS(st));
  fail_text("the sandbox's network bridge '" + std::string(program) + "' did not start (" + how +
            ")");
}

// Takes the command's stdio from the supervisor's first message and puts it on fds 0-2.
void receive_stdio() {
  proto::Record r{};
  int fds[3] = {-1, -1, -1};
  char control[CMSG_SPACE(sizeof fds)];
  iovec iov{&r, sizeof r};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = -1;
  do {
    n = recvmsg(proto::kSandboxChannelFd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  cmsghdr* c = n == static_cast<ssize_t>(sizeof r) ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (r.kind != proto::kStdio || c == nullptr || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof fds))
    fail_text("the sandbox launcher did not receive the command's stdio");
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  for (int i = 0; i < 3; ++i) {
    if (dup2(fds[i], i) < 0) fail_text(std::string("dup2: ") + std::strerror(errno));
  }
  for (int fd : fds) {
    if (fd > 2) close(fd);
  }
}

// Reads the command's exec report: a Record when it failed before exec, end of file when it
// exec'd. Returns true and fills r on failure.
bool read_failure(int errfd, proto::Record& r) {
  for (;;) {
    const ssize_t n = read(errfd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof r);
  }
}

[[noreturn]] void run_command(int errfd, bool pty, const char* cwd, char** argv,
                              pmcp::host::SeccompFilter& filter) {
  if (setsid() < 0) child_fail(errfd, proto::kStageSetsid);
  if (pty && ioctl(0, TIOCSCTTY, 0) < 0) child_fail(errfd, proto::kStageTerminal);
  // The kernel attaches our credentials; the supervisor learns our pid as it sees it.
  const proto::Record hello{proto::kPid, 0, 0};
  while (send(proto::kSandboxChannelFd, &hello, sizeof hello, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (chdir(cwd) < 0) child_fail(errfd, proto::kStageChdir);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(errfd, proto::kStageSeccomp);
  const int e = filter.load();
  if (e != 0) {
    errno = e;
    child_fail(errfd, proto::kStageSeccomp);
  }
  execvpe(argv[0], argv, environ);
  child_fail(errfd, proto::kStageExec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], proto::kSandboxInitTag) == 0 &&
      std::strcmp(argv[2], "probe") == 0) {
    // Checks that the filter builds and loads here; used when the executor is created.
    pmcp::host::SeccompFilter filter;
    if (!filter.error().empty()) {
      std::fprintf(stderr, "%s\n", filter.error().c_str());
      return 1;
    }
    const int e = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? errno : filter.load();
    if (e != 0) {
      std::fprintf(stderr, "cannot load the seccomp filter: %s\n", std::strerror(e));
      return 1;
    }
    return 0;
  }
  int sep = 5;
  while (sep < argc && std::strcmp(argv[sep], "--") != 0) ++sep;
  if (argc < 6 || std::strcmp(argv[1], proto::kSandboxInitTag) != 0 || sep + 1 >= argc) {
    std::fprintf(stderr,
                 "%s: internal helper of the process-mcp host sandbox, not meant to be run by "
                 "hand\n",
                 argv[0] != nullptr ? argv[0] : proto::kSandboxInitName);
    return 2;
  }
  const bool pty = std::strcmp(argv[2], "pty") == 0;
  const char* cwd = argv[3];
  const char* bridge = nullptr;
  const char* socket_path = nullptr;
  const char* port = nullptr;
  if (std::strncmp(argv[4], "--pwd=", 6) == 0)
    setenv("PWD", argv[4] + 6, 1);
  else
    unsetenv("PWD");
  if (sep == 9 && std::strcmp(argv[5], "--bridge") == 0) {
    bridge = argv[6];
    socket_path = argv[7];
    port = argv[8];
  }
  char** command = argv + sep + 1;

  if (fcntl(proto::kSandboxChannelFd, F_SETFD, FD_CLOEXEC) < 0) return 2;
  receive_stdio();
  // Not dumpable: the command may not read or write our memory through /proc.
  prctl(PR_SET_DUMPABLE, 0);
  // Orphans of the command come to us, not to bubblewrap's init.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);

  pmcp::host::SeccompFilter filter;
  if (!filter.error().empty()) fail_text(filter.error());
  Bridge bridge_process;
  if (bridge != nullptr) {
    const int listener = listen_loopback(port);
    bridge_process = start_bridge(bridge, socket_path, listener);
    close(listener);  // the bridge holds it; the command must not
  }

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) fail_text(std::string("pipe: ") + std::strerror(errno));
  const pid_t child = fork();
  if (child < 0) {
    send_record(proto::kFailed, proto::kStageFork, errno);
    return 1;
  }
  if (child == 0) {
    close(errpipe[0]);
    run_command(errpipe[1], pty, cwd, command, filter);
  }
  close(errpipe[1]);
  // The command's stdio must end when its own holders end.
  null_stdio(0, 2);

  proto::Record r{};
  const bool failed = read_failure(errpipe[0], r);
  close(errpipe[0]);
  if (failed) {
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    send_record(proto::kFailed, r.a, r.b);
    return 0;
  }
  if (bridge != nullptr) wait_bridge(bridge_process, bridge, child);
  send_record(proto::kStarted, 0, 0);
  for (;;) {
    int st = 0;
    const pid_t done = waitpid(-1, &st, 0);
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return 0;
    if (done == child) {
      send_record(proto::kExited, st, 0);
      return 0;  // bubblewrap's init ends with us and takes everything else along
    }
  }
}
