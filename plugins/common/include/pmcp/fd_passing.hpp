// Descriptors passed over unix sockets (SCM_RIGHTS), for the plugins' own programs: the host
// executor and its supervisor, the filtering proxy and pmcp-net-bridge. Header-only and free of
// any library, so that the static helper programs can use it too.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace pmcp::fdpass {

inline constexpr std::size_t kMaxFds = 5;  // the most any message of ours carries

// A message with up to kMaxFds descriptors attached, ready for sendmsg(msg()). It points into
// itself: keep it where it was made.
class Outgoing {
 public:
  // data must outlive the message; count <= kMaxFds (more are not attached).
  Outgoing(const void* data, std::size_t size, const int* fds, std::size_t count) {
    if (count > kMaxFds) count = kMaxFds;
    iov_.iov_base = const_cast<void*>(data);
    iov_.iov_len = size;
    msg_.msg_iov = &iov_;
    msg_.msg_iovlen = 1;
    if (count == 0) return;
    msg_.msg_control = control_;
    msg_.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg_);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, count * sizeof(int));
  }
  Outgoing(const Outgoing&) = delete;
  Outgoing& operator=(const Outgoing&) = delete;

  const msghdr* msg() const { return &msg_; }

 private:
  iovec iov_{};
  msghdr msg_{};
  alignas(cmsghdr) char control_[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
};

// sendmsg of an Outgoing, again after EINTR. Returns what sendmsg returned last.
inline ssize_t send(int socket, const Outgoing& out, int flags) {
  ssize_t n;
  do {
    n = ::sendmsg(socket, out.msg(), flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

// The descriptors a received message carries (SCM_RIGHTS), in order: the first `max` go to
// fds, the rest are closed. Other control messages are left to the caller. Returns how many
// were stored.
inline std::size_t take_fds(msghdr& msg, int* fds, std::size_t max) {
  std::size_t stored = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < k; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (stored < max)
        fds[stored++] = fd;
      else
        ::close(fd);
    }
  }
  return stored;
}

}  // namespace pmcp::fdpass
