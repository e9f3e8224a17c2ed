/* origin.c - origin mode: renders fetched from an upstream application, and
 * unsafe methods passed through to it (see donut/origin.h).
 *
 * The renderer turns one upstream response into one render: its status,
 * the fields the client should see, its lifetime, tags and Vary (decided
 * by origin_policy.c), and its body, where each ESI include (parsed by
 * esi.c) becomes a cacheable hole. Whether a hole is really cacheable is
 * for the hole's own response to say: one that is not marks its render
 * uncacheable, and the engine then serves every page around it as a donut.
 *
 * Visitor data. A fetch that may be stored is sent without the visitor's
 * headers, except those the resource is known to vary on (which the engine
 * keys on). When the answer says it may not be stored, the render becomes
 * uncacheable and, if the visitor sent credentials, the resource is fetched
 * again with the visitor's headers. A small table of hints remembers, per
 * URI, "uncacheable: send the visitor's headers at once" and the Vary names
 * last seen; a lost or wrong hint costs a fetch, never a leak.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

#include "alloc.h"
#include "donut/origin.h"
#include "error.h"
#include "esi.h"
#include "options.h"
#include "origin_policy.h"
#include "origin_internal.h"
#include "text.h"
#include "upstream.h"

#define HINT_SLOTS 4096
#define HINT_VARY_MAX 160
/* How long a URI that answered uncacheable is fetched with the visitor's
 * headers straight away. */
#define PASS_MS (120 * 1000)

typedef struct hint {
  uint64_t key;             /* XXH3 of the URI; 0 = empty */
  uint64_t pass_until_ms;   /* uncacheable until then */
  char vary[HINT_VARY_MAX]; /* "name name ..." lower-case */
} hint;

/* ---- options and lifecycle ------------------------------------------------
 */
void dn_origin_options_init_size(dn_origin_options *o, size_t size) {
  dn_origin_options d;
  memset(&d, 0, sizeof d);
  d.resource_base = "app://self";
  d.connect_timeout_ms = 2000;
  d.first_byte_timeout_ms = 15000;
  d.total_timeout_ms = 30000;
  d.max_body_bytes = (size_t)8 << 20;
  d.max_includes = 256;
  dn__options_init(o, size, &d, sizeof d);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int render(dn_render *r, void *ud);

int dn_origin_new(dn_engine *e, const dn_origin_options *opts, dn_origin **out,
                  dn_error *err) {
  if (!e || !opts || !out)
    return DN_EINVAL;
  /* Options from an older header end before the fields it did not have;
   * log_ud is the last field this library knows. */
  dn_origin_options oo;
  dn_origin_options_init(&oo);
  int orc =
      DN__OPTIONS_READ(dn_origin_options, upstream, log_ud, &oo, opts, err);
  if (orc)
    return orc;
  if (!oo.upstream)
    return dn__error_set(err, DN_EINVAL, 0, "origin: upstream is required");
  if (!oo.resource_base || !*oo.resource_base || !oo.max_body_bytes ||
      !oo.max_includes || !oo.total_timeout_ms)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "origin: resource_base, max_body_bytes, max_includes "
                         "and total_timeout_ms must be set");
  dn_origin *o = dn__calloc(1, sizeof *o);
  if (!o)
    return DN_ENOMEM;
  o->e = e;
  o->log = oo.log;
  o->log_ud = oo.log_ud;
  o->max_includes = oo.max_includes;
  o->max_body = oo.max_body_bytes;
  dn__origin_opts_init(&o->policy);
  o->policy.tag_fields |=
      oo.tag_fields & (DN_ORIGIN_TAGS_CACHE_TAG | DN_ORIGIN_TAGS_XKEY);
  o->policy.esi_html = oo.esi_html;
  o->policy.default_ttl_s = oo.default_ttl_s;
  pthread_mutex_init(&o->mu, NULL);
  size_t bl = strlen(oo.resource_base);
  while (bl && oo.resource_base[bl - 1] == '/')
    bl--;
  o->base = dn__strndup(oo.resource_base, bl);
  o->base_len = bl;
  o->hints = dn__calloc(HINT_SLOTS, sizeof(hint));
  dn__upstream_limits lim = {oo.connect_timeout_ms, oo.first_byte_timeout_ms,
                             oo.total_timeout_ms, oo.max_body_bytes};
  int rc = o->base && o->hints ? 0 : DN_ENOMEM;
  if (rc == 0)
    rc = dn__upstream_new(oo.upstream, &lim, &o->up, err);
  char pattern[600];
  if (rc == 0 && bl + 3 > sizeof pattern)
    rc = dn__error_set(err, DN_ECONFIG, 0, "origin: resource_base too long");
  if (rc == 0) {
    snprintf(pattern, sizeof pattern, "%s/*", o->base);
    rc = dn_engine_register(e, pattern, "origin", render, o);
    if (rc == DN_EURI)
      dn__error_set(err, rc, 0, "origin: bad resource_base %s", o->base);
  }
  if (rc) {
    dn_origin_free(o);
    return rc;
  }
  *out = o;
  return 0;
}

void dn_origin_free(dn_origin *o) {
  if (!o)
    return;
  dn__upstream_free(o->up);
  pthread_mutex_destroy(&o->mu);
  dn__free(o->hints);
  dn__free(o->base);
  dn__free(o);
}

void dn_origin_stats_get(const dn_origin *o, dn_origin_stats *out) {
  if (!o || !out)
    return;
#define LOAD(f) out->f = __atomic_load_n(&o->st.f, __ATOMIC_RELAXED)
  LOAD(fetches);
  LOAD(private_fetches);
  LOAD(passes);
  LOAD(invalidations);
  LOAD(upstream_errors);
  LOAD(upstream_timeouts);
#undef LOAD
}

/* ---- hints ----------------------------------------------------------------
 */
static hint *slot(dn_origin *o, uint64_t key) {
  return &o->hints[key % HINT_SLOTS];
}

static void hint_get(dn_origin *o, const char *uri, hint *out) {
  uint64_t key = XXH3_64bits(uri, strlen(uri)) | 1;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&o->mu);
  hint *h = slot(o, key);
  if (h->key == key)
    *out = *h;
  pthread_mutex_unlock(&o->mu);
}

static void hint_put(dn_origin *o, const char *uri, uint64_t pass_until,
                     const char *vary) {
  uint64_t key = XXH3_64bits(uri, strlen(uri)) | 1;
  pthread_mutex_lock(&o->mu);
  hint *h = slot(o, key);
  h->key = key;
  h->pass_until_ms = pass_until;
  snprintf(h->vary, sizeof h->vary, "%s", vary ? vary : "");
  pthread_mutex_unlock(&o->mu);
}

/* Every request field of an uncacheable render. */
static int private_fields(dn_render *r, dn__origin_fields *f, int *creds) {
  dn_header h;
  int rc = 0;
  for (size_t i = 0; rc == 0 && dn_render_header_at(r, i, &h) == 0; i++) {
    if ((h.name.len == 6 && strncasecmp(h.name.ptr, "cookie", 6) == 0) ||
        (h.name.len == 13 && strncasecmp(h.name.ptr, "authorization", 13) == 0))
      *creds = 1;
    rc = dn__origin_fields_forward(f, h.name, h.value, 1);
  }
  return rc;
}

/* The request fields named in `vary` ("a b c"), each declared to the
 * engine first so that it keys the resource on them. */
static int vary_fields(dn_render *r, const char *vary, dn__origin_fields *f,
                       int *creds) {
  char name[64];
  int rc = 0;
  for (const char *p = vary; rc == 0 && *p;) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (n == 0)
      break;
    if (n < sizeof name) {
      memcpy(name, p, n);
      name[n] = '\0';
      dn_slice v;
      rc = dn_render_vary(r, name);
      if (rc == 0 && dn_render_header(r, name, &v) == 0) {
        if (strcmp(name, "cookie") == 0 || strcmp(name, "authorization") == 0)
          *creds = 1;
        rc = dn__origin_fields_forward(f, dn_slice_from_cstr(name), v, 1);
      }
    }
    p += n;
  }
  return rc;
}

/* ---- the renderer -----------------------------------------------------------
 */
typedef struct fetch {
  dn__upstream_result res;
  dn__origin_policy pol;
  int have_res, have_pol;
  int creds; /* the request carried Cookie or Authorization */
} fetch;

static void fetch_free(fetch *f) {
  if (f->have_res)
    dn__upstream_result_free(&f->res);
  if (f->have_pol)
    dn__origin_policy_free(&f->pol);
  memset(f, 0, sizeof *f);
}

static int fail_upstream(dn_origin *o, dn_render *r, int rc,
                         const dn_error *err) {
  if (rc == DN_ETIMEDOUT)
    __atomic_fetch_add(&o->st.upstream_timeouts, 1, __ATOMIC_RELAXED);
  else if (rc != DN_ENOMEM)
    __atomic_fetch_add(&o->st.upstream_errors, 1, __ATOMIC_RELAXED);
  dn__origin_log(o, 1, "%s", err->text[0] ? err->text : dn_strerror(rc));
  return dn_render_fail(r, rc, err->text[0] ? err->text : dn_strerror(rc));
}

/* One fetch of target for render r: privately (every visitor field) or
 * shared (only the fields of `vary`), then the policy of its answer. */
static int fetch_once(dn_origin *o, dn_render *r, const char *target,
                      int private_, const char *vary, fetch *f) {
  dn__origin_fields fl = {0};
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn__origin_fields_common(&fl);
  if (rc == 0)
    rc = private_ ? private_fields(r, &fl, &f->creds)
                  : vary_fields(r, vary, &fl, &f->creds);
  if (rc == 0) {
    __atomic_fetch_add(&o->st.fetches, 1, __ATOMIC_RELAXED);
    if (private_)
      __atomic_fetch_add(&o->st.private_fetches, 1, __ATOMIC_RELAXED);
    rc = dn__upstream_exchange(o->up, "GET", target,
                               (const char *const *)fl.lines, (dn_slice){0},
                               &f->res, &err);
    f->have_res = rc == 0;
  }
  dn__origin_fields_free(&fl);
  if (rc)
    return rc == DN_ENOMEM ? rc : fail_upstream(o, r, rc, &err);
  if (f->res.status >= 500) {
    dn__error_set(&err, DN_EUPSTREAM, 0, "upstream GET %s answered %d", target,
                  f->res.status);
    return fail_upstream(o, r, DN_EUPSTREAM, &err);
  }
  size_t n = dn_http_headers_count(f->res.fields);
  dn_http_field *fa = dn__malloc((n ? n : 1) * sizeof *fa);
  if (!fa)
    return DN_ENOMEM;
  for (size_t i = 0; i < n; i++)
    fa[i] = dn_http_headers_at(f->res.fields, i);
  rc = dn__origin_policy_read(f->res.status, fa, n, (int64_t)(wall_ms() / 1000),
                              f->creds, &o->policy, &f->pol, &err);
  dn__free(fa);
  f->have_pol = rc == 0;
  if (rc && rc != DN_ENOMEM) {
    __atomic_fetch_add(&o->st.upstream_errors, 1, __ATOMIC_RELAXED);
    return dn_render_fail(r, DN_EUPSTREAM, err.text);
  }
  return rc;
}

/* "a b c" from the policy's Vary names. */
static void vary_join(const dn__origin_policy *p, char *out, size_t cap) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < p->nvary && o + strlen(p->vary[i]) + 2 < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " " : "", p->vary[i]);
}

/* 1 when every Vary name of the answer was among those sent. */
static int vary_covered(const dn__origin_policy *p, const char *sent) {
  for (size_t i = 0; i < p->nvary; i++) {
    size_t n = strlen(p->vary[i]);
    const char *s = sent;
    int found = 0;
    while (!found && (s = strstr(s, p->vary[i])) != NULL) {
      found = (s == sent || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0');
      s += n;
    }
    if (!found)
      return 0;
  }
  return 1;
}

/* 1 when a response is uncacheable because it may be personal (rather
 * than for its status or its lifetime): only then are the visitor's fields
 * sent at once next time. */
static int personal(const dn__origin_policy *p) {
  static const char *const reasons[] = {
      "Set-Cookie",
      "Cache-Control: private",
      "Cache-Control: no-store",
      "Vary: *",
      "Surrogate-Control: no-store",
      "credentials without public or s-maxage",
      NULL};
  for (size_t i = 0; p->why && reasons[i]; i++)
    if (strcmp(p->why, reasons[i]) == 0)
      return 1;
  return 0;
}

/* Fetches until the answer was asked for the right way: an uncacheable
 * answer to a shared fetch from a visitor with credentials is fetched again
 * privately, and a cacheable one that varies on fields not sent is fetched
 * again with them. */
static int fetch_resource(dn_origin *o, dn_render *r, const char *uri,
                          const char *target, fetch *f, int *private_) {
  hint h;
  hint_get(o, uri, &h);
  *private_ = h.pass_until_ms > wall_ms();
  if (*private_)
    dn_render_set_uncacheable(r);
  int rc = fetch_once(o, r, target, *private_, h.vary, f);
  if (rc || *private_)
    return rc;
  if (!f->pol.cacheable) {
    dn_render_set_uncacheable(r);
    *private_ = 1;
    if (personal(&f->pol))
      hint_put(o, uri, wall_ms() + PASS_MS, h.vary);
    dn_slice v;
    if (dn_render_header(r, "cookie", &v) != 0 &&
        dn_render_header(r, "authorization", &v) != 0)
      return 0; /* nothing private to send: this answer is the visitor's */
    fetch_free(f);
    return fetch_once(o, r, target, 1, "", f);
  }
  if (vary_covered(&f->pol, h.vary))
    return 0;
  char vary[HINT_VARY_MAX];
  vary_join(&f->pol, vary, sizeof vary);
  hint_put(o, uri, 0, vary);
  fetch_free(f);
  rc = fetch_once(o, r, target, 0, vary, f);
  if (rc == 0 && !f->pol.cacheable)
    dn_render_set_uncacheable(r);
  return rc;
}

/* Response fields the client sees as the upstream sent them. The engine
 * makes its own validators, lifetimes and framing; surrogate fields are for
 * donut alone. */
static int field_passes(dn_slice name, int uncacheable) {
  static const char *const dropped[] = {"connection",
                                        "keep-alive",
                                        "transfer-encoding",
                                        "te",
                                        "trailer",
                                        "upgrade",
                                        "content-length",
                                        "date",
                                        "etag",
                                        "last-modified",
                                        "cache-control",
                                        "expires",
                                        "age",
                                        "vary",
                                        "surrogate-control",
                                        "surrogate-key",
                                        "cache-tag",
                                        "xkey",
                                        "donut-invalidate",
                                        "server",
                                        "proxy-connection",
                                        "cache-status",
                                        NULL};
  for (size_t i = 0; dropped[i]; i++)
    if (name.len == strlen(dropped[i]) &&
        strncasecmp(name.ptr, dropped[i], name.len) == 0)
      return 0;
  if (name.len == 10 && strncasecmp(name.ptr, "set-cookie", 10) == 0)
    return uncacheable; /* never into a stored page */
  return 1;
}

static int write_fields(dn_render *r, const fetch *f, int uncacheable) {
  int rc = dn_render_set_status(r, f->res.status);
  for (size_t i = 0; rc == 0 && i < dn_http_headers_count(f->res.fields); i++) {
    dn_http_field fd = dn_http_headers_at(f->res.fields, i);
    if (!field_passes(fd.name, uncacheable))
      continue;
    char *name = dn__strndup(fd.name.ptr, fd.name.len);
    char *value = dn__strndup(fd.value.ptr, fd.value.len);
    rc = name && value ? dn_render_set_header(r, name, value) : DN_ENOMEM;
    dn__free(name);
    dn__free(value);
  }
  return rc;
}

static uint32_t window(int64_t s) {
  return s <= 0 ? 0 : s > DN_STALE_MAX_S ? DN_STALE_MAX_S : (uint32_t)s;
}

static int write_lifetime(dn_render *r, const fetch *f) {
  int rc = dn_render_set_ttl(r, (uint64_t)f->pol.ttl_s);
  if (rc == 0)
    rc = dn_render_set_stale(r, window(f->pol.stale_while_revalidate_s),
                             window(f->pol.stale_if_error_s));
  for (size_t i = 0; rc == 0 && i < f->pol.ntags; i++)
    rc = dn_render_add_tag(r, f->pol.tags[i]);
  for (size_t i = 0; rc == 0 && i < f->pol.nvary; i++)
    rc = dn_render_vary(r, f->pol.vary[i]);
  return rc;
}

static int write_esi(dn_origin *o, dn_render *r, const char *uri,
                     const fetch *f) {
  dn__esi_limits lim = {o->max_body * 8, o->max_includes};
  dn__esi_doc *doc = NULL;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn__esi_parse(f->res.body.data, f->res.body.len, &lim, &doc, &err);
  if (rc == DN_ENOMEM)
    return rc;
  if (rc) {
    char msg[400];
    snprintf(msg, sizeof msg, "ESI in %s: %s", uri, err.text);
    dn__origin_log(o, 1, "%s", msg);
    return dn_render_fail(r, DN_EUPSTREAM, msg);
  }
  dn__buf hole, alt;
  dn__buf_init(&hole, 0);
  dn__buf_init(&alt, 0);
  for (size_t i = 0; rc == 0 && i < dn__esi_count(doc); i++) {
    const dn__esi_item *it = dn__esi_at(doc, i);
    if (it->kind == DN__ESI_TEXT) {
      rc = dn_render_write(r, it->text.ptr, it->text.len);
      continue;
    }
    dn__buf_truncate(&hole, 0);
    dn__buf_truncate(&alt, 0);
    rc = dn__origin_include_uri(o, uri, it->src, &hole, &err);
    if (rc == 0 && it->alt.len)
      rc = dn__origin_include_uri(o, uri, it->alt, &alt, &err);
    if (rc == 0)
      rc = dn_render_embed_alt(
          r, hole.data, it->alt.len ? alt.data : NULL,
          DN_EMBED_CACHEABLE | (it->onerror_continue ? DN_EMBED_OPTIONAL : 0));
    else if (rc != DN_ENOMEM) {
      char msg[400];
      snprintf(msg, sizeof msg, "ESI in %s at byte %zu: %s", uri, it->offset,
               err.text);
      dn__origin_log(o, 1, "%s", msg);
      rc = dn_render_fail(r, DN_EUPSTREAM, msg);
    }
  }
  dn__buf_free(&hole);
  dn__buf_free(&alt);
  dn__esi_free(doc);
  return rc;
}

static int render(dn_render *r, void *ud) {
  dn_origin *o = ud;
  const char *uri = dn_render_uri(r);
  const char *target = uri + o->base_len;
  if (strncmp(uri, o->base, o->base_len) != 0 || target[0] != '/')
    return dn_render_fail(r, DN_ENOTFOUND, "not a resource of the upstream");
  fetch f;
  memset(&f, 0, sizeof f);
  int private_ = 0;
  int rc = fetch_resource(o, r, uri, target, &f, &private_);
  int uncacheable = private_ || !f.pol.cacheable || f.res.too_big;
  if (rc == 0 && uncacheable)
    rc = dn_render_set_uncacheable(r);
  if (rc == 0)
    rc = write_fields(r, &f, uncacheable);
  if (rc == 0 && !uncacheable)
    rc = write_lifetime(r, &f);
  if (rc == 0 && f.pol.esi && !f.res.too_big)
    rc = write_esi(o, r, uri, &f);
  else if (rc == 0)
    rc = dn_render_write(r, f.res.body.data ? f.res.body.data : "",
                         f.res.body.len);
  fetch_free(&f);
  return rc;
}
