/* Compiles the plugin ABI headers as strict C11 and freezes their layout (abi_layout.inc).
 * The build fails on a layout change; the program, run by ctest, checks the string constants. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pmcp/config_check.h"
#include "pmcp/core_loop.h"
#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "pmcp/transport.h"

#define PMCP_CHECK_VALUE(expr, value) _Static_assert((expr) == (value), #expr " must be " #value);
#define PMCP_CHECK_SIZE(type, size) \
  _Static_assert(sizeof(type) == (size), "sizeof(" #type ") must be " #size);
#define PMCP_CHECK_OFFSET(type, field, offset)      \
  _Static_assert(offsetof(type, field) == (offset), \
                 "offsetof(" #type ", " #field ") must be " #offset);

#include "abi_layout.inc"

int main(void) {
  int failures = 0;
  failures += strcmp(PMCP_ENTRY_SYMBOL, "pmcp_plugin_entry") != 0;
  failures += strcmp(PMCP_EXECUTOR_FACTORY_ID, "pmcp.executor/1") != 0;
  failures += strcmp(PMCP_TRANSPORT_FACTORY_ID, "pmcp.transport/1") != 0;
  failures += strcmp(PMCP_CONFIG_CHECK_FACTORY_ID, "pmcp.ext.config-check/1") != 0;
  failures += strcmp(PMCP_CORE_LOOP_EXTENSION_ID, "pmcp.ext.core-loop/1") != 0;
  if (failures != 0) {
    fprintf(stderr, "ABI string constants changed\n");
    return 1;
  }
#if defined(__LP64__)
  printf("plugin ABI %d.%d: C11 layout frozen for LP64, ok\n", PMCP_ABI_VERSION_MAJOR,
         PMCP_ABI_VERSION_MINOR);
#else
  printf("plugin ABI %d.%d: C11 headers compile; layout checks only run on LP64\n",
         PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR);
#endif
  return 0;
}
