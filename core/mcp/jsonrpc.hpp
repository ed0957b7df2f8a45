// JSON-RPC 2.0 framing for MCP: classify one incoming text, and build responses, errors and
// notifications. Pure functions over Boost.JSON; no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json.hpp>

namespace pmcp::mcp {

namespace json = boost::json;

// Standard JSON-RPC error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

struct Request {  // has an id: a response is owed
  json::value id;
  std::string method;
  json::object params;  // empty when absent
};

struct Notification {  // no id: no response
  std::string method;
  json::object params;
};

struct Response {  // a reply from the client to a request of ours (we send none yet)
  json::value id;
};

struct Invalid {  // not a valid message; reply with this error (id may be null)
  json::value id;
  int code;
  std::string message;
};

using Message = std::variant<Request, Notification, Response, Invalid>;

// How deep arrays and objects may nest in one message. Deeper text is a parse error that says
// so; the parser keeps its own stack, so no depth can overflow the server's.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Parses one text. A JSON array is a batch: each element becomes one Message. A text that is
// not JSON gives a single Invalid with kParseError.
struct Parsed {
  std::vector<Message> messages;
  bool batch = false;
};
Parsed parse(std::string_view text);

std::string make_result(const json::value& id, json::value result);
// Appends `text` to `out` as a JSON string, quoted and escaped exactly as json::serialize writes
// it, without a temporary copy (a large answer carries its structured result again as text).
void append_json_string(std::string& out, std::string_view text);
std::string make_error(const json::value& id, int code, std::string_view message,
                       const json::value* data = nullptr);
std::string make_notification(std::string_view method, json::object params);

}  // namespace pmcp::mcp
