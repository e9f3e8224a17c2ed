/* test_origin_policy.c - the caching decision for an upstream response.
 *
 * One test per rule of lib/origin/origin_policy.h: the lifetime precedence
 * (Surrogate-Control, s-maxage, max-age, Expires), every reason a response
 * is refused with its `why`, credentials, stale-* directives, ESI, the
 * three tag fields and their limits, Vary, status codes and allocation
 * failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donut/http.h"
#include "origin_policy.h"
#include "test_support.h"

/* Tue, 14 Nov 2023 22:13:20 GMT */
#define NOW ((int64_t)1700000000)

#define S(lit)                                                                 \
  { lit, sizeof lit - 1 }
#define F(name, value)                                                         \
  { S(name), S(value) }
#define N(a) (sizeof a / sizeof a[0])

static dn_slice cs(const char *s) { return dn_slice_from_cstr(s); }

/* An HTTP-date `delta` seconds from NOW, in caller storage. */
static const char *date_at(int64_t delta, char buf[DN_HTTP_DATE_LEN + 1]) {
  assert_int_equal(dn_http_date_format(NOW + delta, buf), 0);
  return buf;
}

static void read_ok(int status, const dn_http_field *f, size_t n, int creds,
                    const dn__origin_opts *o, dn__origin_policy *p) {
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn__origin_policy_read(status, f, n, NOW, creds, o, p, &err);
  if (rc)
    fail_msg("read failed: %s (%s)", dn_err_name(rc), err.text);
}

/* The response is stored for exactly `ttl` seconds. */
static void expect_ttl(int status, const dn_http_field *f, size_t n,
                       const dn__origin_opts *o, int64_t ttl) {
  dn__origin_policy p;
  read_ok(status, f, n, 0, o, &p);
  if (!p.cacheable)
    fail_msg("refused: %s", p.why);
  assert_null(p.why);
  assert_int_equal(p.ttl_s, ttl);
  dn__origin_policy_free(&p);
}

/* The response is refused because of `why`. */
static void expect_refused(int status, const dn_http_field *f, size_t n,
                           int creds, const dn__origin_opts *o,
                           const char *why) {
  dn__origin_policy p;
  read_ok(status, f, n, creds, o, &p);
  assert_false(p.cacheable);
  assert_non_null(p.why);
  assert_string_equal(p.why, why);
  assert_int_equal(p.ttl_s, 0);
  assert_int_equal(p.ntags, 0);
  dn__origin_policy_free(&p);
}

static void expect_tags(const dn__origin_policy *p, const char *const *want,
                        size_t n) {
  assert_int_equal(p->ntags, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(p->tags[i], want[i]);
}

static dn__origin_opts opts(unsigned tag_fields, int esi_html, int64_t ttl) {
  dn__origin_opts o;
  dn__origin_opts_init(&o);
  o.tag_fields = tag_fields;
  o.esi_html = esi_html;
  o.default_ttl_s = ttl;
  return o;
}

/* ---- lifetime precedence ------------------------------------------------- */

static void test_surrogate_control_beats_s_maxage(void **state) {
  (void)state;
  char exp[DN_HTTP_DATE_LEN + 1];
  dn_http_field f[] = {
      F("Cache-Control", "max-age=10, s-maxage=50"),
      F("Surrogate-Control", "max-age=100"),
      {S("Expires"), cs(date_at(5, exp))},
  };
  expect_ttl(200, f, N(f), NULL, 100);
  /* A shorter Surrogate-Control still wins. */
  dn_http_field g[] = {
      F("Cache-Control", "s-maxage=500"),
      F("Surrogate-Control", "max-age=7"),
  };
  expect_ttl(200, g, N(g), NULL, 7);
}

static void test_s_maxage_beats_max_age(void **state) {
  (void)state;
  char exp[DN_HTTP_DATE_LEN + 1];
  dn_http_field f[] = {
      F("Cache-Control", "max-age=10, s-maxage=50"),
      {S("Expires"), cs(date_at(5000, exp))},
  };
  expect_ttl(200, f, N(f), NULL, 50);
  dn_http_field g[] = {F("Cache-Control", "max-age=600, s-maxage=0")};
  expect_refused(200, g, N(g), 0, NULL, "expired on arrival");
}

static void test_max_age_beats_expires(void **state) {
  (void)state;
  char exp[DN_HTTP_DATE_LEN + 1];
  dn_http_field f[] = {
      {S("Expires"), cs(date_at(500, exp))},
      F("Cache-Control", "max-age=10"),
  };
  expect_ttl(200, f, N(f), NULL, 10);
  /* §5.3: max-age wins even over an invalid Expires. */
  dn_http_field g[] = {F("Expires", "0"), F("Cache-Control", "max-age=10")};
  expect_ttl(200, g, N(g), NULL, 10);
}

static void test_expires_minus_date(void **state) {
  (void)state;
  char exp[DN_HTTP_DATE_LEN + 1], date[DN_HTTP_DATE_LEN + 1];
  /* The upstream clock is 1000 s behind ours: the lifetime is still
   * Expires - Date, clock skew is not held against the response. */
  dn_http_field f[] = {
      {S("Date"), cs(date_at(-1000, date))},
      {S("Expires"), cs(date_at(-700, exp))},
  };
  expect_ttl(200, f, N(f), NULL, 300);
}

static void test_expires_without_date(void **state) {
  (void)state;
  char exp[DN_HTTP_DATE_LEN + 1];
  dn_http_field f[] = {{S("Expires"), cs(date_at(300, exp))}};
  expect_ttl(200, f, N(f), NULL, 300);
  /* An invalid Date is taken as absent: now is the base. */
  dn_http_field g[] = {
      F("Date", "yesterday"),
      {S("Expires"), cs(date_at(300, exp))},
  };
  expect_ttl(200, g, N(g), NULL, 300);
  /* So are two Date lines. */
  char d1[DN_HTTP_DATE_LEN + 1], d2[DN_HTTP_DATE_LEN + 1];
  dn_http_field k[] = {
      {S("Date"), cs(date_at(-100, d1))},
      {S("Date"), cs(date_at(-100, d2))},
      {S("Expires"), cs(date_at(300, exp))},
  };
  expect_ttl(200, k, N(k), NULL, 300);
  /* An Expires in the past. */
  dn_http_field h[] = {{S("Expires"), cs(date_at(-1, exp))}};
  expect_refused(200, h, N(h), 0, NULL, "expired on arrival");
}

static void test_invalid_expires(void **state) {
  (void)state;
  dn_http_field f[] = {F("Expires", "0")};
  expect_refused(200, f, N(f), 0, NULL, "invalid Expires");
  /* Even with a default lifetime: an invalid Expires is not "none". */
  dn__origin_opts o = opts(0, 0, 3600);
  dn_http_field g[] = {F("expires", "-1")};
  expect_refused(200, g, N(g), 0, &o, "invalid Expires");
  /* Two Expires lines are no single HTTP-date. */
  char a[DN_HTTP_DATE_LEN + 1], b[DN_HTTP_DATE_LEN + 1];
  dn_http_field h[] = {
      {S("Expires"), cs(date_at(100, a))},
      {S("Expires"), cs(date_at(200, b))},
  };
  expect_refused(200, h, N(h), 0, NULL, "invalid Expires");
}

static void test_max_age_zero_is_expired(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "public, max-age=0")};
  expect_refused(200, f, N(f), 0, NULL, "expired on arrival");
  dn_http_field g[] = {F("Surrogate-Control", "max-age=0"),
                       F("Cache-Control", "max-age=60")};
  expect_refused(200, g, N(g), 0, NULL, "expired on arrival");
}

static void test_age_is_subtracted(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "max-age=100"), F("Age", "30")};
  expect_ttl(200, f, N(f), NULL, 70);
  dn_http_field g[] = {F("Cache-Control", "max-age=100"), F("age", "100")};
  expect_refused(200, g, N(g), 0, NULL, "expired on arrival");
  /* §4.2.3: an invalid Age counts as 0. */
  dn_http_field h[] = {F("Cache-Control", "max-age=100"), F("Age", "3x")};
  expect_ttl(200, h, N(h), NULL, 100);
  dn_http_field two[] = {F("Cache-Control", "max-age=100"), F("Age", "10"),
                         F("Age", "20")};
  expect_ttl(200, two, N(two), NULL, 100);
  /* A huge Age saturates instead of overflowing. */
  dn_http_field k[] = {F("Cache-Control", "max-age=100"),
                       F("Age", "99999999999999999999999999")};
  expect_refused(200, k, N(k), 0, NULL, "expired on arrival");
}

static void test_ttl_is_capped(void **state) {
  (void)state;
  dn_http_field f[] = {F("Expires", "Fri, 31 Dec 9999 23:59:59 GMT")};
  expect_ttl(200, f, N(f), NULL, DN__ORIGIN_TTL_MAX);
}

/* ---- Surrogate-Control syntax -------------------------------------------- */

static void test_surrogate_control_targeting(void **state) {
  (void)state;
  /* A targeted directive is ignored, even a shorter max-age. */
  dn_http_field f[] = {
      F("Surrogate-Control", "max-age=5;akamai, max-age=100"),
  };
  expect_ttl(200, f, N(f), NULL, 100);
  /* Only targeted directives: Cache-Control decides. */
  dn_http_field g[] = {
      F("Surrogate-Control", "max-age=500;edge, no-store;edge"),
      F("Cache-Control", "max-age=10"),
  };
  expect_ttl(200, g, N(g), NULL, 10);
  /* max-age=N+M is max-age=N. */
  dn_http_field h[] = {F("Surrogate-Control", "max-age=30+60")};
  expect_ttl(200, h, N(h), NULL, 30);
  /* A ';' inside a quoted string does not target anything. */
  dn_http_field k[] = {
      F("Surrogate-Control", "content=\"ESI/1.0;x\", max-age=40"),
  };
  expect_ttl(200, k, N(k), NULL, 40);
  /* Several lines add up; unknown directives are ignored. */
  dn_http_field m[] = {
      F("Surrogate-Control", "no-store-remote"),
      F("SURROGATE-CONTROL", "foo=\"a,b\", max-age=45"),
  };
  expect_ttl(200, m, N(m), NULL, 45);
  /* A quoted-pair does not end the string. */
  dn_http_field q[] = {
      F("Surrogate-Control", "foo=\"a\\\",b;c\", max-age=50"),
  };
  expect_ttl(200, q, N(q), NULL, 50);
}

static void test_unparseable_surrogate_control(void **state) {
  (void)state;
  dn_http_field f[] = {F("Surrogate-Control", "max-age=@")};
  expect_refused(200, f, N(f), 0, NULL, "unparseable Surrogate-Control");
  dn_http_field g[] = {F("Surrogate-Control", "content=\"ESI/1.0"),
                       F("Cache-Control", "max-age=60")};
  expect_refused(200, g, N(g), 0, NULL, "unparseable Surrogate-Control");
  dn_http_field h[] = {F("Surrogate-Control", "max-age=60"),
                       F("Surrogate-Control", "content")};
  expect_refused(200, h, N(h), 0, NULL, "unparseable Surrogate-Control");
}

/* ---- refusals ------------------------------------------------------------ */

static void test_no_store(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "max-age=60, no-store")};
  expect_refused(200, f, N(f), 0, NULL, "Cache-Control: no-store");
  dn_http_field g[] = {F("Surrogate-Control", "no-store"),
                       F("Cache-Control", "s-maxage=60")};
  expect_refused(200, g, N(g), 0, NULL, "Surrogate-Control: no-store");
  /* Surrogate-Control cannot lift a Cache-Control no-store. */
  dn_http_field h[] = {F("Cache-Control", "no-store"),
                       F("Surrogate-Control", "max-age=60")};
  expect_refused(200, h, N(h), 0, NULL, "Cache-Control: no-store");
}

static void test_private(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "private, max-age=60")};
  expect_refused(200, f, N(f), 0, NULL, "Cache-Control: private");
  dn_http_field g[] = {F("cache-control", "private=\"X-User\", s-maxage=60")};
  expect_refused(200, g, N(g), 0, NULL, "Cache-Control: private");
  dn_http_field h[] = {F("Cache-Control", "max-age=60"),
                       F("Cache-Control", "PRIVATE"),
                       F("Surrogate-Control", "max-age=60")};
  expect_refused(200, h, N(h), 0, NULL, "Cache-Control: private");
}

static void test_no_cache(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "no-cache, max-age=60")};
  expect_refused(200, f, N(f), 0, NULL, "Cache-Control: no-cache");
  dn_http_field g[] = {F("Cache-Control", "public, no-cache, s-maxage=60")};
  expect_refused(200, g, N(g), 0, NULL, "Cache-Control: no-cache");
  /* "no-cache for browsers, a long max-age for the CDN". */
  dn_http_field h[] = {F("Cache-Control", "no-cache"),
                       F("Surrogate-Control", "max-age=86400")};
  expect_ttl(200, h, N(h), NULL, 86400);
}

static void test_set_cookie(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "public, s-maxage=60"),
                       F("set-cookie", "sid=1")};
  expect_refused(200, f, N(f), 0, NULL, "Set-Cookie");
  dn_http_field g[] = {F("Surrogate-Control", "max-age=60"),
                       F("Set-Cookie", "a=b; Path=/")};
  expect_refused(200, g, N(g), 0, NULL, "Set-Cookie");
}

static void test_unparseable_cache_control(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "max-age=60, \"")};
  expect_refused(200, f, N(f), 0, NULL, "unparseable Cache-Control");
  /* A bad second line spoils the good first one. */
  dn_http_field g[] = {F("Cache-Control", "max-age=60"),
                       F("Cache-Control", "=x")};
  expect_refused(200, g, N(g), 0, NULL, "unparseable Cache-Control");
  /* Even behind a Surrogate-Control lifetime. */
  dn_http_field h[] = {F("Surrogate-Control", "max-age=60"),
                       F("Cache-Control", "max-age=1 2")};
  expect_refused(200, h, N(h), 0, NULL, "unparseable Cache-Control");
}

static void test_credentials(void **state) {
  (void)state;
  const char *why = "credentials without public or s-maxage";
  dn_http_field f[] = {F("Cache-Control", "max-age=60")};
  expect_refused(200, f, N(f), 1, NULL, why);
  expect_ttl(200, f, N(f), NULL, 60); /* the same without credentials */
  dn_http_field m[] = {F("Cache-Control", "max-age=60, must-revalidate")};
  expect_refused(200, m, N(m), 1, NULL, why);

  dn__origin_policy p;
  dn_http_field g[] = {F("Cache-Control", "public, max-age=60")};
  read_ok(200, g, N(g), 1, NULL, &p);
  assert_true(p.cacheable);
  assert_int_equal(p.ttl_s, 60);
  dn__origin_policy_free(&p);
  dn_http_field h[] = {F("Cache-Control", "s-maxage=30")};
  read_ok(200, h, N(h), 1, NULL, &p);
  assert_true(p.cacheable);
  assert_int_equal(p.ttl_s, 30);
  dn__origin_policy_free(&p);
  dn_http_field k[] = {F("Surrogate-Control", "max-age=20")};
  read_ok(200, k, N(k), 1, NULL, &p);
  assert_true(p.cacheable);
  assert_int_equal(p.ttl_s, 20);
  dn__origin_policy_free(&p);
  /* A targeted Surrogate-Control is no permission. */
  dn_http_field t[] = {F("Surrogate-Control", "max-age=20;cdn"),
                       F("Cache-Control", "max-age=60")};
  expect_refused(200, t, N(t), 1, NULL, why);
}

static void test_vary(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {
      F("Cache-Control", "max-age=60"),
      F("Vary", "Accept-Encoding, ACCEPT-encoding,,  Accept-Language"),
      F("vary", "accept-language, X-Device"),
  };
  read_ok(200, f, N(f), 0, NULL, &p);
  assert_true(p.cacheable);
  assert_false(p.vary_star);
  assert_int_equal(p.nvary, 3);
  assert_string_equal(p.vary[0], "accept-encoding");
  assert_string_equal(p.vary[1], "accept-language");
  assert_string_equal(p.vary[2], "x-device");
  dn__origin_policy_free(&p);
  assert_null(p.vary);
  assert_int_equal(p.nvary, 0);

  dn_http_field bad[] = {F("Cache-Control", "max-age=60"),
                         F("Vary", "Accept, User Agent")};
  expect_refused(200, bad, N(bad), 0, NULL, "unparseable Vary");

  char list[2048];
  size_t len = 0;
  for (int i = 0; i <= DN__ORIGIN_MAX_VARY; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%sx-h%d",
                            i ? "," : "", i);
  dn_http_field many[] = {F("Cache-Control", "max-age=60"),
                          {S("Vary"), {list, len}}};
  expect_refused(200, many, N(many), 0, NULL, "too many Vary names");
  /* Exactly the limit is fine. */
  many[1].value.len = (size_t)(strrchr(list, ',') - list);
  expect_ttl(200, many, N(many), NULL, 60);
}

static void test_vary_star(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {F("Cache-Control", "s-maxage=60"), F("Vary", "Accept"),
                       F("Vary", "Cookie , *")};
  read_ok(200, f, N(f), 0, NULL, &p);
  assert_false(p.cacheable);
  assert_string_equal(p.why, "Vary: *");
  assert_true(p.vary_star);
  assert_int_equal(p.nvary, 2);
  assert_string_equal(p.vary[1], "cookie");
  dn__origin_policy_free(&p);
  /* Surrogate-Control does not lift it. */
  dn_http_field g[] = {F("Surrogate-Control", "max-age=60"), F("VARY", "*")};
  expect_refused(200, g, N(g), 0, NULL, "Vary: *");
}

/* ---- status codes -------------------------------------------------------- */

static void test_5xx_never_cached(void **state) {
  (void)state;
  dn_http_field f[] = {F("Cache-Control", "public, s-maxage=60"),
                       F("Surrogate-Control", "max-age=60")};
  const int codes[] = {500, 501, 502, 503, 504, 599};
  for (size_t i = 0; i < N(codes); i++)
    expect_refused(codes[i], f, N(f), 0, NULL, "status 5xx");
  const int never[] = {99, 100, 101, 206, 304, 600};
  for (size_t i = 0; i < N(never); i++)
    expect_refused(never[i], f, N(f), 0, NULL, "status not storable");
}

static void test_heuristic_statuses(void **state) {
  (void)state;
  dn__origin_opts o = opts(0, 0, 60);
  const int heuristic[] = {200, 203, 204, 300, 301, 308, 405, 410, 414};
  for (size_t i = 0; i < N(heuristic); i++)
    expect_ttl(heuristic[i], NULL, 0, &o, 60);
  /* 404 and the others need explicit freshness... */
  const int other[] = {201, 302, 307, 400, 403, 404};
  for (size_t i = 0; i < N(other); i++)
    expect_refused(other[i], NULL, 0, 0, &o,
                   "no explicit freshness for this status");
  /* ...which makes them cacheable, */
  dn_http_field f[] = {F("Cache-Control", "max-age=30")};
  expect_ttl(404, f, N(f), &o, 30);
  dn_http_field g[] = {F("Cache-Control", "s-maxage=30")};
  expect_ttl(302, g, N(g), NULL, 30);
  /* ...and so does public, which allows the default lifetime. */
  dn_http_field h[] = {F("Cache-Control", "public")};
  expect_ttl(404, h, N(h), &o, 60);
}

static void test_default_ttl(void **state) {
  (void)state;
  expect_refused(200, NULL, 0, 0, NULL, "no lifetime");
  dn_http_field f[] = {F("Cache-Control", "public")};
  expect_refused(200, f, N(f), 0, NULL, "no lifetime");
  dn__origin_opts o = opts(0, 0, 120);
  expect_ttl(200, f, N(f), &o, 120);
  dn_http_field g[] = {F("Age", "20")};
  expect_ttl(200, g, N(g), &o, 100);
  /* Age saturates at 2^31 and the result is capped at 2^31 too. */
  dn__origin_opts big = opts(0, 0, 3 * DN__ORIGIN_TTL_MAX);
  dn_http_field a[] = {F("Age", "99999999999")};
  expect_ttl(200, a, N(a), &big, DN__ORIGIN_TTL_MAX);
  /* The default never replaces a stated lifetime. */
  dn_http_field h[] = {F("Cache-Control", "max-age=5")};
  expect_ttl(200, h, N(h), &o, 5);
}

/* ---- stale-* ------------------------------------------------------------- */

static void test_stale_directives(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {F("Cache-Control",
                         "max-age=60, stale-while-revalidate=30,"
                         " stale-if-error=600")};
  read_ok(200, f, N(f), 0, NULL, &p);
  assert_int_equal(p.stale_while_revalidate_s, 30);
  assert_int_equal(p.stale_if_error_s, 600);
  dn__origin_policy_free(&p);

  dn_http_field g[] = {F("Cache-Control", "max-age=60")};
  read_ok(200, g, N(g), 0, NULL, &p);
  assert_true(p.stale_while_revalidate_s == DN_HTTP_UNSET);
  assert_true(p.stale_if_error_s == DN_HTTP_UNSET);
  dn__origin_policy_free(&p);

  /* Surrogate-Control's win, directive by directive. */
  dn_http_field h[] = {
      F("Cache-Control", "max-age=60, stale-while-revalidate=30, "
                         "stale-if-error=600"),
      F("Surrogate-Control", "max-age=3600, stale-while-revalidate=5"),
  };
  read_ok(200, h, N(h), 0, NULL, &p);
  assert_int_equal(p.ttl_s, 3600);
  assert_int_equal(p.stale_while_revalidate_s, 5);
  assert_int_equal(p.stale_if_error_s, 600);
  dn__origin_policy_free(&p);

  /* A missing value counts as 0. */
  dn_http_field k[] = {F("Cache-Control", "max-age=60, stale-if-error")};
  read_ok(200, k, N(k), 0, NULL, &p);
  assert_int_equal(p.stale_if_error_s, 0);
  dn__origin_policy_free(&p);
}

/* ---- ESI ----------------------------------------------------------------- */

static int esi_of(const dn_http_field *f, size_t n, int esi_html) {
  dn__origin_opts o = opts(0, esi_html, 0);
  dn__origin_policy p;
  read_ok(200, f, n, 0, &o, &p);
  int esi = p.esi;
  dn__origin_policy_free(&p);
  return esi;
}

static void test_esi_opt_in(void **state) {
  (void)state;
  dn_http_field a[] = {F("Surrogate-Control", "content=\"ESI/1.0\"")};
  assert_true(esi_of(a, N(a), 0));
  dn_http_field b[] = {
      F("surrogate-control", "max-age=60, content=\"ESI-Inline/1.0 esi/1.0\"")};
  assert_true(esi_of(b, N(b), 0));
  dn_http_field c[] = {F("Surrogate-Control", "content=\"ESI-INV/1.0\"")};
  assert_false(esi_of(c, N(c), 0));
  /* Targeted at another surrogate: not for donut. */
  dn_http_field d[] = {F("Surrogate-Control", "content=\"ESI/1.0\";akamai")};
  assert_false(esi_of(d, N(d), 0));
  /* The opt-in works on a response that is not stored, and on a
   * Content-Type that is not HTML. */
  dn_http_field e[] = {F("Surrogate-Control", "content=\"ESI/1.0\""),
                       F("Cache-Control", "no-store"),
                       F("Content-Type", "application/json")};
  assert_true(esi_of(e, N(e), 0));
  /* Nothing when the field does not parse. */
  dn_http_field g[] = {
      F("Surrogate-Control", "content=\"ESI/1.0\", max-age=@")};
  assert_false(esi_of(g, N(g), 0));
}

static void test_esi_html(void **state) {
  (void)state;
  dn_http_field a[] = {F("Content-Type", "text/html; charset=utf-8")};
  assert_true(esi_of(a, N(a), 1));
  assert_false(esi_of(a, N(a), 0));
  dn_http_field b[] = {F("content-type", "TEXT/HTML")};
  assert_true(esi_of(b, N(b), 1));
  dn_http_field c[] = {F("Content-Type", "text/html ;charset=utf-8")};
  assert_true(esi_of(c, N(c), 1));
  dn_http_field d[] = {F("Content-Type", "text/htmlx")};
  assert_false(esi_of(d, N(d), 1));
  dn_http_field e[] = {F("Content-Type", "application/xhtml+xml")};
  assert_false(esi_of(e, N(e), 1));
  dn_http_field g[] = {F("Content-Type", "text/html"),
                       F("Content-Type", "text/plain")};
  assert_false(esi_of(g, N(g), 1));
  assert_false(esi_of(NULL, 0, 1));
}

/* ---- tags ---------------------------------------------------------------- */

static void test_surrogate_key_tags(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {
      F("Cache-Control", "max-age=60"),
      F("Surrogate-Key", "a  b\tc a"),
      F("surrogate-key", " b d "),
  };
  /* Read even when tag_fields lacks the bit. */
  dn__origin_opts o = opts(0, 0, 0);
  read_ok(200, f, N(f), 0, &o, &p);
  const char *want[] = {"a", "b", "c", "d"};
  expect_tags(&p, want, N(want));
  dn__origin_policy_free(&p);
  assert_null(p.tags);
  /* A comma is no separator here: it is a bad tag. */
  dn_http_field g[] = {F("Cache-Control", "max-age=60"),
                       F("Surrogate-Key", "a,b")};
  dn_error err;
  assert_int_equal(dn__origin_policy_read(200, g, N(g), NOW, 0, NULL, &p, &err),
                   DN_ETAG);
}

static void test_cache_tag_tags(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {
      F("Cache-Control", "max-age=60"),
      F("Cache-Tag", "product:1, list ,product:1,,"),
      F("CACHE-TAG", "list,user:7"),
  };
  dn__origin_opts o = opts(DN__ORIGIN_TAGS_CACHE_TAG, 0, 0);
  read_ok(200, f, N(f), 0, &o, &p);
  const char *want[] = {"product:1", "list", "user:7"};
  expect_tags(&p, want, N(want));
  dn__origin_policy_free(&p);
  /* Ignored without the bit. */
  read_ok(200, f, N(f), 0, NULL, &p);
  assert_int_equal(p.ntags, 0);
  dn__origin_policy_free(&p);
}

static void test_xkey_tags(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {
      F("Cache-Control", "max-age=60"),
      F("xkey", "8155054 166412,234323"),
      F("XKey", ",166412 , 99"),
  };
  dn__origin_opts o = opts(DN__ORIGIN_TAGS_XKEY, 0, 0);
  read_ok(200, f, N(f), 0, &o, &p);
  const char *want[] = {"8155054", "166412", "234323", "99"};
  expect_tags(&p, want, N(want));
  dn__origin_policy_free(&p);
  read_ok(200, f, N(f), 0, NULL, &p);
  assert_int_equal(p.ntags, 0);
  dn__origin_policy_free(&p);
}

static void test_tags_across_fields(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_http_field f[] = {
      F("xkey", "k2 k1"),
      F("Surrogate-Key", "k1 k3"),
      F("Cache-Control", "s-maxage=60"),
      F("Cache-Tag", "k3,k4,k2"),
  };
  dn__origin_opts o = opts(DN__ORIGIN_TAGS_SURROGATE_KEY |
                               DN__ORIGIN_TAGS_CACHE_TAG | DN__ORIGIN_TAGS_XKEY,
                           0, 0);
  read_ok(200, f, N(f), 0, &o, &p);
  const char *want[] = {"k2", "k1", "k3", "k4"};
  expect_tags(&p, want, N(want));
  dn__origin_policy_free(&p);
}

static void test_invalid_tag_is_an_error(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_error err;
  memset(&err, 0, sizeof err);
  dn_http_field f[] = {F("Cache-Control", "max-age=60"),
                       F("Surrogate-Key", "ok a=b c")};
  assert_int_equal(dn__origin_policy_read(200, f, N(f), NOW, 0, NULL, &p, &err),
                   DN_ETAG);
  assert_int_equal(err.code, DN_ETAG);
  assert_non_null(strstr(err.text, "Surrogate-Key"));
  assert_non_null(strstr(err.text, "\"a=b\""));
  assert_int_equal(err.position, 4); /* the '=' in "ok a=b c" */
  /* *out is zeroed and owns nothing. */
  assert_false(p.cacheable);
  assert_null(p.tags);
  assert_null(p.vary);
  dn__origin_policy_free(&p);

  /* A long bad tag is cut in the message. */
  char v[300];
  memset(v, 'x', sizeof v);
  v[250] = '"';
  dn_http_field g[] = {F("Cache-Control", "max-age=60"),
                       {S("Cache-Tag"), {v, sizeof v}}};
  dn__origin_opts o = opts(DN__ORIGIN_TAGS_CACHE_TAG, 0, 0);
  assert_int_equal(dn__origin_policy_read(200, g, N(g), NOW, 0, &o, &p, &err),
                   DN_ETAG);
  assert_non_null(strstr(err.text, "Cache-Tag"));
  assert_non_null(strstr(err.text, "...\""));
  assert_int_equal(err.position, 250);

  /* Bytes that cannot be printed are shown as '?'. */
  dn_http_field k[] = {F("Cache-Control", "max-age=60"),
                       F("Surrogate-Key", "caf\xc3\xa9")};
  assert_int_equal(dn__origin_policy_read(200, k, N(k), NOW, 0, NULL, &p, &err),
                   DN_ETAG);
  assert_non_null(strstr(err.text, "\"caf??\""));
  assert_int_equal(err.position, 3);

  /* A response that is not stored reads no tags, so no error. */
  dn_http_field h[] = {F("Cache-Control", "no-store"),
                       F("Surrogate-Key", "a=b")};
  expect_refused(200, h, N(h), 0, NULL, "Cache-Control: no-store");
}

/* A Surrogate-Key value of `count` tags "t<i % distinct>" of `width`
 * bytes each (at least 8). */
static char *tag_list(size_t count, size_t distinct, size_t width,
                      size_t *len) {
  char *s = malloc(count * (width + 1) + 1);
  assert_non_null(s);
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    int w = snprintf(s + n, width + 1, "t%06zu", i % distinct);
    memset(s + n + w, 'x', width - (size_t)w);
    n += width;
    s[n++] = ' ';
  }
  s[n] = '\0';
  *len = n;
  return s;
}

static int tags_rc(const char *v, size_t len, size_t *ntags) {
  dn_http_field f[] = {F("Cache-Control", "max-age=60"),
                       {S("Surrogate-Key"), {v, len}}};
  dn__origin_policy p;
  dn_error err;
  int rc = dn__origin_policy_read(200, f, N(f), NOW, 0, NULL, &p, &err);
  *ntags = p.ntags;
  if (rc)
    assert_int_equal(err.code, rc);
  dn__origin_policy_free(&p);
  return rc;
}

static void test_tag_limits(void **state) {
  (void)state;
  size_t len, ntags;
  char *v = tag_list(DN__ORIGIN_MAX_TAGS, DN__ORIGIN_MAX_TAGS, 8, &len);
  assert_int_equal(tags_rc(v, len, &ntags), 0);
  assert_int_equal(ntags, DN__ORIGIN_MAX_TAGS);
  free(v);
  v = tag_list(DN__ORIGIN_MAX_TAGS + 1, DN__ORIGIN_MAX_TAGS + 1, 8, &len);
  assert_int_equal(tags_rc(v, len, &ntags), DN_ETOOBIG);
  assert_int_equal(ntags, 0);
  free(v);
  /* Duplicates do not count. */
  v = tag_list(20000, 10, 8, &len);
  assert_int_equal(tags_rc(v, len, &ntags), 0);
  assert_int_equal(ntags, 10);
  free(v);
  /* 64 tags of 1024 bytes are exactly 64 KiB; one more byte is too many. */
  size_t w = DN__ORIGIN_MAX_TAG_BYTES / 64;
  v = tag_list(64, 64, w, &len);
  assert_int_equal(tags_rc(v, len, &ntags), 0);
  assert_int_equal(ntags, 64);
  v = realloc(v, len + 2);
  memcpy(v + len, "y", 2);
  assert_int_equal(tags_rc(v, len + 1, &ntags), DN_ETOOBIG);
  free(v);
}

/* ---- arguments, allocation failures -------------------------------------- */

static void test_bad_arguments(void **state) {
  (void)state;
  dn__origin_policy p;
  dn_error err;
  dn_http_field f[] = {F("Cache-Control", "max-age=60")};
  assert_int_equal(dn__origin_policy_read(200, f, 1, NOW, 0, NULL, NULL, &err),
                   DN_EINVAL);
  assert_int_equal(dn__origin_policy_read(200, NULL, 1, NOW, 0, NULL, &p, &err),
                   DN_EINVAL);
  assert_null(p.why);
  dn__origin_opts o = opts(0, 0, -1);
  assert_int_equal(dn__origin_policy_read(200, f, 1, NOW, 0, &o, &p, NULL),
                   DN_EINVAL);
  dn__origin_policy_free(NULL);
  dn__origin_opts d;
  dn__origin_opts_init(&d);
  assert_int_equal(d.tag_fields, DN__ORIGIN_TAGS_SURROGATE_KEY);
  assert_int_equal(d.esi_html, 0);
  assert_int_equal(d.default_ttl_s, 0);
}

static int read_with_allocs(void *ud) {
  (void)ud;
  dn_http_field f[] = {
      F("Cache-Control", "s-maxage=60"),
      F("Vary", "Accept, Accept-Language"),
      F("Surrogate-Key", "a b c d e f g h i"),
      F("Cache-Tag", "a,j,k"),
      F("Vary", "Accept, X-Device"),
  };
  dn__origin_opts o = opts(DN__ORIGIN_TAGS_CACHE_TAG, 0, 0);
  dn__origin_policy p;
  dn_error err;
  int rc = dn__origin_policy_read(200, f, N(f), NOW, 0, &o, &p, &err);
  if (rc) {
    assert_int_equal(rc, DN_ENOMEM);
    assert_int_equal(err.code, DN_ENOMEM);
    assert_null(p.tags);
    assert_null(p.vary);
    return rc;
  }
  assert_true(p.cacheable);
  assert_int_equal(p.ntags, 11);
  assert_int_equal(p.nvary, 3);
  dn__origin_policy_free(&p);
  return 0;
}

static void test_alloc_failures(void **state) {
  (void)state;
  dn_test_every_alloc_failure(read_with_allocs, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_surrogate_control_beats_s_maxage),
      cmocka_unit_test(test_s_maxage_beats_max_age),
      cmocka_unit_test(test_max_age_beats_expires),
      cmocka_unit_test(test_expires_minus_date),
      cmocka_unit_test(test_expires_without_date),
      cmocka_unit_test(test_invalid_expires),
      cmocka_unit_test(test_max_age_zero_is_expired),
      cmocka_unit_test(test_age_is_subtracted),
      cmocka_unit_test(test_ttl_is_capped),
      cmocka_unit_test(test_surrogate_control_targeting),
      cmocka_unit_test(test_unparseable_surrogate_control),
      cmocka_unit_test(test_no_store),
      cmocka_unit_test(test_private),
      cmocka_unit_test(test_no_cache),
      cmocka_unit_test(test_set_cookie),
      cmocka_unit_test(test_unparseable_cache_control),
      cmocka_unit_test(test_credentials),
      cmocka_unit_test(test_vary),
      cmocka_unit_test(test_vary_star),
      cmocka_unit_test(test_5xx_never_cached),
      cmocka_unit_test(test_heuristic_statuses),
      cmocka_unit_test(test_default_ttl),
      cmocka_unit_test(test_stale_directives),
      cmocka_unit_test(test_esi_opt_in),
      cmocka_unit_test(test_esi_html),
      cmocka_unit_test(test_surrogate_key_tags),
      cmocka_unit_test(test_cache_tag_tags),
      cmocka_unit_test(test_xkey_tags),
      cmocka_unit_test(test_tags_across_fields),
      cmocka_unit_test(test_invalid_tag_is_an_error),
      cmocka_unit_test(test_tag_limits),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
