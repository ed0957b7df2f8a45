// JSON-RPC 2.0 framing: classification follows the spec's rules for ids, methods and params.
#include "mcp/jsonrpc.hpp"

namespace pmcp::mcp {
namespace {

bool valid_id(const json::value& id) {
  // Strings and integers are the ids MCP allows; null is not a valid request id.
  return id.is_string() || id.is_int64() || id.is_uint64();
}

Message classify(const json::value& v) {
  if (!v.is_object()) {
    return Invalid{nullptr, kInvalidRequest, "a JSON-RPC message must be a JSON object"};
  }
  const auto& obj = v.get_object();
  json::value id = nullptr;
  bool has_id = false;
  if (auto it = obj.find("id"); it != obj.end()) {
    has_id = true;
    id = it->value();
  }
  auto jsonrpc = obj.find("jsonrpc");
  if (jsonrpc == obj.end() || !jsonrpc->value().is_string() ||
      jsonrpc->value().get_string() != "2.0") {
    return Invalid{valid_id(id) ? id : json::value(nullptr), kInvalidRequest,
                   "the member \"jsonrpc\" must be the string \"2.0\""};
  }
  auto method = obj.find("method");
  if (method == obj.end()) {
    if (has_id && (obj.contains("result") || obj.contains("error"))) return Response{id};
    return Invalid{valid_id(id) ? id : json::value(nullptr), kInvalidRequest,
                   "the message has no \"method\""};
  }
  if (!method->value().is_string()) {
    return Invalid{valid_id(id) ? id : json::value(nullptr), kInvalidRequest,
                   "the member \"method\" must be a string"};
  }
  if (has_id && !valid_id(id)) {
    return Invalid{nullptr, kInvalidRequest, "the member \"id\" must be a string or an integer"};
  }
  json::object params;
  if (auto p = obj.find("params"); p != obj.end()) {
    if (p->value().is_object()) {
      params = p->value().get_object();
    } else if (!p->value().is_null()) {
      if (!has_id) return Invalid{nullptr, kInvalidRequest, "\"params\" must be an object"};
      return Invalid{id, kInvalidParams, "\"params\" must be an object"};
    }
  }
  std::string name(method->value().get_string());
  if (has_id) return Request{id, std::move(name), std::move(params)};
  return Notification{std::move(name), std::move(params)};
}

}  // namespace

Parsed parse(std::string_view text) {
  Parsed out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    out.messages.emplace_back(
        Invalid{nullptr, kParseError, "parse error: the text is not valid JSON (" + ec.message() + ")"});
    return out;
  }
  if (v.is_array()) {
    out.batch = true;
    if (v.get_array().empty()) {
      out.batch = false;
      out.messages.emplace_back(Invalid{nullptr, kInvalidRequest, "an empty batch is not allowed"});
      return out;
    }
    for (const auto& element : v.get_array()) out.messages.push_back(classify(element));
    return out;
  }
  out.messages.push_back(classify(v));
  return out;
}

std::string make_result(const json::value& id, json::value result) {
  json::object o;
  o["jsonrpc"] = "2.0";
  o["id"] = id;
  o["result"] = std::move(result);
  return json::serialize(o);
}

std::string make_error(const json::value& id, int code, std::string_view message,
                       const json::value* data) {
  json::object err;
  err["code"] = code;
  err["message"] = message;
  if (data != nullptr) err["data"] = *data;
  json::object o;
  o["jsonrpc"] = "2.0";
  o["id"] = id;
  o["error"] = std::move(err);
  return json::serialize(o);
}

std::string make_notification(std::string_view method, json::object params) {
  json::object o;
  o["jsonrpc"] = "2.0";
  o["method"] = method;
  o["params"] = std::move(params);
  return json::serialize(o);
}

}  // namespace pmcp::mcp
