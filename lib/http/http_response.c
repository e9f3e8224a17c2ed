/* http_response.c - the response to a request for a representation.
 *
 * dn_http_respond() validates the representation, merges the renderer's
 * own Cache-Control and Vary, evaluates the request's preconditions
 * (http_cond.c), and builds the header list: validators, lifetimes for the
 * client and for the CDN, and the CDN profile's fields (cdn_profile.c).
 * Lifetimes follow the reference behaviour: the CDN keeps a page one year when
 * it purges by tag and ten seconds otherwise, unless the resource gives
 * s-maxage or an absolute expiry; clients get max-age (0 by default, so
 * they revalidate with the ETag). Header sets for 304 follow RFC 9110
 * §15.4.5. The result is built in a fresh list, so a failure leaves the
 * caller's output untouched.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cdn_profile.h"
#include "error.h"
#include "http_etag.h"
#include "http_headers.h"
#include "http_util.h"

/* Renderer fields the builder replaces with its own. */
static const char *const managed[] = {"Date",
                                      "Age",
                                      "ETag",
                                      "Last-Modified",
                                      "Expires",
                                      "Cache-Control",
                                      "Vary",
                                      "Surrogate-Key",
                                      "Surrogate-Control",
                                      "CDN-Cache-Control",
                                      "Edge-Cache-Tag",
                                      "Akamai-Cache-Control",
                                      "Cache-Tag",
                                      "Cloudflare-CDN-Cache-Control",
                                      "xkey",
                                      "CDN-Tag",
                                      "Cache-Groups"};

/* Everything the header builder needs, computed once. */
typedef struct plan {
  const dn_http_repr *r;
  dn_cdn_profile cdn;
  dn_cdn_limits limits;
  dn_http_cc client; /* Cache-Control */
  int shared;        /* shared caches may store it */
  int64_t cdn_ttl;
  int64_t lm; /* effective Last-Modified */
  dn_http_etag etag;
  int has_etag;
} plan;

void dn_http_repr_init(dn_http_repr *r) {
  memset(r, 0, sizeof *r);
  r->status = 200;
  r->last_modified = r->stored_at = r->now = DN_HTTP_UNSET;
  r->max_age = r->s_maxage = DN_HTTP_UNSET;
  r->stale_while_revalidate = r->stale_if_error = DN_HTTP_UNSET;
  r->expires_at = DN_HTTP_UNSET;
}

void dn_http_result_free(dn_http_result *r) {
  if (!r)
    return;
  dn_http_headers_free(r->headers);
  memset(r, 0, sizeof *r);
}

static int is_managed(dn_slice name) {
  for (size_t i = 0; i < sizeof managed / sizeof *managed; i++)
    if (dn__http_ci_eq(name, managed[i]))
      return 1;
  return 0;
}

/* The smaller of two optional durations. */
static int64_t min_set(int64_t a, int64_t b) {
  if (a == DN_HTTP_UNSET)
    return b;
  if (b == DN_HTTP_UNSET)
    return a;
  return a < b ? a : b;
}

/* ---- validation --------------------------------------------------------- */

static int check_fields(const dn_http_repr *r, dn_error *err) {
  for (size_t i = 0; i < r->field_count; i++) {
    const dn_http_field *f = &r->fields[i];
    dn_error e;
    if (dn_http_field_name_validate(f->name.ptr, f->name.len, &e) ||
        dn_http_field_value_validate(f->value.ptr, f->value.len, &e))
      return dn__error_set(err, DN_EHEADER, e.position, "field %zu: %s", i,
                           e.text);
  }
  return 0;
}

static int check_vary_name(dn_slice v) {
  if (v.len == 1 && v.ptr[0] == '*')
    return 0;
  return dn_http_field_name_validate(v.ptr, v.len, NULL);
}

static int check_repr(const dn_http_repr *r, dn_cdn_profile cdn,
                      dn_error *err) {
  dn_cdn_limits l;
  if (r->now == DN_HTTP_UNSET)
    return dn__error_set(err, DN_EINVAL, 0, "the clock (now) is not set");
  if (r->status < 100 || r->status > 599)
    return dn__error_set(err, DN_EINVAL, 0, "status %d is not 100-599",
                         r->status);
  if (dn_cdn_limits_get(cdn, &l))
    return dn__error_set(err, DN_EINVAL, 0, "unknown CDN profile %d", (int)cdn);
  size_t bad;
  if (r->etag.len > DN_HTTP_ETAG_MAX)
    return dn__error_set(err, DN_EHEADER, DN_HTTP_ETAG_MAX,
                         "entity-tag longer than %d bytes", DN_HTTP_ETAG_MAX);
  if (r->etag.len && !dn__http_etagc_valid(r->etag.ptr, r->etag.len, &bad))
    return dn__error_set(err, DN_EHEADER, bad,
                         "byte 0x%02x is not allowed in an entity-tag",
                         (unsigned char)r->etag.ptr[bad]);
  for (size_t i = 0; i < r->vary_count; i++)
    if (check_vary_name(r->vary[i]))
      return dn__error_set(err, DN_EHEADER, 0, "Vary name %zu is invalid", i);
  int rc = check_fields(r, err);
  if (!rc && !r->cdn_tag_fields)
    rc = dn__cdn_validate_tags(r->tags, r->tag_count, err);
  return rc;
}

/* ---- lifetimes ------------------------------------------------------- */

/* Merges the renderer's Cache-Control lines into cc; notes Set-Cookie. */
static int renderer_cc(const dn_http_repr *r, dn_http_cc *cc, int *cookie,
                       dn_error *err) {
  *cookie = 0;
  for (size_t i = 0; i < r->field_count; i++) {
    const dn_http_field *f = &r->fields[i];
    if (dn__http_ci_eq(f->name, "Set-Cookie"))
      *cookie = 1;
    if (!dn__http_ci_eq(f->name, "Cache-Control"))
      continue;
    dn_error e;
    if (dn_http_cc_parse(f->value.ptr, f->value.len, cc, &e))
      return dn__error_set(err, DN_EHEADER, e.position, "field %zu: %s", i,
                           e.text);
  }
  return 0;
}

/* Seconds from now until the absolute expiry (never negative). */
static int64_t until_expiry(const dn_http_repr *r) {
  if (r->expires_at == DN_HTTP_UNSET)
    return DN_HTTP_UNSET;
  return r->expires_at > r->now ? r->expires_at - r->now : 0;
}

static void plan_lifetimes(plan *p, dn_http_cc *cc, int cookie) {
  const dn_http_repr *r = p->r;
  unsigned f = r->flags;
  if (f & DN_HTTP_NO_STORE)
    cc->flags |= DN_HTTP_CC_NO_STORE;
  if ((f & DN_HTTP_PRIVATE) || (cookie && !(f & DN_HTTP_ALLOW_SET_COOKIE)))
    cc->flags |= DN_HTTP_CC_PRIVATE;
  if (f & DN_HTTP_NO_CACHE)
    cc->flags |= DN_HTTP_CC_NO_CACHE;
  int64_t left = until_expiry(r);
  int64_t max_age = min_set(min_set(r->max_age, cc->max_age), left);
  int64_t cdn = min_set(min_set(r->s_maxage, cc->s_maxage), left);
  p->cdn_ttl = cdn == DN_HTTP_UNSET ? dn_cdn_default_ttl(p->cdn) : cdn;
  p->shared = !(cc->flags & (DN_HTTP_CC_NO_STORE | DN_HTTP_CC_PRIVATE));
  dn_http_cc_init(&p->client);
  if (cc->flags & DN_HTTP_CC_NO_STORE) {
    /* RFC 9111 §5.2.2.5: nothing else matters to a cache. */
    p->client.flags = DN_HTTP_CC_NO_STORE;
    return;
  }
  p->client.flags = cc->flags;
  if (!p->shared)
    p->client.flags &= ~DN_HTTP_CC_PUBLIC;
  p->client.max_age = max_age == DN_HTTP_UNSET ? 0 : max_age;
  p->client.stale_while_revalidate =
      min_set(r->stale_while_revalidate, cc->stale_while_revalidate);
  p->client.stale_if_error = min_set(r->stale_if_error, cc->stale_if_error);
  /* Profiles without a CDN-targeted field take s-maxage. */
  if (p->shared && !p->limits.ttl_field)
    p->client.s_maxage = p->cdn_ttl;
}

static int make_plan(plan *p, const dn_http_repr *r, dn_cdn_profile cdn,
                     dn_error *err) {
  int rc = check_repr(r, cdn, err);
  if (rc)
    return rc;
  memset(p, 0, sizeof *p);
  p->r = r;
  p->cdn = cdn;
  dn_cdn_limits_get(cdn, &p->limits);
  dn_http_cc cc;
  int cookie;
  dn_http_cc_init(&cc);
  rc = renderer_cc(r, &cc, &cookie, err);
  if (rc)
    return rc;
  plan_lifetimes(p, &cc, cookie);
  p->lm = r->last_modified;
  if (p->lm != DN_HTTP_UNSET && p->lm > r->now)
    p->lm = r->now; /* RFC 9110 §8.8.2.1: never later than Date */
  p->has_etag = r->etag.len > 0;
  p->etag.opaque = r->etag;
  p->etag.weak = (r->flags & DN_HTTP_WEAK_ETAG) != 0;
  return 0;
}

/* ---- building the header list ------------------------------------------ */

static int push(dn_http_headers *h, const char *name, const char *value,
                size_t len) {
  dn_slice v = {value, len};
  return dn__http_headers_push(h, dn_slice_from_cstr(name), v);
}

static int push_date(dn_http_headers *h, const char *name, int64_t t) {
  char d[DN_HTTP_DATE_LEN + 1];
  if (dn_http_date_format(t, d))
    return DN_EINVAL;
  return push(h, name, d, DN_HTTP_DATE_LEN);
}

static int push_number(dn_http_headers *h, const char *name, int64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)v);
  return push(h, name, num, (size_t)n);
}

/* Cache-Control, Expires and the CDN fields. */
static int cache_fields(const plan *p, dn_http_headers *h, dn_error *err) {
  char cc[DN_HTTP_CC_MAX + 1];
  size_t n;
  dn_http_cc_format(&p->client, cc, &n);
  int rc = push(h, "Cache-Control", cc, n);
  if (!rc && p->r->expires_at != DN_HTTP_UNSET &&
      !(p->client.flags & DN_HTTP_CC_NO_STORE))
    rc = push_date(h, "Expires", p->r->expires_at);
  if (!rc && p->shared && p->limits.ttl_field) {
    /* RFC 9213 §2.1: the targeted field is a Structured Field dictionary;
     * dn_http_cc_format writes one. */
    dn_http_cc cdn;
    dn_http_cc_init(&cdn);
    cdn.max_age = p->cdn_ttl;
    cdn.stale_while_revalidate = p->client.stale_while_revalidate;
    cdn.stale_if_error = p->client.stale_if_error;
    dn_http_cc_format(&cdn, cc, &n);
    rc = push(h, p->limits.ttl_field, cc, n);
  }
  if (rc)
    return dn__error_set(err, rc, 0,
                         rc == DN_EINVAL ? "expiry date out of range"
                                         : "out of memory");
  if (p->shared && p->r->cdn_tag_fields) {
    const dn_http_headers *pre = p->r->cdn_tag_fields;
    for (size_t i = 0; !rc && i < dn_http_headers_count(pre); i++) {
      dn_http_field f = dn_http_headers_at(pre, i);
      rc = dn_http_headers_add(h, f.name, f.value, err);
    }
  } else if (p->shared) {
    rc = dn_cdn_tag_fields(p->cdn, p->r->tags, p->r->tag_count, h, err);
  }
  return rc;
}

/* Adds `name` to the Vary value being built unless it is already there. */
static int vary_add(dn__buf *b, dn_slice name, int *star) {
  if (name.len == 0)
    return 0;
  if (name.len == 1 && name.ptr[0] == '*') {
    *star = 1;
    return 0;
  }
  if (dn_http_field_name_validate(name.ptr, name.len, NULL))
    return DN_EHEADER;
  for (size_t i = 0; i < b->len;) {
    size_t j = i;
    while (j < b->len && b->data[j] != ',')
      j++;
    dn_slice have = {b->data + i, j - i};
    if (dn__http_ci_eq_slice(have, name))
      return 0;
    i = j + 2;
  }
  if (b->len && dn__buf_append(b, ", ", 2))
    return DN_ENOMEM;
  return dn__buf_append(b, name.ptr, name.len) ? DN_ENOMEM : 0;
}

static int vary_collect(const dn_http_repr *r, dn__buf *b, int *star) {
  int rc = 0;
  for (size_t i = 0; !rc && i < r->vary_count; i++)
    rc = vary_add(b, r->vary[i], star);
  for (size_t i = 0; !rc && i < r->field_count; i++) {
    const dn_http_field *f = &r->fields[i];
    if (!dn__http_ci_eq(f->name, "Vary"))
      continue;
    for (size_t s = 0, e = 0; !rc && s <= f->value.len; s = e + 1) {
      for (e = s; e < f->value.len && f->value.ptr[e] != ','; e++)
        ;
      rc = vary_add(b, dn__http_trim(f->value.ptr + s, e - s), star);
    }
  }
  return rc;
}

static int vary_field(const plan *p, dn_http_headers *h, dn_error *err) {
  dn__buf b;
  int star = 0;
  dn__buf_init(&b, DN_HTTP_VALUE_MAX);
  int rc = vary_collect(p->r, &b, &star);
  if (!rc && (star || b.len))
    rc = star ? push(h, "Vary", "*", 1) : push(h, "Vary", b.data, b.len);
  dn__buf_free(&b);
  if (rc == DN_EHEADER)
    return dn__error_set(err, rc, 0, "a Vary member is not a field name");
  if (rc)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  return 0;
}

/* Date, Age, ETag, Last-Modified: the fields every 200 and 304 carry. */
static int control_fields(const plan *p, dn_http_headers *h, int is304) {
  const dn_http_repr *r = p->r;
  int rc = push_date(h, "Date", r->now);
  if (!rc && r->stored_at != DN_HTTP_UNSET) {
    int64_t age = r->now > r->stored_at ? r->now - r->stored_at : 0;
    rc = push_number(h, "Age",
                     age > DN__HTTP_DELTA_MAX ? DN__HTTP_DELTA_MAX : age);
  }
  if (!rc && p->has_etag) {
    char tag[DN_HTTP_ETAG_MAX + 8];
    size_t n;
    rc = dn_http_etag_format(p->etag, tag, sizeof tag, &n);
    if (!rc)
      rc = push(h, "ETag", tag, n);
  }
  /* RFC 9110 §15.4.5: a 304 carries Last-Modified only without an ETag. */
  if (!rc && p->lm != DN_HTTP_UNSET && !(is304 && p->has_etag))
    rc = push_date(h, "Last-Modified", p->lm);
  return rc;
}

/* The renderer's own fields: all but the managed ones for a full
 * response; only Content-Location for a 304 (RFC 9110 §15.4.5). */
static int renderer_fields(const plan *p, dn_http_headers *h, int is304) {
  const dn_http_repr *r = p->r;
  for (size_t i = 0; i < r->field_count; i++) {
    const dn_http_field *f = &r->fields[i];
    int keep = is304 ? dn__http_ci_eq(f->name, "Content-Location")
                     : !is_managed(f->name);
    if (!keep)
      continue;
    int rc = dn__http_headers_push(h, f->name, f->value);
    if (rc)
      return rc;
  }
  return 0;
}

static int build(const plan *p, int status, dn_http_headers *h, dn_error *err) {
  if (status == 412) /* the representation's metadata does not apply */
    return push_date(h, "Date", p->r->now);
  int is304 = status == 304;
  int rc = is304 ? 0 : renderer_fields(p, h, 0);
  if (!rc)
    rc = control_fields(p, h, is304);
  if (!rc && is304)
    rc = renderer_fields(p, h, 1);
  if (rc)
    return dn__error_set(
        err, rc, 0, rc == DN_EINVAL ? "date out of range" : "out of memory");
  rc = vary_field(p, h, err);
  if (!rc)
    rc = cache_fields(p, h, err);
  return rc;
}

static int evaluates_preconditions(const dn_http_repr *r,
                                   const dn_http_request *req) {
  /* RFC 9110 §13.2.1: only when the response would otherwise be 2xx, and
   * never for methods that do not select a representation. */
  if (r->status < 200 || r->status > 299)
    return 0;
  return !dn__http_eq(req->method, "CONNECT") &&
         !dn__http_eq(req->method, "OPTIONS") &&
         !dn__http_eq(req->method, "TRACE");
}

static int sends_body(int status, const dn_http_request *req) {
  if (dn__http_eq(req->method, "HEAD"))
    return 0;
  return status >= 200 && status != 204 && status != 304 && status != 412;
}

int dn_http_respond(const dn_http_repr *repr, const dn_http_request *req,
                    dn_cdn_profile cdn, dn_http_result *out, dn_error *err) {
  if (!repr || !req || !out)
    return dn__error_set(err, DN_EINVAL, 0, "missing argument");
  plan p;
  int rc = make_plan(&p, repr, cdn, err);
  if (rc)
    return rc;
  int status = repr->status;
  if (evaluates_preconditions(repr, req)) {
    int c = dn_http_preconditions(req, p.has_etag ? &p.etag : NULL, p.lm,
                                  repr->now);
    if (c != 200)
      status = c;
  }
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  rc = build(&p, status, h, err);
  if (rc) {
    dn_http_headers_free(h);
    return rc;
  }
  out->status = status;
  out->send_body = sends_body(status, req);
  out->headers = h;
  return 0;
}

int dn_http_cache_fields(const dn_http_repr *repr, dn_cdn_profile cdn,
                         dn_http_headers *out, dn_error *err) {
  if (!repr || !out)
    return dn__error_set(err, DN_EINVAL, 0, "missing argument");
  plan p;
  int rc = make_plan(&p, repr, cdn, err);
  if (rc)
    return rc;
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  rc = cache_fields(&p, h, err);
  if (!rc && dn__http_headers_append_all(out, h))
    rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  dn_http_headers_free(h);
  return rc;
}
