// Compiles the plugin ABI headers as C++ with -pedantic (C++11 up; plugin.hpp from C++17) and
// freezes their layout (abi_layout.inc). The program, run by ctest, checks the string constants.
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "pmcp/config_check.h"
#include "pmcp/core_loop.h"
#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "pmcp/transport.h"
#if __cplusplus >= 201703L
#include "pmcp/plugin.hpp"
#endif

#define PMCP_CHECK_VALUE(expr, value) static_assert((expr) == (value), #expr " must be " #value);
#define PMCP_CHECK_SIZE(type, size) \
  static_assert(sizeof(type) == (size), "sizeof(" #type ") must be " #size);
#define PMCP_CHECK_OFFSET(type, field, offset)     \
  static_assert(offsetof(type, field) == (offset), \
                "offsetof(" #type ", " #field ") must be " #offset);

#include "abi_layout.inc"

int main() {
  int failures = 0;
  failures += std::strcmp(PMCP_ENTRY_SYMBOL, "pmcp_plugin_entry") != 0;
  failures += std::strcmp(PMCP_EXECUTOR_FACTORY_ID, "pmcp.executor/1") != 0;
  failures += std::strcmp(PMCP_TRANSPORT_FACTORY_ID, "pmcp.transport/1") != 0;
  failures += std::strcmp(PMCP_CONFIG_CHECK_FACTORY_ID, "pmcp.ext.config-check/1") != 0;
  failures += std::strcmp(PMCP_CORE_LOOP_EXTENSION_ID, "pmcp.ext.core-loop/1") != 0;
  if (failures != 0) {
    std::fprintf(stderr, "ABI string constants changed\n");
    return 1;
  }
  std::printf("plugin ABI %d.%d: C++%ld headers compile%s, ok\n", PMCP_ABI_VERSION_MAJOR,
              PMCP_ABI_VERSION_MINOR, static_cast<long>(__cplusplus / 100 % 100),
#if defined(__LP64__)
              ", layout frozen for LP64"
#else
              ""
#endif
  );
  return 0;
}
