// The host sandbox as the executor sees it: one long-lived bubblewrap sandbox per executor, whose
// init (sandbox_init.cpp) starts each command in it; started, checked and restarted here.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.hpp"
#include "pmcp/netpolicy/proxy.hpp"
#include "pmcp/plugin.h"

namespace pmcp::host {

class Sandbox {
 public:
  // Resolves bubblewrap, finds the init in helper_dir and starts the proxy. Never throws for a
  // machine that cannot sandbox: unavailable() then says why, and spawns must be refused (fail
  // closed). writable_dir is the directory the commands may write by default. Starting the
  // sandbox itself (a bubblewrap start, several ms that start-up need not wait for) is left to
  // run_trial(). Its verdict is logged when known.
  Sandbox(const pmcp_host* host, SandboxConfig config, const std::string& helper_dir,
          std::string writable_dir);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  bool enabled() const { return config_.enabled; }
  // The limit of open files the sandbox (and so every command) starts with; null keeps the
  // server's. Set before run_trial().
  void set_child_limit(const rlimit* nofile) { child_nofile_ = nofile; }
  // Starts the sandbox unless the checks before it failed. The executor calls it first thing
  // on its own thread (the sandbox dies with that thread).
  void run_trial();
  // Empty when the sandbox works; otherwise the reason and the setting that turns it off.
  // Waits for run_trial() when it has not finished (only the first spawn can wait).
  const std::string& unavailable() const;

  // Executor thread. Starts a command in the sandbox: channel is the command's end of its
  // socket to the executor (the sandbox answers on it as a supervisor would), spec the launch
  // spec (protocol.hpp), stdio its stdin, stdout and stderr (all -1 for a PTY: the sandbox
  // makes the terminal). Starts a new sandbox first when none runs or when the paths of the
  // policy now resolve differently. Returns an empty string, or why the command cannot start.
  std::string launch(const std::string& spec, int channel, const int stdio[3]);
  // Executor thread, at the end: lets every sandbox end (their commands must be gone) and
  // reaps them, killing what does not end within a few seconds.
  void stop();

  // Entries the command's environment gets on top of the given ones (the proxy variables).
  std::vector<std::string> environment() const;

 private:
  struct Instance {
    pid_t pid = -1;    // bubblewrap
    int control = -1;  // to the init
    std::vector<std::string> args;
  };

  std::vector<std::string> bwrap_args() const;
  // The whole command line of a sandbox, with the paths of the policy resolved now.
  std::vector<std::string> instance_args() const;
  // Starts a sandbox and waits until its init is ready; empty, or why it could not start.
  std::string start_instance(std::vector<std::string> args, Instance& out);
  // Closes the control socket of a sandbox: it ends once its commands have.
  void retire(Instance& instance);
  void reap_retired(bool wait);
  // Records the verdict of the checks (empty: the sandbox works) and says it in the log.
  void conclude(std::string unavailable);

  const pmcp_host* host_;
  SandboxConfig config_;
  std::string writable_dir_;
  std::string bwrap_;
  std::string init_;
  std::string private_dir_;  // 0700: the placeholders for hidden paths, the proxy socket
  std::string hidden_file_;
  std::string hidden_dir_;
  bool root_ = false;
  const rlimit* child_nofile_ = nullptr;
  // Network: none at all when allowed_domains is empty; else the proxy, reached from inside
  // through the bridge on 127.0.0.1:kProxyPort.
  bool network_ = false;
  std::string bridge_;
  std::unique_ptr<netpolicy::Proxy> proxy_;
  std::string unavailable_;  // final once probed_ is set
  mutable std::mutex probe_mutex_;
  mutable std::condition_variable probe_done_;
  bool probed_ = true;  // false until run_trial() has concluded

  // Executor thread only.
  Instance current_;
  std::vector<pid_t> retired_;  // sandboxes that end with their last command
};

}  // namespace pmcp::host
