#include "sandbox.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "pmcp/plugin.hpp"
#include "protocol.hpp"

namespace pmcp::host {

namespace {

// Where the bridge listens inside the sandbox's network namespace (its own loopback).
constexpr const char* kProxyPort = "3128";

constexpr const char* kWayOut =
    "; to run commands without the sandbox, set [host.sandbox] enabled = false";

bool is_executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    const std::string dir = path.substr(start, colon - start);
    if (!dir.empty() && is_executable(dir + "/" + name)) return dir + "/" + name;
    start = colon + 1;
  }
  return {};
}

// The path as it is now, symbolic links resolved; empty when it does not exist.
std::string resolve(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return {};
  std::string out = real;
  std::free(real);
  return out;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string errno_text(int e) {
  char buf[256];
  return std::string(strerror_r(e, buf, sizeof buf));  // GNU strerror_r
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// In the child of fork() on the executor thread: only async-signal-safe calls until execve.
[[noreturn]] void exec_bwrap(char* const* argv, char* const* envp, int control, int log,
                             pid_t server, const rlimit* nofile) noexcept {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // the init unblocks what it needs
  if (nofile != nullptr) setrlimit(RLIMIT_NOFILE, nofile);
  // Own session, no terminal; SIGKILL when the executor's thread or the server ends.
  if (setsid() >= 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) == 0) {
    if (getppid() != server) _exit(0);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0 && dup2(devnull, 0) >= 0 && dup2(log, 1) >= 0 && dup2(log, 2) >= 0 &&
        dup2(control, proto::kSandboxControlFd) >= 0) {
      // Whatever else the server holds without O_CLOEXEC stays out of the sandbox.
      syscall(SYS_close_range, static_cast<unsigned>(proto::kSandboxControlFd + 1), ~0U, 0U);
      execve(argv[0], argv, envp);
    }
  }
  _exit(127);
}

}  // namespace

Sandbox::Sandbox(const pmcp_host* host, SandboxConfig config, const std::string& helper_dir,
                 std::string writable_dir)
    : host_(host), config_(std::move(config)), writable_dir_(std::move(writable_dir)) {
  if (!config_.enabled) return;
  root_ = geteuid() == 0;
  if (writable_dir_ == "/") {
    // Making "/" writable would undo the sandbox: the server's working directory stays
    // read-only then, and only allow_write is writable.
    sdk::log(host_, PMCP_LOG_WARN,
             "host sandbox: the server runs in '/', which stays read-only; list the directories "
             "commands may write in [host.filesystem] allow_write");
    writable_dir_.clear();
  }
  for (const std::string& p : config_.allow_write) {
    if (resolve(p).empty())
      sdk::log(host_, PMCP_LOG_WARN,
               "host sandbox: allow_write path '" + p +
                   "' does not exist (yet); it is ignored "
                   "while it does not");
  }
  if (!config_.bwrap.empty()) {
    bwrap_ =
        config_.bwrap.find('/') == std::string::npos ? find_in_path(config_.bwrap) : config_.bwrap;
  } else {
    bwrap_ = find_in_path("bwrap");
  }
  if (bwrap_.empty() || !is_executable(bwrap_)) {
    unavailable_ = config_.bwrap.empty() || config_.bwrap.find('/') == std::string::npos
                       ? "bubblewrap ('" +
                             (config_.bwrap.empty() ? std::string("bwrap") : config_.bwrap) +
                             "') was not found in PATH; install it (Debian: apt-get install "
                             "bubblewrap) or name it in [host.sandbox] bwrap"
                       : "bubblewrap '" + config_.bwrap +
                             "' (from [host.sandbox] bwrap) is "
                             "missing or not executable";
  }
  init_ = helper_dir + "/" + proto::kSandboxInitName;
  if (unavailable_.empty() && !is_executable(init_))
    unavailable_ = "the sandbox launcher '" + init_ + "' is missing or not executable";

  if (unavailable_.empty()) {
    std::string tmp = std::getenv("TMPDIR") != nullptr && std::getenv("TMPDIR")[0] == '/'
                          ? std::getenv("TMPDIR")
                          : "/tmp";
    std::string pattern = tmp + "/pmcp-sandbox-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      unavailable_ = "cannot create a private directory in " + tmp + ": " + std::strerror(errno);
    } else {
      private_dir_ = pattern;
      hidden_file_ = private_dir_ + "/hidden-file";
      hidden_dir_ = private_dir_ + "/hidden-dir";
      const int fd = open(hidden_file_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0);
      if (fd >= 0) close(fd);
      if (fd < 0 || mkdir(hidden_dir_.c_str(), 0) < 0 || chmod(hidden_file_.c_str(), 0) < 0)
        unavailable_ = "cannot prepare " + private_dir_ + ": " + std::strerror(errno);
    }
  }
  network_ = !config_.allowed_domains.empty();
  if (unavailable_.empty() && network_) {
    bridge_ = helper_dir + "/pmcp-net-bridge";
    if (!is_executable(bridge_))
      unavailable_ = "the network bridge '" + bridge_ + "' is missing or not executable";
  }
  if (unavailable_.empty() && network_) {
    netpolicy::Policy policy{config_.allowed_domains, config_.denied_domains, config_.test_resolve};
    const pmcp_host* services = host_;
    try {
      proxy_ = netpolicy::Proxy::start(
          std::move(policy), private_dir_ + "/proxy.sock",
          [services](netpolicy::LogLevel level, std::string_view line) {
            const pmcp_log_level l = level == netpolicy::LogLevel::debug     ? PMCP_LOG_DEBUG
                                     : level == netpolicy::LogLevel::info    ? PMCP_LOG_INFO
                                     : level == netpolicy::LogLevel::warning ? PMCP_LOG_WARN
                                                                             : PMCP_LOG_ERROR;
            sdk::log(services, l, "sandbox network: " + std::string(line));
          });
    } catch (const std::exception& e) {
      unavailable_ = std::string("cannot start the network proxy: ") + e.what();
    }
  }
  if (!unavailable_.empty()) {
    conclude(std::move(unavailable_));
    return;
  }
  probed_ = false;  // run_trial() starts it, on the executor's thread
}

void Sandbox::run_trial() {
  {
    std::lock_guard lock(probe_mutex_);
    if (probed_) return;
  }
  std::string verdict;
  try {
    verdict = start_instance(instance_args(), current_);
  } catch (const std::exception& e) {
    verdict = std::string("the sandbox could not start: ") + e.what();
  }
  conclude(std::move(verdict));
}

void Sandbox::conclude(std::string unavailable) {
  if (!unavailable.empty()) {
    unavailable = "the host sandbox is not available: " + unavailable + kWayOut;
    sdk::log(host_, PMCP_LOG_ERROR, unavailable + "; every command will be refused");
  } else {
    const auto list = [](const std::vector<std::string>& items) {
      std::string out;
      for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
      return out.empty() ? std::string("none") : out;
    };
    std::vector<std::string> writable = config_.allow_write;
    if (!writable_dir_.empty()) writable.insert(writable.begin(), writable_dir_);
    sdk::log(host_, PMCP_LOG_INFO,
             "host sandbox on (" + bwrap_ + "): writable " + list(writable) + "; deny_read " +
                 list(config_.deny_read) + "; deny_write " + list(config_.deny_write) +
                 "; network " +
                 (network_ ? "through the proxy, allowed " + list(config_.allowed_domains) +
                                 ", denied " + list(config_.denied_domains)
                           : std::string("none")));
  }
  std::lock_guard lock(probe_mutex_);
  unavailable_ = std::move(unavailable);
  probed_ = true;
  probe_done_.notify_all();
}

const std::string& Sandbox::unavailable() const {
  std::unique_lock lock(probe_mutex_);
  probe_done_.wait(lock, [this] { return probed_; });
  return unavailable_;
}

Sandbox::~Sandbox() {
  stop();
  if (proxy_ != nullptr) proxy_->stop();
  if (private_dir_.empty()) return;
  rmdir(hidden_dir_.c_str());
  unlink(hidden_file_.c_str());
  rmdir(private_dir_.c_str());
}

std::vector<std::string> Sandbox::bwrap_args() const {
  // --as-pid-1: our launcher is the namespace's init (one process less than bubblewrap's own
  // init); when it exits, the kernel kills whatever is left in the namespace.
  std::vector<std::string> a = {bwrap_,          "--die-with-parent",   "--unshare-pid",
                                "--as-pid-1",    "--unshare-net",       "--unshare-ipc",
                                "--unshare-uts", "--unshare-cgroup-try"};
  // Root keeps its capabilities in bubblewrap unless told; anyone else gets a user namespace
  // (where bubblewrap drops them).
  if (root_) {
    a.insert(a.end(), {"--cap-drop", "ALL"});
  } else {
    a.push_back("--unshare-user");
  }
  a.insert(a.end(), {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
  // Writable trees, parents before children, after /tmp so that one under /tmp still works.
  std::vector<std::string> writable;
  if (!writable_dir_.empty()) writable.push_back(writable_dir_);
  for (const std::string& p : config_.allow_write) writable.push_back(p);
  std::vector<std::string> resolved;
  for (const std::string& p : writable) {
    const std::string r = resolve(p);
    if (!r.empty()) resolved.push_back(r);
  }
  std::sort(resolved.begin(), resolved.end());
  resolved.erase(std::unique(resolved.begin(), resolved.end()), resolved.end());
  for (const std::string& p : resolved) a.insert(a.end(), {"--bind", p, p});
  // Denies come after, so that they win inside an allowed tree. A path that does not exist
  // has nothing to protect yet; it is covered from the first spawn after it appears.
  for (const std::string& p : config_.deny_write) {
    const std::string r = resolve(p);
    if (!r.empty()) a.insert(a.end(), {"--ro-bind", r, r});
  }
  for (const std::string& p : config_.deny_read) {
    const std::string r = resolve(p);
    if (r.empty()) continue;
    // An inaccessible placeholder: reading fails with "Permission denied", not with an
    // empty file that looks like data.
    a.insert(a.end(), {"--ro-bind", is_dir(r) ? hidden_dir_ : hidden_file_, r});
  }
  // Our helpers, visible whatever the rules above hid.
  a.insert(a.end(), {"--ro-bind", init_, init_});
  if (proxy_ != nullptr) {
    a.insert(a.end(), {"--ro-bind", bridge_, bridge_});
    a.insert(a.end(), {"--ro-bind", proxy_->socket_path(), proxy_->socket_path()});
  }
  a.insert(a.end(), {"--chdir", "/", "--"});
  return a;
}

std::vector<std::string> Sandbox::instance_args() const {
  std::vector<std::string> a = bwrap_args();
  a.insert(a.end(), {init_, proto::kSandboxInitTag, "serve"});
  if (proxy_ != nullptr)
    a.insert(a.end(), {"--bridge", bridge_, proxy_->socket_path(), kProxyPort});
  return a;
}

std::string Sandbox::start_instance(std::vector<std::string> args, Instance& out) {
  int control[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) < 0)
    return "cannot create the sandbox's control socket: " + errno_text(errno);
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
  if (pid == 0) exec_bwrap(argv.data(), envp, control[1], log[1], server, child_nofile_);
  const int fork_errno = errno;
  close(control[1]);
  close(log[1]);
  if (pid < 0) {
    close(control[0]);
    close(log[0]);
    return "cannot fork: " + errno_text(fork_errno);
  }

  // Until the init says it is ready: what bubblewrap prints, the init's own reason, or the end.
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
  // It failed, or it is too slow: what bubblewrap said before it ended is the reason.
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
  if (timed_out) return "the sandbox did not start within 10 s";
  std::string why = "the sandbox did not start";
  if (!failure.empty()) return why + ": " + failure;
  if (WIFEXITED(st)) why += " (bubblewrap exited with status " + std::to_string(WEXITSTATUS(st)) + ")";
  if (WIFSIGNALED(st)) why += " (bubblewrap was killed by signal " + std::to_string(WTERMSIG(st)) + ")";
  log_text = trim(std::move(log_text));
  if (!log_text.empty()) why += ": " + log_text;
  return why;
}

void Sandbox::retire(Instance& instance) {
  if (instance.control >= 0) close(instance.control);
  if (instance.pid > 0) retired_.push_back(instance.pid);
  instance = Instance{};
}

void Sandbox::reap_retired(bool wait) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    std::erase_if(retired_, [](pid_t pid) {
      const pid_t r = waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    });
    if (!wait || retired_.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (pid_t pid : retired_) {
        sdk::log(host_, PMCP_LOG_WARN,
                 "host sandbox " + std::to_string(pid) + " did not end in time; killing it");
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

void Sandbox::stop() {
  retire(current_);
  reap_retired(true);
}

std::string Sandbox::launch(const std::string& spec, int channel, const int stdio[3]) {
  reap_retired(false);
  std::vector<std::string> args = instance_args();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (current_.pid > 0) {
      // An init that has ended (killed, or its network bridge died) has closed its end.
      pollfd p{current_.control, POLLIN, 0};
      if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) {
        sdk::log(host_, PMCP_LOG_WARN,
                 "host sandbox " + std::to_string(current_.pid) + " has ended; starting a new one");
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
    const int memfd = memfd_create("pmcp-launch", MFD_CLOEXEC);
    if (memfd < 0) return "cannot pass the command to the sandbox: memfd_create: " + errno_text(errno);
    std::size_t done = 0;
    while (done < spec.size()) {
      const ssize_t n = write(memfd, spec.data() + done, spec.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int e = errno;
        close(memfd);
        return "cannot pass the command to the sandbox: " + errno_text(e);
      }
      done += static_cast<std::size_t>(n);
    }
    int fds[5] = {channel, memfd, stdio[0], stdio[1], stdio[2]};
    const std::size_t count = stdio[0] >= 0 ? 5 : 2;
    const proto::Record r{proto::kLaunch, 0, 0};
    char control[CMSG_SPACE(sizeof fds)] = {};
    iovec iov{const_cast<proto::Record*>(&r), sizeof r};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, count * sizeof(int));
    ssize_t sent = -1;
    for (int tries = 0; tries < 2; ++tries) {
      sent = sendmsg(current_.control, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0 || (errno != EAGAIN && errno != EINTR)) break;
      // The init is behind with its requests; give it a moment, not forever.
      pollfd p{current_.control, POLLOUT, 0};
      poll(&p, 1, 5000);
    }
    const int e = errno;
    close(memfd);
    if (sent >= 0) return {};
    if (e == EAGAIN) return "the sandbox does not take commands (its init does not answer)";
    // The sandbox has ended (its network bridge died, or someone killed it): start another.
    sdk::log(host_, PMCP_LOG_WARN,
             "host sandbox " + std::to_string(current_.pid) + " has ended (" + errno_text(e) +
                 "); starting a new one");
    retire(current_);
  }
  return "the sandbox ended as soon as it was started";
}

std::vector<std::string> Sandbox::environment() const {
  if (proxy_ == nullptr) return {};
  const std::string http = std::string("http://127.0.0.1:") + kProxyPort;
  const std::string socks = std::string("socks5h://127.0.0.1:") + kProxyPort;
  return {"HTTP_PROXY=" + http,
          "HTTPS_PROXY=" + http,
          "http_proxy=" + http,
          "https_proxy=" + http,
          "ALL_PROXY=" + socks,
          "all_proxy=" + socks,
          "NO_PROXY=localhost,127.0.0.1,::1",
          "no_proxy=localhost,127.0.0.1,::1"};
}

}  // namespace pmcp::host
