// The services the core offers to plugins (pmcp_host of sdk/include/pmcp/plugin.h): logging into
// the core's spdlog, posting work to the core thread, and host extensions.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "pmcp/core_loop.h"
#include "pmcp/plugin.h"

namespace pmcp::plugin {

// Builds and keeps one pmcp_host per plugin. Each table lives as long as this object, so it
// must outlive every plugin loaded with it (destroy plugins first). All members are
// thread-safe, and so are the functions in the tables:
//  - log: one line through spdlog's default logger, "[<plugin id>] <message>";
//  - post: boost::asio::post onto `io`; PMCP_ERR_STATE once shutdown() was called;
//  - get_extension: the core-loop extension (pmcp/core_loop.h: waiting for a plugin's
//    descriptor on the core thread; its functions are core-thread only), NULL for other ids.
class HostServices {
 public:
  explicit HostServices(boost::asio::io_context& io);
  ~HostServices();
  HostServices(const HostServices&) = delete;
  HostServices& operator=(const HostServices&) = delete;

  // The table to give to plugin `plugin_id` (load_plugin's `host`); the same pointer for the
  // same id. host_data points to that plugin's own state.
  const pmcp_host* host_for(std::string plugin_id);

  // From now on post() refuses with PMCP_ERR_STATE. Work already posted stays queued on `io`
  // and runs only if `io` runs again.
  void shutdown();

 private:
  struct PluginHost;

  static void log(const pmcp_host* host, pmcp_log_level level, pmcp_str message) noexcept;
  static int32_t post(const pmcp_host* host, void (*fn)(void* user), void* user) noexcept;
  static const void* get_extension(const pmcp_host* host, const char* extension_id) noexcept;
  static int32_t watch_input(const pmcp_host* host, int fd, void (*ready)(void*), void* user,
                             pmcp_fd_watch** out, pmcp_error_buf err) noexcept;

  boost::asio::io_context& io_;
  std::mutex mutex_;  // guards hosts_ and shut_down_
  bool shut_down_ = false;
  std::map<std::string, std::unique_ptr<PluginHost>> hosts_;
};

}  // namespace pmcp::plugin
