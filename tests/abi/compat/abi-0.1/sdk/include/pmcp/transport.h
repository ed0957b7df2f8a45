/* process-mcp transport ABI: a byte mover that turns a wire into whole JSON-RPC texts and back.
 * A transport owns nothing of MCP semantics beyond what its wire needs (sessions, streams). */
#ifndef PMCP_TRANSPORT_H
#define PMCP_TRANSPORT_H

#include "pmcp/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PMCP_TRANSPORT_FACTORY_ID "pmcp.transport/1"

/* Flags of pmcp_transport.send. */
#define PMCP_SEND_FINAL 0x1u /* the response that ends a request: its stream may close after it */

/* Events from a transport instance to the core. [any thread] The core copies and handles them
 * on its own thread. No callback fires after destroy() returns.
 * OWNERSHIP: owned by the core, valid until destroy() returns; arguments are borrowed. */
typedef struct pmcp_transport_sink {
  uint32_t struct_size;
  void* ctx;

  /* One whole JSON-RPC text (a message or a batch) arrived. session_id identifies the client
   * session (chosen by the transport, nonzero, never reused by it); stream_id identifies where
   * the answer goes (0 = the session's standalone stream). The core echoes stream_id on the
   * response and on notifications about that request. */
  void (*on_message)(void* ctx, uint64_t session_id, uint64_t stream_id, pmcp_str json);

  /* The session ended (client gone, DELETE, stdin closed). The core forgets it. */
  void (*on_session_closed)(void* ctx, uint64_t session_id);

  /* The transport stopped for good by itself (e.g. stdin reached EOF). When every transport
   * has stopped, the server shuts down. */
  void (*on_stopped)(void* ctx, pmcp_str reason);
} pmcp_transport_sink;

/* One transport instance. The core calls it from one thread at a time.
 * OWNERSHIP: owned by the plugin; valid until destroy() returns. */
typedef struct pmcp_transport {
  uint32_t struct_size;
  void* impl;

  /* Starts reading the wire / listening. [core thread] */
  int32_t (*start)(struct pmcp_transport* self, pmcp_error_buf err);

  /* Sends one JSON-RPC text to session_id on stream_id. Never blocks: the transport queues.
   * PMCP_ERR_NOT_FOUND when the session or stream is gone (the core then drops the message).
   * [core thread] OWNERSHIP: json is borrowed; the transport copies it. */
  int32_t (*send)(struct pmcp_transport* self, uint64_t session_id, uint64_t stream_id,
                  pmcp_str json, uint32_t flags, pmcp_error_buf err);

  /* Stops accepting new input, flushes what was queued, closes. [core thread] */
  void (*stop)(struct pmcp_transport* self);

  /* Frees the instance; joins threads. No sink callback fires after it returns. [core thread] */
  void (*destroy)(struct pmcp_transport* self);
} pmcp_transport;

typedef struct pmcp_transport_factory {
  uint32_t struct_size;

  /* Creates an instance from config_json (the plugin's TOML table as JSON, "{}" if absent).
   * [main thread] OWNERSHIP: config_json borrowed; sink owned by the core; *out by the plugin. */
  int32_t (*create)(const struct pmcp_transport_factory* factory, const pmcp_host* host,
                    pmcp_str config_json, const pmcp_transport_sink* sink,
                    pmcp_transport** out, pmcp_error_buf err);
} pmcp_transport_factory;

#ifdef __cplusplus
}
#endif

#endif /* PMCP_TRANSPORT_H */
