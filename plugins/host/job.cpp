#include "job.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace pmcp::host::job {

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Closes every descriptor from `first` up.
void close_from(int first) {
  if (syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (long fd = first; fd < max; ++fd) close(static_cast<int>(fd));
}

void drain_signalfd(int sigfd) {
  signalfd_siginfo si{};
  while (read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
  }
}

int for_each_child(void (*fn)(pid_t, void*), void* ctx) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/children", static_cast<int>(getpid()));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int found = 0;
  long value = 0;
  bool in_number = false;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        value = value * 10 + (buf[i] - '0');
        in_number = true;
      } else if (in_number) {
        fn(static_cast<pid_t>(value), ctx);
        ++found;
        value = 0;
        in_number = false;
      }
    }
  }
  if (in_number) {
    fn(static_cast<pid_t>(value), ctx);
    ++found;
  }
  close(fd);
  return found;
}

int kill_children() {
  return for_each_child([](pid_t pid, void*) { kill(pid, SIGKILL); }, nullptr);
}

namespace {

// Reaps every child that has ended. True when there is no child left at all (ECHILD).
bool reap_ended() {
  for (;;) {
    const pid_t r = waitpid(-1, nullptr, WNOHANG);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    return r < 0 && errno == ECHILD;
  }
}

}  // namespace

// Kills what is left of the job: its process group and every process that ended up as our
// child, and reaps them all; gives up after budget_ms (a process stuck in the kernel).
// Every process of the job is our descendant (we are its subreaper), so with no child left
// nothing of it is left: the common end of a job costs no read of /proc.
void sweep(pid_t group, int sigfd, int budget_ms) {
  const int64_t deadline = now_ms() + budget_ms;
  for (;;) {
    if (group > 0) kill(-group, SIGKILL);
    if (reap_ended()) return;
    kill_children();
    if (reap_ended()) return;
    if (now_ms() >= deadline) return;
    pollfd p{sigfd, POLLIN, 0};
    poll(&p, 1, 20);
    drain_signalfd(sigfd);
  }
}

}  // namespace pmcp::host::job
