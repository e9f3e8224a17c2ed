/* donut/purge.h - telling CDNs what to drop: purgers, their backends, the
 * outbox and the CDN configuration.
 *
 * A purger (dn_purger) turns invalidations into purge requests for one CDN.
 * It subscribes to an engine's invalidations (dn_purger_listen) or takes
 * tags and URIs directly (dn_purger_purge_tags, dn_purger_purge_uris).
 * Those calls never touch the network: they copy the tags into a queue and
 * wake the purger's event loop (libuv), which sends the requests with
 * libcurl's multi interface. Invalidations that arrive within a short
 * window (50 ms by default) become one batch: its tags are deduplicated,
 * turned into the profile's purge keys (exactly dn_cdn_purge_keys(profile,
 * tags), so pages whose headers carried compacted or hashed tags are
 * reached) and split into as few requests as the CDN's limits allow.
 *
 * Failed requests (5xx, 429, 408, timeouts, refused connections) are
 * retried with exponential backoff and jitter, honouring Retry-After. A
 * batch is reported as failed only when its retries are exhausted or the
 * CDN rejected it (other 4xx); then it shows in dn_purger_stats_get and
 * reaches the report callback. With an outbox directory, every batch is
 * written to an append-only file and fsynced before its first request is
 * sent (or before the purge call returns, with DN_PURGE_SYNC_BEFORE_RETURN);
 * a purger that starts after a crash adopts the files of dead processes
 * and sends what they had not delivered.
 *
 * The CDN-specific part is a backend: a versioned table of functions
 * (dn_purger_ops) that builds the HTTP requests, in the manner of
 * dn_store_ops. Varnish (xkey), Fastly, Cloudflare, Akamai (Fast Purge v3
 * with EdgeGrid signing) and a generic JSON webhook are built in; see
 * docs/cdn-purge.md.
 *
 * Credentials never appear in reports, logs, error texts or the outbox.
 */
#ifndef DONUT_PURGE_H
#define DONUT_PURGE_H

#include <stdint.h>

#include "donut/common.h"
#include "donut/engine.h"
#include "donut/http.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's uv_loop_t */

/* ---- requests a backend builds ------------------------------------------ */

/* The request under construction, owned by the purger. Every setter copies
 * its arguments and returns 0, DN_EHEADER (a name or value that is not a
 * valid field, see dn_http_field_value_validate), DN_EINVAL or DN_ENOMEM.
 * Only to be used inside dn_purger_ops.build. */
typedef struct dn_purge_req dn_purge_req;

/* The method, such as "POST" or "PURGE" (an RFC 9110 token). */
DN_EXTERN int dn_purge_req_set_method(dn_purge_req *req, const char *method);
/* The absolute http:// or https:// URL. */
DN_EXTERN int dn_purge_req_set_url(dn_purge_req *req, const char *url);
/* Adds a header field; fields are sent in the order they are added, after
 * Host. Mark credentials with dn_purge_req_add_secret_header instead. */
DN_EXTERN int dn_purge_req_add_header(dn_purge_req *req, const char *name,
                                      const char *value);
/* Adds a header field whose value is a credential. It is sent like any
 * other field and never logged or reported: neither the whole value nor
 * any of its whitespace-separated words of 8 bytes or more. */
DN_EXTERN int dn_purge_req_add_secret_header(dn_purge_req *req,
                                             const char *name,
                                             const char *value);
/* A credential the request carries other than as a whole secret header
 * value (a token inside a field or the body, a signing key): it is not
 * sent, only replaced by "(redacted)" wherever the purger reports or logs
 * text, such as a response body that echoes it. Strings shorter than 4
 * bytes are ignored. */
DN_EXTERN int dn_purge_req_add_secret(dn_purge_req *req, const char *secret);
/* The body (len bytes, copied). Without one the request has no body. */
DN_EXTERN int dn_purge_req_set_body(dn_purge_req *req, const void *body,
                                    size_t len);

/* ---- the backend interface ---------------------------------------------- */

#define DN_PURGER_OPS_VERSION 2

/* dn_purger_ops.flags */
/* Call build even when a batch has no purge keys (the profile emits no tag
 * field): the webhook still reports the tags and URIs. */
#define DN_PURGER_SEND_WITHOUT_KEYS 0x1u

/* What one request is about, as handed to dn_purger_ops.build. Everything
 * is borrowed for the call. */
typedef struct dn_purge_batch {
  size_t target;        /* which destination, 0 <= target < targets() */
  const dn_slice *keys; /* purge keys still to place, from this request's
                           first key on */
  size_t nkeys;
  const dn_slice *tags; /* the batch's tags as invalidated, deduplicated */
  size_t ntags;
  const dn_slice *uris; /* URIs purged with dn_purger_purge_uris */
  size_t nuris;
  uint64_t now_ms;          /* the purger's clock, ms since the epoch */
  unsigned attempt;         /* 0 for the first attempt, then 1, 2, ... */
  unsigned char random[16]; /* fresh random bytes (for nonces) */
} dn_purge_batch;

typedef struct dn_purger_ops {
  /* DN_PURGER_OPS_VERSION. Methods are only ever added at the end. */
  int version;
  /* A unique, stable name: "varnish", "fastly", "cloudflare", "akamai",
   * "webhook". */
  const char *name;
  unsigned flags; /* DN_PURGER_SEND_WITHOUT_KEYS */
  /* How many destinations every batch goes to (Varnish: one per server);
   * at least 1. Each destination is retried on its own. */
  size_t (*targets)(void *self);
  /* Builds the request that purges a prefix of b->keys on b->target, as
   * long as the API's limits allow, and sets *used to the number of keys
   * it carries: at least 1 when b->nkeys > 0. A retry passes exactly the
   * keys of the first attempt and expects them all to be used. Runs on the
   * purger's loop thread and must not block. Returns 0 or a negative
   * DN_E* code, which fails the request without retrying it. */
  int (*build)(void *self, const dn_purge_batch *b, dn_purge_req *req,
               size_t *used);
  /* Frees self. */
  void (*destroy)(void *self);
  /* Version 2; may be NULL. Writes where the purges go, without any
   * credential (URLs without user info or query, so with the service,
   * zone or network in their path), into out (cap bytes, NUL-terminated).
   * With the backend's name and the profile it identifies the purger's
   * outbox files: a purger adopts only files of the same identity. */
  void (*destinations)(void *self, char *out, size_t cap);
} dn_purger_ops;

/* A backend: its table and its state. A value type. */
typedef struct dn_purge_backend {
  const dn_purger_ops *ops;
  void *self;
} dn_purge_backend;

/* Frees a backend that was not handed to a purger. NULL ops is a no-op. */
DN_EXTERN void dn_purge_backend_free(dn_purge_backend *b);

/* ---- built-in backends ------------------------------------------------- */
/* Each constructor copies its options and returns 0, DN_ECONFIG (with the
 * reason in err, never quoting a credential), DN_EINVAL or DN_ENOMEM.
 * Options structs are initialised with their *_options_init, then set;
 * new fields are only ever added at the end (see "Options structs" in
 * donut/common.h). The constructors return DN_EINVAL, with the reason in
 * err, for options not initialised that way and for options from a newer
 * header that set fields this libdonut does not know. */

/* Varnish with the xkey vmod (varnish-modules): one `PURGE /` request per
 * server carrying the keys, space-separated, in an `xkey` field (hard
 * purge) or an `xkey-softpurge` field (soft purge); examples/varnish/
 * donut.vcl answers them. */
typedef struct dn_purge_varnish_options {
  /* sizeof(dn_purge_varnish_options) as the program was compiled, set by
   * dn_purge_varnish_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  const char *const *urls; /* base URLs of the servers, http://host:port */
  size_t nurls;
  int soft;               /* 1: xkey-softpurge */
  size_t max_field_bytes; /* longest key field; 0 = 8000 */
} dn_purge_varnish_options;
/* Fills the first `size` bytes of opts with zeros (no URLs, hard purges,
 * default field size) and sets opts->size to `size`; use the macro, which
 * passes sizeof *opts. */
DN_EXTERN void
dn_purge_varnish_options_init_size(dn_purge_varnish_options *opts, size_t size);
#define dn_purge_varnish_options_init(opts)                                    \
  dn_purge_varnish_options_init_size((opts), sizeof *(opts))
DN_EXTERN int dn_purge_backend_varnish(const dn_purge_varnish_options *o,
                                       dn_purge_backend *out, dn_error *err);

/* Fastly: POST {api_url}/service/{service}/purge with
 * {"surrogate_keys":[...]} (at most 256 keys per call), the token in
 * Fastly-Key, and Fastly-Soft-Purge: 1 for a soft purge. */
typedef struct dn_purge_fastly_options {
  /* sizeof(dn_purge_fastly_options) as the program was compiled, set by
   * dn_purge_fastly_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  const char *token;   /* API token (purge_select scope) */
  const char *service; /* service ID */
  const char *api_url; /* NULL = "https://api.fastly.com"; tests point it
                          at a local endpoint */
  int soft;
  size_t max_keys; /* 0 = 256 */
} dn_purge_fastly_options;
/* Fills the first `size` bytes of opts with zeros (no credentials, the public
 * API, hard purges) and sets opts->size to `size`; use the macro, which passes
 * sizeof *opts. */
DN_EXTERN void dn_purge_fastly_options_init_size(dn_purge_fastly_options *opts,
                                                 size_t size);
#define dn_purge_fastly_options_init(opts)                                     \
  dn_purge_fastly_options_init_size((opts), sizeof *(opts))
DN_EXTERN int dn_purge_backend_fastly(const dn_purge_fastly_options *o,
                                      dn_purge_backend *out, dn_error *err);

/* Cloudflare: POST {api_url}/client/v4/zones/{zone}/purge_cache with
 * {"tags":[...]} and Authorization: Bearer {token}. */
typedef struct dn_purge_cloudflare_options {
  /* sizeof(dn_purge_cloudflare_options) as the program was compiled, set by
   * dn_purge_cloudflare_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  const char *token;
  const char *zone;    /* zone ID */
  const char *api_url; /* NULL = "https://api.cloudflare.com" */
  size_t max_tags;     /* tags per request; 0 = 100 (the documented limit
                          of every plan; some accounts allow 30 or 500) */
} dn_purge_cloudflare_options;
/* Fills the first `size` bytes of opts with zeros (no credentials, the public
 * API) and sets opts->size to `size`; use the macro, which passes sizeof *opts.
 */
DN_EXTERN void
dn_purge_cloudflare_options_init_size(dn_purge_cloudflare_options *opts,
                                      size_t size);
#define dn_purge_cloudflare_options_init(opts)                                 \
  dn_purge_cloudflare_options_init_size((opts), sizeof *(opts))
DN_EXTERN int dn_purge_backend_cloudflare(const dn_purge_cloudflare_options *o,
                                          dn_purge_backend *out, dn_error *err);

/* Akamai Fast Purge v3 by cache tag: POST {api_url}/ccu/v3/{action}/tag/
 * {network} with {"objects":[...]}, each body at most 50,000 bytes, signed
 * with EdgeGrid (EG1-HMAC-SHA256). The credentials are the four values of
 * an .edgerc section. */
typedef struct dn_purge_akamai_options {
  /* sizeof(dn_purge_akamai_options) as the program was compiled, set by
   * dn_purge_akamai_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  const char *host; /* "akab-....luna.akamaiapis.net" */
  const char *client_token;
  const char *client_secret;
  const char *access_token;
  size_t max_body;          /* .edgerc max-body; 0 = 131072 */
  const char *network;      /* "production" (NULL) or "staging" */
  int delete_objects;       /* 1: /delete/ instead of /invalidate/ */
  const char *api_url;      /* NULL = "https://" + host */
  size_t max_request_bytes; /* 0 = 50000 */
} dn_purge_akamai_options;
/* Fills the first `size` bytes of opts with zeros (no credentials, production,
 * invalidate) and sets opts->size to `size`; use the macro, which passes sizeof
 * *opts. */
DN_EXTERN void dn_purge_akamai_options_init_size(dn_purge_akamai_options *opts,
                                                 size_t size);
#define dn_purge_akamai_options_init(opts)                                     \
  dn_purge_akamai_options_init_size((opts), sizeof *(opts))
DN_EXTERN int dn_purge_backend_akamai(const dn_purge_akamai_options *o,
                                      dn_purge_backend *out, dn_error *err);

/* Reads the credentials of `section` (NULL = "default") from an .edgerc
 * file (NULL = $HOME/.edgerc) into *out, whose strings point into *buf, an
 * owned block (free with dn_free). Only host, client_token, client_secret,
 * access_token and max_body are written: initialise *out with
 * dn_purge_akamai_options_init first. Returns 0, DN_EIO (unreadable),
 * DN_ECONFIG (syntax, missing section or key; line in err) or DN_ENOMEM. */
DN_EXTERN int dn_purge_akamai_edgerc(const char *path, const char *section,
                                     dn_purge_akamai_options *out, char **buf,
                                     dn_error *err);

/* A generic webhook: POST {url} with Content-Type: application/json and
 * {"tags":[...],"keys":[...],"uris":[...]}, one request per batch and URL.
 * `headers` are extra fields ("Name: value" strings, sent as secrets). */
typedef struct dn_purge_webhook_options {
  /* sizeof(dn_purge_webhook_options) as the program was compiled, set by
   * dn_purge_webhook_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  const char *const *urls;
  size_t nurls;
  const char *const *headers;
  size_t nheaders;
} dn_purge_webhook_options;
/* Fills the first `size` bytes of opts with zeros (no URLs, no extra fields)
 * and sets opts->size to `size`; use the macro, which passes sizeof *opts. */
DN_EXTERN void
dn_purge_webhook_options_init_size(dn_purge_webhook_options *opts, size_t size);
#define dn_purge_webhook_options_init(opts)                                    \
  dn_purge_webhook_options_init_size((opts), sizeof *(opts))
DN_EXTERN int dn_purge_backend_webhook(const dn_purge_webhook_options *o,
                                       dn_purge_backend *out, dn_error *err);

/* ---- reports ------------------------------------------------------------ */

/* The outcome of one batch, given to the report callback once all its
 * requests are settled. Everything is borrowed for the call. */
typedef struct dn_purge_report {
  uint64_t id;   /* the batch's first outbox id (or a serial) */
  int delivered; /* 1: every request succeeded */
  const dn_slice *tags;
  size_t ntags;
  const dn_slice *uris;
  size_t nuris;
  size_t keys;       /* purge keys sent */
  unsigned requests; /* requests sent, retries included */
  unsigned failed;   /* requests given up on */
  int http_status;   /* the last failure's status; 0 for none or a
                        transport error */
  const char *error; /* the last failure, "" when delivered; names the
                        backend and host, never a credential */
} dn_purge_report;

/* One retry being scheduled (for logs and metrics). */
typedef struct dn_purge_retry {
  const char *target; /* "scheme://host:port" of the destination */
  unsigned attempt;   /* the attempt that failed, 1-based */
  int http_status;    /* 0 for a transport error or timeout */
  uint64_t delay_ms;  /* when the next attempt goes out */
  int retry_after;    /* 1 when delay_ms comes from Retry-After */
  const char *reason;
} dn_purge_retry;

/* ---- purgers ------------------------------------------------------------ */

typedef struct dn_purger dn_purger;

/* dn_purger_options.durability */
#define DN_PURGE_SYNC_BEFORE_SEND                                              \
  0 /* the loop fsyncs each batch before                                       \
       its first request (default) */
#define DN_PURGE_SYNC_BEFORE_RETURN                                            \
  1 /* every purge call fsyncs its                                             \
       record before returning */

/* The purger's options. Initialise with dn_purger_options_init, then set
 * fields; new fields are only ever added at the end (see "Options structs"
 * in donut/common.h). */
typedef struct dn_purger_options {
  /* sizeof(dn_purger_options) as the program was compiled, set by
   * dn_purger_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  /* The profile whose purge keys are sent (dn_cdn_purge_keys). */
  dn_cdn_profile profile;
  /* A loop to run on, driven by the caller: dn_purger_new and
   * dn_purger_free are then called on that loop's thread, and every
   * callback runs there. NULL: the purger starts a thread with its own
   * loop. */
  struct uv_loop_s *loop;
  /* Directory of outbox files; NULL keeps pending purges in memory only
   * (lost on a crash). Created (0700) when missing. */
  const char *outbox_dir;
  int durability;              /* DN_PURGE_SYNC_* */
  int retry_failed;            /* on start, resend failed outbox entries */
  uint64_t window_ms;          /* batching window; 0 = 50 */
  unsigned max_attempts;       /* attempts per request; 0 = 8 */
  uint64_t backoff_ms;         /* first retry delay; 0 = 500 */
  uint64_t max_backoff_ms;     /* 0 = 60000 */
  uint64_t max_retry_after_ms; /* cap on Retry-After; 0 = 3600000 */
  uint64_t timeout_ms;         /* per request; 0 = 10000 */
  uint64_t connect_timeout_ms; /* 0 = 5000 */
  unsigned max_inflight;       /* concurrent requests; 0 = 16 */
  /* Called on the loop thread when a batch is settled. */
  void (*report)(void *ud, const dn_purge_report *r);
  void *report_ud;
  /* Called on the loop thread when a retry is scheduled. */
  void (*on_retry)(void *ud, const dn_purge_retry *r);
  void *retry_ud;
  /* Optional log callback (DN_LOG_* levels; msg is NUL-terminated). */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
  /* Wall clock in ms since the epoch (Retry-After dates, EdgeGrid
   * timestamps, outbox times); NULL = CLOCK_REALTIME. */
  uint64_t (*now_ms)(void *ud);
  void *clock_ud;
  /* Random bytes (jitter, nonces): fills buf and returns 0; NULL = the
   * system's CSPRNG (OpenSSL RAND_bytes). */
  int (*random)(void *ud, void *buf, size_t n);
  void *random_ud;
  /* On start, adopt the outbox files of dead processes whatever purger
   * wrote them (by default only files of the same backend, profile and
   * destinations, see dn_outbox_entry.identity, are adopted). */
  int adopt_any;
} dn_purger_options;

/* Fills the first `size` bytes of opts with the defaults (profile DN_CDN_NONE,
 * own thread, no outbox) and sets opts->size to
 * `size`; use the macro, which passes sizeof *opts. */
DN_EXTERN void dn_purger_options_init_size(dn_purger_options *opts,
                                           size_t size);
#define dn_purger_options_init(opts)                                           \
  dn_purger_options_init_size((opts), sizeof *(opts))

/* Creates a purger that owns `backend` (on success only) and starts it:
 * with an outbox it adopts the files of dead processes and queues what
 * they had not delivered. On a caller's loop, call it on that loop's
 * thread. opts may be NULL for the defaults. Returns 0, DN_EINVAL (also
 * for options not initialised with dn_purger_options_init, or from a newer
 * header and setting fields this libdonut does not know; err says which),
 * DN_EIO (the outbox cannot be created; reason in err), DN_ENOMEM, or DN_ESTATE
 * when the thread or the loop handles cannot start. On failure nothing is
 * started and the backend is still the caller's. */
DN_EXTERN int dn_purger_new(dn_purge_backend backend,
                            const dn_purger_options *opts, dn_purger **out,
                            dn_error *err);

/* Stops the purger and frees it. Requests in flight are abandoned: their
 * batches stay in the outbox for the next purger. With its own thread:
 * call from any thread but a callback; it returns when the thread has
 * ended. On a caller's loop: call on that loop's thread; the handles
 * close on the next loop iterations, so keep running the loop (the memory
 * is freed by the last close callback). NULL is a no-op. */
DN_EXTERN void dn_purger_free(dn_purger *p);

/* Queues a purge of n tags (each must pass dn_tag_validate). Never blocks
 * on the network; with DN_PURGE_SYNC_BEFORE_RETURN it returns after the
 * outbox record is on disk. Returns 0, DN_ETAG (nothing queued; err names
 * the tag in `line` and the byte in `position`), DN_EIO (the outbox write
 * failed; nothing queued), DN_ESTATE (the purger is stopping) or
 * DN_ENOMEM. Thread-safe. */
DN_EXTERN int dn_purger_purge_tags(dn_purger *p, const dn_slice *tags, size_t n,
                                   dn_error *err);

/* Queues a purge of n URIs: their URI tags (dn_uri_tag) are purged, and
 * the webhook also receives the normalised URIs. Same returns as
 * dn_purger_purge_tags, plus DN_EURI. Thread-safe. */
DN_EXTERN int dn_purger_purge_uris(dn_purger *p, const dn_slice *uris, size_t n,
                                   dn_error *err);

/* Subscribes the purger to the engine's invalidations (every tag the
 * engine invalidates is queued as by dn_purger_purge_tags; a queueing
 * failure is counted in `dropped` and logged). The engine has no way to
 * unsubscribe: free the engine before the purger, or stop invalidating.
 * Returns 0, DN_EINVAL or DN_ENOMEM. */
DN_EXTERN int dn_purger_listen(dn_purger *p, dn_engine *engine);

/* The listener dn_purger_listen installs, for callers that dispatch
 * invalidations themselves: ud is the dn_purger. */
DN_EXTERN void dn_purger_on_invalidate(void *ud, const dn_slice *tags,
                                       size_t n);

/* Sends what is queued now instead of at the end of the window. Never
 * blocks. Thread-safe. */
DN_EXTERN void dn_purger_flush(dn_purger *p);

/* Flushes, then waits until nothing is queued or in flight (every batch
 * delivered or failed), for at most timeout_ms (0 = no limit). Returns 0,
 * DN_ETIMEDOUT, or DN_ESTATE when called on the purger's loop thread.
 * Thread-safe. */
DN_EXTERN int dn_purger_drain(dn_purger *p, uint64_t timeout_ms);

/* Resends every failed entry (kept in memory and in the outbox). Never
 * blocks. Thread-safe. */
DN_EXTERN void dn_purger_retry_failed(dn_purger *p);

/* Counters since the purger was created; the gauges are current. */
typedef struct dn_purger_stats {
  uint64_t invalidations; /* purge calls and engine invalidations */
  uint64_t tags;          /* tags queued */
  uint64_t batches;       /* batches formed */
  uint64_t delivered;     /* batches delivered */
  uint64_t failed;        /* batches failed after their retries */
  uint64_t keys;          /* purge keys in delivered requests */
  uint64_t requests;      /* requests sent, retries included */
  uint64_t retries;       /* retries scheduled */
  uint64_t retry_after;   /* retries timed by Retry-After */
  uint64_t status_2xx, status_429, status_5xx, status_other;
  uint64_t transport_errors; /* connections refused, resets, ... */
  uint64_t timeouts;
  uint64_t replayed;       /* outbox entries adopted at start */
  uint64_t outbox_errors;  /* outbox writes that failed */
  uint64_t dropped;        /* invalidations lost (out of memory) */
  uint64_t queued_tags;    /* gauge: tags waiting for the window */
  uint64_t pending;        /* gauge: batches not settled */
  uint64_t failed_entries; /* gauge: failed entries awaiting retry */
} dn_purger_stats;

/* Copies the counters. Thread-safe. */
DN_EXTERN void dn_purger_stats_get(dn_purger *p, dn_purger_stats *out);

/* The backend's name ("fastly", ...). */
DN_EXTERN const char *dn_purger_name(const dn_purger *p);

/* ---- the outbox on disk ----------------------------------------------- */

#define DN_OUTBOX_PENDING 1 /* not delivered yet */
#define DN_OUTBOX_FAILED 2  /* retries exhausted; kept for a retry */

/* One entry of an outbox directory, borrowed for the callback. */
typedef struct dn_outbox_entry {
  const char *file; /* file name inside the directory */
  long owner_pid;   /* process that wrote the file */
  int owner_alive;  /* 1: that process still holds the file */
  uint64_t id;      /* unique within the file */
  int state;        /* DN_OUTBOX_PENDING or DN_OUTBOX_FAILED */
  uint64_t created_ms;
  unsigned attempts; /* failed deliveries so far */
  const char *error; /* the last failure, "" when none */
  const dn_slice *tags;
  size_t ntags;
  const dn_slice *uris;
  size_t nuris;
  /* Who wrote the file: "backend=NAME profile=NAME targets=HEX16" (a hash
   * of the destinations, never a credential), or "" for a file written
   * before identities (adopted only with dn_purger_options.adopt_any). */
  const char *identity;
} dn_outbox_entry;

/* Calls fn for every live entry of every outbox file in dir, without
 * changing anything (fn returns 0 to go on, anything else to stop and have
 * this return it). Torn or corrupt records are skipped and counted in
 * *corrupt (may be NULL). Returns 0, DN_EIO (dir unreadable; a missing dir
 * has no entries) or DN_ENOMEM. */
DN_EXTERN int dn_outbox_scan(const char *dir,
                             int (*fn)(void *ud, const dn_outbox_entry *e),
                             void *ud, size_t *corrupt, dn_error *err);

#define DN_OUTBOX_DROP_FAILED 1 /* drop failed entries */
#define DN_OUTBOX_DROP_ALL 2    /* drop pending and failed entries */

/* Drops entries from the files of dead processes (files a running purger
 * holds are left alone). *dropped (may be NULL) gets the count. Returns 0,
 * DN_EINVAL, DN_EIO or DN_ENOMEM. */
DN_EXTERN int dn_outbox_drop(const char *dir, int what, size_t *dropped,
                             dn_error *err);

/* ---- configuration from the environment or a JSON file ---------------- */

/* A CDN configuration: the profile for headers and purges, the purger and
 * its credentials, tunables and the outbox directory. See docs/
 * cdn-purge.md for every variable and key. Immutable once loaded;
 * thread-safe to read. */
typedef struct dn_cdn_config dn_cdn_config;

/* Loads the configuration: the JSON file at `path`, else the one named by
 * DONUT_CONFIG (if set), then the environment variables (DONUT_CDN,
 * DONUT_PURGER, DONUT_PURGE_URLS, DONUT_FASTLY_TOKEN, DONUT_FASTLY_SERVICE,
 * DONUT_CLOUDFLARE_TOKEN, DONUT_CLOUDFLARE_ZONE, DONUT_AKAMAI_EDGERC,
 * DONUT_AKAMAI_SECTION, ...), which override the file key by key. Akamai
 * credentials are read from the .edgerc file here. Returns 0, DN_EIO
 * (unreadable file), DN_EJSON (syntax; line and column in err),
 * DN_ECONFIG (a bad or missing setting; err names it, never its value
 * when it is a credential) or DN_ENOMEM. */
DN_EXTERN int dn_cdn_config_load(const char *path, dn_cdn_config **out,
                                 dn_error *err);

/* Parses a JSON configuration held in memory, with no environment
 * (`base_dir` resolves a relative .edgerc path; NULL = the current
 * directory). Same returns as dn_cdn_config_load. */
DN_EXTERN int dn_cdn_config_parse(const char *json, size_t len,
                                  const char *base_dir, dn_cdn_config **out,
                                  dn_error *err);

/* Frees a configuration; NULL is a no-op. */
DN_EXTERN void dn_cdn_config_free(dn_cdn_config *c);

/* The profile for response headers and purge keys. */
DN_EXTERN dn_cdn_profile dn_cdn_config_profile(const dn_cdn_config *c);

/* The purger's backend name, or NULL when none is configured. */
DN_EXTERN const char *dn_cdn_config_purger(const dn_cdn_config *c);

/* The outbox directory (DONUT_OUTBOX or "outbox"; else
 * $XDG_STATE_HOME/donut/outbox or ~/.local/state/donut/outbox), or NULL
 * when it is "none" or no home is known. Borrowed. */
DN_EXTERN const char *dn_cdn_config_outbox(const dn_cdn_config *c);

/* Writes a one-line description with every credential replaced by
 * "(set)", such as "cdn=fastly purger=fastly service=SVC token=(set)", into
 * out (cap bytes, NUL-terminated, truncated when too small). */
DN_EXTERN void dn_cdn_config_describe(const dn_cdn_config *c, char *out,
                                      size_t cap);

/* Creates the configured purger. Fields of opts that are zero take the
 * configuration's values (profile, outbox_dir, window and retry tunables);
 * opts may be NULL, and is read as by dn_purger_new (DN_EINVAL for options
 * not initialised with dn_purger_options_init). Returns DN_ENOTFOUND when
 * no purger is configured, or what the backend constructor and
 * dn_purger_new return. */
DN_EXTERN int dn_purger_new_from_config(const dn_cdn_config *c,
                                        const dn_purger_options *opts,
                                        dn_purger **out, dn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_PURGE_H */
