// The host sandbox as the executor sees it: the policy, the proxy, and the bubblewrap command
// line of the one long-lived sandbox per executor, whose init is the executor's process
// supervisor (supervisor.cpp, started through supervisor_client.hpp).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.hpp"
#include "pmcp/netpolicy/proxy.hpp"
#include "pmcp/plugin.h"

namespace pmcp::host {

class SupervisorClient;

class Sandbox {
 public:
  // Resolves bubblewrap, checks the supervisor (helper_dir) and starts the proxy. Never throws
  // for a machine that cannot sandbox: unavailable() then says why, and spawns must be refused
  // (fail closed). writable_dir is the directory the commands may write by default. Starting
  // the sandbox itself (a bubblewrap start, several ms that start-up need not wait for) is
  // left to run_trial(). Its verdict is logged when known.
  Sandbox(const pmcp_host* host, SandboxConfig config, const std::string& helper_dir,
          std::string writable_dir);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  bool enabled() const { return config_.enabled; }
  // Starts the sandbox through `client` unless the checks before it failed, and concludes.
  // The executor calls it first thing on its own thread (the sandbox dies with that thread).
  void run_trial(SupervisorClient& client);
  // Empty when the sandbox works; otherwise the reason and the setting that turns it off.
  // Waits for run_trial() when it has not finished (only the first spawn can wait).
  const std::string& unavailable() const;

  // The command line of the sandbox: bubblewrap with the policy's paths resolved now, then the
  // supervisor in sandbox mode. The executor passes it at each launch: when the paths resolve
  // differently, later commands start in a new sandbox.
  std::vector<std::string> command_line() const;
  // Entries the command's environment gets on top of the given ones (the proxy variables).
  std::vector<std::string> environment() const;

 private:
  std::vector<std::string> bwrap_args() const;
  // Records the verdict of the checks (empty: the sandbox works) and says it in the log.
  void conclude(std::string unavailable);

  const pmcp_host* host_;
  SandboxConfig config_;
  std::string writable_dir_;
  std::string bwrap_;
  std::string init_;         // the supervisor, the sandbox's init
  std::string private_dir_;  // 0700: the placeholders for hidden paths, the proxy socket
  std::string hidden_file_;
  std::string hidden_dir_;
  bool root_ = false;
  // Network: none at all when allowed_domains is empty; else the proxy, reached from inside
  // through the bridge on 127.0.0.1:kProxyPort.
  bool network_ = false;
  std::string bridge_;
  std::unique_ptr<netpolicy::Proxy> proxy_;
  std::string unavailable_;  // final once probed_ is set
  mutable std::mutex probe_mutex_;
  mutable std::condition_variable probe_done_;
  bool probed_ = true;  // false until run_trial() has concluded
};

}  // namespace pmcp::host
