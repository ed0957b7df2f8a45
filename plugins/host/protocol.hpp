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
// The supervisor's end of the socketpair.
inline constexpr int kSocketFd = 3;

enum Kind : int32_t {
  kStarted = 1,  // a = pid of the child; it has exec'd successfully
  kFailed = 2,   // a = Stage, b = errno; the child did not start (no kExited follows)
  kExited = 3,   // a = wait status of the child; everything left of it has been killed
};

enum Stage : int32_t {
  kStageSupervisorExec = 1,  // exec of the supervisor itself failed
  kStageFork = 2,            // the supervisor could not fork the child
  kStageSetsid = 3,
  kStageTerminal = 4,  // TIOCSCTTY on the PTY slave
  kStageChdir = 5,
  kStageExec = 6,
  kStageSetup = 7,  // anything else in the supervisor before the fork
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
