/* process-mcp executor ABI: a backend that starts processes and moves their bytes and events.
 * Executors are dumb pipes; ids, buffers, terminals, timeouts and policy live in the core. */
#ifndef PMCP_EXECUTOR_H
#define PMCP_EXECUTOR_H

#include "pmcp/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Factory id with revision; a newer host may ask for "/2" first and fall back to "/1". */
#define PMCP_EXECUTOR_FACTORY_ID "pmcp.executor/1"

/* Output streams. A PTY process delivers everything it writes as PMCP_STREAM_STDOUT. */
typedef enum pmcp_stream {
  PMCP_STREAM_STDOUT = 1,
  PMCP_STREAM_STDERR = 2
} pmcp_stream;

/* Flags of pmcp_spawn_options.flags. */
#define PMCP_SPAWN_PTY 0x1u /* run on a new pseudo-terminal (controlling tty) instead of pipes */

/* Events from an executor instance to the core. The core fills it in create(); the plugin
 * calls it from any thread; the core copies what it keeps and handles it on its own thread.
 * Per process the order is: exactly one on_spawned; then, only if that reported PMCP_OK,
 * any number of on_output and finally exactly one on_exit, after the last on_output.
 * No callback fires inside the executor call that caused it, and none after destroy() returns.
 * OWNERSHIP: owned by the core, valid until destroy() returns; every pointer argument of a
 * callback is borrowed for the duration of that callback. */
typedef struct pmcp_executor_sink {
  uint32_t struct_size;
  void* ctx; /* pass back unchanged */

  /* The start of process_id finished. status is PMCP_OK, or an error with message saying why.
   * os_pid is the process id on the backend (informational; 0 if unknown). [any thread] */
  void (*on_spawned)(void* ctx, uint64_t process_id, int32_t status, int64_t os_pid,
                     pmcp_str message);

  /* Bytes the process wrote on a stream (see pmcp_stream). [any thread, never the core's]
   * It may block for a while when the core is behind (back-pressure): do not hold a lock
   * that the executor's own functions need while calling it. */
  void (*on_output)(void* ctx, uint64_t process_id, int32_t stream, const uint8_t* data,
                    size_t size);

  /* The process ended. exit_code is its exit status (0-255) when it exited, or -1 when a
   * signal ended it, in which case term_signal is the signal number (else 0). message is
   * empty for a normal end, or says what went wrong (e.g. the backend was lost). [any thread] */
  void (*on_exit)(void* ctx, uint64_t process_id, int32_t exit_code, int32_t term_signal,
                  pmcp_str message);
} pmcp_executor_sink;

/* What to start. The core builds every field; the executor does not add policy of its own,
 * except that it may set environment variables that the list does not name (e.g. HOME).
 * OWNERSHIP: borrowed for the duration of spawn(); the executor copies what it keeps. */
typedef struct pmcp_spawn_options {
  uint32_t struct_size;
  uint64_t process_id;     /* chosen by the core, never reused in one server run */
  const char* const* argv; /* argc NUL-terminated strings; argv[0] is looked up in PATH */
  size_t argc;
  const char* const* envp; /* envc "NAME=value" strings: the complete environment */
  size_t envc;
  pmcp_str cwd;    /* working directory; empty means the executor's default_cwd */
  uint32_t flags;  /* PMCP_SPAWN_* */
  uint16_t cols;   /* terminal size for PMCP_SPAWN_PTY, in character cells */
  uint16_t rows;
} pmcp_spawn_options;

/* One executor instance. Every function is called by the core from one thread at a time.
 * Functions that return int32_t return PMCP_OK or an error, with a reason in err.
 * OWNERSHIP: owned by the plugin; valid until destroy() returns. */
typedef struct pmcp_executor {
  uint32_t struct_size;
  void* impl; /* the plugin's own state */

  /* Prefix of the process ids the user sees, e.g. "host" gives "host-1". */
  const char* id_prefix;
  /* Working directory used when the core passes an empty cwd. */
  const char* default_cwd;

  /* Starts a process. Returns PMCP_OK when the request was accepted; on_spawned reports the
   * outcome later. An error return means on_spawned will not fire for this process_id.
   * [core thread] */
  int32_t (*spawn)(struct pmcp_executor* self, const pmcp_spawn_options* options,
                   pmcp_error_buf err);

  /* Queues bytes for the process's stdin (or PTY input). The executor copies them and writes
   * them in order without blocking the caller. [core thread] OWNERSHIP: data is borrowed. */
  int32_t (*write_stdin)(struct pmcp_executor* self, uint64_t process_id, const uint8_t* data,
                         size_t size, pmcp_error_buf err);

  /* Closes stdin after the queued bytes are written (pipes). PMCP_ERR_UNSUPPORTED for a PTY,
   * where the core sends ^D instead. [core thread] */
  int32_t (*close_stdin)(struct pmcp_executor* self, uint64_t process_id, pmcp_error_buf err);

  /* Sends signal signo (Linux numbering) to the process's whole process group.
   * PMCP_ERR_STATE once the process has exited. [core thread] */
  int32_t (*signal)(struct pmcp_executor* self, uint64_t process_id, int32_t signo,
                    pmcp_error_buf err);

  /* Resizes the PTY (the process sees SIGWINCH). PMCP_ERR_UNSUPPORTED for pipes. [core thread] */
  int32_t (*resize)(struct pmcp_executor* self, uint64_t process_id, uint16_t cols,
                    uint16_t rows, pmcp_error_buf err);

  /* Kills every process still running (SIGKILL to each group), waits for them, joins the
   * plugin's threads and frees the instance. No sink callback fires after it returns.
   * [core thread] */
  void (*destroy)(struct pmcp_executor* self);
} pmcp_executor;

/* The factory returned by get_factory(PMCP_EXECUTOR_FACTORY_ID).
 * OWNERSHIP: static in the plugin, valid until deinit. */
typedef struct pmcp_executor_factory {
  uint32_t struct_size;

  /* Creates an instance from config_json (the plugin's own TOML table as a JSON object, "{}"
   * when absent). Unknown keys and bad values are errors naming the key. On success *out is
   * set and the sink is kept until destroy. [main thread]
   * OWNERSHIP: config_json borrowed; sink owned by the core; *out owned by the plugin. */
  int32_t (*create)(const struct pmcp_executor_factory* factory, const pmcp_host* host,
                    pmcp_str config_json, const pmcp_executor_sink* sink,
                    pmcp_executor** out, pmcp_error_buf err);
} pmcp_executor_factory;

#ifdef __cplusplus
}
#endif

#endif /* PMCP_EXECUTOR_H */
