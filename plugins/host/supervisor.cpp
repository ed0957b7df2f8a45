// pmcp-host-supervisor: one small process per command started by the host executor.
//
// Why it exists: the server must leave nothing behind when it exits, crashes or is SIGKILLed,
// and a signal must reach the whole job. So every command runs under a supervisor that
//   - dies with the server: PR_SET_PDEATHSIG (armed before exec by the executor thread that
//     forked us) and end of file on the control socket both mean "the server is gone";
//   - is a child subreaper, so orphaned descendants of the command are re-parented to it;
//   - forks the command into its own session and process group (with the PTY slave as its
//     controlling terminal in PTY mode) and reports its pid, or why it could not start;
//   - delivers signals to the command's process group on request;
//   - when the command exits, or the server goes away, SIGKILLs what is left of its process
//     group and every adopted descendant, reaps them, and only then reports the exit.
//
// With a sandbox (argv carries the bubblewrap command line), the child execs bubblewrap, which
// runs pmcp-sandbox-init, which forks the command; see run_sandboxed() below.
//
// It is exec'd (not a forked copy of the server) so that it holds no copy-on-write snapshot of
// the server's memory and no inherited state; it is single-threaded and may use all of libc.
//
// Residual limits: a descendant that escapes the subtree entirely (started through a service
// manager such as systemd-run or at, or handed off to a daemon over a socket) is not ours to
// kill; a process stuck in uninterruptible sleep may outlive the bounded sweep; and if the
// supervisor itself is SIGKILLed, only the command's main process dies with it (through its own
// PR_SET_PDEATHSIG), not the rest of its group.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "protocol.hpp"

extern char** environ;

namespace {

namespace proto = pmcp::host::proto;

constexpr int kSweepBudgetMs = 2000;

void send_record(int32_t kind, int32_t a, int32_t b) {
  const proto::Record r{kind, a, b};
  while (send(proto::kSocketFd, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// In the child between fork and exec: report the failed step to the supervisor and die.
[[noreturn]] void child_fail(int errfd, int32_t stage) {
  const proto::Record r{proto::kFailed, stage, errno};
  ssize_t ignored = write(errfd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

[[noreturn]] void run_child(int errfd, bool pty, const char* cwd, char** argv, pid_t supervisor) {
  if (setsid() < 0) child_fail(errfd, proto::kStageSetsid);
  // The slave is already fd 0; as session leader we make it our controlling terminal, so that
  // ^C, ^Z and SIGWINCH reach our foreground process group through the line discipline.
  if (pty && ioctl(0, TIOCSCTTY, 0) < 0) child_fail(errfd, proto::kStageTerminal);
  // Should the supervisor die (it should not), the main process goes with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(127);
  if (chdir(cwd) < 0) child_fail(errfd, proto::kStageChdir);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // KILL, STOP: harmless EINVAL
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Our environment is the command's exact environment, so PATH lookup uses its PATH.
  execvpe(argv[0], argv, environ);
  child_fail(errfd, proto::kStageExec);
}

// Closes every descriptor from `first` up.
void close_from(int first) {
  if (syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (long fd = first; fd < max; ++fd) close(static_cast<int>(fd));
}

void drain_signalfd(int sigfd) {
  signalfd_siginfo si{};
  while (read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
  }
}

// Sends SIGKILL to every child of ours (the main process and descendants re-parented to us as
// subreaper). Returns the number of children found, or -1 when the list is unreadable.
int kill_children() {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/children", static_cast<int>(getpid()));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int found = 0;
  long value = 0;
  bool in_number = false;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        value = value * 10 + (buf[i] - '0');
        in_number = true;
      } else if (in_number) {
        kill(static_cast<pid_t>(value), SIGKILL);
        ++found;
        value = 0;
        in_number = false;
      }
    }
  }
  if (in_number) {
    kill(static_cast<pid_t>(value), SIGKILL);
    ++found;
  }
  close(fd);
  return found;
}

// Kills what is left of the job: its process group and every process that ended up as our
// child, and reaps them all; gives up after budget_ms (a process stuck in the kernel).
void sweep(pid_t group, int sigfd, int budget_ms) {
  const int64_t deadline = now_ms() + budget_ms;
  for (;;) {
    if (group > 0) kill(-group, SIGKILL);
    kill_children();
    for (;;) {
      const pid_t r = waitpid(-1, nullptr, WNOHANG);
      if (r > 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == ECHILD) return;  // nothing left at all
      break;
    }
    if (now_ms() >= deadline) return;
    pollfd p{sigfd, POLLIN, 0};
    poll(&p, 1, 20);
    drain_signalfd(sigfd);
  }
}

[[noreturn]] void kill_all_and_exit(pid_t child, bool child_reaped, int sigfd) {
  if (!child_reaped) {
    kill(-child, SIGKILL);
    kill(child, SIGKILL);
  }
  sweep(child, sigfd, kSweepBudgetMs);
  _exit(0);
}

// Reads the child's exec report: a Record when it failed before exec, end of file when it
// exec'd. Returns true and fills r on failure.
bool read_failure(int errfd, proto::Record& r) {
  for (;;) {
    const ssize_t n = read(errfd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof r);
  }
}

// ---- sandboxed commands ----
//
// The child execs bubblewrap, which runs pmcp-sandbox-init, which forks the command. bubblewrap
// and the launcher stay in the child's session (no terminal); the command gets a session of its
// own inside the sandbox. Signals go to the command's process group, whose pid the command sends
// us itself (the kernel translates it). The exit status comes from the launcher, which waits
// for the command: bubblewrap's own status cannot tell "killed by SIGINT" from "exit 130".

[[noreturn]] void exec_sandbox(int errfd, int channel, int bwrap_log, char** argv, bool pty,
                               pid_t supervisor) {
  if (setsid() < 0) child_fail(errfd, proto::kStageSetsid);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(127);
  // fd 0 = /dev/null, 1 = /dev/null or the PTY slave, 2 = bubblewrap's messages, 3 = the
  // launcher's channel. The command's stdio travels over the channel. bubblewrap binds a
  // terminal on its fd 1 as /dev/console, so that ttyname() and tty(1) work in the sandbox.
  errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
  channel = fcntl(channel, F_DUPFD, 10);
  bwrap_log = fcntl(bwrap_log, F_DUPFD, 10);
  const int devnull = open("/dev/null", O_RDWR);
  if (errfd < 0 || channel < 0 || bwrap_log < 0 || devnull < 0 ||
      dup2(channel, proto::kSandboxChannelFd) < 0 || dup2(devnull, 0) < 0 ||
      (!pty && dup2(devnull, 1) < 0) || dup2(bwrap_log, 2) < 0)
    child_fail(errfd >= 0 ? errfd : 2, proto::kStageSetup);
  close(channel);
  close(devnull);
  close(bwrap_log);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execv(argv[0], argv);
  child_fail(errfd, proto::kStageSandboxExec);
}

// Reads what the signalfd holds and reaps every child that has ended. Returns true when a
// signal other than SIGCHLD arrived (parent death or a stop request); records the wait status
// of `child` when it is among the reaped.
bool drain_signals_and_reap(int sigfd, pid_t child, bool& child_reaped, int& child_status) {
  bool terminate = false;
  signalfd_siginfo si{};
  while (read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo != SIGCHLD) terminate = true;
  }
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(-1, &st, WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (r == child) {
      child_reaped = true;
      child_status = st;
    }
  }
  return terminate;
}

void send_text(int32_t stage, int32_t err, const std::string& text) {
  char buf[proto::kMaxMessage];
  const proto::Record r{proto::kFailedText, stage, err};
  std::memcpy(buf, &r, sizeof r);
  const std::size_t n = std::min(text.size(), sizeof buf - sizeof r);
  std::memcpy(buf + sizeof r, text.data(), n);
  while (send(proto::kSocketFd, buf, sizeof r + n, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

[[noreturn]] void run_sandboxed(char** sandbox, long sandbox_argc, char** command, bool pty,
                                int sigfd) {
  std::vector<char*> args(sandbox, sandbox + sandbox_argc);
  for (char** c = command; *c != nullptr; ++c) args.push_back(*c);
  args.push_back(nullptr);

  int errpipe[2];
  int channel[2];
  int log_pipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel) < 0 ||
      pipe2(log_pipe, O_CLOEXEC) < 0) {
    send_record(proto::kFailed, proto::kStageSetup, errno);
    _exit(1);
  }
  const int on = 1;
  setsockopt(channel[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  const pid_t self = getpid();
  const pid_t child = fork();
  if (child < 0) {
    send_record(proto::kFailed, proto::kStageFork, errno);
    _exit(1);
  }
  if (child == 0) exec_sandbox(errpipe[1], channel[1], log_pipe[1], args.data(), pty, self);
  close(errpipe[1]);
  close(channel[1]);
  close(log_pipe[1]);
  {
    const proto::Record r{proto::kStdio, 0, 0};
    const int fds[3] = {0, 1, 2};
    char control[CMSG_SPACE(sizeof fds)] = {};
    iovec iov{const_cast<proto::Record*>(&r), sizeof r};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(channel[0], &msg, MSG_NOSIGNAL) < 0) {
      send_record(proto::kFailed, proto::kStageSetup, errno);
      kill(child, SIGKILL);
      _exit(1);
    }
  }
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
    if (devnull > 2) close(devnull);
  }
  fcntl(channel[0], F_SETFL, O_NONBLOCK);
  fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);

  int errfd = errpipe[0];
  int chan = channel[0];
  int logfd = log_pipe[0];
  std::string log_text;
  pid_t command_pid = 0;
  bool started = false;
  bool have_status = false;
  int launcher_status = 0;
  bool have_failure = false;
  std::string failure;  // a whole kFailed / kFailedText message
  bool child_reaped = false;
  int child_status = 0;
  bool exited_early = false;  // the launcher reported the command's end

  const auto read_log = [&] {
    char buf[1024];
    for (;;) {
      const ssize_t n = read(logfd, buf, sizeof buf);
      if (n > 0) {
        if (log_text.size() < 2048) log_text.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        close(logfd);
        logfd = -1;
      }
      return;
    }
  };
  const auto read_channel = [&] {
    for (;;) {
      char buf[proto::kMaxMessage];
      char control[CMSG_SPACE(sizeof(ucred))];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = recvmsg(chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        close(chan);
        chan = -1;
        return;
      }
      if (n < static_cast<ssize_t>(sizeof(proto::Record))) continue;
      proto::Record r{};
      std::memcpy(&r, buf, sizeof r);
      switch (r.kind) {
        case proto::kPid:
          for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
              ucred cred{};
              std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
              command_pid = cred.pid;
            }
          }
          break;
        case proto::kStarted:
          if (!started && command_pid > 0) {
            started = true;
            send_record(proto::kStarted, static_cast<int32_t>(command_pid), 0);
          }
          break;
        case proto::kFailed:
        case proto::kFailedText:
          if (!started && !have_failure) {
            have_failure = true;
            failure.assign(buf, static_cast<std::size_t>(n));
          }
          break;
        case proto::kExited:
          if (!have_status) {
            have_status = true;
            launcher_status = r.a;
            exited_early = true;
          }
          break;
        default:
          break;
      }
    }
  };

  for (;;) {
    pollfd fds[5] = {{proto::kSocketFd, POLLIN, 0},
                     {sigfd, POLLIN, 0},
                     {errfd, POLLIN, 0},  // poll skips the negative (closed) ones
                     {chan, POLLIN, 0},
                     {logfd, POLLIN, 0}};
    if (poll(fds, 5, -1) < 0) {
      if (errno == EINTR) continue;
      kill_all_and_exit(child, child_reaped, sigfd);
    }
    if (errfd >= 0 && fds[2].revents != 0) {
      proto::Record r{};
      const bool failed = read_failure(errfd, r);
      close(errfd);
      errfd = -1;
      if (failed) {
        if (!child_reaped) {
          while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
          }
        }
        send_record(proto::kFailed, r.a, r.b);
        _exit(0);
      }
    }
    if (chan >= 0 && fds[3].revents != 0) read_channel();
    if (logfd >= 0 && fds[4].revents != 0) read_log();

    bool terminate = false;
    if (fds[1].revents != 0 && drain_signals_and_reap(sigfd, child, child_reaped, child_status))
      terminate = true;
    if (fds[0].revents != 0) {
      proto::Command c{};
      const ssize_t n = recv(proto::kSocketFd, &c, sizeof c, MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(sizeof c)) {
        if (c.op == proto::kOpSignal && !child_reaped && !have_status) {
          if (command_pid > 0) {
            if (kill(-command_pid, c.arg) < 0 && errno == ESRCH) kill(command_pid, c.arg);
          } else {
            kill(child, c.arg);  // still setting up: the sandbox as a whole
          }
        }
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        terminate = true;
      }
    }
    if (terminate) kill_all_and_exit(child, child_reaped, sigfd);

    if (exited_early && !child_reaped) {
      // The command has ended. Its sandbox goes now: SIGKILL to bubblewrap's group reaches
      // the sandbox's init, and with it the kernel kills everything in the PID namespace. The
      // exit is reported at once, without waiting for the namespaces to be torn down; the
      // executor still waits for the end of the output, which only the dead can hold.
      kill(-child, SIGKILL);
      send_record(proto::kExited, launcher_status, 0);
      shutdown(proto::kSocketFd, SHUT_RDWR);
      sweep(child, sigfd, kSweepBudgetMs);
      _exit(0);
    }

    if (child_reaped) {
      // bubblewrap is gone, and with it the whole PID namespace.
      if (chan >= 0) read_channel();
      if (errfd >= 0) {
        proto::Record r{};
        if (read_failure(errfd, r)) {
          send_record(proto::kFailed, r.a, r.b);
          _exit(0);
        }
      }
      sweep(child, sigfd, kSweepBudgetMs);
      if (!started) {
        if (have_failure) {
          while (send(proto::kSocketFd, failure.data(), failure.size(), MSG_NOSIGNAL) < 0 &&
                 errno == EINTR) {
          }
          _exit(0);
        }
        for (int i = 0; i < 50 && logfd >= 0; ++i) {
          pollfd p{logfd, POLLIN, 0};
          poll(&p, 1, 10);
          read_log();
        }
        std::string why = trim(log_text);
        if (why.empty()) {
          why = "the sandbox (bubblewrap) ended before the command started";
          if (WIFEXITED(child_status))
            why += " (exit status " + std::to_string(WEXITSTATUS(child_status)) + ")";
          if (WIFSIGNALED(child_status))
            why += " (killed by signal " + std::to_string(WTERMSIG(child_status)) + ")";
        }
        send_text(proto::kStageSandbox, 0, why);
        _exit(0);
      }
      send_record(proto::kExited, have_status ? launcher_status : child_status, 0);
      _exit(0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // argv: supervisor TAG MODE CWD SERVER_PID N [SANDBOX_ARG x N] COMMAND [ARG...]
  // With N > 0 the command runs under SANDBOX_ARG... (bubblewrap and its launcher).
  const long sandbox_argc = argc >= 7 ? std::strtol(argv[5], nullptr, 10) : -1;
  if (argc < 7 || std::strcmp(argv[1], proto::kTag) != 0 || sandbox_argc < 0 ||
      sandbox_argc > argc - 7) {
    std::fprintf(stderr,
                 "%s: internal helper of the process-mcp host executor, not meant to be run "
                 "by hand\n",
                 argv[0] != nullptr ? argv[0] : proto::kSupervisorName);
    return 2;
  }
  const bool pty = std::strcmp(argv[2], "pty") == 0;
  const char* cwd = argv[3];
  const pid_t server = static_cast<pid_t>(std::strtol(argv[4], nullptr, 10));
  char** sandbox = argv + 6;
  char** command = argv + 6 + sandbox_argc;

  // The executor thread started us with every signal blocked; a pending SIGTERM from the
  // parent-death signal stays pending and shows up on the signalfd below.
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&handled, s);
  sigprocmask(SIG_SETMASK, &handled, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (fcntl(proto::kSocketFd, F_SETFD, FD_CLOEXEC) < 0) return 2;
  close_from(proto::kSocketFd + 1);  // whatever else the server leaked without O_CLOEXEC

  const int sigfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    send_record(proto::kFailed, proto::kStageSetup, errno);
    return 1;
  }
  if (getppid() != server) return 0;  // the server died before we armed everything

  if (sandbox_argc > 0) run_sandboxed(sandbox, sandbox_argc, command, pty, sigfd);

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    send_record(proto::kFailed, proto::kStageSetup, errno);
    return 1;
  }
  const pid_t self = getpid();
  const pid_t child = fork();
  if (child < 0) {
    send_record(proto::kFailed, proto::kStageFork, errno);
    return 1;
  }
  if (child == 0) {
    close(errpipe[0]);
    run_child(errpipe[1], pty, cwd, command, self);
  }
  close(errpipe[1]);

  // Drop our copies of the child's stdio: its output must end when it and its group end.
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
    if (devnull > 2) close(devnull);
  } else {
    for (int fd = 0; fd < 3; ++fd) close(fd);
  }

  int errfd = errpipe[0];
  bool child_reaped = false;
  int status = 0;

  // Consumes the exec report; on failure reports it and exits.
  auto settle_start = [&] {
    proto::Record r{};
    const bool failed = read_failure(errfd, r);
    close(errfd);
    errfd = -1;
    if (failed) {
      if (!child_reaped) {
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
      }
      send_record(proto::kFailed, r.a, r.b);
      _exit(0);
    }
    send_record(proto::kStarted, static_cast<int32_t>(child), 0);
  };

  for (;;) {
    pollfd fds[3] = {{proto::kSocketFd, POLLIN, 0}, {sigfd, POLLIN, 0}, {errfd, POLLIN, 0}};
    const nfds_t count = errfd >= 0 ? 3 : 2;
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      kill_all_and_exit(child, child_reaped, sigfd);
    }
    if (errfd >= 0 && fds[2].revents != 0) settle_start();

    bool terminate = false;
    // A signal other than SIGCHLD is the parent's death or a stop request.
    if (fds[1].revents != 0 && drain_signals_and_reap(sigfd, child, child_reaped, status))
      terminate = true;
    if (fds[0].revents != 0) {
      proto::Command c{};
      const ssize_t n = recv(proto::kSocketFd, &c, sizeof c, MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(sizeof c)) {
        if (c.op == proto::kOpSignal && !child_reaped) {
          // Before the child's setsid() there is no group yet: signal the child itself.
          if (kill(-child, c.arg) < 0 && errno == ESRCH) kill(child, c.arg);
        }
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        terminate = true;  // the server closed its end: it is gone or destroying us
      }
    }
    if (terminate) kill_all_and_exit(child, child_reaped, sigfd);

    if (child_reaped) {
      if (errfd >= 0) settle_start();  // the child is dead, so the report is complete
      // The main process has ended: nothing of its job may outlive it.
      sweep(child, sigfd, kSweepBudgetMs);
      send_record(proto::kExited, status, 0);
      _exit(0);
    }
  }
}
