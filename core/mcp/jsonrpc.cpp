// JSON-RPC 2.0 framing: classification follows the spec's rules for ids, methods and params.
#include "mcp/jsonrpc.hpp"

#include <string>

namespace pmcp::mcp {
namespace {

// Offset of the first byte that does not belong to valid UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or npos when the whole text is valid.
std::size_t invalid_utf8_at(std::string_view text) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i < len || b[i + 1] < lo || b[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if (b[i + k] < 0x80 || b[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// The parse error's message: what is wrong, in words a client's author can act on.
std::string parse_error_message(std::string_view text, const boost::system::error_code& ec) {
  if (std::size_t at = invalid_utf8_at(text); at != std::string_view::npos) {
    return "parse error: the text is not valid UTF-8 (first bad byte at offset " +
           std::to_string(at) + "); JSON-RPC messages must be UTF-8";
  }
  if (ec == json::error::illegal_leading_surrogate ||
      ec == json::error::illegal_trailing_surrogate) {
    return "parse error: a \\u escape is half of a UTF-16 surrogate pair (\\uD800 to \\uDFFF "
           "must come in pairs)";
  }
  if (ec == json::error::too_deep) {
    return "parse error: arrays and objects are nested more than " + std::to_string(kMaxJsonDepth) +
           " levels deep, the server's limit";
  }
  return "parse error: the text is not valid JSON (" + ec.message() + ")";
}

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
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  json::value v = json::parse(text, ec, {}, options);
  if (ec) {
    out.messages.emplace_back(Invalid{nullptr, kParseError, parse_error_message(text, ec)});
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

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet appended, which need no escape
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text, run, i - run);
    run = i + 1;
    out += '\\';
    switch (c) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '\b':
        out += 'b';
        break;
      case '\f':
        out += 'f';
        break;
      case '\n':
        out += 'n';
        break;
      case '\r':
        out += 'r';
        break;
      case '\t':
        out += 't';
        break;
      default:
        out += "u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text, run, std::string_view::npos);
  out += '"';
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
