// The process registry: every process the server started, with its status, output buffers
// and terminal. Owns the executor events; core thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "process/executor.hpp"
#include "process/output_buffer.hpp"
#include "process/terminal.hpp"
#include "util/result.hpp"

namespace pmcp::process {

enum class Status { starting, running, terminated };
std::string_view status_name(Status status);

struct RegistryLimits {
  std::size_t output_buffer_bytes = 1 << 20;
  std::size_t scrollback_lines = 10000;
  std::size_t keep_terminated = 100;
  std::size_t max_processes = 1000;
};

// A client session as the registry knows it: (transport index, transport session id).
using SessionTag = std::pair<uint32_t, uint64_t>;

struct Process {
  uint64_t number = 0;  // the executor-facing id
  std::string id;       // the user-facing id, e.g. "host-3"
  std::string command;
  std::string cwd;
  bool tty = false;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> ended_at;
  Status status = Status::starting;
  std::optional<int> exit_code;  // set when it exited normally
  int term_signal = 0;           // set when a signal ended it
  std::string exit_message;      // from the executor, when something went wrong
  int64_t os_pid = 0;
  bool stdin_closed = false;
  // Where the output stood at the last stdin write, and what was written (for wait's default
  // starting point and skipping the terminal's echo).
  uint64_t input_mark_stdout = 0;
  uint64_t input_mark_stderr = 0;
  std::string last_input;
  bool has_input = false;
  SessionTag owner{};                 // the session that started it
  std::set<SessionTag> seen_by;       // sessions that started or touched it (exit notices)

  OutputBuffer stdout_buffer;  // for a TTY: the raw terminal byte stream
  OutputBuffer stderr_buffer;
  std::unique_ptr<Terminal> terminal;  // TTY processes only

  Process(std::size_t buffer_bytes) : stdout_buffer(buffer_bytes), stderr_buffer(buffer_bytes) {}
  bool running() const { return status != Status::terminated; }
};

using ProcessPtr = std::shared_ptr<Process>;

struct StartRequest {
  SessionTag owner{};
  std::string command;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;  // may be empty: the executor's default
  bool tty = false;
  uint16_t cols = 0;
  uint16_t rows = 0;
};

class Registry : public ExecutorEvents {
 public:
  using StartedFn = std::function<void(Result<ProcessPtr>)>;
  using WatchFn = std::function<void(const Process&)>;

  Registry(Executor& executor, RegistryLimits limits);

  // Starts a process; `started` runs once, on the core thread, after the executor reported
  // the outcome (never inside this call).
  void start(StartRequest request, StartedFn started);

  ProcessPtr find(std::string_view id) const;
  // Error naming the id and what exists when it is unknown.
  Result<ProcessPtr> get(std::string_view id) const;
  std::vector<ProcessPtr> list() const;  // oldest first
  std::size_t running_count() const;

  // Calls fn once when the process ends (at once if it already has). Returns a token for
  // unwatch(). fn runs on the core thread.
  uint64_t on_exit(const ProcessPtr& process, WatchFn fn);
  // Calls fn after each chunk of output while the watch exists.
  uint64_t on_output(const ProcessPtr& process, WatchFn fn);
  void unwatch(uint64_t token);

  // Called for each process that ends, after its waiters (exit notices).
  void set_exit_listener(WatchFn fn) { exit_listener_ = std::move(fn); }
  // Called after every chunk of output of any process (resource subscriptions).
  void set_output_listener(std::function<void(const Process&, int stream)> fn) {
    output_listener_ = std::move(fn);
  }

  Executor& executor() { return executor_; }

  // ExecutorEvents
  void on_spawned(uint64_t id, Result<void> outcome, int64_t os_pid) override;
  void on_output(uint64_t id, int stream, std::string_view bytes) override;
  void on_exit(uint64_t id, int exit_code, int term_signal, std::string message) override;

 private:
  struct Watch {
    uint64_t process;
    WatchFn fn;
  };
  void evict_terminated();

  Executor& executor_;
  RegistryLimits limits_;
  uint64_t next_number_ = 1;
  uint64_t next_token_ = 1;
  std::map<uint64_t, ProcessPtr> processes_;  // by number: oldest first
  // The numbers of the ended processes still in processes_, oldest first: evicting them and
  // counting the running ones must not walk every process on each spawn and exit.
  std::set<uint64_t> terminated_;
  std::map<uint64_t, StartedFn> starting_;
  std::map<uint64_t, Watch> exit_watches_;
  std::map<uint64_t, Watch> output_watches_;
  WatchFn exit_listener_;
  std::function<void(const Process&, int stream)> output_listener_;
};

}  // namespace pmcp::process
