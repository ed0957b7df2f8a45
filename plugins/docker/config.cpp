#include "config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cmath>
#include <limits>

#include "pmcp/netpolicy/policy.hpp"
#include "pmcp/plugin.hpp"

namespace pmcp::docker {

namespace json = boost::json;
using sdk::Error;

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw Error(PMCP_ERR_INVALID_ARGUMENT, "[docker] " + key + ": " + why);
}

std::string get_string(const json::value& v, const std::string& key, bool allow_empty) {
  if (!v.is_string()) bad(key, "expected a string");
  std::string s(v.as_string());
  if (!allow_empty && s.empty()) bad(key, "must not be empty");
  return s;
}

bool get_bool(const json::value& v, const std::string& key) {
  if (!v.is_bool()) bad(key, "expected true or false");
  return v.as_bool();
}

int64_t get_int(const json::value& v, const std::string& key, int64_t min) {
  int64_t n = 0;
  if (v.is_int64()) {
    n = v.as_int64();
  } else if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v.as_uint64());
  } else {
    bad(key, "expected an integer");
  }
  if (n < min) bad(key, "must be at least " + std::to_string(min));
  return n;
}

std::vector<std::string> get_domains(const json::value& v, const std::string& key) {
  if (!v.is_array()) bad(key, "expected an array of host name patterns such as \"*.example.com\"");
  std::vector<std::string> out;
  for (const auto& item : v.as_array()) out.push_back(get_string(item, key, false));
  return out;
}

}  // namespace

int64_t parse_memory(std::string_view text) {
  if (text.empty()) return -1;
  std::size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (n > (std::numeric_limits<int64_t>::max() - 9) / 10) return -1;
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) return -1;
  std::string_view unit = text.substr(i);
  int shift = 0;
  if (unit.empty() || unit == "b" || unit == "B") {
    shift = 0;
  } else if (unit == "k" || unit == "K" || unit == "kb" || unit == "KB") {
    shift = 10;
  } else if (unit == "m" || unit == "M" || unit == "mb" || unit == "MB") {
    shift = 20;
  } else if (unit == "g" || unit == "G" || unit == "gb" || unit == "GB") {
    shift = 30;
  } else {
    return -1;
  }
  if (n > (std::numeric_limits<int64_t>::max() >> shift)) return -1;
  return n << shift;
}

Config parse_config(std::string_view text) {
  Config c;
  std::string_view trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  if (trimmed.empty()) return c;
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec || !root.is_object())
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "the [docker] configuration is not a JSON object");
  for (const auto& [k, v] : root.as_object()) {
    const std::string key(k);
    if (key == "image") {
      c.image = get_string(v, key, false);
    } else if (key == "container") {
      c.container = get_string(v, key, false);
    } else if (key == "volume") {
      c.volume = get_string(v, key, true);
    } else if (key == "use_existing") {
      c.use_existing = get_bool(v, key);
    } else if (key == "memory") {
      if (v.is_string()) {
        c.memory = parse_memory(std::string(v.as_string()));
        if (c.memory < 0) bad(key, "expected a size such as \"512m\", \"2g\" or a byte count");
      } else {
        c.memory = get_int(v, key, 0);
      }
      if (c.memory != 0 && c.memory < (6LL << 20)) bad(key, "must be at least 6m (or 0 for none)");
    } else if (key == "cpus") {
      if (!v.is_number()) bad(key, "expected a number of CPUs such as 1 or 0.5");
      c.cpus = v.to_number<double>();
      if (!(c.cpus >= 0.0) || c.cpus > 1024.0 || !std::isfinite(c.cpus))
        bad(key, "must be between 0 (no limit) and 1024");
    } else if (key == "pids_limit") {
      c.pids_limit = get_int(v, key, 0);
    } else if (key == "network") {
      c.network = get_string(v, key, false);
      c.network_set = true;
    } else if (key == "allowed_domains") {
      c.allowed_domains = get_domains(v, key);
      c.policy = true;
    } else if (key == "denied_domains") {
      c.denied_domains = get_domains(v, key);
    } else if (key == "test_resolve") {
      if (!v.is_object()) bad(key, "expected a table of host name = \"IP address\"");
      for (const auto& [name, ip] : v.as_object()) {
        if (!ip.is_string()) bad(key + "." + std::string(name), "expected an IP address string");
        c.test_resolve[std::string(name)] = std::string(ip.as_string());
      }
    } else if (key == "workdir") {
      c.workdir = get_string(v, key, false);
      c.workdir_set = true;
      if (c.workdir.front() != '/') bad(key, "must be an absolute path inside the container");
    } else if (key == "keep_alive") {
      c.keep_alive.clear();
      if (v.is_string()) {
        c.keep_alive = {"/bin/sh", "-c", get_string(v, key, false)};
      } else if (v.is_array()) {
        for (const auto& item : v.as_array()) c.keep_alive.push_back(get_string(item, key, false));
        if (c.keep_alive.empty()) bad(key, "must not be empty");
      } else {
        bad(key, "expected a command as an array of strings (or a shell command string)");
      }
    } else if (key == "host") {
      c.host = get_string(v, key, true);
    } else if (key == "tls_verify") {
      c.tls_verify = get_bool(v, key);
      c.tls_verify_set = true;
    } else if (key == "cert_path") {
      c.cert_path = get_string(v, key, false);
    } else if (key == "remove_on_exit") {
      c.remove_on_exit = get_bool(v, key);
    } else if (key == "init") {
      c.init = get_bool(v, key);
    } else {
      bad(key,
          "unknown key (known: image, container, volume, use_existing, memory, cpus, "
          "pids_limit, network, allowed_domains, denied_domains, test_resolve, workdir, "
          "keep_alive, host, tls_verify, cert_path, "
          "remove_on_exit, init)");
    }
  }
  if (!c.policy && (!c.denied_domains.empty() || !c.test_resolve.empty()))
    bad(c.denied_domains.empty() ? "test_resolve" : "denied_domains",
        "has no effect without allowed_domains (the domain policy); without it the container "
        "uses `network` unfiltered");
  if (c.policy) {
    const std::string problem =
        netpolicy::validate({c.allowed_domains, c.denied_domains, c.test_resolve});
    if (!problem.empty()) bad("allowed_domains", problem);
    if (c.network_set)
      bad("network",
          "cannot be combined with allowed_domains: with a domain policy the container has no "
          "network of its own and reaches out only through the filtering proxy (remove "
          "`network`, or remove allowed_domains for an unfiltered network)");
    if (c.use_existing)
      bad("allowed_domains",
          "cannot be enforced on an existing container (use_existing = true / "
          "DOCKER_USE_EXISTING): a container's network and mounts are fixed when it is created, "
          "and the policy needs a container without a network of its own and with the "
          "proxy's socket mounted. Either drop the policy (allowed_domains, "
          "SANDBOX_ALLOWED_DOMAINS) or let process-mcp create the container (use_existing = "
          "false)");
    c.network = "none";
  }
  return c;
}

}  // namespace pmcp::docker
