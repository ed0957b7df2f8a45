// A minimal executor plugin written against the C ABI, for tests of the core's side of it: every
// call is accepted and does nothing, and the test drives the sink that create() was given, as a
// plugin's own thread would. One instance at a time (the tests of a program run one by one).
#pragma once

#include "pmcp/executor.h"

namespace pmcp::test_plugin {

// The sink of the instance made last; null once it is destroyed.
inline const pmcp_executor_sink* g_sink = nullptr;

inline int32_t accept_spawn(pmcp_executor*, const pmcp_spawn_options*, pmcp_error_buf) {
  return PMCP_OK;
}
inline int32_t accept_write(pmcp_executor*, uint64_t, const uint8_t*, size_t, pmcp_error_buf) {
  return PMCP_OK;
}
inline int32_t accept_close(pmcp_executor*, uint64_t, pmcp_error_buf) { return PMCP_OK; }
inline int32_t accept_signal(pmcp_executor*, uint64_t, int32_t, pmcp_error_buf) { return PMCP_OK; }
inline int32_t accept_resize(pmcp_executor*, uint64_t, uint16_t, uint16_t, pmcp_error_buf) {
  return PMCP_OK;
}
inline void forget_sink(pmcp_executor*) { g_sink = nullptr; }

inline pmcp_executor g_instance = [] {
  pmcp_executor e{};
  e.struct_size = sizeof(e);
  e.id_prefix = "test";
  e.default_cwd = "/";
  e.spawn = accept_spawn;
  e.write_stdin = accept_write;
  e.close_stdin = accept_close;
  e.signal = accept_signal;
  e.resize = accept_resize;
  e.destroy = forget_sink;
  return e;
}();

inline int32_t create_instance(const pmcp_executor_factory*, const pmcp_host*, pmcp_str,
                               const pmcp_executor_sink* sink, pmcp_executor** out,
                               pmcp_error_buf) {
  g_sink = sink;
  *out = &g_instance;
  return PMCP_OK;
}

inline const pmcp_executor_factory g_factory{sizeof(pmcp_executor_factory), create_instance};

}  // namespace pmcp::test_plugin
