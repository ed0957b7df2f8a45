// The host executor: runs commands on this machine with pipes or a real PTY.
//
// Threads: the core calls spawn/write_stdin/close_stdin/signal/resize from its thread; they
// validate, update shared state under mu_ and wake the executor thread, which owns everything
// else: it forks (so that PR_SET_PDEATHSIG is tied to a thread that lives as long as the
// executor), moves bytes in both directions with epoll, and is the only caller of the sink.
//
// The executor starts one long-lived pmcp-host-supervisor (supervisor.cpp, through
// supervisor_client.hpp), inside bubblewrap when the sandbox is on (sandbox.hpp). For each
// command it forks a launcher, which reports the start, delivers signals to the process group,
// and on exit kills what is left of the job before it reports the wait status, on the
// command's own socket. The executor then drains stdout/stderr (or the PTY) to end of file and
// fires on_exit after the last on_output.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "pmcp/executor.h"
#include "pmcp/plugin.hpp"
#include "protocol.hpp"
#include "sandbox.hpp"
#include "supervisor_client.hpp"

namespace pmcp::host {

// A set of ids stored as disjoint ranges, so that remembering every finished process of a long
// run costs little when ids are handed out in order.
class IdSet {
 public:
  void insert(uint64_t id);
  bool contains(uint64_t id) const;

 private:
  std::map<uint64_t, uint64_t> ranges_;  // first -> last, inclusive
};

class HostExecutor final : public sdk::ExecutorBase {
 public:
  // Throws sdk::Error when the instance cannot be set up.
  // sandbox: null when commands run unsandboxed ([host.sandbox] enabled = false).
  HostExecutor(const pmcp_host* host, const pmcp_executor_sink& sink, std::string supervisor,
               std::string default_cwd, std::unique_ptr<Sandbox> sandbox);
  ~HostExecutor() override;

  HostExecutor(const HostExecutor&) = delete;
  HostExecutor& operator=(const HostExecutor&) = delete;

  void spawn(const pmcp_spawn_options& options) override;
  void write_stdin(uint64_t id, const uint8_t* data, std::size_t size) override;
  void close_stdin(uint64_t id) override;
  void signal(uint64_t id, int32_t signo) override;
  void resize(uint64_t id, uint16_t cols, uint16_t rows) override;

  const char* default_cwd() const noexcept { return default_cwd_.c_str(); }

 private:
  struct Proc;
  using Clock = std::chrono::steady_clock;

  // Core thread helpers (mu_ held).
  Proc* find_locked(uint64_t id, const char* what);
  void wake();

  // Executor thread.
  void run() noexcept;
  void loop();
  bool take_commands();  // returns true when destroy() asked us to stop
  void start(std::unique_ptr<Proc> owned);
  void adopt_launched();  // takes what spawn() launched itself into live_
  void handle_event(uint64_t tag, uint32_t events);
  bool on_status(Proc& p);
  // sender: the pid the kernel attached (sandboxed commands), or 0; passed: a descriptor that
  // came with the record, or -1 (on_record owns it). False: stop reading, p may be gone.
  bool on_record(Proc& p, const proto::Record& r, std::string_view text, pid_t sender, int passed);
  // The command's channel is done: the launcher reported the exit, or closed it (killed).
  void on_channel_end(Proc& p);
  void read_output(Proc& p, bool is_stderr, std::size_t max_bytes);
  // A terminal's last output, read after its end marker was written: passes on what precedes
  // the marker. False once the marker was found (the output is closed).
  bool take_until_end(Proc& p, std::string_view bytes);
  // Writes what is left of the end marker through the terminal's peer; true if it wrote some.
  bool write_end_marker(Proc& p);
  void close_output(Proc& p, bool is_stderr);
  void flush_stdin_locked(Proc& p);
  void want_writable(Proc& p, bool on);
  bool maybe_finish(Proc& p);
  void finish(Proc& p);
  void fail_start(Proc& p, int32_t status, const std::string& message);
  void check_deadlines();
  int next_timeout_ms() const;
  void shutdown();
  void epoll_add(int fd, uint64_t token, int kind, uint32_t events);
  void epoll_mod(int fd, uint64_t token, int kind, uint32_t events);
  void epoll_del(int fd);
  void log(pmcp_log_level level, const std::string& message) const;
  std::string describe_failure(const Proc& p, int32_t stage, int err) const;
  std::vector<std::string> supervisor_command_line() const;
  // The supervisor's start, for spawns without a sandbox: empty once it runs, else why not.
  // Waits until the executor thread has tried.
  const std::string& start_verdict() const;
  void set_start_verdict(std::string error);

  const pmcp_host* host_;
  pmcp_executor_sink sink_{};
  const std::string supervisor_;
  const std::string default_cwd_;
  const std::unique_ptr<Sandbox> sandbox_;
  // client_ is used under client_mu_: by the executor thread, and by spawn() for its fast path
  // (launch_running, which forks nothing).
  std::mutex client_mu_;
  SupervisorClient client_;
  mutable std::mutex start_mutex_;
  mutable std::condition_variable start_done_cv_;
  bool start_done_ = false;
  std::string start_error_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // The descriptors of the next command, made by spawn() once the current one has gone to the
  // supervisor, so that the next request does not wait for them: the command's channel (a
  // socket pair) and its stdin, stdout and stderr pipes (ours non-blocking: the write end of
  // stdin, the read ends of the others). -1 where not made (the next spawn makes it, or
  // reports why it cannot). Only spawn() touches them, on the core thread.
  struct Next {
    int channel[2] = {-1, -1};
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    void make() noexcept;                         // best effort
    static bool make_pipe(int fds[2], int ours);  // false with errno set
    Next() = default;
    Next(const Next&) = delete;
    Next& operator=(const Next&) = delete;
    ~Next();
  } next_;

  // Shared between the core thread and the executor thread.
  std::mutex mu_;
  bool stop_ = false;
  uint64_t next_token_ = 0;
  std::unordered_map<uint64_t, Proc*> by_id_;    // live processes by process_id
  IdSet finished_;                               // process ids that are done
  std::vector<std::unique_ptr<Proc>> to_start_;  // accepted, not forked yet
  std::vector<std::unique_ptr<Proc>> launched_;  // launched by spawn() itself, to be adopted
  std::vector<uint64_t> stdin_dirty_;            // tokens with new stdin work

  // Executor thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Proc>> live_;  // by token
  std::unique_ptr<uint8_t[]> buffer_;
  std::string end_marker_;  // ends a terminal's output (random for each executor)
  std::thread thread_;
};

}  // namespace pmcp::host
