// Registry: maps executor events onto process records; output goes into bounded buffers
// (and the terminal for TTY processes), exits release their waiters.
#include "process/registry.hpp"

#include <algorithm>

namespace pmcp::process {

std::string_view status_name(Status status) {
  switch (status) {
    case Status::starting:
      return "starting";
    case Status::running:
      return "running";
    case Status::terminated:
      return "terminated";
  }
  return "unknown";
}

Registry::Registry(Executor& executor, RegistryLimits limits)
    : executor_(executor), limits_(limits) {}

void Registry::start(StartRequest request, StartedFn started) {
  if (running_count() >= limits_.max_processes) {
    std::string message = "too many processes: " + std::to_string(running_count()) +
                          " are running, the limit is " + std::to_string(limits_.max_processes) +
                          " (limits.max_processes); kill some with the kill tool first";
    // Never call back inside start(): post through the executor-independent path.
    started(make_error(ErrorCode::unavailable, std::move(message)));
    return;
  }
  auto process = std::make_shared<Process>(limits_.output_buffer_bytes);
  process->number = next_number_++;
  process->id = executor_.id_prefix() + "-" + std::to_string(process->number);
  process->command = request.command;
  process->cwd = request.cwd.empty() ? executor_.default_cwd() : request.cwd;
  process->tty = request.tty;
  process->owner = request.owner;
  process->seen_by.insert(request.owner);
  process->created_at = std::chrono::system_clock::now();
  if (request.tty) {
    process->terminal =
        std::make_unique<Terminal>(request.cols, request.rows, limits_.scrollback_lines);
  }
  SpawnRequest spawn;
  spawn.id = process->number;
  spawn.argv = std::move(request.argv);
  spawn.env = std::move(request.env);
  spawn.cwd = process->cwd;
  spawn.tty = request.tty;
  spawn.cols = request.cols;
  spawn.rows = request.rows;
  processes_[process->number] = process;
  starting_[process->number] = std::move(started);
  if (auto accepted = executor_.spawn(spawn); !accepted) {
    processes_.erase(process->number);
    auto fn = std::move(starting_[process->number]);
    starting_.erase(process->number);
    fn(std::move(accepted).error());
  }
}

void Registry::on_spawned(uint64_t id, Result<void> outcome, int64_t os_pid) {
  auto it = starting_.find(id);
  if (it == starting_.end()) return;
  StartedFn fn = std::move(it->second);
  starting_.erase(it);
  auto p = processes_.find(id);
  if (p == processes_.end()) return;
  ProcessPtr process = p->second;
  if (!outcome) {
    processes_.erase(p);
    fn(std::move(outcome).error());
    return;
  }
  process->status = Status::running;
  process->os_pid = os_pid;
  fn(process);
}

void Registry::on_output(uint64_t id, int stream, std::string_view bytes) {
  auto p = processes_.find(id);
  if (p == processes_.end()) return;
  Process& process = *p->second;
  if (stream == PMCP_STREAM_STDERR) {
    process.stderr_buffer.append(bytes);
  } else {
    process.stdout_buffer.append(bytes);
    if (process.terminal) {
      process.terminal->feed(bytes);
      // Answers to terminal queries (cursor position, device attributes) go back to the
      // program, as a real terminal would send them.
      std::string replies = process.terminal->take_replies();
      if (!replies.empty() && process.running()) (void)executor_.write_stdin(id, replies);
    }
  }
  // Copy the matching watches first: a callback may unwatch.
  std::vector<WatchFn> fns;
  for (const auto& [token, watch] : output_watches_) {
    if (watch.process == id) fns.push_back(watch.fn);
  }
  for (auto& fn : fns) fn(process);
  if (output_listener_) output_listener_(process, stream);
}

void Registry::on_exit(uint64_t id, int exit_code, int term_signal, std::string message) {
  auto p = processes_.find(id);
  if (p == processes_.end()) return;
  ProcessPtr process = p->second;
  if (process->status == Status::terminated) return;  // reported once; never counted twice
  process->status = Status::terminated;
  terminated_.insert(id);
  process->ended_at = std::chrono::system_clock::now();
  if (exit_code >= 0) process->exit_code = exit_code;
  process->term_signal = term_signal;
  process->exit_message = std::move(message);
  std::vector<WatchFn> fns;
  for (auto it = exit_watches_.begin(); it != exit_watches_.end();) {
    if (it->second.process == id) {
      fns.push_back(std::move(it->second.fn));
      it = exit_watches_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = output_watches_.begin(); it != output_watches_.end();) {
    it = it->second.process == id ? output_watches_.erase(it) : std::next(it);
  }
  for (auto& fn : fns) fn(*process);
  if (exit_listener_) exit_listener_(*process);
  evict_terminated();
}

void Registry::evict_terminated() {
  while (terminated_.size() > limits_.keep_terminated) {
    processes_.erase(*terminated_.begin());
    terminated_.erase(terminated_.begin());
  }
}

ProcessPtr Registry::find(std::string_view id) const {
  std::string prefix = executor_.id_prefix() + "-";
  if (id.substr(0, prefix.size()) != prefix) return nullptr;
  std::string_view digits = id.substr(prefix.size());
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return nullptr;
  }
  auto it = processes_.find(std::stoull(std::string(digits)));
  return it == processes_.end() || it->second->status == Status::starting ? nullptr : it->second;
}

Result<ProcessPtr> Registry::get(std::string_view id) const {
  if (auto p = find(id)) return p;
  std::string known;
  std::size_t shown = 0;
  for (auto it = processes_.rbegin(); it != processes_.rend() && shown < 10; ++it, ++shown) {
    known += (known.empty() ? "" : ", ") + it->second->id;
  }
  std::string message = "unknown process id '" + std::string(id) + "'";
  message += known.empty() ? "; no processes exist yet (start one with spawn)"
                           : "; known ids include " + known + " (see ps)";
  if (next_number_ > 1 && known.empty())
    message += "; ended processes are forgotten after " + std::to_string(limits_.keep_terminated);
  return make_error(ErrorCode::not_found, std::move(message));
}

std::vector<ProcessPtr> Registry::list() const {
  std::vector<ProcessPtr> out;
  for (const auto& [n, p] : processes_) {
    if (p->status != Status::starting) out.push_back(p);
  }
  return out;
}

std::size_t Registry::running_count() const { return processes_.size() - terminated_.size(); }

uint64_t Registry::on_exit(const ProcessPtr& process, WatchFn fn) {
  uint64_t token = next_token_++;
  if (!process->running()) {
    fn(*process);
    return token;
  }
  exit_watches_[token] = Watch{process->number, std::move(fn)};
  return token;
}

uint64_t Registry::on_output(const ProcessPtr& process, WatchFn fn) {
  uint64_t token = next_token_++;
  if (process->running()) output_watches_[token] = Watch{process->number, std::move(fn)};
  return token;
}

void Registry::unwatch(uint64_t token) {
  exit_watches_.erase(token);
  output_watches_.erase(token);
}

}  // namespace pmcp::process
