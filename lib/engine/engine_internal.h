/* engine_internal.h - what the engine's modules share: the engine, the
 * render context, renderers and the single-flight table. */
#ifndef DN_ENGINE_INTERNAL_H
#define DN_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "buf.h"
#include "donut/engine.h"
#include "donut/uri.h"
#include "record.h"
#include "store.h"
#include "vec.h"

typedef struct dn__renderer {
  char *pattern; /* normalised, without a trailing '*' or query template */
  size_t pattern_len;
  int prefix; /* 1 when the pattern ended in '*' */
  char *name;
  dn_render_fn fn;
  void *ud;
  atomic_uint_fast64_t renders;
} dn__renderer;

typedef struct dn__listener {
  dn_invalidate_fn fn;
  void *ud;
} dn__listener;

/* One render in progress, shared by the threads that wait for it. */
typedef struct dn__flight {
  struct dn__flight *next;
  char *key;
  size_t key_len;
  pthread_cond_t done_cv;
  int done;
  int waiters;
  int rc;
  dn_blob *shell; /* the result, one reference held by the flight */
  int stored;     /* whether the result was stored (not raced) */
  char msg[160];
} dn__flight;

#define DN__FLIGHT_BUCKETS 64

struct dn_engine {
  dn_store *store;
  uint64_t id; /* identity in per-thread caches (thread_cache.c) */
  int local;   /* the store lives in this process (DN_STORE_F_LOCAL) */
  int hot;     /* use the per-thread view cache (thread_cache.c) */
  struct dn__hints *hints;       /* tags of records seen (shared stores only) */
  atomic_uint_fast64_t last_seq; /* invalidation sequence last read */
  int owns_store;
  char *prefix;
  size_t prefix_len;
  dn_clock_fn now_ms;
  void *clock_ud;
  unsigned max_depth;
  uint64_t default_ttl_s;
  uint64_t lease_ms;
  uint64_t soft_grace_ms;
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
  dn__vec renderers; /* dn__renderer* */
  dn__vec listeners; /* dn__listener */
  pthread_mutex_t flight_mu;
  dn__flight *flights[DN__FLIGHT_BUCKETS];
  struct {
    atomic_uint_fast64_t gets, hits, misses, recomposes, renders, purges,
        invalidations, store_errors, raced_renders, coalesced_waits,
        stale_served;
  } st;
};

typedef struct dn__rhdr {
  char *name;
  char *value;
} dn__rhdr;

typedef struct dn__rhole {
  char *uri;
  size_t len;
  char *alt; /* normalised fallback, or NULL */
  size_t alt_len;
  uint64_t offset;
  int flags;
} dn__rhole;

typedef struct dn__param {
  char *name;
  char *value;
} dn__param;

struct dn_render {
  dn_engine *e;
  char *uri; /* normalised, owned */
  size_t uri_len;
  const dn_request *req;
  int cacheable; /* the output may be stored: header reads need vary */
  int put_mode;
  int failed;
  int fail_code;
  char fail_msg[160];
  int status;
  dn__buf body;
  dn__vec headers; /* dn__rhdr */
  dn__vec holes;   /* dn__rhole */
  dn__vec tags;    /* char* */
  dn__vec vary;    /* char*, lower-cased */
  dn__vec params;  /* dn__param, parsed on first use */
  int params_parsed;
  int64_t ttl_s;
  int64_t smaxage_s;
  uint32_t swr_s, sie_s; /* RFC 5861 stale windows */
  uint64_t expires_at_ms;
  int uncacheable;
  char uri_tag[DN_URI_TAG_MAX + 1];
};

/* render_context.c */
int dn__render_init(dn_render *r, dn_engine *e, const char *uri, size_t len,
                    const dn_request *req, int cacheable);
void dn__render_free(dn_render *r);
/* Describes a finished render as a shell record. The tag list starts with
 * the URI tag; versions are left 0 for the caller to fill. The three vecs
 * own the arrays the shell points to (free them with dn__vec_free); vary
 * names are left to the caller. */
int dn__render_to_shell(dn_render *r, uint64_t now_ms, dn__shell *s,
                        dn__vec *tagvers, dn__vec *hdrs, dn__vec *holes);
/* Thread-local marker: non-zero while this thread runs a renderer. */
extern _Thread_local int dn__in_render;

/* engine.c helpers used by other engine modules */
uint64_t dn__engine_now(dn_engine *e);
/* Builds "<prefix>:<kind>:<body>" into b. */
int dn__engine_key(dn_engine *e, dn__buf *b, char kind, const char *body,
                   size_t len);
/* compose.c: reads the record of uri (shell or view) for introspection,
 * following a vary stub with an empty request. *valid says whether it is
 * still fresh. *out is NULL when nothing is cached. */
int dn__engine_read(dn_engine *e, const char *uri, size_t len, int is_view,
                    dn_blob **out, int *valid);
void dn__engine_log(dn_engine *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
