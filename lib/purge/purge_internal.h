/* purge_internal.h - the purger's pieces, shared by the files of
 * lib/purge.
 *
 * purge.c holds the public calls, purge_queue.c the queue and draining,
 * purge_hooks.c the log, clock and randomness, purge_loop.c what runs on
 * the loop thread (batches, jobs, retries, reports), purge_transport.c one
 * request on the wire (over lib/client/curl_loop.c), purge_ledger.c and
 * purge_outbox.c the ledger of pending and failed purges and its files,
 * purge_req.c the request builder, and backends/ the backends.
 *
 * Calls between these files go one way, downwards: purge.c calls
 * purge_loop.c, which calls purge_transport.c; those call purge_queue.c,
 * purge_hooks.c, purge_ledger.c (which calls purge_outbox.c) and
 * purge_req.c, and none of these calls back up. What goes up (a request
 * that ended, a loop that has closed) goes through callbacks.
 */
#ifndef DN_PURGE_INTERNAL_H
#define DN_PURGE_INTERNAL_H

#include <curl/curl.h>
#include <stdarg.h>
#include <uv.h>

#include "buf.h"
#include "curl_loop.h"
#include "donut/purge.h"
#include "options.h"
#include "vec.h"

/* ---- string lists ------------------------------------------------------- */

/* Byte strings in one arena: offsets into `bytes`, so appending never
 * invalidates earlier items until slices are taken. */
typedef struct dn__strlist {
  dn__buf bytes;
  dn__vec spans; /* dn__span */
} dn__strlist;

typedef struct dn__span {
  size_t off, len;
} dn__span;

void dn__strlist_init(dn__strlist *l);
void dn__strlist_free(dn__strlist *l);
size_t dn__strlist_count(const dn__strlist *l);
dn_slice dn__strlist_at(const dn__strlist *l, size_t i);
/* Appends a copy; all or nothing. 0 or DN_ENOMEM. */
int dn__strlist_add(dn__strlist *l, const char *s, size_t len);
/* Like dn__strlist_add, with a NUL stored after the item, so the slice's
 * pointer is a C string. */
int dn__strlist_add_z(dn__strlist *l, const char *s, size_t len);
/* Appends every item of src; all or nothing. */
int dn__strlist_add_all(dn__strlist *l, const dn__strlist *src);
/* Sorts the items and removes duplicates (in place). 0 or DN_ENOMEM. */
int dn__strlist_dedup(dn__strlist *l);
/* An owned array of slices into l (NULL when empty); 0 or DN_ENOMEM. */
int dn__strlist_slices(const dn__strlist *l, dn_slice **out);
/* Moves src into dst (dst must be freed or fresh); src becomes empty. */
void dn__strlist_move(dn__strlist *dst, dn__strlist *src);

/* ---- requests ----------------------------------------------------------- */

typedef struct dn__field {
  char *name;
  char *value;
  int secret;
} dn__field;

struct dn_purge_req {
  char method[32];
  char *url;
  dn__vec fields; /* dn__field */
  char *body;
  size_t body_len;
  int has_body;
  dn__vec secrets; /* char *: more text to redact (not sent) */
};

void dn__purge_req_init(dn_purge_req *r);
void dn__purge_req_reset(dn_purge_req *r);
/* Replaces every secret found in text (NUL-terminated, at most cap bytes
 * with the NUL) by "(redacted)": secret header values, each of their
 * whitespace-separated words of 8 bytes or more (the token of "Bearer
 * <token>"), and the strings given to dn_purge_req_add_secret. */
void dn__purge_req_redact(const dn_purge_req *r, char *text, size_t cap);
/* "scheme://host[:port]" of url, without user info, path or query. */
void dn__purge_url_label(const char *url, char *out, size_t cap);
/* Appends " scheme://host[:port]/path" of url (no user info, no query) to
 * the NUL-terminated text in out (cap bytes), truncating. */
void dn__purge_url_destination(const char *url, char *out, size_t cap);

/* Sets req's body to {"<field>":[k0,k1,...]} with as many keys from the
 * start of keys as fit in max_count (0 = any) and max_bytes (0 = any);
 * *used gets their number. Returns 0, DN_ETOOBIG (not even one key fits)
 * or DN_ENOMEM. */
int dn__purge_json_keys(dn_purge_req *req, const char *field,
                        const dn_slice *keys, size_t n, size_t max_count,
                        size_t max_bytes, size_t *used);
/* Copies a config string for a backend; NULL stays NULL. */
int dn__purge_strdup(const char *s, char **out);
/* Checks that s is a non-empty http:// or https:// URL. */
int dn__purge_check_url(const char *what, const char *s, dn_error *err);
/* Joins base (trailing '/' dropped) and path into an owned string. */
char *dn__purge_join(const char *base, const char *path);

/* ---- the ledger: pending and failed purges, in memory and on disk ----- */

typedef struct dn__ledger dn__ledger;

typedef struct dn__entry {
  uint64_t id;
  int state; /* DN_OUTBOX_PENDING / DN_OUTBOX_FAILED; 0 = gone */
  uint64_t created_ms;
  unsigned attempts;
  char error[200];
  dn__strlist tags;
  dn__strlist uris;
} dn__entry;

/* Opens the ledger. With a directory: creates it when missing, creates
 * this process's file (locked) and adopts the files of dead processes,
 * whose live entries are copied into it. Without (dir NULL): memory only.
 * Returns 0, DN_EIO (reason in err) or DN_ENOMEM. */
int dn__ledger_open(const char *dir, dn__ledger **out, size_t *adopted,
                    dn_error *err);
/* The same, for a purger of `identity` (NULL: none written, any adopted):
 * its file starts with a hello record naming it, and only files of the
 * same identity are adopted, unless `any`. */
int dn__ledger_open_as(const char *dir, const char *identity, int any,
                       dn__ledger **out, size_t *adopted, dn_error *err);
/* Closes the file (its entries stay for the next process) and frees. */
void dn__ledger_close(dn__ledger *l);
/* 1 when the ledger writes a file. */
int dn__ledger_durable(const dn__ledger *l);
/* Records a pending entry and fsyncs; when supersede is given, those ids
 * are acknowledged in the same write (their tags are part of this one).
 * Returns 0, DN_EIO (the entry is still recorded in memory) or
 * DN_ENOMEM (nothing recorded). */
int dn__ledger_put(dn__ledger *l, const dn__strlist *tags,
                   const dn__strlist *uris, uint64_t now_ms,
                   const uint64_t *supersede, size_t nsupersede, uint64_t *id);
/* Forgets delivered entries; compacts the file when nothing is left. */
int dn__ledger_ack(dn__ledger *l, const uint64_t *ids, size_t n);
/* Marks entries failed with the error text. */
int dn__ledger_fail(dn__ledger *l, const uint64_t *ids, size_t n,
                    unsigned attempts, const char *error);
/* Marks failed entries pending again. */
int dn__ledger_retry(dn__ledger *l, const uint64_t *ids, size_t n);
/* Calls fn for every entry in `state` (under the ledger's lock; fn must
 * not call back into the ledger). */
void dn__ledger_each(dn__ledger *l, int state,
                     void (*fn)(void *ud, const dn__entry *e), void *ud);
size_t dn__ledger_count(dn__ledger *l, int state);

/* ---- outbox records (purge_outbox.c) ----------------------------------
 * One record per line: 16 hex digits of XXH64 over the JSON text, a
 * space, the JSON text, '\n'. A line whose checksum or JSON does not hold
 * (a torn last write, a flipped bit) is skipped and counted. */

/* Entries sorted by id: a dn__vec of dn__entry pointers. */
dn__entry *dn__entry_new(uint64_t id, uint64_t created_ms);
void dn__entry_free(dn__entry *e);
/* Index of id in v, or where it would go; returns 1 when found. */
int dn__entries_find(const dn__vec *v, uint64_t id, size_t *pos);
/* Inserts e (its id not present); 0 or DN_ENOMEM. */
int dn__entries_insert(dn__vec *v, dn__entry *e);
void dn__entries_free(dn__vec *v);

/* Appends the record lines for a put (and a fail when e has failed). */
int dn__outbox_encode_entry(dn__buf *out, const dn__entry *e);
/* Room for an identity, "backend=NAME profile=NAME targets=HEX16". */
#define DN__IDENTITY_MAX 160
/* Appends the "hello" record that opens a file: who writes it. */
int dn__outbox_encode_hello(dn__buf *out, const char *identity);
/* When data starts with a valid hello record, copies its identity into
 * out and returns the record's length; else returns 0 with out "". */
size_t dn__outbox_identity(const char *data, size_t len, char *out, size_t cap);
/* Appends an "ack", "fail" or "retry" record for ids. */
int dn__outbox_encode_ids(dn__buf *out, const char *op, const uint64_t *ids,
                          size_t n, unsigned attempts, const char *error);
/* Applies the records in data to v; *corrupt (may be NULL) counts bad
 * lines. Returns 0 or DN_ENOMEM. */
int dn__outbox_apply(dn__vec *v, const char *data, size_t len, size_t *corrupt);
/* Replays outbox bytes into a fresh set and frees it (fuzzing, tests). */
int dn__outbox_replay_buf(const char *data, size_t len, size_t *entries,
                          size_t *corrupt);

/* File helpers. */
int dn__outbox_read_fd(int fd, char **data, size_t *len);
int dn__outbox_write_all(int fd, const char *p, size_t n);
void dn__outbox_sync_dir(const char *dir);
/* 1 when name is an outbox file ("outbox-<pid>-<hex>.log"); *pid set. */
int dn__outbox_file_name(const char *name, long *pid);

/* ---- the purger ---------------------------------------------------------- */

typedef struct dn__batch dn__batch;
typedef struct dn__job dn__job;

/* What waits for the window: tags, URIs and the ledger ids of entries
 * already recorded. */
typedef struct dn__queue {
  dn__strlist tags;
  dn__strlist uris;
  dn__vec ids;  /* uint64_t */
  size_t fresh; /* items queued without a ledger record */
} dn__queue;

struct dn_purger {
  dn_purge_backend backend;
  dn_purger_options o;
  char *outbox_dir;
  dn__ledger *ledger;

  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  uv_thread_t thread;
  uv_thread_t loop_thread; /* set on the loop thread when it starts */
  int loop_thread_known;

  uv_async_t wake;
  uv_timer_t window;
  dn__curl_loop curl;
  int handles_open; /* handles (the curl loop counts as one) not yet closed */
  void (*released)(dn_purger *p); /* frees p once closed on a caller's loop */
  int works;                      /* threadpool requests in flight */

  /* Under `lock`: the queue, the flags, the stats. */
  uv_mutex_t lock;
  uv_cond_t idle_cond;
  dn__queue queue;
  int stop, flush_now, retry_failed, window_running;
  unsigned active; /* batches formed and not settled */
  dn_purger_stats stats;

  /* Loop thread only. */
  dn__batch *batches;          /* active batches */
  dn__job *jobs;               /* every job, for closing */
  dn__job *ready, *ready_tail; /* jobs waiting for a request slot */
  unsigned inflight;
  int closing;
  uint64_t serial;
};

#define DN__BODY_KEEP 512 /* response bytes kept for error messages */

/* ---- one request on the wire (purge_transport.c), loop thread only ---- */

/* status is the response's, or 0 when res is not CURLE_OK. */
typedef void (*dn__purge_http_done)(void *ud, CURLcode res, int status);

typedef struct dn__purge_http {
  dn__curl_loop *cl;
  CURL *easy; /* while the request is in flight */
  struct curl_slist *hdrs;
  dn__purge_http_done done;
  void *ud;
  char body[DN__BODY_KEEP + 1]; /* the start of the response body */
  size_t body_len;
  char retry_after[64];
  char curl_err[CURL_ERROR_SIZE];
} dn__purge_http;

/* Sends req over cl with these timeouts; req must stay as it is until the
 * request ends. done(ud, ...) runs on the loop thread when it ends, never
 * from within this call; h then holds the start of the body and the
 * Retry-After value. Returns 0, DN_ENOMEM, DN_EINVAL or DN_ESTATE (cl is
 * closing); a failed call leaves nothing in flight and done never runs. */
int dn__purge_http_start(dn__purge_http *h, dn__curl_loop *cl,
                         const dn_purge_req *req, uint64_t timeout_ms,
                         uint64_t connect_timeout_ms, dn__purge_http_done done,
                         void *ud);
/* Cancels h's request, if one is in flight; done does not run. */
void dn__purge_http_abort(dn__purge_http *h);
/* RFC 9110 §10.2.3: the delay Retry-After asks for, in ms, or -1. */
int64_t dn__purge_retry_after_ms(const char *value, uint64_t now_ms);

/* One request of a batch to one target, retried on its own. */
struct dn__job {
  dn_purger *p;
  dn__batch *b;
  dn__job *next;          /* ready FIFO */
  dn__job *anext, *aprev; /* all jobs */
  size_t target, first, count;
  unsigned attempt; /* requests made */
  dn_purge_req req;
  int have_req;
  dn__purge_http http;
  char label[160];
  char error[256];
  int status;
  uv_timer_t timer;
  int timer_inited;
};

/* Loop side (purge_loop.c). */
/* Creates the loop's handles; on a caller's loop, released(p) runs once
 * they are all closed. 0 or DN_ESTATE, and then nothing is left open. */
int dn__purge_loop_init(dn_purger *p, void (*released)(dn_purger *p));
/* Starts closing every handle (loop thread). */
void dn__purge_loop_close(dn_purger *p);

/* Hooks (purge_hooks.c): the options' callbacks, or their defaults. */
void dn__purge_log(dn_purger *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t dn__purge_now(dn_purger *p);
void dn__purge_random(dn_purger *p, void *buf, size_t n);

/* The queue (purge_queue.c). */
void dn__queue_init(dn__queue *q);
void dn__queue_free(dn__queue *q);
int dn__queue_empty(const dn__queue *q);
/* Appends src to dst; all or nothing. 0 or DN_ENOMEM. */
int dn__queue_merge(dn__queue *dst, const dn__queue *src);
/* Queues the entries of the ledger in `state` (pending at start, failed
 * on a retry, which marks them pending first). 0 or DN_ENOMEM. */
int dn__purge_requeue(dn_purger *p, int state);
/* Signals waiters of dn_purger_drain when nothing is left (under lock). */
void dn__purge_check_idle(dn_purger *p);

/* ---- EdgeGrid and .edgerc -------------------------------------------- */

/* Signs a request (EdgeGrid v1, EG1-HMAC-SHA256) and writes the whole
 * Authorization value into out. host is "host[:port]" as sent, path
 * includes the query. Returns 0, DN_ETOOBIG (out too small) or DN_EINVAL
 * (a crypto call failed). */
int dn__edgegrid_sign(const char *client_token, const char *client_secret,
                      const char *access_token, size_t max_body,
                      const char *method, const char *scheme, const char *host,
                      const char *path, const char *body, size_t body_len,
                      const char *timestamp, const char *nonce, char *out,
                      size_t cap);
/* "yyyyMMddTHH:mm:ss+0000" for ms since the epoch (UTC). */
void dn__edgegrid_timestamp(uint64_t now_ms, char out[24]);

/* Reads the caller's purger options (NULL: the defaults) into *out, as
 * dn_purger_new does. Returns 0 or DN_EINVAL (err says why). */
int dn__purger_options_read(const dn_purger_options *opts,
                            dn_purger_options *out, dn_error *err);

/* Parses .edgerc text; see dn_purge_akamai_edgerc. */
int dn__edgerc_parse(const char *text, size_t len, const char *section,
                     dn_purge_akamai_options *out, char **buf, dn_error *err);

#endif
