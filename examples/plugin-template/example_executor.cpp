// Executor "example": a toy process-mcp backend and the template for real ones. It starts
// nothing; each spawn reports the argv joined by spaces as the process's output, then exit 0.
//
// What a real executor keeps from this file: the entry and factory at the bottom, the config
// check, struct_size checks before reading the core's structs, a thread of its own that makes
// every sink callback (never inside the call that caused it), and a destructor that joins that
// thread so that no callback fires after destroy(). Every function the core calls is noexcept:
// pmcp::sdk::guard and make_executor (pmcp/plugin.hpp) turn exceptions into status codes.
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "pmcp/config_check.h"
#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "pmcp/plugin.hpp"

#ifndef EXAMPLE_VERSION
#define EXAMPLE_VERSION "0.0.0"
#endif

namespace example {

using pmcp::sdk::Error;

constexpr const char* kPluginId = "example";
constexpr const char* kIdPrefix = "example";  // the user sees processes as "example-1", ...
constexpr const char* kDefaultCwd = "/";

// The fields of the core's structs this plugin reads: a core built against an older ABI may
// pass shorter structs, and fields beyond struct_size must not be touched.
constexpr std::size_t kSinkSizeRead =
    offsetof(pmcp_executor_sink, on_exit) + sizeof(pmcp_executor_sink::on_exit);
constexpr std::size_t kSpawnOptionsSizeRead =
    offsetof(pmcp_spawn_options, flags) + sizeof(pmcp_spawn_options::flags);

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  std::size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

// The config is this plugin's TOML table as a JSON object, "{}" when the table is absent. The
// example has no options, so any key is unknown, and an unknown key is an error naming it.
void check_config(std::string_view json) {
  std::string_view s = trim(json);
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') {
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "[example] config must be a JSON object");
  }
  std::string_view inner = trim(s.substr(1, s.size() - 2));
  if (inner.empty()) return;
  std::string key;
  if (inner.front() == '"') {
    for (std::size_t i = 1; i < inner.size() && inner[i] != '"'; ++i) {
      if (inner[i] == '\\' && i + 1 < inner.size()) ++i;
      key += inner[i];
    }
  }
  throw Error(PMCP_ERR_INVALID_ARGUMENT,
              "[example] unknown key '" + key + "': the example executor takes no options");
}

class ExampleExecutor final : public pmcp::sdk::ExecutorBase {
 public:
  // sink is owned by the core and stays valid until destroy() returns, i.e. past our destructor.
  explicit ExampleExecutor(const pmcp_executor_sink* sink) : sink_(sink) {
    worker_ = std::thread([this] { run(); });
  }

  // Runs inside destroy(): drops the processes not yet reported and joins the worker, so no
  // sink callback fires once destroy() has returned.
  ~ExampleExecutor() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  // Queues the process for the worker; on_spawned, on_output and on_exit come from there.
  void spawn(const pmcp_spawn_options& options) override {
    if (options.struct_size < kSpawnOptionsSizeRead) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "spawn options are shorter than ABI 0.1");
    }
    if (options.argc == 0 || options.argv == nullptr) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "nothing to run: argv is empty");
    }
    // Copy what we keep: options and every string in it are borrowed for this call only.
    std::string output;
    for (std::size_t i = 0; i < options.argc; ++i) {
      if (i > 0) output += ' ';
      if (options.argv[i] != nullptr) output += options.argv[i];
    }
    output += '\n';
    std::lock_guard lock(mutex_);
    if (!running_.emplace(options.process_id, (options.flags & PMCP_SPAWN_PTY) != 0).second) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "process id " + std::to_string(options.process_id) + " is already running");
    }
    jobs_.push_back(Job{options.process_id, std::move(output)});
    wake_.notify_one();
  }

  // The toy process reads no input: bytes are accepted and dropped while it runs.
  void write_stdin(uint64_t id, const uint8_t*, std::size_t) override { require_running(id); }
  void close_stdin(uint64_t id) override {
    if (require_running(id)) {
      throw Error(PMCP_ERR_UNSUPPORTED, "a terminal has no stdin to close; send ^D instead");
    }
  }
  // The toy process ends by itself right away, so a signal has nothing to change.
  void signal(uint64_t id, int32_t) override { require_running(id); }
  void resize(uint64_t id, uint16_t, uint16_t) override {
    if (!require_running(id)) {
      throw Error(PMCP_ERR_UNSUPPORTED, "the process runs on pipes, not a terminal");
    }
  }

 private:
  struct Job {
    uint64_t process_id;
    std::string output;
  };

  // Throws unless process id runs; returns whether it runs on a terminal. [core thread]
  bool require_running(uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = running_.find(id);
    if (it == running_.end()) {
      throw Error(PMCP_ERR_STATE, "process " + std::to_string(id) + " is not running");
    }
    return it->second;
  }

  // The worker thread: the only place that calls the sink, always without holding mutex_.
  void run() noexcept {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      const pmcp_str no_message{"", 0};
      sink_->on_spawned(sink_->ctx, job.process_id, PMCP_OK, 0, no_message);
      sink_->on_output(sink_->ctx, job.process_id, PMCP_STREAM_STDOUT,
                       reinterpret_cast<const uint8_t*>(job.output.data()), job.output.size());
      {
        std::lock_guard lock(mutex_);
        running_.erase(job.process_id);
      }
      sink_->on_exit(sink_->ctx, job.process_id, 0, 0, no_message);
    }
  }

  const pmcp_executor_sink* sink_;
  std::mutex mutex_;  // guards jobs_, running_, stopping_
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::map<uint64_t, bool> running_;  // spawned, not yet exited -> runs on a terminal
  bool stopping_ = false;
  std::thread worker_;
};

// pmcp_executor_factory.create. [main thread]
int32_t create(const pmcp_executor_factory* /*factory*/, const pmcp_host* host,
               pmcp_str config_json, const pmcp_executor_sink* sink, pmcp_executor** out,
               pmcp_error_buf err) noexcept {
  return pmcp::sdk::guard(err, [&] {
    if (sink == nullptr || out == nullptr) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "create needs a sink and an out pointer");
    }
    if (sink->struct_size < kSinkSizeRead) {
      throw Error(PMCP_ERR_UNSUPPORTED, "the core's executor sink is older than this plugin");
    }
    check_config(pmcp::sdk::view(config_json));
    *out =
        pmcp::sdk::make_executor(std::make_unique<ExampleExecutor>(sink), kIdPrefix, kDefaultCwd);
    pmcp::sdk::log(host, PMCP_LOG_DEBUG, "example executor created");
    return int32_t{PMCP_OK};
  });
}

const pmcp_executor_factory kExecutorFactory = {sizeof(pmcp_executor_factory), &create};

// pmcp_config_check_factory.check, for `process-mcp --check-config`: the same parse as
// create(), and no side effect (no instance, thread, socket or file). Optional: without it the
// table is checked only when the server starts. [main thread]
int32_t check(const pmcp_config_check_factory* /*factory*/, pmcp_str config_json,
              pmcp_error_buf err) noexcept {
  return pmcp::sdk::guard(err, [&] {
    check_config(pmcp::sdk::view(config_json));
    return int32_t{PMCP_OK};
  });
}

const pmcp_config_check_factory kConfigCheck = {sizeof(pmcp_config_check_factory), &check};

// Nonzero means ready. A plugin that needs the host outside create() may keep `host` here: it
// stays valid until deinit() returns. [main thread]
int32_t init(const pmcp_host* host) noexcept {
  return host != nullptr && host->struct_size >= sizeof(pmcp_host) ? 1 : 0;
}

// Every instance is destroyed by now; release what init() took. [main thread]
void deinit() noexcept {}

const void* get_factory(const char* factory_id) noexcept {
  if (factory_id == nullptr) return nullptr;
  if (std::strcmp(factory_id, PMCP_EXECUTOR_FACTORY_ID) == 0) return &kExecutorFactory;
  if (std::strcmp(factory_id, PMCP_CONFIG_CHECK_FACTORY_ID) == 0) return &kConfigCheck;
  return nullptr;
}

// The one exported symbol. It lives in a namespace because at global scope its name would
// clash with the type pmcp_plugin_entry; extern "C" gives it the plain symbol name anyway.
extern "C" PMCP_EXPORT const ::pmcp_plugin_entry pmcp_plugin_entry = {
    sizeof(::pmcp_plugin_entry),
    PMCP_ABI_VERSION_MAJOR,
    PMCP_ABI_VERSION_MINOR,
    kPluginId,
    EXAMPLE_VERSION,
    "toy executor that echoes argv; the template for third-party executors",
    &init,
    &deinit,
    &get_factory,
};

}  // namespace example
