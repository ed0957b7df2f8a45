// The private wire protocol between the host executor and its per-process supervisor
// (pmcp-host-supervisor). Both ends are built from this tree at the same time; nothing here is
// part of the plugin ABI.
//
// The executor creates a SOCK_SEQPACKET socketpair per process. The supervisor gets its end as
// fd 3 and the child's stdio (pipes, or the PTY slave) as fds 0, 1 and 2; its environment is the
// child's exact environment. Over fd 3 it sends Records (one per message) and receives Commands.
// End of file on fd 3 means the server is gone: the supervisor kills everything and exits.
#pragma once

#include <cstdint>

namespace pmcp::host::proto {

// argv[1] of the supervisor, so that a mismatched pair fails loudly instead of misbehaving.
inline constexpr const char* kTag = "pmcp-host-supervisor/2";
// Name of the supervisor executable, installed next to pmcp-host.so.
inline constexpr const char* kSupervisorName = "pmcp-host-supervisor";
// The sandbox's init (sandbox_init.cpp): installed next to the supervisor, argv[1] is its tag.
inline constexpr const char* kSandboxInitName = "pmcp-sandbox-init";
inline constexpr const char* kSandboxInitTag = "pmcp-sandbox-init/2";
// Inside the sandbox, the init's end of its control socket to the executor (SOCK_SEQPACKET).
// Until the init reports kReady, fds 1 and 2 carry bubblewrap's own messages to the executor.
inline constexpr int kSandboxControlFd = 3;
// The supervisor's end of the socketpair.
inline constexpr int kSocketFd = 3;

enum Kind : int32_t {
  kStarted = 1,  // a = pid of the child; it has exec'd successfully
  kFailed = 2,   // a = Stage, b = errno; the child did not start (no kExited follows)
  kExited = 3,   // a = wait status of the child; everything left of it has been killed
  // Sandbox only. kFailedText: like kFailed (a = Stage, b = errno or 0), followed in the same
  // message by a UTF-8 text that says why. kPid: sent by the sandboxed command itself before
  // exec, so that the kernel attaches its credentials (SCM_CREDENTIALS) and translates its pid
  // into the supervisor's PID namespace.
  kFailedText = 4,
  kPid = 5,
  // Sandbox only. kLaunch: executor to the sandbox's init on the control socket, one per
  // command, with SCM_RIGHTS [channel, spec] (PTY) or [channel, spec, stdin, stdout, stderr]
  // (pipes). The channel is the command's own socket, which then speaks this protocol exactly
  // as a supervisor's would (Records out, Commands in); spec is a memfd (see LaunchSpec in
  // sandbox.hpp). kReady: init to executor, once the sandbox can take commands. kTerminal:
  // launcher to executor, before kStarted, with SCM_RIGHTS [the PTY master], a terminal made
  // in the sandbox's own devpts so that the command's terminal has a name there.
  kLaunch = 7,
  kReady = 8,
  kTerminal = 9,
};

// Largest message on the control socket: a Record plus text.
inline constexpr int kMaxMessage = 4096;

enum Stage : int32_t {
  kStageSupervisorExec = 1,  // exec of the supervisor itself failed
  kStageFork = 2,            // the supervisor could not fork the child
  kStageSetsid = 3,
  kStageTerminal = 4,  // TIOCSCTTY on the PTY slave
  kStageChdir = 5,
  kStageExec = 6,
  kStageSetup = 7,        // anything else in the supervisor before the fork
  kStageSandbox = 8,      // bubblewrap or the sandbox launcher could not set up the sandbox
  kStageSandboxExec = 9,  // exec of bubblewrap failed
  kStageSeccomp = 10,     // loading the seccomp filter failed
};

struct Record {
  int32_t kind;
  int32_t a;
  int32_t b;
};

enum Op : int32_t {
  kOpSignal = 1,  // arg = signal number, sent to the child's process group
};

struct Command {
  int32_t op;
  int32_t arg;
};

}  // namespace pmcp::host::proto
