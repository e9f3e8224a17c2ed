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

/* ---- composition ----------------------------------------------------------
 */
static int get_view(dn__getctx *c, const dn__frame *parent, const char *uri,
                    size_t len, int uncached, dn_rep **out, dn_source *src);

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
  XXH128_canonical_t h; /* big-endian, high half first */
  XXH128_canonicalFromHash(&h, XXH3_128bits_digest(&st));
  out[0] = '"';
  dn__hex_encode(out + 1, h.digest, sizeof h.digest, 0);
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
static int gather(dn__getctx *c, composition *cp, const dn__shell *sh,
                  dn_rep **holes) {
  dn_rep *v = &cp->view;
  int rc = 0;
  uint64_t pos = 0;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    const dn__hole *h = &sh->holes[i];
    rc = dn__buf_append(&cp->body, sh->body.ptr + pos, h->offset - pos);
    pos = h->offset;
    if (!holes[i]) { /* an optional hole that could not be got */
      cp->nostore = 1;
      continue;
    }
    if (rc == 0)
      rc = dn__buf_append(&cp->body, holes[i]->body.ptr, holes[i]->body.len);
    if (rc || (h->flags & DN_EMBED_UNCACHEABLE) ||
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
    v->swr_s = v->swr_s < holes[i]->swr_s ? v->swr_s : holes[i]->swr_s;
    v->sie_s = v->sie_s < holes[i]->sie_s ? v->sie_s : holes[i]->sie_s;
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
static int prefetch_holes(dn__getctx *c, const dn__shell *sh) {
  if (c->e->local || sh->nholes == 0)
    return 0;
  dn__buf kb;
  dn__buf_init(&kb, 0);
  size_t *offs = dn__malloc((sh->nholes + 1) * sizeof *offs);
  dn_slice *keys = dn__malloc(sh->nholes * sizeof *keys);
  size_t n = 0;
  int rc = offs && keys ? 0 : DN_ENOMEM;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    if (sh->holes[i].flags & DN_EMBED_UNCACHEABLE)
      continue;
    offs[n++] = kb.len;
    rc = dn__engine_key(c->e, &kb, 'v', sh->holes[i].uri.ptr,
                        sh->holes[i].uri.len);
  }
  if (rc == 0) {
    offs[n] = kb.len;
    for (size_t i = 0; i < n; i++)
      keys[i] = (dn_slice){kb.data + offs[i], offs[i + 1] - offs[i]};
    dn__prefetch_records(c, keys, n);
  }
  dn__free(offs);
  dn__free(keys);
  dn__buf_free(&kb);
  return rc;
}

/* Composes uri from its shell and holes into a new representation. */
static int compose(dn__getctx *c, const dn__frame *me, const dn__shell *sh,
                   uint64_t g0, const dn_rep *old, int uncached, dn_rep **out) {
  dn_engine *e = c->e;
  dn_rep **holes = dn__calloc(sh->nholes ? sh->nholes : 1, sizeof *holes);
  if (!holes)
    return DN_ENOMEM;
  int rc = prefetch_holes(c, sh);
  unsigned stale_before = c->stale_served;
  int cp_alt_used = 0;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++) {
    dn_source src;
    int unc = (sh->holes[i].flags & DN_EMBED_UNCACHEABLE) != 0;
    rc = get_view(c, me, sh->holes[i].uri.ptr, sh->holes[i].uri.len, unc,
                  &holes[i], &src);
    if (rc && rc != DN_ENOMEM && sh->holes[i].alt.len &&
        !(rc == DN_ENOTFOUND && (c->flags & DN_GET_CACHE_ONLY))) {
      /* ESI's alt: the fallback resource, and a page that needed it is not
       * stored, so the next request tries the first choice again. */
      cp_alt_used = 1;
      rc = get_view(c, me, sh->holes[i].alt.ptr, sh->holes[i].alt.len, unc,
                    &holes[i], &src);
    }
    if (rc && rc != DN_ENOMEM && (sh->holes[i].flags & DN_EMBED_OPTIONAL) &&
        !(rc == DN_ENOTFOUND && (c->flags & DN_GET_CACHE_ONLY))) {
      dn__engine_log(c->e, DN_LOG_WARN, "optional hole %.*s left empty: %s",
                     (int)sh->holes[i].uri.len, sh->holes[i].uri.ptr,
                     dn_strerror(rc));
      holes[i] = NULL;
      rc = 0;
    }
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
  v->swr_s = sh->swr_s;
  v->sie_s = sh->sie_s;
  v->expires_ms = sh->expires_ms;
  v->created_ms = dn__engine_now(e);
  v->valid_seq = g0;
  v->flags =
      uncached || (sh->flags & DN__REC_UNCACHEABLE) ? 0 : DN__REC_CACHEABLE;
  cp.nostore = !g0 || c->stale_served != stale_before || cp_alt_used;
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
    dn__store_record(
        c, 'v', me->uri, me->len, blob, v->vary, v->nvary, v->tags, v->ntags,
        v->valid_seq,
        dn__store_ttl_ms(e, v->expires_ms,
                         v->swr_s > v->sie_s ? v->swr_s : v->sie_s));
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

/* 1 when the expired view v is within one of its stale windows:
 * stale-if-error when if_error is set, else either. */
static int stale_window(dn_engine *e, const dn_rep *v, int if_error) {
  uint64_t now = dn__engine_now(e), end = v->expires_ms;
  uint32_t w = if_error ? v->sie_s : v->swr_s > v->sie_s ? v->swr_s : v->sie_s;
  return end && w && now < end + w * 1000ull;
}

static int within_swr(dn_engine *e, const dn_rep *v) {
  return v->swr_s && dn__engine_now(e) < v->expires_ms + v->swr_s * 1000ull;
}

/* Looks up the view of uri. Returns 1 with *out for a fresh hit; 3 with
 * *stale for an expired view that is still within a stale window; otherwise
 * 0, with *stale holding the old view (for Last-Modified) if one was
 * there, and *seq the invalidation sequence read with it. */
static int lookup_view(dn__getctx *c, const char *uri, size_t len, dn_rep **out,
                       dn_rep **stale, uint64_t *seq) {
  dn_engine *e = c->e;
  dn__key k;
  dn_blob *b = NULL;
  *seq = 0;
  if (dn__key_make(e, &k, 'v', uri, len) == 0) {
    dn_slice ks = dn__key_slice(&k);
    dn__prefetch_records(c, &ks, 1);
    dn__read_record(c, &k, 1, &b, seq);
  }
  dn_rep *v = NULL;
  if (b && dn__view_decode(b, &v) == 0)
    dn__remember_tags(e, dn__key_slice(&k), v->tags, v->ntags, v->valid_seq);
  dn__buf_free(&k.b);
  if (!v) {
    dn_blob_unref(b);
    return 0;
  }
  uint64_t checked =
      atomic_load_explicit(&v->checked_seq, memory_order_acquire);
  int shortcut = v->valid_seq == *seq || checked == *seq;
  int expired = dn__expired(e, v->expires_ms);
  int state = expired    ? TAGS_STALE
              : shortcut ? TAGS_CURRENT
                         : dn__tags_current(c, v->tags, v->ntags);
  if (expired && stale_window(e, v, 0) &&
      (shortcut || dn__tags_current(c, v->tags, v->ntags) == TAGS_CURRENT)) {
    /* Expired, but nothing in it was invalidated, and it may still be
     * served stale for a while (RFC 5861). */
    *stale = v;
    return 3;
  }
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
static int begin_regeneration(dn__getctx *c, const char *uri, size_t len) {
  dn__key k;
  int rc = dn__key_make(c->e, &k, 'g', uri, len);
  dn_blob *token = NULL;
  if (rc == 0 && (rc = dn_blob_new("1", 1, &token)) == 0)
    rc = dn__store_set(c->e->store, dn__key_slice(&k), token, c->e->lease_ms,
                       DN_STORE_ADD);
  dn_blob_unref(token);
  dn__buf_free(&k.b);
  return rc == 0 ? 1 : rc == DN_EEXIST ? 0 : -1;
}

static void end_regeneration(dn__getctx *c, const char *uri, size_t len) {
  dn__key k;
  if (dn__key_make(c->e, &k, 'g', uri, len) == 0)
    dn__store_del(c->e->store, dn__key_slice(&k));
  dn__buf_free(&k.b);
}

static int check_chain(dn__getctx *c, const dn__frame *parent, const char *uri,
                       size_t len) {
  unsigned depth = parent ? parent->depth + 1 : 0;
  if (depth > c->e->max_depth)
    return dn__error_set(c->err, DN_EDEPTH, 0,
                         "'%.*s' is embedded deeper than %u levels", (int)len,
                         uri, c->e->max_depth);
  for (const dn__frame *f = parent; f; f = f->parent)
    if (f->len == len && memcmp(f->uri, uri, len) == 0)
      return dn__error_set(c->err, DN_ECYCLE, 0,
                           "'%.*s' embeds itself through '%.*s'", (int)len, uri,
                           (int)parent->len, parent->uri);
  return 0;
}

/* Forgets the shell of a resource whose page cannot be composed (a cycle
 * or too deep), so that nothing of it stays cached. */
static void drop_shell(dn__getctx *c, const char *uri, size_t len) {
  dn__key k;
  if (dn__key_make(c->e, &k, 's', uri, len) == 0)
    dn__store_del(c->e->store, dn__key_slice(&k));
  dn__buf_free(&k.b);
}

static int get_view(dn__getctx *c, const dn__frame *parent, const char *uri,
                    size_t len, int uncached, dn_rep **out, dn_source *src) {
  dn_engine *e = c->e;
  int rc = check_chain(c, parent, uri, len);
  if (rc)
    return rc;
  dn__frame me = {uri, len, parent ? parent->depth + 1 : 0, parent};
  dn_rep *stale = NULL;
  uint64_t g0 = 0;
  int found = uncached ? 0 : lookup_view(c, uri, len, out, &stale, &g0);
  int expired_stale = found == 3;
  int regenerating = found == 2 || (expired_stale && within_swr(e, stale))
                         ? begin_regeneration(c, uri, len)
                         : -1;
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
    rc = dn__run_renderer(c, uri, len, 0, &sb, &stored);
    rendered = 1;
  } else if ((rc = dn__load_shell(c, uri, len, &sb)) == 0 && !sb) {
    if (c->flags & DN_GET_CACHE_ONLY)
      rc = dn__error_set(c->err, DN_ENOTFOUND, 0, "'%.*s' is not cached",
                         (int)len, uri);
    else
      rc = dn__produce_shell(c, uri, len, &sb), rendered = 1;
  }
  const dn__shell *sh = NULL;
  if (rc == 0 && (rc = dn__shell_decode(sb, &sh)) == 0)
    rc = compose(c, &me, sh, g0, stale, uncached, out);
  if ((rc == DN_ECYCLE || rc == DN_EDEPTH) && sh && sh->nholes)
    drop_shell(c, uri, len);
  if (rc && rc != DN_ENOMEM && expired_stale && stale_window(e, stale, 1) &&
      !(c->flags & DN_GET_CACHE_ONLY)) {
    /* stale-if-error (RFC 5861 §4): the expired copy instead of the error.
     * A page composed around it must not be stored as fresh. */
    dn__engine_log(e, DN_LOG_WARN, "serving %.*s stale after an error: %s",
                   (int)len, uri, c->err ? c->err->text : dn_strerror(rc));
    atomic_fetch_add_explicit(&e->st.stale_served, 1, memory_order_relaxed);
    c->stale_served++;
    if (c->err)
      memset(c->err, 0, sizeof *c->err);
    *out = stale;
    stale = NULL;
    rendered = 0;
    rc = 0;
    *src = DN_SOURCE_HIT;
    dn_blob_unref(sb);
    if (regenerating == 1)
      end_regeneration(c, uri, len);
    return 0;
  }
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
  dn__getctx c = GETCTX(e, req, flags, err);
  c.stamp_seq = stamp;
  dn_source src = DN_SOURCE_HIT;
  rc = get_view(&c, NULL, nb.data, nb.len, 0, out, &src);
  dn__pre_clear(&c);
  dn__buf_free(&nb);
  if (rc == 0 && e->hot && !c.stale_served)
    dn__hot_put(e->id, uri, len, *out);
  if (info) {
    info->source = src;
    info->renders = c.renders;
  }
  return rc;
}

/* ---- reads for introspection ---------------------------------------------
 */
int dn__engine_read(dn_engine *e, const char *uri, size_t len, int is_view,
                    dn_blob **out, int *valid) {
  dn__getctx c = GETCTX(e, NULL, 0, NULL);
  dn__key k;
  uint64_t seq = 0;
  *out = NULL;
  *valid = 0;
  int rc = dn__key_make(e, &k, is_view ? 'v' : 's', uri, len);
  if (rc == 0)
    rc = dn__read_record(&c, &k, is_view, out, &seq);
  dn__buf_free(&k.b);
  if (rc || !*out)
    return rc;
  if (is_view) {
    dn_rep *v;
    if (dn__view_decode(*out, &v) == 0)
      *valid = !dn__expired(e, v->expires_ms) &&
               (v->valid_seq == seq ||
                dn__tags_current(&c, v->tags, v->ntags) == TAGS_CURRENT);
  } else {
    const dn__shell *s;
    if (dn__shell_decode(*out, &s) == 0)
      *valid = !dn__expired(e, s->expires_ms) &&
               dn__tags_current(&c, s->tags, s->ntags) == TAGS_CURRENT;
  }
  dn__pre_clear(&c);
  return 0;
}
