/* Plugins for the loader tests, one per TEST_PLUGIN_KIND: a good one and one for each way a
 * plugin can be broken. The loader must refuse each broken one with a message, never crash. */
#include <stddef.h>
#include <string.h>

#include "pmcp/executor.h"
#include "pmcp/plugin.h"

#define KIND_GOOD 0
#define KIND_NO_ENTRY 1       /* exports no pmcp_plugin_entry (a misspelled one) */
#define KIND_ENTRY_FUNCTION 2 /* pmcp_plugin_entry is a function, not the entry struct */
#define KIND_ABI_MAJOR 3      /* built for the next major ABI */
#define KIND_ABI_MINOR 4      /* built for the next minor ABI (refused while major is 0) */
#define KIND_SMALL_ENTRY 5    /* struct_size covers only the version header */
#define KIND_NULL_ID 6        /* id is NULL */
#define KIND_INIT_FAILS 7     /* init() logs a reason and returns 0 */
#define KIND_NO_FACTORY 8     /* get_factory() knows no id */
#define KIND_MISALIGNED 9     /* pmcp_plugin_entry is data, one byte off the struct's alignment */

#ifndef TEST_PLUGIN_KIND
#error "define TEST_PLUGIN_KIND"
#endif
#ifndef TEST_PLUGIN_ID
#error "define TEST_PLUGIN_ID"
#endif

static const pmcp_host* g_host;

static void log_line(pmcp_log_level level, const char* text) {
  pmcp_str message;
  message.data = text;
  message.size = strlen(text);
  if (g_host != NULL && g_host->log != NULL) g_host->log(g_host, level, message);
}

static int32_t plugin_init(const pmcp_host* host) {
  if (host == NULL || host->struct_size < sizeof(pmcp_host)) return 0;
  g_host = host;
  if (TEST_PLUGIN_KIND == KIND_INIT_FAILS) {
    log_line(PMCP_LOG_ERROR, "cannot start: the frobnicator is missing");
    g_host = NULL;
    return 0;
  }
  log_line(PMCP_LOG_INFO, "init");
  return 1;
}

static void plugin_deinit(void) {
  log_line(PMCP_LOG_INFO, "deinit");
  g_host = NULL;
}

static int32_t create_executor(const struct pmcp_executor_factory* factory, const pmcp_host* host,
                               pmcp_str config_json, const pmcp_executor_sink* sink,
                               pmcp_executor** out, pmcp_error_buf err) {
  (void)factory;
  (void)host;
  (void)config_json;
  (void)sink;
  (void)out;
  if (err.data != NULL && err.capacity > 0) err.data[0] = '\0';
  return PMCP_ERR_UNSUPPORTED;
}

static const pmcp_executor_factory g_executor_factory = {sizeof(pmcp_executor_factory),
                                                         create_executor};

static const void* plugin_get_factory(const char* factory_id) {
  if (TEST_PLUGIN_KIND == KIND_NO_FACTORY) return NULL;
  if (factory_id != NULL && strcmp(factory_id, PMCP_EXECUTOR_FACTORY_ID) == 0) {
    return &g_executor_factory;
  }
  return NULL;
}

/* In C the typedef name pmcp_plugin_entry cannot also name the object, so the object gets its
 * exported name from an asm label. */
#if TEST_PLUGIN_KIND == KIND_NO_ENTRY
#define ENTRY_SYMBOL "pmcp_entry"
#elif TEST_PLUGIN_KIND == KIND_ENTRY_FUNCTION
#define ENTRY_SYMBOL "pmcp_entry_data"
PMCP_EXPORT int entry_function(void) __asm__(PMCP_ENTRY_SYMBOL);
int entry_function(void) { return 0; }
#elif TEST_PLUGIN_KIND == KIND_MISALIGNED
#define ENTRY_SYMBOL "pmcp_entry_data"
/* An object of the entry's name one byte into a larger one, so misaligned for the struct. */
const unsigned char misaligned_holder[sizeof(pmcp_plugin_entry) + 8] = {0};
__asm__(".globl " PMCP_ENTRY_SYMBOL "\n\t.type " PMCP_ENTRY_SYMBOL
        ", @object\n\t.set " PMCP_ENTRY_SYMBOL ", misaligned_holder + 1\n\t.size " PMCP_ENTRY_SYMBOL
        ", 63");
#else
#define ENTRY_SYMBOL PMCP_ENTRY_SYMBOL
#endif

PMCP_EXPORT const pmcp_plugin_entry test_entry __asm__(ENTRY_SYMBOL) = {
    TEST_PLUGIN_KIND == KIND_SMALL_ENTRY ? offsetof(pmcp_plugin_entry, id)
                                         : sizeof(pmcp_plugin_entry),
    PMCP_ABI_VERSION_MAJOR + (TEST_PLUGIN_KIND == KIND_ABI_MAJOR ? 1 : 0),
    PMCP_ABI_VERSION_MINOR + (TEST_PLUGIN_KIND == KIND_ABI_MINOR ? 1 : 0),
    TEST_PLUGIN_KIND == KIND_NULL_ID ? NULL : TEST_PLUGIN_ID,
    "1.2.3",
    "a plugin for the loader tests",
    plugin_init,
    plugin_deinit,
    plugin_get_factory};
