/* engine.c - the engine's lifecycle, renderer registry, invalidation,
 * direct writes and introspection. Getting and composing is in compose.c.
 *
 * Invalidation is O(1) per tag: it bumps the store's invalidation sequence
 * and gives each tag a new random version. Every shell and view recorded
 * the versions of its tags when it was made, so all of them become stale
 * at once without being visited.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "engine_internal.h"
#include "error.h"
#include "options.h"
#include "prefetch_hints.h"
#include "text.h"
#include "thread_cache.h"
#include "uri.h"

static uint64_t realtime_ms(void *ud) {
  (void)ud;
  struct timespec ts;
  /* The coarse clock is read without a system call and is precise to a
   * few milliseconds, enough for lifetimes counted in seconds. */
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void dn_engine_options_init_size(dn_engine_options *o, size_t size) {
  dn_engine_options d;
  memset(&d, 0, sizeof d);
  d.key_prefix = "dn";
  d.max_depth = 32;
  d.lease_ms = 10000;
  d.soft_grace_ms = 30000;
  dn__options_init(o, size, &d, sizeof d);
}

int dn_engine_new(const dn_engine_options *opts, dn_engine **out) {
  dn_engine_options def;
  dn_engine_options_init(&def);
  /* Options from an older header end before the fields it did not have;
   * log_ud is the last field this library knows. */
  if (opts &&
      DN__OPTIONS_READ(dn_engine_options, store, log_ud, &def, opts, NULL) != 0)
    return DN_EINVAL;
  opts = &def;
  if (!out)
    return DN_EINVAL;
  const char *prefix = opts->key_prefix ? opts->key_prefix : "dn";
  if (!*prefix || strlen(prefix) > 64 || strchr(prefix, ' '))
    return DN_EINVAL;
  dn_engine *e = dn__calloc(1, sizeof *e);
  if (!e)
    return DN_ENOMEM;
  e->prefix_len = strlen(prefix);
  e->prefix = dn__strndup(prefix, e->prefix_len);
  int rc = e->prefix ? 0 : DN_ENOMEM;
  if (rc == 0 && opts->store) {
    e->store = opts->store;
  } else if (rc == 0) {
    rc = dn_store_memory_new(NULL, &e->store);
    e->owns_store = 1;
  }
  if (rc) {
    dn__free(e->prefix);
    dn__free(e);
    return rc;
  }
  e->now_ms = opts->now_ms ? opts->now_ms : realtime_ms;
  e->clock_ud = opts->clock_ud;
  e->max_depth = opts->max_depth ? opts->max_depth : 32;
  e->default_ttl_s = opts->default_ttl_s;
  e->lease_ms = opts->lease_ms ? opts->lease_ms : 10000;
  e->soft_grace_ms = opts->soft_grace_ms ? opts->soft_grace_ms : 30000;
  e->log = opts->log;
  e->log_ud = opts->log_ud;
  e->id = dn__hot_engine_id();
  e->local = (e->store->ops->flags & DN_STORE_F_LOCAL) != 0;
  e->hot = !opts->no_thread_cache &&
           !(e->store->ops->flags & DN_STORE_F_KEEPS_NOTHING);
  if (!e->local && (rc = dn__hints_new(&e->hints)) != 0) {
    if (e->owns_store)
      dn_store_free(e->store);
    dn__free(e->prefix);
    dn__free(e);
    return rc;
  }
  dn__vec_init(&e->renderers, sizeof(dn__renderer *));
  dn__vec_init(&e->listeners, sizeof(dn__listener));
  pthread_mutex_init(&e->flight_mu, NULL);
  *out = e;
  return 0;
}

static void renderer_free(dn__renderer *r) {
  if (!r)
    return;
  dn__free(r->pattern);
  dn__free(r->name);
  dn__free(r);
}

void dn_engine_free(dn_engine *e) {
  if (!e)
    return;
  dn__hot_forget(e->id);
  dn__hints_free(e->hints);
  for (size_t i = 0; i < e->renderers.len; i++)
    renderer_free(DN__VEC_AT(&e->renderers, dn__renderer *, i));
  dn__vec_free(&e->renderers);
  dn__vec_free(&e->listeners);
  pthread_mutex_destroy(&e->flight_mu);
  if (e->owns_store)
    dn_store_free(e->store);
  dn__free(e->prefix);
  dn__free(e);
}

uint64_t dn__engine_now(dn_engine *e) { return e->now_ms(e->clock_ud); }

int dn__engine_key(dn_engine *e, dn__buf *b, char kind, const char *body,
                   size_t len) {
  size_t mark = b->len;
  char sep[3] = {':', kind, ':'};
  int rc = dn__buf_append(b, e->prefix, e->prefix_len);
  if (rc == 0)
    rc = dn__buf_append(b, sep, 3);
  if (rc == 0)
    rc = dn__buf_append(b, body, len);
  if (rc)
    dn__buf_truncate(b, mark);
  return rc;
}

void dn__engine_log(dn_engine *e, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dn__log_emit(e->log, e->log_ud, level, 256, fmt, ap);
  va_end(ap);
}

dn_store *dn_engine_store(dn_engine *e) { return e->store; }

/* ---- renderers ------------------------------------------------------------
 */

/* Splits a pattern into its normalised path part and its kind: a trailing
 * '*' makes a prefix; a trailing "{?...}" names query variables. */
static int parse_pattern(const char *pattern, char **norm, size_t *len,
                         int *prefix) {
  size_t n = strlen(pattern);
  *prefix = 0;
  const char *brace = strchr(pattern, '{');
  if (brace) {
    if (brace[1] != '?' || pattern[n - 1] != '}' || strchr(brace + 1, '{') ||
        memchr(brace, '}', n - 1 - (size_t)(brace - pattern)))
      return DN_EURI;
    n = (size_t)(brace - pattern);
  } else if (n && pattern[n - 1] == '*') {
    *prefix = 1;
    n--;
  }
  if (memchr(pattern, '?', n))
    return DN_EURI;
  dn__buf b;
  dn__buf_init(&b, DN_URI_MAX + 1);
  int rc = dn__uri_normalize_buf(&b, pattern, n, NULL);
  if (rc) {
    dn__buf_free(&b);
    return rc == DN_ENOMEM ? rc : DN_EURI;
  }
  *norm = dn__buf_steal(&b, len);
  return *norm ? 0 : DN_ENOMEM;
}

int dn_engine_register(dn_engine *e, const char *pattern, const char *name,
                       dn_render_fn fn, void *ud) {
  if (!e || !pattern || !fn)
    return DN_EINVAL;
  dn__renderer *r = dn__calloc(1, sizeof *r);
  if (!r)
    return DN_ENOMEM;
  int rc = parse_pattern(pattern, &r->pattern, &r->pattern_len, &r->prefix);
  if (rc == 0) {
    const char *label = name ? name : pattern;
    r->name = dn__strndup(label, strlen(label));
    rc = r->name ? 0 : DN_ENOMEM;
  }
  if (rc) {
    renderer_free(r);
    return rc;
  }
  r->fn = fn;
  r->ud = ud;
  atomic_init(&r->renders, 0);
  for (size_t i = 0; i < e->renderers.len; i++) {
    dn__renderer **slot = &DN__VEC_AT(&e->renderers, dn__renderer *, i);
    if ((*slot)->prefix == r->prefix &&
        (*slot)->pattern_len == r->pattern_len &&
        memcmp((*slot)->pattern, r->pattern, r->pattern_len) == 0) {
      renderer_free(*slot);
      *slot = r;
      return 0;
    }
  }
  dn__renderer **slot = dn__vec_push(&e->renderers);
  if (!slot) {
    renderer_free(r);
    return DN_ENOMEM;
  }
  *slot = r;
  return 0;
}

/* ---- invalidation ---------------------------------------------------------
 */
int dn_engine_on_invalidate(dn_engine *e, dn_invalidate_fn fn, void *ud) {
  if (!e || !fn)
    return DN_EINVAL;
  dn__listener *l = dn__vec_push(&e->listeners);
  if (!l)
    return DN_ENOMEM;
  l->fn = fn;
  l->ud = ud;
  return 0;
}

/* The current versions of the tags at keys (0 where missing or unreadable):
 * a soft invalidation only excuses what carries exactly these. */
static void read_versions(dn_engine *e, const dn_slice *keys, size_t n,
                          uint64_t *out) {
  dn_blob **vals = dn__calloc(n, sizeof *vals);
  if (vals && dn__store_get_multi(e->store, keys, n, vals, NULL) == 0)
    for (size_t i = 0; i < n; i++) {
      dn__tagrec t;
      out[i] = vals[i] && dn__tagrec_decode(vals[i], &t) == 0 ? t.version : 0;
    }
  for (size_t i = 0; vals && i < n; i++)
    dn_blob_unref(vals[i]);
  dn__free(vals);
}

/* Gives every tag a new random version stamped with a new sequence:
 * bump the sequence, write the versions, bump it again (see below). */
static int bump_tags(dn_engine *e, const dn_slice *tags, size_t n,
                     uint64_t soft_until, dn_error *err) {
  uint64_t seq;
  int rc = dn__store_seq_bump(e->store, &seq);
  if (rc)
    return dn__error_set(err, rc == DN_ENOMEM ? rc : DN_ESTORE, 0,
                         "cannot advance the invalidation sequence: %s",
                         dn_strerror(rc));
  dn__buf kb;
  dn__buf_init(&kb, 0);
  size_t *offs = dn__calloc(n + 1, sizeof *offs);
  dn_slice *keys = dn__calloc(n, sizeof *keys);
  dn_blob **vals = dn__calloc(n, sizeof *vals);
  uint64_t *prev = dn__calloc(n, sizeof *prev);
  rc = offs && keys && vals && prev ? 0 : DN_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    offs[i] = kb.len;
    rc = dn__engine_key(e, &kb, 't', tags[i].ptr, tags[i].len);
  }
  if (rc == 0) {
    offs[n] = kb.len;
    for (size_t i = 0; i < n; i++)
      keys[i] = (dn_slice){kb.data + offs[i], offs[i + 1] - offs[i]};
    if (soft_until)
      read_versions(e, keys, n, prev);
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char rec[DN__TAGREC_LEN];
    dn__tagrec t = {dn__random_u64(), seq, prev[i] ? soft_until : 0, prev[i]};
    dn__tagrec_encode(&t, rec);
    rc = dn_blob_new(rec, sizeof rec, &vals[i]);
  }
  if (rc == 0) {
    rc = dn__store_set_multi(e->store, keys, vals, n, 0);
    if (rc)
      rc = dn__error_set(err, rc == DN_ENOMEM ? rc : DN_ESTORE, 0,
                         "cannot store tag versions: %s", dn_strerror(rc));
  }
  /* Advance the sequence once more now that the new versions are in place.
   * A reader that checked the tags between the two steps may have seen the
   * old versions and remembered them as current for sequence `seq`; the
   * second step makes that memory stale. It is attempted even when the tag
   * write failed: some versions may have landed all the same. */
  int rc2 = dn__store_seq_bump(e->store, &seq);
  if (rc == 0 && rc2)
    rc = dn__error_set(err, rc2 == DN_ENOMEM ? rc2 : DN_ESTORE, 0,
                       "cannot advance the invalidation sequence: %s",
                       dn_strerror(rc2));
  if (rc2 == 0)
    atomic_store_explicit(&e->last_seq, seq, memory_order_relaxed);
  for (size_t i = 0; vals && i < n; i++)
    dn_blob_unref(vals[i]);
  dn__free(prev);
  dn__free(vals);
  dn__free(keys);
  dn__free(offs);
  dn__buf_free(&kb);
  return rc;
}

static int invalidate(dn_engine *e, const dn_slice *tags, size_t n,
                      unsigned flags, dn_error *err) {
  if (n == 0)
    return 0;
  uint64_t soft_until =
      flags & DN_INVALIDATE_SOFT ? dn__engine_now(e) + e->soft_grace_ms : 0;
  int rc = bump_tags(e, tags, n, soft_until, err);
  if (rc)
    return rc;
  atomic_fetch_add_explicit(&e->st.invalidations, n, memory_order_relaxed);
  for (size_t i = 0; i < e->listeners.len; i++) {
    dn__listener *l = &DN__VEC_AT(&e->listeners, dn__listener, i);
    l->fn(l->ud, tags, n);
  }
  return 0;
}

int dn_engine_invalidate_tags(dn_engine *e, const dn_slice *tags, size_t n,
                              dn_error *err) {
  return dn_engine_invalidate_tags_ex(e, tags, n, 0, err);
}

int dn_engine_invalidate_tags_ex(dn_engine *e, const dn_slice *tags, size_t n,
                                 unsigned flags, dn_error *err) {
  if (!e || (!tags && n))
    return dn__error_set(err, DN_EINVAL, 0, "engine and tags are required");
  if (dn__in_render)
    return dn__error_set(err, DN_ESTATE, 0,
                         "invalidation called from inside a renderer");
  for (size_t i = 0; i < n; i++) {
    dn_error te;
    if (dn_tag_validate(tags[i].ptr, tags[i].len, &te))
      return dn__error_set(err, DN_ETAG, te.position, "tag %zu: %s", i,
                           te.text);
  }
  return invalidate(e, tags, n, flags, err);
}

/* Normalises uri into b and computes its URI tag. */
static int uri_and_tag(const char *uri, size_t len, dn__buf *b,
                       char tag[DN_URI_TAG_MAX + 1], size_t *tag_len,
                       dn_error *err) {
  dn__buf_init(b, DN_URI_MAX + 1);
  if (!uri)
    return dn__error_set(err, DN_EINVAL, 0, "uri is required");
  int rc = dn__uri_normalize_buf(b, uri, len, err);
  if (rc)
    return rc;
  *tag_len = dn__uri_tag_write(b->data, b->len, tag);
  return 0;
}

int dn_engine_purge(dn_engine *e, const char *uri, size_t len, dn_error *err) {
  return dn_engine_purge_ex(e, uri, len, 0, err);
}

int dn_engine_purge_ex(dn_engine *e, const char *uri, size_t len,
                       unsigned flags, dn_error *err) {
  if (!e)
    return dn__error_set(err, DN_EINVAL, 0, "engine is required");
  if (dn__in_render)
    return dn__error_set(err, DN_ESTATE, 0,
                         "purge called from inside a renderer");
  dn__buf b;
  char tag[DN_URI_TAG_MAX + 1];
  size_t tag_len;
  int rc = uri_and_tag(uri, len, &b, tag, &tag_len, err);
  if (rc == 0) {
    dn_slice t = {tag, tag_len};
    rc = invalidate(e, &t, 1, flags, err);
  }
  if (rc == 0)
    atomic_fetch_add_explicit(&e->st.purges, 1, memory_order_relaxed);
  dn__buf_free(&b);
  return rc;
}

int dn_engine_delete(dn_engine *e, const char *uri, size_t len, dn_error *err) {
  int rc = dn_engine_purge(e, uri, len, err);
  if (rc)
    return rc;
  dn__buf b, k;
  char tag[DN_URI_TAG_MAX + 1];
  size_t tag_len;
  rc = uri_and_tag(uri, len, &b, tag, &tag_len, err);
  dn__buf_init(&k, 0);
  for (const char *kind = "sv"; rc == 0 && *kind; kind++) {
    dn__buf_truncate(&k, 0);
    rc = dn__engine_key(e, &k, *kind, b.data, b.len);
    if (rc == 0)
      dn__store_del(e->store, (dn_slice){k.data, k.len});
  }
  dn__buf_free(&k);
  dn__buf_free(&b);
  return rc;
}

/* ---- statistics -----------------------------------------------------------
 */
void dn_engine_stats_get(dn_engine *e, dn_engine_stats *o) {
#define LOAD(f) o->f = atomic_load_explicit(&e->st.f, memory_order_relaxed)
  LOAD(gets);
  LOAD(hits);
  LOAD(misses);
  LOAD(recomposes);
  LOAD(renders);
  LOAD(purges);
  LOAD(invalidations);
  LOAD(store_errors);
  LOAD(raced_renders);
  LOAD(coalesced_waits);
  LOAD(stale_served);
#undef LOAD
}

void dn_engine_renderer_stats(dn_engine *e,
                              void (*fn)(void *ud, const char *name,
                                         uint64_t renders),
                              void *ud) {
  for (size_t i = 0; i < e->renderers.len; i++) {
    dn__renderer *r = DN__VEC_AT(&e->renderers, dn__renderer *, i);
    fn(ud, r->name, atomic_load_explicit(&r->renders, memory_order_relaxed));
  }
}
