// Which destinations the filtering proxy lets a sandboxed command reach: the policy, its
// validation, host name matching, and the addresses that no wildcard can open.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::netpolicy {

// The rules of one proxy. Patterns in both lists are
//   "*"              every host name and IP literal;
//   "*.example.com"  every name below example.com, at any depth, but not example.com itself;
//   "example.com"    exactly that name;   "192.0.2.7", "2001:db8::7"  exactly that address.
// Matching ignores case and one trailing dot. A deny always wins; an empty allowed list allows
// nothing.
struct Policy {
  std::vector<std::string> allowed_domains{"*"};
  std::vector<std::string> denied_domains;
  // For tests only: these names resolve to the given IP literal instead of asking DNS.
  std::map<std::string, std::string> test_resolve;
};

// Checks every pattern and test_resolve entry. Returns a message naming the first bad entry, or
// an empty string when the policy is usable. Example:
//   validate({.allowed_domains = {"*.*.com"}}) ==
//     "allowed_domains entry \"*.*.com\" is not \"*\", \"*.domain\", a host name or an IP address"
std::string validate(const Policy& policy);

// The form names are compared in: ASCII lower case, without one trailing dot, and for IP
// literals the canonical text of the address ("[::0001]" -> "::1"). Does not validate.
std::string normalize_host(std::string_view host);

// True for a normalized host name (labels of letters, digits, '-' and '_', at most 63 bytes
// each and 253 in all) or an IP literal.
bool is_valid_host(std::string_view normalized);

// True when normalized host is an IP literal.
bool is_ip_literal(std::string_view normalized);

// True when the normalized pattern covers the normalized host. Wildcards never match IP
// literals other than through "*".
bool pattern_matches(std::string_view pattern, std::string_view host);

enum class NameVerdict {
  allowed,          // matched by a wildcard entry of allowed_domains
  allowed_exactly,  // an exact entry of allowed_domains names this host
  not_allowed,      // no entry of allowed_domains covers it
  denied,           // an entry of denied_domains covers it
};

struct NameDecision {
  NameVerdict verdict = NameVerdict::not_allowed;
  std::string rule;  // the pattern that decided, as written in the policy; empty for not_allowed
};

// Decides on a host name or IP literal (normalized here) before any resolution.
NameDecision check_name(const Policy& policy, std::string_view host);

// Why the proxy must not connect to address unless its destination is allowed exactly:
// "loopback", "link-local", "unspecified" or "cloud metadata"; empty when the address is fine.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
std::string_view forbidden_address_kind(const boost::asio::ip::address& address);

}  // namespace pmcp::netpolicy
