/* test_http_response.c - dn_http_respond and friends: the header list of
 * 200, 304 and 412 responses, lifetimes per CDN profile (including the
 * generic profile's CDN-Cache-Control read as an RFC 8941 dictionary),
 * merging of the renderer's fields, header safety, the "never store"
 * predicate, and allocation failures.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "donut/http.h"
#include "test_support.h"

#define NOW 1795219200LL /* Sat, 21 Nov 2026 00:00:00 GMT */
#define LM 783459811LL   /* Sat, 29 Oct 1994 19:43:31 GMT */

static const dn_slice tags[] = {{"app:/self/news", 14}, {"weather", 7}};

static dn_http_repr base(void) {
  dn_http_repr r;
  dn_http_repr_init(&r);
  r.now = NOW;
  r.etag = dn_slice_from_cstr("abc123");
  r.last_modified = LM;
  r.tags = tags;
  r.tag_count = 2;
  return r;
}

static dn_http_request get(const dn_http_field *f, size_t n) {
  dn_http_request q = {dn_slice_from_cstr("GET"), f, n};
  return q;
}

/* The value of field `name` in the result, or NULL (a static copy). */
static const char *value(const dn_http_result *res, const char *name) {
  static char buf[20000];
  dn_slice v;
  if (dn_http_headers_get(res->headers, name, &v))
    return NULL;
  snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.ptr);
  return buf;
}

/* Every field of every result must be safe to put on the wire. */
static void check_safe(const dn_http_result *res) {
  for (size_t i = 0; i < dn_http_headers_count(res->headers); i++) {
    dn_http_field f = dn_http_headers_at(res->headers, i);
    assert_int_equal(dn_http_field_name_validate(f.name.ptr, f.name.len, NULL),
                     0);
    assert_int_equal(
        dn_http_field_value_validate(f.value.ptr, f.value.len, NULL), 0);
  }
}

static dn_http_result respond(const dn_http_repr *r, const dn_http_request *q,
                              dn_cdn_profile cdn) {
  dn_http_result res;
  dn_error err;
  int rc = dn_http_respond(r, q, cdn, &res, &err);
  if (rc)
    fail_msg("respond: %s (%s)", dn_err_name(rc), err.text);
  check_safe(&res);
  return res;
}

#define EXPECT(res, name, want)                                                \
  do {                                                                         \
    const char *got_ = value(res, name);                                       \
    if ((want) == NULL ? got_ != NULL                                          \
                       : got_ == NULL || strcmp(got_, (want) ? (want) : ""))   \
      fail_msg("%s: got '%s', want '%s'", name, got_ ? got_ : "(none)",        \
               (want) ? (want) : "(none)");                                    \
  } while (0)

/* ---- lifetimes per profile ----------------------------------------------- */

static void test_full_response_per_profile(void **state) {
  (void)state;
  static const struct {
    dn_cdn_profile cdn;
    const char *cc, *ttl_name, *ttl, *tag_name, *tag_value;
  } t[] = {
      {DN_CDN_NONE, "max-age=0, s-maxage=10", NULL, NULL, NULL, NULL},
      {DN_CDN_GENERIC, "max-age=0", "CDN-Cache-Control", "max-age=10",
       "Surrogate-Key", "app:/self/news weather"},
      {DN_CDN_FASTLY, "max-age=0", "Surrogate-Control", "max-age=31536000",
       "Surrogate-Key", "app:/self/news weather"},
      {DN_CDN_AKAMAI, "max-age=0", "Akamai-Cache-Control", "max-age=31536000",
       "Edge-Cache-Tag", NULL},
      {DN_CDN_CLOUDFLARE, "max-age=0", "Cloudflare-CDN-Cache-Control",
       "max-age=31536000", "Cache-Tag", "app:/self/news,weather"},
      {DN_CDN_VARNISH, "max-age=0, s-maxage=31536000", NULL, NULL, "xkey",
       "app:/self/news weather"},
      {DN_CDN_BUNNY, "max-age=0, s-maxage=31536000", NULL, NULL, "CDN-Tag",
       "app:/self/news,weather"},
      {DN_CDN_RFC9875, "max-age=0", "CDN-Cache-Control", "max-age=10",
       "Cache-Groups", "\"app:/self/news\", \"weather\""},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    dn_http_repr r = base();
    dn_http_request q = get(NULL, 0);
    dn_http_result res = respond(&r, &q, t[i].cdn);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.send_body, 1);
    EXPECT(&res, "Date", "Sat, 21 Nov 2026 00:00:00 GMT");
    EXPECT(&res, "ETag", "\"abc123\"");
    EXPECT(&res, "Last-Modified", "Sat, 29 Oct 1994 19:43:31 GMT");
    EXPECT(&res, "Cache-Control", t[i].cc);
    EXPECT(&res, "Age", NULL);
    EXPECT(&res, "Expires", NULL);
    if (t[i].ttl_name)
      EXPECT(&res, t[i].ttl_name, t[i].ttl);
    if (t[i].tag_name && t[i].tag_value)
      EXPECT(&res, t[i].tag_name, t[i].tag_value);
    if (t[i].tag_name)
      assert_non_null(value(&res, t[i].tag_name));
    dn_http_result_free(&res);
  }
}

/* RFC 8941 §4.2.2: a dictionary of key[=integer] members; a bare key is
 * Boolean true. A strict reader, enough for the CDN-Cache-Control family. */
static void check_sf_dictionary(const char *v) {
  const char *p = v;
  char seen[16][32];
  size_t nseen = 0;
  for (;;) {
    const char *k = p;
    assert_true((*p >= 'a' && *p <= 'z') || *p == '*');
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
           strchr("_-.*", *p))
      p++;
    assert_true(p - k < 32 && nseen < 16);
    snprintf(seen[nseen], sizeof seen[nseen], "%.*s", (int)(p - k), k);
    for (size_t i = 0; i < nseen; i++)
      assert_string_not_equal(seen[i], seen[nseen]);
    nseen++;
    if (*p == '=') { /* sf-integer: at most 15 digits */
      const char *d = ++p;
      while (*p >= '0' && *p <= '9')
        p++;
      assert_true(p > d && p - d <= 15);
    }
    if (*p == '\0')
      return;
    assert_int_equal(*p++, ',');
    while (*p == ' ')
      p++;
    assert_true(*p != '\0');
  }
}

static void test_targeted_fields_are_sf_dictionaries(void **state) {
  (void)state;
  static const dn_cdn_profile p[] = {DN_CDN_GENERIC, DN_CDN_FASTLY,
                                     DN_CDN_AKAMAI, DN_CDN_CLOUDFLARE,
                                     DN_CDN_RFC9875};
  static const char *const names[] = {
      "CDN-Cache-Control", "Surrogate-Control", "Akamai-Cache-Control",
      "Cloudflare-CDN-Cache-Control", "CDN-Cache-Control"};
  for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
    dn_http_repr r = base();
    r.stale_while_revalidate = 60;
    r.stale_if_error = 86400;
    r.s_maxage = 99999999999LL;
    dn_http_request q = get(NULL, 0);
    dn_http_result res = respond(&r, &q, p[i]);
    const char *v = value(&res, names[i]);
    assert_non_null(v);
    assert_string_equal(v, "max-age=2147483648, stale-while-revalidate=60, "
                           "stale-if-error=86400");
    check_sf_dictionary(v);
    assert_null(strstr(v, "  "));
    dn_http_result_free(&res);
  }
  check_sf_dictionary("max-age=10");
}

static void test_lifetime_overrides(void **state) {
  (void)state;
  dn_http_request q = get(NULL, 0);
  /* Per-resource overrides of the CDN default. */
  dn_http_repr r = base();
  r.max_age = 60;
  r.s_maxage = 100;
  r.stale_while_revalidate = 10;
  dn_http_result res = respond(&r, &q, DN_CDN_FASTLY);
  EXPECT(&res, "Cache-Control", "max-age=60, stale-while-revalidate=10");
  EXPECT(&res, "Surrogate-Control", "max-age=100, stale-while-revalidate=10");
  dn_http_result_free(&res);
  /* Adaptive TTL: an absolute expiry, against the injected clock. */
  r = base();
  r.expires_at = NOW + 3600;
  res = respond(&r, &q, DN_CDN_AKAMAI);
  EXPECT(&res, "Cache-Control", "max-age=3600");
  EXPECT(&res, "Akamai-Cache-Control", "max-age=3600");
  EXPECT(&res, "Expires", "Sat, 21 Nov 2026 01:00:00 GMT");
  dn_http_result_free(&res);
  res = respond(&r, &q, DN_CDN_NONE);
  EXPECT(&res, "Cache-Control", "max-age=3600, s-maxage=3600");
  dn_http_result_free(&res);
  /* An expiry in the past gives 0, never a negative age. */
  r.expires_at = NOW - 5;
  res = respond(&r, &q, DN_CDN_VARNISH);
  EXPECT(&res, "Cache-Control", "max-age=0, s-maxage=0");
  dn_http_result_free(&res);
  /* Age of a stored response; Last-Modified never after Date. */
  r = base();
  r.stored_at = NOW - 42;
  r.last_modified = NOW + 1000;
  res = respond(&r, &q, DN_CDN_NONE);
  EXPECT(&res, "Age", "42");
  EXPECT(&res, "Last-Modified", "Sat, 21 Nov 2026 00:00:00 GMT");
  dn_http_result_free(&res);
  r.stored_at = NOW + 5; /* clock skew: never negative */
  res = respond(&r, &q, DN_CDN_NONE);
  EXPECT(&res, "Age", "0");
  dn_http_result_free(&res);
}

static void test_private_and_no_store(void **state) {
  (void)state;
  dn_http_request q = get(NULL, 0);
  dn_http_repr r = base();
  r.flags = DN_HTTP_PRIVATE;
  r.max_age = 30;
  dn_http_result res = respond(&r, &q, DN_CDN_FASTLY);
  EXPECT(&res, "Cache-Control", "private, max-age=30");
  EXPECT(&res, "Surrogate-Control", NULL);
  EXPECT(&res, "Surrogate-Key", NULL);
  dn_http_result_free(&res);
  r.flags = DN_HTTP_NO_STORE;
  r.expires_at = NOW + 10;
  res = respond(&r, &q, DN_CDN_NONE);
  EXPECT(&res, "Cache-Control", "no-store");
  EXPECT(&res, "Expires", NULL);
  dn_http_result_free(&res);
  r.flags = DN_HTTP_NO_CACHE;
  r.expires_at = DN_HTTP_UNSET;
  r.max_age = DN_HTTP_UNSET;
  res = respond(&r, &q, DN_CDN_CLOUDFLARE);
  EXPECT(&res, "Cache-Control", "no-cache, max-age=0");
  EXPECT(&res, "Cloudflare-CDN-Cache-Control", "max-age=31536000");
  dn_http_result_free(&res);
  /* Set-Cookie makes a response private unless the application allows. */
  dn_http_field cookie[1] = {
      {dn_slice_from_cstr("Set-Cookie"), dn_slice_from_cstr("sid=1")}};
  r = base();
  r.fields = cookie;
  r.field_count = 1;
  res = respond(&r, &q, DN_CDN_CLOUDFLARE);
  EXPECT(&res, "Cache-Control", "private, max-age=0");
  EXPECT(&res, "Cache-Tag", NULL);
  EXPECT(&res, "Set-Cookie", "sid=1");
  dn_http_result_free(&res);
  r.flags = DN_HTTP_ALLOW_SET_COOKIE;
  res = respond(&r, &q, DN_CDN_CLOUDFLARE);
  EXPECT(&res, "Cache-Control", "max-age=0");
  EXPECT(&res, "Cache-Tag", "app:/self/news,weather");
  dn_http_result_free(&res);
}

static void test_renderer_fields_merge(void **state) {
  (void)state;
  dn_http_field f[] = {
      {dn_slice_from_cstr("Content-Type"), dn_slice_from_cstr("text/html")},
      {dn_slice_from_cstr("cache-control"),
       dn_slice_from_cstr("public, max-age=30, must-revalidate")},
      {dn_slice_from_cstr("ETag"), dn_slice_from_cstr("\"stale\"")},
      {dn_slice_from_cstr("Date"), dn_slice_from_cstr("yesterday")},
      {dn_slice_from_cstr("Surrogate-Key"), dn_slice_from_cstr("forged")},
      {dn_slice_from_cstr("Vary"),
       dn_slice_from_cstr("accept-encoding, Accept-Language")},
  };
  dn_slice vary[] = {dn_slice_from_cstr("Accept-Encoding"),
                     dn_slice_from_cstr("Cookie")};
  dn_http_repr r = base();
  r.fields = f;
  r.field_count = sizeof f / sizeof *f;
  r.max_age = 60;
  r.vary = vary;
  r.vary_count = 2;
  dn_http_request q = get(NULL, 0);
  dn_http_result res = respond(&r, &q, DN_CDN_FASTLY);
  EXPECT(&res, "Content-Type", "text/html");
  EXPECT(&res, "Cache-Control", "public, max-age=30, must-revalidate");
  EXPECT(&res, "ETag", "\"abc123\"");
  EXPECT(&res, "Date", "Sat, 21 Nov 2026 00:00:00 GMT");
  EXPECT(&res, "Surrogate-Key", "app:/self/news weather");
  EXPECT(&res, "Vary", "Accept-Encoding, Cookie, Accept-Language");
  size_t n = 0;
  for (size_t i = 0; i < dn_http_headers_count(res.headers); i++) {
    dn_http_field h = dn_http_headers_at(res.headers, i);
    n += h.name.len == 4 && strncasecmp(h.name.ptr, "Date", 4) == 0;
  }
  assert_int_equal(n, 1);
  dn_http_result_free(&res);
  /* Vary: * wins. */
  dn_slice star[] = {dn_slice_from_cstr("*")};
  r.vary = star;
  r.vary_count = 1;
  res = respond(&r, &q, DN_CDN_NONE);
  EXPECT(&res, "Vary", "*");
  dn_http_result_free(&res);
}

/* ---- conditional responses --------------------------------------------- */

static int allowed_in_304(dn_slice name) {
  static const char *const ok[] = {"ETag",
                                   "Cache-Control",
                                   "Vary",
                                   "Date",
                                   "Expires",
                                   "Content-Location",
                                   "Age",
                                   "Last-Modified",
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
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (name.len == strlen(ok[i]) &&
        strncasecmp(name.ptr, ok[i], name.len) == 0)
      return 1;
  return 0;
}

static void test_304_carries_the_right_fields(void **state) {
  (void)state;
  dn_http_field rf[] = {
      {dn_slice_from_cstr("Content-Type"), dn_slice_from_cstr("text/html")},
      {dn_slice_from_cstr("Content-Length"), dn_slice_from_cstr("5120")},
      {dn_slice_from_cstr("Content-Location"), dn_slice_from_cstr("/news")},
      {dn_slice_from_cstr("Set-Cookie"), dn_slice_from_cstr("a=b")},
  };
  dn_slice vary[] = {dn_slice_from_cstr("Accept-Encoding")};
  dn_http_repr r = base();
  r.fields = rf;
  r.field_count = 4;
  r.flags = DN_HTTP_ALLOW_SET_COOKIE;
  r.vary = vary;
  r.vary_count = 1;
  r.expires_at = NOW + 60;
  r.stored_at = NOW - 3;
  dn_http_field inm[] = {
      {dn_slice_from_cstr("If-None-Match"), dn_slice_from_cstr("\"abc123\"")}};
  for (dn_cdn_profile p = DN_CDN_NONE; p <= DN_CDN_RFC9875; p++) {
    dn_http_request q = get(inm, 1);
    dn_http_result res = respond(&r, &q, p);
    assert_int_equal(res.status, 304);
    assert_int_equal(res.send_body, 0);
    for (size_t i = 0; i < dn_http_headers_count(res.headers); i++) {
      dn_http_field f = dn_http_headers_at(res.headers, i);
      if (!allowed_in_304(f.name))
        fail_msg("304 carries %.*s", (int)f.name.len, f.name.ptr);
    }
    /* RFC 9110 §15.4.5: what the 200 would have carried. */
    EXPECT(&res, "ETag", "\"abc123\"");
    EXPECT(&res, "Date", "Sat, 21 Nov 2026 00:00:00 GMT");
    EXPECT(&res, "Vary", "Accept-Encoding");
    EXPECT(&res, "Expires", "Sat, 21 Nov 2026 00:01:00 GMT");
    EXPECT(&res, "Content-Location", "/news");
    EXPECT(&res, "Age", "3");
    EXPECT(&res, "Last-Modified", NULL); /* an ETag is present */
    assert_non_null(value(&res, "Cache-Control"));
    dn_http_result_free(&res);
  }
}

static void test_donut_page_without_etag(void **state) {
  (void)state;
  dn_http_repr r = base();
  r.etag = (dn_slice){NULL, 0};
  dn_http_field ims[] = {{dn_slice_from_cstr("If-Modified-Since"),
                          dn_slice_from_cstr("Sat, 29 Oct 1994 19:43:31 GMT")}};
  dn_http_request q = get(ims, 1);
  dn_http_result res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 304);
  EXPECT(&res, "ETag", NULL);
  EXPECT(&res, "Last-Modified", "Sat, 29 Oct 1994 19:43:31 GMT");
  dn_http_result_free(&res);
  /* Without Last-Modified either, nothing can match. */
  r.last_modified = DN_HTTP_UNSET;
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 200);
  EXPECT(&res, "Last-Modified", NULL);
  dn_http_result_free(&res);
  dn_http_field inm[] = {
      {dn_slice_from_cstr("If-None-Match"), dn_slice_from_cstr("\"abc123\"")}};
  q = get(inm, 1);
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 200);
  dn_http_result_free(&res);
  dn_http_field im[] = {
      {dn_slice_from_cstr("If-Match"), dn_slice_from_cstr("\"abc123\"")}};
  q = get(im, 1);
  q.method = dn_slice_from_cstr("PUT");
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 412);
  dn_http_result_free(&res);
}

static void test_412_head_and_other_statuses(void **state) {
  (void)state;
  dn_http_repr r = base();
  dn_http_field cl[] = {
      {dn_slice_from_cstr("Content-Length"), dn_slice_from_cstr("12")}};
  r.fields = cl;
  r.field_count = 1;
  dn_http_field im[] = {
      {dn_slice_from_cstr("If-Match"), dn_slice_from_cstr("\"other\"")}};
  dn_http_request q = {dn_slice_from_cstr("PUT"), im, 1};
  dn_http_result res = respond(&r, &q, DN_CDN_FASTLY);
  assert_int_equal(res.status, 412);
  assert_int_equal(res.send_body, 0);
  assert_int_equal(dn_http_headers_count(res.headers), 1);
  EXPECT(&res, "Date", "Sat, 21 Nov 2026 00:00:00 GMT");
  dn_http_result_free(&res);
  /* HEAD: same fields as GET, no body. */
  q.method = dn_slice_from_cstr("HEAD");
  q.field_count = 0;
  res = respond(&r, &q, DN_CDN_FASTLY);
  assert_int_equal(res.status, 200);
  assert_int_equal(res.send_body, 0);
  EXPECT(&res, "Content-Length", "12");
  dn_http_result_free(&res);
  /* §13.2.1: preconditions only apply to would-be 2xx responses and not
   * to OPTIONS, CONNECT or TRACE. */
  q.field_count = 1;
  q.method = dn_slice_from_cstr("OPTIONS");
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 200);
  dn_http_result_free(&res);
  r.status = 404;
  q.method = dn_slice_from_cstr("GET");
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.status, 404);
  assert_int_equal(res.send_body, 1);
  dn_http_result_free(&res);
  r.status = 204;
  q.field_count = 0;
  res = respond(&r, &q, DN_CDN_NONE);
  assert_int_equal(res.send_body, 0);
  dn_http_result_free(&res);
}

/* ---- errors -------------------------------------------------------------- */

static void test_invalid_input_is_rejected(void **state) {
  (void)state;
  dn_http_request q = get(NULL, 0);
  dn_http_result res = {7, 7, NULL};
  dn_error err;
  dn_http_field evil[] = {{dn_slice_from_cstr("X-Note"),
                           dn_slice_from_cstr("a\r\nSet-Cookie: admin=1")}};
  dn_http_repr r = base();
  r.fields = evil;
  r.field_count = 1;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err),
                   DN_EHEADER);
  assert_non_null(strstr(err.text, "field 0"));
  dn_http_field badname[] = {
      {dn_slice_from_cstr("X Note"), dn_slice_from_cstr("a")}};
  r.fields = badname;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err),
                   DN_EHEADER);
  dn_http_field badcc[] = {
      {dn_slice_from_cstr("Cache-Control"), dn_slice_from_cstr("max-age=5;")}};
  r.fields = badcc;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err),
                   DN_EHEADER);
  r = base();
  r.etag = dn_slice_from_cstr("a\"b");
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err),
                   DN_EHEADER);
  r = base();
  dn_slice badtag[] = {dn_slice_from_cstr("ok"),
                       dn_slice_from_cstr("x\nSet-Cookie: a=b")};
  r.tags = badtag;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_FASTLY, &res, &err), DN_ETAG);
  r = base();
  dn_slice badvary[] = {dn_slice_from_cstr("Accept Encoding")};
  r.vary = badvary;
  r.vary_count = 1;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err),
                   DN_EHEADER);
  r = base();
  r.now = DN_HTTP_UNSET;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err), DN_EINVAL);
  r = base();
  r.status = 42;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err), DN_EINVAL);
  r = base();
  assert_int_equal(dn_http_respond(&r, &q, (dn_cdn_profile)77, &res, &err),
                   DN_EINVAL);
  r.expires_at = INT64_MAX;
  assert_int_equal(dn_http_respond(&r, &q, DN_CDN_NONE, &res, &err), DN_EINVAL);
  assert_int_equal(dn_http_respond(NULL, &q, DN_CDN_NONE, &res, &err),
                   DN_EINVAL);
  /* Nothing was written on any failure. */
  assert_int_equal(res.status, 7);
  assert_null(res.headers);
  dn_http_result_free(NULL);
}

static void test_cache_fields_only(void **state) {
  (void)state;
  dn_http_repr r = base();
  r.max_age = 5;
  dn_http_headers *h = dn_http_headers_new();
  assert_int_equal(dn_http_cache_fields(&r, DN_CDN_GENERIC, h, NULL), 0);
  assert_int_equal(dn_http_headers_count(h), 3);
  dn_http_field f = dn_http_headers_at(h, 0);
  assert_memory_equal(f.name.ptr, "Cache-Control", 13);
  f = dn_http_headers_at(h, 1);
  assert_memory_equal(f.name.ptr, "CDN-Cache-Control", 17);
  f = dn_http_headers_at(h, 2);
  assert_memory_equal(f.name.ptr, "Surrogate-Key", 13);
  dn_slice bad[] = {dn_slice_from_cstr("a b")};
  r.tags = bad;
  r.tag_count = 1;
  assert_int_equal(dn_http_cache_fields(&r, DN_CDN_GENERIC, h, NULL), DN_ETAG);
  assert_int_equal(dn_http_headers_count(h), 3);
  dn_http_headers_free(h);
}

/* ---- storable -------------------------------------------------------- */

static void test_storable(void **state) {
  (void)state;
  static const struct {
    const char *name, *value;
    unsigned flags;
    int want;
  } t[] = {
      {"Content-Type", "text/html", 0, 1},
      {"Cache-Control", "max-age=60", 0, 1},
      {"Cache-Control", "no-cache", 0, 1},
      {"Cache-Control", "private", 0, 0},
      {"cache-control", "PRIVATE, max-age=60", 0, 0},
      {"Cache-Control", "private=\"Set-Cookie\"", 0, 0},
      {"Cache-Control", "no-store", 0, 0},
      {"Cache-Control", "max-age=5, no-store", 0, 0},
      {"Cache-Control", "max-age=5;", 0, 0},
      {"Set-Cookie", "sid=1", 0, 0},
      {"set-cookie", "sid=1", DN_HTTP_ALLOW_SET_COOKIE, 1},
      {"Vary", "Accept, *", 0, 0},
      {"Vary", "Accept-Encoding", 0, 1},
      {"Content-Type", "text/html", DN_HTTP_NO_STORE, 0},
      {"Content-Type", "text/html", DN_HTTP_PRIVATE, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    dn_http_field f = {dn_slice_from_cstr(t[i].name),
                       dn_slice_from_cstr(t[i].value)};
    if (dn_http_storable(&f, 1, t[i].flags) != t[i].want)
      fail_msg("storable row %zu (%s: %s)", i, t[i].name, t[i].value);
  }
  /* A no-store on a second line counts too. */
  dn_http_field two[] = {
      {dn_slice_from_cstr("Cache-Control"), dn_slice_from_cstr("max-age=5")},
      {dn_slice_from_cstr("Cache-Control"), dn_slice_from_cstr("no-store")}};
  assert_int_equal(dn_http_storable(two, 2, 0), 0);
  assert_int_equal(dn_http_storable(NULL, 0, 0), 1);
}

/* ---- allocation failures ---------------------------------------------- */

static int respond_run(void *ud) {
  const dn_http_repr *r = ud;
  dn_http_field f[] = {
      {dn_slice_from_cstr("If-None-Match"), dn_slice_from_cstr("\"nope\"")}};
  dn_http_request q = get(f, 1);
  dn_http_result res;
  int rc = dn_http_respond(r, &q, DN_CDN_AKAMAI, &res, NULL);
  if (rc)
    return rc;
  dn_http_result_free(&res);
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return DN_ENOMEM;
  rc = dn_http_cache_fields(r, DN_CDN_RFC9875, h, NULL);
  dn_http_headers_free(h);
  return rc;
}

static void test_alloc_failures(void **state) {
  (void)state;
  static char names[400][16];
  static dn_slice many[400];
  for (int i = 0; i < 400; i++) {
    snprintf(names[i], sizeof names[i], "tag-%d", i);
    many[i] = dn_slice_from_cstr(names[i]);
  }
  dn_http_field f[] = {
      {dn_slice_from_cstr("Content-Type"), dn_slice_from_cstr("text/html")},
      {dn_slice_from_cstr("Vary"), dn_slice_from_cstr("Accept")}};
  dn_http_repr r = base();
  r.fields = f;
  r.field_count = 2;
  r.tags = many;
  r.tag_count = 400;
  dn_test_every_alloc_failure(respond_run, &r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_response_per_profile),
      cmocka_unit_test(test_targeted_fields_are_sf_dictionaries),
      cmocka_unit_test(test_lifetime_overrides),
      cmocka_unit_test(test_private_and_no_store),
      cmocka_unit_test(test_renderer_fields_merge),
      cmocka_unit_test(test_304_carries_the_right_fields),
      cmocka_unit_test(test_donut_page_without_etag),
      cmocka_unit_test(test_412_head_and_other_statuses),
      cmocka_unit_test(test_invalid_input_is_rejected),
      cmocka_unit_test(test_cache_fields_only),
      cmocka_unit_test(test_storable),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
