// The host executor plugin: entry point, factory and instance creation.
#include "pmcp/plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "config.hpp"
#include "executor.hpp"
#include "pmcp/config_check.h"
#include "pmcp/executor.h"
#include "pmcp/plugin.hpp"
#include "protocol.hpp"

namespace {

namespace sdk = pmcp::sdk;
using sdk::Error;

const pmcp_host* g_host = nullptr;

std::string errno_text(int e) {
  char buf[256];
  return std::string(strerror_r(e, buf, sizeof buf));
}

// The supervisor executable lives next to this shared object, in the build tree as installed.
std::string locate_supervisor() {
  static const int anchor = 0;
  Dl_info info{};
  if (dladdr(&anchor, &info) == 0 || info.dli_fname == nullptr || info.dli_fname[0] == '\0')
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot tell where the host plugin was loaded from");
  std::string lib = info.dli_fname;
  if (char* real = realpath(lib.c_str(), nullptr)) {
    lib = real;
    std::free(real);
  }
  const std::size_t slash = lib.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : lib.substr(0, slash);
  std::string path = dir + "/" + pmcp::host::proto::kSupervisorName;
  if (access(path.c_str(), X_OK) != 0)
    throw Error(PMCP_ERR_UNAVAILABLE, "the host executor's helper '" + path +
                                          "' is missing or not executable (" + errno_text(errno) +
                                          "); it belongs next to " + lib);
  return path;
}

std::string current_dir() {
  std::string buf(PATH_MAX, '\0');
  for (;;) {
    if (getcwd(buf.data(), buf.size()) != nullptr) return std::string(buf.c_str());
    if (errno != ERANGE) return "/";
    buf.resize(buf.size() * 2);
  }
}

int32_t create(const pmcp_executor_factory* /*factory*/, const pmcp_host* host,
               pmcp_str config_json, const pmcp_executor_sink* sink, pmcp_executor** out,
               pmcp_error_buf err) {
  return sdk::guard(err, [&]() -> int32_t {
    if (out == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (sink == nullptr || sink->struct_size < sizeof(pmcp_executor_sink) ||
        sink->on_spawned == nullptr || sink->on_output == nullptr || sink->on_exit == nullptr)
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "the executor sink is missing or incomplete");
    const pmcp_host* services = host != nullptr ? host : g_host;
    const std::string cwd = current_dir();
    const char* home = std::getenv("HOME");
    pmcp::host::HostConfig config =
        pmcp::host::parse_config(sdk::view(config_json), cwd, home != nullptr ? home : "");
    std::string supervisor = locate_supervisor();
    std::unique_ptr<pmcp::host::Sandbox> sandbox;
    if (config.sandbox.enabled) {
      // The writable working directory: [host.filesystem] workdir (the core fills it in from
      // [defaults] workdir), else the server's own directory.
      std::string workdir = config.sandbox.workdir.empty() ? cwd : config.sandbox.workdir;
      sandbox = std::make_unique<pmcp::host::Sandbox>(services, std::move(config.sandbox),
                                                      supervisor.substr(0, supervisor.rfind('/')),
                                                      std::move(workdir));
    } else {
      sdk::log(services, PMCP_LOG_WARN,
               "the host sandbox is off ([host.sandbox] enabled = false): commands run with "
               "all the rights of the server's user");
    }
    auto impl = std::make_unique<pmcp::host::HostExecutor>(services, *sink, std::move(supervisor),
                                                           cwd, std::move(sandbox));
    const char* default_cwd = impl->default_cwd();
    *out = sdk::make_executor(std::move(impl), "host", default_cwd);
    return PMCP_OK;
  });
}

const pmcp_executor_factory kFactory = {sizeof(pmcp_executor_factory), &create};

// For `process-mcp --check-config`: the parse that create() does, and nothing else (no
// sandbox trial, no proxy).
int32_t check_config(const pmcp_config_check_factory* /*factory*/, pmcp_str config_json,
                     pmcp_error_buf err) {
  return sdk::guard(err, [&]() -> int32_t {
    const char* home = std::getenv("HOME");
    pmcp::host::parse_config(sdk::view(config_json), current_dir(), home != nullptr ? home : "");
    return PMCP_OK;
  });
}

const pmcp_config_check_factory kConfigCheck = {sizeof(pmcp_config_check_factory), &check_config};

int32_t plugin_init(const pmcp_host* host) {
  if (host != nullptr && host->abi_major != PMCP_ABI_VERSION_MAJOR) {
    sdk::log(host, PMCP_LOG_ERROR, "the host plugin was built for another ABI major version");
    return 0;
  }
  g_host = host;
  return 1;
}

void plugin_deinit() { g_host = nullptr; }

const void* plugin_get_factory(const char* factory_id) {
  if (factory_id != nullptr && std::strcmp(factory_id, PMCP_EXECUTOR_FACTORY_ID) == 0)
    return &kFactory;
  if (factory_id != nullptr && std::strcmp(factory_id, PMCP_CONFIG_CHECK_FACTORY_ID) == 0)
    return &kConfigCheck;
  return nullptr;
}

}  // namespace

namespace pmcp::host::entry {

extern "C" PMCP_EXPORT const ::pmcp_plugin_entry pmcp_plugin_entry = {
    sizeof(::pmcp_plugin_entry),
    PMCP_ABI_VERSION_MAJOR,
    PMCP_ABI_VERSION_MINOR,
    "host",
    "0.1.0",
    "runs commands on this machine, with pipes or a real pseudo-terminal",
    &plugin_init,
    &plugin_deinit,
    &plugin_get_factory,
};

}  // namespace pmcp::host::entry
