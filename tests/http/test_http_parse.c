/* test_http_parse.c - the http layer's parsers and formatters: HTTP dates
 * in all three formats, entity-tag lists, Cache-Control in both
 * directions, field-name and field-value validation, and the owned header
 * list (including every allocation failure).
 */
#include <stdio.h>
#include <string.h>

#include "donut/http.h"
#include "test_support.h"

#define NOW 1795219200LL /* Sat, 21 Nov 2026 00:00:00 GMT */

/* ---- dates ----------------------------------------------------------- */

static const struct {
  const char *in;
  int64_t want; /* DN_HTTP_UNSET: must be rejected */
} dates[] = {
    /* RFC 9110 §5.6.7: the same instant in the three formats. */
    {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
    {"Sun Nov  6 08:49:37 1994", 784111777},
    {"Sun Nov 06 08:49:37 1994", 784111777},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
    {"Wed, 31 Dec 1969 23:59:59 GMT", -1},
    {"Thu, 29 Feb 1996 00:00:00 GMT", 825552000},
    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL},
    {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228800}, /* leap second */
    {"  Sun, 06 Nov 1994 08:49:37 GMT\t", 784111777},
    /* Two-digit years (now = 2026): 94 is 1994 (2094 would be more than
     * 50 years ahead), 70 is 2070, 76 is 2076, 77 is 1977. */
    {"Thursday, 01-Jan-70 00:00:00 GMT", 3155760000LL},
    {"Wednesday, 01-Jan-76 00:00:00 GMT", 3345062400LL},
    {"Saturday, 01-Jan-77 00:00:00 GMT", 220924800},
    /* The day name is not checked against the date. */
    {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777},
    /* Malformed. */
    {"", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49:37 gmt", DN_HTTP_UNSET},
    {"sun, 06 Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 6 Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 94 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49:37 UTC", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49:37 +0000", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 24:00:00 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 23:60:00 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 23:59:61 GMT", DN_HTTP_UNSET},
    {"Sun, 31 Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Mon, 29 Feb 1900 00:00:00 GMT", DN_HTTP_UNSET},
    {"Sun, 00 Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
     DN_HTTP_UNSET},
    {"Sun,06 Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06  Nov 1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 8:49:37 GMT", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49:37 GMT\r\n", DN_HTTP_UNSET},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sunday, 06 Nov 94 08:49:37 GMT", DN_HTTP_UNSET},
    {"Sun Nov 6 08:49:37 1994", DN_HTTP_UNSET},
    {"Sun Nov  6 08:49:37 94", DN_HTTP_UNSET},
    {"Sun Nov  6 08:49:37 1994 GMT", DN_HTTP_UNSET},
    {"Sun", DN_HTTP_UNSET},
    {"Sun, 06 Nov 1994 08:49", DN_HTTP_UNSET},
    {"1994-11-06T08:49:37Z", DN_HTTP_UNSET},
    {"784111777", DN_HTTP_UNSET},
};

static void test_date_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
    int64_t t = 12345;
    dn_error err;
    int rc =
        dn_http_date_parse(dates[i].in, strlen(dates[i].in), NOW, &t, &err);
    if (dates[i].want == DN_HTTP_UNSET) {
      if (rc != DN_EHEADER || t != 12345)
        fail_msg("date %zu '%s' was accepted", i, dates[i].in);
      assert_true(err.position <= strlen(dates[i].in));
      assert_true(strlen(err.text) > 0);
    } else if (rc != 0 || t != dates[i].want) {
      fail_msg("date %zu '%s': rc %d, t %lld, want %lld", i, dates[i].in, rc,
               (long long)t, (long long)dates[i].want);
    }
  }
}

static void test_date_two_digit_year_window(void **state) {
  (void)state;
  /* Seen from 2090, "01" is 2101 (11 years ahead), "60" is 2060. */
  int64_t now2090 = 3786912000LL; /* 2090-01-01 */
  int64_t t;
  const char *d = "Saturday, 01-Jan-01 00:00:00 GMT";
  assert_int_equal(dn_http_date_parse(d, strlen(d), now2090, &t, NULL), 0);
  assert_int_equal(t, 4133980800LL); /* 2101-01-01 */
  d = "Thursday, 01-Jan-60 00:00:00 GMT";
  assert_int_equal(dn_http_date_parse(d, strlen(d), now2090, &t, NULL), 0);
  assert_int_equal(t, 2840140800LL); /* 2060-01-01 */
}

static void test_date_format(void **state) {
  (void)state;
  char out[DN_HTTP_DATE_LEN + 1];
  assert_int_equal(dn_http_date_format(784111777, out), 0);
  assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(dn_http_date_format(0, out), 0);
  assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
  assert_int_equal(dn_http_date_format(-1, out), 0);
  assert_string_equal(out, "Wed, 31 Dec 1969 23:59:59 GMT");
  assert_int_equal(dn_http_date_format(951782400, out), 0);
  assert_string_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT");
  assert_int_equal(dn_http_date_format(253402300799LL, out), 0);
  assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
  assert_int_equal(dn_http_date_format(253402300800LL, out), DN_ERANGE);
  assert_int_equal(dn_http_date_format(INT64_MIN, out), DN_ERANGE);
  /* Round trip over a wide range, one step per 7 days and 13 seconds. */
  for (int64_t t = -2208988800LL; t < 4102444800LL; t += 604813) {
    int64_t back;
    assert_int_equal(dn_http_date_format(t, out), 0);
    assert_int_equal(
        dn_http_date_parse(out, DN_HTTP_DATE_LEN, NOW, &back, NULL), 0);
    assert_int_equal(back, t);
  }
}

/* ---- entity-tags ------------------------------------------------------- */

static void test_etag_parse(void **state) {
  (void)state;
  dn_http_etag t;
  /* RFC 9110 §8.8.3 examples. */
  assert_int_equal(dn_http_etag_parse("\"xyzzy\"", 7, &t, NULL), 0);
  assert_int_equal(t.weak, 0);
  assert_int_equal(t.opaque.len, 5);
  assert_memory_equal(t.opaque.ptr, "xyzzy", 5);
  assert_int_equal(dn_http_etag_parse("W/\"xyzzy\"", 9, &t, NULL), 0);
  assert_int_equal(t.weak, 1);
  assert_int_equal(dn_http_etag_parse("\"\"", 2, &t, NULL), 0);
  assert_int_equal(t.opaque.len, 0);
  static const char *const bad[] = {
      "xyzzy",   "\"xyzzy",   "W/xyzzy", "w/\"x\"",  "\"a\"b", "\"a\" \"b\"",
      "\"a b\"", "\"a\x7f\"", "",        "W/ \"x\"", "*",      "\"a\r\n\""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    dn_error err;
    if (dn_http_etag_parse(bad[i], strlen(bad[i]), &t, &err) != DN_EHEADER)
      fail_msg("'%s' was accepted", bad[i]);
  }
  assert_int_equal(dn_http_etag_parse(NULL, 0, &t, NULL), DN_EHEADER);
}

static void test_etag_list_parse(void **state) {
  (void)state;
  dn_http_etag tags[4];
  size_t n;
  int star;
  const char *v = " ,W/\"a\" ,, \"b,c\",\"\" , ";
  assert_int_equal(
      dn_http_etag_list_parse(v, strlen(v), tags, 4, &n, &star, NULL), 0);
  assert_int_equal(star, 0);
  assert_int_equal(n, 3);
  assert_int_equal(tags[0].weak, 1);
  assert_memory_equal(tags[1].opaque.ptr, "b,c", 3);
  assert_int_equal(tags[2].opaque.len, 0);
  /* More tags than room: the count is still exact. */
  assert_int_equal(
      dn_http_etag_list_parse(v, strlen(v), tags, 1, &n, &star, NULL), 0);
  assert_int_equal(n, 3);
  assert_int_equal(dn_http_etag_list_parse(" * ", 3, NULL, 0, &n, &star, NULL),
                   0);
  assert_int_equal(star, 1);
  assert_int_equal(dn_http_etag_list_parse("", 0, NULL, 0, &n, &star, NULL), 0);
  assert_int_equal(n, 0);
  dn_error err;
  assert_int_equal(
      dn_http_etag_list_parse("\"a\" \"b\"", 7, tags, 4, &n, &star, &err),
      DN_EHEADER);
  assert_int_equal(err.position, 4);
  assert_int_equal(
      dn_http_etag_list_parse("*, \"a\"", 6, tags, 4, &n, &star, &err),
      DN_EHEADER);
}

static void test_etag_format(void **state) {
  (void)state;
  char out[16];
  size_t n;
  dn_http_etag t = {{"abc", 3}, 0};
  assert_int_equal(dn_http_etag_format(t, out, sizeof out, &n), 0);
  assert_string_equal(out, "\"abc\"");
  t.weak = 1;
  assert_int_equal(dn_http_etag_format(t, out, sizeof out, &n), 0);
  assert_string_equal(out, "W/\"abc\"");
  assert_int_equal(n, 7);
  assert_int_equal(dn_http_etag_format(t, out, 7, &n), DN_ETOOBIG);
  dn_http_etag bad = {{"a\"b", 3}, 0};
  assert_int_equal(dn_http_etag_format(bad, out, sizeof out, &n), DN_EHEADER);
  dn_http_etag ctl = {{"a\nb", 3}, 0};
  assert_int_equal(dn_http_etag_format(ctl, out, sizeof out, &n), DN_EHEADER);
}

/* ---- Cache-Control ----------------------------------------------------- */

#define U DN_HTTP_UNSET
static const struct {
  const char *in;
  int rc;
  unsigned flags;
  int64_t max_age, s_maxage, swr, sie;
} ccs[] = {
    {"max-age=60", 0, 0, 60, U, U, U},
    {"no-store", 0, DN_HTTP_CC_NO_STORE, U, U, U, U},
    {"No-Cache, PRIVATE", 0, DN_HTTP_CC_NO_CACHE | DN_HTTP_CC_PRIVATE, U, U, U,
     U},
    {"private, max-age=30", 0, DN_HTTP_CC_PRIVATE, 30, U, U, U},
    {"max-age=30, stale-while-revalidate=10", 0, 0, 30, U, 10, U},
    {"public, s-maxage=100, stale-if-error=86400", 0, DN_HTTP_CC_PUBLIC, U, 100,
     U, 86400},
    {"max-age=\"5\"", 0, 0, 5, U, U, U},
    {"max-age=60, max-age=10", 0, 0, 10, U, U, U},
    {"max-age=99999999999999999999", 0, 0, 2147483648LL, U, U, U},
    {"max-age=abc", 0, 0, 0, U, U, U},
    {"max-age", 0, 0, 0, U, U, U},
    {"max-age=-1", 0, 0, 0, U, U, U},
    {"private=\"Set-Cookie, X-Foo\"", 0, DN_HTTP_CC_PRIVATE, U, U, U, U},
    {"no-cache=Set-Cookie", 0, DN_HTTP_CC_NO_CACHE, U, U, U, U},
    {"must-revalidate, proxy-revalidate, no-transform, immutable, "
     "must-understand",
     0,
     DN_HTTP_CC_MUST_REVALIDATE | DN_HTTP_CC_PROXY_REVALIDATE |
         DN_HTTP_CC_NO_TRANSFORM | DN_HTTP_CC_IMMUTABLE |
         DN_HTTP_CC_MUST_UNDERSTAND,
     U, U, U, U},
    {"community=\"UCI\", foo=bar, max-age=7", 0, 0, 7, U, U, U},
    {" , ,max-age=1 ,, ", 0, 0, 1, U, U, U},
    {"", 0, 0, U, U, U, U},
    {"ext=\"a \\\" b\", no-store", 0, DN_HTTP_CC_NO_STORE, U, U, U, U},
    /* Syntax errors. */
    {"max-age=60 no-store", DN_EHEADER, 0, U, U, U, U},
    {"max-age = 60", DN_EHEADER, 0, U, U, U, U},
    {"max-age=", DN_EHEADER, 0, U, U, U, U},
    {"=60", DN_EHEADER, 0, U, U, U, U},
    {"private=\"unterminated", DN_EHEADER, 0, U, U, U, U},
    {"no-store\r\nX-Injected: 1", DN_EHEADER, 0, U, U, U, U},
    {"max-age=60;", DN_EHEADER, 0, U, U, U, U},
    {"no-\x01store", DN_EHEADER, 0, U, U, U, U},
};

static void test_cc_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ccs / sizeof ccs[0]; i++) {
    dn_http_cc cc;
    dn_http_cc_init(&cc);
    dn_error err;
    int rc = dn_http_cc_parse(ccs[i].in, strlen(ccs[i].in), &cc, &err);
    if (rc != ccs[i].rc)
      fail_msg("cc %zu '%s': rc %d", i, ccs[i].in, rc);
    if (rc) {
      assert_int_equal(cc.flags, 0);
      assert_true(cc.max_age == U);
      continue;
    }
    if (cc.flags != ccs[i].flags || cc.max_age != ccs[i].max_age ||
        cc.s_maxage != ccs[i].s_maxage ||
        cc.stale_while_revalidate != ccs[i].swr ||
        cc.stale_if_error != ccs[i].sie)
      fail_msg("cc %zu '%s': parsed differently", i, ccs[i].in);
  }
}

static void test_cc_parse_merges_lines(void **state) {
  (void)state;
  dn_http_cc cc;
  dn_http_cc_init(&cc);
  assert_int_equal(dn_http_cc_parse("max-age=60", 10, &cc, NULL), 0);
  assert_int_equal(dn_http_cc_parse("private, max-age=20", 19, &cc, NULL), 0);
  assert_int_equal(cc.flags, DN_HTTP_CC_PRIVATE);
  assert_int_equal(cc.max_age, 20);
  /* A bad line leaves the merged result unchanged. */
  assert_int_equal(dn_http_cc_parse("no-store;", 9, &cc, NULL), DN_EHEADER);
  assert_int_equal(cc.flags, DN_HTTP_CC_PRIVATE);
}

static void test_cc_format(void **state) {
  (void)state;
  char out[DN_HTTP_CC_MAX + 1];
  size_t n;
  dn_http_cc cc;
  dn_http_cc_init(&cc);
  dn_http_cc_format(&cc, out, &n);
  assert_string_equal(out, "");
  assert_int_equal(n, 0);
  cc.flags = DN_HTTP_CC_NO_STORE;
  dn_http_cc_format(&cc, out, &n);
  assert_string_equal(out, "no-store");
  cc.flags = DN_HTTP_CC_PRIVATE | DN_HTTP_CC_NO_CACHE;
  cc.max_age = 30;
  cc.stale_while_revalidate = 10;
  cc.stale_if_error = -5;
  dn_http_cc_format(&cc, out, &n);
  assert_string_equal(out, "private, no-cache, max-age=30, "
                           "stale-while-revalidate=10, stale-if-error=0");
  /* Everything at once fits DN_HTTP_CC_MAX and parses back. */
  cc.flags = 0x1ff;
  cc.max_age = cc.s_maxage = cc.stale_while_revalidate = cc.stale_if_error =
      INT64_MAX;
  dn_http_cc_format(&cc, out, &n);
  assert_true(n <= DN_HTTP_CC_MAX);
  assert_int_equal(strlen(out), n);
  dn_http_cc back;
  dn_http_cc_init(&back);
  assert_int_equal(dn_http_cc_parse(out, n, &back, NULL), 0);
  assert_int_equal(back.flags, 0x1ff);
  assert_int_equal(back.max_age, 2147483648LL);
  assert_int_equal(back.stale_if_error, 2147483648LL);
}

/* ---- field validation and header lists ---------------------------------- */

static void test_field_validation(void **state) {
  (void)state;
  dn_error err;
  assert_int_equal(dn_http_field_name_validate("Content-Type", 12, &err), 0);
  assert_int_equal(dn_http_field_name_validate("x!#$%&'*+-.^_`|~9", 17, &err),
                   0);
  static const char *const bad_names[] = {
      "", "Bad Name", "Bad:Name", "a\r\nb", "(x)", "a\"b", "\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
    assert_int_equal(
        dn_http_field_name_validate(bad_names[i], strlen(bad_names[i]), &err),
        DN_EHEADER);
  char longname[DN_HTTP_NAME_MAX + 2];
  memset(longname, 'a', sizeof longname);
  assert_int_equal(
      dn_http_field_name_validate(longname, DN_HTTP_NAME_MAX, NULL), 0);
  assert_int_equal(
      dn_http_field_name_validate(longname, DN_HTTP_NAME_MAX + 1, NULL),
      DN_EHEADER);
  assert_int_equal(dn_http_field_value_validate("text/html; q=1", 14, &err), 0);
  assert_int_equal(dn_http_field_value_validate("", 0, &err), 0);
  assert_int_equal(dn_http_field_value_validate("a\tb \xc3\xa9", 6, &err), 0);
  static const char *const bad_values[] = {"a\r\nX-Evil: 1", "a\nb",    "a\rb",
                                           " lead",          "trail\t", "a\x7f",
                                           "a\x1b[31m"};
  for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++)
    assert_int_equal(dn_http_field_value_validate(bad_values[i],
                                                  strlen(bad_values[i]), &err),
                     DN_EHEADER);
  assert_int_equal(dn_http_field_value_validate("a\0b", 3, &err), DN_EHEADER);
  assert_int_equal(err.position, 1);
}

static int build_list(void *ud) {
  (void)ud;
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return DN_ENOMEM;
  int rc = 0;
  for (int i = 0; i < 40 && !rc; i++)
    rc = dn_http_headers_add(h, dn_slice_from_cstr("X-Field"),
                             dn_slice_from_cstr("some value"), NULL);
  size_t count = dn_http_headers_count(h);
  dn_http_headers_free(h);
  if (!rc && count != 40)
    return DN_EINVAL;
  return rc;
}

static void test_headers_list(void **state) {
  (void)state;
  dn_http_headers *h = dn_http_headers_new();
  assert_non_null(h);
  dn_error err;
  assert_int_equal(dn_http_headers_add(h, dn_slice_from_cstr("A"),
                                       dn_slice_from_cstr("1"), &err),
                   0);
  assert_int_equal(dn_http_headers_add(h, dn_slice_from_cstr("Bad Name"),
                                       dn_slice_from_cstr("1"), &err),
                   DN_EHEADER);
  assert_int_equal(dn_http_headers_add(h, dn_slice_from_cstr("B"),
                                       dn_slice_from_cstr("x\r\nSet-Cookie: a"),
                                       &err),
                   DN_EHEADER);
  assert_int_equal(err.position, 1);
  assert_int_equal(dn_http_headers_count(h), 1);
  dn_slice v;
  assert_int_equal(dn_http_headers_get(h, "a", &v), 0);
  assert_int_equal(v.len, 1);
  assert_int_equal(dn_http_headers_get(h, "B", &v), DN_ENOTFOUND);
  dn_http_field f = dn_http_headers_at(h, 7);
  assert_int_equal(f.name.len, 0);
  dn_http_headers_free(h);
  dn_http_headers_free(NULL);
  assert_int_equal(dn_http_headers_count(NULL), 0);
  dn_test_every_alloc_failure(build_list, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_date_parse_table),
      cmocka_unit_test(test_date_two_digit_year_window),
      cmocka_unit_test(test_date_format),
      cmocka_unit_test(test_etag_parse),
      cmocka_unit_test(test_etag_list_parse),
      cmocka_unit_test(test_etag_format),
      cmocka_unit_test(test_cc_parse_table),
      cmocka_unit_test(test_cc_parse_merges_lines),
      cmocka_unit_test(test_cc_format),
      cmocka_unit_test(test_field_validation),
      cmocka_unit_test(test_headers_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
