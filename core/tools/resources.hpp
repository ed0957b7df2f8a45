// Process output as MCP resources: process://{id}/stdout, /stderr, /screen and /info, with
// subscriptions whose update notifications are coalesced per resource. Core thread only.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "mcp/dispatcher.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

class ProcessResources : public mcp::ResourceProvider {
 public:
  static constexpr auto kMinInterval = std::chrono::milliseconds(250);  // <= 4 updates/s

  ProcessResources(ToolContext& ctx, mcp::Dispatcher& dispatcher);
  ~ProcessResources() override;

  json::array list(mcp::SessionKey session) override;
  json::array templates() override;
  std::optional<json::array> read(mcp::SessionKey session, std::string_view uri,
                                  std::string& error) override;
  bool subscribe(mcp::SessionKey session, std::string_view uri, std::string& error) override;
  void unsubscribe(mcp::SessionKey session, std::string_view uri) override;
  void session_closed(mcp::SessionKey session) override;

  // Output or exit of a process: schedule updates for its subscribed resources.
  void changed(const process::Process& process, std::string_view part);

 private:
  struct Subscription {
    std::set<mcp::SessionKey> sessions;
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::chrono::steady_clock::time_point last_sent{};
    bool pending = false;
  };
  // Splits process://ID/PART; false when the URI is not one of ours.
  static bool parse_uri(std::string_view uri, std::string& id, std::string& part);
  void send_update(const std::string& uri);

  ToolContext& ctx_;
  mcp::Dispatcher& dispatcher_;
  std::map<std::string, Subscription> subscriptions_;
};

}  // namespace pmcp::tools
