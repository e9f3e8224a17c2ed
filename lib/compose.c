/* compose.c - dn_engine_get: views, shells, single-flight renders and
 * composition.
 *
 * A get first looks for the composed view. A view is fresh while it has
 * not expired and every tag of its closure still has the version the view
 * recorded; when the store's invalidation sequence has not moved since the
 * view was composed (or last checked), no tag needs reading at all. On a
 * miss the resource's shell is loaded (valid while its own tags are
 * current) or rendered, each hole is got the same way, recursively, and
 * the page is composed, hashed for its ETag, and stored.
 *
 * Renders are single-flight: in-process through a table of flights keyed
 * by shell key, across processes through a lease in the store. A render
 * snapshots its tag versions after running and compares the invalidation
 * sequence from before and after: if any of its tags was invalidated
 * meanwhile, the output may predate the invalidation, so it is rendered
 * again and never stored as fresh.
 */
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "alloc.h"
#include "engine_internal.h"
#include "error.h"
#include "hints.h"
#include "hot.h"
#include "uri.h"

#define MAX_RENDER_ATTEMPTS 3
#define KEY_STACK 384

/* The chain of resources being composed, for cycle and depth checks. */
typedef struct frame {
  const char *uri;
  size_t len;
  unsigned depth;
  const struct frame *parent;
} frame;

/* A value fetched ahead of need by one multi-get (see prefetch). */
typedef struct prefetched {
  char *key;
  size_t len;
  dn_blob *val; /* NULL: the store had nothing */
  uint64_t seq; /* the invalidation sequence read with it */
} prefetched;

typedef struct getctx {
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
} getctx;

#define GETCTX(e, req, flags, err)                                             \
  { (e), (req), (flags), 0, (err), {NULL, 0, 0, sizeof(prefetched)}, 0, 0, 0 }

typedef struct key {
  dn__buf b;
  char mem[KEY_STACK];
} key;

static int key_make(dn_engine *e, key *k, char kind, const char *body,
                    size_t len) {
  dn__buf_init_with(&k->b, k->mem, sizeof k->mem, 0);
  return dn__engine_key(e, &k->b, kind, body, len);
}

static dn_slice key_slice(const key *k) {
  return (dn_slice){k->b.data, k->b.len};
}

/* Appends "|" and a digest of the request's values of the vary headers,
 * so each combination of values has its own key. */
static int key_add_variant(key *k, const dn_slice *vary, size_t n,
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
  uint64_t d = XXH3_64bits_digest(&st);
  char hex[18];
  hex[0] = '|';
  for (int i = 0; i < 16; i++)
    hex[1 + i] = "0123456789abcdef"[(d >> (60 - 4 * i)) & 15];
  return dn__buf_append(&k->b, hex, 17);
}

static void store_failed(dn_engine *e, int rc, const char *what) {
  atomic_fetch_add_explicit(&e->st.store_errors, 1, memory_order_relaxed);
  dn__engine_log(e, DN_LOG_WARN, "store %s failed: %s", what, dn_strerror(rc));
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
static int pre_take(getctx *c, dn_slice k, dn_blob **out, uint64_t *seq) {
  for (size_t i = 0; i < c->pre.len; i++) {
    prefetched *p = &DN__VEC_AT(&c->pre, prefetched, i);
    if (p->len != k.len || memcmp(p->key, k.ptr, k.len) != 0)
      continue;
    *out = p->val;
    if (seq)
      *seq = p->seq;
    dn__free(p->key);
    *p = DN__VEC_AT(&c->pre, prefetched, c->pre.len - 1);
    c->pre.len--;
    return 1;
  }
  return 0;
}

static int pre_has(const getctx *c, dn_slice k) {
  for (size_t i = 0; i < c->pre.len; i++) {
    const prefetched *p = &DN__VEC_AT(&c->pre, prefetched, i);
    if (p->len == k.len && memcmp(p->key, k.ptr, k.len) == 0)
      return 1;
  }
  return 0;
}

static void pre_clear(getctx *c) {
  for (size_t i = 0; i < c->pre.len; i++) {
    prefetched *p = &DN__VEC_AT(&c->pre, prefetched, i);
    dn__free(p->key);
    dn_blob_unref(p->val);
  }
  dn__vec_free(&c->pre);
}

/* Fetches keys in one round trip into the context. Failures are ignored:
 * each read then asks the store itself. */
static void prefetch(getctx *c, const dn_slice *keys, size_t n) {
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
    prefetched *p = dn__vec_push(&c->pre); /* room reserved above */
    *p = (prefetched){k, keys[i].len, vals[i], seq};
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
static void prefetch_records(getctx *c, const dn_slice *recs, size_t n) {
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
static void remember_tags(dn_engine *e, dn_slice rec, const dn__tagver *tags,
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

/* What a check of recorded tag versions found. */
#define TAGS_STALE 0   /* a tag changed or is gone, or the store cannot say */
#define TAGS_CURRENT 1 /* every tag still has its recorded version */
#define TAGS_SOFT 2    /* only soft invalidations, still within their grace */

/* Checks recorded tag versions (a miss is always safe). Prefetched
 * versions are used first; the rest are read in one round trip. */
static int tags_current(getctx *c, const dn__tagver *tags, size_t n) {
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
    store_failed(e, rc, "read of tag versions");
    goto out;
  }
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
static int snapshot_tags(dn_engine *e, dn__tagver *tags, size_t n, uint64_t g0,
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
static int read_record(getctx *c, key *k, int is_view, dn_blob **out,
                       uint64_t *seq) {
  dn_slice ks = key_slice(k);
  dn_blob *b = NULL;
  int rc = pre_take(c, ks, &b, seq)
               ? 0
               : dn__store_get_multi(c->e->store, &ks, 1, &b, seq);
  if (rc) {
    store_failed(c->e, rc, "read");
    return 0;
  }
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
  return read_record(c, k, is_view, out, NULL);
}

static int expired(dn_engine *e, uint64_t expires_ms) {
  return expires_ms && dn__engine_now(e) >= expires_ms;
}

/* A cached shell of uri that is still valid, or *out = NULL. */
static int load_shell(getctx *c, const char *uri, size_t len, dn_blob **out) {
  *out = NULL;
  key k;
  int rc = key_make(c->e, &k, 's', uri, len);
  dn_blob *b = NULL;
  if (rc == 0) {
    dn_slice ks = key_slice(&k);
    prefetch_records(c, &ks, 1);
    rc = read_record(c, &k, 0, &b, NULL);
  }
  const dn__shell *s;
  int fresh = rc == 0 && b && dn__shell_decode(b, &s) == 0;
  if (fresh)
    remember_tags(c->e, key_slice(&k), s->tags, s->ntags, 0);
  dn__buf_free(&k.b);
  if (!fresh || expired(c->e, s->expires_ms) ||
      tags_current(c, s->tags, s->ntags) != TAGS_CURRENT) {
    dn_blob_unref(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* Stores a record, or a vary stub at the base key plus the record at the
 * variant key. Failures are counted; a cache that cannot write still
 * serves. */
static int store_record(getctx *c, char kind, const char *uri, size_t len,
                        dn_blob *rec, const dn_slice *vary, size_t nvary,
                        const dn__tagver *tags, size_t ntags,
                        uint64_t valid_seq, uint64_t ttl_ms) {
  key k;
  int rc = key_make(c->e, &k, kind, uri, len);
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
      rc =
          dn__store_set(c->e->store, key_slice(&k), stub, ttl_ms, DN_STORE_SET);
    dn_blob_unref(stub);
    if (rc == 0)
      rc = key_add_variant(&k, vary, nvary, c->req);
  }
  if (rc == 0)
    rc = dn__store_set(c->e->store, key_slice(&k), rec, ttl_ms, DN_STORE_SET);
  if (rc)
    store_failed(c->e, rc, "write");
  else if (!nvary)
    remember_tags(c->e, key_slice(&k), tags, ntags, valid_seq);
  dn__buf_free(&k.b);
  return rc;
}

static uint64_t store_ttl_ms(dn_engine *e, uint64_t expires_ms) {
  if (!expires_ms)
    return 0;
  uint64_t now = dn__engine_now(e);
  return expires_ms > now ? expires_ms - now + 1000 : 1000;
}

/* RFC 9111 §3: a response marked private or no-store, or that sets a
 * cookie, must not be kept in a shared cache (dn_http_storable). */
static int storable_headers(const dn__shell *s) {
  return dn_http_storable(s->headers, s->nheaders, 0);
}

static const dn__renderer *find_renderer(dn_engine *e, const char *uri,
                                         size_t len) {
  const char *q = memchr(uri, '?', len);
  size_t path_len = q ? (size_t)(q - uri) : len;
  const dn__renderer *best = NULL;
  for (size_t i = 0; i < e->renderers.len; i++) {
    const dn__renderer *r = DN__VEC_AT(&e->renderers, dn__renderer *, i);
    int match =
        r->prefix ? r->pattern_len <= path_len : r->pattern_len == path_len;
    if (!match || memcmp(uri, r->pattern, r->pattern_len) != 0)
      continue;
    if (!best || r->pattern_len > best->pattern_len ||
        (r->pattern_len == best->pattern_len && !r->prefix))
      best = r;
  }
  return best;
}

/* Encodes a finished render as a shell, snapshotting its tags. */
static int finish_render(getctx *c, dn_render *r, uint64_t g0, int cacheable,
                         dn_blob **out, int *stored) {
  dn_engine *e = c->e;
  dn__shell s;
  dn__vec tv, hv, ov;
  int rc = dn__render_to_shell(r, dn__engine_now(e), &s, &tv, &hv, &ov);
  if (rc)
    return rc;
  dn_slice *vary = dn__calloc(r->vary.len ? r->vary.len : 1, sizeof *vary);
  if (!vary) {
    rc = DN_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < r->vary.len; i++)
    vary[i] = dn_slice_from_cstr(DN__VEC_AT(&r->vary, char *, i));
  s.vary = vary;
  s.nvary = r->vary.len;
  int raced = 0;
  if (!cacheable || !storable_headers(&s))
    s.flags |= DN__REC_UNCACHEABLE;
  else if ((rc = snapshot_tags(e, s.tags, s.ntags, g0, &raced)) != 0) {
    store_failed(e, rc, "tag snapshot");
    s.flags |= DN__REC_UNCACHEABLE; /* serve, but keep nothing */
    rc = 0;
  }
  if (raced) {
    *out = NULL;
    goto out;
  }
  rc = dn__shell_encode(&s, out);
  if (rc || (s.flags & DN__REC_UNCACHEABLE))
    goto out;
  if ((c->store_rc = store_record(c, 's', r->uri, r->uri_len, *out, s.vary,
                                  s.nvary, s.tags, s.ntags, 0,
                                  store_ttl_ms(e, s.expires_ms))) != 0)
    goto out;
  for (size_t i = 0; i < s.nholes; i++) {
    key k;
    if (key_make(e, &k, 'r', s.holes[i].uri.ptr, s.holes[i].uri.len) == 0)
      dn__store_index_add(e->store, key_slice(&k),
                          (dn_slice){r->uri, r->uri_len}, 0);
    dn__buf_free(&k.b);
  }
  *stored = 1;
out:
  dn__free(vary);
  dn__vec_free(&tv);
  dn__vec_free(&hv);
  dn__vec_free(&ov);
  return rc;
}

/* Runs the renderer for uri, up to MAX_RENDER_ATTEMPTS times while it
 * races invalidations. *stored says whether the shell was stored. */
static int run_renderer(getctx *c, const char *uri, size_t len, int cacheable,
                        dn_blob **out, int *stored) {
  dn_engine *e = c->e;
  dn__renderer *rr = (dn__renderer *)find_renderer(e, uri, len);
  *stored = 0;
  if (!rr)
    return dn__error_set(c->err, DN_ENORENDERER, 0,
                         "no renderer registered for '%.*s'", (int)len, uri);
  for (int attempt = 1;; attempt++) {
    uint64_t g0 = 0;
    if (cacheable && dn__store_seq_get(e->store, &g0))
      cacheable = 0; /* the store is down: render through, keep nothing */
    dn_render r;
    int rc = dn__render_init(&r, e, uri, len, c->req, cacheable);
    if (rc)
      return rc;
    dn__in_render++;
    rc = rr->fn(&r, rr->ud);
    dn__in_render--;
    c->renders++;
    atomic_fetch_add_explicit(&rr->renders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->st.renders, 1, memory_order_relaxed);
    if (rc || r.failed) {
      int code = r.failed ? r.fail_code : rc > 0 ? DN_ERENDER : rc;
      dn__error_set(c->err, code, 0, "renderer '%s' failed for '%.*s': %s",
                    rr->name, (int)len, uri,
                    r.failed && r.fail_msg[0] ? r.fail_msg : dn_strerror(code));
      dn__render_free(&r);
      return code;
    }
    *out = NULL;
    rc = finish_render(c, &r, g0, cacheable, out, stored);
    dn__render_free(&r);
    if (rc || *out)
      return rc;
    atomic_fetch_add_explicit(&e->st.raced_renders, 1, memory_order_relaxed);
    if (attempt >= MAX_RENDER_ATTEMPTS)
      cacheable = 0; /* give the caller a fresh render, keep nothing */
  }
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Takes the store's render lease for uri, or waits for the holder's shell
 * to appear. Returns 1 with *out set when another process rendered it. */
static int lease_or_wait(getctx *c, dn_slice lk, const char *uri, size_t len,
                         dn_blob **out, int *leased) {
  dn_engine *e = c->e;
  char token[8];
  uint64_t t = dn__random_u64();
  memcpy(token, &t, sizeof token);
  dn_blob *tb;
  if (dn_blob_new(token, sizeof token, &tb))
    return 0;
  unsigned waited = 0, step = 1;
  for (;;) {
    int rc = dn__store_set(e->store, lk, tb, e->lease_ms, DN_STORE_ADD);
    if (rc == 0)
      *leased = 1;
    if (rc != DN_EEXIST || waited >= e->lease_ms)
      break;
    sleep_ms(step);
    waited += step;
    step = step < 32 ? step * 2 : 32;
    if (load_shell(c, uri, len, out) == 0 && *out) {
      dn_blob_unref(tb);
      return 1;
    }
  }
  dn_blob_unref(tb);
  return 0;
}

static int render_leased(getctx *c, const char *uri, size_t len, dn_blob **out,
                         int *stored) {
  key lk;
  int rc = key_make(c->e, &lk, 'l', uri, len);
  if (rc)
    return rc;
  int leased = 0;
  *stored = 0;
  if (lease_or_wait(c, key_slice(&lk), uri, len, out, &leased)) {
    dn__buf_free(&lk.b);
    return 0;
  }
  rc = run_renderer(c, uri, len, 1, out, stored);
  if (leased)
    dn__store_del(c->e->store, key_slice(&lk));
  dn__buf_free(&lk.b);
  return rc;
}

/* ---- single flight --------------------------------------------------------
 */
static size_t flight_bucket(const char *k, size_t n) {
  return (size_t)(XXH3_64bits(k, n) % DN__FLIGHT_BUCKETS);
}

static void flight_release(dn__flight *f) {
  pthread_cond_destroy(&f->done_cv);
  dn_blob_unref(f->shell);
  dn__free(f->key);
  dn__free(f);
}

/* Waits for flight f (flight_mu held). Returns the leader's result code, or
 * 1 when the caller should render itself (timeout). */
static int flight_wait(getctx *c, dn__flight *f) {
  dn_engine *e = c->e;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)(e->lease_ms / 1000);
  until.tv_nsec += (long)(e->lease_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  f->waiters++;
  atomic_fetch_add_explicit(&e->st.coalesced_waits, 1, memory_order_relaxed);
  while (!f->done)
    if (pthread_cond_timedwait(&f->done_cv, &e->flight_mu, &until))
      break;
  int rc = f->done ? f->rc : 1;
  if (f->done && f->rc)
    dn__error_set(c->err, f->rc, 0, "%s", f->msg);
  if (--f->waiters == 0 && f->done)
    flight_release(f);
  return rc;
}

static dn__flight *flight_find(dn_engine *e, size_t b, const char *k,
                               size_t n) {
  for (dn__flight *f = e->flights[b]; f; f = f->next)
    if (f->key_len == n && memcmp(f->key, k, n) == 0)
      return f;
  return NULL;
}

static void flight_finish(dn_engine *e, dn__flight *f, size_t b, int rc,
                          const dn_error *err) {
  pthread_mutex_lock(&e->flight_mu);
  for (dn__flight **pp = &e->flights[b]; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  f->done = 1;
  f->rc = rc;
  if (rc && err) {
    memcpy(f->msg, err->text, sizeof f->msg);
    f->msg[sizeof f->msg - 1] = '\0';
  }
  pthread_cond_broadcast(&f->done_cv);
  int free_now = f->waiters == 0;
  pthread_mutex_unlock(&e->flight_mu);
  if (free_now)
    flight_release(f);
}

/* Produces the shell of uri: one render per key in this process. Waiters
 * reload the stored shell afterwards; when the leader could not store it
 * (uncacheable, raced, or varying on headers they do not share), they
 * render for themselves. */
static int produce_shell(getctx *c, const char *uri, size_t len,
                         dn_blob **out) {
  dn_engine *e = c->e;
  size_t b = flight_bucket(uri, len);
  pthread_mutex_lock(&e->flight_mu);
  dn__flight *f = flight_find(e, b, uri, len);
  if (f) {
    int rc = flight_wait(c, f);
    pthread_mutex_unlock(&e->flight_mu);
    if (rc < 0)
      return rc;
    if ((rc = load_shell(c, uri, len, out)) != 0 || *out)
      return rc;
    int stored;
    return run_renderer(c, uri, len, 1, out, &stored);
  }
  f = dn__calloc(1, sizeof *f);
  if (f && !(f->key = dn__strndup(uri, len))) {
    dn__free(f);
    f = NULL;
  }
  if (!f) {
    pthread_mutex_unlock(&e->flight_mu);
    return DN_ENOMEM;
  }
  f->key_len = len;
  pthread_cond_init(&f->done_cv, NULL);
  f->next = e->flights[b];
  e->flights[b] = f;
  pthread_mutex_unlock(&e->flight_mu);
  dn_error local;
  memset(&local, 0, sizeof local);
  dn_error *err = c->err ? c->err : &local;
  dn_error *saved = c->err;
  c->err = err;
  int stored = 0;
  int rc = render_leased(c, uri, len, out, &stored);
  c->err = saved;
  flight_finish(e, f, b, rc, err);
  return rc;
}

/* ---- composition ----------------------------------------------------------
 */
static int get_view(getctx *c, const frame *parent, const char *uri, size_t len,
                    int uncached, dn_rep **out, dn_source *src);

typedef struct tagset {
  dn__vec items; /* dn__tagver */
  int conflict;  /* one tag seen with two versions */
} tagset;

static int tagset_add(tagset *ts, const dn__tagver *t) {
  for (size_t i = 0; i < ts->items.len; i++) {
    dn__tagver *have = &DN__VEC_AT(&ts->items, dn__tagver, i);
    if (have->tag.len == t->tag.len &&
        memcmp(have->tag.ptr, t->tag.ptr, t->tag.len) == 0) {
      if (have->version != t->version)
        ts->conflict = 1;
      return 0;
    }
  }
  dn__tagver *slot = dn__vec_push(&ts->items);
  if (!slot)
    return DN_ENOMEM;
  *slot = *t;
  return 0;
}

static int slices_add(dn__vec *v, dn_slice s) {
  for (size_t i = 0; i < v->len; i++) {
    dn_slice *h = &DN__VEC_AT(v, dn_slice, i);
    if (h->len == s.len && memcmp(h->ptr, s.ptr, s.len) == 0)
      return 0;
  }
  dn_slice *slot = dn__vec_push(v);
  if (!slot)
    return DN_ENOMEM;
  *slot = s;
  return 0;
}

static int64_t min_life(int64_t a, int64_t b) {
  if (a < 0)
    return b;
  if (b < 0)
    return a;
  return a < b ? a : b;
}

static uint64_t min_expiry(uint64_t a, uint64_t b) {
  if (!a)
    return b;
  if (!b)
    return a;
  return a < b ? a : b;
}

/* RFC 9110 §8.8.3: a strong validator that changes whenever the bytes do.
 * It hashes status, headers and body, so it is the same on any machine. */
static void make_etag(const dn_rep *v, char out[35]) {
  XXH3_state_t st;
  XXH3_128bits_reset(&st);
  uint32_t status = (uint32_t)v->status;
  XXH3_128bits_update(&st, &status, sizeof status);
  for (size_t i = 0; i < v->nheaders; i++) {
    XXH3_128bits_update(&st, v->headers[i].name.ptr, v->headers[i].name.len);
    XXH3_128bits_update(&st, "\0", 1);
    XXH3_128bits_update(&st, v->headers[i].value.ptr, v->headers[i].value.len);
    XXH3_128bits_update(&st, "\0", 1);
  }
  XXH3_128bits_update(&st, v->body.ptr, v->body.len);
  XXH128_hash_t h = XXH3_128bits_digest(&st);
  out[0] = '"';
  for (int i = 0; i < 16; i++) {
    out[1 + i] = "0123456789abcdef"[(h.high64 >> (60 - 4 * i)) & 15];
    out[17 + i] = "0123456789abcdef"[(h.low64 >> (60 - 4 * i)) & 15];
  }
  out[33] = '"';
  out[34] = '\0';
}

typedef struct composition {
  dn_rep view; /* fields point into the buffers below */
  dn__buf body;
  tagset tags;
  dn__vec vary; /* dn_slice */
  int nostore;
} composition;

/* Adds the shell's own part and each hole's closure into cp. */
static int gather(getctx *c, composition *cp, const dn__shell *sh,
                  dn_rep **holes) {
  dn_rep *v = &cp->view;
  int rc = 0;
  uint64_t pos = 0;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    const dn__hole *h = &sh->holes[i];
    rc = dn__buf_append(&cp->body, sh->body.ptr + pos, h->offset - pos);
    pos = h->offset;
    if (rc == 0)
      rc = dn__buf_append(&cp->body, holes[i]->body.ptr, holes[i]->body.len);
    if (rc || h->flags == DN_EMBED_UNCACHEABLE ||
        !(holes[i]->flags & DN__REC_CACHEABLE)) {
      v->flags &= ~(unsigned)DN__REC_CACHEABLE;
      continue;
    }
    for (size_t t = 0; rc == 0 && t < holes[i]->ntags; t++)
      rc = tagset_add(&cp->tags, &holes[i]->tags[t]);
    for (size_t t = 0; rc == 0 && t < holes[i]->nvary; t++)
      rc = slices_add(&cp->vary, holes[i]->vary[t]);
    v->ttl_s = min_life(v->ttl_s, holes[i]->ttl_s);
    v->smaxage_s = min_life(v->smaxage_s, holes[i]->smaxage_s);
    v->expires_ms = min_expiry(v->expires_ms, holes[i]->expires_ms);
    if (!holes[i]->valid_seq)
      cp->nostore = 1; /* the hole itself could not be stored */
  }
  if (rc == 0)
    rc = dn__buf_append(&cp->body, sh->body.ptr + pos, sh->body.len - pos);
  (void)c;
  return rc;
}

/* Fetches the views of all cacheable holes (with their hinted tag
 * versions) in one round trip. */
static int prefetch_holes(getctx *c, const dn__shell *sh) {
  if (c->e->local || sh->nholes == 0)
    return 0;
  dn__buf kb;
  dn__buf_init(&kb, 0);
  size_t *offs = dn__malloc((sh->nholes + 1) * sizeof *offs);
  dn_slice *keys = dn__malloc(sh->nholes * sizeof *keys);
  size_t n = 0;
  int rc = offs && keys ? 0 : DN_ENOMEM;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    if (sh->holes[i].flags != DN_EMBED_CACHEABLE)
      continue;
    offs[n++] = kb.len;
    rc = dn__engine_key(c->e, &kb, 'v', sh->holes[i].uri.ptr,
                        sh->holes[i].uri.len);
  }
  if (rc == 0) {
    offs[n] = kb.len;
    for (size_t i = 0; i < n; i++)
      keys[i] = (dn_slice){kb.data + offs[i], offs[i + 1] - offs[i]};
    prefetch_records(c, keys, n);
  }
  dn__free(offs);
  dn__free(keys);
  dn__buf_free(&kb);
  return rc;
}

/* Composes uri from its shell and holes into a new representation. */
static int compose(getctx *c, const frame *me, const dn__shell *sh, uint64_t g0,
                   const dn_rep *old, int uncached, dn_rep **out) {
  dn_engine *e = c->e;
  dn_rep **holes = dn__calloc(sh->nholes ? sh->nholes : 1, sizeof *holes);
  if (!holes)
    return DN_ENOMEM;
  int rc = prefetch_holes(c, sh);
  unsigned stale_before = c->stale_served;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    dn_source src;
    rc = get_view(c, me, sh->holes[i].uri.ptr, sh->holes[i].uri.len,
                  sh->holes[i].flags == DN_EMBED_UNCACHEABLE, &holes[i], &src);
  }
  composition cp;
  memset(&cp, 0, sizeof cp);
  dn__buf_init(&cp.body, 0);
  dn__vec_init(&cp.tags.items, sizeof(dn__tagver));
  dn__vec_init(&cp.vary, sizeof(dn_slice));
  dn_rep *v = &cp.view;
  v->uri = (dn_slice){me->uri, me->len};
  v->status = sh->status;
  v->headers = sh->headers;
  v->nheaders = sh->nheaders;
  v->ttl_s = sh->ttl_s;
  v->smaxage_s = sh->smaxage_s;
  v->expires_ms = sh->expires_ms;
  v->created_ms = dn__engine_now(e);
  v->valid_seq = g0;
  v->flags =
      uncached || (sh->flags & DN__REC_UNCACHEABLE) ? 0 : DN__REC_CACHEABLE;
  cp.nostore = !g0 || c->stale_served != stale_before;
  for (size_t t = 0; rc == 0 && t < sh->ntags; t++)
    rc = tagset_add(&cp.tags, &sh->tags[t]);
  for (size_t t = 0; rc == 0 && t < sh->nvary; t++)
    rc = slices_add(&cp.vary, sh->vary[t]);
  if (rc == 0)
    rc = gather(c, &cp, sh, holes);
  if (rc)
    goto out;
  v->body = (dn_slice){cp.body.data ? cp.body.data : "", cp.body.len};
  v->tags = cp.tags.items.items;
  v->ntags = cp.tags.items.len;
  v->vary = cp.vary.items;
  v->nvary = cp.vary.len;
  char etag[35];
  if (v->flags & DN__REC_CACHEABLE) {
    make_etag(v, etag);
    v->etag = (dn_slice){etag, 34};
    v->last_modified_ms =
        old && old->etag.len == 34 && memcmp(old->etag.ptr, etag, 34) == 0
            ? old->last_modified_ms
            : v->created_ms;
  }
  if (cp.tags.conflict || !(v->flags & DN__REC_CACHEABLE))
    cp.nostore = 1;
  if (cp.nostore)
    v->valid_seq = 0;
  dn_blob *blob;
  rc = dn__view_encode(v, &blob);
  if (rc)
    goto out;
  if (!cp.nostore)
    store_record(c, 'v', me->uri, me->len, blob, v->vary, v->nvary, v->tags,
                 v->ntags, v->valid_seq, store_ttl_ms(e, v->expires_ms));
  rc = dn__view_decode(blob, out);
  if (rc)
    dn_blob_unref(blob);
out:
  for (size_t i = 0; i < sh->nholes; i++)
    dn_rep_unref(holes[i]);
  dn__free(holes);
  dn__buf_free(&cp.body);
  dn__vec_free(&cp.tags.items);
  dn__vec_free(&cp.vary);
  return rc;
}

/* Looks up the view of uri. Returns 1 with *out for a fresh hit; otherwise
 * 0, with *stale holding the old view (for Last-Modified) if one was
 * there, and *seq the invalidation sequence read with it. */
static int lookup_view(getctx *c, const char *uri, size_t len, dn_rep **out,
                       dn_rep **stale, uint64_t *seq) {
  dn_engine *e = c->e;
  key k;
  dn_blob *b = NULL;
  *seq = 0;
  if (key_make(e, &k, 'v', uri, len) == 0) {
    dn_slice ks = key_slice(&k);
    prefetch_records(c, &ks, 1);
    read_record(c, &k, 1, &b, seq);
  }
  dn_rep *v = NULL;
  if (b && dn__view_decode(b, &v) == 0)
    remember_tags(e, key_slice(&k), v->tags, v->ntags, v->valid_seq);
  dn__buf_free(&k.b);
  if (!v) {
    dn_blob_unref(b);
    return 0;
  }
  uint64_t checked =
      atomic_load_explicit(&v->checked_seq, memory_order_acquire);
  int shortcut = v->valid_seq == *seq || checked == *seq;
  int state = expired(e, v->expires_ms) ? TAGS_STALE
              : shortcut                ? TAGS_CURRENT
                                        : tags_current(c, v->tags, v->ntags);
  if (state == TAGS_CURRENT) {
    /* An in-process store read *seq before the tags; a shared store may
     * have read it after them, in the same round trip. */
    uint64_t stamp = shortcut || e->local ? *seq : c->stamp_seq;
    if (stamp)
      atomic_store_explicit(&v->checked_seq, stamp, memory_order_release);
    *out = v;
    return 1;
  }
  *stale = v;
  return state == TAGS_SOFT ? 2 : 0;
}

/* After a soft invalidation one caller regenerates a page while the others
 * keep getting the stale view: the regenerator holds the lease "g:<uri>"
 * (added with a TTL, so a regenerator that dies is replaced). Returns 1
 * when this caller took it (release it with end_regeneration), 0 when
 * another caller holds it, -1 when the store cannot say (regenerate
 * without the lease). */
static int begin_regeneration(getctx *c, const char *uri, size_t len) {
  key k;
  int rc = key_make(c->e, &k, 'g', uri, len);
  dn_blob *token = NULL;
  if (rc == 0 && (rc = dn_blob_new("1", 1, &token)) == 0)
    rc = dn__store_set(c->e->store, key_slice(&k), token, c->e->lease_ms,
                       DN_STORE_ADD);
  dn_blob_unref(token);
  dn__buf_free(&k.b);
  return rc == 0 ? 1 : rc == DN_EEXIST ? 0 : -1;
}

static void end_regeneration(getctx *c, const char *uri, size_t len) {
  key k;
  if (key_make(c->e, &k, 'g', uri, len) == 0)
    dn__store_del(c->e->store, key_slice(&k));
  dn__buf_free(&k.b);
}

static int check_chain(getctx *c, const frame *parent, const char *uri,
                       size_t len) {
  unsigned depth = parent ? parent->depth + 1 : 0;
  if (depth > c->e->max_depth)
    return dn__error_set(c->err, DN_EDEPTH, 0,
                         "'%.*s' is embedded deeper than %u levels", (int)len,
                         uri, c->e->max_depth);
  for (const frame *f = parent; f; f = f->parent)
    if (f->len == len && memcmp(f->uri, uri, len) == 0)
      return dn__error_set(c->err, DN_ECYCLE, 0,
                           "'%.*s' embeds itself through '%.*s'", (int)len, uri,
                           (int)parent->len, parent->uri);
  return 0;
}

/* Forgets the shell of a resource whose page cannot be composed (a cycle
 * or too deep), so that nothing of it stays cached. */
static void drop_shell(getctx *c, const char *uri, size_t len) {
  key k;
  if (key_make(c->e, &k, 's', uri, len) == 0)
    dn__store_del(c->e->store, key_slice(&k));
  dn__buf_free(&k.b);
}

static int get_view(getctx *c, const frame *parent, const char *uri, size_t len,
                    int uncached, dn_rep **out, dn_source *src) {
  dn_engine *e = c->e;
  int rc = check_chain(c, parent, uri, len);
  if (rc)
    return rc;
  frame me = {uri, len, parent ? parent->depth + 1 : 0, parent};
  dn_rep *stale = NULL;
  uint64_t g0 = 0;
  int found = uncached ? 0 : lookup_view(c, uri, len, out, &stale, &g0);
  int regenerating = found == 2 ? begin_regeneration(c, uri, len) : -1;
  if (regenerating == 0) {
    /* Softly invalidated and someone else is rebuilding it: serve stale.
     * A page composed around it must not be stored as fresh. */
    atomic_fetch_add_explicit(&e->st.stale_served, 1, memory_order_relaxed);
    c->stale_served++;
    *out = stale;
    *src = DN_SOURCE_HIT;
    return 0;
  }
  if (found == 1) {
    atomic_fetch_add_explicit(&e->st.hits, 1, memory_order_relaxed);
    *src = DN_SOURCE_HIT;
    return 0;
  }
  atomic_fetch_add_explicit(&e->st.misses, 1, memory_order_relaxed);
  dn_blob *sb = NULL;
  int rendered = 0, stored;
  if (uncached && (c->flags & DN_GET_CACHE_ONLY)) {
    rc = dn__error_set(c->err, DN_ENOTFOUND, 0,
                       "'%.*s' is uncacheable: a cache-only get cannot serve "
                       "it",
                       (int)len, uri);
  } else if (uncached) {
    rc = run_renderer(c, uri, len, 0, &sb, &stored);
    rendered = 1;
  } else if ((rc = load_shell(c, uri, len, &sb)) == 0 && !sb) {
    if (c->flags & DN_GET_CACHE_ONLY)
      rc = dn__error_set(c->err, DN_ENOTFOUND, 0, "'%.*s' is not cached",
                         (int)len, uri);
    else
      rc = produce_shell(c, uri, len, &sb), rendered = 1;
  }
  const dn__shell *sh = NULL;
  if (rc == 0 && (rc = dn__shell_decode(sb, &sh)) == 0)
    rc = compose(c, &me, sh, g0, stale, uncached, out);
  if ((rc == DN_ECYCLE || rc == DN_EDEPTH) && sh && sh->nholes)
    drop_shell(c, uri, len);
  if (rc == 0 && !rendered)
    atomic_fetch_add_explicit(&e->st.recomposes, 1, memory_order_relaxed);
  *src = rendered ? DN_SOURCE_RENDERED : DN_SOURCE_RECOMPOSED;
  dn_blob_unref(sb);
  if (stale)
    dn_rep_unref(stale);
  if (regenerating == 1)
    end_regeneration(c, uri, len);
  return rc;
}

int dn_engine_get(dn_engine *e, const char *uri, size_t len,
                  const dn_request *req, unsigned flags, dn_rep **out,
                  dn_get_info *info, dn_error *err) {
  if (!e || !uri || !out)
    return dn__error_set(err, DN_EINVAL, 0, "engine, uri and out are required");
  if (dn__in_render)
    return dn__error_set(err, DN_ESTATE, 0,
                         "dn_engine_get called from inside a renderer");
  atomic_fetch_add_explicit(&e->st.gets, 1, memory_order_relaxed);
  uint64_t seq, stamp = 0;
  if (e->hot && dn__store_seq_get(e->store, &seq) == 0) {
    stamp = seq;
    dn_rep *rep = dn__hot_get(e->id, uri, len, seq);
    if (rep && (!rep->expires_ms || dn__engine_now(e) < rep->expires_ms)) {
      atomic_fetch_add_explicit(&e->st.hits, 1, memory_order_relaxed);
      if (info)
        *info = (dn_get_info){DN_SOURCE_HIT, 0};
      *out = rep;
      return 0;
    }
    dn_rep_unref(rep);
  }
  char mem[KEY_STACK];
  dn__buf nb;
  dn__buf_init_with(&nb, mem, sizeof mem, DN_URI_MAX + 1);
  int rc = dn__uri_normalize_buf(&nb, uri, len, err);
  if (rc) {
    dn__buf_free(&nb);
    return rc;
  }
  getctx c = GETCTX(e, req, flags, err);
  c.stamp_seq = stamp;
  dn_source src = DN_SOURCE_HIT;
  rc = get_view(&c, NULL, nb.data, nb.len, 0, out, &src);
  pre_clear(&c);
  dn__buf_free(&nb);
  if (rc == 0 && e->hot && !c.stale_served)
    dn__hot_put(e->id, uri, len, *out);
  if (info) {
    info->source = src;
    info->renders = c.renders;
  }
  return rc;
}

/* ---- direct writes --------------------------------------------------------
 */
int dn_engine_put_begin(dn_engine *e, const char *uri, size_t len,
                        dn_render **out, dn_error *err) {
  if (!e || !uri || !out)
    return dn__error_set(err, DN_EINVAL, 0, "engine, uri and out are required");
  if (dn__in_render)
    return dn__error_set(err, DN_ESTATE, 0, "put called from a renderer");
  dn__buf nb;
  dn__buf_init(&nb, DN_URI_MAX + 1);
  int rc = dn__uri_normalize_buf(&nb, uri, len, err);
  dn_render *r = rc ? NULL : dn__malloc(sizeof *r);
  if (rc == 0 && !r)
    rc = DN_ENOMEM;
  if (rc == 0 && (rc = dn__render_init(r, e, nb.data, nb.len, NULL, 1)) != 0)
    dn__free(r);
  dn__buf_free(&nb);
  if (rc)
    return rc;
  r->put_mode = 1;
  *out = r;
  return 0;
}

void dn_engine_put_abort(dn_render *r) {
  if (!r)
    return;
  dn__render_free(r);
  dn__free(r);
}

/* 1 when what r holds may be stored, 0 when not, -1 when out of memory. */
static int render_storable(dn_render *r) {
  if (r->uncacheable)
    return 0;
  dn__shell s;
  dn__vec tv, hv, ov;
  if (dn__render_to_shell(r, 0, &s, &tv, &hv, &ov))
    return -1;
  int ok = storable_headers(&s);
  dn__vec_free(&tv);
  dn__vec_free(&hv);
  dn__vec_free(&ov);
  return ok;
}

int dn_engine_put_commit(dn_render *r, dn_error *err) {
  if (!r || !r->put_mode)
    return dn__error_set(err, DN_EINVAL, 0, "not a render from put_begin");
  dn_engine *e = r->e;
  int rc = 0;
  if (r->failed) {
    rc =
        dn__error_set(err, DN_ESTATE, 0, "the write failed earlier: %s",
                      r->fail_msg[0] ? r->fail_msg : dn_strerror(r->fail_code));
    goto out;
  }
  /* Refuse what cannot be stored before anything changes. */
  if ((rc = render_storable(r)) <= 0) {
    rc = rc < 0 ? dn__error_set(err, DN_ENOMEM, 0, "out of memory")
                : dn__error_set(err, DN_EINVAL, 0,
                                "'%s' is not storable (private, no-store, "
                                "Set-Cookie or marked uncacheable)",
                                r->uri);
    goto out;
  }
  /* Make every page that embeds the URI stale first, then snapshot the
   * new versions for the shell being written. */
  if ((rc = dn_engine_purge(e, r->uri, r->uri_len, err)) != 0)
    goto out;
  uint64_t g0;
  if ((rc = dn__store_seq_get(e->store, &g0)) != 0) {
    rc = dn__error_set(err, DN_ESTORE, 0, "store unavailable: %s",
                       dn_strerror(rc));
    goto out;
  }
  getctx c = GETCTX(e, NULL, 0, err);
  dn_blob *shell = NULL;
  int stored = 0;
  rc = finish_render(&c, r, g0, 1, &shell, &stored);
  if (rc == 0 && !shell)
    rc = dn__error_set(err, DN_EBUSY, 0,
                       "a tag of '%s' was invalidated while it was written; "
                       "write it again",
                       r->uri);
  else if (rc == 0 && !stored)
    rc = dn__error_set(err, DN_ESTORE, 0, "cannot store '%s': %s", r->uri,
                       dn_strerror(c.store_rc ? c.store_rc : DN_ESTORE));
  dn_blob_unref(shell);
out:
  dn_engine_put_abort(r);
  return rc;
}

/* ---- reads for introspection ---------------------------------------------
 */
int dn__engine_read(dn_engine *e, const char *uri, size_t len, int is_view,
                    dn_blob **out, int *valid) {
  getctx c = GETCTX(e, NULL, 0, NULL);
  key k;
  uint64_t seq = 0;
  *out = NULL;
  *valid = 0;
  int rc = key_make(e, &k, is_view ? 'v' : 's', uri, len);
  if (rc == 0)
    rc = read_record(&c, &k, is_view, out, &seq);
  dn__buf_free(&k.b);
  if (rc || !*out)
    return rc;
  if (is_view) {
    dn_rep *v;
    if (dn__view_decode(*out, &v) == 0)
      *valid = !expired(e, v->expires_ms) &&
               (v->valid_seq == seq ||
                tags_current(&c, v->tags, v->ntags) == TAGS_CURRENT);
  } else {
    const dn__shell *s;
    if (dn__shell_decode(*out, &s) == 0)
      *valid = !expired(e, s->expires_ms) &&
               tags_current(&c, s->tags, s->ntags) == TAGS_CURRENT;
  }
  pre_clear(&c);
  return 0;
}
