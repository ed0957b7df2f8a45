// What the per-command supervisor (outside a sandbox) and the per-command launcher (inside
// one) both do when a job ends: kill what is left of it and reap it. Both are subreapers, so
// descendants that lost their parent have become their children.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace pmcp::host::job {

// Milliseconds on the monotonic clock.
int64_t now_ms();

// Closes every descriptor from `first` up.
void close_from(int first);

// Reads everything a (non-blocking) signalfd holds.
void drain_signalfd(int sigfd);

// Calls fn(pid, ctx) for every child of the calling process (from /proc: the main thread's
// children). Returns the number of children found, or -1 when the list is unreadable.
int for_each_child(void (*fn)(pid_t, void*), void* ctx);

// Sends SIGKILL to every child of the calling process. Returns the number of children found,
// or -1 when the list is unreadable.
int kill_children();

// Kills what is left of the job: process group `group` (when > 0) and every child of ours, and
// reaps them all; gives up after budget_ms (a process stuck in the kernel). sigfd: a signalfd
// for SIGCHLD, to sleep on between rounds.
void sweep(pid_t group, int sigfd, int budget_ms);

}  // namespace pmcp::host::job
