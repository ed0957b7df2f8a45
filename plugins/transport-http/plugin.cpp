// Entry of the http transport plugin: the exported pmcp_plugin_entry and the transport factory.
#include "pmcp/plugin.hpp"

#include <cstring>

#include "http_config.hpp"
#include "http_transport.hpp"
#include "pmcp/config_check.h"

namespace {

using pmcp::sdk::Error;

const pmcp_host* g_host = nullptr;

int32_t create(const pmcp_transport_factory*, const pmcp_host* host, pmcp_str config,
               const pmcp_transport_sink* sink, pmcp_transport** out, pmcp_error_buf err) {
  return pmcp::sdk::guard(err, [&] {
    if (sink == nullptr || out == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "null argument");
    pmcp::http::HttpConfig parsed = pmcp::http::parse_http_config(pmcp::sdk::view(config));
    *out = pmcp::sdk::make_transport(
        pmcp::http::make_http_transport(host ? host : g_host, sink, std::move(parsed)));
    return int32_t{PMCP_OK};
  });
}

const pmcp_transport_factory kFactory = {sizeof(pmcp_transport_factory), &create};

// For `process-mcp --check-config`: the parse that create() does, without binding the port.
int32_t check_config(const pmcp_config_check_factory*, pmcp_str config, pmcp_error_buf err) {
  return pmcp::sdk::guard(err, [&] {
    pmcp::http::parse_http_config(pmcp::sdk::view(config));
    return int32_t{PMCP_OK};
  });
}

const pmcp_config_check_factory kConfigCheck = {sizeof(pmcp_config_check_factory), &check_config};

int32_t plugin_init(const pmcp_host* host) {
  g_host = host;
  return 1;
}
void plugin_deinit() { g_host = nullptr; }
const void* plugin_get_factory(const char* id) {
  if (id == nullptr) return nullptr;
  if (std::strcmp(id, PMCP_TRANSPORT_FACTORY_ID) == 0) return &kFactory;
  if (std::strcmp(id, PMCP_CONFIG_CHECK_FACTORY_ID) == 0) return &kConfigCheck;
  return nullptr;
}

}  // namespace

namespace http_plugin_entry {
extern "C" PMCP_EXPORT const ::pmcp_plugin_entry pmcp_plugin_entry = {
    sizeof(::pmcp_plugin_entry), PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR, "http", "0.1.0",
    "MCP Streamable HTTP: POST/GET/DELETE on one endpoint, SSE streams, sessions",
    &plugin_init, &plugin_deinit, &plugin_get_factory};
}  // namespace http_plugin_entry
