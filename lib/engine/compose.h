/* compose.h - what the get path's modules share: the context of one get,
 * store keys built on the stack, and the functions of store_io.c (store
 * reads and writes, prefetching, tag versions) and single_flight.c (renders,
 * single flight, leases) that compose.c calls.
 */
#ifndef DN_COMPOSE_H
#define DN_COMPOSE_H

#include "engine_internal.h"

#define MAX_RENDER_ATTEMPTS 3 /* renders of one shell while racing purges */
#define KEY_STACK 384         /* bytes of a store key built on the stack */

/* The chain of resources being composed, for cycle and depth checks. */
typedef struct dn__frame {
  const char *uri;
  size_t len;
  unsigned depth;
  const struct dn__frame *parent;
} dn__frame;

/* A value fetched ahead of need by one multi-get (see prefetch). */
typedef struct dn__prefetched {
  char *key;
  size_t len;
  dn_blob *val; /* NULL: the store had nothing */
  uint64_t seq; /* the invalidation sequence read with it */
} dn__prefetched;

/* One dn_engine_get (or put, or introspection read). */
typedef struct dn__getctx {
  dn_engine *e;
  const dn_request *req;
  unsigned flags;
  unsigned renders;
  dn_error *err;
  dn__vec pre;           /* prefetched, taken by the first read of each key */
  unsigned stale_served; /* views served stale during a soft regeneration */
  /* A sequence read before any other read of this get, in its own round
   * trip: the only one a shared store's view may be stamped with after its
   * tags were checked (a multi-get returns the sequence and the tags in no
   * guaranteed order). 0: none was read. */
  uint64_t stamp_seq;
  int store_rc; /* the last failed store write (put reports it) */
} dn__getctx;

#define GETCTX(e, req, flags, err)                                             \
  {                                                                            \
    (e), (req), (flags), 0, (err), {NULL, 0, 0, sizeof(dn__prefetched)}, 0, 0, \
        0                                                                      \
  }

typedef struct dn__key {
  dn__buf b;
  char mem[KEY_STACK];
} dn__key;

#define TAGS_STALE 0   /* a tag changed or is gone, or the store cannot say */
#define TAGS_CURRENT 1 /* every tag still has its recorded version */
#define TAGS_SOFT 2    /* only soft invalidations, still within their grace */

/* ---- store_io.c --------------------------------------------------------- */

/* Builds "<prefix>:<kind>:<body>" on the stack (heap beyond KEY_STACK). */
int dn__key_make(dn_engine *e, dn__key *k, char kind, const char *body,
                 size_t len);
dn_slice dn__key_slice(const dn__key *k);

/* Counts and logs a store failure (reads of a failing store are misses). */
void dn__store_failed(dn_engine *e, int rc, const char *what);

/* Prefetching (shared stores only): fetch records with their remembered
 * tag keys in one round trip; reads take them from the context first. */
void dn__prefetch_records(dn__getctx *c, const dn_slice *recs, size_t n);
void dn__pre_clear(dn__getctx *c);
void dn__remember_tags(dn_engine *e, dn_slice rec, const dn__tagver *tags,
                       size_t n, uint64_t seq);

/* TAGS_CURRENT, TAGS_SOFT or TAGS_STALE for recorded tag versions. */
int dn__tags_current(dn__getctx *c, const dn__tagver *tags, size_t n);
/* Fills the tags' current versions after a render that began at sequence
 * g0, creating missing ones, and says whether it raced an invalidation. */
int dn__snapshot_tags(dn_engine *e, dn__tagver *tags, size_t n, uint64_t g0,
                      int *raced);

/* Reads the record at k (following a vary stub); *out NULL on a miss. */
int dn__read_record(dn__getctx *c, dn__key *k, int is_view, dn_blob **out,
                    uint64_t *seq);
/* A valid cached shell of uri, or *out = NULL. */
int dn__load_shell(dn__getctx *c, const char *uri, size_t len, dn_blob **out);
/* Stores a record (or a vary stub plus the variant); returns the store's
 * error, which a get ignores and a put reports. */
int dn__store_record(dn__getctx *c, char kind, const char *uri, size_t len,
                     dn_blob *rec, const dn_slice *vary, size_t nvary,
                     const dn__tagver *tags, size_t ntags, uint64_t valid_seq,
                     uint64_t ttl_ms);
/* The store TTL of a record that expires at expires_ms and may be served
 * stale for grace_s more seconds. */
uint64_t dn__store_ttl_ms(dn_engine *e, uint64_t expires_ms, uint32_t grace_s);
int dn__expired(dn_engine *e, uint64_t expires_ms);
/* RFC 9111 §3: whether a shell with these headers may be kept. */
int dn__storable_headers(const dn__shell *s);

/* ---- single_flight.c-------------------------------------------------------
 */

/* The shell of uri: one render per key in this process, one across
 * processes through the store lease. */
int dn__produce_shell(dn__getctx *c, const char *uri, size_t len,
                      dn_blob **out);
/* Runs uri's renderer (again while it races invalidations); *stored says
 * whether the shell was stored. */
int dn__run_renderer(dn__getctx *c, const char *uri, size_t len, int cacheable,
                     dn_blob **out, int *stored);

#endif
