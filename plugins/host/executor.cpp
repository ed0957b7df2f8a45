#include "executor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include "pmcp/fd_passing.hpp"

namespace pmcp::host {

namespace fdpass = pmcp::fdpass;

namespace {

using sdk::Error;

constexpr std::size_t kReadChunk = 64 * 1024;          // one read() of output
constexpr std::size_t kReadPerEvent = 4 * kReadChunk;  // then give other fds a turn
constexpr std::size_t kForceDrainLimit = 8 << 20;      // bytes read at a drain deadline
constexpr std::size_t kWriteChunk = 1 << 20;           // one write() of stdin
constexpr auto kDrainGrace = std::chrono::seconds(2);  // output EOF wait after the exit
constexpr auto kStopGrace = std::chrono::seconds(3);   // supervisor wait in destroy()
constexpr int kMaxSignal = 64;                         // Linux _NSIG - 1

// epoll tags: token << 3 | kind. Token 0 is the wakeup eventfd.
enum Kind : uint64_t { kWake = 0, kStatus = 1, kOut = 2, kErr = 3, kIn = 4 };

uint64_t tag(uint64_t token, Kind kind) { return token << 3 | kind; }

std::string errno_text(int e) {
  char buf[256];
  return std::string(strerror_r(e, buf, sizeof buf));  // GNU strerror_r
}

Error os_error(int32_t status, const std::string& what, int e) {
  return Error(status, what + ": " + errno_text(e));
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

// Writing to a pipe whose reader is gone raises SIGPIPE for this thread, where it is blocked;
// take it back so that it does not stay pending.
void clear_pending_sigpipe() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  const timespec zero{};
  while (sigtimedwait(&set, nullptr, &zero) > 0) {
  }
}

int32_t status_for(int32_t stage, int err) {
  if (stage == proto::kStageSandbox) return PMCP_ERR_UNAVAILABLE;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return PMCP_ERR_NOT_FOUND;
    case EACCES:
    case EPERM:
      return PMCP_ERR_DENIED;
    default:
      return PMCP_ERR_IO;
  }
}

// The most open files the executor asks for: Linux's default fs.nr_open.
constexpr rlim_t kMaxOpenFiles = rlim_t{1} << 20;

struct OpenFilesLimit {
  rlimit original{};    // what the server started with: commands get it back
  bool raised = false;  // the soft limit was raised
  std::string problem;  // why it could not be raised, if so
};

// Every live process holds up to four descriptors in the server (control socket, stdin, stdout,
// stderr), so the usual soft limit of 1024 open files stopped the server at about 250 processes
// with "Too many open files", below [limits] max_processes = 1000. The soft limit is raised to
// the hard one, once per server process (the first executor records the original, later ones
// must not take the raised value for it), and every command starts with the original again:
// programs that use select() cannot watch descriptors above 1023.
const OpenFilesLimit& open_files_limit() {
  static const OpenFilesLimit limit = [] {
    OpenFilesLimit l;
    if (getrlimit(RLIMIT_NOFILE, &l.original) != 0) {
      l.problem = std::string("getrlimit: ") + std::strerror(errno);
      return l;
    }
    rlimit raised = l.original;
    raised.rlim_cur = std::min(l.original.rlim_max, kMaxOpenFiles);
    if (raised.rlim_cur <= l.original.rlim_cur) return l;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      l.problem = std::string("setrlimit: ") + std::strerror(errno);
      return l;
    }
    l.raised = true;
    return l;
  }();
  return limit;
}

}  // namespace

// ---- IdSet ----

void IdSet::insert(uint64_t id) {
  if (contains(id)) return;
  auto next = ranges_.upper_bound(id);
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second + 1 == id) {
      prev->second = id;
      if (next != ranges_.end() && next->first == id + 1) {
        prev->second = next->second;
        ranges_.erase(next);
      }
      return;
    }
  }
  if (next != ranges_.end() && next->first == id + 1) {
    const uint64_t last = next->second;
    ranges_.erase(next);
    ranges_.emplace(id, last);
    return;
  }
  ranges_.emplace(id, id);
}

bool IdSet::contains(uint64_t id) const {
  auto it = ranges_.upper_bound(id);
  if (it == ranges_.begin()) return false;
  --it;
  return id <= it->second;
}

// ---- Proc ----

enum class State { kQueued, kStarting, kRunning, kExited };

struct HostExecutor::Proc {
  uint64_t id = 0;
  uint64_t token = 0;
  bool pty = false;
  std::string argv0;
  std::string cwd;
  std::string path_env;
  bool has_path = false;

  // The launch spec (protocol.hpp, kLaunch), prepared on the core thread.
  std::string spec;
  std::vector<std::string> env;
  uint16_t cols = 80;  // a terminal's size until its master arrives (under mu_)
  uint16_t rows = 24;

  // The command's ends, passed to the supervisor and closed here at the launch.
  int child_sock = -1;
  int child_in = -1;
  int child_out = -1;
  int child_err = -1;

  // Our ends. sock, and out when it is the PTY master, are also used by the core thread and
  // are closed under mu_.
  int sock = -1;
  int out = -1;  // stdout pipe, or the PTY master
  int err = -1;  // stderr pipe
  int in = -1;   // stdin pipe (a PTY takes its input on the master)
  // A terminal's slave, our own (TIOCGPTPEER). While we hold it the master never reads as
  // ended, so that no end of file can overtake the command's last output (the kernel may
  // report it before that output has reached the master). After the exit the end marker is
  // written through it, behind everything the command wrote: the output ends at the marker.
  int peer = -1;
  std::size_t end_written = 0;  // bytes of the end marker written so far
  bool ending = false;          // the end marker is being written or awaited
  std::string held;             // output read after the marker was sent that may begin it

  State state = State::kQueued;  // written under mu_
  pid_t child = 0;  // the command's pid as the server sees it: kStarted's, or kPid's (sandbox)

  bool sock_eof = false;
  bool exit_known = false;
  int32_t exit_code = -1;
  int32_t term_signal = 0;
  std::string exit_message;
  bool has_deadline = false;
  Clock::time_point deadline{};

  // Stdin, under mu_.
  std::string in_buf;
  std::size_t in_off = 0;
  bool close_requested = false;
  bool in_closed = false;
  bool dirty = false;
  bool writable_watch = false;

  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() {
    for (int* fd : {&child_sock, &child_in, &child_out, &child_err, &sock, &out, &err, &in, &peer})
      close_fd(*fd);
  }
  // Once the launch is sent (or failed): the supervisor holds the command's ends now.
  void launch_sent() {
    for (int* fd : {&child_sock, &child_in, &child_out, &child_err}) close_fd(*fd);
    spec = std::string();
  }
};

// ---- construction ----

HostExecutor::HostExecutor(const pmcp_host* host, const pmcp_executor_sink& sink,
                           std::string supervisor, std::string default_cwd,
                           std::unique_ptr<Sandbox> sandbox)
    : host_(host),
      supervisor_(std::move(supervisor)),
      default_cwd_(std::move(default_cwd)),
      sandbox_(std::move(sandbox)),
      client_(host, sandbox_ != nullptr) {
  std::memcpy(&sink_, &sink, std::min<std::size_t>(sink.struct_size, sizeof sink_));
  const OpenFilesLimit& nofile = open_files_limit();
  if (nofile.raised) client_.set_child_limit(&nofile.original);
  if (!nofile.problem.empty()) {
    log(PMCP_LOG_WARN, "cannot raise the limit of open files (" + nofile.problem +
                           "); each live process needs up to 4, so fewer than max_processes " +
                           "may run at once");
  }
  buffer_ = std::make_unique<uint8_t[]>(kReadChunk);
  {
    // An APC string, which a terminal would ignore; the random part makes it unique.
    std::random_device random;
    static constexpr char kHex[] = "0123456789abcdef";
    end_marker_ = "\x1b_pmcp-end-";
    for (int i = 0; i < 32; ++i) end_marker_ += kHex[random() & 15];
    end_marker_ += "\x1b\\";
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw os_error(PMCP_ERR_IO, "epoll_create1", errno);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int e = errno;
    close_fd(epoll_fd_);
    throw os_error(PMCP_ERR_IO, "eventfd", e);
  }
  try {
    epoll_add(wake_fd_, 0, kWake, EPOLLIN);
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    close_fd(wake_fd_);
    close_fd(epoll_fd_);
    throw;
  }
}

// ---- descriptors made ahead ----

bool HostExecutor::Next::make_pipe(int fds[2], int ours) {
  if (pipe2(fds, O_CLOEXEC) < 0) return false;
  // Its only status flag is the access mode, which F_SETFL keeps.
  if (fcntl(fds[ours], F_SETFL, O_NONBLOCK) == 0) return true;
  const int e = errno;
  ::close(fds[0]);
  ::close(fds[1]);
  fds[0] = fds[1] = -1;
  errno = e;
  return false;
}

void HostExecutor::Next::make() noexcept {
  if (channel[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel) < 0)
    channel[0] = channel[1] = -1;
  for (int k = 0; k < 3; ++k) {
    if (pipes[k][0] < 0) make_pipe(pipes[k], k == 0 ? 1 : 0);
  }
}

HostExecutor::Next::~Next() {
  for (int* fd : {&channel[0], &channel[1], &pipes[0][0], &pipes[0][1], &pipes[1][0], &pipes[1][1],
                  &pipes[2][0], &pipes[2][1]})
    close_fd(*fd);
}

HostExecutor::~HostExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  close_fd(wake_fd_);
  close_fd(epoll_fd_);
}

void HostExecutor::log(pmcp_log_level level, const std::string& message) const {
  sdk::log(host_, level, message);
}

void HostExecutor::wake() {
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

// ---- core thread ----

HostExecutor::Proc* HostExecutor::find_locked(uint64_t id, const char* what) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) return it->second;
  if (finished_.contains(id))
    throw Error(PMCP_ERR_STATE, std::string("cannot ") + what + " process " + std::to_string(id) +
                                    ": it has exited");
  throw Error(PMCP_ERR_NOT_FOUND, std::string("cannot ") + what + " process " + std::to_string(id) +
                                      ": no such process in the host executor");
}

void HostExecutor::spawn(const pmcp_spawn_options& o) {
  constexpr std::size_t kNeeded = offsetof(pmcp_spawn_options, rows) + sizeof(o.rows);
  if (o.struct_size < kNeeded)
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "spawn options are too small (struct_size " + std::to_string(o.struct_size) + ")");
  if (o.argc == 0 || o.argv == nullptr || o.argv[0] == nullptr || o.argv[0][0] == '\0')
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "argv must name a program");
  if ((o.flags & ~PMCP_SPAWN_PTY) != 0)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "unknown spawn flags " + std::to_string(o.flags));
  if (o.envc > 0 && o.envp == nullptr)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "envp is null but envc is not 0");
  // Fail closed: a sandbox that is on but cannot work refuses every command, with the reason;
  // so does a supervisor that cannot start. Only the first spawn can wait for the verdict.
  if (sandbox_ != nullptr && !sandbox_->unavailable().empty())
    throw Error(PMCP_ERR_UNAVAILABLE, sandbox_->unavailable());
  if (sandbox_ == nullptr && !start_verdict().empty())
    throw Error(PMCP_ERR_UNAVAILABLE, start_verdict());

  auto p = std::make_unique<Proc>();
  p->id = o.process_id;
  p->pty = (o.flags & PMCP_SPAWN_PTY) != 0;
  p->argv0 = o.argv[0];

  const std::string_view cwd = sdk::view(o.cwd);
  if (cwd.find('\0') != std::string_view::npos)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "the working directory contains a NUL byte");
  if (cwd.empty())
    p->cwd = default_cwd_;
  else if (cwd.front() == '/')
    p->cwd = std::string(cwd);
  else
    p->cwd = default_cwd_ + "/" + std::string(cwd);

  p->env.reserve(o.envc);
  for (std::size_t i = 0; i < o.envc; ++i) {
    if (o.envp[i] == nullptr)
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "envp[" + std::to_string(i) + "] is null");
    const std::string_view entry = o.envp[i];
    if (entry.find('=') == std::string_view::npos || entry.front() == '=')
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "environment entry '" + std::string(entry) + "' is not NAME=value");
    if (entry.substr(0, 5) == "PATH=") {
      p->has_path = true;
      p->path_env = std::string(entry.substr(5));
    }
    p->env.emplace_back(entry);
  }
  for (std::size_t i = 0; i < o.argc; ++i) {
    if (o.argv[i] == nullptr)
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "argv[" + std::to_string(i) + "] is null");
  }
  if (sandbox_ != nullptr) {
    // The policy's variables (the proxy) replace any of the same name.
    for (const std::string& add : sandbox_->environment()) {
      const std::string name = add.substr(0, add.find('=') + 1);
      std::erase_if(p->env, [&](const std::string& e) { return e.starts_with(name); });
      p->env.push_back(add);
    }
  }
  p->cols = o.cols != 0 ? o.cols : 80;
  p->rows = o.rows != 0 ? o.rows : 24;
  // The launch spec: NUL-terminated fields (protocol.hpp, kLaunch).
  const auto field = [&](std::string_view f) {
    p->spec.append(f);
    p->spec.push_back('\0');
  };
  field(p->pty ? "pty" : "pipe");
  field(std::to_string(p->cols));
  field(std::to_string(p->rows));
  field(p->cwd);
  field(std::to_string(o.argc));
  for (std::size_t i = 0; i < o.argc; ++i) field(o.argv[i]);
  field(std::to_string(p->env.size()));
  for (const std::string& e : p->env) field(e);
  p->env.clear();

  // The descriptors for the next command are made once this one is on its way (see Next).
  struct Refill {
    HostExecutor* self;
    ~Refill() { self->next_.make(); }
  } refill{this};
  int sv[2] = {next_.channel[0], next_.channel[1]};
  next_.channel[0] = next_.channel[1] = -1;
  if (sv[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    throw os_error(PMCP_ERR_IO, "cannot create the control socket", errno);
  p->sock = sv[0];
  p->child_sock = sv[1];
  // In the sandbox the command itself tells its pid (kPid); the kernel attaches it, as the
  // server sees it. Without, kStarted's pid is the server's view already.
  const int on = 1;
  if (sandbox_ != nullptr && setsockopt(p->sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
    throw os_error(PMCP_ERR_IO, "cannot set up the control socket", errno);

  // A terminal is made by the supervisor (in the sandbox, in the sandbox's own devpts, so that
  // it has a name there); its master comes back before the start (kTerminal). Pipes are ours.
  if (!p->pty) {
    // Each goes to p as it is taken, so that p closes it should a later one fail.
    const auto take = [&](int k, int& ours, int& theirs) {
      int fds[2] = {next_.pipes[k][0], next_.pipes[k][1]};
      next_.pipes[k][0] = next_.pipes[k][1] = -1;
      if (fds[0] < 0 && !Next::make_pipe(fds, k == 0 ? 1 : 0))
        throw os_error(PMCP_ERR_IO, "cannot create a pipe", errno);
      ours = fds[k == 0 ? 1 : 0];
      theirs = fds[k == 0 ? 0 : 1];
    };
    take(0, p->in, p->child_in);
    take(1, p->out, p->child_out);
    take(2, p->err, p->child_err);
  }

  // Fast path, without the sandbox: the launch goes to the running supervisor from this thread,
  // so that starting a command does not wait for the executor thread to wake up; that thread
  // takes the process over at its next event (adopt_launched), which is the command's first
  // message. Anything else (no supervisor yet, a dead one, commands queued before this one,
  // the executor thread busy with the supervisor) goes through the executor thread, in order.
  // (The sandbox's command line resolves the policy's paths: that stays off the core thread.)
  std::unique_lock<std::mutex> client_lock(client_mu_, std::defer_lock);
  if (sandbox_ == nullptr) (void)client_lock.try_lock();
  bool fast = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) throw Error(PMCP_ERR_STATE, "the host executor is shutting down");
    if (by_id_.count(p->id) != 0 || finished_.contains(p->id))
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "process id " + std::to_string(p->id) + " is already in use");
    p->token = ++next_token_;
    fast = client_lock.owns_lock() && to_start_.empty();
    by_id_.emplace(p->id, p.get());
    if (!fast) to_start_.push_back(std::move(p));
  }
  if (fast) {
    // Only the core thread calls spawn() and the other entry points, one at a time, and the
    // executor thread does not know p yet: p is ours until it is published below.
    const int stdio[3] = {p->child_in, p->child_out, p->child_err};
    fast = client_.launch_running(supervisor_command_line(), p->spec, p->child_sock, stdio);
    client_lock.unlock();
    if (fast) {
      p->launch_sent();
      p->state = State::kStarting;
      Proc* const raw = p.get();
      try {
        // Watched before it is published: an event that comes first waits (level-triggered)
        // until adopt_launched() has it.
        epoll_add(raw->sock, raw->token, kStatus, EPOLLIN);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        by_id_.erase(raw->id);
        throw;  // p closes the channel: the launcher kills the command
      }
      std::lock_guard<std::mutex> lock(mu_);
      launched_.push_back(std::move(p));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    to_start_.push_back(std::move(p));
  }
  wake();
}

void HostExecutor::write_stdin(uint64_t id, const uint8_t* data, std::size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Proc* p = find_locked(id, "write to");
    if (p->state == State::kExited)
      throw Error(PMCP_ERR_STATE,
                  "cannot write to process " + std::to_string(id) + ": it has exited");
    if (p->in_closed || p->close_requested)
      throw Error(PMCP_ERR_STATE, "cannot write to process " + std::to_string(id) + ": its " +
                                      (p->pty ? "terminal" : "stdin") + " is closed");
    if (size == 0) return;
    if (data == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "data is null");
    p->in_buf.append(reinterpret_cast<const char*>(data), size);
    if (!p->dirty) {
      p->dirty = true;
      stdin_dirty_.push_back(p->token);
    }
  }
  wake();
}

void HostExecutor::close_stdin(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Proc* p = find_locked(id, "close the stdin of");
    if (p->pty)
      throw Error(PMCP_ERR_UNSUPPORTED,
                  "process " + std::to_string(id) +
                      " runs on a terminal, which has no separate stdin to close; send ^D instead");
    if (p->state == State::kExited)
      throw Error(PMCP_ERR_STATE,
                  "cannot close the stdin of process " + std::to_string(id) + ": it has exited");
    if (p->close_requested || p->in_closed) return;
    p->close_requested = true;
    if (!p->dirty) {
      p->dirty = true;
      stdin_dirty_.push_back(p->token);
    }
  }
  wake();
}

void HostExecutor::signal(uint64_t id, int32_t signo) {
  if (signo < 1 || signo > kMaxSignal)
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "signal " + std::to_string(signo) + " is out of range (1-64)");
  std::lock_guard<std::mutex> lock(mu_);
  Proc* p = find_locked(id, "signal");
  if (p->state == State::kExited || p->sock < 0)
    throw Error(PMCP_ERR_STATE, "cannot signal process " + std::to_string(id) + ": it has exited");
  // The supervisor delivers it: it alone knows whether the process group still exists, so a
  // signal can never hit a recycled process id.
  const proto::Command c{proto::kOpSignal, signo};
  if (send(p->sock, &c, sizeof c, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof c))
    return;
  const int e = errno;
  if (e == EPIPE || e == ECONNRESET || e == ENOTCONN)
    throw Error(PMCP_ERR_STATE, "cannot signal process " + std::to_string(id) + ": it has exited");
  throw os_error(PMCP_ERR_IO, "cannot signal process " + std::to_string(id), e);
}

void HostExecutor::resize(uint64_t id, uint16_t cols, uint16_t rows) {
  std::lock_guard<std::mutex> lock(mu_);
  Proc* p = find_locked(id, "resize");
  if (!p->pty)
    throw Error(PMCP_ERR_UNSUPPORTED, "cannot resize process " + std::to_string(id) +
                                          ": it runs on pipes, not on a terminal");
  if (cols == 0 || rows == 0)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "a terminal needs at least 1 column and 1 row");
  if (p->out < 0 && (p->state == State::kQueued || p->state == State::kStarting)) {
    // The supervisor has not passed the terminal yet; it gets this size when it does.
    p->cols = cols;
    p->rows = rows;
    return;
  }
  if (p->state == State::kExited || p->out < 0)
    throw Error(PMCP_ERR_STATE, "cannot resize process " + std::to_string(id) + ": it has exited");
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  // The kernel sends SIGWINCH to the terminal's foreground process group.
  if (ioctl(p->out, TIOCSWINSZ, &ws) < 0)
    throw os_error(PMCP_ERR_IO, "cannot resize the terminal of process " + std::to_string(id),
                   errno);
}

// ---- executor thread ----

void HostExecutor::run() noexcept {
  // Process-directed signals belong to the core's threads; the forked supervisor starts with
  // everything blocked too. Synchronous faults stay deliverable.
  sigset_t set;
  sigfillset(&set);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    // The supervisor starts here rather than in the constructor: creation (the server's
    // start-up) does not wait for it, spawns do (Sandbox::unavailable(), start_verdict()).
    // Forked on this long-lived thread: its PR_SET_PDEATHSIG fires when the thread ends.
    std::unique_lock<std::mutex> client_lock(client_mu_);
    if (sandbox_ != nullptr) {
      sandbox_->run_trial(client_);
      client_lock.unlock();
      set_start_verdict({});
    } else {
      std::string why;
      try {
        why = client_.start(supervisor_command_line());
      } catch (const std::exception& e) {
        why = std::string("the process supervisor could not start: ") + e.what();
      }
      client_lock.unlock();
      if (!why.empty()) {
        why = "the host executor's process supervisor '" + supervisor_ +
              "' is not available: " + why + "; every command will be refused";
        log(PMCP_LOG_ERROR, why);
      }
      set_start_verdict(std::move(why));
    }
    loop();
  } catch (const std::exception& e) {
    log(PMCP_LOG_ERROR, std::string("host executor thread failed: ") + e.what());
    set_start_verdict(std::string("the host executor thread failed: ") + e.what());
  } catch (...) {
    log(PMCP_LOG_ERROR, "host executor thread failed");
    set_start_verdict("the host executor thread failed");
  }
  try {
    shutdown();
  } catch (...) {
    log(PMCP_LOG_ERROR, "host executor shutdown failed");
  }
}

void HostExecutor::set_start_verdict(std::string error) {
  std::lock_guard lock(start_mutex_);
  if (start_done_) return;
  start_error_ = std::move(error);
  start_done_ = true;
  start_done_cv_.notify_all();
}

void HostExecutor::loop() {
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, 64, next_timeout_ms());
    if (n < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    adopt_launched();
    for (int i = 0; i < n; ++i) handle_event(events[i].data.u64, events[i].events);
    if (take_commands()) return;
    check_deadlines();
  }
}

bool HostExecutor::take_commands() {
  std::vector<std::unique_ptr<Proc>> starts;
  std::vector<uint64_t> dirty;
  // client_mu_ (taken before mu_, as spawn() does) is held from taking the queue to the last
  // launch, so that spawn()'s fast path cannot overtake a command queued before it.
  std::unique_lock<std::mutex> client_lock(client_mu_, std::defer_lock);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) return true;
    if (!to_start_.empty()) {
      // Only this thread takes from the queue: it stays non-empty while mu_ is let go.
      lock.unlock();
      client_lock.lock();
      lock.lock();
      if (stop_) return true;
    }
    starts.swap(to_start_);
    dirty.swap(stdin_dirty_);
  }
  for (auto& p : starts) start(std::move(p));
  if (client_lock.owns_lock()) client_lock.unlock();
  adopt_launched();  // before stdin work that may be for them
  for (uint64_t token : dirty) {
    auto it = live_.find(token);
    if (it == live_.end()) continue;
    std::lock_guard<std::mutex> lock(mu_);
    it->second->dirty = false;
    flush_stdin_locked(*it->second);
  }
  return false;
}

void HostExecutor::adopt_launched() {
  std::vector<std::unique_ptr<Proc>> launched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (launched_.empty()) return;
    launched.swap(launched_);
  }
  for (auto& p : launched) {
    const uint64_t token = p->token;
    live_.emplace(token, std::move(p));
  }
}

// client_mu_ held.
void HostExecutor::start(std::unique_ptr<Proc> owned) {
  Proc& p = *owned;
  live_.emplace(p.token, std::move(owned));
  // The supervisor forks a launcher for it, which answers on p.sock.
  const int stdio[3] = {p.child_in, p.child_out, p.child_err};
  const std::string why = client_.launch(supervisor_command_line(), p.spec, p.child_sock, stdio);
  p.launch_sent();
  if (!why.empty()) {
    fail_start(p, PMCP_ERR_UNAVAILABLE,
               sandbox_ != nullptr
                   ? "cannot start '" + p.argv0 + "' in the host sandbox: " + why +
                         "; to run commands without the sandbox, set [host.sandbox] enabled = "
                         "false"
                   : "cannot start '" + p.argv0 + "': " + why);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    p.state = State::kStarting;
  }
  epoll_add(p.sock, p.token, kStatus, EPOLLIN);
}

std::vector<std::string> HostExecutor::supervisor_command_line() const {
  if (sandbox_ != nullptr) return sandbox_->command_line();
  return {supervisor_, proto::kTag, "serve"};
}

const std::string& HostExecutor::start_verdict() const {
  std::unique_lock lock(start_mutex_);
  start_done_cv_.wait(lock, [this] { return start_done_; });
  return start_error_;
}

void HostExecutor::handle_event(uint64_t t, uint32_t events) {
  const auto kind = static_cast<Kind>(t & 7);
  if (kind == kWake) {
    uint64_t value = 0;
    ssize_t ignored = ::read(wake_fd_, &value, sizeof value);
    (void)ignored;
    return;
  }
  auto it = live_.find(t >> 3);
  if (it == live_.end()) return;  // finished earlier in this batch
  Proc& p = *it->second;
  switch (kind) {
    case kStatus:
      on_status(p);
      return;
    case kOut:
      if (p.pty && (events & EPOLLOUT) != 0) {
        std::lock_guard<std::mutex> lock(mu_);
        flush_stdin_locked(p);
      }
      if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) read_output(p, false, kReadPerEvent);
      maybe_finish(p);
      return;
    case kErr:
      read_output(p, true, kReadPerEvent);
      maybe_finish(p);
      return;
    case kIn: {
      std::lock_guard<std::mutex> lock(mu_);
      flush_stdin_locked(p);
      return;
    }
    default:
      return;
  }
}

bool HostExecutor::on_status(Proc& p) {
  for (;;) {
    char buf[proto::kMaxMessage];
    char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int))];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = recvmsg(p.sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    // What came with it: the sender's pid (SO_PASSCRED, sandboxed only), a descriptor.
    pid_t sender = 0;
    int passed = -1;
    if (n > 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
          ucred cred{};
          std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
          sender = cred.pid;
        }
      }
      fdpass::take_fds(msg, &passed, 1);
    }
    if (n >= static_cast<ssize_t>(sizeof(proto::Record))) {
      proto::Record r{};
      std::memcpy(&r, buf, sizeof r);
      const std::string_view text(buf + sizeof r, static_cast<std::size_t>(n) - sizeof r);
      if (!on_record(p, r, text, sender, passed)) return false;
      continue;
    }
    if (passed >= 0) ::close(passed);
    if (n > 0) continue;  // a short message: not ours
    // End of file (or a broken socket): the supervisor has exited.
    const uint64_t token = p.token;
    on_channel_end(p);  // may finish (and free) p
    return live_.count(token) != 0;
  }
}

bool HostExecutor::on_record(Proc& p, const proto::Record& r, std::string_view text, pid_t sender,
                             int passed) {
  if (passed >= 0 &&
      !(r.kind == proto::kTerminal && p.pty && p.out < 0 && p.state == State::kStarting)) {
    ::close(passed);
    passed = -1;
  }
  switch (r.kind) {
    case proto::kPid:
      // Sent by the command itself before its exec.
      if (p.state == State::kStarting && sender > 0) p.child = sender;
      return true;
    case proto::kTerminal: {
      if (passed < 0) return true;
      const int flags = fcntl(passed, F_GETFL);
      if (flags >= 0) fcntl(passed, F_SETFL, flags | O_NONBLOCK);
      // Our own slave descriptor; without it (a kernel older than 4.13) the output ends at the
      // master's end of file, as before.
      const int peer = ioctl(passed, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      std::lock_guard<std::mutex> lock(mu_);
      p.out = passed;
      p.peer = peer;
      // A resize that came before the terminal did.
      winsize ws{};
      ws.ws_col = p.cols;
      ws.ws_row = p.rows;
      ioctl(p.out, TIOCSWINSZ, &ws);
      return true;
    }
    case proto::kStarted: {
      if (p.state != State::kStarting) return true;
      // Without the sandbox the supervisor shares our PID namespace: its pid is ours.
      if (sandbox_ == nullptr && p.child <= 0) p.child = r.a;
      if (p.child <= 0 || (p.pty && p.out < 0)) {
        fail_start(p, PMCP_ERR_INTERNAL,
                   "the process supervisor started '" + p.argv0 +
                       "' but did not say its pid or pass its terminal");
        return false;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        p.state = State::kRunning;
      }
      sink_.on_spawned(sink_.ctx, p.id, PMCP_OK, p.child, sdk::str(""));
      // Output is watched only now, so that no on_output can precede on_spawned.
      epoll_add(p.out, p.token, kOut, EPOLLIN);
      if (p.err >= 0) epoll_add(p.err, p.token, kErr, EPOLLIN);
      std::lock_guard<std::mutex> lock(mu_);
      flush_stdin_locked(p);
      return true;
    }
    case proto::kFailed:
      if (p.state != State::kStarting) return true;
      fail_start(p, status_for(r.a, r.b), describe_failure(p, r.a, r.b));
      return false;
    case proto::kFailedText:
      if (p.state != State::kStarting) return true;
      fail_start(p, r.b != 0 ? status_for(r.a, r.b) : PMCP_ERR_UNAVAILABLE,
                 "cannot start '" + p.argv0 + "': " + std::string(text));
      return false;
    case proto::kExited: {
      if (p.exit_known) return true;
      p.exit_known = true;
      const int st = r.a;
      if (WIFEXITED(st)) {
        p.exit_code = WEXITSTATUS(st);
        p.term_signal = 0;
      } else if (WIFSIGNALED(st)) {
        p.exit_code = -1;
        p.term_signal = WTERMSIG(st);
      } else {
        p.exit_code = -1;
        p.term_signal = 0;
        p.exit_message = "unexpected wait status " + std::to_string(st);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        p.state = State::kExited;
        p.in_buf.clear();
        p.in_off = 0;
      }
      // The launcher's last word: it has swept the job and now exits. Its end of the channel
      // closes only after the kernel has torn its address space down (about 0.1 ms), so the
      // channel ends here, not at that end of file.
      on_channel_end(p);  // may finish (and free) p
      return false;
    }
    default:
      log(PMCP_LOG_WARN, "unknown record " + std::to_string(r.kind) + " from the supervisor");
      return true;
  }
}

void HostExecutor::on_channel_end(Proc& p) {
  epoll_del(p.sock);
  {
    std::lock_guard<std::mutex> lock(mu_);
    close_fd(p.sock);
  }
  p.sock_eof = true;
  if (p.state == State::kStarting) {
    fail_start(p, PMCP_ERR_INTERNAL,
               "the process supervisor's launcher for '" + p.argv0 +
                   "' ended before the process started (was it killed?)");
    return;
  }
  if (!p.exit_known) {
    // Killed from outside. The command itself dies with it (its PR_SET_PDEATHSIG).
    p.exit_known = true;
    p.exit_code = -1;
    p.term_signal = SIGKILL;
    p.exit_message = "the process supervisor's launcher was lost; the process was killed";
    log(PMCP_LOG_WARN, "process " + std::to_string(p.id) + ": " + p.exit_message);
    std::lock_guard<std::mutex> lock(mu_);
    p.state = State::kExited;
  }
  // Everything of the job has been killed; its output ends as soon as the kernel has closed
  // the last writer (a terminal's: at the end marker). Do not wait forever for a writer that
  // escaped.
  p.has_deadline = true;
  p.deadline = Clock::now() + kDrainGrace;
  if (p.pty && p.out >= 0 && p.peer >= 0) {
    // Nothing of the command is left to use the terminal: its output processing (which could
    // change the marker) goes off, and output stopped by XOFF starts again.
    termios t{};
    if (tcgetattr(p.peer, &t) == 0 && (t.c_oflag & OPOST) != 0) {
      t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
      tcsetattr(p.peer, TCSANOW, &t);
    }
    // TCOON alone restarts only what TCOOFF stopped; after a TCOOFF it restarts an XOFF too.
    tcflow(p.peer, TCOOFF);
    tcflow(p.peer, TCOON);
    p.ending = true;
    write_end_marker(p);
    // The marker arrives like any output (EPOLLIN on the master).
    if (p.peer >= 0) return;
  }
  maybe_finish(p);
}

bool HostExecutor::write_end_marker(Proc& p) {
  if (!p.ending || p.peer < 0 || p.end_written >= end_marker_.size()) return false;
  const ssize_t n =
      ::write(p.peer, end_marker_.data() + p.end_written, end_marker_.size() - p.end_written);
  if (n > 0) {
    p.end_written += static_cast<std::size_t>(n);
    return true;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;  // after the next read
  // The marker cannot be written: the output ends at the master's end of file instead.
  log(PMCP_LOG_WARN, "process " + std::to_string(p.id) +
                         ": cannot mark the end of its terminal: " + errno_text(errno));
  p.ending = false;
  if (!p.held.empty()) {
    // Held back as what might begin the marker; it is output, since no marker follows.
    sink_.on_output(sink_.ctx, p.id, PMCP_STREAM_STDOUT,
                    reinterpret_cast<const uint8_t*>(p.held.data()), p.held.size());
    p.held.clear();
  }
  close_fd(p.peer);
  return false;
}

bool HostExecutor::take_until_end(Proc& p, std::string_view bytes) {
  p.held.append(bytes);
  const std::size_t at = p.held.find(end_marker_);
  std::size_t pass = at;
  if (at == std::string::npos) {
    // Hold back the longest end that may begin the marker.
    std::size_t keep = std::min(p.held.size(), end_marker_.size() - 1);
    while (keep > 0 && p.held.compare(p.held.size() - keep, keep, end_marker_, 0, keep) != 0)
      --keep;
    pass = p.held.size() - keep;
  }
  if (pass > 0)
    sink_.on_output(sink_.ctx, p.id, PMCP_STREAM_STDOUT,
                    reinterpret_cast<const uint8_t*>(p.held.data()), pass);
  p.held.erase(0, pass);
  if (at == std::string::npos) return true;
  // Whatever follows the marker was written after the exit, by nobody of the job.
  p.held.clear();
  close_output(p, false);
  return false;
}

void HostExecutor::read_output(Proc& p, bool is_stderr, std::size_t max_bytes) {
  const int fd = is_stderr ? p.err : p.out;
  std::size_t total = 0;
  while (fd >= 0 && total < max_bytes) {
    const ssize_t n = ::read(fd, buffer_.get(), kReadChunk);
    if (n > 0) {
      total += static_cast<std::size_t>(n);
      if (!is_stderr && p.ending) {
        if (!take_until_end(p, std::string_view(reinterpret_cast<const char*>(buffer_.get()),
                                                static_cast<std::size_t>(n))))
          return;
        write_end_marker(p);  // the rest of it, now that there is room
        continue;
      }
      sink_.on_output(sink_.ctx, p.id, is_stderr ? PMCP_STREAM_STDERR : PMCP_STREAM_STDOUT,
                      buffer_.get(), static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!is_stderr && write_end_marker(p)) continue;
      return;
    }
    // 0: end of file. EIO on a PTY master: every slave descriptor is closed, also the end.
    if (n < 0 && !(p.pty && errno == EIO))
      log(PMCP_LOG_WARN,
          "reading output of process " + std::to_string(p.id) + ": " + errno_text(errno));
    close_output(p, is_stderr);
    return;
  }
}

void HostExecutor::close_output(Proc& p, bool is_stderr) {
  if (is_stderr) {
    epoll_del(p.err);
    close_fd(p.err);
    return;
  }
  epoll_del(p.out);
  if (p.pty) {
    if (!p.held.empty()) {
      // The marker never came (a drain deadline): what was held back is output too.
      sink_.on_output(sink_.ctx, p.id, PMCP_STREAM_STDOUT,
                      reinterpret_cast<const uint8_t*>(p.held.data()), p.held.size());
      p.held.clear();
    }
    p.ending = false;
    // The master is also the input side and the resize handle.
    std::lock_guard<std::mutex> lock(mu_);
    close_fd(p.peer);
    p.in_closed = true;
    p.in_buf.clear();
    p.in_off = 0;
    p.writable_watch = false;
    close_fd(p.out);
  } else {
    close_fd(p.out);
  }
}

void HostExecutor::want_writable(Proc& p, bool on) {
  if (on == p.writable_watch) return;
  if (p.pty) {
    if (p.out >= 0) epoll_mod(p.out, p.token, kOut, EPOLLIN | (on ? EPOLLOUT : 0u));
  } else if (p.in >= 0) {
    if (on)
      epoll_add(p.in, p.token, kIn, EPOLLOUT);
    else
      epoll_del(p.in);
  }
  p.writable_watch = on;
}

void HostExecutor::flush_stdin_locked(Proc& p) {
  if (p.state == State::kExited) {
    p.in_buf.clear();
    p.in_off = 0;
    want_writable(p, false);
    return;
  }
  if (p.state != State::kRunning) return;  // queued bytes wait for on_spawned
  const int fd = p.pty ? p.out : p.in;
  if (fd < 0) {
    p.in_buf.clear();
    p.in_off = 0;
    return;
  }
  while (p.in_off < p.in_buf.size()) {
    const std::size_t chunk = std::min(p.in_buf.size() - p.in_off, kWriteChunk);
    const ssize_t n = ::write(fd, p.in_buf.data() + p.in_off, chunk);
    if (n > 0) {
      p.in_off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // The process does not read right now: come back when it does, never block.
      if (p.in_off >= kWriteChunk && p.in_off * 2 >= p.in_buf.size()) {
        p.in_buf.erase(0, p.in_off);
        p.in_off = 0;
      }
      want_writable(p, true);
      return;
    }
    // EPIPE: nobody reads stdin any more. EIO: the terminal's slave side is closed.
    if (n < 0 && errno == EPIPE) clear_pending_sigpipe();
    p.in_closed = true;
    p.in_buf.clear();
    p.in_off = 0;
    want_writable(p, false);
    if (!p.pty) close_fd(p.in);
    return;
  }
  p.in_buf.clear();
  p.in_off = 0;
  want_writable(p, false);
  if (p.close_requested && !p.pty && p.in >= 0) {
    close_fd(p.in);
    p.in_closed = true;
  }
}

bool HostExecutor::maybe_finish(Proc& p) {
  if (p.sock_eof && p.out < 0 && p.err < 0) {
    finish(p);
    return false;
  }
  return true;
}

void HostExecutor::finish(Proc& p) {
  for (int fd : {p.sock, p.out, p.err}) {
    if (fd >= 0) epoll_del(fd);
  }
  if (p.in >= 0 && p.writable_watch && !p.pty) epoll_del(p.in);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int* fd : {&p.sock, &p.out, &p.err, &p.in, &p.peer}) close_fd(*fd);
    p.state = State::kExited;
    by_id_.erase(p.id);
    finished_.insert(p.id);
  }
  auto node = live_.extract(p.token);
  const std::unique_ptr<Proc> owned = std::move(node.mapped());
  sink_.on_exit(sink_.ctx, owned->id, owned->exit_code, owned->term_signal,
                sdk::str(owned->exit_message));
}

void HostExecutor::fail_start(Proc& p, int32_t status, const std::string& message) {
  for (int fd : {p.sock, p.out, p.err}) {
    if (fd >= 0) epoll_del(fd);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int* fd : {&p.sock, &p.out, &p.err, &p.in, &p.peer}) close_fd(*fd);
    p.state = State::kExited;
    by_id_.erase(p.id);
    finished_.insert(p.id);
  }
  auto node = live_.extract(p.token);
  const std::unique_ptr<Proc> owned = std::move(node.mapped());
  sink_.on_spawned(sink_.ctx, owned->id, status, 0, sdk::str(message));
}

void HostExecutor::check_deadlines() {
  const auto now = Clock::now();
  std::vector<uint64_t> due;
  for (const auto& [token, p] : live_) {
    if (p->has_deadline && now >= p->deadline) due.push_back(token);
  }
  for (uint64_t token : due) {
    auto it = live_.find(token);
    if (it == live_.end()) continue;
    Proc& p = *it->second;
    // A writer escaped the kill (or is stuck in the kernel): take what is there and report.
    log(PMCP_LOG_WARN,
        "process " + std::to_string(p.id) + ": output did not end after the exit; closing it");
    if (p.out >= 0) read_output(p, false, kForceDrainLimit);
    if (p.err >= 0) read_output(p, true, kForceDrainLimit);
    if (p.out >= 0) close_output(p, false);
    if (p.err >= 0) close_output(p, true);
    maybe_finish(p);
  }
}

int HostExecutor::next_timeout_ms() const {
  int timeout = -1;
  const auto now = Clock::now();
  for (const auto& [token, p] : live_) {
    if (!p->has_deadline) continue;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(p->deadline - now).count();
    const int ms = left <= 0 ? 0 : static_cast<int>(std::min<long long>(left + 1, 60000));
    if (timeout < 0 || ms < timeout) timeout = ms;
  }
  return timeout;
}

void HostExecutor::shutdown() {
  // No callback from here on. Closing the channels tells every launcher to SIGKILL its job's
  // process group and adopted descendants, reap them and exit; the supervisor then ends with
  // its last launcher.
  set_start_verdict("the host executor is shutting down");
  std::vector<std::unique_ptr<Proc>> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queued.swap(to_start_);
    for (auto& p : launched_) queued.push_back(std::move(p));  // closing the channel ends it
    launched_.clear();
    for (auto& [token, p] : live_) {
      for (int* fd : {&p->sock, &p->out, &p->err, &p->in}) close_fd(*fd);
    }
    by_id_.clear();
  }
  live_.clear();
  queued.clear();
  std::lock_guard<std::mutex> lock(client_mu_);
  client_.stop();
}

void HostExecutor::epoll_add(int fd, uint64_t token, int kind, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag(token, static_cast<Kind>(kind));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD)");
}

void HostExecutor::epoll_mod(int fd, uint64_t token, int kind, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag(token, static_cast<Kind>(kind));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(MOD)");
}

void HostExecutor::epoll_del(int fd) {
  if (fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

std::string HostExecutor::describe_failure(const Proc& p, int32_t stage, int err) const {
  const std::string text = errno_text(err);
  switch (stage) {
    case proto::kStageChdir:
      return "cannot use working directory '" + p.cwd + "': " + text +
             (sandbox_ != nullptr && p.cwd.starts_with("/tmp/")
                  ? " (in the sandbox /tmp is private: list the directory in [host.filesystem] "
                    "allow_write to use it)"
                  : "");
    case proto::kStageExec: {
      std::string m = "cannot execute '" + p.argv0 + "': " + text;
      if (p.argv0.find('/') == std::string::npos)
        m += p.has_path ? " (searched PATH=" + p.path_env + ")"
                        : " (PATH is not set; searched /bin:/usr/bin)";
      return m;
    }
    case proto::kStageFork:
      return "cannot fork the process: " + text;
    case proto::kStageSetsid:
      return "cannot start a new session for the process: " + text;
    case proto::kStageTerminal:
      return "cannot make the pseudo-terminal the process's controlling terminal: " + text;
    default:
      return "cannot set up the process: " + text;
  }
}

}  // namespace pmcp::host
