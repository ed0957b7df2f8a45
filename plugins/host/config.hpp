// The host executor's configuration: its TOML table [host], handed over as JSON text, and the
// sandbox policy read from it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::host {

// The sandbox policy. Paths are absolute and normalized (see parse_config); domains are as
// written. It is fixed when the executor is created: nothing changes it afterwards.
struct SandboxConfig {
  bool enabled = true;
  std::string bwrap;  // the bubblewrap program; "" = `bwrap` looked up in PATH
  std::string workdir;  // the writable working directory; "" = the server's own directory
  std::vector<std::string> allow_write;
  std::vector<std::string> deny_read;
  std::vector<std::string> deny_write;
  std::vector<std::string> allowed_domains{"*"};
  std::vector<std::string> denied_domains;
  std::map<std::string, std::string> test_resolve;  // host name -> IP address, tests only
};

struct HostConfig {
  SandboxConfig sandbox;
};

// Parses the [host] table. Empty or blank text counts as {}. Paths may start with `~` (the
// server's HOME) or be relative (to base_dir, the server's working directory); they come out
// absolute and lexically normalized, with symbolic links resolved where the path exists.
// Throws sdk::Error(PMCP_ERR_INVALID_ARGUMENT) naming the key on an unknown key, a wrong type
// or a bad value.
HostConfig parse_config(std::string_view json, const std::string& base_dir,
                        const std::string& home);

}  // namespace pmcp::host
