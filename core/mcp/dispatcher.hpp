// MCP method dispatch for every session: initialize and version negotiation, ping, tools,
// logging, progress and cancellation. Runs on the core thread only; never blocks.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "mcp/jsonrpc.hpp"

namespace pmcp::mcp {

// Protocol versions we speak, newest first.
inline constexpr std::string_view kLatestProtocolVersion = "2025-11-25";
const std::vector<std::string_view>& supported_protocol_versions();

// A client session: which transport instance it came through and that transport's session id.
struct SessionKey {
  uint32_t transport = 0;
  uint64_t session = 0;
  auto operator<=>(const SessionKey&) const = default;
};

// MCP log levels (RFC 5424 order).
enum class LogLevel { debug, info, notice, warning, error, critical, alert, emergency };
std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view log_level_name(LogLevel level);

// Where the dispatcher's texts go. Implemented by the server wiring (transports).
class Outbound {
 public:
  virtual ~Outbound() = default;
  // final: this text answers the request that opened stream_id, so the stream may close.
  virtual void send(SessionKey session, uint64_t stream_id, std::string json, bool final) = 0;
};

class Dispatcher;
struct SessionState;

// One tools/call in flight. Handlers keep the shared_ptr while they work asynchronously and
// call finish() or fail() exactly once (later calls are ignored). Core thread only.
class ToolCall : public std::enable_shared_from_this<ToolCall> {
 public:
  const json::object& arguments() const { return arguments_; }
  SessionKey session() const { return session_; }
  bool cancelled() const { return cancelled_; }
  bool done() const { return done_; }
  bool has_progress_token() const { return !progress_token_.is_null(); }

  // Runs when the client cancels the request (notifications/cancelled) or its session ends.
  void on_cancel(std::function<void()> fn) { on_cancel_ = std::move(fn); }
  // Sends notifications/progress when the request carried a progressToken; else nothing.
  void progress(double progress, std::optional<double> total, std::string_view message);
  // Successful tool result: structuredContent plus the same JSON as text.
  void finish(json::object structured);
  // Tool error (isError: true) with a message a person can act on.
  void fail(std::string_view message);

 private:
  friend class Dispatcher;
  void send_result(json::object result);
  void send_message(std::string message);  // a whole JSON-RPC response

  Dispatcher* dispatcher_ = nullptr;
  SessionKey session_;
  uint64_t stream_ = 0;
  json::value request_id_;
  json::value progress_token_;
  json::object arguments_;
  std::function<void(std::string)> reply_;
  std::function<void()> on_cancel_;
  bool cancelled_ = false;
  bool done_ = false;
};

struct ToolDefinition {
  std::string name;
  json::object descriptor;  // name, title, description, inputSchema, outputSchema, annotations
  std::function<void(std::shared_ptr<ToolCall>)> handler;
};

// MCP resources (resources/list, templates/list, read, subscribe). Core thread only.
class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  virtual json::array list(SessionKey session) = 0;
  virtual json::array templates() = 0;
  // The `contents` array of resources/read, or an error message (the URI is unknown).
  virtual std::optional<json::array> read(SessionKey session, std::string_view uri,
                                          std::string& error) = 0;
  virtual bool subscribe(SessionKey session, std::string_view uri, std::string& error) = 0;
  virtual void unsubscribe(SessionKey session, std::string_view uri) = 0;
  virtual void session_closed(SessionKey session) = 0;
};

struct ServerInfo {
  std::string name = "process-mcp";
  std::string version;
  std::string instructions;
};

class Dispatcher {
 public:
  Dispatcher(Outbound& outbound, ServerInfo info);
  ~Dispatcher();

  void add_tool(ToolDefinition tool);
  void set_resources(ResourceProvider* provider) { resources_ = provider; }

  // One whole JSON-RPC text from a transport.
  void on_message(SessionKey session, uint64_t stream_id, std::string_view text);
  // The session ended: pending calls are cancelled (their processes keep running).
  void on_session_closed(SessionKey session);

  // notifications/message to every session whose level admits it (or only to `only`).
  void log(LogLevel level, std::string_view logger, json::value data,
           std::optional<SessionKey> only = std::nullopt);

  // Sends a notification on a session's standalone stream (stream 0).
  void notify(SessionKey session, std::string_view method, json::object params);

  std::size_t session_count() const { return sessions_.size(); }

 private:
  friend class ToolCall;
  struct Batch;
  using Reply = std::function<void(std::string)>;

  SessionState& session(SessionKey key);
  void handle_request(SessionKey key, uint64_t stream, Request request, Reply reply);
  void handle_notification(SessionKey key, Notification note);
  void call_tool(SessionKey key, uint64_t stream, Request request, Reply reply);
  void send_on_stream(SessionKey key, uint64_t stream, std::string json) {
    outbound_.send(key, stream, std::move(json), false);
  }
  void forget(ToolCall& call);

  Outbound& outbound_;
  ServerInfo info_;
  std::vector<ToolDefinition> tools_;
  ResourceProvider* resources_ = nullptr;
  std::map<SessionKey, std::unique_ptr<SessionState>> sessions_;
};

}  // namespace pmcp::mcp
