/* test_esi.c - the ESI parser of origin mode.
 *
 * Checks that bodies without ESI come back byte for byte in one item and
 * two allocations; that includes (both forms, any attribute order and
 * quoting, entity-decoded values), esi:remove and "<!--esi" comments give
 * the expected items with the expected offsets; that every malformed or
 * unsupported construct fails with its code, its byte offset and a clear
 * message while leaving *out untouched; that the limits hold at their
 * edges; and that every failed allocation gives DN_ENOMEM without a leak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esi.h"
#include "test_support.h"

/* ---- helpers ------------------------------------------------------------ */

static dn__esi_doc *parse_ok(const char *in, size_t n,
                             const dn__esi_limits *lim) {
  dn__esi_doc *d = NULL;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn__esi_parse(in, n, lim, &d, &err);
  if (rc != 0)
    fail_msg("%.*s: unexpected %s at %zu: %s", (int)n, in, dn_err_name(rc),
             err.position, err.text);
  assert_non_null(d);
  /* Shape every document has: no empty text, no two texts in a row,
   * offsets rising, slices inside the storage, and the storage no longer
   * than the input. */
  dn_slice bytes = dn__esi_bytes(d);
  assert_true(bytes.len <= n);
  size_t includes = 0;
  for (size_t i = 0; i < dn__esi_count(d); i++) {
    const dn__esi_item *it = dn__esi_at(d, i);
    const dn__esi_item *prev = i ? dn__esi_at(d, i - 1) : NULL;
    assert_non_null(it);
    assert_true(it->offset < n);
    if (prev)
      assert_true(prev->offset < it->offset);
    if (it->kind == DN__ESI_TEXT) {
      assert_true(it->text.len > 0);
      assert_true(!prev || prev->kind != DN__ESI_TEXT);
      assert_true(it->text.ptr >= bytes.ptr &&
                  it->text.ptr + it->text.len <= bytes.ptr + bytes.len);
    } else {
      includes++;
      assert_true(it->src.len > 0 && it->src.ptr[it->src.len] == '\0');
      assert_true(it->src.ptr >= bytes.ptr &&
                  it->src.ptr + it->src.len < bytes.ptr + bytes.len);
    }
  }
  assert_int_equal(dn__esi_includes(d), includes);
  return d;
}

static dn__esi_doc *parse_str(const char *in) {
  return parse_ok(in, strlen(in), NULL);
}

static void expect_text(const dn__esi_doc *d, size_t i, const char *want,
                        size_t want_len, size_t offset) {
  const dn__esi_item *it = dn__esi_at(d, i);
  assert_non_null(it);
  assert_int_equal(it->kind, DN__ESI_TEXT);
  assert_int_equal(it->text.len, want_len);
  assert_memory_equal(it->text.ptr, want, want_len);
  assert_int_equal(it->offset, offset);
}

static void expect_include(const dn__esi_doc *d, size_t i, const char *src,
                           const char *alt, int onerror, size_t offset) {
  const dn__esi_item *it = dn__esi_at(d, i);
  assert_non_null(it);
  assert_int_equal(it->kind, DN__ESI_INCLUDE);
  assert_int_equal(it->src.len, strlen(src));
  assert_string_equal(it->src.ptr, src);
  if (alt) {
    assert_int_equal(it->alt.len, strlen(alt));
    assert_string_equal(it->alt.ptr, alt);
  } else {
    assert_null(it->alt.ptr);
    assert_int_equal(it->alt.len, 0);
  }
  assert_int_equal(it->onerror_continue, onerror);
  assert_int_equal(it->offset, offset);
  assert_int_equal(it->text.len, 0);
}

/* Offset of the first occurrence of `needle` in `s`. */
static size_t off(const char *s, const char *needle) {
  const char *p = strstr(s, needle);
  assert_non_null(p);
  return (size_t)(p - s);
}

static void expect_fail_n(const char *in, size_t n, const dn__esi_limits *lim,
                          int code, size_t pos, const char *msg) {
  dn__esi_doc *sentinel = (dn__esi_doc *)&sentinel, *d = sentinel;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn__esi_parse(in, n, lim, &d, &err);
  if (rc != code || err.code != code || err.position != pos ||
      !strstr(err.text, msg))
    fail_msg("%.*s: got %s at %zu \"%s\"; want %s at %zu \"%s\"", (int)n, in,
             dn_err_name(rc), err.position, err.text, dn_err_name(code), pos,
             msg);
  assert_ptr_equal(d, sentinel);
  /* Without an error struct the code is the same. */
  assert_int_equal(dn__esi_parse(in, n, lim, &d, NULL), code);
  assert_ptr_equal(d, sentinel);
}

static void expect_fail(const char *in, int code, size_t pos, const char *msg) {
  expect_fail_n(in, strlen(in), NULL, code, pos, msg);
}

/* ---- text --------------------------------------------------------------- */

static void test_plain_text_passes_through(void **state) {
  (void)state;
  static const char *bodies[] = {
      "<!doctype html><p class=\"esi\">Hello & <b>world</b></p>",
      "<esinclude src=\"/x\"/> <ESI:include src=\"/x\"/> <esi <es",
      "<!-- a comment --> <!--es i--> <!-- esi --> <!--ESI x --> -->",
      "esi:include src=/x esi:remove </esi <//esi:x> <x:esi:include>",
      "plain",
  };
  for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
    size_t n = strlen(bodies[b]);
    char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, bodies[b], n);
    dn__esi_doc *d = parse_ok(copy, n, NULL);
    /* The document owns its bytes: the body can go away. */
    memset(copy, 'X', n);
    free(copy);
    assert_int_equal(dn__esi_count(d), 1);
    assert_int_equal(dn__esi_includes(d), 0);
    expect_text(d, 0, bodies[b], n, 0);
    assert_int_equal(dn__esi_bytes(d).len, n);
    assert_null(dn__esi_at(d, 1));
    dn__esi_free(d);
  }
}

static void test_empty_body(void **state) {
  (void)state;
  dn__esi_doc *d = NULL;
  assert_int_equal(dn__esi_parse(NULL, 0, NULL, &d, NULL), 0);
  assert_non_null(d);
  assert_int_equal(dn__esi_count(d), 0);
  assert_int_equal(dn__esi_includes(d), 0);
  assert_null(dn__esi_at(d, 0));
  assert_int_equal(dn__esi_bytes(d).len, 0);
  dn__esi_free(d);
  d = parse_str("");
  assert_int_equal(dn__esi_count(d), 0);
  dn__esi_free(d);
}

static void test_nul_bytes_pass_through(void **state) {
  (void)state;
  static const char in[] = "a\0b<esi:include src=\"/x\"/>\0<\0";
  size_t n = sizeof in - 1;
  dn__esi_doc *d = parse_ok(in, n, NULL);
  assert_int_equal(dn__esi_count(d), 3);
  expect_text(d, 0, "a\0b", 3, 0);
  expect_include(d, 1, "/x", NULL, 0, 3);
  expect_text(d, 2, "\0<\0", 3, n - 3);
  dn__esi_free(d);
}

static void test_lt_at_end(void **state) {
  (void)state;
  /* Each is a prefix of a marker, cut by the end of the input: text. */
  static const char *bodies[] = {"abc<",   "<",     "x<esi",  "x</esi",
                                 "x<!--e", "x<!--", "x<!--es"};
  for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
    dn__esi_doc *d = parse_str(bodies[b]);
    assert_int_equal(dn__esi_count(d), 1);
    expect_text(d, 0, bodies[b], strlen(bodies[b]), 0);
    dn__esi_free(d);
  }
}

/* A body without ESI costs the document and its item array, however many
 * '<' it holds. */
static void test_plain_body_allocates_twice(void **state) {
  (void)state;
  size_t n = 1 << 20;
  char *body = malloc(n);
  assert_non_null(body);
  for (size_t i = 0; i < n; i++)
    body[i] = "<p>esi:x</p>\n"[i % 13];
  dn_test_fail_alloc_at(0);
  dn__esi_doc *d = parse_ok(body, n, NULL);
  long calls = dn_test_alloc_calls();
  expect_text(d, 0, body, n, 0);
  dn__esi_free(d);
  long live = dn_test_alloc_live();
  dn_test_alloc_reset();
  assert_int_equal(calls, 2);
  assert_int_equal(live, 0);
  free(body);
}

/* ---- include ------------------------------------------------------------ */

static void test_include_self_closing(void **state) {
  (void)state;
  const char *in = "a<esi:include src=\"/x\"/>b";
  dn__esi_doc *d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 3);
  assert_int_equal(dn__esi_includes(d), 1);
  expect_text(d, 0, "a", 1, 0);
  expect_include(d, 1, "/x", NULL, 0, 1);
  expect_text(d, 2, "b", 1, strlen(in) - 1);
  dn__esi_free(d);
  /* Whitespace before "/>" and no text around. */
  d = parse_str("<esi:include\n\tsrc=\"/y\" />");
  assert_int_equal(dn__esi_count(d), 1);
  expect_include(d, 0, "/y", NULL, 0, 0);
  dn__esi_free(d);
}

static void test_include_paired(void **state) {
  (void)state;
  const char *in = "<p><esi:include src=\"/x\"></esi:include></p>";
  dn__esi_doc *d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 3);
  expect_text(d, 0, "<p>", 3, 0);
  expect_include(d, 1, "/x", NULL, 0, 3);
  expect_text(d, 2, "</p>", 4, off(in, "</p>"));
  dn__esi_free(d);
  /* Whitespace inside the element and in the end tag. */
  in = "<esi:include src=\"/y\" >\n  </esi:include\n>!";
  d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 2);
  expect_include(d, 0, "/y", NULL, 0, 0);
  expect_text(d, 1, "!", 1, strlen(in) - 1);
  dn__esi_free(d);
}

static void test_include_attributes(void **state) {
  (void)state;
  const char *in = "<esi:include onerror = \"continue\"\talt='/b' src = '/a'/>"
                   "<esi:include alt=\"/d\" src=\"/c\"/>"
                   "<esi:include src=\"/e\" onerror='continue'/>";
  dn__esi_doc *d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 3);
  expect_include(d, 0, "/a", "/b", 1, 0);
  expect_include(d, 1, "/c", "/d", 0, off(in, "<esi:include alt"));
  expect_include(d, 2, "/e", NULL, 1, off(in, "<esi:include src=\"/e"));
  dn__esi_free(d);
  /* Each quote may appear inside the other. */
  d = parse_str("<esi:include src='/a\"b' alt=\"/c'd\"/>");
  expect_include(d, 0, "/a\"b", "/c'd", 0, 0);
  dn__esi_free(d);
  /* Markup-like bytes inside a value do not end the tag. */
  d = parse_str("<esi:include src=\"/a?x=>/\"/>");
  assert_int_equal(dn__esi_count(d), 1);
  expect_include(d, 0, "/a?x=>/", NULL, 0, 0);
  dn__esi_free(d);
}

static void test_include_entities(void **state) {
  (void)state;
  static const struct {
    const char *value, *want;
  } cases[] = {
      {"/a?x=1&amp;y=2", "/a?x=1&y=2"},
      {"&lt;&gt;&quot;&#39;&apos;", "<>\"''"},
      {"/&#65;&#x42;&#X43;&#x6a;&#0000100;", "/ABCjd"},
      {"/a?x=1&y=2", "/a?x=1&y=2"}, /* a bare '&' stays */
      {"/a&nbsp;b", "/a&nbsp;b"},   /* an unknown name stays */
      {"/a&amp", "/a&amp"},         /* no ';': not a reference */
      {"/a&amp;amp;", "/a&amp;"},   /* decoded once */
      {"&", "&"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char in[128];
    snprintf(in, sizeof in, "<esi:include src='%s' alt=\"%s\"/>",
             cases[c].value, cases[c].value);
    dn__esi_doc *d = parse_str(in);
    assert_int_equal(dn__esi_count(d), 1);
    expect_include(d, 0, cases[c].want, cases[c].want, 0, 0);
    dn__esi_free(d);
  }
}

static void test_three_includes_with_offsets(void **state) {
  (void)state;
  const char *in = "<h1>T</h1>\n"
                   "<esi:include src=\"/one\"/>\n"
                   "<div><esi:include src=\"/two\" alt=\"/2\"/></div>"
                   "<esi:include src=\"/three\" onerror=\"continue\"/>";
  dn__esi_doc *d = parse_str(in);
  /* Nothing follows the last include, so no text item ends the list. */
  assert_int_equal(dn__esi_count(d), 6);
  assert_int_equal(dn__esi_includes(d), 3);
  expect_text(d, 0, "<h1>T</h1>\n", 11, 0);
  expect_include(d, 1, "/one", NULL, 0, 11);
  expect_text(d, 2, "\n<div>", 6, off(in, "\n<div>"));
  expect_include(d, 3, "/two", "/2", 0, off(in, "<esi:include src=\"/two"));
  expect_text(d, 4, "</div>", 6, off(in, "</div>"));
  expect_include(d, 5, "/three", NULL, 1, off(in, "<esi:include src=\"/three"));
  dn__esi_free(d);
  /* Two includes in a row: no empty text between them. */
  in = "<esi:include src=\"/a\"/><esi:include src=\"/b\"/>";
  d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 2);
  expect_include(d, 0, "/a", NULL, 0, 0);
  expect_include(d, 1, "/b", NULL, 0, off(in, "<esi:include src=\"/b"));
  dn__esi_free(d);
}

/* ---- remove and comments ------------------------------------------------ */

static void test_remove_is_dropped(void **state) {
  (void)state;
  const char *in = "a<esi:remove><a href=\"/x\">x</a>"
                   "<esi:include src=\"/no\"/><!--esi</esi:remove >b";
  dn__esi_doc *d = parse_str(in);
  /* The texts around the removed part merge into one item. */
  assert_int_equal(dn__esi_count(d), 1);
  assert_int_equal(dn__esi_includes(d), 0);
  expect_text(d, 0, "ab", 2, 0);
  assert_int_equal(dn__esi_bytes(d).len, 2);
  dn__esi_free(d);
  in = "<esi:remove >x</esi:remove><esi:include src=\"/y\"/>"
       "<esi:remove>\n</esi:remove>";
  d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 1);
  expect_include(d, 0, "/y", NULL, 0, off(in, "<esi:include"));
  dn__esi_free(d);
}

static void test_esi_comment(void **state) {
  (void)state;
  const char *in = "<!--esi <esi:include src=\"/x\"/> -->";
  dn__esi_doc *d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 3);
  assert_int_equal(dn__esi_includes(d), 1);
  expect_text(d, 0, " ", 1, 7);
  expect_include(d, 1, "/x", NULL, 0, 8);
  expect_text(d, 2, " ", 1, off(in, "/> ") + 2);
  dn__esi_free(d);
  /* The markers go and the texts merge; the content is plain text. */
  in = "a<!--esi-->b<!--esi <p>c</p>-->d";
  d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 1);
  expect_text(d, 0, "ab <p>c</p>d", 12, 0);
  dn__esi_free(d);
  /* ESI inside an ordinary HTML comment is still ESI: the comment markers
   * stay, the include is processed. */
  in = "<!-- <esi:include src=\"/x\"/> -->";
  d = parse_str(in);
  assert_int_equal(dn__esi_count(d), 3);
  expect_text(d, 0, "<!-- ", 5, 0);
  expect_include(d, 1, "/x", NULL, 0, 5);
  expect_text(d, 2, " -->", 4, off(in, " -->"));
  dn__esi_free(d);
  /* A remove inside an ESI comment. */
  d = parse_str("<!--esi<esi:remove>r</esi:remove>k-->");
  assert_int_equal(dn__esi_count(d), 1);
  expect_text(d, 0, "k", 1, off("<!--esi<esi:remove>r</esi:remove>k-->", "k"));
  dn__esi_free(d);
}

/* ---- errors ------------------------------------------------------------- */

static void test_unclosed_tags(void **state) {
  (void)state;
  expect_fail("<p><esi:include src=\"a\"", DN__ESI_EMARKUP, 3,
              "unclosed <esi:include> at byte 3");
  expect_fail("<p><esi:include src=\"a\" ", DN__ESI_EMARKUP, 3,
              "unclosed <esi:include> at byte 3");
  expect_fail("<esi:include src=\"/a\" /", DN__ESI_EMARKUP, 0,
              "unclosed <esi:include> at byte 0");
  expect_fail("<esi:include src =", DN__ESI_EMARKUP, 0,
              "unclosed <esi:include> at byte 0");
  expect_fail("xx<esi:include", DN__ESI_EMARKUP, 2,
              "unclosed <esi:include> at byte 2");
  expect_fail("<esi:include src=\"/a\"><p>", DN__ESI_EMARKUP, 0,
              "unclosed <esi:include> (no </esi:include>) at byte 0");
  expect_fail("<esi:include src=\"/a\"> ", DN__ESI_EMARKUP, 0,
              "unclosed <esi:include>");
  expect_fail("<esi:include src=\"/a\">x</esi:include>", DN__ESI_EMARKUP, 22,
              "unexpected content inside <esi:include> at byte 22");
  expect_fail("<esi:include src=\"/a\"></esi:include", DN__ESI_EMARKUP, 22,
              "malformed </esi:include> at byte 22");
  expect_fail("<esi:include src=\"/a\"></esi:includes>", DN__ESI_EMARKUP, 22,
              "malformed </esi:include> at byte 22");
  expect_fail("ab<esi:remove>x", DN__ESI_EMARKUP, 2,
              "unclosed <esi:remove> at byte 2");
  expect_fail("<esi:remove", DN__ESI_EMARKUP, 0,
              "unclosed <esi:remove> at byte 0");
  expect_fail("<esi:remove>x</esi:removed>", DN__ESI_EMARKUP, 13,
              "malformed </esi:remove> at byte 13");
  expect_fail("<esi:remove/>", DN__ESI_EMARKUP, 11,
              "unexpected '/' in <esi:remove> at byte 11");
  expect_fail("<esi:remove a=\"1\">x</esi:remove>", DN__ESI_EMARKUP, 12,
              "unexpected 'a' in <esi:remove> at byte 12");
  expect_fail("a<!--esi <esi:include src=\"/x\"/>", DN__ESI_EMARKUP, 1,
              "unclosed <!--esi at byte 1");
  /* The content of an ESI comment ends at the first "-->". */
  expect_fail("<!--esi <!--esi x --> -->", DN__ESI_EMARKUP, 8,
              "unclosed <!--esi at byte 8");
  expect_fail("<!--esi <esi:include src=\"-->\"/> -->", DN__ESI_EMARKUP, 25,
              "unclosed quote in attribute 'src' at byte 25");
}

static void test_truncated_esi_tag(void **state) {
  (void)state;
  expect_fail("abc<esi:", DN__ESI_EMARKUP, 3, "unclosed <esi: at byte 3");
  expect_fail("abc<esi:inc", DN__ESI_EMARKUP, 3,
              "unclosed <esi:inc> at byte 3");
  expect_fail("abc</esi:", DN__ESI_EMARKUP, 3, "unclosed </esi: at byte 3");
  expect_fail("<esi: include src=\"/x\"/>", DN__ESI_EMARKUP, 0,
              "<esi: without an element name at byte 0");
  expect_fail("<esi:include\"/x\"/>", DN__ESI_EMARKUP, 12,
              "unexpected '\"' after <esi:include at byte 12");
  expect_fail("<esi:include\x01/>", DN__ESI_EMARKUP, 12,
              "unexpected 0x01 after <esi:include at byte 12");
  /* Inside an ESI comment the content ends before "-->". */
  expect_fail("<!--esi <esi:-->", DN__ESI_EMARKUP, 8,
              "unclosed <esi: at byte 8");
}

static void test_attribute_errors(void **state) {
  (void)state;
  expect_fail("<esi:include/>", DN__ESI_EMARKUP, 0,
              "<esi:include> without src at byte 0");
  expect_fail("x <esi:include alt=\"/a\"></esi:include>", DN__ESI_EMARKUP, 2,
              "<esi:include> without src at byte 2");
  expect_fail("<esi:include src=\"\"/>", DN__ESI_EMARKUP, 18,
              "empty src at byte 18");
  expect_fail("<esi:include src=\"/a\" alt=''/>", DN__ESI_EMARKUP, 27,
              "empty alt at byte 27");
  expect_fail("<esi:include src=/a/>", DN__ESI_EMARKUP, 17,
              "value of attribute 'src' is not quoted at byte 17");
  expect_fail("<esi:include src=\"/a/>", DN__ESI_EMARKUP, 17,
              "unclosed quote in attribute 'src' at byte 17");
  expect_fail("<esi:include src='/a\"/>", DN__ESI_EMARKUP, 17,
              "unclosed quote in attribute 'src' at byte 17");
  expect_fail("<esi:include src/>", DN__ESI_EMARKUP, 16,
              "attribute 'src' has no value at byte 16");
  expect_fail("<esi:include src=\"/a\"alt=\"/b\"/>", DN__ESI_EMARKUP, 21,
              "missing space before attribute at byte 21");
  expect_fail("<esi:include src=\"/a\" !/>", DN__ESI_EMARKUP, 22,
              "unexpected '!' in <esi:include> at byte 22");
  expect_fail("<esi:include src=\"/a\" / >", DN__ESI_EMARKUP, 23,
              "expected '>' after '/' in <esi:include> at byte 23");
  expect_fail("<esi:include src=\"/a\" src=\"/b\"/>", DN__ESI_EMARKUP, 22,
              "duplicate attribute 'src' in <esi:include> at byte 22");
  expect_fail("<esi:include src=\"/a\" onerror=\"abort\"/>", DN__ESI_EMARKUP,
              31, "onerror must be \"continue\" at byte 31");
  expect_fail("<esi:include src=\"/a\" ttl=\"5m\"/>", DN_ENOTSUP, 22,
              "unsupported attribute 'ttl' in <esi:include> at byte 22");
  expect_fail("<esi:include SRC=\"/a\"/>", DN_ENOTSUP, 13,
              "unsupported attribute 'SRC'");
  expect_fail("<esi:include xml:lang=\"en\" src=\"/a\"/>", DN_ENOTSUP, 13,
              "unsupported attribute 'xml:lang'");
}

static void test_value_errors(void **state) {
  (void)state;
  expect_fail("<esi:include src=\"/a b\"/>", DN__ESI_EMARKUP, 20,
              "src holds a space at byte 20");
  expect_fail("<esi:include src=\"/a\" alt=\"/a\tb\"/>", DN__ESI_EMARKUP, 29,
              "alt holds the control byte 0x09 at byte 29");
  expect_fail("<esi:include src=\"/a\r\n\"/>", DN__ESI_EMARKUP, 20,
              "src holds the control byte 0x0D at byte 20");
  expect_fail("<esi:include src=\"/a\x7f\"/>", DN__ESI_EMARKUP, 20,
              "src holds the control byte 0x7F at byte 20");
  expect_fail_n("<esi:include src=\"/\0\"/>", 23, NULL, DN__ESI_EMARKUP, 19,
                "src holds the control byte 0x00 at byte 19");
  /* Decoding comes first: references to forbidden bytes are caught at
   * their '&'. */
  expect_fail("<esi:include src=\"/a&#10;\"/>", DN__ESI_EMARKUP, 20,
              "src holds the control byte 0x0A at byte 20");
  expect_fail("<esi:include src=\"/a&#x20;b\"/>", DN__ESI_EMARKUP, 20,
              "src holds a space at byte 20");
  expect_fail("<esi:include src=\"/a&#0;\"/>", DN__ESI_EMARKUP, 20,
              "control byte 0x00");
  expect_fail("<esi:include src=\"&#32;\"/>", DN__ESI_EMARKUP, 18,
              "src holds a space at byte 18");
  expect_fail("<esi:include src=\"/&#200;\"/>", DN__ESI_EMARKUP, 19,
              "character reference beyond ASCII in src at byte 19");
  expect_fail("<esi:include src=\"/&#x99999999999999999999;\"/>",
              DN__ESI_EMARKUP, 19, "beyond ASCII");
  expect_fail("<esi:include src=\"/&#x;\"/>", DN__ESI_EMARKUP, 19,
              "malformed character reference in src at byte 19");
  expect_fail("<esi:include src=\"/&#65\"/>", DN__ESI_EMARKUP, 19,
              "malformed character reference");
  expect_fail("<esi:include src=\"/&#6a;\"/>", DN__ESI_EMARKUP, 19,
              "malformed character reference");
  expect_fail("<esi:include src=\"/&#\"/>", DN__ESI_EMARKUP, 19,
              "malformed character reference");
}

static void test_unsupported_elements(void **state) {
  (void)state;
  static const char *names[] = {"try",     "attempt",   "except",  "choose",
                                "when",    "otherwise", "vars",    "inline",
                                "comment", "Include",   "includes"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char in[96], msg[64];
    snprintf(in, sizeof in, "<p>hi</p>\n<esi:%s src=\"/x\"/>", names[i]);
    snprintf(msg, sizeof msg, "unsupported ESI element <esi:%s> at byte 10",
             names[i]);
    expect_fail(in, DN_ENOTSUP, 10, msg);
  }
  expect_fail("<esi:try>", DN_ENOTSUP, 0,
              "unsupported ESI element <esi:try> at byte 0");
  /* A long name is cut in the message. */
  expect_fail("<esi:abcdefghijklmnopqrstuvwxyzabcdefghijklmnop>", DN_ENOTSUP, 0,
              "<esi:abcdefghijklmnopqrstuvwxyzabcdef> at byte 0");
  /* An end tag without its start tag is markup too. */
  expect_fail("a</esi:remove>", DN__ESI_EMARKUP, 1,
              "</esi:remove> without a start tag at byte 1");
  expect_fail("<esi:include src=\"/a\"/></esi:include>", DN__ESI_EMARKUP, 23,
              "</esi:include> without a start tag at byte 23");
  expect_fail("<esi:remove>a<esi:remove>b</esi:remove>c</esi:remove>",
              DN__ESI_EMARKUP, 40, "</esi:remove> without a start tag");
}

static void test_bad_arguments(void **state) {
  (void)state;
  dn__esi_doc *d = NULL;
  dn_error err;
  assert_int_equal(dn__esi_parse("x", 1, NULL, NULL, &err), DN_EINVAL);
  assert_int_equal(err.code, DN_EINVAL);
  assert_int_equal(dn__esi_parse(NULL, 1, NULL, &d, NULL), DN_EINVAL);
  assert_null(d);
  assert_int_equal(dn__esi_count(NULL), 0);
  assert_int_equal(dn__esi_includes(NULL), 0);
  assert_null(dn__esi_at(NULL, 0));
  assert_null(dn__esi_bytes(NULL).ptr);
  dn__esi_free(NULL);
}

/* ---- limits ------------------------------------------------------------- */

static void test_byte_limit(void **state) {
  (void)state;
  dn__esi_limits lim = {10, 0};
  dn__esi_doc *d = parse_ok("0123456789", 10, &lim);
  assert_int_equal(dn__esi_count(d), 1);
  dn__esi_free(d);
  expect_fail_n("0123456789a", 11, &lim, DN_ETOOBIG, 10,
                "body of 11 bytes is over the limit of 10 bytes");
  /* The default applies when no limit is given. */
  size_t n = DN__ESI_DEFAULT_MAX_BYTES + 1;
  char *big = calloc(1, n);
  assert_non_null(big);
  expect_fail_n(big, n, NULL, DN_ETOOBIG, n - 1, "over the limit");
  d = parse_ok(big, n - 1, NULL);
  dn__esi_free(d);
  free(big);
}

/* A body of `count` includes, each "<esi:include src="/N"/>" plus a space. */
static char *includes_body(size_t count, size_t *len) {
  char *s = malloc(count * 40 + 1);
  assert_non_null(s);
  size_t o = 0;
  for (size_t i = 0; i < count; i++)
    o += (size_t)snprintf(s + o, 41, "<esi:include src=\"/%zu\"/> ", i);
  *len = o;
  return s;
}

static void test_include_limit(void **state) {
  (void)state;
  dn__esi_limits lim = {0, 2};
  size_t n;
  char *body = includes_body(3, &n);
  const char *third =
      strstr(strstr(strstr(body, "<esi") + 1, "<esi") + 1, "<esi");
  size_t at = (size_t)(third - body);
  dn__esi_doc *d = parse_ok(body, at, &lim);
  assert_int_equal(dn__esi_includes(d), 2);
  dn__esi_free(d);
  char msg[64];
  snprintf(msg, sizeof msg, "more than 2 includes: <esi:include> at byte %zu",
           at);
  expect_fail_n(body, n, &lim, DN_ETOOBIG, at, msg);
  free(body);
  /* The default is 256 (and a zero field means the default). */
  body = includes_body(DN__ESI_DEFAULT_MAX_INCLUDES + 1, &n);
  const char *last = body;
  for (size_t i = 0; i <= DN__ESI_DEFAULT_MAX_INCLUDES; i++)
    last = strstr(last, "<esi") + 1;
  at = (size_t)(last - 1 - body);
  d = parse_ok(body, at, NULL);
  assert_int_equal(dn__esi_includes(d), DN__ESI_DEFAULT_MAX_INCLUDES);
  assert_int_equal(dn__esi_count(d), 2 * DN__ESI_DEFAULT_MAX_INCLUDES);
  size_t at127 = off(body, "<esi:include src=\"/127\"");
  expect_include(d, 254, "/127", NULL, 0, at127);
  expect_text(d, 255, " ", 1, at127 + 25);
  dn__esi_free(d);
  lim.max_includes = 0;
  expect_fail_n(body, n, &lim, DN_ETOOBIG, at, "more than 256 includes");
  free(body);
}

/* ---- allocation failures ------------------------------------------------ */

static int oom_parse(void *ud) {
  const char *in = ud;
  dn__esi_doc *sentinel = (dn__esi_doc *)&sentinel, *d = sentinel;
  dn_error err;
  int rc = dn__esi_parse(in, strlen(in), NULL, &d, &err);
  if (rc) {
    assert_int_equal(rc, DN_ENOMEM);
    assert_int_equal(err.code, DN_ENOMEM);
    assert_ptr_equal(d, sentinel);
    return rc;
  }
  assert_int_equal(dn__esi_includes(d), strstr(in, "esi:include") ? 8 : 0);
  dn__esi_free(d);
  return 0;
}

static void test_out_of_memory(void **state) {
  (void)state;
  /* Eight includes make the item array grow several times. */
  static const char many[] =
      "<h1>a</h1><esi:include src=\"/1\"/>b<esi:include src=\"/2\"/>"
      "<esi:remove>r</esi:remove>c<esi:include src=\"/3\"/>d"
      "<!--esi <esi:include src=\"/4\"/> -->e<esi:include src=\"/5\"/>f"
      "<esi:include src=\"/6\"></esi:include>g<esi:include src=\"/7\"/>h"
      "<esi:include src=\"/8\" alt=\"/8b\" onerror=\"continue\"/>i";
  dn_test_every_alloc_failure(oom_parse, (void *)many);
  dn_test_every_alloc_failure(oom_parse, (void *)"no markup at all");
  dn_test_every_alloc_failure(oom_parse, (void *)"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_text_passes_through),
      cmocka_unit_test(test_empty_body),
      cmocka_unit_test(test_nul_bytes_pass_through),
      cmocka_unit_test(test_lt_at_end),
      cmocka_unit_test(test_plain_body_allocates_twice),
      cmocka_unit_test(test_include_self_closing),
      cmocka_unit_test(test_include_paired),
      cmocka_unit_test(test_include_attributes),
      cmocka_unit_test(test_include_entities),
      cmocka_unit_test(test_three_includes_with_offsets),
      cmocka_unit_test(test_remove_is_dropped),
      cmocka_unit_test(test_esi_comment),
      cmocka_unit_test(test_unclosed_tags),
      cmocka_unit_test(test_truncated_esi_tag),
      cmocka_unit_test(test_attribute_errors),
      cmocka_unit_test(test_value_errors),
      cmocka_unit_test(test_unsupported_elements),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_byte_limit),
      cmocka_unit_test(test_include_limit),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
