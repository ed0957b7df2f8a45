// The seccomp filter of a sandboxed command: what the namespaces of bubblewrap do not block.
#pragma once

#include <string>

namespace pmcp::host {

// Built in the launcher before it forks the command and loaded in the command just before
// exec. Every blocked call fails with EPERM (clone3 with ENOSYS, so that libc falls back to
// clone, whose flags the filter can see), so that a refusal is a visible error and not a
// mysterious death. Only x86-64 code may run: a 32-bit (i386) or x32 system call kills the
// process, because the filter would not see through their other system call tables.
class SeccompFilter {
 public:
  SeccompFilter();
  ~SeccompFilter();
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // Empty when the filter was built; otherwise why not.
  const std::string& error() const { return error_; }
  // Installs the filter on the calling thread (no-new-privs must be set). Returns 0 or errno.
  int load();

 private:
  void* ctx_ = nullptr;
  std::string error_;
};

}  // namespace pmcp::host
