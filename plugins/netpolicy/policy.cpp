// The proxy's policy: validation, name matching and address classification.
#include "pmcp/netpolicy/policy.hpp"

#include <algorithm>
#include <array>

namespace pmcp::netpolicy {

namespace {

namespace ip = boost::asio::ip;

bool parse_ip(std::string_view text, ip::address& out) {
  boost::system::error_code ec;
  out = ip::make_address(std::string(text), ec);
  return !ec;
}

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_label_char(c)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

// Checks one pattern; returns an empty string or the reason it is not one.
std::string check_pattern(const char* list, const std::string& pattern) {
  const std::string p = normalize_host(pattern);
  if (p == "*" && pattern == "*") return {};
  if (p.starts_with("*.")) {
    const std::string_view base = std::string_view(p).substr(2);
    if (is_host_name(base) && !is_ip_literal(base)) return {};
  } else if (is_valid_host(p)) {
    return {};
  }
  return std::string(list) + " entry \"" + pattern +
         "\" is not \"*\", \"*.domain\", a host name or an IP address";
}

}  // namespace

std::string normalize_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  ip::address address;
  if (!out.empty() && parse_ip(out, address)) return address.to_string();
  return out;
}

bool is_ip_literal(std::string_view normalized) {
  ip::address address;
  return !normalized.empty() && parse_ip(normalized, address);
}

bool is_valid_host(std::string_view normalized) {
  return is_host_name(normalized) || is_ip_literal(normalized);
}

bool pattern_matches(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return true;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix) && !is_ip_literal(host);
  }
  return pattern == host;
}

std::string validate(const Policy& policy) {
  for (const auto& p : policy.allowed_domains) {
    if (auto error = check_pattern("allowed_domains", p); !error.empty()) return error;
  }
  for (const auto& p : policy.denied_domains) {
    if (auto error = check_pattern("denied_domains", p); !error.empty()) return error;
  }
  for (const auto& [name, address] : policy.test_resolve) {
    const std::string n = normalize_host(name);
    if (!is_host_name(n) || is_ip_literal(n)) {
      return "test_resolve name \"" + name + "\" is not a host name";
    }
    if (!is_ip_literal(normalize_host(address))) {
      return "test_resolve address \"" + address + "\" for \"" + name + "\" is not an IP address";
    }
  }
  return {};
}

NameDecision check_name(const Policy& policy, std::string_view host) {
  const std::string h = normalize_host(host);
  for (const auto& p : policy.denied_domains) {
    if (pattern_matches(normalize_host(p), h)) return {NameVerdict::denied, p};
  }
  for (const auto& p : policy.allowed_domains) {
    const std::string n = normalize_host(p);
    if (n != "*" && !n.starts_with("*.") && n == h) return {NameVerdict::allowed_exactly, p};
  }
  for (const auto& p : policy.allowed_domains) {
    if (pattern_matches(normalize_host(p), h)) return {NameVerdict::allowed, p};
  }
  return {};
}

std::string_view forbidden_address_kind(const ip::address& address) {
  if (address.is_v6()) {
    const ip::address_v6 v6 = address.to_v6();
    if (v6.is_v4_mapped()) {
      return forbidden_address_kind(ip::make_address_v4(ip::v4_mapped, v6));
    }
    if (v6 == ip::make_address_v6("fd00:ec2::254")) return "cloud metadata";
    if (v6.is_loopback()) return "loopback";
    if (v6.is_unspecified()) return "unspecified";
    if (v6.is_link_local()) return "link-local";
    return {};
  }
  const uint32_t v4 = address.to_v4().to_uint();
  if (v4 == 0xA9FEA9FEu || v4 == 0x646464C8u)
    return "cloud metadata";  // 169.254.169.254, 100.100.100.200
  if ((v4 >> 24) == 127) return "loopback";
  if ((v4 >> 24) == 0) return "unspecified";  // 0.0.0.0/8: Linux routes 0.0.0.0 to this host
  if ((v4 >> 16) == 0xA9FE) return "link-local";
  return {};
}

}  // namespace pmcp::netpolicy
