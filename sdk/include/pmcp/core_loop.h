/* process-mcp plugin ABI, optional host extension: waiting for a descriptor on the core thread.
 * A plugin whose work per event is small (read a few bytes, hand them to the sink) can let the
 * core's own event loop wait for its descriptor instead of a thread of its own: the event is
 * then handled where it is consumed, without a wake-up of another thread. A host that does not
 * offer it answers NULL in get_extension(); the plugin then keeps its own thread. Plain C11,
 * like its siblings. */
#ifndef PMCP_CORE_LOOP_H
#define PMCP_CORE_LOOP_H

#include "pmcp/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The id to pass to pmcp_host.get_extension(). Added at ABI 0.1 without changing any struct. */
#define PMCP_CORE_LOOP_EXTENSION_ID "pmcp.ext.core-loop/1"

/* One watched descriptor; opaque, owned by the host until cancel(). */
typedef struct pmcp_fd_watch pmcp_fd_watch;

/* The table returned by get_extension(PMCP_CORE_LOOP_EXTENSION_ID).
 * OWNERSHIP: owned by the host, valid until the plugin's deinit. */
typedef struct pmcp_core_loop {
  uint32_t struct_size;

  /* Starts watching fd for input: ready(user) runs on the core thread once fd becomes readable,
   * hangs up or has an error, and then not again until rearm().
   *  - The wait is edge-triggered: it is woken by a change, not by bytes that were already
   *    there when it was asked for. Call rearm() only in the same core-thread call as a read
   *    that left nothing to read (EAGAIN, or less than asked for from a pipe or socket); after a
   *    read that may have left more, read again later (e.g. from a function posted with
   *    pmcp_host.post) instead of waiting.
   *  - ready() may find nothing to read after all: read without blocking (poll with a zero
   *    timeout first, or a non-blocking call). The host may set O_NONBLOCK on the descriptor's
   *    open file description.
   *  - It must return quickly: every other event of the server waits while it runs.
   * The descriptor stays the plugin's; the host waits on a duplicate of it. Returns PMCP_OK
   * with *out set, or a negative status with the reason in err (e.g. a regular file, which
   * cannot be waited on).
   * [core thread] OWNERSHIP: user stays the plugin's and must outlive the watch. */
  int32_t (*watch_input)(const pmcp_host* host, int fd, void (*ready)(void* user), void* user,
                         pmcp_fd_watch** out, pmcp_error_buf err);

  /* Asks for the next ready() call. Calling it while a call is already asked for does nothing.
   * [core thread] */
  void (*rearm)(pmcp_fd_watch* watch);

  /* Stops watching and frees the watch: ready() is never called after this returns (also not a
   * call that was due). The plugin's descriptor is left open.
   * [core thread] */
  void (*cancel)(pmcp_fd_watch* watch);
} pmcp_core_loop;

#ifdef __cplusplus
}
#endif

#endif /* PMCP_CORE_LOOP_H */
