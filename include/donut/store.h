/* donut/store.h - where the engine keeps its state, and reference-counted
 * blobs.
 *
 * The engine keeps shells, views, tag versions, leases and dependency
 * records in a store. A store is a versioned table of functions
 * (dn_store_ops) plus its private state, in the manner of SQLite's VFS: the
 * in-process memory store is the default, memcached and redis share state
 * between processes and machines, and the null store caches nothing.
 *
 * Values are dn_blob objects: immutable, reference-counted bytes. A store
 * that keeps values in memory hands out references, so a cache hit copies
 * nothing.
 */
#ifndef DONUT_STORE_H
#define DONUT_STORE_H

#include "donut/common.h"
#include "donut/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- blobs ---------------------------------------------------------------
 */
typedef struct dn_blob dn_blob;

/* Creates a blob holding a copy of len bytes. Returns 0 or DN_ENOMEM. The
 * new blob has one reference, owned by the caller. */
DN_EXTERN int dn_blob_new(const void *data, size_t len, dn_blob **out);
/* Adds a reference and returns the blob. Thread-safe. */
DN_EXTERN dn_blob *dn_blob_ref(dn_blob *b);
/* Drops a reference; the last one frees the blob. NULL is a no-op. */
DN_EXTERN void dn_blob_unref(dn_blob *b);
/* The bytes (borrowed, valid while a reference is held) and their count. */
DN_EXTERN const char *dn_blob_data(const dn_blob *b);
DN_EXTERN size_t dn_blob_len(const dn_blob *b);

/* ---- the store interface --------------------------------------------------
 */
#define DN_STORE_OPS_VERSION 1

/* set() modes */
#define DN_STORE_SET 0 /* store unconditionally */
#define DN_STORE_ADD 1 /* store only if absent, else DN_EEXIST */

typedef struct dn_store_stats {
  uint64_t items;       /* values held (0 when unknown) */
  uint64_t bytes;       /* bytes accounted, keys and overhead included */
  uint64_t limit_bytes; /* the budget (0 when none or unknown) */
  uint64_t hits;        /* keys found by get_multi */
  uint64_t misses;      /* keys not found */
  uint64_t evictions;   /* values dropped to stay within the budget */
  uint64_t errors;      /* failed operations (unreachable, timeouts) */
  uint64_t corrupt;     /* values rejected as corrupt or foreign */
  uint64_t round_trips; /* network round trips (0 for in-process stores) */
  /* Requests sent again on a fresh connection after a pooled one was
   * found closed (an idle timeout on the server, a restarted server). */
  uint64_t reconnects;
} dn_store_stats;

typedef struct dn_store_ops {
  /* DN_STORE_OPS_VERSION. Methods are only ever added at the end; a store
   * of an older version has the methods of its version and no later. */
  int version;
  /* A unique, stable name such as "memory", "memcached", "redis". */
  const char *name;

  /* Reads n keys in one round trip. out[i] receives an owned reference or
   * NULL for a miss. When seq is not NULL it also receives the current
   * invalidation sequence (see seq_bump), read in the same round trip.
   * Returns 0 even when keys miss; an unreachable store returns
   * DN_ESTORE/DN_ETIMEDOUT with every out[i] NULL. */
  int (*get_multi)(void *self, const dn_slice *keys, size_t n, dn_blob **out,
                   uint64_t *seq);
  /* Stores a value, keeping its own reference. ttl_ms 0 means no expiry.
   * mode DN_STORE_ADD fails with DN_EEXIST when the key exists. A value
   * over the store's item limit gives DN_ETOOBIG and stores nothing. */
  int (*set)(void *self, dn_slice key, dn_blob *value, uint64_t ttl_ms,
             int mode);
  /* Stores n values in as few round trips as possible (mode DN_STORE_SET).
   * Returns the first error; values before it may have been stored. */
  int (*set_multi)(void *self, const dn_slice *keys, dn_blob *const *values,
                   size_t n, uint64_t ttl_ms);
  /* Removes a key. Removing a missing key is not an error. */
  int (*del)(void *self, dn_slice key);

  /* The invalidation sequence: a 64-bit number that grows by one with each
   * invalidation (seq_bump returns the new value). It starts at a random
   * value, and if the store loses it, it starts again at a new random
   * value; the engine treats any decrease as "everything may have
   * changed". */
  int (*seq_get)(void *self, uint64_t *out);
  int (*seq_bump)(void *self, uint64_t *out);

  /* A set of members under a key, used for the reverse-dependency index
   * (which resources embed a URI). Optional: NULL means DN_ENOTSUP. */
  int (*index_add)(void *self, dn_slice key, dn_slice member, uint64_t ttl_ms);
  int (*index_members)(void *self, dn_slice key, dn_strings *out);

  /* Fills counters; optional. */
  int (*stats)(void *self, dn_store_stats *out);
  /* Frees the store's state. */
  void (*destroy)(void *self);

  /* DN_STORE_F_* capabilities. */
  unsigned flags;
} dn_store_ops;

/* The store's state lives in this process: seq_get costs no round trip and
 * every writer is in this process, so the engine may keep a per-thread
 * cache of validated views in front of it (checked against the sequence
 * on every hit). Shared stores must not set it. */
#define DN_STORE_F_LOCAL 1u
/* The store keeps nothing (the null store): nothing may be served from
 * anywhere but a fresh render, so the engine keeps no view cache either. */
#define DN_STORE_F_KEEPS_NOTHING 2u

typedef struct dn_store dn_store;

/* Wraps a custom implementation. `ops` must outlive the store; `self` is
 * passed to every method and given to ops->destroy by dn_store_free.
 * Returns 0, DN_EINVAL (missing required methods or version < 1) or
 * DN_ENOMEM; on failure `self` is not destroyed. */
DN_EXTERN int dn_store_new(const dn_store_ops *ops, void *self, dn_store **out);
/* Destroys a store and its state; NULL is a no-op. */
DN_EXTERN void dn_store_free(dn_store *store);
/* The store's name ("memory", ...). */
DN_EXTERN const char *dn_store_name(const dn_store *store);
/* Counters; DN_ENOTSUP when the store keeps none. */
DN_EXTERN int dn_store_stats_get(dn_store *store, dn_store_stats *out);

/* Options of the in-process memory store. Initialise with
 * dn_store_memory_options_init, then set fields; new fields are only ever
 * added at the end (see "Options structs" in donut/common.h). */
typedef struct dn_store_memory_options {
  /* sizeof(dn_store_memory_options) as the program was compiled, set by
   * dn_store_memory_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  size_t max_bytes; /* budget including keys and overhead; 0 = 64 MiB */
  unsigned shards;  /* lock shards, rounded up to a power of two; 0 = 16 */
  /* Clock for expiry in milliseconds; NULL = the monotonic clock, read at
   * tick resolution (CLOCK_MONOTONIC_COARSE) where that is 10 ms or finer. */
  uint64_t (*now_ms)(void *ud);
  void *clock_ud;
} dn_store_memory_options;

#define DN_STORE_MEMORY_DEFAULT_BYTES ((size_t)64 << 20)

/* Fills the first `size` bytes of opts with the defaults (every field
 * zero) and sets opts->size to `size`; use the macro, which passes
 * sizeof *opts. */
DN_EXTERN void dn_store_memory_options_init_size(dn_store_memory_options *opts,
                                                 size_t size);
#define dn_store_memory_options_init(opts)                                     \
  dn_store_memory_options_init_size((opts), sizeof *(opts))

/* Creates the in-process memory store: byte-budgeted, evicting the least
 * recently used (second chance), thread-safe with sharded locks, O(1) get
 * and set. `opts` may be NULL. Returns 0 and an owned store in *out (free
 * it with dn_store_free), DN_EINVAL (out is NULL, shards > 1024, opts not
 * initialised with dn_store_memory_options_init, or from a newer header
 * and setting fields this libdonut does not know) or
 * DN_ENOMEM. Every method is thread-safe; a custom now_ms must be
 * thread-safe and must not call into the store. Values are held by
 * reference; an item over max_bytes/8 gives DN_ETOOBIG. See
 * docs/stores.md. */
DN_EXTERN int dn_store_memory_new(const dn_store_memory_options *opts,
                                  dn_store **out);

/* Creates the null store: every read misses and every write succeeds
 * without keeping anything (like Rails' NullStore). */
DN_EXTERN int dn_store_null_new(dn_store **out);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_STORE_H */
