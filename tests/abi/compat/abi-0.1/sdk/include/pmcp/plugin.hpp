// Header-only C++ conveniences for writing process-mcp plugins: noexcept trampolines that turn
// C++ classes into the C tables of executor.h and transport.h. Not part of the ABI.
#pragma once

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "pmcp/transport.h"

namespace pmcp::sdk {

inline std::string_view view(pmcp_str s) noexcept {
  return s.data ? std::string_view(s.data, s.size) : std::string_view();
}

inline pmcp_str str(std::string_view s) noexcept { return pmcp_str{s.data(), s.size()}; }

// Copies message into err, truncating, always NUL-terminated when there is room.
inline void set_error(pmcp_error_buf err, std::string_view message) noexcept {
  if (err.data == nullptr || err.capacity == 0) return;
  std::size_t n = message.size() < err.capacity - 1 ? message.size() : err.capacity - 1;
  std::memcpy(err.data, message.data(), n);
  err.data[n] = '\0';
}

// Throw this from plugin code to return a specific status with a message.
struct Error : std::exception {
  Error(int32_t status_code, std::string text) : status(status_code), message(std::move(text)) {}
  const char* what() const noexcept override { return message.c_str(); }
  int32_t status;
  std::string message;
};

// Runs f() and maps every exception to a status code plus message: nothing escapes the ABI.
template <class F>
int32_t guard(pmcp_error_buf err, F&& f) noexcept {
  try {
    return f();
  } catch (const Error& e) {
    set_error(err, e.message);
    return e.status < 0 ? e.status : PMCP_ERR_INTERNAL;
  } catch (const std::bad_alloc&) {
    set_error(err, "out of memory");
    return PMCP_ERR_INTERNAL;
  } catch (const std::exception& e) {
    set_error(err, e.what());
    return PMCP_ERR_INTERNAL;
  } catch (...) {
    set_error(err, "unknown exception");
    return PMCP_ERR_INTERNAL;
  }
}

// Logs through the host's log service; safe to call with a null host.
inline void log(const pmcp_host* host, pmcp_log_level level, std::string_view message) noexcept {
  if (host != nullptr && host->log != nullptr) host->log(host, level, str(message));
}

// Base class for an executor written in C++. Override the virtuals; throw sdk::Error for
// failures. The destructor must stop threads and kill what still runs (see destroy()).
class ExecutorBase {
 public:
  virtual ~ExecutorBase() = default;
  virtual void spawn(const pmcp_spawn_options& options) = 0;
  virtual void write_stdin(uint64_t id, const uint8_t* data, std::size_t size) = 0;
  virtual void close_stdin(uint64_t id) = 0;
  virtual void signal(uint64_t id, int32_t signo) = 0;
  virtual void resize(uint64_t id, uint16_t cols, uint16_t rows) = 0;
};

// Wraps impl into a heap-allocated pmcp_executor whose destroy() deletes both.
// id_prefix and default_cwd must outlive the instance (e.g. be members of impl).
inline pmcp_executor* make_executor(std::unique_ptr<ExecutorBase> impl, const char* id_prefix,
                                    const char* default_cwd) {
  auto* table = new pmcp_executor{};
  table->struct_size = sizeof(pmcp_executor);
  table->id_prefix = id_prefix;
  table->default_cwd = default_cwd;
  table->impl = impl.release();
  table->spawn = [](pmcp_executor* t, const pmcp_spawn_options* o, pmcp_error_buf err) {
    return guard(err, [&] {
      if (o == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "no spawn options");
      static_cast<ExecutorBase*>(t->impl)->spawn(*o);
      return int32_t{PMCP_OK};
    });
  };
  table->write_stdin = [](pmcp_executor* t, uint64_t id, const uint8_t* d, std::size_t n,
                          pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<ExecutorBase*>(t->impl)->write_stdin(id, d, n);
      return int32_t{PMCP_OK};
    });
  };
  table->close_stdin = [](pmcp_executor* t, uint64_t id, pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<ExecutorBase*>(t->impl)->close_stdin(id);
      return int32_t{PMCP_OK};
    });
  };
  table->signal = [](pmcp_executor* t, uint64_t id, int32_t signo, pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<ExecutorBase*>(t->impl)->signal(id, signo);
      return int32_t{PMCP_OK};
    });
  };
  table->resize = [](pmcp_executor* t, uint64_t id, uint16_t c, uint16_t r, pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<ExecutorBase*>(t->impl)->resize(id, c, r);
      return int32_t{PMCP_OK};
    });
  };
  table->destroy = [](pmcp_executor* t) {
    try {
      delete static_cast<ExecutorBase*>(t->impl);
    } catch (...) {
    }
    delete t;
  };
  return table;
}

// Base class for a transport written in C++.
class TransportBase {
 public:
  virtual ~TransportBase() = default;
  virtual void start() = 0;
  virtual void send(uint64_t session_id, uint64_t stream_id, std::string_view json,
                    uint32_t flags) = 0;
  virtual void stop() = 0;
};

inline pmcp_transport* make_transport(std::unique_ptr<TransportBase> impl) {
  auto* table = new pmcp_transport{};
  table->struct_size = sizeof(pmcp_transport);
  table->impl = impl.release();
  table->start = [](pmcp_transport* t, pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<TransportBase*>(t->impl)->start();
      return int32_t{PMCP_OK};
    });
  };
  table->send = [](pmcp_transport* t, uint64_t session, uint64_t stream, pmcp_str json,
                   uint32_t flags, pmcp_error_buf err) {
    return guard(err, [&] {
      static_cast<TransportBase*>(t->impl)->send(session, stream, view(json), flags);
      return int32_t{PMCP_OK};
    });
  };
  table->stop = [](pmcp_transport* t) {
    try {
      static_cast<TransportBase*>(t->impl)->stop();
    } catch (...) {
    }
  };
  table->destroy = [](pmcp_transport* t) {
    try {
      delete static_cast<TransportBase*>(t->impl);
    } catch (...) {
    }
    delete t;
  };
  return table;
}

}  // namespace pmcp::sdk
