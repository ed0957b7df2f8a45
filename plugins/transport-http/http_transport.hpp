// The Streamable HTTP transport (MCP spec 2025-11-25): one endpoint, POST/GET/DELETE, sessions,
// SSE streams with resumption, Host/Origin allowlists, bearer auth and limits. Built on Beast.
#pragma once

#include <memory>

#include "http_config.hpp"
#include "pmcp/plugin.hpp"

namespace pmcp::http {

// Creates the transport. Nothing listens until start(). The instance runs one io thread of its
// own; every sink callback comes from that thread; destroying the instance joins it, and no
// sink callback fires after the destructor returns.
// OWNERSHIP: host and sink are borrowed and must outlive the instance.
std::unique_ptr<pmcp::sdk::TransportBase> make_http_transport(const pmcp_host* host,
                                                              const pmcp_transport_sink* sink,
                                                              HttpConfig config);

}  // namespace pmcp::http
