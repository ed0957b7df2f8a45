#include "supervisor_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "pmcp/fd_passing.hpp"
#include "pmcp/plugin.hpp"
#include "protocol.hpp"

namespace pmcp::host {

namespace fdpass = pmcp::fdpass;

namespace {

std::string errno_text(int e) {
  char buf[256];
  return std::string(strerror_r(e, buf, sizeof buf));  // GNU strerror_r
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// In the child of fork() on the executor thread: only async-signal-safe calls until execve.
[[noreturn]] void exec_supervisor(char* const* argv, char* const* envp, int control, int log,
                                  pid_t server, const rlimit* nofile) noexcept {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // the supervisor unblocks what it needs
  if (nofile != nullptr) setrlimit(RLIMIT_NOFILE, nofile);
  // Own session, no terminal; SIGKILL when the executor's thread or the server ends.
  if (setsid() >= 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) == 0) {
    if (getppid() != server) _exit(0);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0 && dup2(devnull, 0) >= 0 && dup2(log, 1) >= 0 && dup2(log, 2) >= 0 &&
        dup2(control, proto::kControlFd) >= 0) {
      // Whatever else the server holds without O_CLOEXEC stays out of the commands.
      syscall(SYS_close_range, static_cast<unsigned>(proto::kControlFd + 1), ~0U, 0U);
      execve(argv[0], argv, envp);
    }
  }
  _exit(127);
}

}  // namespace

SupervisorClient::SupervisorClient(const pmcp_host* host, bool sandboxed)
    : host_(host),
      sandboxed_(sandboxed),
      what_(sandboxed ? "the sandbox" : "the process supervisor") {}

std::string SupervisorClient::start(std::vector<std::string> args) {
  reap_retired(false);
  if (current_.pid > 0) retire(current_);
  return start_instance(std::move(args), current_);
}

SupervisorClient::~SupervisorClient() { stop(); }

std::string SupervisorClient::start_instance(std::vector<std::string> args, Instance& out) {
  int control[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) < 0)
    return "cannot create a control socket: " + errno_text(errno);
  int log[2];
  if (pipe2(log, O_CLOEXEC) < 0) {
    const int e = errno;
    close(control[0]);
    close(control[1]);
    return "cannot create a pipe: " + errno_text(e);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char path_env[] = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  const pid_t server = getpid();
  const pid_t pid = fork();
  if (pid == 0) exec_supervisor(argv.data(), envp, control[1], log[1], server, child_nofile_);
  const int fork_errno = errno;
  close(control[1]);
  close(log[1]);
  if (pid < 0) {
    close(control[0]);
    close(log[0]);
    return "cannot fork: " + errno_text(fork_errno);
  }

  // Until the supervisor says it is ready: what bubblewrap prints, the supervisor's own reason,
  // or the end.
  std::string log_text;
  std::string failure;
  bool ready = false;
  bool ended = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int logfd = log[0];
  while (!ready && !ended) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd p[2] = {{control[0], POLLIN, 0}, {logfd, POLLIN, 0}};
    if (poll(p, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
    if (logfd >= 0 && p[1].revents != 0) {
      char buf[512];
      const ssize_t n = read(logfd, buf, sizeof buf);
      if (n > 0 && log_text.size() < 2048) log_text.append(buf, static_cast<std::size_t>(n));
      if (n == 0) {
        close(logfd);
        logfd = -1;
      }
    }
    if (p[0].revents != 0) {
      char buf[proto::kMaxMessage];
      const ssize_t n = recv(control[0], buf, sizeof buf, MSG_DONTWAIT);
      if (n >= static_cast<ssize_t>(sizeof(proto::Record))) {
        proto::Record r{};
        std::memcpy(&r, buf, sizeof r);
        if (r.kind == proto::kReady) ready = true;
        if (r.kind == proto::kFailedText)
          failure.assign(buf + sizeof r, static_cast<std::size_t>(n) - sizeof r);
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        ended = true;
      }
    }
  }
  if (ready) {
    if (logfd >= 0) close(logfd);
    out.pid = pid;
    out.control = control[0];
    out.args = std::move(args);
    return {};
  }
  // It failed, or it is too slow: what it (or bubblewrap) said before it ended is the reason.
  const bool timed_out = !ended;
  kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  for (int i = 0; i < 50 && logfd >= 0; ++i) {
    pollfd p{logfd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    char buf[512];
    const ssize_t n = read(logfd, buf, sizeof buf);
    if (n <= 0) break;
    if (log_text.size() < 2048) log_text.append(buf, static_cast<std::size_t>(n));
  }
  if (logfd >= 0) close(logfd);
  close(control[0]);
  const std::string who = sandboxed_ ? "bubblewrap" : "'" + args[0] + "'";
  if (timed_out) return std::string(what_) + " did not start within 10 s";
  std::string why = std::string(what_) + " did not start";
  if (!failure.empty()) return why + ": " + failure;
  if (WIFEXITED(st))
    why += " (" + who + " exited with status " + std::to_string(WEXITSTATUS(st)) + ")";
  if (WIFSIGNALED(st))
    why += " (" + who + " was killed by signal " + std::to_string(WTERMSIG(st)) + ")";
  log_text = trim(std::move(log_text));
  if (!log_text.empty()) why += ": " + log_text;
  return why;
}

void SupervisorClient::retire(Instance& instance) {
  if (instance.control >= 0) close(instance.control);
  if (instance.pid > 0) retired_.push_back(instance.pid);
  instance = Instance{};
}

void SupervisorClient::reap_retired(bool wait) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    std::erase_if(retired_, [](pid_t pid) {
      const pid_t r = waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    });
    if (!wait || retired_.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (pid_t pid : retired_) {
        sdk::log(
            host_, PMCP_LOG_WARN,
            std::string(what_) + " " + std::to_string(pid) + " did not end in time; killing it");
        kill(pid, SIGKILL);
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      retired_.clear();
      return;
    }
    usleep(2000);
  }
}

void SupervisorClient::stop() {
  retire(current_);
  reap_retired(true);
}

// Sends one kLaunch to the running supervisor: 0 when sent, an errno of the socket when the
// send failed (EAGAIN: it does not take more now), or -errno when the spec could not be
// written. patient: wait up to 5 s for a supervisor that is behind with its requests.
int SupervisorClient::send_launch(const std::string& spec, int channel, const int stdio[3],
                                  bool patient) {
  const int memfd = memfd_create("pmcp-launch", MFD_CLOEXEC);
  if (memfd < 0) return -errno;
  std::size_t done = 0;
  while (done < spec.size()) {
    const ssize_t n = write(memfd, spec.data() + done, spec.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      close(memfd);
      return -e;
    }
    done += static_cast<std::size_t>(n);
  }
  int fds[5] = {channel, memfd, stdio[0], stdio[1], stdio[2]};
  const std::size_t count = stdio[0] >= 0 ? 5 : 2;
  const proto::Record r{proto::kLaunch, 0, 0};
  const fdpass::Outgoing out(&r, sizeof r, fds, count);
  ssize_t sent = -1;
  for (int tries = 0; tries < 2; ++tries) {
    sent = fdpass::send(current_.control, out, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0 || errno != EAGAIN || !patient) break;
    // The supervisor is behind with its requests; give it a moment, not forever.
    pollfd p{current_.control, POLLOUT, 0};
    poll(&p, 1, 5000);
  }
  const int e = sent >= 0 ? 0 : errno;
  close(memfd);
  return e;
}

bool SupervisorClient::launch_running(const std::vector<std::string>& args, const std::string& spec,
                                      int channel, const int stdio[3]) {
  if (current_.pid <= 0 || current_.args != args) return false;
  pollfd p{current_.control, POLLIN, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) return false;
  return send_launch(spec, channel, stdio, false) == 0;
}

std::string SupervisorClient::launch(const std::vector<std::string>& args, const std::string& spec,
                                     int channel, const int stdio[3]) {
  reap_retired(false);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (current_.pid > 0) {
      // A supervisor that has ended (killed, or its sandbox's bridge died) has closed its end.
      pollfd p{current_.control, POLLIN, 0};
      if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) {
        sdk::log(host_, PMCP_LOG_WARN,
                 std::string(what_) + " " + std::to_string(current_.pid) +
                     " has ended; starting a new one");
        retire(current_);
      }
    }
    if (current_.pid > 0 && current_.args != args) {
      sdk::log(host_, PMCP_LOG_INFO,
               "host sandbox: the paths of the policy resolve differently now; new commands "
               "start in a new sandbox");
      retire(current_);
    }
    if (current_.pid < 0) {
      std::string why = start_instance(args, current_);
      if (!why.empty()) return why;
    }
    const int e = send_launch(spec, channel, stdio, true);
    if (e == 0) {
      reap_retired(false);  // one that was found dead above has ended by now
      return {};
    }
    if (e < 0) return std::string("cannot pass the command to ") + what_ + ": " + errno_text(-e);
    if (e == EAGAIN) return std::string(what_) + " does not take commands (it does not answer)";
    // It has ended (the sandbox's network bridge died, or someone killed it): start another.
    sdk::log(host_, PMCP_LOG_WARN,
             std::string(what_) + " " + std::to_string(current_.pid) + " has ended (" +
                 errno_text(e) + "); starting a new one");
    retire(current_);
  }
  return std::string(what_) + " ended as soon as it was started";
}

}  // namespace pmcp::host
