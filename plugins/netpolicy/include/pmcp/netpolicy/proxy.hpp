// The filtering proxy that is a sandboxed command's only way out: SOCKS5 and HTTP (CONNECT and
// plain absolute-form requests) on a unix socket, every destination checked against a Policy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pmcp/netpolicy/policy.hpp"

namespace pmcp::netpolicy {

enum class LogLevel { debug, info, warning, error };

// Receives one line per decision and per failure. Called on the proxy's own thread, never after
// stop() has returned; it must not call back into the proxy.
using LogFn = std::function<void(LogLevel, std::string_view)>;

// Limits of one proxy; the defaults suit a sandbox.
struct ProxyOptions {
  std::size_t max_head_bytes = 16 * 1024;  // request head (HTTP) or handshake (SOCKS5)
  std::size_t max_response_head_bytes = 64 * 1024;
  std::size_t buffer_bytes = 256 * 1024;               // per direction of one connection
  std::size_t max_connections = 256;                   // more are closed on accept
  std::chrono::milliseconds handshake_timeout{10000};  // from accept to the request read
  std::chrono::milliseconds connect_timeout{10000};    // resolution and connect upstream
  unsigned socket_mode = 0600;  // of the unix socket file; 0666 when another uid connects
};

// A running proxy. Example:
//   auto proxy = Proxy::start({.allowed_domains = {"*.pypi.org"}}, dir + "/proxy.sock",
//                             [](LogLevel, std::string_view line) { ... });
//   ... clients connect to dir + "/proxy.sock" and speak SOCKS5 or HTTP proxy ...
//   proxy->stop();
//
// Each client connection carries one destination, checked before anything is sent to it:
// the name against the policy, then every address it resolves to (the loopback, link-local,
// unspecified and cloud metadata addresses need an exact entry in allowed_domains). The proxy
// connects only to the addresses it checked, so DNS cannot change its answer in between.
// A plain HTTP request is forwarded with `Connection: close` both ways, so that a connection
// carries exactly one checked request.
// Thread rule: start, listen_tcp, socket_path and stop may be called from any one thread.
class Proxy {
 public:
  // Validates the policy, listens on a new unix socket at socket_path (a stale socket file there
  // is replaced; anything else there is an error) and serves on a thread of its own. Throws
  // std::runtime_error with the reason on failure (bad policy, path too long, bind error).
  static std::unique_ptr<Proxy> start(Policy policy, std::string socket_path, LogFn log,
                                      ProxyOptions options = {});

  // Also listens on a TCP endpoint, e.g. listen_tcp("127.0.0.1", 0); returns the bound port.
  // Throws std::runtime_error on failure or after stop().
  uint16_t listen_tcp(const std::string& address, uint16_t port);

  const std::string& socket_path() const;

  // Closes the listeners and every connection, joins the thread and removes the socket file.
  // Idempotent; the destructor calls it. Returns promptly with open tunnels; it can only wait
  // for a system name lookup already under way (bounded by the resolver's own timeout).
  void stop();

  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  struct Impl;

 private:
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pmcp::netpolicy
