// The server: wires transports <-> MCP sessions <-> tools <-> process registry <-> executor,
// owns the core thread's io_context, and shuts everything down in order.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "config/config.hpp"
#include "mcp/dispatcher.hpp"
#include "plugin/host_services.hpp"
#include "plugin/plugin_loader.hpp"
#include "process/executor.hpp"
#include "process/registry.hpp"
#include "pmcp/transport.h"
#include "tools/resources.hpp"
#include "tools/tools.hpp"
#include "util/result.hpp"

namespace pmcp::server {

// Where plugins are searched: config plugin_dirs, then <exe>/../<libdir>/process-mcp/plugins,
// then the install directory.
std::vector<std::filesystem::path> plugin_search_path(const config::Config& config);
// Default config files: <exe>/../etc/process-mcp/process-mcp.toml, then the system one.
std::vector<std::filesystem::path> default_config_paths();
std::filesystem::path executable_dir();

// What `process-mcp --check-config` checks beyond the core's own keys, without starting
// anything: every plugin the config names (executor, transports, plugin tables) is found and
// loaded (ABI, factory), and each plugin that offers PMCP_CONFIG_CHECK_FACTORY_ID checks its
// table as create() would. An error names the file, the table's line and the reason. On
// success, returns one note per plugin whose table could not be checked (it offers no check).
Result<std::vector<std::string>> check_plugins(const config::Config& config);

struct ServerOptions {
  bool start_transports = true;   // false: library use without transports
  bool handle_signals = true;     // SIGINT/SIGTERM/SIGHUP shut the server down
};

class Server : private mcp::Outbound {
 public:
  // Loads the plugins and creates everything; starts nothing yet.
  static Result<std::unique_ptr<Server>> create(config::Config config, ServerOptions options);
  ~Server() override;

  // Starts the transports and runs the core thread on the caller until shutdown completes.
  int run();
  // Same, on a thread of the server's own (library use). Returns at once.
  Result<void> start();
  // Asks for an orderly shutdown (kill ladder, transports closed). Thread-safe.
  void shutdown();
  // Waits until the core thread has finished (after start()).
  void join();

  boost::asio::io_context& io() { return io_; }
  process::Registry& registry() { return *registry_; }
  mcp::Dispatcher& dispatcher() { return *dispatcher_; }
  const config::Config& config() const { return config_; }
  tools::ToolContext& tool_context() { return *tool_context_; }

  // An in-process session (library use): texts go to `on_send`; feed replies with deliver().
  // Core thread only.
  uint64_t open_local_session(std::function<void(std::string)> on_send);
  void deliver_local(uint64_t session, std::string text);
  void close_local_session(uint64_t session);

 private:
  struct TransportSlot;
  explicit Server(config::Config config, ServerOptions options);
  Result<void> load();
  Result<void> start_transports();
  void begin_shutdown();
  void session_closed(mcp::SessionKey key);
  void finish_shutdown();
  void send(mcp::SessionKey session, uint64_t stream, std::string json, bool final) override;

  config::Config config_;
  ServerOptions options_;
  boost::asio::io_context io_;
  std::unique_ptr<plugin::HostServices> host_services_;
  std::vector<std::shared_ptr<plugin::LoadedPlugin>> plugins_;
  std::unique_ptr<process::Executor> executor_;
  std::unique_ptr<process::Registry> registry_;
  std::unique_ptr<mcp::Dispatcher> dispatcher_;
  std::unique_ptr<tools::ToolContext> tool_context_;
  std::unique_ptr<tools::ProcessResources> resources_;
  std::vector<std::unique_ptr<TransportSlot>> transports_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::map<uint64_t, std::function<void(std::string)>> local_sessions_;
  uint64_t next_local_session_ = 1;
  std::thread thread_;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      shutdown_guard_;
  int exit_code_ = 0;
};

// The transport index used for in-process sessions.
inline constexpr uint32_t kLocalTransport = 0xFFFFFFFFu;

}  // namespace pmcp::server
