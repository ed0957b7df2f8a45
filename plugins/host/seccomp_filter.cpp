#include "seccomp_filter.hpp"

#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace pmcp::host {

namespace {

// Calls that nothing in a sandbox needs and that widen what a process can do to the kernel or
// to others: namespaces and mounts (the sandbox's own view must stay as built), kernel keyrings,
// BPF, io_uring (its own path around this filter's argument checks), tracing of other
// processes, kernel modules and kexec, perf events and userfaultfd (common exploit helpers).
constexpr const char* kDenied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "chroot",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "quotactl",
    "lookup_dcookie",
};

// The namespace flags of clone(2). CLONE_NEWTIME is left out: in clone() that bit belongs to
// the exit signal; clone3, which could carry it, is refused as a whole.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,
                                             CLONE_NEWIPC, CLONE_NEWUSER,   CLONE_NEWPID,
                                             CLONE_NEWNET};

}  // namespace

SeccompFilter::SeccompFilter() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    error_ = "cannot create the seccomp filter";
    return;
  }
  ctx_ = ctx;
  const auto check = [&](int rc, const char* what) {
    if (rc < 0 && error_.empty())
      error_ = std::string("cannot build the seccomp filter (") + what + "): " + std::strerror(-rc);
  };
  // Only the native ABI: the i386 and x32 tables would need their own rules (socketcall hides
  // socket()'s arguments), so their system calls end the process instead.
  check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad arch");
  check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1), "no-new-privs");
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    check(seccomp_rule_add(ctx, eperm, nr, 0), name);
  }
  // Typing into the terminal's input queue (TIOCSTI) or the console (TIOCLINUX) would run
  // commands outside the sandbox, in whatever reads that terminal after us. The request
  // argument is an int: compare its low 32 bits only.
  for (const unsigned long request : {TIOCSTI, TIOCLINUX})
    check(seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                           SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, request)),
          "ioctl");
  // New unix sockets could talk to services of the host through their socket files (the
  // filesystem is visible read-only, but connecting needs no write). socketpair() stays.
  check(seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)), "socket");
  for (const unsigned long flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
          "clone");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");
}

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) seccomp_release(static_cast<scmp_filter_ctx>(ctx_));
}

int SeccompFilter::load() {
  if (ctx_ == nullptr || !error_.empty()) return EINVAL;
  const int rc = seccomp_load(static_cast<scmp_filter_ctx>(ctx_));
  return rc < 0 ? -rc : 0;
}

}  // namespace pmcp::host
