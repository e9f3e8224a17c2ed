/* test_uritpl.c - RFC 6570 URI templates and URI tags from rows.
 *
 * The conformance part is one data-driven driver over the four files of
 * the uritemplate-test suite in tests/data/uritemplate (270 cases): a
 * string result must match exactly, a list result accepts any member, and
 * false means parsing or expansion must fail with DN_ETEMPLATE. The unit
 * tests pin error positions, number text, encoding rules, the internal
 * json_t entry points, tags from rows, and every out-of-memory path.
 */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "test_support.h"
#include "uritpl.h"

/* ---- the uritemplate-test suite ----------------------------------------- */

static const char *const suite_files[] = {
    "uritemplate/spec-examples.json",
    "uritemplate/spec-examples-by-section.json",
    "uritemplate/extended-tests.json",
    "uritemplate/negative-tests.json",
};

/* Runs one case; returns 1 when it passes, printing why when it fails. */
static int run_case(const char *group, const char *vars, json_t *tc) {
  const char *tpl = json_string_value(json_array_get(tc, 0));
  json_t *want = json_array_get(tc, 1);
  char *out = (char *)"untouched";
  size_t out_len = 0;
  dn_error err;
  int rc = dn_uritpl_expand_str(tpl, strlen(tpl), vars, strlen(vars), &out,
                                &out_len, &err);
  int ok = 0;
  if (json_is_false(want)) {
    ok = rc == DN_ETEMPLATE && strcmp(out, "untouched") == 0;
  } else if (rc == 0 && json_is_string(want)) {
    ok = strcmp(out, json_string_value(want)) == 0;
  } else if (rc == 0) {
    for (size_t i = 0; i < json_array_size(want); i++)
      ok |= strcmp(out, json_string_value(json_array_get(want, i))) == 0;
  }
  if (rc == 0 && strlen(out) != out_len)
    ok = 0;
  if (!ok)
    print_message("FAIL [%s] %s -> rc %d (%s) '%s'\n", group, tpl, rc,
                  rc ? err.text : "", rc ? "" : out);
  if (rc == 0)
    dn_free(out);
  return ok;
}

static void run_suite_file(const char *name, int *passed, int *total) {
  size_t len;
  char *text = dn_test_read_data(name, &len);
  assert_non_null(text);
  json_error_t je;
  json_t *root = json_loadb(text, len, 0, &je);
  assert_non_null(root);
  const char *group;
  json_t *g;
  json_object_foreach(root, group, g) {
    char *vars = json_dumps(json_object_get(g, "variables"), JSON_COMPACT);
    assert_non_null(vars);
    json_t *cases = json_object_get(g, "testcases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
      *passed += run_case(group, vars, json_array_get(cases, i));
      ++*total;
    }
    free(vars);
  }
  json_decref(root);
  free(text);
}

static void test_conformance_suite(void **state) {
  (void)state;
  int passed = 0, total = 0;
  for (size_t i = 0; i < sizeof suite_files / sizeof suite_files[0]; i++)
    run_suite_file(suite_files[i], &passed, &total);
  print_message("uritemplate-test: %d/%d cases passed\n", passed, total);
  assert_int_equal(total, 270);
  assert_int_equal(passed, 270);
}

/* ---- helpers ------------------------------------------------------------- */

/* Expands and returns a static copy of the result, or fails the test. */
static const char *expand(const char *tpl, const char *vars) {
  static char result[4096];
  char *out = NULL;
  size_t n = 0;
  dn_error err;
  int rc = dn_uritpl_expand_str(tpl, strlen(tpl), vars, strlen(vars), &out, &n,
                                &err);
  if (rc != 0)
    fail_msg("%s: %s at %zu: %s", tpl, dn_err_name(rc), err.position, err.text);
  assert_true(n < sizeof result);
  memcpy(result, out, n + 1);
  dn_free(out);
  return result;
}

/* Expects expansion to fail with `code` at `pos`, its text containing
 * `why`, and *out left alone. */
static void expect_fail(const char *tpl, const char *vars, int code, size_t pos,
                        const char *why) {
  char *out = (char *)"untouched";
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_uritpl_expand_str(tpl, strlen(tpl), vars, strlen(vars), &out,
                                NULL, &err);
  if (rc != code || err.code != code || err.position != pos ||
      !strstr(err.text, why))
    fail_msg("'%s': want %s at %zu (%s), got %s at %zu: %s", tpl,
             dn_err_name(code), pos, why, dn_err_name(rc), err.position,
             err.text);
  assert_string_equal(out, "untouched");
}

/* ---- parsing errors -------------------------------------------------- */

static void test_parse_error_positions(void **state) {
  (void)state;
  static const struct {
    const char *tpl;
    size_t pos;
    const char *why;
  } cases[] = {
      {"abc{x", 3, "not closed"},
      {"abc{", 3, "not closed"},
      {"a{b}{c,", 4, "not closed"},
      {"ab}c", 2, "without a matching"},
      {"{}", 1, "expected a variable name"},
      {"x{a,}", 4, "expected a variable name"},
      {"{=x}", 1, "reserved"},
      {"{,x}", 1, "reserved"},
      {"{!x}", 1, "reserved"},
      {"{@x}", 1, "reserved"},
      {"{|x}", 1, "reserved"},
      {"{$x}", 1, "expected a variable name"},
      {"{/?id}", 2, "expected a variable name"},
      {"{x y}", 2, "unexpected ' '"},
      {"{x.}", 2, "unexpected '.'"},
      {"{.x..y}", 3, "unexpected '.'"},
      {"{x:0}", 3, "1 to 9999"},
      {"{x:01}", 3, "1 to 9999"},
      {"{x:10000}", 7, "1 to 9999"},
      {"{x:}", 3, "1 to 9999"},
      {"{x:2*}", 4, "unexpected '*'"},
      {"{x*:2}", 3, "unexpected ':'"},
      {"{%2x}", 1, "two hex digits"},
      {"a%zz", 1, "two hex digits"},
      {"a%4", 1, "two hex digits"},
      {"a b", 1, "' '"},
      {"a\"b", 1, "'\"'"},
      {"ab<", 2, "'<'"},
      {"a\tb", 1, "0x09"},
      {"a|b", 1, "'|'"},
      {"{a{b}}", 2, "unexpected '{'"},
      {"x\xC3", 1, "invalid UTF-8"},
      {"x\xC0\xAF", 1, "invalid UTF-8"},
      {"x\xED\xA0\x80", 1, "invalid UTF-8"},
      {"x\xEF\xBF\xBF", 1, "U+FFFF"},
      {"x\xC2\x85", 1, "U+0085"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_fail(cases[i].tpl, "{\"x\":\"1\"}", DN_ETEMPLATE, cases[i].pos,
                cases[i].why);
}

static void test_parse_limits_and_arguments(void **state) {
  (void)state;
  char *big = malloc(DN_URITPL_MAX + 2);
  assert_non_null(big);
  memset(big, 'a', DN_URITPL_MAX + 1);
  big[DN_URITPL_MAX + 1] = '\0';
  dn_uritpl *t = NULL;
  dn_error err;
  assert_int_equal(dn_uritpl_parse(big, DN_URITPL_MAX + 1, &t, &err),
                   DN_ETEMPLATE);
  assert_int_equal(err.position, DN_URITPL_MAX);
  assert_null(t);
  assert_int_equal(dn_uritpl_parse(big, DN_URITPL_MAX, &t, &err), 0);
  dn_uritpl_free(t);
  free(big);
  assert_int_equal(dn_uritpl_parse(NULL, 3, &t, &err), DN_EINVAL);
  assert_int_equal(dn_uritpl_parse("x", 1, NULL, &err), DN_EINVAL);
  /* A NUL byte is a control character, not the end of the template. */
  assert_int_equal(dn_uritpl_parse("a\0b", 3, &t, &err), DN_ETEMPLATE);
  assert_int_equal(err.position, 1);
  /* The empty template is valid and expands to "". */
  assert_int_equal(dn_uritpl_parse(NULL, 0, &t, NULL), 0);
  char *out = NULL;
  assert_int_equal(dn_uritpl_expand(t, NULL, 0, &out, NULL, NULL), 0);
  assert_string_equal(out, "");
  dn_free(out);
  dn_uritpl_free(t);
  dn_uritpl_free(NULL);
}

/* Templates are (pointer, length) and need not be NUL-terminated: parse
 * copies of exactly `len` bytes so that ASan catches any read past them.
 * "&{K" once read one byte too far (found by fuzz_uritpl). */
static void test_parse_reads_only_len_bytes(void **state) {
  (void)state;
  static const char *const cases[] = {"&{K", "{a",  "{a.",  "{a:1", "{a*",
                                      "{+",  "x%4", "\xC3", "{a%2", "ab"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i]);
    char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, cases[i], n);
    dn_uritpl *t = NULL;
    dn_error err;
    int rc = dn_uritpl_parse(copy, n, &t, &err);
    assert_int_equal(rc, strcmp(cases[i], "ab") == 0 ? 0 : DN_ETEMPLATE);
    assert_true(rc != 0 || t != NULL);
    assert_true(rc == 0 || err.position < n);
    dn_uritpl_free(t);
    free(copy);
  }
}

/* ---- expansion ------------------------------------------------------- */

static void test_invalid_uses_fail_without_output(void **state) {
  (void)state;
  const char *vars = "{\"list\":[\"a\",\"b\"],\"keys\":{\"k\":\"v\"},"
                     "\"nested\":[[\"a\"]],\"deep\":{\"k\":{\"a\":1}},"
                     "\"s\":\"x\"}";
  expect_fail("ab{s}{list:1}", vars, DN_ETEMPLATE, 6, "prefix modifier");
  expect_fail("{+keys:2}", vars, DN_ETEMPLATE, 2, "prefix modifier");
  expect_fail("/{s}{/nested}", vars, DN_ETEMPLATE, 6, "may hold only");
  expect_fail("{?s,deep*}", vars, DN_ETEMPLATE, 4, "'deep'");
  /* Undefined or empty composites are skipped before the prefix check. */
  assert_string_equal(expand("{e:3}{n:3}", "{\"e\":[],\"n\":null}"), "");
}

static void test_bad_variables_json(void **state) {
  (void)state;
  expect_fail("{x}", "{\"x\": }", DN_EJSON, 7, "unexpected token");
  expect_fail("{x}", "[1,2]", DN_EJSON, 0, "JSON object");
  expect_fail("{x}", "{\"x\":1,\"x\":2}", DN_EJSON, 10, "duplicate");
  expect_fail("{x}", "\"x\"", DN_EJSON, 3, "expected");
  dn_error err;
  char *out = NULL;
  assert_int_equal(
      dn_uritpl_expand_str("{x}", 3, "{\n\"x\"\n:}", 8, &out, NULL, &err),
      DN_EJSON);
  assert_int_equal(err.line, 3);
  assert_null(out);
}

static void test_numbers_expand_from_shortest_text(void **state) {
  (void)state;
  const char *vars = "{\"a\":37.76,\"b\":-122.427,\"c\":1e-7,\"d\":1E20,"
                     "\"e\":0.1,\"f\":100.0,\"g\":9223372036854775807,"
                     "\"h\":-9223372036854775808,\"i\":5e-324,"
                     "\"j\":1.7976931348623157e308,\"k\":0.30000000000000004,"
                     "\"l\":-0.0,\"m\":123456789012345680000.0,\"n\":2.5e-5}";
  assert_string_equal(expand("{a}!{b}!{c}!{d}", vars),
                      "37.76!-122.427!1e-7!100000000000000000000");
  assert_string_equal(expand("{e}!{f}!{g}!{h}", vars),
                      "0.1!100!9223372036854775807!-9223372036854775808");
  assert_string_equal(expand("{i}!{j}", vars),
                      "5e-324!1.7976931348623157e%2B308");
  assert_string_equal(expand("{k}!{l}!{m}!{n}", vars),
                      "0.30000000000000004!0!123456789012345680000!0.000025");
  assert_string_equal(expand("{+j}!{?k}", vars),
                      "1.7976931348623157e+308!?k=0.30000000000000004");
  assert_string_equal(expand("{list}", "{\"list\":[1,2.5,true,false]}"),
                      "1,2.5,true,false");
  assert_string_equal(expand("{b:4}", vars), "-122");
}

static void test_number_text_internal(void **state) {
  (void)state;
  static const struct {
    double d;
    const char *text;
  } cases[] = {
      {37.76, "37.76"},
      {1e100, "1e+100"},
      {1e-100, "1e-100"},
      {0.5, "0.5"},
      {1e16, "10000000000000000"},
      {123456.0, "123456"},
      {1e-5, "0.00001"},
      {-1.5e-10, "-1.5e-10"},
      {1e21, "1e+21"},
      {1e-6, "0.000001"},
      {1e-7, "1e-7"},
      {-0.0, "0"},
      {0.0, "0"},
      {-2.5e21, "-2.5e+21"},
      {1.5, "1.5"},
      {123.456e-3, "0.123456"},
  };
  char buf[DN__URITPL_NUM_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = json_real(cases[i].d);
    size_t n = dn__uritpl_number_text(j, buf);
    assert_string_equal(buf, cases[i].text);
    assert_int_equal(n, strlen(cases[i].text));
    json_decref(j);
  }
}

/* A locale whose decimal point is ',' must not leak into expansions. The
 * test is skipped when no such locale is installed. */
static void test_numbers_ignore_the_locale(void **state) {
  (void)state;
  static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                      "fr_FR.UTF-8", "fr_FR.utf8"};
  const char *set = NULL;
  for (size_t i = 0; !set && i < sizeof names / sizeof names[0]; i++)
    set = setlocale(LC_NUMERIC, names[i]);
  if (!set || localeconv()->decimal_point[0] != ',') {
    setlocale(LC_NUMERIC, "C");
    skip();
  }
  char out[64];
  snprintf(out, sizeof out, "%s",
           expand("{a}!{b}!{c}!{d}",
                  "{\"a\":37.76,\"b\":0.5,\"c\":1.5e300,\"d\":-1e-9}"));
  setlocale(LC_NUMERIC, "C");
  assert_string_equal(out, "37.76!0.5!1.5e%2B300!-1e-9");
}

static void test_undefined_and_empty_values(void **state) {
  (void)state;
  const char *vars = "{\"u\":null,\"e\":\"\",\"el\":[],\"ea\":{},"
                     "\"nulls\":{\"a\":null},\"ln\":[null,\"a\",null,\"b\"],"
                     "\"an\":{\"a\":null,\"b\":\"2\"},\"x\":\"1\"}";
  assert_string_equal(expand("{u}{el}{ea}{nulls}{missing}", vars), "");
  assert_string_equal(expand("{?u,el,ea,nulls,x}", vars), "?x=1");
  assert_string_equal(expand("{?e}{;e}{&e}{.e}{/e}{#e}", vars), "?e=;e&e=./#");
  assert_string_equal(expand("{ln}!{/ln*}!{?ln*}", vars),
                      "a,b!/a/b!?ln=a&ln=b");
  assert_string_equal(expand("{an}!{?an*}!{;an}", vars), "b,2!?b=2!;an=b,2");
  assert_string_equal(expand("{;list*}", "{\"list\":[\"\",\"a\"]}"),
                      ";list;list=a");
  assert_string_equal(expand("{?list*}", "{\"list\":[\"\",\"a\"]}"),
                      "?list=&list=a");
  assert_string_equal(expand("{?k*}", "{\"k\":{\"a\":\"\"}}"), "?a=");
  assert_string_equal(expand("{k*}", "{\"k\":{\"a\":\"\"}}"), "a=");
}

static void test_encoding_rules(void **state) {
  (void)state;
  const char *vars = "{\"r\":\":/?#[]@!$&'()*+,;=\",\"p\":\"%41%zz%4\","
                     "\"u\":\"\xC3\xA9\\u0001\x7F\",\"sp\":\"a b~c\"}";
  assert_string_equal(expand("{r}", vars),
                      "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D");
  assert_string_equal(expand("{+r}", vars), ":/?#[]@!$&'()*+,;=");
  assert_string_equal(expand("{#r}", vars), "#:/?#[]@!$&'()*+,;=");
  assert_string_equal(expand("{p}!{+p}", vars), "%2541%25zz%254!%41%25zz%254");
  assert_string_equal(expand("{u}!{+u}", vars), "%C3%A9%01%7F!%C3%A9%01%7F");
  assert_string_equal(expand("{sp}!{?sp}", vars), "a%20b~c!?sp=a%20b~c");
}

static void test_literals(void **state) {
  (void)state;
  assert_string_equal(expand("caf\xC3\xA9/%7e{x}", "{\"x\":\"1\"}"),
                      "caf%C3%A9/%7e1");
  assert_string_equal(expand("\xEE\x80\x80!$&()*+,;=:@[]~", "{}"),
                      "%EE%80%80!$&()*+,;=:@[]~");
  assert_string_equal(expand("\xF0\x9D\x84\x9E", "{}"), "%F0%9D%84%9E");
  /* RFC 6570 §2.1 leaves out "'", but the RFC's own examples use it. */
  assert_string_equal(expand("'{x}'", "{\"x\":\"a'\"}"), "'a%27'");
}

static void test_prefix_counts_characters(void **state) {
  (void)state;
  const char *vars = "{\"g\":\"\xCE\xB1\xCE\xB2\xCE\xB3\",\"p\":\"%2Fab\","
                     "\"s\":\"abc\"}";
  assert_string_equal(expand("{g:2}", vars), "%CE%B1%CE%B2");
  assert_string_equal(expand("{+p:1}!{+p:2}!{p:2}", vars), "%2F!%2Fa!%252");
  assert_string_equal(expand("{s:9999}!{s:1}!{?s:2}", vars), "abc!a!?s=ab");
  assert_string_equal(expand("{g:1,s:2}", vars), "%CE%B1,ab");
}

static void test_varnames(void **state) {
  (void)state;
  const char *vars = "{\"a.b\":\"1\",\"a%20b\":\"2\",\"_9\":\"3\"}";
  assert_string_equal(expand("{a.b}{?a%20b}{&_9}", vars), "1?a%20b=2&_9=3");
  assert_string_equal(expand("{a%20B}", vars), "");
}

/* ---- internal entry points ------------------------------------------- */

static void test_expand_json_appends_and_restores(void **state) {
  (void)state;
  dn_uritpl *ok = NULL, *bad = NULL;
  assert_int_equal(dn_uritpl_parse("/x{?id}", 7, &ok, NULL), 0);
  assert_int_equal(dn_uritpl_parse("/y{id}{l:1}", 11, &bad, NULL), 0);
  json_t *vars = json_pack("{s:i,s:[s]}", "id", 7, "l", "a");
  assert_non_null(vars);
  dn__buf b;
  dn__buf_init(&b, 0);
  assert_int_equal(dn__buf_append_cstr(&b, "app://h"), 0);
  assert_int_equal(dn__uritpl_expand_json(ok, vars, &b, NULL), 0);
  assert_string_equal(b.data, "app://h/x?id=7");
  dn_error err;
  assert_int_equal(dn__uritpl_expand_json(bad, vars, &b, &err), DN_ETEMPLATE);
  assert_int_equal(err.position, 7);
  assert_string_equal(b.data, "app://h/x?id=7");
  assert_int_equal(dn__uritpl_expand_json(ok, NULL, &b, NULL), 0);
  assert_string_equal(b.data, "app://h/x?id=7/x");
  json_t *arr = json_array();
  assert_int_equal(dn__uritpl_expand_json(ok, arr, &b, NULL), DN_EINVAL);
  json_decref(arr);
  /* The buffer's own limit applies, and nothing partial stays behind. */
  dn__buf small;
  dn__buf_init(&small, 5);
  assert_int_equal(dn__uritpl_expand_json(ok, vars, &small, &err), DN_ETOOBIG);
  assert_int_equal(small.len, 0);
  dn__buf_free(&small);
  dn__buf_free(&b);
  json_decref(vars);
  dn_uritpl_free(ok);
  dn_uritpl_free(bad);
}

static void test_expansion_size_limit(void **state) {
  (void)state;
  size_t n = DN__URITPL_OUT_MAX / 3 + 10;
  char *vars = malloc(n + 16);
  assert_non_null(vars);
  memcpy(vars, "{\"v\":\"", 6);
  memset(vars + 6, ' ', n);
  memcpy(vars + 6 + n, "\"}", 3);
  char *out = NULL;
  dn_error err;
  assert_int_equal(
      dn_uritpl_expand_str("ab{v}", 5, vars, strlen(vars), &out, NULL, &err),
      DN_ETOOBIG);
  assert_int_equal(err.position, 3);
  assert_null(out);
  free(vars);
}

typedef struct shared_ctx {
  const dn_uritpl *t;
  int failures;
} shared_ctx;

static void *expand_many(void *arg) {
  shared_ctx *c = arg;
  for (int i = 0; i < 200; i++) {
    char vars[64], want[64], *out = NULL;
    snprintf(vars, sizeof vars, "{\"id\":%d,\"q\":[\"a b\",%d.5]}", i, i);
    snprintf(want, sizeof want, "/item/%d?q=a%%20b&q=%d.5", i, i);
    if (dn_uritpl_expand(c->t, vars, strlen(vars), &out, NULL, NULL) != 0 ||
        strcmp(out, want) != 0)
      c->failures++;
    dn_free(out);
  }
  return NULL;
}

static void test_template_shared_between_threads(void **state) {
  (void)state;
  dn_uritpl *t = NULL;
  assert_int_equal(dn_uritpl_parse("/item/{id}{?q*}", 15, &t, NULL), 0);
  pthread_t th[4];
  shared_ctx ctx[4];
  for (int i = 0; i < 4; i++) {
    ctx[i].t = t;
    ctx[i].failures = 0;
    assert_int_equal(pthread_create(&th[i], NULL, expand_many, &ctx[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(ctx[i].failures, 0);
  }
  dn_uritpl_free(t);
}

/* ---- tags from rows -------------------------------------------------- */

/* The URI tag dn_uri_tag gives for `uri` (static copy). */
static const char *tag_of(const char *uri) {
  static char tag[4][DN_URI_TAG_MAX + 1];
  static int next;
  char *t = tag[next++ % 4];
  size_t n;
  assert_int_equal(dn_uri_tag(uri, strlen(uri), t, &n, NULL), 0);
  return t;
}

static void test_rows_dedup_keeps_first_order(void **state) {
  (void)state;
  const char *tpl = "app://self/item{?id}";
  const char *rows = "[{\"id\":2},{\"id\":1},{\"id\":2,\"x\":0},{\"id\":\"1\"},"
                     "{\"id\":3},{\"other\":1},{\"id\":null}]";
  dn_strings out = {0};
  dn_error err;
  assert_int_equal(
      dn_uri_tags_from_rows(tpl, strlen(tpl), rows, strlen(rows), &out, &err),
      0);
  assert_int_equal(out.count, 4);
  assert_string_equal(out.items[0], tag_of("app://self/item?id=2"));
  assert_string_equal(out.items[1], tag_of("app://self/item?id=1"));
  assert_string_equal(out.items[2], tag_of("app://self/item?id=3"));
  assert_string_equal(out.items[3], tag_of("app://self/item"));
  for (size_t i = 0; i < out.count; i++)
    assert_int_equal(out.lens[i], strlen(out.items[i]));
  dn_strings_free(&out);
  assert_null(out.items);
  assert_int_equal(out.count, 0);
}

/* Rows whose expansions differ only in spelling share one normalised URI
 * and so one tag. */
static void test_rows_dedup_after_normalisation(void **state) {
  (void)state;
  const char *tpl = "{+base}/post{?b,a}";
  const char *rows = "[{\"base\":\"APP://Self\",\"a\":1,\"b\":2},"
                     "{\"base\":\"app://self\",\"a\":1,\"b\":2},"
                     "{\"base\":\"app://self\",\"a\":2,\"b\":2}]";
  dn_strings out = {0};
  assert_int_equal(
      dn_uri_tags_from_rows(tpl, strlen(tpl), rows, strlen(rows), &out, NULL),
      0);
  assert_int_equal(out.count, 2);
  assert_string_equal(out.items[0], tag_of("app://self/post?a=1&b=2"));
  assert_string_equal(out.items[1], tag_of("app://self/post?a=2&b=2"));
  dn_strings_free(&out);
}

static void test_rows_many_duplicates(void **state) {
  (void)state;
  json_t *rows = json_array();
  for (int i = 0; i < 5000; i++)
    json_array_append_new(rows, json_pack("{s:i}", "id", (i * 7) % 101));
  dn_uritpl *t = NULL;
  assert_int_equal(dn_uritpl_parse("app://self/item/{id}", 20, &t, NULL), 0);
  dn_strings out = {0};
  assert_int_equal(dn__uritpl_tags_from_json(t, rows, &out, NULL), 0);
  assert_int_equal(out.count, 101);
  char uri[64];
  for (int k = 0; k < 101; k++) {
    snprintf(uri, sizeof uri, "app://self/item/%d", (k * 7) % 101);
    assert_string_equal(out.items[k], tag_of(uri));
  }
  dn_strings_free(&out);
  dn_uritpl_free(t);
  json_decref(rows);
}

/* Expects dn_uri_tags_from_rows to fail with `code` at `pos`, the message
 * containing `why`, and `out` untouched. */
static void expect_rows_fail(const char *tpl, const char *rows, int code,
                             size_t pos, const char *why) {
  dn_strings out = {(char **)1, (size_t *)2, 3};
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc =
      dn_uri_tags_from_rows(tpl, strlen(tpl), rows, strlen(rows), &out, &err);
  if (rc != code || err.position != pos || !strstr(err.text, why))
    fail_msg("'%s' over %s: want %s at %zu (%s), got %s at %zu: %s", tpl, rows,
             dn_err_name(code), pos, why, dn_err_name(rc), err.position,
             err.text);
  assert_ptr_equal(out.items, (char **)1);
  assert_ptr_equal(out.lens, (size_t *)2);
  assert_int_equal(out.count, 3);
}

static void test_rows_errors(void **state) {
  (void)state;
  const char *tpl = "app://self/item{?id}";
  expect_rows_fail(tpl, "[{\"id\":1},{\"id\":2},7]", DN_EJSON, 0,
                   "rows[2] is not a JSON object");
  expect_rows_fail(tpl, "[{\"id\":1},[]]", DN_EJSON, 0, "rows[1]");
  expect_rows_fail(tpl, "{\"id\":1}", DN_EJSON, 0, "JSON array");
  expect_rows_fail(tpl, "[{\"id\":1},", DN_EJSON, 10, "");
  expect_rows_fail("app://self/item{?id", "[]", DN_ETEMPLATE, 15, "not closed");
  expect_rows_fail("app://self/{id:2}", "[{\"id\":\"ab\"},{\"id\":[1]}]",
                   DN_ETEMPLATE, 12, "rows[1]: variable 'id'");
  expect_rows_fail("{+id}", "[{\"id\":\"app://x\"},{\"id\":\"nope\"}]", DN_EURI,
                   0, "rows[1]: its URI, at byte 0");
  dn_strings out = {0};
  assert_int_equal(dn_uri_tags_from_rows(tpl, strlen(tpl), "[]", 2, &out, NULL),
                   0);
  assert_int_equal(out.count, 0);
  dn_strings_free(&out);
  assert_int_equal(dn__uritpl_tags_from_json(NULL, NULL, &out, NULL),
                   DN_EINVAL);
}

static int oom_rows(void *ud) {
  (void)ud;
  const char *tpl = "app://self/{+kind}{?id,tags*}";
  const char *rows = "[{\"kind\":\"a\",\"id\":1},{\"kind\":\"b\",\"id\":1},"
                     "{\"kind\":\"a\",\"id\":1},{\"kind\":\"a\",\"id\":2,"
                     "\"tags\":[\"x\",\"y\"]},{\"kind\":\"A/./b\"}]";
  dn_strings out = {0};
  int rc =
      dn_uri_tags_from_rows(tpl, strlen(tpl), rows, strlen(rows), &out, NULL);
  if (rc == 0 && out.count != 4)
    rc = DN_EINVAL;
  dn_strings_free(&out);
  return rc;
}

static void test_oom_rows(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_rows, NULL);
}

/* ---- out of memory --------------------------------------------------- */

static int oom_parse_expand(void *ud) {
  (void)ud;
  static const char tpl[] = "caf\xC3\xA9{/a,b}{?c*}{#d:2}x{&e}";
  static const char vars[] = "{\"a\":\"1\",\"b\":[\"x\",2.5],"
                             "\"c\":{\"k\":\"v\",\"l\":true},\"d\":\"zzz\"}";
  char *out = NULL;
  int rc = dn_uritpl_expand_str(tpl, sizeof tpl - 1, vars, sizeof vars - 1,
                                &out, NULL, NULL);
  if (rc == 0 && strcmp(out, "caf%C3%A9/1/x,2.5?k=v&l=true#zzx") != 0)
    rc = DN_EINVAL;
  dn_free(out);
  return rc;
}

static void test_oom_parse_and_expand(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_parse_expand, NULL);
}

static int oom_parse_only(void *ud) {
  const char *tpl = ud;
  dn_uritpl *t = NULL;
  dn_error err;
  int rc = dn_uritpl_parse(tpl, strlen(tpl), &t, &err);
  if (rc == DN_ENOMEM && err.code != DN_ENOMEM)
    rc = DN_EINVAL;
  dn_uritpl_free(t);
  return rc;
}

static void test_oom_parse(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_parse_only, (void *)"");
  dn_test_every_alloc_failure(oom_parse_only, (void *)"{a}");
  dn_test_every_alloc_failure(oom_parse_only,
                              (void *)"http://example.com/{+p}/x{;a,b:3}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conformance_suite),
      cmocka_unit_test(test_parse_error_positions),
      cmocka_unit_test(test_parse_limits_and_arguments),
      cmocka_unit_test(test_parse_reads_only_len_bytes),
      cmocka_unit_test(test_invalid_uses_fail_without_output),
      cmocka_unit_test(test_bad_variables_json),
      cmocka_unit_test(test_numbers_expand_from_shortest_text),
      cmocka_unit_test(test_number_text_internal),
      cmocka_unit_test(test_numbers_ignore_the_locale),
      cmocka_unit_test(test_undefined_and_empty_values),
      cmocka_unit_test(test_encoding_rules),
      cmocka_unit_test(test_literals),
      cmocka_unit_test(test_prefix_counts_characters),
      cmocka_unit_test(test_varnames),
      cmocka_unit_test(test_expand_json_appends_and_restores),
      cmocka_unit_test(test_expansion_size_limit),
      cmocka_unit_test(test_template_shared_between_threads),
      cmocka_unit_test(test_oom_parse),
      cmocka_unit_test(test_oom_parse_and_expand),
      cmocka_unit_test(test_rows_dedup_keeps_first_order),
      cmocka_unit_test(test_rows_dedup_after_normalisation),
      cmocka_unit_test(test_rows_many_duplicates),
      cmocka_unit_test(test_rows_errors),
      cmocka_unit_test(test_oom_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
