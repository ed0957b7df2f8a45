// The services the core offers to plugins (pmcp_host of sdk/include/pmcp/plugin.h): logging into
// the core's spdlog, posting work to the core thread, and the core-loop extension.
#include "plugin/host_services.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <utility>

#include "pmcp/core_loop.h"

// A watch of the core-loop extension. The state is shared with the wait in flight, so that a
// cancel() (also from inside ready()) leaves nothing for the completion to touch but the state.
struct pmcp_fd_watch {
  struct State {
    State(boost::asio::io_context& io, int fd) : descriptor(io, fd) {}
    boost::asio::posix::stream_descriptor descriptor;  // owns the duplicate, not the plugin's fd
    void (*ready)(void*) = nullptr;
    void* user = nullptr;
    std::string plugin;
    bool armed = false;
    bool cancelled = false;
  };
  std::shared_ptr<State> state;
};

namespace pmcp::plugin {

struct HostServices::PluginHost {
  HostServices* services = nullptr;
  std::string id;
  pmcp_host table{};
};

namespace {

spdlog::level::level_enum to_spdlog(pmcp_log_level level) {
  // Values outside the table (a newer plugin) are clamped rather than dropped.
  switch (level) {
    case PMCP_LOG_TRACE:
      return spdlog::level::trace;
    case PMCP_LOG_DEBUG:
      return spdlog::level::debug;
    case PMCP_LOG_INFO:
      return spdlog::level::info;
    case PMCP_LOG_WARN:
      return spdlog::level::warn;
    case PMCP_LOG_ERROR:
      return spdlog::level::err;
  }
  return static_cast<int>(level) < 0 ? spdlog::level::trace : spdlog::level::err;
}

}  // namespace

HostServices::HostServices(boost::asio::io_context& io) : io_(io) {}

HostServices::~HostServices() = default;

const pmcp_host* HostServices::host_for(std::string plugin_id) {
  std::lock_guard lock(mutex_);
  auto& slot = hosts_[plugin_id];
  if (!slot) {
    slot = std::make_unique<PluginHost>();
    slot->services = this;
    slot->id = std::move(plugin_id);
    slot->table.struct_size = sizeof(pmcp_host);
    slot->table.abi_major = PMCP_ABI_VERSION_MAJOR;
    slot->table.abi_minor = PMCP_ABI_VERSION_MINOR;
    slot->table.host_data = slot.get();
    slot->table.log = &HostServices::log;
    slot->table.post = &HostServices::post;
    slot->table.get_extension = &HostServices::get_extension;
  }
  return &slot->table;
}

void HostServices::shutdown() {
  std::lock_guard lock(mutex_);
  shut_down_ = true;
}

void HostServices::log(const pmcp_host* host, pmcp_log_level level, pmcp_str message) noexcept {
  if (host == nullptr || host->host_data == nullptr) return;
  try {
    const auto* self = static_cast<const PluginHost*>(host->host_data);
    std::string_view text =
        message.data != nullptr ? std::string_view(message.data, message.size) : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    spdlog::default_logger()->log(to_spdlog(level), "[{}] {}", self->id, text);
  } catch (...) {
    // A log line is not worth an exception across the ABI.
  }
}

int32_t HostServices::post(const pmcp_host* host, void (*fn)(void* user), void* user) noexcept {
  if (host == nullptr || host->host_data == nullptr || fn == nullptr) {
    return PMCP_ERR_INVALID_ARGUMENT;
  }
  try {
    const auto* self = static_cast<const PluginHost*>(host->host_data);
    HostServices& services = *self->services;
    std::lock_guard lock(services.mutex_);
    if (services.shut_down_) return PMCP_ERR_STATE;
    std::string id = self->id;
    boost::asio::post(services.io_, [fn, user, id = std::move(id)] {
      try {
        fn(user);
      } catch (const std::exception& e) {
        spdlog::error("[{}] a posted function threw: {}", id, e.what());
      } catch (...) {
        spdlog::error("[{}] a posted function threw", id);
      }
    });
    return PMCP_OK;
  } catch (...) {
    return PMCP_ERR_INTERNAL;
  }
}

namespace {

void write_error(pmcp_error_buf err, const std::string& text) {
  if (err.data == nullptr || err.capacity == 0) return;
  const std::size_t n = std::min(text.size(), err.capacity - 1);
  std::memcpy(err.data, text.data(), n);
  err.data[n] = '\0';
}

void rearm_watch(pmcp_fd_watch* watch) {
  if (watch == nullptr) return;
  auto& state = watch->state;
  if (state->armed || state->cancelled) return;
  state->armed = true;
  state->descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                               [s = state](const boost::system::error_code& ec) {
                                 s->armed = false;
                                 if (s->cancelled || ec == boost::asio::error::operation_aborted)
                                   return;
                                 // Any other error is the descriptor's own: the plugin's read
                                 // reports it.
                                 try {
                                   s->ready(s->user);
                                 } catch (const std::exception& e) {
                                   spdlog::error("[{}] a descriptor's ready() threw: {}", s->plugin,
                                                 e.what());
                                 } catch (...) {
                                   spdlog::error("[{}] a descriptor's ready() threw", s->plugin);
                                 }
                               });
}

void cancel_watch(pmcp_fd_watch* watch) {
  if (watch == nullptr) return;
  auto& state = watch->state;
  state->cancelled = true;
  boost::system::error_code ignored;
  state->descriptor.close(ignored);  // the wait in flight completes as aborted
  delete watch;
}

}  // namespace

int32_t HostServices::watch_input(const pmcp_host* host, int fd, void (*ready)(void*), void* user,
                                  pmcp_fd_watch** out, pmcp_error_buf err) noexcept {
  if (host == nullptr || host->host_data == nullptr || ready == nullptr || out == nullptr ||
      fd < 0) {
    write_error(err, "watch_input: a null argument or a negative descriptor");
    return PMCP_ERR_INVALID_ARGUMENT;
  }
  *out = nullptr;
  const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    write_error(err, std::string("cannot duplicate the descriptor: ") + std::strerror(errno));
    return PMCP_ERR_IO;
  }
  // Asio would take a descriptor that epoll refuses (a regular file) as always ready; say so
  // instead.
  if (const int probe = epoll_create1(EPOLL_CLOEXEC); probe >= 0) {
    epoll_event event{};
    event.events = EPOLLIN;
    const bool refused = epoll_ctl(probe, EPOLL_CTL_ADD, copy, &event) != 0;
    const int why = errno;
    close(probe);
    if (refused) {
      close(copy);
      write_error(
          err, std::string("the core loop cannot wait on this descriptor: ") + std::strerror(why));
      return PMCP_ERR_UNSUPPORTED;
    }
  }
  try {
    const auto* self = static_cast<const PluginHost*>(host->host_data);
    auto watch = std::make_unique<pmcp_fd_watch>();
    try {
      watch->state = std::make_shared<pmcp_fd_watch::State>(self->services->io_, copy);
    } catch (const boost::system::system_error& e) {
      close(copy);
      write_error(err, "the core loop cannot wait on this descriptor: " + e.code().message());
      return PMCP_ERR_UNSUPPORTED;
    }
    watch->state->ready = ready;
    watch->state->user = user;
    watch->state->plugin = self->id;
    rearm_watch(watch.get());
    *out = watch.release();
    return PMCP_OK;
  } catch (const std::exception& e) {
    write_error(err, e.what());
    return PMCP_ERR_INTERNAL;
  }
}

const void* HostServices::get_extension(const pmcp_host* /*host*/,
                                        const char* extension_id) noexcept {
  static const pmcp_core_loop core_loop = {sizeof(pmcp_core_loop), &HostServices::watch_input,
                                           &rearm_watch, &cancel_watch};
  if (extension_id != nullptr && std::strcmp(extension_id, PMCP_CORE_LOOP_EXTENSION_ID) == 0)
    return &core_loop;
  return nullptr;
}

}  // namespace pmcp::plugin
