/* store_io.c - the get path's reads and writes: store keys (with vary
 * variants), prefetching in one round trip with remembered tag keys, tag
 * versions (checking them, snapshotting them after a render, creating the
 * first one), and shell and view records.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "alloc.h"
#include "compose.h"
#include "error.h"
#include "prefetch_hints.h"
#include "text.h"
#include "thread_cache.h"
#include "uri.h"

int dn__key_make(dn_engine *e, dn__key *k, char kind, const char *body,
                 size_t len) {
  dn__buf_init_with(&k->b, k->mem, sizeof k->mem, 0);
  return dn__engine_key(e, &k->b, kind, body, len);
}

dn_slice dn__key_slice(const dn__key *k) {
  return (dn_slice){k->b.data, k->b.len};
}

/* Appends "|" and a digest of the request's values of the vary headers,
 * so each combination of values has its own key. */
static int key_add_variant(dn__key *k, const dn_slice *vary, size_t n,
                           const dn_request *req) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  for (size_t i = 0; i < n; i++) {
    XXH3_64bits_update(&st, vary[i].ptr, vary[i].len);
    XXH3_64bits_update(&st, "\0", 1);
    for (size_t h = 0; req && h < req->nheaders; h++) {
      const dn_header *hd = &req->headers[h];
      if (hd->name.len != vary[i].len)
        continue;
      size_t j = 0;
      while (j < hd->name.len &&
             (hd->name.ptr[j] | 0x20) == (vary[i].ptr[j] | 0x20))
        j++;
      if (j == hd->name.len) {
        XXH3_64bits_update(&st, hd->value.ptr, hd->value.len);
        XXH3_64bits_update(&st, "\n", 1);
      }
    }
    XXH3_64bits_update(&st, "\0", 1);
  }
  XXH64_canonical_t d; /* big-endian: the digits read as the number */
  XXH64_canonicalFromHash(&d, XXH3_64bits_digest(&st));
  char hex[17] = {'|'};
  dn__hex_encode(hex + 1, d.digest, sizeof d.digest, 0);
  return dn__buf_append(&k->b, hex, 17);
}

/* ---- store outages --------------------------------------------------------
 * While a store is down every request fails several store operations, and
 * one log line each would flood the log (thousands a second). So an outage
 * (DN_ESTORE, DN_ETIMEDOUT) is logged twice per engine: at its first
 * failure, and at the first store operation that succeeds after it, with
 * how long it lasted and how many operations failed meanwhile. Other
 * errors (a value too big, out of memory) concern one request and are
 * logged each time, as before.
 *
 * The state is kept here, in a small table keyed by engine id (ids start
 * at 1; 0 is a free slot) under one mutex. The success path only reads an
 * atomic count of open outages, so it costs nothing while the store is
 * well. An engine freed during an outage leaves its slot behind; when the
 * table is full, the oldest slot is taken over.
 */
#define OUTAGE_SLOTS 16

typedef struct outage {
  uint64_t engine;
  uint64_t since_ms;
  uint64_t failed;
} outage;

static pthread_mutex_t outage_mu = PTHREAD_MUTEX_INITIALIZER;
static outage outages[OUTAGE_SLOTS];
static atomic_uint outages_open;

/* Notes one failure of e's store; returns 1 when it starts an outage. */
static int outage_note(dn_engine *e, uint64_t now) {
  int started = 0;
  pthread_mutex_lock(&outage_mu);
  outage *o = NULL, *oldest = &outages[0];
  for (size_t i = 0; !o && i < OUTAGE_SLOTS; i++)
    if (outages[i].engine == e->id)
      o = &outages[i];
  for (size_t i = 0; !o && i < OUTAGE_SLOTS; i++)
    if (outages[i].since_ms < oldest->since_ms || !outages[i].engine)
      oldest = &outages[i];
  if (!o) {
    o = oldest;
    if (!o->engine)
      atomic_fetch_add_explicit(&outages_open, 1, memory_order_relaxed);
    *o = (outage){e->id, now, 0};
    started = 1;
  }
  o->failed++;
  pthread_mutex_unlock(&outage_mu);
  return started;
}

/* A store operation of e succeeded: ends its outage, if any, and logs it. */
static void store_ok(dn_engine *e) {
  if (!atomic_load_explicit(&outages_open, memory_order_relaxed))
    return;
  outage o = {0, 0, 0};
  pthread_mutex_lock(&outage_mu);
  for (size_t i = 0; !o.engine && i < OUTAGE_SLOTS; i++)
    if (outages[i].engine == e->id) {
      o = outages[i];
      outages[i] = (outage){0, 0, 0};
      atomic_fetch_sub_explicit(&outages_open, 1, memory_order_relaxed);
    }
  pthread_mutex_unlock(&outage_mu);
  if (!o.engine)
    return;
  uint64_t now = dn__engine_now(e);
  uint64_t ms = now > o.since_ms ? now - o.since_ms : 0;
  dn__engine_log(e, DN_LOG_WARN,
                 "store %s back after %llu.%llu s; %llu operations failed "
                 "meanwhile",
                 dn_store_name(e->store), (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000 / 100),
                 (unsigned long long)o.failed);
}

void dn__store_failed(dn_engine *e, int rc, const char *what) {
  atomic_fetch_add_explicit(&e->st.store_errors, 1, memory_order_relaxed);
  if (rc != DN_ESTORE && rc != DN_ETIMEDOUT) {
    dn__engine_log(e, DN_LOG_WARN, "store %s failed: %s", what,
                   dn_strerror(rc));
    return;
  }
  if (outage_note(e, dn__engine_now(e)))
    dn__engine_log(e, DN_LOG_WARN,
                   "store %s unreachable: %s failed: %s; further failures "
                   "are counted until it is back",
                   dn_store_name(e->store), what, dn_strerror(rc));
}

/* ---- prefetching ----------------------------------------------------------
 * With a shared store every read is a network round trip. A get therefore
 * fetches what it is about to need in one multi-get (a view with the tag
 * versions it is expected to carry, or all the holes of a shell) and keeps
 * the values in its context; the first read of each key takes it from
 * there instead of asking the store. A value is used once: a later read of
 * the same key goes to the store again, so a get never reuses a value that
 * it has itself replaced since.
 */
static int pre_take(dn__getctx *c, dn_slice k, dn_blob **out, uint64_t *seq) {
  for (size_t i = 0; i < c->pre.len; i++) {
    dn__prefetched *p = &DN__VEC_AT(&c->pre, dn__prefetched, i);
    if (p->len != k.len || memcmp(p->key, k.ptr, k.len) != 0)
      continue;
    *out = p->val;
    if (seq)
      *seq = p->seq;
    dn__free(p->key);
    *p = DN__VEC_AT(&c->pre, dn__prefetched, c->pre.len - 1);
    c->pre.len--;
    return 1;
  }
  return 0;
}

static int pre_has(const dn__getctx *c, dn_slice k) {
  for (size_t i = 0; i < c->pre.len; i++) {
    const dn__prefetched *p = &DN__VEC_AT(&c->pre, dn__prefetched, i);
    if (p->len == k.len && memcmp(p->key, k.ptr, k.len) == 0)
      return 1;
  }
  return 0;
}

void dn__pre_clear(dn__getctx *c) {
  for (size_t i = 0; i < c->pre.len; i++) {
    dn__prefetched *p = &DN__VEC_AT(&c->pre, dn__prefetched, i);
    dn__free(p->key);
    dn_blob_unref(p->val);
  }
  dn__vec_free(&c->pre);
}

/* Fetches keys in one round trip into the context. Failures are ignored:
 * each read then asks the store itself. */
static void prefetch(dn__getctx *c, const dn_slice *keys, size_t n) {
  dn_blob **vals = n ? dn__calloc(n, sizeof *vals) : NULL;
  uint64_t seq = 0;
  if (!vals || dn__vec_reserve(&c->pre, c->pre.len + n) ||
      dn__store_get_multi(c->e->store, keys, n, vals, &seq)) {
    dn__free(vals);
    return;
  }
  atomic_store_explicit(&c->e->last_seq, seq, memory_order_relaxed);
  for (size_t i = 0; i < n; i++) {
    dn_blob *old;
    if (pre_take(c, keys[i], &old, NULL))
      dn_blob_unref(old);
    char *k = dn__strndup(keys[i].ptr, keys[i].len);
    if (!k) {
      dn_blob_unref(vals[i]);
      continue;
    }
    dn__prefetched *p = dn__vec_push(&c->pre); /* room reserved above */
    *p = (dn__prefetched){k, keys[i].len, vals[i], seq};
  }
  dn__free(vals);
}

/* Appends key and, when this process remembers the tags of the record at
 * key, their tag keys, to a key list being built for one prefetch. */
static int add_with_hinted_tags(dn_engine *e, dn__buf *kb, dn__vec *offs,
                                dn_slice rec) {
  size_t *o = dn__vec_push(offs);
  if (!o || dn__buf_append(kb, rec.ptr, rec.len))
    return DN_ENOMEM;
  *o = kb->len - rec.len;
  dn__buf tags;
  dn__buf_init(&tags, 0);
  uint64_t composed_at = 0;
  size_t n = dn__hints_get(e->hints, rec, &tags, &composed_at);
  /* Nothing was invalidated since the record was composed (as far as this
   * process last saw): its tags will not need checking, so leave them out
   * of the round trip. */
  if (composed_at &&
      composed_at == atomic_load_explicit(&e->last_seq, memory_order_relaxed))
    n = 0;
  const char *t = tags.data;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t tl = strlen(t);
    size_t *to = dn__vec_push(offs);
    if (!to)
      rc = DN_ENOMEM;
    else {
      *to = kb->len;
      rc = dn__engine_key(e, kb, 't', t, tl);
    }
    t += tl + 1;
  }
  dn__buf_free(&tags);
  return rc;
}

/* Prefetches the given record keys together with their hinted tag keys
 * (shared stores only: an in-process store answers at memory speed). */
void dn__prefetch_records(dn__getctx *c, const dn_slice *recs, size_t n) {
  if (c->e->local || n == 0)
    return;
  dn__buf kb;
  dn__vec offs;
  dn__buf_init(&kb, 0);
  dn__vec_init(&offs, sizeof(size_t));
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (!pre_has(c, recs[i]))
      rc = add_with_hinted_tags(c->e, &kb, &offs, recs[i]);
  dn_slice *keys = rc || !offs.len ? NULL : dn__malloc(offs.len * sizeof *keys);
  for (size_t i = 0; keys && i < offs.len; i++) {
    size_t a = DN__VEC_AT(&offs, size_t, i);
    size_t b = i + 1 < offs.len ? DN__VEC_AT(&offs, size_t, i + 1) : kb.len;
    keys[i] = (dn_slice){kb.data + a, b - a};
  }
  if (keys)
    prefetch(c, keys, offs.len);
  dn__free(keys);
  dn__vec_free(&offs);
  dn__buf_free(&kb);
}

/* Remembers the tags a record carried and the sequence it was composed at,
 * unless the hint already says so. */
void dn__remember_tags(dn_engine *e, dn_slice rec, const dn__tagver *tags,
                       size_t n, uint64_t seq) {
  if (e->local)
    return;
  dn__buf have;
  dn__buf_init(&have, 0);
  uint64_t have_seq = 0;
  size_t hn = dn__hints_get(e->hints, rec, &have, &have_seq);
  int same = hn == n && have_seq == seq;
  const char *t = have.data;
  for (size_t i = 0; same && i < n; i++) {
    size_t tl = strlen(t);
    same = tl == tags[i].tag.len && memcmp(t, tags[i].tag.ptr, tl) == 0;
    t += tl + 1;
  }
  dn__buf_free(&have);
  if (!same)
    dn__hints_put(e->hints, rec, tags, n, seq);
}

/* ---- tag versions ---------------------------------------------------------
 */

/* Builds "t:<tag>" keys for n tags into one buffer plus a slice array. */
static int tag_keys(dn_engine *e, const dn__tagver *tags, size_t n, dn__buf *kb,
                    dn_slice **keys_out) {
  dn__buf_init(kb, 0);
  size_t *offs = dn__malloc((n + 1) * sizeof *offs);
  dn_slice *keys = dn__malloc((n ? n : 1) * sizeof *keys);
  int rc = offs && keys ? 0 : DN_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    offs[i] = kb->len;
    rc = dn__engine_key(e, kb, 't', tags[i].tag.ptr, tags[i].tag.len);
  }
  if (rc) {
    dn__free(offs);
    dn__free(keys);
    dn__buf_free(kb);
    return rc;
  }
  offs[n] = kb->len;
  for (size_t i = 0; i < n; i++)
    keys[i] = (dn_slice){kb->data + offs[i], offs[i + 1] - offs[i]};
  dn__free(offs);
  *keys_out = keys;
  return 0;
}

/* Checks recorded tag versions (a miss is always safe). Prefetched
 * versions are used first; the rest are read in one round trip. */
int dn__tags_current(dn__getctx *c, const dn__tagver *tags, size_t n) {
  if (n == 0)
    return TAGS_CURRENT;
  dn_engine *e = c->e;
  dn__buf kb;
  dn_slice *keys;
  if (tag_keys(e, tags, n, &kb, &keys))
    return 0;
  dn_blob **vals = dn__calloc(n, sizeof *vals);
  dn_slice *rest = dn__malloc(n * sizeof *rest);
  size_t *where = dn__malloc(n * sizeof *where);
  int current = 0;
  if (!vals || !rest || !where)
    goto out;
  size_t nrest = 0;
  for (size_t i = 0; i < n; i++)
    if (!pre_take(c, keys[i], &vals[i], NULL)) {
      where[nrest] = i;
      rest[nrest++] = keys[i];
    }
  dn_blob **got = nrest ? dn__calloc(nrest, sizeof *got) : NULL;
  int rc = nrest && !got ? DN_ENOMEM : 0;
  if (rc == 0 && nrest)
    rc = dn__store_get_multi(e->store, rest, nrest, got, NULL);
  for (size_t j = 0; rc == 0 && j < nrest; j++)
    vals[where[j]] = got[j];
  dn__free(got);
  if (rc) {
    dn__store_failed(e, rc, "read of tag versions");
    goto out;
  }
  if (nrest)
    store_ok(e);
  current = TAGS_CURRENT;
  uint64_t now = 0;
  for (size_t i = 0; i < n && current != TAGS_STALE; i++) {
    dn__tagrec t;
    if (!vals[i] || dn__tagrec_decode(vals[i], &t))
      current = TAGS_STALE;
    else if (t.version == tags[i].version)
      continue;
    else if (t.soft_until && t.prev_version == tags[i].version &&
             t.soft_until > (now ? now : (now = dn__engine_now(e))))
      current = TAGS_SOFT;
    else
      current = TAGS_STALE;
  }
out:
  for (size_t i = 0; vals && i < n; i++)
    dn_blob_unref(vals[i]);
  dn__free(vals);
  dn__free(rest);
  dn__free(where);
  dn__free(keys);
  dn__buf_free(&kb);
  return current;
}

/* Creates a first version for a tag never seen (or lost); a concurrent
 * creator may win, and then its version is read back. */
static int create_tag(dn_engine *e, dn_slice k, uint64_t *version,
                      uint64_t *seq) {
  char rec[DN__TAGREC_LEN];
  uint64_t v = dn__random_u64();
  dn__tagrec fresh = {v, 0, 0, 0};
  dn__tagrec_encode(&fresh, rec);
  dn_blob *b;
  int rc = dn_blob_new(rec, sizeof rec, &b);
  if (rc)
    return rc;
  rc = dn__store_set(e->store, k, b, 0, DN_STORE_ADD);
  dn_blob_unref(b);
  if (rc == 0) {
    *version = v;
    *seq = 0;
    return 0;
  }
  if (rc != DN_EEXIST)
    return rc;
  dn_blob *got = NULL;
  rc = dn__store_get_multi(e->store, &k, 1, &got, NULL);
  dn__tagrec t;
  if (rc == 0 && (!got || dn__tagrec_decode(got, &t)))
    rc = DN_ESTORE;
  if (rc == 0) {
    *version = t.version;
    *seq = t.seq;
  }
  dn_blob_unref(got);
  return rc;
}

/* Fills the versions of tags as they are now, and decides whether the
 * render that started at sequence g0 raced an invalidation of one of them:
 * a tag was set after g0, or the sequence moved (g1 != g0) and either went
 * backwards (the store lost it) or a tag had to be created (its history is
 * unknown). */
int dn__snapshot_tags(dn_engine *e, dn__tagver *tags, size_t n, uint64_t g0,
                      int *raced) {
  dn__buf kb;
  dn_slice *keys;
  int rc = tag_keys(e, tags, n, &kb, &keys);
  if (rc)
    return rc;
  dn_blob **vals = dn__calloc(n ? n : 1, sizeof *vals);
  uint64_t g1 = 0;
  int created = 0, late = 0;
  if (!vals) {
    rc = DN_ENOMEM;
    goto out;
  }
  rc = dn__store_get_multi(e->store, keys, n, vals, &g1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t s = 0;
    dn__tagrec t;
    if (vals[i] && dn__tagrec_decode(vals[i], &t) == 0) {
      tags[i].version = t.version;
      s = t.seq;
    } else {
      rc = create_tag(e, keys[i], &tags[i].version, &s);
      created = 1;
    }
    if (s > g0)
      late = 1;
  }
  /* A tag set after g0 means an invalidation overlapped the render,
   * whatever g1 says: g1 may have been read before a tag that create_tag
   * had to read back, or before the tags on another server. */
  *raced = late || (g1 != g0 && (g1 < g0 || created));
out:
  for (size_t i = 0; vals && i < n; i++)
    dn_blob_unref(vals[i]);
  dn__free(vals);
  dn__free(keys);
  dn__buf_free(&kb);
  return rc;
}

/* ---- shells ---------------------------------------------------------------
 */

/* Reads a record at `k`, following a vary stub to the variant key. */
int dn__read_record(dn__getctx *c, dn__key *k, int is_view, dn_blob **out,
                    uint64_t *seq) {
  dn_slice ks = dn__key_slice(k);
  dn_blob *b = NULL;
  int rc = pre_take(c, ks, &b, seq)
               ? 0
               : dn__store_get_multi(c->e->store, &ks, 1, &b, seq);
  if (rc) {
    dn__store_failed(c->e, rc, "read");
    return 0;
  }
  store_ok(c->e);
  if (!b)
    return 0;
  const dn_slice *vary;
  size_t nvary;
  unsigned flags;
  if (is_view) {
    dn_rep *v;
    rc = dn__view_decode(b, &v);
    flags = rc ? 0 : v->flags, vary = rc ? NULL : v->vary,
    nvary = rc ? 0 : v->nvary;
  } else {
    const dn__shell *s;
    rc = dn__shell_decode(b, &s);
    flags = rc ? 0 : s->flags, vary = rc ? NULL : s->vary,
    nvary = rc ? 0 : s->nvary;
  }
  if (rc) {
    dn_blob_unref(b);
    return rc == DN_ENOMEM ? rc : 0;
  }
  if (!(flags & DN__REC_STUB)) {
    *out = b;
    return 0;
  }
  rc = key_add_variant(k, vary, nvary, c->req);
  dn_blob_unref(b);
  if (rc)
    return rc;
  return dn__read_record(c, k, is_view, out, NULL);
}

int dn__expired(dn_engine *e, uint64_t expires_ms) {
  return expires_ms && dn__engine_now(e) >= expires_ms;
}

/* A cached shell of uri that is still valid, or *out = NULL. */
int dn__load_shell(dn__getctx *c, const char *uri, size_t len, dn_blob **out) {
  *out = NULL;
  dn__key k;
  int rc = dn__key_make(c->e, &k, 's', uri, len);
  dn_blob *b = NULL;
  if (rc == 0) {
    dn_slice ks = dn__key_slice(&k);
    dn__prefetch_records(c, &ks, 1);
    rc = dn__read_record(c, &k, 0, &b, NULL);
  }
  const dn__shell *s;
  int fresh = rc == 0 && b && dn__shell_decode(b, &s) == 0;
  if (fresh)
    dn__remember_tags(c->e, dn__key_slice(&k), s->tags, s->ntags, 0);
  dn__buf_free(&k.b);
  if (!fresh || dn__expired(c->e, s->expires_ms) ||
      dn__tags_current(c, s->tags, s->ntags) != TAGS_CURRENT) {
    dn_blob_unref(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* Stores a record, or a vary stub at the base key plus the record at the
 * variant key. Failures are counted; a cache that cannot write still
 * serves. */
int dn__store_record(dn__getctx *c, char kind, const char *uri, size_t len,
                     dn_blob *rec, const dn_slice *vary, size_t nvary,
                     const dn__tagver *tags, size_t ntags, uint64_t valid_seq,
                     uint64_t ttl_ms) {
  dn__key k;
  int rc = dn__key_make(c->e, &k, kind, uri, len);
  if (rc == 0 && nvary) {
    dn_blob *stub = NULL;
    if (kind == 's') {
      dn__shell s = {
          .flags = DN__REC_STUB, .vary = (dn_slice *)vary, .nvary = nvary};
      rc = dn__shell_encode(&s, &stub);
    } else {
      dn_rep v = {
          .flags = DN__REC_STUB, .vary = (dn_slice *)vary, .nvary = nvary};
      rc = dn__view_encode(&v, &stub);
    }
    if (rc == 0)
      rc = dn__store_set(c->e->store, dn__key_slice(&k), stub, ttl_ms,
                         DN_STORE_SET);
    dn_blob_unref(stub);
    if (rc == 0)
      rc = key_add_variant(&k, vary, nvary, c->req);
  }
  if (rc == 0)
    rc = dn__store_set(c->e->store, dn__key_slice(&k), rec, ttl_ms,
                       DN_STORE_SET);
  if (rc)
    dn__store_failed(c->e, rc, "write");
  else
    store_ok(c->e);
  if (!rc && !nvary)
    dn__remember_tags(c->e, dn__key_slice(&k), tags, ntags, valid_seq);
  dn__buf_free(&k.b);
  return rc;
}

uint64_t dn__store_ttl_ms(dn_engine *e, uint64_t expires_ms, uint32_t grace_s) {
  if (!expires_ms)
    return 0;
  uint64_t now = dn__engine_now(e), until = expires_ms + grace_s * 1000ull;
  return until > now ? until - now + 1000 : 1000;
}

/* RFC 9111 §3: a response marked private or no-store, or that sets a
 * cookie, must not be kept in a shared cache (dn_http_storable). */
int dn__storable_headers(const dn__shell *s) {
  return dn_http_storable(s->headers, s->nheaders, 0);
}
