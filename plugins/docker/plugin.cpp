// The docker executor plugin: entry point, factory and instance creation.
#include "pmcp/plugin.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "config.hpp"
#include "executor.hpp"
#include "http.hpp"
#include "pmcp/config_check.h"
#include "pmcp/executor.h"
#include "pmcp/plugin.hpp"

namespace {

namespace sdk = pmcp::sdk;
using sdk::Error;

const pmcp_host* g_host = nullptr;

constexpr const char* kDefaultSocket = "unix:///var/run/docker.sock";

// The engine's address: [docker] host, else DOCKER_HOST, else the default socket. TLS as the
// docker CLI does it: on for an https:// address or with tls_verify / DOCKER_TLS_VERIFY, with
// ca.pem, cert.pem and key.pem from cert_path / DOCKER_CERT_PATH / ~/.docker.
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
  pmcp::docker::Endpoint endpoint;
  try {
    endpoint = pmcp::docker::parse_endpoint(url);
  } catch (const std::invalid_argument& e) {
    throw Error(PMCP_ERR_INVALID_ARGUMENT, source + ": " + e.what());
  }
  bool verify = config.tls_verify;
  std::string verify_source = "[docker] tls_verify";
  if (!config.tls_verify_set) {
    const char* env = std::getenv("DOCKER_TLS_VERIFY");
    verify = env != nullptr && env[0] != '\0';
    verify_source = "DOCKER_TLS_VERIFY";
  }
  if (endpoint.is_unix) {
    // DOCKER_TLS_VERIFY left over in the environment does not matter to a unix socket.
    if (config.tls_verify_set && config.tls_verify)
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "[docker] tls_verify applies to tcp:// engine addresses, not to " + url);
    return endpoint;
  }
  if (!verify && !endpoint.https) return endpoint;
  std::string dir = config.cert_path;
  std::string dir_source = "[docker] cert_path";
  if (dir.empty()) {
    const char* env = std::getenv("DOCKER_CERT_PATH");
    if (env != nullptr && env[0] != '\0') {
      dir = env;
      dir_source = "DOCKER_CERT_PATH";
    } else {
      const char* home = std::getenv("HOME");
      dir = std::string(home != nullptr ? home : "") + "/.docker";
      dir_source = "the default ~/.docker";
    }
  }
  pmcp::docker::TlsFiles files{dir + "/ca.pem", dir + "/cert.pem", dir + "/key.pem"};
  struct stat st {};
  if (::stat(files.cert.c_str(), &st) != 0 && ::stat(files.key.c_str(), &st) != 0) {
    files.cert.clear();  // no client certificate: only for engines that do not ask for one
    files.key.clear();
  }
  try {
    endpoint.tls = pmcp::docker::make_tls_context(files);
  } catch (const std::invalid_argument& e) {
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                std::string("TLS to the Docker engine at ") + url + " (" +
                    (endpoint.https ? source + " is https://" : verify_source + " is set") +
                    "; certificates from " + dir_source + " " + dir + "): " + e.what());
  }
  return endpoint;
}

// pmcp-net-bridge is built and installed next to this shared object (as for the host plugin).
std::string locate_bridge() {
  static const int anchor = 0;
  Dl_info info{};
  if (dladdr(&anchor, &info) == 0 || info.dli_fname == nullptr || info.dli_fname[0] == '\0')
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot tell where the docker plugin was loaded from");
  std::string lib = info.dli_fname;
  if (char* real = realpath(lib.c_str(), nullptr)) {
    lib = real;
    std::free(real);
  }
  const std::size_t slash = lib.rfind('/');
  return (slash == std::string::npos ? std::string(".") : lib.substr(0, slash)) +
         "/pmcp-net-bridge";
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
    std::string bridge = config.policy ? locate_bridge() : std::string();
    auto impl = std::make_unique<pmcp::docker::DockerExecutor>(
        host != nullptr ? host : g_host, *sink, std::move(config), std::move(endpoint),
        std::move(bridge));
    impl->setup();
    const char* default_cwd = impl->default_cwd();
    *out = sdk::make_executor(std::move(impl), "docker", default_cwd);
    return PMCP_OK;
  });
}

const pmcp_executor_factory kFactory = {sizeof(pmcp_executor_factory), &create};

// For `process-mcp --check-config`: the parse and the engine address (with its TLS files) that
// create() checks, without contacting the engine.
int32_t check_config(const pmcp_config_check_factory* /*factory*/, pmcp_str config_json,
                     pmcp_error_buf err) {
  return sdk::guard(err, [&]() -> int32_t {
    pmcp::docker::Config config = pmcp::docker::parse_config(sdk::view(config_json));
    engine_endpoint(config);
    return PMCP_OK;
  });
}

const pmcp_config_check_factory kConfigCheck = {sizeof(pmcp_config_check_factory), &check_config};

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
  if (factory_id != nullptr && std::strcmp(factory_id, PMCP_CONFIG_CHECK_FACTORY_ID) == 0)
    return &kConfigCheck;
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
