// Settings of the docker executor: the [docker] table (JSON from the core), with defaults of the
// original server, validated so that every unknown key or bad value is an error naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::docker {

struct Config {
  std::string image = "ubuntu:22.04";          // pulled when the engine does not have it
  std::string container = "process-mcp-main";  // name of the shared container
  std::string volume = "process-mcp-volume";   // named volume at workdir; "" = none
  bool use_existing = false;     // true: use `container` as it is; never create/remove it
  int64_t memory = 512LL << 20;  // bytes; also the memory+swap limit
  double cpus = 1.0;             // NanoCpus = cpus * 1e9
  int64_t pids_limit = 4096;
  std::string network = "bridge";  // "bridge", "none" or the name of a network
  bool network_set = false;        // network came from the table
  // The domain policy, as in host mode ([host.network]): with allowed_domains given, the
  // container has no network of its own and its only way out is the filtering proxy.
  bool policy = false;  // allowed_domains was given (an empty list = no network at all)
  std::vector<std::string> allowed_domains;
  std::vector<std::string> denied_domains;
  std::map<std::string, std::string> test_resolve;  // tests only: name -> IP literal
  std::string workdir = "/home/agent";              // volume mount point and default cwd (absolute)
  bool workdir_set = false;  // workdir came from the table (else use_existing takes the
                             // container's own working directory as the default cwd)
  std::vector<std::string> keep_alive = {"sleep", "infinity"};  // the container's command
  std::string host;  // engine URL; "" = DOCKER_HOST or the default socket
  // TLS to a tcp:// engine, verified against cert_path/ca.pem (the docker CLI's
  // DOCKER_TLS_VERIFY). Unset = DOCKER_TLS_VERIFY decides; an https:// host implies it.
  bool tls_verify = false;
  bool tls_verify_set = false;
  std::string cert_path;       // ca.pem, cert.pem, key.pem; "" = DOCKER_CERT_PATH, else ~/.docker
  bool remove_on_exit = true;  // remove a container we created when the server stops
  bool init = true;            // run docker-init as PID 1 so that orphans are reaped
};

// Parses the [docker] table given as JSON text ("" or "{}" = all defaults).
// Throws pmcp::sdk::Error(PMCP_ERR_INVALID_ARGUMENT) naming the key and the reason.
Config parse_config(std::string_view json);

// Parses a memory size: a byte count, or a number with a k/m/g suffix (binary units, like
// docker --memory). Returns -1 when text is not such a size.
int64_t parse_memory(std::string_view text);

}  // namespace pmcp::docker
