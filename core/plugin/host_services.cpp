// The services the core offers to plugins (pmcp_host of sdk/include/pmcp/plugin.h): logging into
// the core's spdlog, posting work to the core thread, and host extensions (none yet).
#include "plugin/host_services.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <exception>
#include <string_view>
#include <utility>

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

const void* HostServices::get_extension(const pmcp_host* /*host*/,
                                        const char* /*extension_id*/) noexcept {
  return nullptr;
}

}  // namespace pmcp::plugin
