// MCP dispatch: one straight path from a parsed message to its handler and back to the
// transport that brought it, with batches collected and cancellations honoured.
#include "mcp/dispatcher.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace pmcp::mcp {

const std::vector<std::string_view>& supported_protocol_versions() {
  static const std::vector<std::string_view> versions = {"2025-11-25", "2025-06-18",
                                                         "2025-03-26", "2024-11-05"};
  return versions;
}

namespace {
constexpr std::array<std::string_view, 8> kLevelNames = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  return kLevelNames[static_cast<std::size_t>(level)];
}

struct SessionState {
  bool initialized = false;
  std::string protocol_version = std::string(kLatestProtocolVersion);
  LogLevel log_level = LogLevel::info;
  json::object client_info;
  // In-flight tool calls by serialized request id, for notifications/cancelled.
  std::map<std::string, std::weak_ptr<ToolCall>> calls;
};

// Collects the replies of one batch and sends them as one array when the last arrives.
struct Dispatcher::Batch {
  Outbound* outbound;
  SessionKey key;
  uint64_t stream;
  std::size_t pending = 0;
  std::vector<std::string> replies;

  void add(std::string reply) {
    if (!reply.empty()) replies.push_back(std::move(reply));
    if (--pending == 0 && !replies.empty()) {
      std::string out = "[";
      for (std::size_t i = 0; i < replies.size(); ++i) {
        if (i) out += ',';
        out += replies[i];
      }
      out += ']';
      outbound->send(key, stream, std::move(out), true);
    }
  }
};

// ---- ToolCall ----------------------------------------------------------------------------

void ToolCall::progress(double value, std::optional<double> total, std::string_view message) {
  if (done_ || cancelled_ || progress_token_.is_null() || dispatcher_ == nullptr) return;
  json::object params;
  params["progressToken"] = progress_token_;
  params["progress"] = value;
  if (total) params["total"] = *total;
  if (!message.empty()) params["message"] = message;
  dispatcher_->send_on_stream(session_, stream_,
                              make_notification("notifications/progress", std::move(params)));
}

void ToolCall::finish(json::object structured) {
  if (done_) return;
  // The same JSON goes out twice: as structuredContent, and as the text of a text content for
  // clients that do not read structured output. It is serialized once; the text is that
  // serialization written as a JSON string. The response is assembled as text rather than as
  // a json::value so that a large answer (ps with 1,000 processes) is not serialized twice.
  const std::string body = json::serialize(structured);
  std::string message;
  message.reserve(body.size() * 2 + 128);
  message += R"({"jsonrpc":"2.0","id":)";
  message += json::serialize(request_id_);
  message += R"(,"result":{"content":[{"type":"text","text":)";
  append_json_string(message, body);
  message += R"(}],"structuredContent":)";
  message += body;
  message += R"(,"isError":false}})";
  send_message(std::move(message));
}

void ToolCall::fail(std::string_view message) {
  json::object result;
  result["content"] = json::array{json::object{{"type", "text"}, {"text", message}}};
  result["isError"] = true;
  send_result(std::move(result));
}

void ToolCall::send_result(json::object result) {
  if (done_) return;
  send_message(make_result(request_id_, std::move(result)));
}

void ToolCall::send_message(std::string message) {
  if (done_) return;
  done_ = true;
  on_cancel_ = nullptr;
  // A cancelled request gets no response (the spec says the receiver should not send one).
  if (!cancelled_ && reply_) reply_(std::move(message));
  reply_ = nullptr;
  if (dispatcher_ != nullptr) dispatcher_->forget(*this);
}

// ---- Dispatcher --------------------------------------------------------------------------

Dispatcher::Dispatcher(Outbound& outbound, ServerInfo info)
    : outbound_(outbound), info_(std::move(info)) {}

Dispatcher::~Dispatcher() {
  for (auto& [key, state] : sessions_) {
    for (auto& [id, weak] : state->calls) {
      if (auto call = weak.lock()) call->dispatcher_ = nullptr;
    }
  }
}

void Dispatcher::add_tool(ToolDefinition tool) { tools_.push_back(std::move(tool)); }

SessionState& Dispatcher::session(SessionKey key) {
  auto& slot = sessions_[key];
  if (!slot) slot = std::make_unique<SessionState>();
  return *slot;
}

void Dispatcher::on_message(SessionKey key, uint64_t stream, std::string_view text) {
  Parsed parsed = parse(text);
  std::shared_ptr<Batch> batch;
  if (parsed.batch) {
    batch = std::make_shared<Batch>();
    batch->outbound = &outbound_;
    batch->key = key;
    batch->stream = stream;
    batch->pending = parsed.messages.size();
  }
  auto make_reply = [&](bool owes_reply) -> Reply {
    if (batch) {
      return [batch](std::string reply) { batch->add(std::move(reply)); };
    }
    if (!owes_reply) return nullptr;
    return [this, key, stream](std::string reply) {
      outbound_.send(key, stream, std::move(reply), true);
    };
  };
  for (auto& message : parsed.messages) {
    if (auto* request = std::get_if<Request>(&message)) {
      handle_request(key, stream, std::move(*request), make_reply(true));
    } else if (auto* note = std::get_if<Notification>(&message)) {
      handle_notification(key, std::move(*note));
      if (batch) batch->add({});
    } else if (auto* invalid = std::get_if<Invalid>(&message)) {
      make_reply(true)(make_error(invalid->id, invalid->code, invalid->message));
    } else if (batch) {
      batch->add({});  // a client's response to us: nothing to answer
    }
  }
}

void Dispatcher::handle_request(SessionKey key, uint64_t stream, Request request, Reply reply) {
  SessionState& state = session(key);
  const std::string& method = request.method;
  if (method == "initialize") {
    std::string requested;
    if (auto it = request.params.find("protocolVersion");
        it != request.params.end() && it->value().is_string()) {
      requested = std::string(it->value().get_string());
    }
    const auto& versions = supported_protocol_versions();
    state.protocol_version = std::find(versions.begin(), versions.end(), requested) != versions.end()
                                 ? requested
                                 : std::string(kLatestProtocolVersion);
    if (auto it = request.params.find("clientInfo");
        it != request.params.end() && it->value().is_object()) {
      state.client_info = it->value().get_object();
    }
    json::object caps;
    caps["tools"] = json::object{{"listChanged", false}};
    caps["logging"] = json::object{};
    if (resources_ != nullptr) {
      caps["resources"] = json::object{{"subscribe", true}, {"listChanged", false}};
    }
    json::object result;
    result["protocolVersion"] = state.protocol_version;
    result["capabilities"] = std::move(caps);
    result["serverInfo"] = json::object{{"name", info_.name}, {"version", info_.version}};
    if (!info_.instructions.empty()) result["instructions"] = info_.instructions;
    reply(make_result(request.id, std::move(result)));
    return;
  }
  if (method == "ping") {
    reply(make_result(request.id, json::object{}));
    return;
  }
  if (method == "tools/list") {
    json::array list;
    for (const auto& tool : tools_) list.push_back(tool.descriptor);
    reply(make_result(request.id, json::object{{"tools", std::move(list)}}));
    return;
  }
  if (method == "tools/call") {
    call_tool(key, stream, std::move(request), std::move(reply));
    return;
  }
  if (resources_ != nullptr && method.starts_with("resources/")) {
    std::string uri;
    if (auto it = request.params.find("uri"); it != request.params.end() && it->value().is_string()) {
      uri = std::string(it->value().get_string());
    }
    std::string error;
    if (method == "resources/list") {
      reply(make_result(request.id, json::object{{"resources", resources_->list(key)}}));
      return;
    }
    if (method == "resources/templates/list") {
      reply(make_result(request.id, json::object{{"resourceTemplates", resources_->templates()}}));
      return;
    }
    if ((method == "resources/read" || method == "resources/subscribe" ||
         method == "resources/unsubscribe") && uri.empty()) {
      reply(make_error(request.id, kInvalidParams, "params.uri must be a resource URI such as "
                                                   "process://host-1/stdout"));
      return;
    }
    if (method == "resources/read") {
      auto contents = resources_->read(key, uri, error);
      if (!contents) {
        // -32002 is the spec's "resource not found".
        reply(make_error(request.id, -32002, error));
        return;
      }
      reply(make_result(request.id, json::object{{"contents", std::move(*contents)}}));
      return;
    }
    if (method == "resources/subscribe") {
      if (!resources_->subscribe(key, uri, error)) {
        reply(make_error(request.id, -32002, error));
        return;
      }
      reply(make_result(request.id, json::object{}));
      return;
    }
    if (method == "resources/unsubscribe") {
      resources_->unsubscribe(key, uri);
      reply(make_result(request.id, json::object{}));
      return;
    }
  }
  if (method == "logging/setLevel") {
    auto it = request.params.find("level");
    std::optional<LogLevel> level;
    if (it != request.params.end() && it->value().is_string()) {
      level = parse_log_level(it->value().get_string());
    }
    if (!level) {
      reply(make_error(request.id, kInvalidParams,
                       "params.level must be one of: debug, info, notice, warning, error, "
                       "critical, alert, emergency"));
      return;
    }
    state.log_level = *level;
    reply(make_result(request.id, json::object{}));
    return;
  }
  reply(make_error(request.id, kMethodNotFound, "method not found: " + method));
}

void Dispatcher::handle_notification(SessionKey key, Notification note) {
  SessionState& state = session(key);
  if (note.method == "notifications/initialized") {
    state.initialized = true;
  } else if (note.method == "notifications/cancelled") {
    auto it = note.params.find("requestId");
    if (it == note.params.end()) return;
    auto call_it = state.calls.find(json::serialize(it->value()));
    if (call_it == state.calls.end()) return;
    if (auto call = call_it->second.lock()) {
      call->cancelled_ = true;
      auto fn = std::move(call->on_cancel_);
      call->on_cancel_ = nullptr;
      state.calls.erase(call_it);
      if (fn) fn();
    } else {
      state.calls.erase(call_it);
    }
  }
  // Other notifications (roots/list_changed, progress from the client...) need no action.
}

void Dispatcher::call_tool(SessionKey key, uint64_t stream, Request request, Reply reply) {
  auto name_it = request.params.find("name");
  if (name_it == request.params.end() || !name_it->value().is_string()) {
    reply(make_error(request.id, kInvalidParams, "params.name must be the name of a tool"));
    return;
  }
  std::string_view name = name_it->value().get_string();
  auto tool = std::find_if(tools_.begin(), tools_.end(),
                           [&](const ToolDefinition& t) { return t.name == name; });
  if (tool == tools_.end()) {
    std::string names;
    for (const auto& t : tools_) names += (names.empty() ? "" : ", ") + t.name;
    reply(make_error(request.id, kInvalidParams,
                     "Unknown tool: " + std::string(name) + " (available: " + names + ")"));
    return;
  }
  auto call = std::make_shared<ToolCall>();
  call->dispatcher_ = this;
  call->session_ = key;
  call->stream_ = stream;
  call->request_id_ = request.id;
  call->reply_ = std::move(reply);
  if (auto args = request.params.find("arguments"); args != request.params.end()) {
    if (args->value().is_object()) {
      call->arguments_ = args->value().get_object();
    } else if (!args->value().is_null()) {
      call->fail("arguments must be a JSON object");
      return;
    }
  }
  if (auto meta = request.params.find("_meta"); meta != request.params.end() &&
                                                 meta->value().is_object()) {
    if (auto token = meta->value().get_object().find("progressToken");
        token != meta->value().get_object().end() &&
        (token->value().is_string() || token->value().is_int64() || token->value().is_uint64())) {
      call->progress_token_ = token->value();
    }
  }
  session(key).calls[json::serialize(request.id)] = call;
  tool->handler(call);
}

void Dispatcher::forget(ToolCall& call) {
  auto it = sessions_.find(call.session_);
  if (it == sessions_.end()) return;
  it->second->calls.erase(json::serialize(call.request_id_));
}

void Dispatcher::on_session_closed(SessionKey key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  std::unique_ptr<SessionState> state = std::move(it->second);
  sessions_.erase(it);
  if (resources_ != nullptr) resources_->session_closed(key);
  for (auto& [id, weak] : state->calls) {
    if (auto call = weak.lock()) {
      call->cancelled_ = true;
      call->dispatcher_ = nullptr;
      auto fn = std::move(call->on_cancel_);
      call->on_cancel_ = nullptr;
      if (fn) fn();
    }
  }
}

void Dispatcher::log(LogLevel level, std::string_view logger, json::value data,
                     std::optional<SessionKey> only) {
  json::object params;
  params["level"] = log_level_name(level);
  if (!logger.empty()) params["logger"] = logger;
  params["data"] = std::move(data);
  std::string text = make_notification("notifications/message", std::move(params));
  for (auto& [key, state] : sessions_) {
    if (only && *only != key) continue;
    if (level < state->log_level) continue;
    outbound_.send(key, 0, text, false);
  }
}

void Dispatcher::notify(SessionKey key, std::string_view method, json::object params) {
  outbound_.send(key, 0, make_notification(method, std::move(params)), false);
}

}  // namespace pmcp::mcp
