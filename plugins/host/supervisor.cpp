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
// Sandboxed commands do not use it: the sandbox's own init starts them (sandbox_init.cpp).
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

#include "job.hpp"
#include "protocol.hpp"

extern char** environ;

namespace {

namespace proto = pmcp::host::proto;
using pmcp::host::job::close_from;
using pmcp::host::job::sweep;

constexpr int kSweepBudgetMs = 2000;

void send_record(int32_t kind, int32_t a, int32_t b) {
  const proto::Record r{kind, a, b};
  while (send(proto::kSocketFd, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
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

}  // namespace

int main(int argc, char** argv) {
  // argv: supervisor TAG MODE CWD SERVER_PID COMMAND [ARG...]
  if (argc < 6 || std::strcmp(argv[1], proto::kTag) != 0) {
    std::fprintf(stderr,
                 "%s: internal helper of the process-mcp host executor, not meant to be run "
                 "by hand\n",
                 argv[0] != nullptr ? argv[0] : proto::kSupervisorName);
    return 2;
  }
  const bool pty = std::strcmp(argv[2], "pty") == 0;
  const char* cwd = argv[3];
  const pid_t server = static_cast<pid_t>(std::strtol(argv[4], nullptr, 10));
  char** command = argv + 5;

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
