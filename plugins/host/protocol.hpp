// The private wire protocol between the host executor and its long-lived process supervisor
// (pmcp-host-supervisor, supervisor.cpp). Both ends are built from this tree at the same time;
// nothing here is part of the plugin ABI.
//
// The executor starts one supervisor (inside bubblewrap when the sandbox is on) with its end of
// a SOCK_SEQPACKET control socket as fd 3. The supervisor answers kReady (or kFailedText, and
// exits), then takes one kLaunch per command. Each command has its own SOCK_SEQPACKET
// socketpair, its channel: the supervisor's launcher for that command sends Records on it (one
// per message) and receives Commands. End of file on a channel means the server is gone or
// destroys the job: the launcher kills everything of it and exits. End of file on the control
// socket: the supervisor takes no more commands and exits after its last launcher.
#pragma once

#include <cstdint>

namespace pmcp::host::proto {

// argv[1] of the supervisor, so that a mismatched pair fails loudly instead of misbehaving.
inline constexpr const char* kTag = "pmcp-host-supervisor/4";
// Name of the supervisor executable, installed next to pmcp-host.so.
inline constexpr const char* kSupervisorName = "pmcp-host-supervisor";
// The supervisor's end of its control socket. Until it reports kReady, fds 1 and 2 carry
// messages to the executor (bubblewrap's, when it fails).
inline constexpr int kControlFd = 3;

enum Kind : int32_t {
  // kStarted: the command has exec'd (a = its pid in the supervisor's PID namespace; without the
  // sandbox that is the server's, and no kPid comes).
  kStarted = 1,
  kFailed = 2,  // a = Stage, b = errno; the command did not start (no kExited follows)
  kExited = 3,  // a = wait status of the command; everything left of it has been killed
  // kFailedText: like kFailed (a = Stage, b = errno or 0), followed in the same message by a
  // UTF-8 text that says why. Also on the control socket, instead of kReady.
  kFailedText = 4,
  // Sent by a sandboxed command itself before exec, so that the kernel attaches its credentials
  // (SCM_CREDENTIALS; the executor's end has SO_PASSCRED) with its pid as the server sees it.
  kPid = 5,
  // kLaunch: executor to supervisor on the control socket, one per command, with SCM_RIGHTS
  // [channel, spec] (PTY) or [channel, spec, stdin, stdout, stderr] (pipes). spec is a memfd
  // of NUL-terminated fields: "pty" or "pipe", columns, rows, working directory, argc, the
  // arguments, the number of environment entries, the entries (any size). kReady: supervisor to
  // executor, once it takes commands. kTerminal: launcher to executor, before kStarted, with
  // SCM_RIGHTS [the PTY master]; in the sandbox the terminal is made in the sandbox's own
  // devpts, so that it has a name there.
  kLaunch = 7,
  kReady = 8,
  kTerminal = 9,
};

// Largest message on a channel or the control socket: a Record plus text.
inline constexpr int kMaxMessage = 4096;

enum Stage : int32_t {
  kStageFork = 2,  // the supervisor could not fork the launcher, or it the command
  kStageSetsid = 3,
  kStageTerminal = 4,  // TIOCSCTTY on the PTY slave
  kStageChdir = 5,
  kStageExec = 6,
  kStageSetup = 7,    // anything else in the launcher before the fork
  kStageSandbox = 8,  // the supervisor could not set up (a kFailedText says why)
};

struct Record {
  int32_t kind;
  int32_t a;
  int32_t b;
};

enum Op : int32_t {
  kOpSignal = 1,  // arg = signal number, sent to the command's process group
};

struct Command {
  int32_t op;
  int32_t arg;
};

}  // namespace pmcp::host::proto
