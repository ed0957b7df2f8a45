/* process-mcp plugin ABI: the entry every plugin exports and the services the host offers.
 * This header and its siblings are the ONLY thing a plugin includes; they are plain C11. */
#ifndef PMCP_PLUGIN_H
#define PMCP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version. The host refuses a plugin whose major differs; while major is 0 the minor must
 * match too. Growth happens only by appending fields to structs (see struct_size). */
#define PMCP_ABI_VERSION_MAJOR 0
#define PMCP_ABI_VERSION_MINOR 1

/* The one symbol a plugin exports: a const pmcp_plugin_entry object whose symbol name is
 * "pmcp_plugin_entry". The object cannot share the typedef's name in the same scope, so:
 *   C++:  namespace my_plugin { extern "C" PMCP_EXPORT const ::pmcp_plugin_entry
 *             pmcp_plugin_entry = {...}; }   (extern "C" gives the plain symbol name)
 *   C:    PMCP_EXPORT const pmcp_plugin_entry my_entry __asm__("pmcp_plugin_entry") = {...};
 * examples/plugin-template shows the C++ form. */
#define PMCP_ENTRY_SYMBOL "pmcp_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define PMCP_EXPORT __attribute__((visibility("default")))
#else
#define PMCP_EXPORT
#endif

/* Status codes. 0 is success; every error is negative and comes from this table. A caller
 * that receives a negative value not listed here treats it as PMCP_ERR_INTERNAL. */
typedef enum pmcp_status {
  PMCP_OK = 0,
  PMCP_ERR_INVALID_ARGUMENT = -1, /* a parameter was malformed or out of range */
  PMCP_ERR_NOT_FOUND = -2,        /* an id (process, session, factory) is unknown */
  PMCP_ERR_UNSUPPORTED = -3,      /* the operation does not apply (e.g. resize of a pipe) */
  PMCP_ERR_STATE = -4,            /* the object is in the wrong state (e.g. already exited) */
  PMCP_ERR_IO = -5,               /* an operating-system or network call failed */
  PMCP_ERR_DENIED = -6,           /* refused by policy (sandbox, permissions) */
  PMCP_ERR_UNAVAILABLE = -7,      /* a dependency is missing or unreachable */
  PMCP_ERR_INTERNAL = -8          /* a bug or an unexpected condition */
} pmcp_status;

/* A borrowed UTF-8 string view; not necessarily NUL-terminated.
 * OWNERSHIP: never owned by the receiver; valid only for the duration of the call. */
typedef struct pmcp_str {
  const char* data;
  size_t size;
} pmcp_str;

/* A caller-provided buffer for a human-readable error message. The callee writes at most
 * capacity-1 bytes and always NUL-terminates when capacity > 0. data may be NULL (capacity 0).
 * OWNERSHIP: owned by the caller; the callee only writes into it during the call. */
typedef struct pmcp_error_buf {
  char* data;
  size_t capacity;
} pmcp_error_buf;

/* Log levels, as in syslog order but numbered upwards. */
typedef enum pmcp_log_level {
  PMCP_LOG_TRACE = 0,
  PMCP_LOG_DEBUG = 1,
  PMCP_LOG_INFO = 2,
  PMCP_LOG_WARN = 3,
  PMCP_LOG_ERROR = 4
} pmcp_log_level;

/* Services the host (the core) offers to a plugin.
 * OWNERSHIP: owned by the host; valid from init() until deinit() returns. */
typedef struct pmcp_host {
  uint32_t struct_size; /* sizeof(pmcp_host) as the host knows it; check before new fields */
  uint16_t abi_major;
  uint16_t abi_minor;
  void* host_data; /* opaque; pass back unchanged */

  /* Writes one log line into the core's log (stderr), tagged with the plugin id.
   * [thread-safe] OWNERSHIP: message is borrowed for the call. */
  void (*log)(const struct pmcp_host* host, pmcp_log_level level, pmcp_str message);

  /* Runs fn(user) later on the core thread. Returns PMCP_OK, or PMCP_ERR_STATE when the core
   * is shutting down (fn is then never called).
   * [thread-safe] OWNERSHIP: user stays owned by the plugin; it must outlive the call of fn. */
  int32_t (*post)(const struct pmcp_host* host, void (*fn)(void* user), void* user);

  /* Returns a host extension by id ("pmcp.ext.<name>/<revision>"), or NULL when unknown.
   * [thread-safe] OWNERSHIP: the returned table is owned by the host, valid until deinit. */
  const void* (*get_extension)(const struct pmcp_host* host, const char* extension_id);
} pmcp_host;

/* The plugin's entry, exported as the data symbol PMCP_ENTRY_SYMBOL.
 * OWNERSHIP: static storage in the plugin; the host only reads it. */
typedef struct pmcp_plugin_entry {
  uint32_t struct_size; /* sizeof(pmcp_plugin_entry) as the plugin was built */
  uint16_t abi_major;   /* PMCP_ABI_VERSION_MAJOR the plugin was built against */
  uint16_t abi_minor;   /* PMCP_ABI_VERSION_MINOR the plugin was built against */
  const char* id;       /* short unique name, [a-z0-9-]+, e.g. "host", "stdio" */
  const char* version;  /* the plugin's own version, e.g. "0.1.0" */
  const char* description; /* one line for --list-plugins */

  /* Called once after loading, before any factory is used. Return nonzero on success; on
   * failure the host logs the plugin's reason (through host->log) and unloads it.
   * [main thread] OWNERSHIP: host stays owned by the core and valid until deinit returns. */
  int32_t (*init)(const pmcp_host* host);

  /* Called once before unloading, after every instance made by its factories is destroyed.
   * [main thread] */
  void (*deinit)(void);

  /* Returns the factory with this id ("pmcp.executor/1", "pmcp.transport/1"), or NULL.
   * [main thread] OWNERSHIP: the factory is owned by the plugin, valid until deinit. */
  const void* (*get_factory)(const char* factory_id);
} pmcp_plugin_entry;

#ifdef __cplusplus
}
#endif

#endif /* PMCP_PLUGIN_H */
