/* single_flight.c - running renderers: finding the renderer for a URI, turning
 * a render into a stored shell (with its tag snapshot and race check), single
 * flight within the process and the store lease across processes, and writing
 * representations directly (dn_engine_put_*).
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
#include "thread_cache.h"
#include "uri.h"

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
static int finish_render(dn__getctx *c, dn_render *r, uint64_t g0,
                         int cacheable, dn_blob **out, int *stored) {
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
  if (!cacheable || !dn__storable_headers(&s))
    s.flags |= DN__REC_UNCACHEABLE;
  else if ((rc = dn__snapshot_tags(e, s.tags, s.ntags, g0, &raced)) != 0) {
    dn__store_failed(e, rc, "tag snapshot");
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
  if ((c->store_rc = dn__store_record(
           c, 's', r->uri, r->uri_len, *out, s.vary, s.nvary, s.tags, s.ntags,
           0, dn__store_ttl_ms(e, s.expires_ms, 0))) != 0)
    goto out;
  for (size_t i = 0; i < s.nholes; i++) {
    dn__key k;
    if (dn__key_make(e, &k, 'r', s.holes[i].uri.ptr, s.holes[i].uri.len) == 0)
      dn__store_index_add(e->store, dn__key_slice(&k),
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
int dn__run_renderer(dn__getctx *c, const char *uri, size_t len, int cacheable,
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
static int lease_or_wait(dn__getctx *c, dn_slice lk, const char *uri,
                         size_t len, dn_blob **out, int *leased) {
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
    if (rc == 0) {
      /* The holder before us may have stored the shell and released the
       * lease between our miss and this add: look once more, so that a
       * resource is rendered once across processes. */
      if (dn__load_shell(c, uri, len, out) == 0 && *out) {
        dn__store_del(e->store, lk);
        dn_blob_unref(tb);
        return 1;
      }
      *leased = 1;
    }
    if (rc != DN_EEXIST || waited >= e->lease_ms)
      break;
    sleep_ms(step);
    waited += step;
    step = step < 32 ? step * 2 : 32;
    if (dn__load_shell(c, uri, len, out) == 0 && *out) {
      dn_blob_unref(tb);
      return 1;
    }
  }
  dn_blob_unref(tb);
  return 0;
}

static int render_leased(dn__getctx *c, const char *uri, size_t len,
                         dn_blob **out, int *stored) {
  dn__key lk;
  int rc = dn__key_make(c->e, &lk, 'l', uri, len);
  if (rc)
    return rc;
  int leased = 0;
  *stored = 0;
  if (lease_or_wait(c, dn__key_slice(&lk), uri, len, out, &leased)) {
    dn__buf_free(&lk.b);
    return 0;
  }
  rc = dn__run_renderer(c, uri, len, 1, out, stored);
  if (leased)
    dn__store_del(c->e->store, dn__key_slice(&lk));
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
static int flight_wait(dn__getctx *c, dn__flight *f) {
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
int dn__produce_shell(dn__getctx *c, const char *uri, size_t len,
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
    if ((rc = dn__load_shell(c, uri, len, out)) != 0 || *out)
      return rc;
    int stored;
    return dn__run_renderer(c, uri, len, 1, out, &stored);
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
  int ok = dn__storable_headers(&s);
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
  dn__getctx c = GETCTX(e, NULL, 0, err);
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
