// HTTP/1.x heads for the filtering proxy.
#include "http_head.hpp"

#include <algorithm>
#include <charconv>

namespace pmcp::netpolicy::http {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

// Splits "a, b ,c" into trimmed non-empty items.
std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> items;
  while (!value.empty()) {
    const auto comma = value.find(',');
    const auto item = trim(value.substr(0, comma));
    if (!item.empty()) items.push_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return items;
}

// Splits a head into its lines (without CRLF), stopping at the empty line.
std::vector<std::string_view> head_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const auto eol = head.find("\r\n");
    if (eol == 0 || eol == std::string_view::npos) break;
    lines.push_back(head.substr(0, eol));
    head.remove_prefix(eol + 2);
  }
  return lines;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<HostPort> parse_authority(std::string_view authority, uint16_t default_port) {
  HostPort out;
  std::string_view rest;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    rest = authority.substr(close + 1);
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(':') != colon) return std::nullopt;
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) rest = authority.substr(colon);
  }
  if (out.host.empty()) return std::nullopt;
  if (rest.empty()) {
    if (default_port == 0) return std::nullopt;
    out.port = default_port;
    return out;
  }
  if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return std::nullopt;
  unsigned port = 0;
  const auto digits = rest.substr(1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

std::optional<RequestHead> parse_request_head(std::string_view head, std::string& error) {
  const auto lines = head_lines(head);
  if (lines.empty()) {
    error = "empty request";
    return std::nullopt;
  }
  RequestHead request;
  const std::string_view line = lines[0];
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    error = "malformed request line";
    return std::nullopt;
  }
  request.method = std::string(line.substr(0, sp1));
  request.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  request.version = std::string(line.substr(sp2 + 1));
  if (!is_token(request.method) || request.target.empty() ||
      (request.version != "HTTP/1.1" && request.version != "HTTP/1.0")) {
    error = "malformed request line";
    return std::nullopt;
  }
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    const auto name =
        colon == std::string_view::npos ? std::string_view{} : lines[i].substr(0, colon);
    if (!is_token(name)) {
      error = "malformed header line";
      return std::nullopt;
    }
    request.headers.emplace_back(std::string(name), std::string(trim(lines[i].substr(colon + 1))));
  }
  return request;
}

std::optional<AbsoluteUrl> parse_http_url(std::string_view target, std::string& error) {
  if (istarts_with(target, "https://")) {
    error = "https URLs go through CONNECT, not a plain proxy request";
    return std::nullopt;
  }
  if (!istarts_with(target, "http://")) {
    error = "a proxy request needs an absolute http:// URL (or CONNECT host:port)";
    return std::nullopt;
  }
  target.remove_prefix(7);
  const auto end = std::min(target.find_first_of("/?#"), target.size());
  AbsoluteUrl url;
  url.authority = std::string(target.substr(0, end));
  if (url.authority.find('@') != std::string::npos) {
    error = "credentials in the URL are not supported";
    return std::nullopt;
  }
  auto destination = parse_authority(url.authority, 80);
  if (!destination) {
    error = "malformed host in the URL";
    return std::nullopt;
  }
  url.destination = std::move(*destination);
  std::string_view path = target.substr(end);
  path = path.substr(0, std::min(path.find('#'), path.size()));
  if (path.empty() || path.front() != '/') url.path.push_back('/');
  url.path.append(path);
  return url;
}

std::string upstream_request_head(const RequestHead& request, const AbsoluteUrl& url) {
  std::vector<std::string_view> named_in_connection;
  for (const auto& [name, value] : request.headers) {
    if (iequals(name, "connection") || iequals(name, "proxy-connection")) {
      for (auto item : split_list(value)) named_in_connection.push_back(item);
    }
  }
  std::string out = request.method + " " + url.path + " " + request.version +
                    "\r\nHost: " + url.authority + "\r\n";
  for (const auto& [name, value] : request.headers) {
    if (iequals(name, "host") || iequals(name, "connection") || iequals(name, "keep-alive") ||
        iequals(name, "upgrade") || istarts_with(name, "proxy-") ||
        std::any_of(named_in_connection.begin(), named_in_connection.end(),
                    [&](std::string_view n) { return iequals(n, name); })) {
      continue;
    }
    out += name + ": " + value + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out;
}

std::optional<BodyFraming> request_body_framing(const Headers& headers, std::string& error) {
  BodyFraming framing;
  bool has_length = false;
  bool has_encoding = false;
  for (const auto& [name, value] : headers) {
    if (iequals(name, "content-length")) {
      uint64_t length = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
          (has_length && length != framing.length)) {
        error = "malformed Content-Length";
        return std::nullopt;
      }
      has_length = true;
      framing.length = length;
    } else if (iequals(name, "transfer-encoding")) {
      const auto codings = split_list(value);
      if (has_encoding || codings.empty() || !iequals(codings.back(), "chunked")) {
        error = "unsupported Transfer-Encoding";
        return std::nullopt;
      }
      has_encoding = true;
    }
  }
  if (has_length && has_encoding) {
    error = "both Content-Length and Transfer-Encoding";
    return std::nullopt;
  }
  if (has_encoding)
    framing.kind = BodyFraming::Kind::chunked;
  else if (has_length && framing.length > 0)
    framing.kind = BodyFraming::Kind::length;
  return framing;
}

std::size_t ChunkedScanner::feed(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() && state_ != State::done && state_ != State::failed) {
    const char c = data[i];
    switch (state_) {
      case State::size: {
        int v = -1;
        if (c >= '0' && c <= '9')
          v = c - '0';
        else if (lower(c) >= 'a' && lower(c) <= 'f')
          v = lower(c) - 'a' + 10;
        if (v >= 0) {
          if (++digits_ > 15) state_ = State::failed;
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (digits_ == 0) {
          state_ = State::failed;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::extension;
        } else {
          state_ = State::failed;
        }
        ++i;
        break;
      }
      case State::extension:
        if (c == '\r')
          state_ = State::size_lf;
        else if (c == '\n')
          state_ = State::failed;
        ++i;
        break;
      case State::size_lf:
        state_ = c != '\n' ? State::failed : remaining_ == 0 ? State::trailer_start : State::data;
        digits_ = 0;
        ++i;
        break;
      case State::data: {
        const auto take = std::min<uint64_t>(remaining_, data.size() - i);
        remaining_ -= take;
        i += static_cast<std::size_t>(take);
        if (remaining_ == 0) state_ = State::data_cr;
        break;
      }
      case State::data_cr:
        state_ = c == '\r' ? State::data_lf : State::failed;
        ++i;
        break;
      case State::data_lf:
        state_ = c == '\n' ? State::size : State::failed;
        ++i;
        break;
      case State::trailer_start:
        state_ = c == '\r' ? State::final_lf : State::trailer;
        ++i;
        break;
      case State::trailer:
        if (c == '\n') state_ = State::trailer_start;
        ++i;
        break;
      case State::final_lf:
        state_ = c == '\n' ? State::done : State::failed;
        ++i;
        break;
      case State::done:
      case State::failed:
        break;
    }
  }
  return i;
}

std::string downstream_response_head(std::string_view head, int& status) {
  status = 0;
  const auto lines = head_lines(head);
  if (lines.empty() || !lines[0].starts_with("HTTP/1.") || lines[0].size() < 12 ||
      lines[0][8] != ' ') {
    return std::string(head);
  }
  const auto code = lines[0].substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::string(head);
  }
  status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  std::string out = std::string(lines[0]) + "\r\n";
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto name = lines[i].substr(0, lines[i].find(':'));
    if (iequals(name, "connection") || iequals(name, "keep-alive") ||
        iequals(name, "proxy-connection")) {
      continue;
    }
    out += std::string(lines[i]) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out;
}

}  // namespace pmcp::netpolicy::http
