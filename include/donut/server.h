/* donut/server.h - the HTTP/1.1 front on libuv and its control API.
 *
 * A dn_server listens on a TCP address and serves resources through an
 * engine: the request path becomes the resource URI (resource_base +
 * path), the engine returns the representation, dn_rep_respond computes
 * 200/304/412 and the caching headers of the CDN profile, and the server
 * adds Content-Length, Cache-Status (RFC 9211) and Connection. It speaks
 * HTTP/1.1 with keep-alive and pipelining, parses requests with
 * libhttp-parser, bounds header and body sizes (431, 413), times out slow
 * clients (408), limits connections (503) and closes the connection after
 * a malformed request (400).
 *
 * An optional second listener serves the control API, protected by a
 * bearer token: POST /purge, GET /inspect, GET /metrics (Prometheus text),
 * GET /stats (JSON) and GET /healthz (see docs/server.md).
 *
 * The server runs on the caller's uv_loop_t and never prints, exits or
 * installs signal handlers: logging goes through a callback, and the
 * caller decides when to call dn_server_shutdown (for example on SIGTERM).
 * Every function must be called on the loop's thread unless it says
 * otherwise.
 */
#ifndef DONUT_SERVER_H
#define DONUT_SERVER_H

#include "donut/common.h"
#include "donut/engine.h"
#include "donut/http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_server dn_server;
/* libuv's loop (uv_loop_t). Declared here so that this header does not
 * pull in <uv.h> and its feature-macro needs. */
struct uv_loop_s;

/* ---- application handlers ------------------------------------------------
 */

/* A request as a handler sees it. Every slice is borrowed for the call. */
typedef struct dn_server_request {
  dn_slice method; /* "GET", "PUT", ... */
  dn_slice target; /* the request-target as sent: "/weather?city=tokyo" */
  dn_slice path;   /* the target before '?' */
  dn_slice query;  /* after '?', without it; empty when none */
  dn_slice body;
  const dn_http_field *fields;
  size_t field_count;
} dn_server_request;

/* Finds the query parameter `name` of req (application/x-www-form-urlencoded:
 * percent-decoded, '+' as a space; the first one when repeated) and copies
 * its value into out, NUL-terminated, with its length in *len (may be NULL).
 * Returns 0, DN_ENOTFOUND (no such parameter), DN_ETOOBIG (the value and its
 * NUL do not fit in cap bytes) or DN_EURI (malformed percent-encoding). out
 * is written only on success. Thread-safe. */
DN_EXTERN int dn_server_request_param(const dn_server_request *req,
                                      const char *name, char *out, size_t cap,
                                      size_t *len);

/* What a handler answers; filled with dn_server_reply_set. */
typedef struct dn_server_reply dn_server_reply;

/* Sets the reply: status (100-599), Content-Type (NULL: none) and a copy
 * of the body. Returns 0, DN_ERANGE (status), DN_EHEADER (content type
 * with control bytes) or DN_ENOMEM; the reply is unchanged on failure. */
DN_EXTERN int dn_server_reply_set(dn_server_reply *reply, int status,
                                  const char *content_type, const void *body,
                                  size_t len);

/* Adds a header field to the reply (after dn_server_reply_set or before it).
 * The name must be an RFC 9110 token and the value free of control bytes
 * (DN_EHEADER); the fields the server writes itself (Content-Length,
 * Content-Type, Transfer-Encoding, Connection, Date, Cache-Status) are
 * refused with DN_EINVAL. At most 16 KiB of fields in all (DN_ETOOBIG).
 * Returns 0 or DN_ENOMEM; the reply is unchanged on failure. */
DN_EXTERN int dn_server_reply_add_header(dn_server_reply *reply,
                                         const char *name, const char *value);

/* Called for every request on the site listener before the engine is
 * asked. Returns 1 when it answered (through dn_server_reply_set), 0 to
 * let the engine serve the request, or a negative DN_E* code (answered
 * with 500). With offload it runs on libuv's thread pool, so it must be
 * thread-safe. It may call the engine (purge, get). */
typedef int (*dn_server_handler_fn)(void *ud, const dn_server_request *req,
                                    dn_server_reply *reply);

/* ---- logs -----------------------------------------------------------------
 */

/* One request, for an access log. Every pointer is borrowed for the call;
 * strings are NUL-terminated. */
typedef struct dn_server_access {
  const char *remote; /* "127.0.0.1:51234" */
  const char *method; /* "-" when the request line was unreadable */
  const char *target;
  int http_minor; /* HTTP/1.<minor> */
  int status;
  uint64_t body_bytes;    /* body bytes sent */
  const char *cache;      /* "hit", "miss", "recomposed" or "-" */
  const char *user_agent; /* "-" when absent */
  const char *referer;    /* "-" when absent */
  uint64_t time_ms;       /* when the request arrived (wall clock) */
  uint64_t duration_us;   /* from the request's end to the response */
  int control;            /* 1 on the control listener */
} dn_server_access;

/* ---- options ------------------------------------------------------------
 */

#define DN_SERVER_MAX_HEADER_BYTES ((size_t)16 << 10)
#define DN_SERVER_MAX_BODY_BYTES ((size_t)1 << 20)
#define DN_SERVER_MAX_CONNECTIONS 1024u
#define DN_SERVER_REQUEST_TIMEOUT_MS 10000u
#define DN_SERVER_IDLE_TIMEOUT_MS 30000u
#define DN_SERVER_MAX_BUFFER_BYTES ((size_t)256 << 20)
/* The shortest control token accepted, in bytes. */
#define DN_SERVER_TOKEN_MIN 16

#define DN_SERVER_OFFLOAD_ALL 1
#define DN_SERVER_OFFLOAD_MISSES 2

/* The server's options. Initialise with dn_server_options_init, then set
 * fields; new fields are only ever added at the end (see "Options structs"
 * in donut/common.h). */
typedef struct dn_server_options {
  /* sizeof(dn_server_options) as the program was compiled, set by
   * dn_server_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  /* The engine that serves resources (borrowed; required). */
  dn_engine *engine;
  /* Where the site listens: "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all
   * IPv4 interfaces). Port 0 picks a free port (see dn_server_address).
   * Default "127.0.0.1:8080". */
  const char *listen;
  /* Where the control API listens; NULL for no control listener. It is
   * never bound to every interface unless the address says so. */
  const char *control;
  /* The bearer token the control API requires (at least
   * DN_SERVER_TOKEN_MIN bytes of visible ASCII); required with control.
   * Copied. */
  const char *control_token;
  /* The resource URI of path "/": request "/news?id=1" is resource
   * "<base>/news?id=1". Default "app://self". */
  const char *resource_base;
  /* The CDN profile of the caching headers. */
  dn_cdn_profile cdn;
  /* Client lifetime (max-age) in seconds. The default, 0, makes browsers
   * revalidate with the ETag every time: content that changes when it is
   * purged cannot tell a browser in advance how long it stays fresh.
   * DN_HTTP_UNSET gives browsers the time left until the page expires. */
  int64_t max_age;
  /* DN_SERVER_OFFLOAD_ALL (1): engine calls (gets, purges, inspections,
   * handlers) run on libuv's thread pool (uv_queue_work), so a slow store
   * or renderer never blocks the loop; 0 (the default): they run on the
   * loop thread, which is the fastest choice for the in-process memory
   * store; DN_SERVER_OFFLOAD_MISSES (2): a GET or HEAD is first answered
   * from the cache on the loop thread (a cache-only get, after the handler
   * declined it), and only a miss, and every other request, goes to the
   * thread pool: hits never wait behind slow renders (origin mode). */
  int offload;
  size_t max_header_bytes;     /* request line + fields; over: 431 */
  size_t max_body_bytes;       /* over: 413 */
  unsigned max_connections;    /* per listener; over: 503 and close */
  uint32_t request_timeout_ms; /* a request must arrive whole within it */
  uint32_t idle_timeout_ms;    /* a keep-alive connection may idle this long */
  /* The wall clock in ms (Date, Age); NULL uses CLOCK_REALTIME. Use the
   * engine's clock. */
  dn_clock_fn now_ms;
  void *clock_ud;
  /* Optional handler consulted before the engine (see above). */
  dn_server_handler_fn handler;
  void *handler_ud;
  /* Optional log callback: errors and notable events, one line each. */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
  /* Optional access log callback: called on the loop thread once per
   * response. */
  void (*access)(void *ud, const dn_server_access *entry);
  void *access_ud;
  /* Several loops, one port: with reuse_port the site listener sets
   * SO_REUSEPORT, so servers on other loops (threads) of this process can
   * bind the same address and the kernel spreads connections over them.
   * All of them must set it. */
  int reuse_port;
  /* Counts into the counters of another server of this process (for
   * example the one with the control listener), so that /metrics and
   * /stats show the total over every loop; NULL keeps its own. The other
   * server may be freed first. */
  dn_server *share_counters_with;
  /* The memory all connections may hold in request and response buffers
   * (input, header fields, bodies, queued responses); 0 takes the default
   * DN_SERVER_MAX_BUFFER_BYTES (256 MiB). Shared with share_counters_with.
   * A request whose body would pass it gets 503 and the connection
   * closes; queued responses past it stop a connection's reads until
   * they drain. */
  size_t max_buffer_bytes;
} dn_server_options;

/* Fills the first `size` bytes of opts with the defaults above (engine is
 * NULL) and sets opts->size to `size`; use the macro, which passes
 * sizeof *opts. */
DN_EXTERN void dn_server_options_init_size(dn_server_options *opts,
                                           size_t size);
#define dn_server_options_init(opts)                                           \
  dn_server_options_init_size((opts), sizeof *(opts))

/* Creates a server on `loop`, binds its listeners and starts accepting.
 * Returns 0 and the server in *out, DN_EINVAL (missing engine, token
 * missing or too short, options not initialised with
 * dn_server_options_init, or options from a newer header that set fields
 * this libdonut does not know; err says which), DN_ECONFIG (malformed address;
 * err says which), DN_EIO (the address cannot be bound, for example in use; err
 * has the system's reason) or DN_ENOMEM. On failure nothing is left open and
 * *out is untouched. */
DN_EXTERN int dn_server_new(struct uv_loop_s *loop,
                            const dn_server_options *opts, dn_server **out,
                            dn_error *err);

/* Writes the bound address of the site listener (control = 0) or the
 * control listener (control = 1) as "HOST:PORT" into out (cap bytes,
 * NUL-terminated). Returns 0, DN_ENOTFOUND (no such listener) or
 * DN_ETOOBIG. */
DN_EXTERN int dn_server_address(const dn_server *srv, int control, char *out,
                                size_t cap);

/* Starts a graceful shutdown: the listeners close, idle connections
 * close, requests in progress are answered (with Connection: close), and
 * when the last connection has closed `done` runs (may be NULL) on the
 * loop thread. Calling it again does nothing. */
DN_EXTERN void dn_server_shutdown(dn_server *srv, void (*done)(void *ud),
                                  void *ud);

/* Frees the server. Call it after the shutdown callback ran; called
 * earlier, it closes every connection at once and the memory is released
 * when the loop has run the close callbacks. NULL is a no-op. */
DN_EXTERN void dn_server_free(dn_server *srv);

/* Server counters (loop thread only). */
typedef struct dn_server_stats {
  uint64_t connections_open, connections_total, connections_rejected;
  uint64_t requests, responses_2xx, responses_3xx, responses_4xx, responses_5xx;
  uint64_t timeouts, bad_requests;
  uint64_t bytes_out;
  /* Bytes held now in request and response buffers (see max_buffer_bytes);
   * a gauge, not a counter. */
  uint64_t buffer_bytes;
} dn_server_stats;

DN_EXTERN void dn_server_stats_get(const dn_server *srv, dn_server_stats *out);

/* Writes the Prometheus text exposition of the engine's, the store's and
 * the server's counters (what GET /metrics answers). On success *out is
 * an owned string (free with dn_free). Returns 0 or DN_ENOMEM. */
DN_EXTERN int dn_server_metrics_text(const dn_server *srv, char **out,
                                     size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_SERVER_H */
