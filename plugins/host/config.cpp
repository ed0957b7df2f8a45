#include "config.hpp"

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>

#include "pmcp/netpolicy/policy.hpp"
#include "pmcp/plugin.hpp"

namespace pmcp::host {

namespace {

namespace json = boost::json;
using sdk::Error;

[[noreturn]] void fail(const std::string& key, const std::string& reason) {
  throw Error(PMCP_ERR_INVALID_ARGUMENT, "[host] key '" + key + "': " + reason);
}

std::string kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "a table";
  }
  return "a value";
}

// Calls on_key(name, value) for each key of the table at `path`, rejecting any not in `known`.
void walk(const json::value& v, const std::string& path, std::initializer_list<const char*> known,
          const std::function<void(const std::string&, const json::value&)>& on_key) {
  if (!v.is_object()) fail(path, "expected a table, got " + kind_of(v));
  for (const auto& [name, value] : v.as_object()) {
    const std::string key(name);
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    const std::string full = path.empty() ? key : path + "." + key;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      fail(full, "unknown key (known keys here: " + list + ")");
    }
    on_key(full, value);
  }
}

std::vector<std::string> strings(const std::string& key, const json::value& v) {
  if (!v.is_array()) fail(key, "expected an array of strings, got " + kind_of(v));
  std::vector<std::string> out;
  for (const json::value& item : v.as_array()) {
    if (!item.is_string()) fail(key, "expected an array of strings, found " + kind_of(item));
    const json::string& s = item.as_string();
    if (s.find('\0') != json::string::npos) fail(key, "an entry contains a NUL byte");
    out.emplace_back(s.data(), s.size());
  }
  return out;
}

// `~`, `~/x`, relative and absolute paths to one absolute, normalized path; symbolic links are
// resolved when the path exists, so that a rule names what the sandbox will really see.
std::string absolute_path(const std::string& key, const std::string& raw,
                          const std::string& base_dir, const std::string& home) {
  std::string p = raw;
  if (p == "~" || p.starts_with("~/")) {
    if (home.empty() || home.front() != '/')
      fail(key, "'" + raw + "' starts with ~ but the server has no absolute HOME");
    p = home + p.substr(1);
  } else if (p.starts_with("~")) {
    fail(key, "'" + raw + "': only ~ and ~/ are understood, not ~user");
  } else if (p.front() != '/') {
    p = base_dir + "/" + p;
  }
  std::filesystem::path norm = std::filesystem::path(p).lexically_normal();
  std::string out = norm.string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(out, ec);
  if (!ec) out = real.string();
  return out;
}

std::vector<std::string> paths(const std::string& key, const json::value& v,
                               const std::string& base_dir, const std::string& home) {
  std::vector<std::string> out;
  for (const std::string& raw : strings(key, v)) {
    if (raw.empty()) continue;  // "a,,b" in a SANDBOX_* variable
    out.push_back(absolute_path(key, raw, base_dir, home));
  }
  return out;
}

std::vector<std::string> domains(const std::string& key, const json::value& v) {
  std::vector<std::string> out;
  for (const std::string& d : strings(key, v)) {
    if (!d.empty()) out.push_back(d);  // "a,,b" in a SANDBOX_* variable
  }
  return out;
}

}  // namespace

HostConfig parse_config(std::string_view text, const std::string& base_dir,
                        const std::string& home) {
  HostConfig config;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return config;
  boost::system::error_code ec;
  const json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "the host executor configuration is not valid JSON: " + ec.message());
  }
  if (!root.is_object())
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "the host executor configuration is not a JSON object but " + kind_of(root));
  SandboxConfig& s = config.sandbox;
  walk(root, "", {"sandbox", "filesystem", "network"},
       [&](const std::string& key, const json::value& table) {
         if (key == "sandbox") {
           walk(table, key, {"enabled", "bwrap"}, [&](const std::string& k, const json::value& v) {
             if (k == "sandbox.enabled") {
               if (!v.is_bool()) fail(k, "expected true or false, got " + kind_of(v));
               s.enabled = v.as_bool();
             } else {
               if (!v.is_string()) fail(k, "expected the path of the bubblewrap program");
               s.bwrap = std::string(v.as_string());
               if (s.bwrap.empty())
                 fail(k, "expected the path of the bubblewrap program, got \"\"");
               if (s.bwrap.find('/') != std::string::npos)
                 s.bwrap = absolute_path(k, s.bwrap, base_dir, home);
             }
           });
         } else if (key == "filesystem") {
           walk(table, key, {"workdir", "allow_write", "deny_read", "deny_write"},
                [&](const std::string& k, const json::value& v) {
                  if (k == "filesystem.workdir") {
                    if (!v.is_string() || v.as_string().empty())
                      fail(k, "expected the path of the working directory");
                    s.workdir = absolute_path(k, std::string(v.as_string()), base_dir, home);
                    return;
                  }
                  std::vector<std::string> list = paths(k, v, base_dir, home);
                  if (k == "filesystem.allow_write")
                    s.allow_write = std::move(list);
                  else if (k == "filesystem.deny_read")
                    s.deny_read = std::move(list);
                  else
                    s.deny_write = std::move(list);
                });
         } else {
           walk(table, key, {"allowed_domains", "denied_domains", "test_resolve"},
                [&](const std::string& k, const json::value& v) {
                  if (k == "network.allowed_domains") {
                    s.allowed_domains = domains(k, v);
                  } else if (k == "network.denied_domains") {
                    s.denied_domains = domains(k, v);
                  } else {
                    if (!v.is_object()) fail(k, "expected a table of host name = \"IP address\"");
                    for (const auto& [name, ip] : v.as_object()) {
                      if (!ip.is_string())
                        fail(k + "." + std::string(name),
                             "expected an IP address string, got " + kind_of(ip));
                      s.test_resolve[std::string(name)] = std::string(ip.as_string());
                    }
                  }
                });
         }
       });
  netpolicy::Policy policy{s.allowed_domains, s.denied_domains, s.test_resolve};
  const std::string problem = netpolicy::validate(policy);
  if (!problem.empty()) fail("network", problem);
  return config;
}

}  // namespace pmcp::host
