// pmcp-host-supervisor: one long-lived process per host executor that starts, watches and ends
// all its commands. In the sandbox it is the sandbox's init (run by bubblewrap as PID 1 of its
// PID namespace); without, a plain child of the server.
//
// Why one long-lived process: a command must run in its own session under something that
// kills what is left of its job when it ends, delivers signals to its process group, and dies
// with the server; and starting a command must cost as little as possible. Forking this small
// static program per command costs a fraction of exec'ing a helper (or bubblewrap) per command,
// and in the sandbox the commands of one server share what a user expects them to share: /tmp,
// and the sandbox's loopback network, so that a server started by one command can be reached by
// the next.
//
// The supervisor (main):
//   - in the sandbox (--sandbox), binds the network bridge's port (when the policy allows any
//     network) and starts the bridge on it, then sets no-new-privs and loads the seccomp filter
//     (seccomp_filter.cpp) on itself, once: every launcher and command inherits both;
//   - reports kReady on the control socket;
//   - keeps one launcher forked ahead of the next command, past its prologue (the spare,
//     spare_launcher()); for each kLaunch message on the control socket, hands the descriptors
//     that came with it to the spare and forks the next spare, or, without a spare (killed, or
//     a fork failed), forks a launcher with them; reaps launchers, and kills and reaps orphans
//     (it is a subreaper, or the namespace's init) that a launcher killed from outside left
//     behind;
//   - on end of file on the control socket (the executor retired this supervisor, or is gone),
//     takes no more commands, lets the spare go, and exits when its last launcher has (in the
//     sandbox, that ends the namespace). The bridge dying retires the sandbox the same way: the
//     executor starts a new one.
//
// A launcher (one per command, a forked copy of the supervisor) speaks to the executor on the
// command's own channel (protocol.hpp): it makes a terminal for a PTY command (in the sandbox,
// in the sandbox's devpts) and sends its master over (kTerminal), starts the command
// (vfork-style, start_command) in a session of its own with the terminal as its controlling
// terminal (^C, ^Z, SIGWINCH and job control work; bubblewrap's --new-session is not used),
// delivers signals to its process group, and when it ends kills what is left of the job (its
// group and, as a subreaper, adopted descendants) before it reports the exact wait status. End
// of file on the channel (the server is gone, or destroys the job) and the supervisor's death
// kill the job at once. In the
// sandbox, the command sends one message before exec so that the kernel attaches its
// credentials and the executor learns its pid as the server sees it (kPid); without, the
// launcher's view of the pid is the server's, and kStarted carries it.
//
// In the sandbox only the bridge runs without the filter (it must reach the proxy's unix
// socket). A command cannot take the bridge, the supervisor or a launcher over: ptrace is
// blocked, and none of them is dumpable, so /proc/PID/mem and pidfd_getfd are refused too. As
// the namespace's init, the supervisor gets no signal from inside it that it does not ask for.
//
// Residual limits: a descendant that escapes the subtree entirely (started through a service
// manager such as systemd-run or at, or handed off to a daemon over a socket) is not ours to
// kill, and a process stuck in uninterruptible sleep may outlive the bounded sweep.
//
// argv: pmcp-host-supervisor TAG serve [--sandbox [--bridge PROGRAM SOCKET PORT]]
// fds:  1 and 2 = messages to the executor until kReady (bubblewrap's), 3 = the control socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "job.hpp"
#include "pmcp/fd_passing.hpp"
#include "protocol.hpp"
#include "seccomp_filter.hpp"

extern char** environ;

namespace {

namespace proto = pmcp::host::proto;
namespace job = pmcp::host::job;
namespace fdpass = pmcp::fdpass;

constexpr int kControl = proto::kControlFd;
constexpr int kSweepBudgetMs = 2000;
// The name (comm) of the spare launcher while it waits for a command.
constexpr const char* kSpareName = "pmcp-spare";

// Set once in main: the supervisor is the sandbox's init, in a PID namespace of its own.
bool in_sandbox = false;

void send_record(int fd, int32_t kind, int32_t a, int32_t b, const std::string& text = {}) {
  if (text.empty()) {
    const proto::Record r{kind, a, b};
    while (send(fd, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
    return;
  }
  char buf[proto::kMaxMessage];
  const proto::Record r{kind, a, b};
  std::memcpy(buf, &r, sizeof r);
  const std::size_t n = std::min(text.size(), sizeof buf - sizeof r);
  std::memcpy(buf + sizeof r, text.data(), n);
  while (send(fd, buf, sizeof r + n, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// Sends a Record with one descriptor attached.
void send_fd(int fd, int32_t kind, int attached) {
  const proto::Record r{kind, 0, 0};
  const fdpass::Outgoing out(&r, sizeof r, &attached, 1);
  fdpass::send(fd, out, MSG_NOSIGNAL);
}

// The supervisor could not set up: says why on the control socket and ends.
[[noreturn]] void fail_text(const std::string& text) {
  send_record(kControl, proto::kFailedText, proto::kStageSandbox, 0, text);
  _exit(1);
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

void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // KILL, STOP: harmless EINVAL
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// ---- the network bridge ----

// Listens on 127.0.0.1:port in the sandbox's network namespace, for the bridge.
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

// Starts the bridge on the listening socket and waits until it runs. Returns its pid.
pid_t start_bridge(const char* program, const char* socket_path, const char* port) {
  const int listener = listen_loopback(port);
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) fail_text(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) fail_text(std::string("cannot fork the network bridge: ") + std::strerror(errno));
  if (pid == 0) {
    close(ready[0]);
    null_stdio(0, 2);
    reset_signals();
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
  close(listener);  // the bridge holds it; the commands must not
  pollfd p{ready[0], POLLIN, 0};
  int rc = 0;
  do {
    rc = poll(&p, 1, 10000);
  } while (rc < 0 && errno == EINTR);
  char byte = 0;
  const ssize_t n = rc > 0 ? read(ready[0], &byte, 1) : -1;
  close(ready[0]);
  if (n == 1) return pid;
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  std::string how = rc == 0 ? "it was not ready within 10 s" : "it exited";
  if (WIFEXITED(st)) how += " with status " + std::to_string(WEXITSTATUS(st));
  fail_text("the sandbox's network bridge '" + std::string(program) + "' did not start (" + how +
            ")");
}

// ---- a launcher: one command ----

// The launch spec, parsed in place: cwd, argv and envp point into text, whose fields are
// NUL-terminated already. One allocation for all of it keeps a launcher's own pages few (each
// of the 1,000 launchers of 1,000 live processes holds its copy).
struct Spec {
  bool pty = false;
  unsigned short cols = 80;
  unsigned short rows = 24;
  std::string text;
  const char* cwd = nullptr;
  std::vector<char*> argv;  // null-terminated
  std::vector<char*> envp;  // null-terminated
};

// Reads the launch spec (protocol.hpp, kLaunch) from its memfd. False when it is malformed.
bool read_spec(int fd, Spec& spec) {
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size > (off_t{1} << 30)) return false;
  spec.text.resize(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < spec.text.size()) {
    const ssize_t n =
        pread(fd, spec.text.data() + got, spec.text.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  if (spec.text.back() != '\0') return false;
  std::size_t at = 0;
  const auto next = [&]() -> char* {
    if (at >= spec.text.size()) return nullptr;
    char* field = spec.text.data() + at;
    at += std::strlen(field) + 1;
    return field;
  };
  const char* mode = next();
  const char* cols = next();
  const char* rows = next();
  spec.cwd = next();
  const char* count = next();
  if (count == nullptr) return false;
  spec.pty = std::strcmp(mode, "pty") == 0;
  spec.cols = static_cast<unsigned short>(std::strtoul(cols, nullptr, 10));
  spec.rows = static_cast<unsigned short>(std::strtoul(rows, nullptr, 10));
  const std::size_t argc = std::strtoul(count, nullptr, 10);
  if (argc == 0 || argc > spec.text.size()) return false;
  spec.argv.reserve(argc + 1);
  for (std::size_t k = 0; k < argc; ++k) {
    char* arg = next();
    if (arg == nullptr) return false;
    spec.argv.push_back(arg);
  }
  spec.argv.push_back(nullptr);
  count = next();
  if (count == nullptr) return false;
  const std::size_t envc = std::strtoul(count, nullptr, 10);
  if (envc > spec.text.size()) return false;
  spec.envp.reserve(envc + 1);
  for (std::size_t k = 0; k < envc; ++k) {
    char* entry = next();
    if (entry == nullptr) return false;
    spec.envp.push_back(entry);
  }
  spec.envp.push_back(nullptr);
  return at == spec.text.size();
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

// In the command's process, between its start (start_command) and its exec.
[[noreturn]] void run_command(int errfd, int channel, Spec& spec) {
  if (setsid() < 0) child_fail(errfd, proto::kStageSetsid);
  if (spec.pty && ioctl(0, TIOCSCTTY, 0) < 0) child_fail(errfd, proto::kStageTerminal);
  if (in_sandbox) {
    // The kernel attaches our credentials; the executor learns our pid as it sees it.
    const proto::Record hello{proto::kPid, 0, 0};
    while (send(channel, &hello, sizeof hello, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
  }
  // Should the launcher die (it should not), the main process goes with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (chdir(spec.cwd) < 0) child_fail(errfd, proto::kStageChdir);
  // The supervisor reset every disposition when it started; only SIGPIPE is ignored since.
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // In the sandbox, no-new-privs and the seccomp filter are the supervisor's, inherited.
  // The command's exact environment; execvpe searches the PATH of the current one. (Started
  // vfork-style, this sets the launcher's environ too; the launcher never reads it again.)
  environ = spec.envp.data();
  execvpe(spec.argv[0], spec.argv.data(), spec.envp.data());
  child_fail(errfd, proto::kStageExec);
}

// What the command's process needs between its start and its exec (see start_command).
struct CommandStart {
  int errfd;  // the write end of the launcher's error pipe (close-on-exec)
  int errread;
  int channel;
  int stdio[3];
  Spec* spec;
};

// The command's process, from its start to its exec: its stdio, then run_command().
int command_entry(void* arg) {
  auto* c = static_cast<CommandStart*>(arg);
  close(c->errread);
  if (dup2(c->stdio[0], 0) < 0 || dup2(c->stdio[1], 1) < 0 || dup2(c->stdio[2], 2) < 0)
    child_fail(c->errfd, proto::kStageSetup);
  for (int fd : c->stdio) {
    if (fd > 2) close(fd);
  }
  run_command(c->errfd, c->channel, *c->spec);
}

// The stack that the command's process runs on until its exec, when it shares the launcher's
// memory (start_command). Its pages are given back once the command has exec'd, so that a
// launcher that waits for its command keeps none of them.
alignas(64) char command_stack[64 * 1024];

// Starts the command's process. It shares the launcher's memory until it execs (or fails), and
// the launcher waits until then (vfork-style, as posix_spawn does): no copy of the page tables,
// no copy-on-write faults in either process, and nothing for the exec to tear down. That saves
// about 0.1 ms per command here over fork(). Between its start and its exec the process calls
// only system calls that touch no shared state the launcher relies on (run_command), and runs on
// command_stack; when what execvpe may put on that stack (a script's argument vector, the
// search of the PATH) might not fit, it is a plain fork() instead.
pid_t start_command(CommandStart& c) {
  std::size_t need =
      16 * 1024 + (c.spec->argv.size() + 3) * sizeof(char*) + std::strlen(c.spec->argv[0]);
  for (char* const* e = c.spec->envp.data(); *e != nullptr; ++e) {
    if (std::strncmp(*e, "PATH=", 5) == 0) need += std::strlen(*e);
  }
  if (need > sizeof command_stack) {
    const pid_t pid = fork();
    if (pid == 0) command_entry(&c);
    return pid;
  }
  return clone(command_entry, command_stack + sizeof command_stack,
               CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
}

// Makes a terminal (in the sandbox, in the sandbox's own devpts). Returns the master; slave
// gets the slave.
int open_terminal(const Spec& spec, int& slave) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  char name[128];
  if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0) {
    close(master);
    return -1;
  }
  slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    close(master);
    return -1;
  }
  termios t{};
  if (tcgetattr(slave, &t) == 0) {
    t.c_iflag |= IUTF8;  // so that the line editor erases whole UTF-8 characters
    tcsetattr(slave, TCSANOW, &t);
  }
  winsize ws{};
  ws.ws_col = spec.cols != 0 ? spec.cols : 80;
  ws.ws_row = spec.rows != 0 ? spec.rows : 24;
  ioctl(master, TIOCSWINSZ, &ws);
  return master;
}

// What a launcher does before it knows its command (see launcher()); returns its signalfd
// (SIGCHLD and SIGTERM), or -1.
int launcher_prologue(pid_t supervisor) {
  // Its own session, out of the command's. Should the supervisor die, SIGTERM (on the signalfd
  // below, like SIGCHLD) ends the job.
  setsid();
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != supervisor) _exit(0);
  // Orphans of the command come to us, not to the supervisor.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
}

// A forked copy of the supervisor, for one command, after launcher_prologue() and without the
// supervisor's descriptors. fds: the command's channel, the spec, and for pipes its stdin,
// stdout and stderr (else -1).
[[noreturn]] void launcher(int channel, int spec_fd, const int stdio[3], int sigfd) {
  Spec spec;
  const bool spec_ok = read_spec(spec_fd, spec);
  close(spec_fd);
  if (!spec_ok) {
    send_record(channel, proto::kFailedText, proto::kStageSandbox, 0,
                "the process supervisor received a malformed launch request");
    _exit(0);
  }

  int in = stdio[0], out = stdio[1], err = stdio[2];
  if (spec.pty) {
    int slave = -1;
    const int master = open_terminal(spec, slave);
    if (master < 0) {
      send_record(channel, proto::kFailedText, proto::kStageTerminal, errno,
                  std::string("cannot make a pseudo-terminal: ") + std::strerror(errno));
      _exit(0);
    }
    send_fd(channel, proto::kTerminal, master);
    close(master);
    in = out = err = slave;
  }
  if (in < 0 || out < 0 || err < 0) {
    send_record(channel, proto::kFailedText, proto::kStageSandbox, 0,
                "the process supervisor received no stdio for the command");
    _exit(0);
  }

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    send_record(channel, proto::kFailed, proto::kStageSetup, errno);
    _exit(0);
  }
  CommandStart start{errpipe[1], errpipe[0], channel, {in, out, err}, &spec};
  const pid_t child = start_command(start);
  if (child < 0) {
    send_record(channel, proto::kFailed, proto::kStageFork, errno);
    _exit(0);
  }
  close(errpipe[1]);
  // Our copies of the command's stdio go: its output must end when its own holders end.
  for (int fd : {in, out, err}) {
    if (fd > 2) close(fd);
  }

  proto::Record report{};
  if (read_failure(errpipe[0], report)) {
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    send_record(channel, proto::kFailed, report.a, report.b);
    _exit(0);
  }
  close(errpipe[0]);
  send_record(channel, proto::kStarted, static_cast<int32_t>(child), 0);
  madvise(command_stack, sizeof command_stack, MADV_DONTNEED);

  for (;;) {
    pollfd fds[2] = {{channel, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      proto::Command c{};
      const ssize_t n = recv(channel, &c, sizeof c, MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(sizeof c)) {
        if (c.op == proto::kOpSignal) {
          // Before the command's setsid() there is no group yet: signal the command itself.
          if (kill(-child, c.arg) < 0 && errno == ESRCH) kill(child, c.arg);
        }
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        break;  // the executor closed its end: the server is gone or destroys the job
      }
    }
    if (fds[1].revents != 0) {
      bool terminate = false;
      signalfd_siginfo si{};
      while (read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGTERM) terminate = true;
      }
      if (terminate) break;  // the supervisor is gone
      // Only the command's end is looked at here; the rest is reaped by the sweep.
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == child) {
        // The process group is killed while the main process, a zombie, still holds its id.
        kill(-child, SIGKILL);
        int st = 0;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
        }
        job::sweep(child, sigfd, kSweepBudgetMs);
        // What is left of us after the report (the teardown of this process, about 0.1 ms)
        // must not hold up the executor's thread, which the report wakes, often on this CPU.
        sched_param idle{};
        sched_setscheduler(0, SCHED_IDLE, &idle);
        send_record(channel, proto::kExited, st, 0);
        _exit(0);
      }
      // Adopted descendants that ended: reap them, but never the command (it is waited above).
      for (;;) {
        siginfo_t other{};
        if (waitid(P_ALL, 0, &other, WEXITED | WNOHANG | WNOWAIT) != 0 || other.si_pid == 0 ||
            other.si_pid == child)
          break;
        waitpid(other.si_pid, nullptr, WNOHANG);
      }
    }
  }
  kill(-child, SIGKILL);
  kill(child, SIGKILL);
  job::sweep(child, sigfd, kSweepBudgetMs);
  _exit(0);
}

// ---- the supervisor ----

// Takes one kLaunch message from `from` (the control socket, or a spare's hand-off socket).
// Returns false on end of file; sets `received` when a well-formed request came, with its
// descriptors in fds (5 or 2 of them).
bool receive_launch(int from, int fds[5], int& count, bool& received) {
  received = false;
  proto::Record r{};
  char control[CMSG_SPACE(5 * sizeof(int))];
  iovec iov{&r, sizeof r};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(from, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  count = static_cast<int>(fdpass::take_fds(msg, fds, 5));
  received =
      n == static_cast<ssize_t>(sizeof r) && r.kind == proto::kLaunch && (count == 2 || count == 5);
  if (!received) {
    for (int i = 0; i < count; ++i) close(fds[i]);
  }
  return true;
}

// Passes a launch (its descriptors: 2 or 5) to the spare over `hand`. False when the spare is
// gone (the caller then forks a launcher itself).
bool hand_over(int hand, const int fds[5], int count) {
  const proto::Record r{proto::kLaunch, 0, 0};
  const fdpass::Outgoing out(&r, sizeof r, fds, static_cast<std::size_t>(count));
  return fdpass::send(hand, out, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(sizeof r);
}

// The spare launcher: a launcher forked ahead of its command, past its prologue, so that
// starting a command does not wait for a fork of the supervisor. It never holds the control
// socket: the supervisor reads every launch and hands the next one over on `hand` (a socket
// pair of their own), then forks the next spare. End of file on `hand` (the supervisor retires,
// or is gone) or the supervisor's death ends a spare that has no command yet, without a word.
[[noreturn]] void spare_launcher(int hand, pid_t supervisor) {
  const int sigfd = launcher_prologue(supervisor);
  if (sigfd < 0) _exit(0);
  // Named apart while it waits (ps, and the tests that look for what a job left behind); by the
  // supervisor's name again once it has a command.
  char name[16] = {};
  prctl(PR_GET_NAME, name);
  prctl(PR_SET_NAME, kSpareName);
  for (;;) {
    pollfd fds[2] = {{hand, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(0);
    }
    if (fds[1].revents != 0) {
      signalfd_siginfo si{};
      while (read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGTERM) _exit(0);  // the supervisor is gone
      }
    }
    if (fds[0].revents == 0) continue;
    int got[5] = {-1, -1, -1, -1, -1};
    int count = 0;
    bool received = false;
    if (!receive_launch(hand, got, count, received)) _exit(0);  // no more commands
    if (!received) continue;
    close(hand);
    prctl(PR_SET_NAME, name);
    const int stdio[3] = {count == 5 ? got[2] : -1, count == 5 ? got[3] : -1,
                          count == 5 ? got[4] : -1};
    launcher(got[0], got[1], stdio, sigfd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool sandboxed = argc >= 4 && std::strcmp(argv[3], "--sandbox") == 0;
  in_sandbox = sandboxed;
  const bool with_bridge = sandboxed && argc == 8 && std::strcmp(argv[4], "--bridge") == 0;
  if (argc < 3 || std::strcmp(argv[1], proto::kTag) != 0 || std::strcmp(argv[2], "serve") != 0 ||
      !(argc == 3 || (sandboxed && argc == 4) || with_bridge)) {
    std::fprintf(stderr,
                 "%s: internal helper of the process-mcp host executor, not meant to be run by "
                 "hand\n",
                 argv[0] != nullptr ? argv[0] : proto::kSupervisorName);
    return 2;
  }
  if (fcntl(kControl, F_SETFD, FD_CLOEXEC) < 0) return 2;
  job::close_from(kControl + 1);  // nothing else of the server's or bubblewrap's reaches commands
  // The executor starts us (or bubblewrap) with every signal blocked.
  reset_signals();
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Not dumpable (and so neither are the launchers, forked copies): the commands may not read
  // or write our memory through /proc.
  prctl(PR_SET_DUMPABLE, 0);
  // Orphans whose launcher was killed come to us (in the sandbox we are the init anyway).
  if (!sandboxed) prctl(PR_SET_CHILD_SUBREAPER, 1);
  const int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) fail_text(std::string("signalfd: ") + std::strerror(errno));

  pid_t bridge = -1;
  if (sandboxed) {
    pmcp::host::SeccompFilter filter;
    if (!filter.error().empty()) fail_text(filter.error());
    if (with_bridge) bridge = start_bridge(argv[5], argv[6], argv[7]);
    // From here on the supervisor, and so every launcher and command (fork and exec keep both),
    // runs with no-new-privs and the filter: it is loaded once, not in each command (the kernel
    // takes about 0.25 ms to take a filter). Only the bridge, started above, runs without it.
    const int loaded = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? errno : filter.load();
    if (loaded != 0)
      fail_text(std::string("cannot load the seccomp filter: ") + std::strerror(loaded));
  }
  // From here on bubblewrap's messages are over; nothing of ours may hold the executor's pipe.
  null_stdio(0, 2);
  send_record(kControl, proto::kReady, 0, 0);

  const pid_t self = getpid();
  std::set<pid_t> launchers;
  bool accepting = true;
  // The spare launcher (see spare_launcher) and our end of its hand-off socket.
  pid_t spare = -1;
  int hand = -1;
  const auto drop_spare = [&] {
    if (hand >= 0) close(hand);
    hand = -1;
    spare = -1;
  };
  const auto start_spare = [&] {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) return;
    const pid_t pid = fork();
    if (pid == 0) {
      close(sigfd);
      close(kControl);
      close(pair[0]);
      spare_launcher(pair[1], self);
    }
    close(pair[1]);
    if (pid < 0) {
      close(pair[0]);
      return;  // a launcher is forked per command, as without a spare
    }
    spare = pid;
    hand = pair[0];
    launchers.insert(pid);
  };
  const auto stop_accepting = [&] {
    accepting = false;
    close(kControl);
    drop_spare();  // end of file on its socket: a spare without a command goes
  };
  start_spare();
  for (;;) {
    pollfd fds[2] = {{accepting ? kControl : -1, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (accepting && fds[0].revents != 0) {
      for (;;) {
        int got[5] = {-1, -1, -1, -1, -1};
        int count = 0;
        bool received = false;
        if (!receive_launch(kControl, got, count, received)) {
          stop_accepting();
          break;
        }
        if (!received) {
          if (count == 0) break;  // nothing more for now
          continue;
        }
        if (spare > 0 && hand_over(hand, got, count)) {
          drop_spare();  // a launcher now
          for (int i = 0; i < count; ++i) close(got[i]);
          // Let it run before the next spare is forked: the hand-off woke it on this CPU.
          sched_yield();
          continue;
        }
        drop_spare();  // gone (it is reaped below)
        const int stdio[3] = {count == 5 ? got[2] : -1, count == 5 ? got[3] : -1,
                              count == 5 ? got[4] : -1};
        const pid_t pid = fork();
        if (pid == 0) {
          close(sigfd);
          close(kControl);
          const int launcher_sigfd = launcher_prologue(self);
          if (launcher_sigfd < 0) {
            send_record(got[0], proto::kFailed, proto::kStageSetup, errno);
            _exit(0);
          }
          launcher(got[0], got[1], stdio, launcher_sigfd);
        }
        if (pid < 0) {
          send_record(got[0], proto::kFailed, proto::kStageFork, errno);
        } else {
          launchers.insert(pid);
        }
        for (int i = 0; i < count; ++i) close(got[i]);
      }
      if (accepting && spare < 0) start_spare();
    }
    if (fds[1].revents != 0) {
      job::drain_signalfd(sigfd);
      bool lost_launcher = false;
      for (;;) {
        int st = 0;
        const pid_t r = waitpid(-1, &st, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (launchers.erase(r) != 0 && WIFSIGNALED(st)) lost_launcher = true;
        if (r == spare) drop_spare();  // gone without a command: the next launch forks one
        if (r == bridge && accepting) {
          // No network any more: retire this sandbox; the executor starts a new one.
          bridge = -1;
          stop_accepting();
        }
      }
      if (lost_launcher) {
        // A launcher killed from outside did not sweep its job: what was left of it has come to
        // us. Only launchers and the bridge are ours to keep.
        struct Keep {
          const std::set<pid_t>* launchers;
          pid_t bridge;
        } keep{&launchers, bridge};
        job::for_each_child(
            [](pid_t pid, void* ctx) {
              const auto* k = static_cast<const Keep*>(ctx);
              if (pid != k->bridge && k->launchers->count(pid) == 0) kill(pid, SIGKILL);
            },
            &keep);
      }
    }
    if (!accepting && launchers.empty()) {
      // Nothing of a job may outlive us (in the sandbox our end ends the namespace anyway).
      job::sweep(0, sigfd, 2000);
      return 0;
    }
  }
}
