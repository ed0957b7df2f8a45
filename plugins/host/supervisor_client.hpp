// The executor's side of its long-lived process supervisor (supervisor.cpp): starts it (inside
// bubblewrap when the sandbox is on), waits until it is ready, hands it the commands to launch,
// replaces it when it has ended or when its command line must change, and ends it.
// Not thread-safe: the executor serializes its calls (HostExecutor::client_mu_).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "pmcp/plugin.h"

namespace pmcp::host {

class SupervisorClient {
 public:
  // sandboxed: the command line starts with bubblewrap (only the wording of errors differs).
  SupervisorClient(const pmcp_host* host, bool sandboxed);
  ~SupervisorClient();
  SupervisorClient(const SupervisorClient&) = delete;
  SupervisorClient& operator=(const SupervisorClient&) = delete;

  // The limit of open files the supervisor (and so every command) starts with; null keeps the
  // server's. Set before start().
  void set_child_limit(const rlimit* nofile) { child_nofile_ = nofile; }

  // Starts a supervisor with this command line and waits until it is ready (10 s at most).
  // Returns an empty string, or why it could not start. Forked on the calling thread, whose end
  // (or the server's) ends the supervisor: call it on the executor's long-lived thread.
  std::string start(std::vector<std::string> args);
  // Starts a command: channel is the command's end of its socket to the executor, spec the
  // launch spec and stdio its stdin, stdout and stderr, all -1 for a PTY (protocol.hpp,
  // kLaunch). Starts a new supervisor first when none runs, when the running one has ended, or
  // when `args` differs from its command line (the old one ends with its last command).
  // Returns an empty string, or why the command cannot start.
  std::string launch(const std::vector<std::string>& args, const std::string& spec, int channel,
                     const int stdio[3]);
  // The fast path of launch(): sends the command to the supervisor that runs with this command
  // line, and never starts, replaces or waits for one. False when it did not send it (none
  // runs, it has ended, `args` differs, or it is behind): launch() then does what is needed.
  // Safe on any thread (it forks nothing).
  bool launch_running(const std::vector<std::string>& args, const std::string& spec, int channel,
                      const int stdio[3]);
  // Lets every supervisor end (their commands must be gone: their channels closed) and reaps
  // them, killing what does not end within a few seconds.
  void stop();

 private:
  struct Instance {
    pid_t pid = -1;
    int control = -1;
    std::vector<std::string> args;
  };

  std::string start_instance(std::vector<std::string> args, Instance& out);
  int send_launch(const std::string& spec, int channel, const int stdio[3], bool patient);
  void retire(Instance& instance);
  void reap_retired(bool wait);

  const pmcp_host* host_;
  const bool sandboxed_;
  const char* const what_;  // "the sandbox" or "the process supervisor", for messages
  const rlimit* child_nofile_ = nullptr;
  Instance current_;
  std::vector<pid_t> retired_;  // supervisors that end with their last command
};

}  // namespace pmcp::host
