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
inline constexpr const char* kTag = "pmcp-host-supervisor/1";
// Name of the supervisor executable, installed next to pmcp-host.so.
inline constexpr const char* kSupervisorName = "pmcp-host-supervisor";
// The sandbox launcher (sandbox_init.cpp): installed next to the supervisor, argv[1] is its tag.
inline constexpr const char* kSandboxInitName = "pmcp-sandbox-init";
inline constexpr const char* kSandboxInitTag = "pmcp-sandbox-init/1";
// Inside the sandbox, the launcher's end of its channel to the supervisor. Until the launcher
// takes the command's stdio from it, fd 2 carries bubblewrap's own messages to the supervisor.
inline constexpr int kSandboxChannelFd = 3;
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
  // Supervisor to launcher, first message: the command's stdin, stdout and stderr as
  // SCM_RIGHTS, so that bubblewrap's own processes never hold them (else a closed stdin or
  // the end of the output would not be seen while they live).
  kStdio = 6,
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
