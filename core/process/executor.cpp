// Executor wrapper: every sink callback copies its arguments into one queue of events that the
// core thread drains in order; a shared "alive" flag drops events that arrive after destroy().
#include "process/executor.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstddef>
#include <ctime>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

namespace pmcp::process {

// Memory for the drain handler (see Shared::drain): posting it allocates nothing. Asio frees a
// handler's memory before it runs the handler, so the block is free again before the next post
// can happen; only while a drain posted again after an exit waits beside one posted by push()
// does the second take memory from the heap. Kept apart from Shared, by the allocator's own
// shared_ptr, so that it outlives a handler destroyed without running (io_context teardown).
struct HandlerMemory {
  alignas(std::max_align_t) unsigned char block[256];
  std::atomic<bool> in_use{false};

  void* allocate(std::size_t size) {
    bool expected = false;
    if (size <= sizeof block && in_use.compare_exchange_strong(expected, true)) return block;
    return ::operator new(size);
  }
  void deallocate(void* p) {
    if (p == block) {
      in_use.store(false);
    } else {
      ::operator delete(p);
    }
  }
};

template <typename T>
struct HandlerAllocator {
  using value_type = T;
  std::shared_ptr<HandlerMemory> memory;

  explicit HandlerAllocator(std::shared_ptr<HandlerMemory> m) : memory(std::move(m)) {}
  template <typename U>
  HandlerAllocator(const HandlerAllocator<U>& other) : memory(other.memory) {}
  T* allocate(std::size_t n) { return static_cast<T*>(memory->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) { memory->deallocate(p); }
  template <typename U>
  bool operator==(const HandlerAllocator<U>& other) const {
    return memory == other.memory;
  }
  template <typename U>
  bool operator!=(const HandlerAllocator<U>& other) const {
    return memory != other.memory;
  }
};

namespace {

// CPU time of the calling thread.
int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

struct Executor::Shared : std::enable_shared_from_this<Executor::Shared> {
  // Output bytes posted to the core thread but not handled yet. on_output waits while this is
  // above kMaxQueued: back-pressure, so a child that writes faster than the core can render
  // cannot grow memory or delay other work (pings, kills) without bound. Small on purpose:
  // rendering a scrolling terminal costs microseconds per byte, so this bounds the delay.
  static constexpr std::size_t kMaxQueued = 128 << 10;
  // A terminal's output is rendered on the core thread (libvterm), at a few MB/s: with 128 KiB
  // of it queued ahead of a ping, a program flooding its terminal delayed pings by 50-70 ms at
  // p99 and up to 100 ms (pmcp-bench-floods). So a terminal's output is taken in small pieces
  // and waits while terminal_limit is queued: a bound on the rendering ahead of any other
  // event. Pipes keep the large pieces: they cost a copy, not a rendering.
  //
  // The bound is set by what rendering costs (measured on the core thread, per byte): about
  // kTerminalBudgetNs of it, between kMinQueuedTerminal and kMaxQueuedTerminal. Text that scrolls
  // by renders cheaply per byte, and the larger a batch the cheaper (Terminal::scroll_plain_lines
  // draws only the last screenful of each batch), so it gets large batches; what is costly per
  // byte (a line that wraps on and on, escape sequences) gets small ones. A rise of the cost is
  // taken at once, a fall slowly, and a small event counts for its share of a piece: after a
  // change from cheap to costly output, one batch of at most kMaxQueuedTerminal may take longer
  // than the budget.
  static constexpr std::size_t kTerminalPiece = 4 << 10;
  static constexpr std::size_t kMinQueuedTerminal = 16 << 10;
  static constexpr std::size_t kMaxQueuedTerminal = 64 << 10;
  static constexpr double kTerminalBudgetNs = 1.5e6;
  // Spare output buffers kept for reuse, at most this much capacity in all: enough for what
  // may be queued, so that output in steady state allocates nothing.
  static constexpr std::size_t kMaxPooled = 256 << 10;

  struct Event {
    enum class Kind : uint8_t { spawned, output, exit } kind;
    bool terminal = false;  // output of a terminal: later pieces may join it
    uint64_t id = 0;
    int32_t stream = 0;  // output
    int32_t status = 0;  // spawned: the status; exit: the exit code
    int32_t signal = 0;  // exit
    int64_t os_pid = 0;  // spawned
    std::string bytes;   // output: the bytes; spawned, exit: the message
  };

  boost::asio::io_context* io;
  ExecutorEvents* events;
  std::atomic<bool> alive{true};
  std::mutex mutex;
  std::condition_variable drained;
  std::size_t queued = 0;                  // output bytes in `queue` and `taken`
  std::size_t terminal_limit = kMinQueuedTerminal;  // see kTerminalBudgetNs
  // What rendering a terminal's output costs per byte, as last estimated. [core thread]
  double terminal_ns_per_byte = kTerminalBudgetNs / double(kMinQueuedTerminal);
  std::unordered_set<uint64_t> terminals;  // ids of processes spawned with a terminal
  // Every event of the plugin, in the order it was reported, waits here for the core thread.
  // At most one drain handler is posted at a time, and it takes the whole queue: while the
  // core is busy, events pile up and are handled in one go, with one wake-up. A terminal's
  // output that arrives while its last piece still waits joins that piece, so a flood is
  // rendered in batches of up to terminal_limit rather than piece by piece: that lets the
  // terminal's fast scrolling skip most lines of a flood (Terminal::scroll_plain_lines draws
  // only the last screenful of a batch), and bounds the work ahead of other events as before.
  std::vector<Event> queue;
  bool drain_posted = false;
  std::vector<Event> taken;         // what the running drain took [core thread]
  std::size_t next_taken = 0;       // the first of `taken` not handled yet [core thread]
  std::vector<std::string> pool;    // spare output buffers
  std::size_t pooled_capacity = 0;  // their capacity in all
  std::shared_ptr<HandlerMemory> handler_memory = std::make_shared<HandlerMemory>();

  // Queues an event; posts the drain unless one is posted and has not taken the queue yet.
  // [mutex held by `lock`, which this releases]
  void push(std::unique_lock<std::mutex>& lock, Event&& event) {
    queue.push_back(std::move(event));
    if (drain_posted) return;
    drain_posted = true;
    lock.unlock();
    boost::asio::post(*io,
                      boost::asio::bind_allocator(HandlerAllocator<void>(handler_memory),
                                                  [self = shared_from_this()] { self->drain(); }));
  }

  // A buffer holding `size` bytes of `data`, with room for `room` in all: a spare one when
  // there is one. [mutex held]
  std::string buffer_of(const char* data, std::size_t size, std::size_t room) {
    std::string bytes;
    if (!pool.empty()) {
      bytes = std::move(pool.back());
      pool.pop_back();
      pooled_capacity -= bytes.capacity();
    }
    bytes.reserve(room);
    bytes.assign(data, size);
    return bytes;
  }

  // The last event of `id` in the queue, if it is output of a terminal on `stream` that more
  // may join. [mutex held]
  Event* joinable(uint64_t id, int32_t stream) {
    for (auto it = queue.rbegin(); it != queue.rend(); ++it) {
      if (it->id != id) continue;
      if (it->kind == Event::Kind::output && it->terminal && it->stream == stream) return &*it;
      return nullptr;
    }
    return nullptr;
  }

  // Handles what was queued, in order. An exit can cost the core a result of megabytes (a
  // foreground spawn's answer with all its output), so after one, the rest of what was taken
  // waits behind what was posted meanwhile (a ping, another session's call): a handler posted
  // again picks up where this one stopped. Any drain that runs first resumes there too, and
  // takes the queue only when nothing taken is left. [core thread]
  void drain() {
    if (next_taken == taken.size()) {
      taken.clear();
      next_taken = 0;
      std::lock_guard lock(mutex);
      taken.swap(queue);
      drain_posted = false;
    }
    while (next_taken < taken.size()) {
      Event& event = taken[next_taken++];
      if (handle(event) && next_taken < taken.size()) {
        boost::asio::post(
            *io, boost::asio::bind_allocator(HandlerAllocator<void>(handler_memory),
                                             [self = shared_from_this()] { self->drain(); }));
        return;
      }
    }
    taken.clear();
    next_taken = 0;
  }

  // Handles one event; true when it was an exit. [core thread]
  bool handle(Event& event) {
    switch (event.kind) {
      case Event::Kind::spawned:
        if (event.status != PMCP_OK) {
          std::lock_guard lock(mutex);
          terminals.erase(event.id);  // no exit follows a failed start
        }
        if (alive) {
          Result<void> outcome;
          if (event.status != PMCP_OK) outcome = status_error(event.status, event.bytes);
          events->on_spawned(event.id, std::move(outcome), event.os_pid);
        }
        return false;
      case Event::Kind::output: {
        const bool timed = event.terminal && alive && !event.bytes.empty();
        // The core thread's own time: a wait for a CPU is not what rendering costs.
        const int64_t start = timed ? thread_cpu_ns() : 0;
        if (alive) events->on_output(event.id, event.stream, event.bytes);
        if (timed) {
          const double ns = double(thread_cpu_ns() - start);
          // A small event says little about a flood (its cost is mostly fixed): it counts for
          // its share of a piece.
          const double size = double(event.bytes.size());
          const double cost = ns / size;
          const double weight = std::min(1.0, size / double(kTerminalPiece));
          terminal_ns_per_byte += (cost > terminal_ns_per_byte ? weight : weight * 0.125) *
                                  (cost - terminal_ns_per_byte);
        }
        {
          std::lock_guard lock(mutex);
          if (timed) {
            const double fits = kTerminalBudgetNs / std::max(terminal_ns_per_byte, 1e-3);
            terminal_limit = fits >= double(kMaxQueuedTerminal)   ? kMaxQueuedTerminal
                             : fits <= double(kMinQueuedTerminal) ? kMinQueuedTerminal
                                                                  : static_cast<std::size_t>(fits);
          }
          queued -= event.bytes.size();
          if (pooled_capacity + event.bytes.capacity() <= kMaxPooled) {
            pooled_capacity += event.bytes.capacity();
            pool.push_back(std::move(event.bytes));
          }
        }
        drained.notify_all();
        return false;
      }
      case Event::Kind::exit: {
        {
          std::lock_guard lock(mutex);
          terminals.erase(event.id);
        }
        if (alive) events->on_exit(event.id, event.status, event.signal, event.bytes);
        return true;
      }
    }
    return false;
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
  // More than the events that usually wait at once, so that the queue rarely grows.
  shared_->queue.reserve(16);
  shared_->taken.reserve(16);
  shared_->pool.reserve(64);
  sink_.struct_size = sizeof(sink_);
  // The sink keeps a raw pointer to Shared; Shared outlives the instance because destroy()
  // runs before this object (and its shared_ptr) goes away.
  sink_.ctx = shared_.get();
  sink_.on_spawned = [](void* ctx, uint64_t id, int32_t status, int64_t os_pid, pmcp_str msg) {
    auto* shared = static_cast<Shared*>(ctx);
    if (!shared->alive) return;
    Shared::Event event{Shared::Event::Kind::spawned};
    event.id = id;
    event.status = status;
    event.os_pid = os_pid;
    event.bytes = to_string(msg);
    std::unique_lock lock(shared->mutex);
    shared->push(lock, std::move(event));
  };
  sink_.on_output = [](void* ctx, uint64_t id, int32_t stream, const uint8_t* data, size_t size) {
    auto* shared = static_cast<Shared*>(ctx);
    if (!shared->alive || size == 0) return;
    std::size_t piece = size;
    std::size_t limit = Shared::kMaxQueued;
    bool terminal = false;
    for (std::size_t offset = 0; offset < size; offset += piece) {
      const char* bytes_at = reinterpret_cast<const char*>(data) + offset;
      std::unique_lock lock(shared->mutex);
      if (offset == 0 && shared->terminals.count(id) != 0) {
        terminal = true;
        piece = Shared::kTerminalPiece;
      }
      piece = std::min(piece, size - offset);
      // Never wait on the core thread itself (that would wait for ourselves).
      if (!shared->io->get_executor().running_in_this_thread()) {
        shared->drained.wait(lock, [&] {
          return shared->queued < (terminal ? shared->terminal_limit : limit) || !shared->alive;
        });
      }
      if (!shared->alive) return;
      shared->queued += piece;
      if (terminal) {
        // Joins the piece still waiting, which the core takes whenever it gets to it: that is
        // before anything reported later, such as the exit.
        if (Shared::Event* last = shared->joinable(id, stream)) {
          last->bytes.append(bytes_at, piece);
          continue;
        }
      }
      Shared::Event event{Shared::Event::Kind::output};
      event.terminal = terminal;
      event.id = id;
      event.stream = stream;
      // A terminal's piece has room for what may join it under the bound of now: joins do not
      // grow the buffer (unless the bound rises meanwhile).
      event.bytes = shared->buffer_of(
          bytes_at, piece, terminal ? shared->terminal_limit + Shared::kTerminalPiece : piece);
      shared->push(lock, std::move(event));
    }
  };
  sink_.on_exit = [](void* ctx, uint64_t id, int32_t code, int32_t sig, pmcp_str msg) {
    auto* shared = static_cast<Shared*>(ctx);
    if (!shared->alive) return;
    Shared::Event event{Shared::Event::Kind::exit};
    event.id = id;
    event.status = code;
    event.signal = sig;
    event.bytes = to_string(msg);
    std::unique_lock lock(shared->mutex);
    shared->push(lock, std::move(event));
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
