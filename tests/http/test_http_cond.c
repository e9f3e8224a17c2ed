/* test_http_cond.c - conditional requests (RFC 9110 §13), table-driven.
 *
 * Every row is one request against one representation: the current
 * entity-tag (or none), its Last-Modified (or none), the method and up to
 * three header field lines, and the status dn_http_preconditions must
 * give. The rows cover the examples of RFC 9110 §13.1, the order of
 * §13.2.2, list syntax with empty elements and several lines, weak and
 * strong comparison, the three date formats, and malformed input.
 */
#include <stdio.h>
#include <string.h>

#include "donut/http.h"
#include "test_support.h"

#define LM 783459811LL   /* Sat, 29 Oct 1994 19:43:31 GMT */
#define NOW 1795219200LL /* Sat, 21 Nov 2026 00:00:00 GMT */
#define D_EQ "Sat, 29 Oct 1994 19:43:31 GMT"
#define D_BEFORE "Fri, 28 Oct 1994 19:43:31 GMT"
#define D_AFTER "Sun, 30 Oct 1994 19:43:31 GMT"
#define D_EQ_850 "Saturday, 29-Oct-94 19:43:31 GMT"
#define D_BEFORE_850 "Friday, 28-Oct-94 19:43:31 GMT"
#define D_EQ_ASC "Sat Oct 29 19:43:31 1994"
#define NONE NULL

typedef struct row {
  const char *etag; /* the current entity-tag as in an ETag field, or NULL */
  int has_lm;
  const char *method;
  const char *h[6]; /* name, value pairs */
  int want;
} row;

#define IM "If-Match"
#define INM "If-None-Match"
#define IMS "If-Modified-Since"
#define IUS "If-Unmodified-Since"

static const row rows[] = {
    /* If-Match: RFC 9110 §13.1.1 examples and strong comparison. */
    {"\"xyzzy\"", 1, "GET", {IM, "\"xyzzy\""}, 200},
    {"\"xyzzy\"",
     1,
     "GET",
     {IM, "\"xyzzy\", \"r2d2xxxx\", \"c3piozzzz\""},
     200},
    {"\"xyzzy\"", 1, "GET", {IM, "\"r2d2xxxx\", \"c3piozzzz\""}, 412},
    {"\"xyzzy\"", 1, "GET", {IM, "*"}, 200},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"xyzzy\""}, 200},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"other\""}, 412},
    {"\"xyzzy\"", 1, "GET", {IM, "W/\"xyzzy\""}, 412},
    {"W/\"xyzzy\"", 1, "GET", {IM, "\"xyzzy\""}, 412},
    {"W/\"xyzzy\"", 1, "PUT", {IM, "W/\"xyzzy\""}, 412},
    {"\"xyzzy\"", 1, "PUT", {IM, "xyzzy"}, 412},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"xyzzy"}, 412},
    {"\"xyzzy\"", 1, "PUT", {IM, ""}, 412},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"a\"", IM, "\"xyzzy\""}, 200},
    {"\"xyzzy\"", 1, "PUT", {IM, "*", IM, "\"a\""}, 412},
    {"\"xyzzy\"", 1, "PUT", {IM, ", , \"xyzzy\" ,"}, 200},
    {NONE, 1, "PUT", {IM, "\"xyzzy\""}, 412},
    {NONE, 0, "PUT", {IM, "*"}, 200},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"xyzzy\"", IUS, D_BEFORE}, 200},
    {"\"xyzzy\"", 1, "GET", {IM, "\"a\"", INM, "\"b\""}, 412},
    {"\"xyzzy\"", 1, "DELETE", {IM, "\"a\", \"xyzzy\""}, 200},
    {"\"\"", 1, "PUT", {IM, "\"\""}, 200},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"xyzzy\",\"a\"\r\nX: y"}, 412},
    /* If-Unmodified-Since (§13.1.4). */
    {"\"xyzzy\"", 1, "PUT", {IUS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_AFTER}, 200},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_BEFORE}, 412},
    {"\"xyzzy\"", 1, "GET", {IUS, D_BEFORE}, 412},
    {"\"xyzzy\"", 1, "PUT", {IUS, "yesterday"}, 200},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_BEFORE, IUS, D_BEFORE}, 200},
    {"\"xyzzy\"", 0, "PUT", {IUS, D_BEFORE}, 200},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_BEFORE_850}, 412},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_EQ_ASC}, 200},
    {"\"xyzzy\"", 1, "PUT", {IUS, D_BEFORE ", " D_AFTER}, 200},
    {NONE, 1, "PUT", {IUS, D_BEFORE}, 412},
    /* If-None-Match (§13.1.2 examples), weak comparison. */
    {"\"xyzzy\"", 1, "GET", {INM, "\"xyzzy\""}, 304},
    {"\"xyzzy\"", 1, "HEAD", {INM, "\"xyzzy\""}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, "W/\"xyzzy\""}, 304},
    {"W/\"xyzzy\"", 1, "GET", {INM, "\"xyzzy\""}, 304},
    {"W/\"xyzzy\"", 1, "GET", {INM, "W/\"xyzzy\""}, 304},
    {"\"xyzzy\"",
     1,
     "GET",
     {INM, "\"xyzzy\", \"r2d2xxxx\", \"c3piozzzz\""},
     304},
    {"\"c3piozzzz\"",
     1,
     "GET",
     {INM, "W/\"xyzzy\", W/\"r2d2xxxx\", W/\"c3piozzzz\""},
     304},
    {"\"xyzzy\"", 1, "GET", {INM, "\"r2d2xxxx\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "*"}, 304},
    {"\"xyzzy\"", 1, "POST", {INM, "*"}, 412},
    {"\"xyzzy\"", 1, "PUT", {INM, "\"xyzzy\""}, 412},
    {"\"xyzzy\"", 1, "PUT", {INM, "\"other\""}, 200},
    {"\"xyzzy\"", 1, "DELETE", {INM, "W/\"xyzzy\""}, 412},
    {"\"xyzzy\"", 1, "GET", {INM, "\"a\"", INM, "\"xyzzy\""}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, ",,\"a\" , ,\"xyzzy\",", INM, ","}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, "\t\"xyzzy\"\t"}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, "xyzzy"}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "\"a\", xyzzy, \"xyzzy\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "\"xyzzy\" \"a\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "W/ \"xyzzy\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "w/\"xyzzy\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "", IMS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "\"other\"", IMS, D_EQ}, 200},
    {NONE, 1, "GET", {INM, "\"xyzzy\""}, 200},
    {NONE, 1, "GET", {INM, "*"}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, "*, \"a\""}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "*", INM, "*"}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "\"xy\x01zzy\""}, 200},
    {"\"xy,zzy\"", 1, "GET", {INM, "\"a\", \"xy,zzy\""}, 304},
    {"\"xy\\zzy\"", 1, "GET", {INM, "\"xy\\zzy\""}, 304},
    {"\"xyzzy\"", 1, "GET", {INM, "\"xyzzy\"", INM, "garbage"}, 200},
    {"\"\"", 1, "GET", {INM, "W/\"\""}, 304},
    /* If-Modified-Since (§13.1.3). */
    {"\"xyzzy\"", 1, "GET", {IMS, D_EQ}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, D_AFTER}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, D_BEFORE}, 200},
    {"\"xyzzy\"", 1, "HEAD", {IMS, D_EQ}, 304},
    {"\"xyzzy\"", 1, "POST", {IMS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "PUT", {IMS, D_AFTER}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, "Sat, 29 Oct 1994"}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, D_EQ, IMS, D_EQ}, 200},
    {"\"xyzzy\"", 0, "GET", {IMS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, D_EQ_850}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, D_EQ_ASC}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, "sat, 29 oct 1994 19:43:31 gmt"}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, D_EQ " x"}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, "  " D_EQ " "}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, "Sat, 29 Oct 1994 19:43:30 GMT"}, 200},
    {"\"xyzzy\"", 1, "GET", {IMS, "Sat, 21 Nov 2099 00:00:00 GMT"}, 304},
    {"\"xyzzy\"", 1, "GET", {IMS, "Sat, 29 Oct 1994 19:43:31 GMT\r\n"}, 200},
    {NONE, 1, "GET", {IMS, D_EQ}, 304},
    {NONE, 0, "GET", {IMS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "get", {IMS, D_EQ}, 200},
    {"\"xyzzy\"", 1, "get", {INM, "\"xyzzy\""}, 412},
    /* Order of evaluation (§13.2.2) and combinations. */
    {"\"xyzzy\"", 1, "GET", {IM, "\"xyzzy\"", INM, "\"xyzzy\""}, 304},
    {"\"xyzzy\"", 1, "PUT", {IM, "\"xyzzy\"", INM, "\"xyzzy\""}, 412},
    {"\"xyzzy\"", 1, "GET", {IUS, D_AFTER, IMS, D_EQ}, 304},
    {"\"xyzzy\"", 1, "GET", {IUS, D_BEFORE, IMS, D_EQ}, 412},
    {"\"xyzzy\"", 1, "GET", {NULL}, 200},
    {"\"xyzzy\"", 1, "GET", {IM, "\"xyzzy\"", IMS, D_BEFORE}, 200},
    {"\"xyzzy\"", 1, "GET", {INM, "\"xyzzy\"", IM, "\"other\""}, 412},
    {"\"xyzzy\"", 1, "GET", {"if-none-match", "\"xyzzy\""}, 304},
    {"\"xyzzy\"", 1, "GET", {"IF-MATCH", "\"nope\""}, 412},
    {"\"xyzzy\"", 1, "GET", {IM, "*", INM, "*"}, 304},
    {"\"xyzzy\"",
     1,
     "GET",
     {IM, "\"xyzzy\"", IUS, "garbage", INM, "\"a\""},
     200},
    {"\"xyzzy\"", 1, "GET", {"If-Range", "\"other\"", INM, "\"a\""}, 200},
};

/* Parses a row's current entity-tag. */
static int current(const row *r, dn_http_etag *tag) {
  if (!r->etag)
    return 0;
  assert_int_equal(dn_http_etag_parse(r->etag, strlen(r->etag), tag, NULL), 0);
  return 1;
}

static void test_precondition_table(void **state) {
  (void)state;
  size_t n = sizeof rows / sizeof rows[0];
  assert_true(n >= 80);
  for (size_t i = 0; i < n; i++) {
    const row *r = &rows[i];
    dn_http_field f[3];
    size_t nf = 0;
    for (; nf < 3 && r->h[2 * nf]; nf++) {
      f[nf].name = dn_slice_from_cstr(r->h[2 * nf]);
      f[nf].value = dn_slice_from_cstr(r->h[2 * nf + 1]);
    }
    dn_http_request req = {dn_slice_from_cstr(r->method), f, nf};
    dn_http_etag tag;
    int has = current(r, &tag);
    int got = dn_http_preconditions(&req, has ? &tag : NULL,
                                    r->has_lm ? LM : DN_HTTP_UNSET, NOW);
    if (got != r->want)
      fail_msg("row %zu (%s %s: %s): got %d, want %d", i, r->method,
               r->h[0] ? r->h[0] : "-", r->h[1] ? r->h[1] : "-", got, r->want);
  }
}

/* RFC 9110 §8.8.3.2, the table of weak and strong comparison. */
static void test_comparison_table(void **state) {
  (void)state;
  static const struct {
    const char *a, *b;
    int strong, weak;
  } t[] = {
      {"W/\"1\"", "W/\"1\"", 0, 1},
      {"W/\"1\"", "W/\"2\"", 0, 0},
      {"W/\"1\"", "\"1\"", 0, 1},
      {"\"1\"", "\"1\"", 1, 1},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    dn_http_etag a, b;
    assert_int_equal(dn_http_etag_parse(t[i].a, strlen(t[i].a), &a, NULL), 0);
    assert_int_equal(dn_http_etag_parse(t[i].b, strlen(t[i].b), &b, NULL), 0);
    assert_int_equal(dn_http_etag_match(a, b, 1), t[i].strong);
    assert_int_equal(dn_http_etag_match(a, b, 0), t[i].weak);
    assert_int_equal(dn_http_etag_match(b, a, 1), t[i].strong);
    assert_int_equal(dn_http_etag_match(b, a, 0), t[i].weak);
  }
}

/* RFC 9110 §13.1.5: If-Range with an entity-tag or a date. */
static void test_if_range(void **state) {
  (void)state;
  dn_http_etag strong = {{"xyzzy", 5}, 0}, weak = {{"xyzzy", 5}, 1};
  const char *date = "Wed, 21 Oct 2015 07:28:00 GMT";
  int64_t lm = 1445412480;
  assert_int_equal(dn_http_if_range("\"xyzzy\"", 7, &strong, lm, NOW), 1);
  assert_int_equal(dn_http_if_range("\"other\"", 7, &strong, lm, NOW), 0);
  assert_int_equal(dn_http_if_range("W/\"xyzzy\"", 9, &strong, lm, NOW), 0);
  assert_int_equal(dn_http_if_range("\"xyzzy\"", 7, &weak, lm, NOW), 0);
  assert_int_equal(dn_http_if_range("\"xyzzy\"", 7, NULL, lm, NOW), 0);
  assert_int_equal(dn_http_if_range(date, strlen(date), &strong, lm, NOW), 1);
  assert_int_equal(dn_http_if_range(date, strlen(date), &strong, lm + 1, NOW),
                   0);
  assert_int_equal(
      dn_http_if_range(date, strlen(date), &strong, DN_HTTP_UNSET, NOW), 0);
  assert_int_equal(dn_http_if_range("junk", 4, &strong, lm, NOW), 0);
  assert_int_equal(dn_http_if_range(NULL, 0, &strong, lm, NOW), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_precondition_table),
      cmocka_unit_test(test_comparison_table),
      cmocka_unit_test(test_if_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
