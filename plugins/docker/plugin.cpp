// The docker executor plugin: entry point, factory and instance creation.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "config.hpp"
#include "executor.hpp"
#include "http.hpp"
#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "pmcp/plugin.hpp"

namespace {

namespace sdk = pmcp::sdk;
using sdk::Error;

const pmcp_host* g_host = nullptr;

constexpr const char* kDefaultSocket = "unix:///var/run/docker.sock";

// The engine's address: [docker] host, else DOCKER_HOST, else the default socket.
pmcp::docker::Endpoint engine_endpoint(const pmcp::docker::Config& config) {
  std::string url = config.host;
  std::string source = "[docker] host";
  if (url.empty()) {
    const char* env = std::getenv("DOCKER_HOST");
    if (env != nullptr && env[0] != '\0') {
      url = env;
      source = "DOCKER_HOST";
    }
  }
  if (url.empty()) url = kDefaultSocket;
  try {
    return pmcp::docker::parse_endpoint(url);
  } catch (const std::invalid_argument& e) {
    throw Error(PMCP_ERR_INVALID_ARGUMENT, source + ": " + e.what());
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
    pmcp::docker::Config config = pmcp::docker::parse_config(sdk::view(config_json));
    pmcp::docker::Endpoint endpoint = engine_endpoint(config);
    auto impl = std::make_unique<pmcp::docker::DockerExecutor>(host != nullptr ? host : g_host,
                                                               *sink, std::move(config),
                                                               std::move(endpoint));
    impl->setup();
    const char* default_cwd = impl->default_cwd();
    *out = sdk::make_executor(std::move(impl), "docker", default_cwd);
    return PMCP_OK;
  });
}

const pmcp_executor_factory kFactory = {sizeof(pmcp_executor_factory), &create};

int32_t plugin_init(const pmcp_host* host) {
  if (host != nullptr && host->abi_major != PMCP_ABI_VERSION_MAJOR) {
    sdk::log(host, PMCP_LOG_ERROR, "the docker plugin was built for another ABI major version");
    return 0;
  }
  g_host = host;
  return 1;
}

void plugin_deinit() { g_host = nullptr; }

const void* plugin_get_factory(const char* factory_id) {
  if (factory_id != nullptr && std::strcmp(factory_id, PMCP_EXECUTOR_FACTORY_ID) == 0)
    return &kFactory;
  return nullptr;
}

}  // namespace

namespace pmcp::docker::entry {

extern "C" PMCP_EXPORT const ::pmcp_plugin_entry pmcp_plugin_entry = {
    sizeof(::pmcp_plugin_entry),
    PMCP_ABI_VERSION_MAJOR,
    PMCP_ABI_VERSION_MINOR,
    "docker",
    "0.1.0",
    "runs commands in one shared Docker container through the Docker Engine API",
    &plugin_init,
    &plugin_deinit,
    &plugin_get_factory,
};

}  // namespace pmcp::docker::entry
