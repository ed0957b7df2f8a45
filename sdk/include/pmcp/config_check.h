/* process-mcp plugin ABI, optional: checking a plugin's config without starting anything, for
 * `process-mcp --check-config`. A plugin without it still works; its table is then checked only
 * when the server starts. Plain C11, like its siblings. */
#ifndef PMCP_CONFIG_CHECK_H
#define PMCP_CONFIG_CHECK_H

#include "pmcp/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The id a plugin answers in get_factory() when it offers the check. Added at ABI 0.1 without
 * changing any struct: a plugin that does not know this id returns NULL, as for any unknown id. */
#define PMCP_CONFIG_CHECK_FACTORY_ID "pmcp.ext.config-check/1"

/* The factory returned by get_factory(PMCP_CONFIG_CHECK_FACTORY_ID).
 * OWNERSHIP: static in the plugin, valid until deinit. */
typedef struct pmcp_config_check_factory {
  uint32_t struct_size;

  /* Checks config_json (the plugin's own TOML table as a JSON object, "{}" when absent, exactly
   * what create() would receive) the way create() does, but with no side effect: no instance,
   * thread, socket, process or file is made. Returns PMCP_OK, or a negative status with the
   * reason in err (unknown keys and bad values name the key, as in create()).
   * [main thread] OWNERSHIP: config_json borrowed; err owned by the caller. */
  int32_t (*check)(const struct pmcp_config_check_factory* factory, pmcp_str config_json,
                   pmcp_error_buf err);
} pmcp_config_check_factory;

#ifdef __cplusplus
}
#endif

#endif /* PMCP_CONFIG_CHECK_H */
