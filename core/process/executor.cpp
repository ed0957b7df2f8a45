// Executor wrapper: every sink callback copies its arguments and posts them to the core
// thread; a shared "alive" flag drops events that arrive after destroy().
#include "process/executor.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pmcp::process {

struct Executor::Shared : std::enable_shared_from_this<Executor::Shared> {
  // Output bytes posted to the core thread but not handled yet. on_output waits while this is
  // above kMaxQueued: back-pressure, so a child that writes faster than the core can render
  // cannot grow memory or delay other work (pings, kills) without bound. Small on purpose:
  // rendering a scrolling terminal costs microseconds per byte, so this bounds the delay.
  static constexpr std::size_t kMaxQueued = 128 << 10;
  // A terminal's output is rendered on the core thread (libvterm), at a few MB/s: with 128 KiB
  // of it queued ahead of a ping, a program flooding its terminal delayed pings by 50-70 ms at
  // p99 and up to 100 ms (pmcp-bench-floods). So a terminal's output is posted in small pieces
  // and waits until less than kMaxQueuedTerminal is queued: at most that much rendering is
  // ahead of any other event. Pipes keep the large pieces: they cost a copy, not a rendering.
  static constexpr std::size_t kTerminalPiece = 4 << 10;
  static constexpr std::size_t kMaxQueuedTerminal = 16 << 10;

  // A terminal's output waiting for the core thread, in order; at most one handler is posted
  // for it at a time, and that handler takes all of it. While the core renders, the pieces
  // that arrive join the next handler's batch, so a flood is rendered in batches of up to
  // kMaxQueuedTerminal rather than piece by piece. That is what lets the terminal's fast
  // scrolling skip most lines of a flood (Terminal::scroll_plain_lines: only the last
  // screenful of a batch is drawn), and it bounds the work ahead of other events as before.
  struct Segment {
    int32_t stream;
    std::string bytes;
  };
  struct Batch {
    std::vector<Segment> segments;  // in order; consecutive bytes of one stream are joined
    std::size_t size = 0;
  };

  boost::asio::io_context* io;
  ExecutorEvents* events;
  std::atomic<bool> alive{true};
  std::mutex mutex;
  std::condition_variable drained;
  std::size_t queued = 0;
  std::unordered_set<uint64_t> terminals;       // ids of processes spawned with a terminal
  std::unordered_map<uint64_t, Batch> batches;  // terminal output posted, not yet taken

  // Adds a terminal's piece to its batch; true when a handler must be posted for it.
  // [mutex held]
  bool add_to_batch(uint64_t id, int32_t stream, const char* data, std::size_t size) {
    auto [it, fresh] = batches.try_emplace(id);
    Batch& batch = it->second;
    if (batch.segments.empty() || batch.segments.back().stream != stream) {
      batch.segments.push_back(Segment{stream, {}});
    }
    batch.segments.back().bytes.append(data, size);
    batch.size += size;
    return fresh;
  }

  // Takes the batch of `id` and hands it to the core. [core thread]
  void deliver_batch(uint64_t id) {
    Batch batch;
    {
      std::lock_guard lock(mutex);
      auto it = batches.find(id);
      if (it == batches.end()) return;
      batch = std::move(it->second);
      batches.erase(it);
    }
    for (Segment& segment : batch.segments) {
      if (alive) events->on_output(id, segment.stream, std::move(segment.bytes));
    }
    release(batch.size);
  }

  void release(std::size_t size) {
    {
      std::lock_guard lock(mutex);
      queued -= size;
    }
    drained.notify_all();
  }
};

Error status_error(int32_t status, std::string message) {
  ErrorCode code = ErrorCode::internal;
  switch (status) {
    case PMCP_ERR_INVALID_ARGUMENT:
      code = ErrorCode::invalid_argument;
      break;
    case PMCP_ERR_NOT_FOUND:
      code = ErrorCode::not_found;
      break;
    case PMCP_ERR_UNSUPPORTED:
      code = ErrorCode::unsupported;
      break;
    case PMCP_ERR_STATE:
      code = ErrorCode::state;
      break;
    case PMCP_ERR_IO:
      code = ErrorCode::io;
      break;
    case PMCP_ERR_DENIED:
      code = ErrorCode::denied;
      break;
    case PMCP_ERR_UNAVAILABLE:
      code = ErrorCode::unavailable;
      break;
    default:
      break;
  }
  if (message.empty()) message = "executor error " + std::to_string(status);
  return Error{code, std::move(message)};
}

namespace {

using ErrorText = std::array<char, 1024>;

pmcp_error_buf buf(ErrorText& text) {
  text[0] = '\0';
  return pmcp_error_buf{text.data(), text.size()};
}

std::string to_string(pmcp_str s) { return s.data ? std::string(s.data, s.size) : std::string(); }

Result<void> check(int32_t status, const ErrorText& text) {
  if (status == PMCP_OK) return {};
  return status_error(status, std::string(text.data()));
}

}  // namespace

Executor::Executor(boost::asio::io_context& io) : io_(io), shared_(std::make_shared<Shared>()) {
  shared_->io = &io_;
  shared_->events = nullptr;
  sink_.struct_size = sizeof(sink_);
  // The sink keeps a raw pointer to Shared; Shared outlives the instance because destroy()
  // runs before this object (and its shared_ptr) goes away.
  sink_.ctx = shared_.get();
  sink_.on_spawned = [](void* ctx, uint64_t id, int32_t status, int64_t os_pid, pmcp_str msg) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive) return;
    std::string text = to_string(msg);
    boost::asio::post(*shared->io, [shared, id, status, os_pid, text = std::move(text)]() mutable {
      if (status != PMCP_OK) {
        std::lock_guard lock(shared->mutex);
        shared->terminals.erase(id);  // no exit follows a failed start
      }
      if (!shared->alive) return;
      Result<void> outcome;
      if (status != PMCP_OK) outcome = status_error(status, std::move(text));
      shared->events->on_spawned(id, std::move(outcome), os_pid);
    });
  };
  sink_.on_output = [](void* ctx, uint64_t id, int32_t stream, const uint8_t* data, size_t size) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive || size == 0) return;
    std::size_t piece = size;
    std::size_t limit = Shared::kMaxQueued;
    bool terminal = false;
    for (std::size_t offset = 0; offset < size; offset += piece) {
      const char* bytes_at = reinterpret_cast<const char*>(data) + offset;
      bool post_batch = false;
      {
        std::unique_lock lock(shared->mutex);
        if (offset == 0 && shared->terminals.count(id) != 0) {
          terminal = true;
          piece = Shared::kTerminalPiece;
          limit = Shared::kMaxQueuedTerminal;
        }
        piece = std::min(piece, size - offset);
        // Never wait on the core thread itself (that would wait for ourselves).
        if (!shared->io->get_executor().running_in_this_thread()) {
          shared->drained.wait(lock, [&] { return shared->queued < limit || !shared->alive; });
        }
        if (!shared->alive) return;
        shared->queued += piece;
        if (terminal) post_batch = shared->add_to_batch(id, stream, bytes_at, piece);
      }
      if (terminal) {
        // A handler already posted takes this piece too, whenever it runs: it was posted
        // before anything this thread posts later, such as the exit.
        if (post_batch) {
          boost::asio::post(*shared->io, [shared, id] { shared->deliver_batch(id); });
        }
        continue;
      }
      // Posted in order from one thread: the core thread handles the pieces in order.
      std::string bytes(bytes_at, piece);
      boost::asio::post(*shared->io, [shared, id, stream, bytes = std::move(bytes)]() mutable {
        std::size_t n = bytes.size();
        if (shared->alive) shared->events->on_output(id, stream, std::move(bytes));
        shared->release(n);
      });
    }
  };
  sink_.on_exit = [](void* ctx, uint64_t id, int32_t code, int32_t sig, pmcp_str msg) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive) return;
    std::string text = to_string(msg);
    boost::asio::post(*shared->io, [shared, id, code, sig, text = std::move(text)]() mutable {
      {
        std::lock_guard lock(shared->mutex);
        shared->terminals.erase(id);
      }
      if (shared->alive) shared->events->on_exit(id, code, sig, std::move(text));
    });
  };
}

Executor::~Executor() { destroy(); }

Result<void> Executor::create(const pmcp_executor_factory* factory, const pmcp_host* host,
                              const std::string& config_json, ExecutorEvents& events) {
  shared_->events = &events;
  if (factory == nullptr || factory->create == nullptr) {
    return make_error(ErrorCode::internal, "the executor factory has no create function");
  }
  ErrorText text;
  pmcp_executor* out = nullptr;
  int32_t status = factory->create(factory, host, pmcp_str{config_json.data(), config_json.size()},
                                   &sink_, &out, buf(text));
  if (status != PMCP_OK) return status_error(status, std::string(text.data()));
  if (out == nullptr ||
      out->struct_size < offsetof(pmcp_executor, destroy) + sizeof(out->destroy)) {
    return make_error(ErrorCode::internal, "the executor plugin returned an invalid instance");
  }
  instance_ = out;
  id_prefix_ = out->id_prefix ? out->id_prefix : "proc";
  default_cwd_ = out->default_cwd ? out->default_cwd : "/";
  return {};
}

Result<void> Executor::spawn(const SpawnRequest& request) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  std::vector<const char*> argv;
  for (const auto& a : request.argv) argv.push_back(a.c_str());
  std::vector<const char*> envp;
  for (const auto& e : request.env) envp.push_back(e.c_str());
  pmcp_spawn_options options{};
  options.struct_size = sizeof(options);
  options.process_id = request.id;
  options.argv = argv.data();
  options.argc = argv.size();
  options.envp = envp.data();
  options.envc = envp.size();
  options.cwd = pmcp_str{request.cwd.data(), request.cwd.size()};
  options.flags = request.tty ? PMCP_SPAWN_PTY : 0u;
  options.cols = request.cols;
  options.rows = request.rows;
  if (request.tty) {
    // Before the plugin can report any output of it.
    std::lock_guard lock(shared_->mutex);
    shared_->terminals.insert(request.id);
  }
  ErrorText text;
  Result<void> started = check(instance_->spawn(instance_, &options, buf(text)), text);
  if (!started && request.tty) {
    std::lock_guard lock(shared_->mutex);
    shared_->terminals.erase(request.id);
  }
  return started;
}

Result<void> Executor::write_stdin(uint64_t id, std::string_view bytes) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->write_stdin(instance_, id, reinterpret_cast<const uint8_t*>(bytes.data()),
                                      bytes.size(), buf(text)),
               text);
}

Result<void> Executor::close_stdin(uint64_t id) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->close_stdin(instance_, id, buf(text)), text);
}

Result<void> Executor::signal(uint64_t id, int signo) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->signal(instance_, id, signo, buf(text)), text);
}

Result<void> Executor::resize(uint64_t id, uint16_t cols, uint16_t rows) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->resize(instance_, id, cols, rows, buf(text)), text);
}

void Executor::destroy() {
  if (!instance_) return;
  pmcp_executor* instance = instance_;
  instance_ = nullptr;
  // Events from here on are dropped, and a plugin thread waiting in on_output is released,
  // so destroy() can join it.
  {
    std::lock_guard lock(shared_->mutex);
    shared_->alive = false;
  }
  shared_->drained.notify_all();
  instance->destroy(instance);
}

}  // namespace pmcp::process
