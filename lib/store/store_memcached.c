/* store_memcached.c - the memcached store, over libmemcached.
 *
 * Each call borrows a libmemcached handle from a memcached_pool (from
 * libmemcachedutil), so many threads share one store. Keys are placed on
 * servers by libmemcached's ketama distribution. get_multi is one
 * memcached_mget (the sequence key rides along); the invalidation
 * sequence lives under "<ns>:seq" as the decimal text that memcached's
 * incr works on, created with add so that two processes racing to
 * recreate a lost sequence agree on one value.
 *
 * set_multi is pipelined through a second pool whose handles buffer
 * requests: libmemcached writes the sets back to back without waiting, and
 * one touch of a key that never exists on each server involved then reads
 * every pending reply. libmemcached has no call that only drains replies;
 * the touch is the smallest request that does, and it makes set_multi
 * return only after the servers have applied every set, so a read that
 * follows (on any connection) sees them. Per-item failures that memcached
 * reports while draining (out of memory, object too large) are not
 * surfaced by libmemcached; memcached then drops the old value, so such an
 * item reads as a miss, never as stale data.
 *
 * Batches stay small (MC_BATCH_ITEMS, MC_BATCH_BYTES) and the buffered
 * handles' I/O watermarks are raised well above them: when more than about
 * 64 KiB of buffered sets are outstanding, libmemcached 1.1.4 "purges"
 * replies in the middle of a write and can then write to a closed socket,
 * which trips an assert() (an abort) in Debian's build. With these limits
 * the purge never runs.
 *
 * Servers are never ejected from the ketama ring: when one fails, its keys
 * fail (reads miss, writes return errors) and libmemcached retries it after
 * retry_ms, instead of moving its keys to another server where stale
 * copies could survive the failed server's return.
 *
 * A connection that the server closed while idle (memcached -o
 * idle_timeout) or that died with a restarted server fails only when it is
 * next used. libmemcached 1.1 then closes the socket, but only a failed
 * connect puts the server in its retry_timeout, never a broken
 * established TCP connection (quit.cc: memcached_quit_server marks the
 * server for timeout on I/O death only over UDP). So every operation sends
 * its request once more on the same handle when it fails at the
 * connection level (mc_conn_lost): the handle connects afresh, and the
 * caller sees neither the failure nor a retry window. When the server is
 * really down, the connect fails, and libmemcached's retry_timeout starts
 * as before.
 *
 * The server list is split by libmemcached's memcached_servers_parse();
 * the checks it lacks are at the end of this file, with the constructor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/pool.h>

#include "alloc.h"
#include "error.h"
#include "store.h"
#include "store_codec.h"

/* A set_multi pipeline waits for replies after this many sets or bytes. */
#define MC_BATCH_ITEMS 256
#define MC_BATCH_BYTES ((size_t)1 << 20)

/* memcached treats expirations above 30 days as absolute Unix times. */
#define MC_RELATIVE_MAX (30 * 24 * 3600)

typedef struct mc_store {
  dn__shared_conf conf;
  dn__shared_counters ctr;
  dn__zcache zc;
  int zc_ready;
  memcached_st *master, *bmaster;
  memcached_pool_st *pool, *bpool;
  char seq_key[DN__SKEY_MAX + 1];
  size_t seq_len;
} mc_store;

static int mc_err(memcached_return_t r) {
  switch (r) {
  case MEMCACHED_TIMEOUT:
    return DN_ETIMEDOUT;
  case MEMCACHED_E2BIG:
    return DN_ETOOBIG;
  case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
    return DN_ENOMEM;
  default:
    return DN_ESTORE;
  }
}

static int mc_fail(mc_store *s, memcached_return_t r) {
  DN__COUNT(&s->ctr, errors, 1);
  return mc_err(r);
}

/* A failure of the connection rather than an answer of the server: the
 * connection was closed or reset, or a read or write on it failed. Not a
 * timeout (a slow server may yet apply the request; resending would double
 * the wait), not a miss, NOT_STORED or an error reply. A failed connect
 * also gives MEMCACHED_CONNECTION_FAILURE; its resend then meets
 * MEMCACHED_SERVER_TEMPORARILY_DISABLED at once, without touching the
 * network. */
static int mc_conn_lost(memcached_return_t r) {
  switch (r) {
  case MEMCACHED_CONNECTION_FAILURE:
  case MEMCACHED_WRITE_FAILURE:
  case MEMCACHED_READ_FAILURE:
  case MEMCACHED_UNKNOWN_READ_FAILURE:
  case MEMCACHED_PARTIAL_READ:
  case MEMCACHED_ERRNO:
    return 1;
  default:
    return 0;
  }
}

/* Whether to send a request once more after r: only after a lost
 * connection, and once per call (see the top). The handle reconnects by
 * itself on the resend.
 *
 * Resending is safe for every request in this file: get, set, delete and
 * touch give the same result when applied twice. incr of the sequence may
 * be applied twice when the reply, not the request, was lost; the
 * sequence then moves on by 2, which the engine cannot tell from two bumps
 * (it only needs it to move forward). add (leases, first tag versions,
 * the sequence) may then find its own value and answer NOT_STORED: mc_set
 * reads the value back and counts its own as stored, and mc_seq_create
 * reads the sequence back, as it does after losing a race. */
static int mc_retry(mc_store *s, memcached_return_t r, int *retried) {
  if (*retried || !mc_conn_lost(r))
    return 0;
  *retried = 1;
  DN__COUNT(&s->ctr, reconnects, 1);
  return 1;
}

static time_t mc_exptime(uint64_t ttl_ms) {
  if (ttl_ms == 0)
    return 0;
  uint64_t secs = ttl_ms / 1000 + (ttl_ms % 1000 != 0);
  if (secs <= MC_RELATIVE_MAX)
    return (time_t)secs;
  /* Beyond 30 days memcached wants an absolute time: use our clock. The
   * protocol carries a signed 32-bit number, so the far future is 2038. */
  uint64_t at = (uint64_t)time(NULL) + secs;
  return (time_t)(at > (uint64_t)INT32_MAX ? INT32_MAX : at);
}

/* libmemcached 1.1's memcached_clone() copies the distribution but not
 * the "weighted" flag of weighted ketama, so a clone (every handle in a
 * memcached_pool is one) builds a different continuum and looks for keys
 * on other servers than the original and than every other libketama-
 * compatible client. Setting the behaviour again on the clone rebuilds the
 * right continuum; it happens once per handle, before it connects. */
static void mc_fix_clone(memcached_st *m) {
  if (memcached_server_count(m) > 1 &&
      !memcached_behavior_get(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED))
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
}

static memcached_st *mc_acquire(mc_store *s, memcached_pool_st *pool, int *rc) {
  uint32_t ms = 2 * (s->conf.connect_timeout_ms + s->conf.io_timeout_ms);
  if (ms < 1000)
    ms = 1000;
  struct timespec wait = {ms / 1000, (long)(ms % 1000) * 1000000L};
  memcached_return_t r = MEMCACHED_SUCCESS;
  memcached_st *m = memcached_pool_fetch(pool, &wait, &r);
  if (!m) {
    DN__COUNT(&s->ctr, errors, 1);
    *rc = r == MEMCACHED_MEMORY_ALLOCATION_FAILURE ? DN_ENOMEM : DN_ETIMEDOUT;
    return NULL;
  }
  mc_fix_clone(m);
  return m;
}

/* ---- get_multi --------------------------------------------------------------
 */
typedef struct mc_ent {
  const char *p;
  size_t len;
  size_t idx;
} mc_ent;

typedef struct mc_req {
  size_t m;       /* keys sent: n, plus the sequence key */
  mc_ent *sorted; /* by server key, for matching replies */
  const char **ptrs;
  size_t *lens;
  char *kbuf;
} mc_req;

static int mc_ent_cmp(const void *a, const void *b) {
  const mc_ent *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->p, y->p, n);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int mc_req_build(mc_store *s, const dn_slice *keys, size_t n,
                        int with_seq, mc_req *q) {
  q->m = n + (with_seq ? 1 : 0);
  size_t m = q->m ? q->m : 1;
  size_t each = sizeof(mc_ent) + sizeof(char *) + sizeof(size_t);
  if (m > SIZE_MAX / (each + DN__SKEY_MAX + 1))
    return DN_ENOMEM;
  char *blk = dn__malloc(m * (each + DN__SKEY_MAX + 1));
  if (!blk)
    return DN_ENOMEM;
  q->sorted = (mc_ent *)blk;
  q->ptrs = (const char **)(q->sorted + m);
  q->lens = (size_t *)(q->ptrs + m);
  q->kbuf = (char *)(q->lens + m);
  for (size_t i = 0; i < q->m; i++) {
    char *k = q->kbuf + i * (DN__SKEY_MAX + 1);
    size_t kl;
    if (i == n) {
      kl = s->seq_len;
      memcpy(k, s->seq_key, kl + 1);
    } else if (dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, keys[i], 0)) {
      dn__free(blk);
      return DN_ENOMEM;
    }
    q->ptrs[i] = k;
    q->lens[i] = kl;
    q->sorted[i] = (mc_ent){k, kl, i};
  }
  qsort(q->sorted, q->m, sizeof *q->sorted, mc_ent_cmp);
  return 0;
}

/* The first entry whose server key equals (p, len), or NULL. */
static const mc_ent *mc_req_find(const mc_req *q, const char *p, size_t len) {
  mc_ent probe = {p, len, 0};
  size_t lo = 0, hi = q->m;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mc_ent_cmp(&q->sorted[mid], &probe) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < q->m && mc_ent_cmp(&q->sorted[lo], &probe) == 0)
    return &q->sorted[lo];
  return NULL;
}

typedef struct mc_got {
  int seq_found;
  uint64_t seq;
  int rc;          /* DN_ENOMEM while decoding */
  size_t received; /* values that came back */
  int some_errors; /* memcached_mget reported a failed server */
} mc_got;

/* memcached pads a shrinking incr/decr result with spaces; allow them. */
static int mc_parse_seq(const char *v, size_t len, uint64_t *out) {
  while (len && v[len - 1] == ' ')
    len--;
  return dn__parse_seq(v, len, out);
}

static void mc_take(mc_store *s, const mc_req *q, const dn_slice *keys,
                    size_t n, const memcached_result_st *r, dn_blob **out,
                    mc_got *g) {
  const char *v = memcached_result_value(r);
  size_t vl = memcached_result_length(r);
  const mc_ent *e = mc_req_find(q, memcached_result_key_value(r),
                                memcached_result_key_length(r));
  for (;
       e && e < q->sorted + q->m && e->len == memcached_result_key_length(r) &&
       memcmp(e->p, memcached_result_key_value(r), e->len) == 0;
       e++) {
    if (e->idx == n) {
      if (mc_parse_seq(v, vl, &g->seq) == 0)
        g->seq_found = 1;
      else
        DN__COUNT(&s->ctr, corrupt, 1);
      continue;
    }
    if (out[e->idx])
      continue;
    int rc = dn__codec_decode(&s->zc, v, vl, keys[e->idx],
                              DN__CODEC_MAX_PAYLOAD, &out[e->idx]);
    if (rc == DN_ENOMEM)
      g->rc = rc;
    else if (rc)
      DN__COUNT(&s->ctr, corrupt, 1);
  }
}

/* Reads the replies of an mget. Returns 1 (nothing came back because the
 * connection was lost: send the mget again), 0 or an error. */
static int mc_fetch_all(mc_store *s, memcached_st *m, const mc_req *q,
                        const dn_slice *keys, size_t n, dn_blob **out,
                        mc_got *g, int *retried) {
  /* On our stack: memcached_fetch_result frees a result it allocated
   * itself when the replies run out. */
  memcached_result_st res;
  if (!memcached_result_create(m, &res))
    return DN_ENOMEM;
  memcached_return_t r;
  int rc = 0;
  while (memcached_fetch_result(m, &res, &r)) {
    g->received++;
    mc_take(s, q, keys, n, &res, out, g);
  }
  memcached_result_free(&res);
  /* A server that died between the request and its reply ends the fetch
   * like any other; libmemcached only remembers it as the last error. */
  memcached_return_t last = memcached_last_error(m);
  int bad =
      r != MEMCACHED_END && r != MEMCACHED_NOTFOUND && r != MEMCACHED_SUCCESS;
  if (g->received == 0 && (bad || memcached_fatal(last) || g->some_errors) &&
      mc_retry(s, mc_conn_lost(r) ? r : last, retried))
    return 1;
  if (bad)
    return mc_fail(s, r);
  if (memcached_fatal(last) || g->some_errors) {
    DN__COUNT(&s->ctr, errors, 1);
    if (g->received == 0 && memcached_fatal(last))
      rc = mc_err(last);
  }
  return rc ? rc : g->rc;
}

static int mc_seq_get(void *self, uint64_t *out);

static int mc_get_multi(void *self, const dn_slice *keys, size_t n,
                        dn_blob **out, uint64_t *seq) {
  mc_store *s = self;
  for (size_t i = 0; i < n; i++)
    out[i] = NULL;
  if (!dn__keys_ok(keys, n))
    return DN_EINVAL;
  if (n == 0)
    return seq ? mc_seq_get(s, seq) : 0;
  mc_req q;
  mc_got g = {0, 0, 0, 0, 0};
  int rc = mc_req_build(s, keys, n, seq != NULL, &q);
  if (rc)
    return rc;
  memcached_st *m = mc_acquire(s, s->pool, &rc);
  if (!m)
    goto out;
  int retried = 0;
  do {
    memcached_return_t r = memcached_mget(m, q.ptrs, q.lens, q.m);
    DN__COUNT(&s->ctr, round_trips, 1);
    g.some_errors = r == MEMCACHED_SOME_ERRORS;
    if (r == MEMCACHED_SUCCESS || r == MEMCACHED_SOME_ERRORS)
      rc = mc_fetch_all(s, m, &q, keys, n, out, &g, &retried);
    else
      rc = mc_retry(s, r, &retried) ? 1 : mc_fail(s, r);
  } while (rc == 1);
  memcached_pool_release(s->pool, m);
  if (!rc && seq && !g.seq_found)
    rc = mc_seq_get(s, &g.seq);
out:
  dn__free(q.sorted);
  size_t hits = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc) {
      dn_blob_unref(out[i]);
      out[i] = NULL;
    }
    hits += out[i] != NULL;
  }
  if (!rc) {
    DN__COUNT(&s->ctr, hits, hits);
    DN__COUNT(&s->ctr, misses, n - hits);
    if (seq)
      *seq = g.seq;
  }
  return rc;
}

/* ---- writes -----------------------------------------------------------------
 */
/* After a resent add answered NOT_STORED: the first add may have stored
 * the value before its reply was lost. Our own value counts as stored (a
 * lease token is random, so an equal value is ours; a value anyone would
 * write, such as "1", may be another caller's, and then two callers go
 * ahead, which a lease only makes unlikely, never impossible). */
static int mc_add_is_ours(mc_store *s, memcached_st *m, const char *k,
                          size_t kl, const dn__buf *enc) {
  size_t vl = 0;
  uint32_t flags = 0;
  memcached_return_t r;
  char *v = memcached_get(m, k, kl, &vl, &flags, &r);
  DN__COUNT(&s->ctr, round_trips, 1);
  int ours = v && vl == enc->len && memcmp(v, enc->data, vl) == 0;
  free(v); /* libmemcached's default allocator */
  return ours;
}

static int mc_set(void *self, dn_slice key, dn_blob *value, uint64_t ttl_ms,
                  int mode) {
  mc_store *s = self;
  if (!dn__keys_ok(&key, 1) || !value)
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1];
  size_t kl;
  dn__buf enc;
  dn__buf_init(&enc, 0);
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, key, 0);
  if (!rc)
    rc = dn__codec_encode(&s->zc, key, dn_blob_data(value), dn_blob_len(value),
                          s->conf.compress_threshold, s->conf.item_limit, &enc);
  if (rc)
    goto out;
  memcached_st *m = mc_acquire(s, s->pool, &rc);
  if (!m)
    goto out;
  memcached_return_t r;
  int retried = 0;
  do {
    r = mode == DN_STORE_ADD
            ? memcached_add(m, k, kl, enc.data, enc.len, mc_exptime(ttl_ms), 0)
            : memcached_set(m, k, kl, enc.data, enc.len, mc_exptime(ttl_ms), 0);
    DN__COUNT(&s->ctr, round_trips, 1);
  } while (r != MEMCACHED_SUCCESS && mc_retry(s, r, &retried));
  if (r == MEMCACHED_NOTSTORED && retried && mc_add_is_ours(s, m, k, kl, &enc))
    r = MEMCACHED_SUCCESS;
  memcached_pool_release(s->pool, m);
  if (r == MEMCACHED_NOTSTORED && mode == DN_STORE_ADD)
    rc = DN_EEXIST;
  else if (r == MEMCACHED_E2BIG)
    rc = DN_ETOOBIG;
  else if (r != MEMCACHED_SUCCESS)
    rc = mc_fail(s, r);
out:
  dn__buf_free(&enc);
  return rc;
}

/* A pipelined batch: one key per server it touched, and what is waiting
 * for replies. */
typedef struct mc_touched {
  size_t count, pending, bytes;
  memcached_return_t failed; /* the first failure, counted by the caller */
  uint32_t server[DN__MAX_SERVERS];
  char key[DN__MAX_SERVERS][DN__SKEY_MAX + 1];
  size_t len[DN__MAX_SERVERS];
} mc_touched;

static void mc_touch_note(mc_touched *t, memcached_st *m, const char *k,
                          size_t kl) {
  uint32_t srv = memcached_generate_hash(m, k, kl);
  for (size_t i = 0; i < t->count; i++)
    if (t->server[i] == srv)
      return;
  if (t->count == DN__MAX_SERVERS)
    return;
  t->server[t->count] = srv;
  memcpy(t->key[t->count], k, kl);
  t->len[t->count] = kl;
  t->count++;
}

/* Sends what is buffered and waits for every reply (see the top). */
static int mc_sync(mc_store *s, memcached_st *m, mc_touched *t) {
  static const char probe[] = ":sync-never-stored";
  char k[DN__SKEY_MAX + 1];
  size_t kl = strlen(s->conf.ns);
  memcpy(k, s->conf.ns, kl);
  memcpy(k + kl, probe, sizeof probe);
  kl += sizeof probe - 1;
  int rc = 0;
  memcached_return_t r = memcached_flush_buffers(m);
  if (r != MEMCACHED_SUCCESS) {
    rc = mc_err(r);
    t->failed = r;
  }
  for (size_t i = 0; i < t->count; i++) {
    r = memcached_touch_by_key(m, t->key[i], t->len[i], k, kl, 1);
    DN__COUNT(&s->ctr, round_trips, 1);
    if (r != MEMCACHED_SUCCESS && r != MEMCACHED_NOTFOUND && !rc) {
      rc = mc_err(r);
      t->failed = r;
    }
  }
  t->count = t->pending = t->bytes = 0;
  return rc;
}

static int mc_send_one(mc_store *s, memcached_st *m, dn_slice key,
                       dn_blob *value, time_t exp, dn__buf *enc,
                       mc_touched *t) {
  char k[DN__SKEY_MAX + 1];
  size_t kl;
  if (!dn__keys_ok(&key, 1) || !value)
    return DN_EINVAL;
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, key, 0);
  if (!rc)
    rc = dn__codec_encode(&s->zc, key, dn_blob_data(value), dn_blob_len(value),
                          s->conf.compress_threshold, s->conf.item_limit, enc);
  if (rc)
    return rc;
  if (t->pending &&
      (t->pending >= MC_BATCH_ITEMS || t->bytes + enc->len > MC_BATCH_BYTES))
    rc = mc_sync(s, m, t);
  if (rc)
    return rc;
  memcached_return_t r = memcached_set(m, k, kl, enc->data, enc->len, exp, 0);
  if (r != MEMCACHED_BUFFERED && r != MEMCACHED_SUCCESS) {
    t->failed = r;
    return mc_err(r);
  }
  mc_touch_note(t, m, k, kl);
  t->pending++;
  t->bytes += enc->len;
  return 0;
}

static int mc_set_multi(void *self, const dn_slice *keys,
                        dn_blob *const *values, size_t n, uint64_t ttl_ms) {
  mc_store *s = self;
  if (n == 0)
    return 0;
  mc_touched *t = dn__malloc(sizeof *t);
  if (!t)
    return DN_ENOMEM;
  t->count = t->pending = t->bytes = 0;
  dn__buf enc;
  dn__buf_init(&enc, 0);
  int rc = 0;
  memcached_st *m = mc_acquire(s, s->bpool, &rc);
  if (!m)
    goto out;
  time_t exp = mc_exptime(ttl_ms);
  /* A lost connection sends every set again: the ones the server already
   * applied are applied twice, with the same values. */
  for (int retried = 0;;) {
    t->failed = MEMCACHED_SUCCESS;
    for (size_t i = 0; i < n && !rc; i++)
      rc = mc_send_one(s, m, keys[i], values[i], exp, &enc, t);
    int sync = mc_sync(s, m, t);
    if (!rc)
      rc = sync;
    if (!rc || t->failed == MEMCACHED_SUCCESS ||
        !mc_retry(s, t->failed, &retried))
      break;
    rc = 0;
  }
  if (t->failed != MEMCACHED_SUCCESS)
    DN__COUNT(&s->ctr, errors, 1);
  memcached_pool_release(s->bpool, m);
out:
  dn__buf_free(&enc);
  dn__free(t);
  return rc;
}

static int mc_del(void *self, dn_slice key) {
  mc_store *s = self;
  if (!dn__keys_ok(&key, 1))
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1];
  size_t kl;
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, key, 0);
  if (rc)
    return rc;
  memcached_st *m = mc_acquire(s, s->pool, &rc);
  if (!m)
    return rc;
  memcached_return_t r;
  int retried = 0;
  do {
    r = memcached_delete(m, k, kl, 0);
    DN__COUNT(&s->ctr, round_trips, 1);
  } while (r != MEMCACHED_SUCCESS && r != MEMCACHED_NOTFOUND &&
           mc_retry(s, r, &retried));
  memcached_pool_release(s->pool, m);
  if (r != MEMCACHED_SUCCESS && r != MEMCACHED_NOTFOUND)
    return mc_fail(s, r);
  return 0;
}

/* ---- the invalidation sequence ----------------------------------------------
 */
/* Creates a lost sequence at a fresh random value. add is atomic: when two
 * processes race, one wins and the other reads the winner's value.
 * Returns 0 (created, *out set), 1 (someone else created it) or an error. */
static int mc_seq_create(mc_store *s, memcached_st *m, uint64_t *out) {
  char num[24];
  uint64_t start = dn__seq_start();
  int len = snprintf(num, sizeof num, "%llu", (unsigned long long)start);
  memcached_return_t r =
      memcached_add(m, s->seq_key, s->seq_len, num, (size_t)len, 0, 0);
  DN__COUNT(&s->ctr, round_trips, 1);
  if (r == MEMCACHED_SUCCESS) {
    *out = start;
    return 0;
  }
  if (r == MEMCACHED_NOTSTORED)
    return 1;
  return mc_fail(s, r);
}

/* A sequence that is not a number was written by someone else: replace it
 * (a lost sequence, in effect). */
static int mc_seq_replace(mc_store *s, memcached_st *m, uint64_t *out) {
  char num[24];
  uint64_t start = dn__seq_start();
  int len = snprintf(num, sizeof num, "%llu", (unsigned long long)start);
  DN__COUNT(&s->ctr, corrupt, 1);
  memcached_return_t r =
      memcached_set(m, s->seq_key, s->seq_len, num, (size_t)len, 0, 0);
  DN__COUNT(&s->ctr, round_trips, 1);
  if (r != MEMCACHED_SUCCESS)
    return mc_fail(s, r);
  *out = start;
  return 0;
}

static int mc_seq_read(mc_store *s, memcached_st *m, uint64_t *out) {
  size_t vl = 0;
  uint32_t flags = 0;
  memcached_return_t r;
  char *v;
  int retried = 0;
  do {
    v = memcached_get(m, s->seq_key, s->seq_len, &vl, &flags, &r);
    DN__COUNT(&s->ctr, round_trips, 1);
  } while (!v && mc_retry(s, r, &retried));
  if (!v && r == MEMCACHED_NOTFOUND)
    return 1;
  if (!v && r != MEMCACHED_SUCCESS)
    return mc_fail(s, r);
  int rc = v ? mc_parse_seq(v, vl, out) : DN_ECORRUPT;
  free(v); /* libmemcached's default allocator */
  return rc ? 2 : 0;
}

static int mc_seq_get(void *self, uint64_t *out) {
  mc_store *s = self;
  int rc;
  memcached_st *m = mc_acquire(s, s->pool, &rc);
  if (!m)
    return rc;
  for (int attempt = 0; attempt < 4; attempt++) {
    rc = mc_seq_read(s, m, out);
    if (rc == 1)
      rc = mc_seq_create(s, m, out);
    else if (rc == 2)
      rc = mc_seq_replace(s, m, out);
    if (rc != 1)
      break;
  }
  memcached_pool_release(s->pool, m);
  return rc == 1 ? DN_EBUSY : rc;
}

static int mc_seq_bump(void *self, uint64_t *out) {
  mc_store *s = self;
  int rc;
  memcached_st *m = mc_acquire(s, s->pool, &rc);
  if (!m)
    return rc;
  int retried = 0;
  for (int attempt = 0; attempt < 4; attempt++) {
    uint64_t v = 0;
    memcached_return_t r =
        memcached_increment(m, s->seq_key, s->seq_len, 1, &v);
    DN__COUNT(&s->ctr, round_trips, 1);
    if (mc_retry(s, r, &retried)) {
      rc = 1; /* the connection was lost: once more */
    } else if (r == MEMCACHED_SUCCESS) {
      *out = v;
      rc = 0;
    } else if (r == MEMCACHED_NOTFOUND) {
      rc = mc_seq_create(s, m, out);
    } else if (r == MEMCACHED_CLIENT_ERROR) {
      rc = mc_seq_replace(s, m, out);
    } else {
      rc = mc_fail(s, r);
    }
    if (rc != 1)
      break;
  }
  memcached_pool_release(s->pool, m);
  return rc == 1 ? DN_EBUSY : rc;
}

/* ---- lifecycle --------------------------------------------------------------
 */
static int mc_stats(void *self, dn_store_stats *out) {
  dn__shared_counters_get(&((mc_store *)self)->ctr, out);
  return 0;
}

static void mc_destroy(void *self) {
  mc_store *s = self;
  if (s->pool)
    memcached_pool_destroy(s->pool);
  if (s->bpool)
    memcached_pool_destroy(s->bpool);
  memcached_free(s->master);
  memcached_free(s->bmaster);
  if (s->zc_ready)
    dn__zcache_free(&s->zc);
  dn__free(s);
}

static const dn_store_ops mc_ops = {
    .version = DN_STORE_OPS_VERSION,
    .name = "memcached",
    .get_multi = mc_get_multi,
    .set = mc_set,
    .set_multi = mc_set_multi,
    .del = mc_del,
    .seq_get = mc_seq_get,
    .seq_bump = mc_seq_bump,
    .index_add = NULL, /* no sound set type: DN_ENOTSUP */
    .index_members = NULL,
    .stats = mc_stats,
    .destroy = mc_destroy,
};

static int mc_behave(memcached_st *m, const dn__shared_conf *c) {
  uint64_t retry_s = c->retry_ms / 1000 + (c->retry_ms % 1000 != 0);
  struct {
    memcached_behavior_t b;
    uint64_t v;
  } set[] = {
      {MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, c->connect_timeout_ms},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, c->io_timeout_ms},
      {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)c->io_timeout_ms * 1000},
      {MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)c->io_timeout_ms * 1000},
      {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s ? retry_s : 1},
  };
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
    if (memcached_behavior_set(m, set[i].b, set[i].v) != MEMCACHED_SUCCESS)
      return DN_ESTORE;
  return 0;
}

static int mc_add_servers(memcached_st *m, const dn__hostport *hp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    memcached_return_t r =
        hp[i].port ? memcached_server_add(m, hp[i].host, (in_port_t)hp[i].port)
                   : memcached_server_add_unix_socket(m, hp[i].host);
    if (r != MEMCACHED_SUCCESS)
      return mc_err(r);
  }
  return 0;
}

static int mc_open_handles(mc_store *s, const dn__hostport *hp, size_t n) {
  s->master = memcached_create(NULL);
  if (!s->master)
    return DN_ENOMEM;
  int rc = mc_behave(s->master, &s->conf);
  if (!rc)
    rc = mc_add_servers(s->master, hp, n);
  if (rc)
    return rc;
  s->bmaster = memcached_clone(NULL, s->master);
  if (!s->bmaster)
    return DN_ENOMEM;
  mc_fix_clone(s->bmaster);
  /* Far above what one batch leaves unanswered, so that libmemcached's
   * purge never runs in the middle of a batch (see the top). */
  uint64_t wm = 2 * (MC_BATCH_BYTES + (uint64_t)s->conf.item_limit);
  if (memcached_behavior_set(s->bmaster, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS,
                             1) != MEMCACHED_SUCCESS ||
      memcached_behavior_set(s->bmaster, MEMCACHED_BEHAVIOR_IO_BYTES_WATERMARK,
                             wm > UINT32_MAX ? UINT32_MAX : wm) !=
          MEMCACHED_SUCCESS ||
      memcached_behavior_set(s->bmaster, MEMCACHED_BEHAVIOR_IO_MSG_WATERMARK,
                             4 * MC_BATCH_ITEMS) != MEMCACHED_SUCCESS)
    return DN_ESTORE;
  s->pool = memcached_pool_create(s->master, 1, s->conf.pool_size);
  s->bpool = memcached_pool_create(s->bmaster, 1, s->conf.pool_size);
  return s->pool && s->bpool ? 0 : DN_ENOMEM;
}

/* ---- the server list -------------------------------------------------------
 * memcached_servers_parse() splits the list and reads "[IPv6]:port", but it
 * is loose where a typo in MEMCACHED_ADDR must fail at start-up (checked
 * against libmemcached 1.1.4):
 *  - it copies each entry into an 8 KiB stack buffer without checking the
 *    length first;
 *  - it skips one whitespace byte after a comma and none before, drops a
 *    trailing empty entry and takes any other empty entry as a server
 *    with an empty host name;
 *  - it reads the port with strtoul() and casts it to in_port_t, so "12a"
 *    is port 12, and "", "0" and "65536" all become 11211; a second ':' or
 *    a space starts a weight;
 *  - it takes any byte as part of a host name and keeps the brackets of an
 *    IPv6 address, which would change the ketama ring (it hashes the name).
 * So the list is first cut here into trimmed entries of bounded length,
 * remembering where each starts for messages, and every server it returns
 * is checked against the text of its entry: the entry must be exactly the
 * host it returned, then nothing or ':' and a decimal port of 1 to 65535.
 */
/* The longest entry: a host name or "[IPv6]", ':' and five digits. */
#define MC_ENTRY_MAX (DN__HOST_MAX + 8)

typedef struct mc_entry {
  size_t at, len; /* where the entry is in the list */
} mc_entry;

static int mc_entry_check(const char *s, size_t b, size_t e, size_t n,
                          const char *what, dn_error *err) {
  if (b == e)
    return dn__error_set(err, DN_ECONFIG, b, "%s: empty server entry", what);
  if (n == DN__MAX_SERVERS)
    return dn__error_set(err, DN_ECONFIG, b, "%s: more than %d servers", what,
                         DN__MAX_SERVERS);
  if (e - b > MC_ENTRY_MAX)
    return dn__error_set(err, DN_ECONFIG, b, "%s: host name too long", what);
  return 0;
}

/* Cuts s at commas into entries without the spaces around them, and joins
 * them again with commas into *joined for memcached_servers_parse. */
static int mc_split(const char *s, const char *what, mc_entry *ent,
                    size_t *count, char **joined, dn_error *err) {
  size_t len = strlen(s), at = 0, n = 0, jl = 0;
  char *j = dn__malloc(len + 1);
  if (!j)
    return DN_ENOMEM;
  for (;;) {
    size_t end = at + strcspn(s + at, ","), b = at, e = end;
    while (b < e && s[b] == ' ')
      b++;
    while (e > b && s[e - 1] == ' ')
      e--;
    int rc = mc_entry_check(s, b, e, n, what, err);
    if (rc) {
      dn__free(j);
      return rc;
    }
    ent[n].at = b;
    ent[n++].len = e - b;
    if (jl)
      j[jl++] = ',';
    memcpy(j + jl, s + b, e - b);
    jl += e - b;
    if (end == len)
      break;
    at = end + 1;
  }
  j[jl] = '\0';
  *joined = j;
  *count = n;
  return 0;
}

static int mc_is_host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int mc_is_v6_byte(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* The text after the host: nothing, or ':' and the port it returned. */
static int mc_check_port(const char *p, size_t len, size_t at, unsigned port,
                         const char *what, dn_error *err) {
  unsigned v = 0;
  if (len == 0)
    return 0;
  if (p[0] != ':')
    return dn__error_set(err, DN_ECONFIG, at, "%s: expected ':port'", what);
  if (memchr(p + 1, ':', len - 1))
    return dn__error_set(err, DN_ECONFIG, at,
                         "%s: too many ':' (write IPv6 addresses as [addr])",
                         what);
  for (size_t i = 1; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return dn__error_set(err, DN_ECONFIG, at + i,
                           "%s: port must be decimal digits", what);
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (len < 2 || len > 6 || v == 0 || v > 65535 || v != port)
    return dn__error_set(err, DN_ECONFIG, at + 1, "%s: port must be 1 to 65535",
                         what);
  return 0;
}

/* The host it returned: "[IPv6]", a name, or an absolute socket path. */
static int mc_check_host(const char *h, size_t hl, size_t at, const char *what,
                         dn__hostport *hp, dn_error *err) {
  size_t from = 0;
  if (h[0] == '[') {
    if (hl < 2 || h[hl - 1] != ']') {
      const char *close = memchr(h, ']', hl);
      return close
                 ? dn__error_set(err, DN_ECONFIG, at + (size_t)(close - h) + 1,
                                 "%s: expected ':port'", what)
                 : dn__error_set(err, DN_ECONFIG, at, "%s: missing ']'", what);
    }
    from = 1;
    hl -= 2;
  }
  for (size_t i = 0; i < hl; i++)
    if (h[0] == '/' ? (unsigned char)h[i] <= ' ' || h[i] == 0x7f
        : from      ? !mc_is_v6_byte(h[from + i])
                    : !mc_is_host_byte(h[i]))
      return dn__error_set(err, DN_ECONFIG, at + from + i,
                           h[0] == '/' ? "%s: bad byte in socket path"
                           : from      ? "%s: bad byte in IPv6 address"
                                       : "%s: bad byte in host name",
                           what);
  if (hl == 0)
    return dn__error_set(err, DN_ECONFIG, at, "%s: empty host", what);
  if (hl >= DN__HOST_MAX)
    return dn__error_set(err, DN_ECONFIG, at,
                         h[0] == '/' ? "%s: socket path too long"
                                     : "%s: host name too long",
                         what);
  memcpy(hp->host, h + from, hl);
  hp->host[hl] = '\0';
  return 0;
}

/* Checks one server memcached_servers_parse returned against the text of
 * its entry, and copies it to hp. */
static int mc_take_server(const char *s, const mc_entry *e,
                          const memcached_server_st *srv, const char *what,
                          dn__hostport *hp, dn_error *err) {
  const char *h = srv->hostname;
  size_t hl = strlen(h);
  if (hl > e->len || memcmp(s + e->at, h, hl) != 0) /* it skipped a byte */
    return dn__error_set(err, DN_ECONFIG, e->at, "%s: bad byte in host name",
                         what);
  /* A bracket is checked first ("[::1" is a missing ']'), and a name last
   * ("::1:11211" is an IPv6 address without brackets, not an empty host). */
  int rc = 0;
  if (h[0] == '/' && hl < e->len)
    rc = dn__error_set(err, DN_ECONFIG, e->at + hl,
                       "%s: a socket path cannot contain ':'", what);
  else if (h[0] == '[')
    rc = mc_check_host(h, hl, e->at, what, hp, err);
  if (!rc)
    rc = mc_check_port(s + e->at + hl, e->len - hl, e->at + hl, srv->port, what,
                       err);
  if (!rc && h[0] != '[')
    rc = mc_check_host(h, hl, e->at, what, hp, err);
  hp->port = srv->port;
  return rc;
}

int dn__parse_servers(const char *s, const char *what, dn__hostport *out,
                      size_t *count, dn_error *err) {
  mc_entry ent[DN__MAX_SERVERS];
  size_t n = 0;
  char *joined = NULL;
  memcached_server_list_st list = NULL;
  int rc = mc_split(s, what, ent, &n, &joined, err);
  if (rc)
    goto out;
  errno = 0;
  list = memcached_servers_parse(joined);
  if (!list) { /* strtoul() overflowed, or out of memory */
    rc = errno == ERANGE ? dn__error_set(err, DN_ECONFIG, 0,
                                         "%s: port must be 1 to 65535", what)
                         : DN_ENOMEM;
    goto out;
  }
  if (memcached_server_list_count(list) != n) {
    rc = dn__error_set(err, DN_ECONFIG, 0, "%s: cannot parse the server list",
                       what);
    goto out;
  }
  for (size_t i = 0; !rc && i < n; i++) {
    rc = mc_take_server(s, &ent[i], &list[i], what, &out[i], err);
    for (size_t j = 0; !rc && j < i; j++)
      if (out[j].port == out[i].port && strcmp(out[j].host, out[i].host) == 0)
        rc = dn__error_set(err, DN_ECONFIG, ent[i].at,
                           "%s: server listed twice", what);
  }
  if (!rc)
    *count = n;
out:
  memcached_server_list_free(list);
  dn__free(joined);
  return rc;
}

int dn__store_memcached_describe(const char *servers, char *out, size_t size) {
  dn__hostport *hp = dn__malloc(sizeof *hp * DN__MAX_SERVERS);
  size_t n = 0;
  if (!hp)
    return DN_ENOMEM;
  int rc = dn__parse_servers(servers, "", hp, &n, NULL);
  if (!rc) {
    if (n == 1)
      snprintf(out, size, "memcached, 1 server: ");
    else
      snprintf(out, size, "memcached, %zu servers, ketama: ", n);
    for (size_t i = 0; i < n; i++) {
      size_t len = strlen(out);
      if (i && len + 1 < size)
        snprintf(out + len, size - len, ",");
      dn__hostport_describe(&hp[i], out, size);
    }
  }
  dn__free(hp);
  return rc;
}

/* ---- creating ---------------------------------------------------------------
 */
int dn_store_memcached_new(const char *servers,
                           const dn_store_shared_options *opts, dn_store **out,
                           dn_error *err) {
  if (!servers || !out)
    return dn__error_set(err, DN_EINVAL, 0, "servers and out are required");
  dn__hostport *hp = dn__malloc(sizeof *hp * DN__MAX_SERVERS);
  mc_store *s = dn__calloc(1, sizeof *s);
  size_t n = 0;
  int rc = hp && s ? 0 : DN_ENOMEM;
  if (!rc)
    rc = dn__shared_conf_init(&s->conf, opts, err);
  if (!rc)
    rc = dn__parse_servers(servers, "servers", hp, &n, err);
  if (rc)
    goto out;
  dn__shared_counters_init(&s->ctr);
  s->seq_len = dn__skey_seq(s->seq_key, s->conf.ns);
  rc = dn__zcache_init(&s->zc);
  s->zc_ready = rc == 0;
  if (!rc)
    rc = mc_open_handles(s, hp, n);
  if (!rc)
    rc = dn_store_new(&mc_ops, s, out);
  if (rc)
    dn__error_set(err, rc, 0, "servers: cannot set up libmemcached: %s",
                  dn_strerror(rc));
out:
  if (rc && s)
    mc_destroy(s);
  else if (rc)
    dn__free(s);
  dn__free(hp);
  return rc;
}
