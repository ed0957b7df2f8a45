// The core's side of one executor instance: a C++ wrapper over pmcp_executor that turns the
// plugin's sink callbacks (any thread) into events on the core thread.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pmcp/executor.h"
#include "util/result.hpp"

namespace pmcp::process {

// Receives executor events on the core thread, in the order the plugin emitted them.
class ExecutorEvents {
 public:
  virtual ~ExecutorEvents() = default;
  virtual void on_spawned(uint64_t id, Result<void> outcome, int64_t os_pid) = 0;
  // `bytes` is valid during the call only.
  virtual void on_output(uint64_t id, int stream, std::string_view bytes) = 0;
  virtual void on_exit(uint64_t id, int exit_code, int term_signal, std::string message) = 0;
};

struct SpawnRequest {
  uint64_t id = 0;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;
  bool tty = false;
  uint16_t cols = 0;
  uint16_t rows = 0;
};

// Maps a pmcp_status plus message to a core Error.
Error status_error(int32_t status, std::string message);

class Executor {
 public:
  explicit Executor(boost::asio::io_context& io);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Creates the instance from its factory; events go to `events` from then on. [main thread]
  Result<void> create(const pmcp_executor_factory* factory, const pmcp_host* host,
                      const std::string& config_json, ExecutorEvents& events);

  Result<void> spawn(const SpawnRequest& request);
  Result<void> write_stdin(uint64_t id, std::string_view bytes);
  Result<void> close_stdin(uint64_t id);
  Result<void> signal(uint64_t id, int signo);
  Result<void> resize(uint64_t id, uint16_t cols, uint16_t rows);
  // Destroys the instance; events still queued for the core thread are dropped.
  void destroy();

  const std::string& id_prefix() const { return id_prefix_; }
  const std::string& default_cwd() const { return default_cwd_; }
  bool alive() const { return instance_ != nullptr; }

 private:
  struct Shared;  // what posted handlers need, kept alive by shared_ptr
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  pmcp_executor_sink sink_{};
  pmcp_executor* instance_ = nullptr;
  std::string id_prefix_;
  std::string default_cwd_;
};

}  // namespace pmcp::process
