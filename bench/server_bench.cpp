// What an agent feels of the process-mcp binary over stdio (host executor, stdio transport):
// cold start, idle and loaded memory, the `spawn` round trip beside its physical floor, output
// throughput beside reading the same pipe directly, and concurrency. With --peers, the same
// round trip, cold start and idle memory of two npm MCP servers that run commands.
//
//   pmcp-bench-server [--short] [--peers] [--only CASE]
// --short (what CI runs): few repetitions and small volumes, a check that every case works.
// --only: one case of cold, spawn, throughput, many (e.g. to compare two builds quickly).
// --peers: installs @wonderwhy-er/desktop-commander and mcp-server-commands with npm into a
//          temporary folder and measures them too (needs npm and the registry; never in CI).
// Prints a table per case, then one JSON line with every figure. Everything it writes goes to a
// temporary folder that it removes.
//
// Floors are measured by this program in the same run, interleaved with the server's runs, so
// that load on the machine hits both alike: `/bin/sh -c 'echo hi'` started with posix_spawn,
// its stdout and stderr read from pipes until end of file, then waitpid; and `head -c N
// /dev/zero` read straight from a pipe (or `cat` from a PTY). A second spawn floor has one
// process between the caller and the command, as any server that supervises its commands from
// another process does: a helper started once (this program, run as `--floor-helper`) takes
// the stdout and stderr pipes over a socket, starts the command with posix_spawn, waits for it
// and sends its wait status back. Beside the spawns, the same server answers a `ping`: the
// protocol's own round trip over stdio, which every request pays and the floors do not.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "stats.hpp"

extern char** environ;

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "pmcp-bench-server: %s\n", why.c_str());
  std::exit(1);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

using pmcp::bench::Stats;
using pmcp::bench::stats;

// A field in kB of /proc/<pid>/status (VmRSS, VmHWM) or of another file of it, or -1.
long proc_status_kb(pid_t pid, const char* field, const char* file = "status") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

// Sum of the proportional set size (kB) of the host executor's own processes under the server
// `pid`: its supervisor (a child of the server) and the supervisor's launchers (its children,
// one per command); and the number of launchers. Pss, not VmRSS: pages they share (the
// supervisor's, which every launcher is a forked copy of) count once in the sum instead of
// once per process.
std::pair<long, int> helpers_pss_kb(pid_t pid) {
  std::map<int, int> parent;
  std::map<int, std::string> comm;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto open_paren = stat.find('(');
    const auto close_paren = stat.rfind(')');
    if (open_paren == std::string::npos || close_paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close_paren + 1, " %c %d", &state, &ppid) != 2) continue;
    const int p = std::atoi(name.c_str());
    parent[p] = ppid;
    comm[p] = stat.substr(open_paren + 1, close_paren - open_paren - 1);
  }
  long kb = 0;
  int launchers = 0;
  for (const auto& [p, ppid] : parent) {
    if (comm[p].rfind("pmcp-host-sup", 0) != 0) continue;
    const bool supervisor = ppid == pid;
    const bool launcher = parent.count(ppid) != 0 && parent[ppid] == pid;
    if (!supervisor && !launcher) continue;
    const long pss = proc_status_kb(p, "Pss", "smaps_rollup");
    if (pss > 0) kb += pss;
    if (launcher) ++launchers;
  }
  return {kb, launchers};
}

// What a process has cost so far: CPU time of all its threads (ns) and the voluntary context
// switches of all its threads (each one a sleep, so each later run a wake-up). Less disturbed
// by a noisy machine than latency: they count work, not waiting.
struct Cost {
  double cpu_ns = 0;
  long wakeups = 0;
};

Cost process_cost(pid_t pid) {
  Cost c;
  clockid_t clock{};
  timespec ts{};
  if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &ts) == 0)
    c.cpu_ns = double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        c.wakeups += std::atol(line.c_str() + std::strlen("voluntary_ctxt_switches:"));
    }
  }
  return c;
}

// The server's host-executor supervisor (a child named pmcp-host-supervisor, forked by the
// executor's thread), or -1.
pid_t supervisor_of(pid_t server) {
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(server) + "/task", ec)) {
    std::ifstream in(task.path() / "children");
    pid_t child = 0;
    while (in >> child) {
      std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name.rfind("pmcp-host-sup", 0) == 0) return child;
    }
  }
  return -1;
}

// ---- a stdio MCP server under test: ours or a peer ----

class StdioServer {
 public:
  // Starts argv with pipes on stdin/stdout and stderr into log; sends initialize at once and
  // records the time from before the fork to its response.
  // env: variables set in the child on top of ours.
  StdioServer(const std::vector<std::string>& argv, const fs::path& log,
              const std::map<std::string, std::string>& env = {}) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe failed");
    const auto t0 = Clock::now();
    pid_ = fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // die() exits without the destructors
      dup2(in[0], 0);
      dup2(out[1], 1);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) dup2(fd, 2);
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_server_ = in[1];
    from_server_ = out[0];
    exchange(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":)"
             R"("2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}})",
             0, 60s);
    startup_ms_ = ms_between(t0, answered_at_);
    send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  ~StdioServer() {
    close(to_server_);
    close(from_server_);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  StdioServer(const StdioServer&) = delete;
  StdioServer& operator=(const StdioServer&) = delete;

  pid_t pid() const { return pid_; }
  double startup_ms() const { return startup_ms_; }

  void send(const std::string& line) {
    std::string message = line + "\n";
    const char* p = message.data();
    std::size_t left = message.size();
    while (left > 0) {
      ssize_t n = write(to_server_, p, left);
      if (n <= 0) die("write to the server failed");
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  // The next response (a message with an id and no method), parsed.
  json::object next_response(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      std::size_t newline;
      while ((newline = pending_.find('\n', scanned_)) == std::string::npos) {
        scanned_ = pending_.size();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd pfd{from_server_, POLLIN, 0};
        if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
          die("no answer from the server in time");
        char buf[65536];
        ssize_t n = read(from_server_, buf, sizeof buf);
        if (n <= 0) die("the server closed stdout");
        pending_.append(buf, static_cast<std::size_t>(n));
      }
      // Timed before parsing: the client's own JSON work is not the server's latency.
      answered_at_ = Clock::now();
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      scanned_ = 0;
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (ec || !v.is_object()) die("not JSON from the server: " + line.substr(0, 200));
      auto& o = v.as_object();
      if (o.contains("id") && !o.contains("method")) return std::move(o);
    }
  }

  json::object exchange(const std::string& line, uint64_t id,
                        std::chrono::milliseconds timeout = 120s) {
    send(line);
    json::object r = next_response(timeout);
    if (r.at("id").to_number<uint64_t>() != id) die("answer to another request: " + str(r));
    if (!r.contains("result")) die("error answer: " + str(r));
    return r;
  }

  // tools/call; returns structuredContent, or the result when the server sends none (peers).
  json::object call(const std::string& tool, const json::object& arguments) {
    const uint64_t id = next_id_++;
    json::object r = exchange(call_text(id, tool, arguments), id);
    auto& result = r.at("result").as_object();
    if (result.contains("isError") && result.at("isError").as_bool())
      die(tool + " failed: " + str(r));
    if (auto* s = result.if_contains("structuredContent")) return s->as_object();
    return result;
  }

  uint64_t take_id() { return next_id_++; }
  // When the last response read had fully arrived.
  Clock::time_point answered_at() const { return answered_at_; }

  static std::string call_text(uint64_t id, const std::string& tool,
                               const json::object& arguments) {
    json::object o{{"jsonrpc", "2.0"},
                   {"id", id},
                   {"method", "tools/call"},
                   {"params", json::object{{"name", tool}, {"arguments", arguments}}}};
    return json::serialize(o);
  }
  static std::string str(const json::object& o) { return json::serialize(o).substr(0, 400); }

 private:
  pid_t pid_ = -1;
  int to_server_ = -1;
  int from_server_ = -1;
  std::string pending_;
  std::size_t scanned_ = 0;
  double startup_ms_ = 0;
  Clock::time_point answered_at_;
  uint64_t next_id_ = 1;
};

// A temporary folder, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/pmcp-bench-server-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Our server with the given extra config; sandbox = false turns the host sandbox off.
std::unique_ptr<StdioServer> start_ours(const fs::path& dir, const std::string& name,
                                        bool sandbox) {
  fs::path config = dir / (name + ".toml");
  std::ofstream(config) << "executor = \"host\"\ntransports = [\"stdio\"]\nlog_level = \"warn\"\n"
                        << "[defaults]\nworkdir = \"" << dir.string() << "\"\n"
                        << (sandbox ? "" : "[host]\nsandbox = { enabled = false }\n");
  return std::make_unique<StdioServer>(
      std::vector<std::string>{PMCP_SERVER_PATH, "--config", config.string()},
      dir / (name + ".log"));
}

// ---- floors: what the operating system costs without any server ----

// Reads both pipes to end of file; returns the bytes of the first.
uint64_t drain_two(int out, int err) {
  uint64_t bytes = 0;
  pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
  int open_fds = 2;
  static char buf[1 << 16];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) die("poll");
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (i == 0) bytes += static_cast<uint64_t>(n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  return bytes;
}

// posix_spawn of argv with stdout and stderr on pipes, read to end of file, then waitpid.
// Returns milliseconds and the bytes read from stdout.
std::pair<double, uint64_t> floor_run(const std::vector<std::string>& argv) {
  const auto t0 = Clock::now();
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) die("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) die("posix_spawn");
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  const uint64_t bytes = drain_two(out[0], err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {ms_between(t0, Clock::now()), bytes};
}

// The helper's loop (`--floor-helper`, its socket on fd 3): per message, two descriptors
// (stdout, stderr); runs `/bin/sh -c 'echo hi'` on them, waits, answers with the wait status.
[[noreturn]] void floor_helper_main() {
  const int sock = 3;
  for (;;) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) _exit(0);
    const cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) _exit(1);
    int fds[2];
    std::memcpy(fds, CMSG_DATA(c), sizeof fds);
    // Started as the floor starts it (posix_spawn, no copy of this process's page tables), so
    // that the difference to the floor is the hop to another process and back.
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    char* const args[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                          const_cast<char*>("echo hi"), nullptr};
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args, environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    close(fds[1]);
    int status = -1;
    if (pid > 0) waitpid(pid, &status, 0);
    if (send(sock, &status, sizeof status, MSG_NOSIGNAL) != sizeof status) _exit(1);
  }
}

// A started helper (see floor_helper_main) and the bench's end of its socket.
class FloorHelper {
 public:
  FloorHelper() {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) die("socketpair");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pair[1], 3);
    char self[] = "/proc/self/exe";
    char flag[] = "--floor-helper";
    char* const args[] = {self, flag, nullptr};
    if (posix_spawn(&pid_, self, &fa, nullptr, args, environ) != 0) die("spawn the floor helper");
    posix_spawn_file_actions_destroy(&fa);
    close(pair[1]);
    sock_ = pair[0];
  }
  ~FloorHelper() {
    close(sock_);
    waitpid(pid_, nullptr, 0);
  }
  // One `echo hi` through the helper, timed like floor_run.
  double run() {
    const auto t0 = Clock::now();
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) die("pipe failed");
    char byte = 'L';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    const int fds[2] = {out[1], err[1]};
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(sock_, &msg, MSG_NOSIGNAL) != 1) die("floor helper: send");
    close(out[1]);
    close(err[1]);
    if (drain_two(out[0], err[0]) != 3) die("floor helper: wrong output");
    int status = -1;
    if (recv(sock_, &status, sizeof status, 0) != sizeof status || status != 0) {
      die("floor helper: no exit status");
    }
    return ms_between(t0, Clock::now());
  }

 private:
  pid_t pid_ = -1;
  int sock_ = -1;
};

// `cat file` on a PTY made here, read from the master until the child has closed it.
double floor_tty_cat(const fs::path& file) {
  const auto t0 = Clock::now();
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) die("posix_openpt");
  std::string slave_name = ptsname(master);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, slave_name.c_str(), O_RDWR | O_NOCTTY, 0);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::string path = file.string();
  char* args[] = {const_cast<char*>("/bin/cat"), path.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args, environ) != 0) die("posix_spawn");
  posix_spawn_file_actions_destroy(&fa);
  static char buf[1 << 16];
  // The master reads EIO once no process holds the slave open.
  while (read(master, buf, sizeof buf) > 0) {
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  return ms_between(t0, Clock::now());
}

// ---- cases ----

struct Row {
  std::string name;
  std::string unit;
  Stats s;
};

std::vector<Row> rows;
json::object figures;  // every figure, for the JSON line

void add_row(const std::string& key, const std::string& name, const std::string& unit,
             const Stats& s) {
  rows.push_back({name, unit, s});
  figures[key] =
      json::object{{"n", s.n}, {"p50", s.p50}, {"p99", s.p99}, {"min", s.min}, {"max", s.max}};
}

void add_value(const std::string& key, const std::string& name, const std::string& unit,
               double value) {
  rows.push_back({name, unit, Stats{1, value, value, value, value}});
  figures[key] = value;
}

json::object echo_args(bool tty) {
  json::object a{{"command", "echo hi"}};
  if (tty) a["tty"] = true;
  return a;
}

void check_echo(const json::object& r, bool tty) {
  const std::string out(r.at("stdout").as_string());
  if (r.at("status").as_string() != "terminated" || out.find("hi") == std::string::npos ||
      r.at("exitCode").to_number<int64_t>() != 0) {
    die(std::string("echo hi") + (tty ? " (tty)" : "") + ": " + StdioServer::str(r));
  }
}

// 1 + 2a: cold start to the initialize response, and RSS right after it (defaults: sandbox on).
void bench_cold_start(const fs::path& dir, int runs) {
  std::vector<double> ms, rss;
  for (int i = 0; i < runs; ++i) {
    auto server = start_ours(dir, "cold", true);
    ms.push_back(server->startup_ms());
    rss.push_back(double(proc_status_kb(server->pid(), "VmRSS")) / 1024.0);
  }
  add_row("cold_start_ms", "cold start to initialize response", "ms", stats(ms));
  add_row("idle_rss_mb", "RSS after initialize", "MB", stats(rss));
}

// Is the host sandbox usable here? A sandboxed server that cannot run `echo hi` says no.
bool sandbox_works(const fs::path& dir) {
  auto server = start_ours(dir, "probe", true);
  const uint64_t id = server->take_id();
  json::object r = server->exchange(StdioServer::call_text(id, "spawn", echo_args(false)), id);
  auto& result = r.at("result").as_object();
  if (result.contains("isError") && result.at("isError").as_bool()) {
    std::printf("host sandbox unavailable here: %s\n", StdioServer::str(r).c_str());
    return false;
  }
  return true;
}

// 3: spawn round trip of `echo hi` (pipes, tty, sandboxed) beside the posix_spawn floor, all
// interleaved.
void bench_round_trip(const fs::path& dir, int iterations, bool with_sandbox) {
  auto plain = start_ours(dir, "plain", false);
  std::unique_ptr<StdioServer> sandboxed;
  if (with_sandbox) sandboxed = start_ours(dir, "sandboxed", true);
  FloorHelper helper;
  std::vector<double> floor_ms, helper_ms, plain_ms, tty_ms, sandbox_ms, ping_ms;
  // The protocol's own round trip on the same server: what any request pays over stdio.
  auto timed_ping = [](StdioServer& s) {
    const uint64_t id = s.take_id();
    const auto t0 = Clock::now();
    s.exchange(R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":"ping"})", id);
    return ms_between(t0, s.answered_at());
  };
  auto timed_call = [](StdioServer& s, bool tty) {
    const auto t0 = Clock::now();
    json::object r = s.call("spawn", echo_args(tty));
    const double ms = ms_between(t0, s.answered_at());
    check_echo(r, tty);
    return ms;
  };
  const std::vector<std::string> sh = {"/bin/sh", "-c", "echo hi"};
  // Warm-up: page cache, first use of every path.
  floor_run(sh);
  helper.run();
  timed_call(*plain, false);
  timed_call(*plain, true);
  if (sandboxed) timed_call(*sandboxed, false);
  for (int i = 0; i < iterations; ++i) {
    floor_ms.push_back(floor_run(sh).first);
    helper_ms.push_back(helper.run());
    plain_ms.push_back(timed_call(*plain, false));
    ping_ms.push_back(timed_ping(*plain));
    tty_ms.push_back(timed_call(*plain, true));
    if (sandboxed) sandbox_ms.push_back(timed_call(*sandboxed, false));
  }
  Stats f = stats(floor_ms), h = stats(helper_ms), p = stats(plain_ms);
  add_row("floor_spawn_ms", "floor: posix_spawn sh -c 'echo hi'", "ms", f);
  add_row("floor_helper_spawn_ms", "floor through a helper process", "ms", h);
  add_row("spawn_ms", "spawn echo hi (sandbox off)", "ms", p);
  add_row("spawn_tty_ms", "spawn echo hi tty (sandbox off)", "ms", stats(tty_ms));
  if (sandboxed) add_row("spawn_sandbox_ms", "spawn echo hi (sandbox on)", "ms", stats(sandbox_ms));
  add_value("spawn_ratio_p50", "spawn / floor at p50", "x", p.p50 / f.p50);
  add_value("spawn_ratio_p99", "spawn / floor at p99", "x", p.p99 / f.p99);
  add_value("helper_ratio_p50", "floor through a helper / floor at p50", "x", h.p50 / f.p50);
  add_value("spawn_helper_ratio_p50", "spawn / floor through a helper at p50", "x", p.p50 / h.p50);
  // How much of the 1.2x budget the protocol alone takes: a ping's round trip on the same
  // server, and the spawn without it.
  const Stats g = stats(ping_ms);
  add_row("ping_ms", "ping round trip (same server)", "ms", g);
  add_value("spawn_less_ping_ratio_p50", "(spawn - ping) / floor at p50", "x",
            (p.p50 - g.p50) / f.p50);

  // The work behind one call (pipes, sandbox off): the server's CPU time and thread wake-ups,
  // and the supervisor's own CPU time (not its launchers', which end with their commands).
  const int n = std::max(1, std::min(iterations, 300));
  const pid_t supervisor = supervisor_of(plain->pid());
  const Cost server0 = process_cost(plain->pid());
  const Cost supervisor0 = supervisor > 0 ? process_cost(supervisor) : Cost{};
  for (int i = 0; i < n; ++i) timed_call(*plain, false);
  const Cost server1 = process_cost(plain->pid());
  const Cost supervisor1 = supervisor > 0 ? process_cost(supervisor) : Cost{};
  add_value("spawn_server_cpu_us", "server CPU per spawn (all threads)", "us",
            (server1.cpu_ns - server0.cpu_ns) / 1e3 / n);
  add_value("spawn_server_wakeups", "server thread wake-ups per spawn", "x",
            double(server1.wakeups - server0.wakeups) / n);
  if (supervisor > 0)
    add_value("spawn_supervisor_cpu_us", "supervisor CPU per spawn (launchers not counted)", "us",
              (supervisor1.cpu_ns - supervisor0.cpu_ns) / 1e3 / n);
}

// Spawns in the background, then waits for the exit; the bytes are the server's own count of
// what it took from the child (the `next` cursor), not a copy through JSON.
std::pair<double, uint64_t> server_drain(StdioServer& s, const std::string& command, bool tty) {
  const auto t0 = Clock::now();
  json::object a{{"command", command}, {"background", true}};
  if (tty) a["tty"] = true;
  json::object started = s.call("spawn", a);
  const std::string id(started.at("pid").as_string());
  for (;;) {
    json::object w = s.call(
        "wait",
        json::object{{"id", id}, {"until", json::object{{"exit", true}}}, {"timeoutMs", 60000}});
    if (w.at("status").as_string() == "timeout") continue;
    const double ms = ms_between(t0, s.answered_at());
    const auto& next = w.at("next").as_object();
    uint64_t bytes = next.at(tty ? "terminal" : "stdout").to_number<uint64_t>();
    return {ms, bytes};
  }
}

// 2c + 4: throughput of a child's stdout through the server beside the pipe floor, and the
// server's peak RSS while it runs; then the TTY path through libvterm.
void bench_throughput(const fs::path& dir, uint64_t megabytes, uint64_t tty_megabytes, int runs) {
  const std::string head = "head -c " + std::to_string(megabytes) + "M /dev/zero";
  const std::vector<std::string> head_argv = {"/bin/sh", "-c", head};
  std::vector<double> floor_mbs, server_mbs, peak_mb, baseline_mb;
  const double mb = double(megabytes);
  floor_run(head_argv);
  for (int i = 0; i < runs; ++i) {
    auto [fms, fbytes] = floor_run(head_argv);
    if (fbytes != megabytes << 20) die("floor: short read");
    floor_mbs.push_back(mb / (fms / 1000.0));
    // A fresh server each run, so that VmHWM is the peak of this flood alone.
    auto server = start_ours(dir, "flood", false);
    const long base = proc_status_kb(server->pid(), "VmRSS");
    auto [sms, sbytes] = server_drain(*server, head, false);
    if (sbytes != megabytes << 20)
      die("the server counted " + std::to_string(sbytes) + " bytes of " +
          std::to_string(megabytes << 20));
    server_mbs.push_back(mb / (sms / 1000.0));
    peak_mb.push_back(double(proc_status_kb(server->pid(), "VmHWM")) / 1024.0);
    baseline_mb.push_back(double(base) / 1024.0);
  }
  Stats f = stats(floor_mbs), s = stats(server_mbs);
  add_row("floor_pipe_mbs", "floor: read head -c " + std::to_string(megabytes) + "M pipe", "MB/s",
          f);
  add_row("pipe_mbs", "server: head -c " + std::to_string(megabytes) + "M, background", "MB/s", s);
  add_value("pipe_ratio_p50", "server / floor throughput at p50", "x", s.p50 / f.p50);
  add_row("flood_baseline_rss_mb", "RSS before the flood", "MB", stats(baseline_mb));
  add_row("flood_peak_rss_mb", "peak RSS (VmHWM) during the flood", "MB", stats(peak_mb));

  // TTY: cat of a text file on a PTY, rendered by libvterm.
  fs::path text = dir / "text.txt";
  {
    std::ofstream out(text, std::ios::binary);
    std::string line = "the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnop\n";
    uint64_t total = tty_megabytes << 20;
    for (uint64_t written = 0; written < total; written += line.size()) out << line;
  }
  const double tty_mb = double(fs::file_size(text)) / double(1 << 20);
  auto server = start_ours(dir, "tty", false);
  std::vector<double> floor_tty, server_tty;
  floor_tty_cat(text);
  for (int i = 0; i < runs; ++i) {
    floor_tty.push_back(tty_mb / (floor_tty_cat(text) / 1000.0));
    auto [ms, bytes] = server_drain(*server, "cat " + text.string(), true);
    if (bytes < fs::file_size(text)) die("tty: the server counted too few bytes");
    server_tty.push_back(tty_mb / (ms / 1000.0));
  }
  fs::remove(text);
  add_row("floor_tty_mbs", "floor: cat text on a PTY", "MB/s", stats(floor_tty));
  add_row("tty_mbs", "server: cat text, tty (libvterm)", "MB/s", stats(server_tty));
}

// 2b + 5: many background sleeps (RSS of the server and of its supervisor, ps latency), and
// many foreground sleeps in flight at once.
void bench_many(const fs::path& dir, int background, int foreground, int ps_calls) {
  {
    auto server = start_ours(dir, "many", false);
    for (int i = 0; i < background; ++i) {
      json::object r =
          server->call("spawn", json::object{{"command", "sleep 3600"}, {"background", true}});
      if (r.at("status").as_string() != "running") die("sleep did not stay running");
    }
    const std::string n = std::to_string(background);
    add_value("many_rss_mb", "server RSS, " + n + " background sleeps", "MB",
              double(proc_status_kb(server->pid(), "VmRSS")) / 1024.0);
    auto [kb, count] = helpers_pss_kb(server->pid());
    if (count < background) die("fewer launchers than processes");
    add_value("many_supervisor_pss_mb",
              "Pss of the supervisor and its " + std::to_string(count) + " launchers", "MB",
              double(kb) / 1024.0);
    std::vector<double> ps_ms;
    for (int i = 0; i < ps_calls; ++i) {
      const auto t0 = Clock::now();
      json::object r = server->call("ps", json::object{});
      ps_ms.push_back(ms_between(t0, server->answered_at()));
      if (r.at("processes").as_array().size() < std::size_t(background)) die("ps: too few");
    }
    add_row("ps_ms", "ps with " + n + " processes", "ms", stats(ps_ms));
  }
  {
    auto server = start_ours(dir, "fg", false);
    std::set<uint64_t> waiting;
    const auto t0 = Clock::now();
    for (int i = 0; i < foreground; ++i) {
      const uint64_t id = server->take_id();
      waiting.insert(id);
      server->send(StdioServer::call_text(id, "spawn", json::object{{"command", "sleep 1"}}));
    }
    while (!waiting.empty()) {
      json::object r = server->next_response(120s);
      const auto& sc = r.at("result").at("structuredContent").as_object();
      if (sc.at("status").as_string() != "terminated") die("sleep 1: " + StdioServer::str(r));
      waiting.erase(r.at("id").to_number<uint64_t>());
    }
    add_value("concurrent_sleep_ms",
              std::to_string(foreground) + " foreground sleep 1 at once, all answered", "ms",
              ms_between(t0, server->answered_at()));
  }
}

// 6: the peers, installed with npm into dir.
struct Peer {
  std::string key;
  std::string package;
  std::string bin;  // node_modules/.bin entry
  std::string tool;
  json::object args;
};

void bench_peers(const fs::path& dir, int iterations, int cold_runs) {
  std::vector<Peer> peers = {
      {"desktop_commander", "@wonderwhy-er/desktop-commander", "desktop-commander", "start_process",
       json::object{{"command", "echo hi"}, {"timeout_ms", 10000}}},
      {"mcp_server_commands", "mcp-server-commands", "mcp-server-commands", "run_command",
       json::object{{"command", "echo hi"}}},
  };
  fs::path prefix = dir / "peers";
  fs::create_directories(prefix);
  // --ignore-scripts: a dependency's install script downloads a browser, which the peers do not
  // need to run commands.
  std::string install = "npm install --prefix '" + prefix.string() +
                        "' --ignore-scripts --no-audit --no-fund --loglevel=error "
                        "@wonderwhy-er/desktop-commander mcp-server-commands >'" +
                        (dir / "npm.log").string() + "' 2>&1";
  if (std::system(install.c_str()) != 0) die("npm install failed; see the log in " + dir.string());
  auto ours = start_ours(dir, "peers-ours", false);
  // The peers keep settings and logs under HOME: give them one inside the temporary folder.
  const fs::path home = dir / "home";
  fs::create_directories(home);
  const std::map<std::string, std::string> env = {{"HOME", home.string()}};
  for (const auto& peer : peers) {
    const std::vector<std::string> argv = {(prefix / "node_modules/.bin" / peer.bin).string()};
    std::vector<double> cold, rss;
    for (int i = 0; i < cold_runs; ++i) {
      StdioServer s(argv, dir / (peer.key + ".log"), env);
      cold.push_back(s.startup_ms());
      rss.push_back(double(proc_status_kb(s.pid(), "VmRSS")) / 1024.0);
    }
    StdioServer s(argv, dir / (peer.key + ".log"), env);
    std::vector<double> theirs, mine;
    s.call(peer.tool, peer.args);
    ours->call("spawn", echo_args(false));
    for (int i = 0; i < iterations; ++i) {
      auto t0 = Clock::now();
      json::object r = s.call(peer.tool, peer.args);
      theirs.push_back(ms_between(t0, s.answered_at()));
      if (StdioServer::str(r).find("hi") == std::string::npos)
        die(peer.key + ": no output: " + StdioServer::str(r));
      t0 = Clock::now();
      check_echo(ours->call("spawn", echo_args(false)), false);
      mine.push_back(ms_between(t0, ours->answered_at()));
    }
    Stats t = stats(theirs), m = stats(mine);
    add_row(peer.key + "_cold_start_ms", peer.package + ": cold start", "ms", stats(cold));
    add_row(peer.key + "_idle_rss_mb", peer.package + ": RSS after initialize", "MB", stats(rss));
    add_row(peer.key + "_spawn_ms", peer.package + ": " + peer.tool + " echo hi", "ms", t);
    add_row(peer.key + "_ours_spawn_ms", "ours beside it: spawn echo hi (sandbox off)", "ms", m);
    add_value(peer.key + "_ratio_p50", "ours / " + peer.package + " at p50", "x", m.p50 / t.p50);
  }
}

// JSON text with numbers in fixed notation (3 decimals): Boost.JSON writes doubles in exponent
// form, which reads badly in a figures line.
std::string to_text(const json::value& v) {
  if (v.is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v.as_double());
    return buf;
  }
  if (v.is_object()) {
    std::string out = "{";
    for (const auto& [k, item] : v.as_object()) {
      if (out.size() > 1) out += ",";
      out += json::serialize(json::value(k)) + ":" + to_text(item);
    }
    return out + "}";
  }
  return json::serialize(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--floor-helper") floor_helper_main();
  bool short_mode = false, peers = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--short") {
      short_mode = true;
    } else if (arg == "--peers") {
      peers = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      die("usage: pmcp-bench-server [--short] [--peers] [--only cold|spawn|throughput|many]");
    }
  }
  auto run = [&](const char* name) { return only.empty() || only == name; };
  signal(SIGPIPE, SIG_IGN);
  TempDir dir;
  const auto started = Clock::now();
  if (run("cold")) bench_cold_start(dir.path, short_mode ? 5 : 50);
  const bool sandbox = sandbox_works(dir.path);
  if (run("spawn")) bench_round_trip(dir.path, short_mode ? 20 : 1000, sandbox);
  if (run("throughput"))
    bench_throughput(dir.path, short_mode ? 64 : 1024, short_mode ? 8 : 100, short_mode ? 1 : 5);
  if (run("many")) bench_many(dir.path, short_mode ? 50 : 1000, 100, short_mode ? 5 : 50);
  if (peers) bench_peers(dir.path, short_mode ? 20 : 100, short_mode ? 2 : 5);

  std::printf("%-52s %6s %6s %10s %10s %10s %10s\n", "case", "unit", "n", "p50", "p99", "min",
              "max");
  for (const auto& r : rows) {
    std::printf("%-52s %6s %6zu %10.3f %10.3f %10.3f %10.3f\n", r.name.c_str(), r.unit.c_str(),
                r.s.n, r.s.p50, r.s.p99, r.s.min, r.s.max);
  }
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  json::object line{{"bench", "server"},
                    {"mode", short_mode ? "short" : "full"},
                    {"nproc", std::thread::hardware_concurrency()},
                    {"load1", load[0]},
                    {"sandbox", sandbox},
                    {"seconds", ms_between(started, Clock::now()) / 1000.0},
                    {"figures", std::move(figures)}};
  std::printf("%s\n", to_text(line).c_str());
  return 0;
}
