// Pure helpers of the HTTP wire; see wire.hpp for the contracts.
#include "wire.hpp"

#include <sys/random.h>

#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pmcp::http {
namespace {

namespace json = boost::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void classify_one(const json::value& v, BodyKind& kind) {
  if (!v.is_object()) {
    kind.valid = false;
    kind.error = "a JSON-RPC message must be an object";
    return;
  }
  const auto& obj = v.get_object();
  const auto* method = obj.if_contains("method");
  if (method != nullptr && obj.contains("id")) {
    kind.has_request = true;
    if (method->is_string() && method->get_string() == "initialize") kind.has_initialize = true;
  }
}

}  // namespace

BodyKind classify_body(std::string_view body) {
  BodyKind kind;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    kind.error = "the body is not JSON: " + ec.message();
    return kind;
  }
  kind.valid = true;
  if (v.is_array()) {
    kind.batch = true;
    if (v.get_array().empty()) {
      kind.valid = false;
      kind.error = "an empty batch";
      return kind;
    }
    for (const auto& item : v.get_array()) {
      classify_one(item, kind);
      if (!kind.valid) return kind;
    }
  } else {
    classify_one(v, kind);
  }
  return kind;
}

std::string host_of_host_header(std::string_view value) {
  value = trim(value);
  if (value.empty()) return {};
  if (value.front() == '[') {
    std::size_t close = value.find(']');
    if (close == std::string_view::npos) return {};
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return {};
    return lower(value.substr(0, close + 1));
  }
  std::size_t colon = value.find(':');
  std::string_view host = value.substr(0, colon);
  if (host.empty() || host.find_first_of("/ @") != std::string_view::npos) return {};
  return lower(host);
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  if (host.empty()) return false;
  for (const auto& entry : allowed) {
    if (entry == "*" || entry == host) return true;
  }
  return false;
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  std::string o = lower(trim(origin));
  std::size_t scheme_end = o.find("://");
  if (scheme_end == std::string::npos) return false;  // includes the opaque origin "null"
  std::string host = host_of_host_header(std::string_view(o).substr(scheme_end + 3));
  if (host.empty()) return false;
  for (const auto& entry : allowed) {
    if (entry == "*" || entry == o) return true;
    if (entry.find("://") == std::string::npos && entry == host) return true;
  }
  return false;
}

bool accepts(std::string_view accept_header, std::string_view media_type) {
  std::string wanted = lower(media_type);
  std::string type_any = wanted.substr(0, wanted.find('/')) + "/*";
  std::string header = lower(accept_header);
  std::string_view rest = header;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    item = trim(item.substr(0, item.find(';')));
    if (item == wanted || item == type_any || item == "*/*") return true;
  }
  return false;
}

bool supported_protocol_version(std::string_view version) {
  static constexpr std::array<std::string_view, 4> kVersions = {"2025-11-25", "2025-06-18",
                                                                "2025-03-26", "2024-11-05"};
  for (auto v : kVersions) {
    if (v == version) return true;
  }
  return false;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  // Keep the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

std::string random_session_id() {
  std::array<unsigned char, 16> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string sse_event(std::string_view id, std::string_view data, uint64_t retry_ms) {
  std::string out;
  out.reserve(data.size() + 48);
  if (!id.empty()) out.append("id: ").append(id).push_back('\n');
  if (retry_ms > 0) out.append("retry: ").append(std::to_string(retry_ms)).push_back('\n');
  // A JSON text has no raw newlines outside strings, but split anyway so that any text is framed
  // correctly: each line becomes its own data field and the client joins them with '\n'.
  std::size_t start = 0;
  while (true) {
    std::size_t nl = data.find('\n', start);
    std::string_view line = data.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.append("data: ").append(line).push_back('\n');
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out.push_back('\n');
  return out;
}

std::string event_id(uint64_t stream, uint64_t sequence) {
  return std::to_string(stream) + "-" + std::to_string(sequence);
}

bool parse_event_id(std::string_view text, uint64_t& stream, uint64_t& sequence) {
  text = trim(text);
  std::size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= text.size()) return false;
  auto parse = [](std::string_view digits, uint64_t& out) {
    if (digits.empty() || digits.size() > 19) return false;
    out = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  return parse(text.substr(0, dash), stream) && parse(text.substr(dash + 1), sequence);
}

std::string jsonrpc_error_body(int code, std::string_view message) {
  json::object error;
  error["code"] = code;
  error["message"] = message;
  json::object body;
  body["jsonrpc"] = "2.0";
  body["error"] = std::move(error);
  body["id"] = nullptr;
  return json::serialize(body);
}

}  // namespace pmcp::http
