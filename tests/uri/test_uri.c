/* test_uri.c - URI normalisation, URI tags and tag validation.
 *
 * Normalisation is checked against a table (RFC 3986 §5.2.4 and §5.4
 * dot-segment examples, percent-encoding, case, ports, IPv6, userinfo,
 * queries, fragments), every normal form is checked to be a fixed point of
 * both the shortcut and the general path, and invalid input is checked for
 * the exact position and reason. URI tags are checked for their format and
 * over a few thousand generated URIs for length, alphabet and
 * injectivity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "test_support.h"
#include "uri.h"

/* ---- helpers ------------------------------------------------------------ */

static char *norm_str(const char *in, int *rc_out, dn_error *err) {
  char *out = NULL;
  size_t n = 0;
  *rc_out = dn_uri_normalize(in, strlen(in), &out, &n, err);
  if (*rc_out == 0)
    assert_int_equal(n, strlen(out));
  return out;
}

static void expect_norm(const char *in, const char *want) {
  dn_error err;
  int rc;
  char *got = norm_str(in, &rc, &err);
  if (rc != 0)
    fail_msg("%s: unexpected error at %zu: %s", in, err.position, err.text);
  if (strcmp(got, want) != 0)
    fail_msg("%s: got %s, want %s", in, got, want);
  dn_free(got);
}

/* The tag alphabet: what Akamai, Fastly, Cloudflare and xkey all accept. */
static int tag_byte_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%'+-.^_`|~", c));
}

static void check_tag_shape(const char *tag, size_t n) {
  assert_int_equal(strlen(tag), n);
  assert_true(n >= 1 && n <= DN_URI_TAG_MAX);
  for (size_t i = 0; i < n; i++)
    if (!tag_byte_ok((unsigned char)tag[i]))
      fail_msg("tag %s has byte 0x%02X at %zu", tag, (unsigned char)tag[i], i);
  assert_int_equal(dn_tag_validate(tag, n, NULL), 0);
  const char *hash = strchr(tag, '#');
  if (hash) {
    assert_ptr_equal(hash, tag + n - 33);
    for (const char *h = hash + 1; *h; h++)
      assert_non_null(strchr("0123456789abcdef", *h));
  }
}

/* Decodes a short tag back into the normalised URI ('|' is '/', then
 * percent-decoding). */
static size_t tag_decode(const char *tag, char *out) {
  size_t o = 0;
  for (size_t i = 0; tag[i]; i++) {
    if (tag[i] == '|') {
      out[o++] = '/';
    } else if (tag[i] == '%') {
      char hex[3] = {tag[i + 1], tag[i + 2], 0};
      out[o++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[o++] = tag[i];
    }
  }
  out[o] = '\0';
  return o;
}

/* ---- normalisation ------------------------------------------------------ */

static const char *const norm_cases[][2] = {
    /* The engine's own example: one resource, two spellings. */
    {"app://self/Item?b=2&a=1", "app://self/Item?a=1&b=2"},
    {"APP://Self/a/../Item?b=2&a=1", "app://self/Item?a=1&b=2"},
    {"Page://SELF/x", "page://self/x"},
    /* RFC 3986 §5.2.4 examples. */
    {"x:/a/b/c/./../../g", "x:/a/g"},
    {"x:mid/content=5/../6", "x:mid/6"},
    /* RFC 3986 §5.4 results, written before dot-segment removal. */
    {"http://a/b/c/./g", "http://a/b/c/g"},
    {"http://a/b/c/g/", "http://a/b/c/g/"},
    {"http://a/b/c/.", "http://a/b/c/"},
    {"http://a/b/c/./", "http://a/b/c/"},
    {"http://a/b/c/..", "http://a/b/"},
    {"http://a/b/c/../", "http://a/b/"},
    {"http://a/b/c/../g", "http://a/b/g"},
    {"http://a/b/c/../..", "http://a/"},
    {"http://a/b/c/../../g", "http://a/g"},
    {"http://a/b/c/../../../g", "http://a/g"},
    {"http://a/b/c/../../../../g", "http://a/g"},
    {"http://a/./g", "http://a/g"},
    {"http://a/../g", "http://a/g"},
    {"http://a/b/c/g.", "http://a/b/c/g."},
    {"http://a/b/c/.g", "http://a/b/c/.g"},
    {"http://a/b/c/g..", "http://a/b/c/g.."},
    {"http://a/b/c/..g", "http://a/b/c/..g"},
    {"http://a/b/c/./../g", "http://a/b/g"},
    {"http://a/b/c/./g/.", "http://a/b/c/g/"},
    {"http://a/b/c/g/./h", "http://a/b/c/g/h"},
    {"http://a/b/c/g/../h", "http://a/b/c/h"},
    {"http://a/b/c/g;x=1/./y", "http://a/b/c/g;x=1/y"},
    {"http://a/b/c/g;x=1/../y", "http://a/b/c/y"},
    {"http://a/b/c/d;p?y", "http://a/b/c/d;p?y"},
    {"http://a/b/c/g?y/./x", "http://a/b/c/g?y/./x"},
    {"http://a/b/c/g#s/../x", "http://a/b/c/g"},
    /* Dots around empty segments and at the root. */
    {"app://self//a/./b//../c", "app://self//a/b/c"},
    {"app://self/..", "app://self/"},
    {"app://self/.", "app://self/"},
    {"app://self", "app://self"},
    /* Percent-encoding (RFC 3986 §6.2.2.2), in every component. */
    {"app://self/%7euser/%41%2f%2a", "app://self/~user/A%2F%2A"},
    {"app://self/caf%c3%a9", "app://self/caf%C3%A9"},
    {"app://self/a%2E%2e/b", "app://self/a../b"},
    {"app://self/a/%2E%2e/b", "app://self/b"},
    {"app://self/x?q=%7e%3d%2b&%61=1", "app://self/x?a=1&q=~%3D%2B"},
    {"app://%55ser%3a@H%4Fst/", "app://User%3A@host/"},
    {"app://self/a+b?x=a+b", "app://self/a+b?x=a+b"},
    /* Query: split on '&', empty pairs dropped, stable sort by name. */
    {"a:?b=1&a=2&b=0&a=1", "a:?a=2&a=1&b=1&b=0"},
    {"a:?z&y=1", "a:?y=1&z"},
    {"a:?ab=1&a=2&a&a=", "a:?a=2&a&a=&ab=1"},
    {"a:?&&b=1&&a=2&", "a:?a=2&b=1"},
    {"a:?%62=1&a=2", "a:?a=2&b=1"},
    {"a:?=x&&a", "a:?=x&a"},
    {"a:?x=1=2&x", "a:?x=1=2&x"},
    {"a:?b=%26&a=%3D", "a:?a=%3D&b=%26"},
    {"a:?B=1&a=1", "a:?B=1&a=1"},
    {"app://self/x?", "app://self/x"},
    {"app://self/x?&&&", "app://self/x"},
    {"app://self/x?q=/a/../b?c", "app://self/x?q=/a/../b?c"},
    /* Fragments are dropped. */
    {"app://self/x#top", "app://self/x"},
    {"app://self/x?#", "app://self/x"},
    {"app://self/x?a=1#f?g/h", "app://self/x?a=1"},
    {"app://self#", "app://self"},
    /* Ports (RFC 3986 §3.2.3). */
    {"http://h:080/", "http://h:80/"},
    {"http://h:/", "http://h/"},
    {"http://h:0/", "http://h:0/"},
    {"http://h:000/", "http://h:0/"},
    {"http://h:65535", "http://h:65535"},
    /* IP literals (RFC 3986 §3.2.2), IPv6 in RFC 5952 text form. */
    {"http://[::1]/", "http://[::1]/"},
    {"http://[0:0:0:0:0:0:0:1]:8080/x", "http://[::1]:8080/x"},
    {"http://[2001:DB8:0:0:0:0:0:A]/", "http://[2001:db8::a]/"},
    {"http://[::FFFF:192.0.2.1]/", "http://[::ffff:192.0.2.1]/"},
    {"http://[v7.Host:X]/", "http://[v7.host:x]/"},
    {"http://user@[::1]:443?b&a", "http://user@[::1]:443?a&b"},
    /* Userinfo keeps its case; the host does not. */
    {"app://User:PW@EXAMPLE.com/P", "app://User:PW@example.com/P"},
    {"app://@Self/", "app://@self/"},
    {"app:///x", "app:///x"},
    /* No authority: only the scheme is folded. */
    {"URN:ISBN:0451450523", "urn:ISBN:0451450523"},
    {"mailto:Joe@Example.COM", "mailto:Joe@Example.COM"},
    {"a:", "a:"},
    {"a:.", "a:"},
    /* §5.2.4 as written: popping the first segment of a rootless path
     * leaves the "/" of the next one. */
    {"a:b/../c", "a:/c"},
    {"a:b/c/../d", "a:b/d"},
    {"a:../b", "a:b"},
    /* A path without authority never starts with "//" (RFC 3986 §3.3). */
    {"a:/.//b", "a:/.//b"},
    {"a:.///x", "a:/.//x"},
    {"x:a/..//b", "x:/.//b"},
    {"a:/./..//b/./c", "a:/.//b/c"},
    {"s+v-1.x://h/", "s+v-1.x://h/"},
};

static void test_normalize_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++)
    expect_norm(norm_cases[i][0], norm_cases[i][1]);
}

/* Every normal form is a fixed point, for the shortcut ("already normal,
 * copy it") and for the general path alike, and the shortcut only fires
 * on normal forms. */
static void test_normal_forms_are_fixed_points(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
    const char *in = norm_cases[i][0], *want = norm_cases[i][1];
    assert_int_equal(dn__uri_is_normal(want, strlen(want)), 1);
    assert_int_equal(dn__uri_is_normal(in, strlen(in)), strcmp(in, want) == 0);
    expect_norm(want, want);
    dn__buf b;
    dn__buf_init(&b, 0);
    assert_int_equal(dn__uri_normalize_full(&b, want, strlen(want), NULL), 0);
    assert_string_equal(b.data, want);
    dn__buf_truncate(&b, 0);
    assert_int_equal(dn__uri_normalize_full(&b, in, strlen(in), NULL), 0);
    assert_string_equal(b.data, want);
    dn__buf_free(&b);
  }
}

/* The hot path: a normal URI into a buffer with room makes no allocation,
 * and its tag needs none at all. */
static void test_normal_input_does_not_allocate(void **state) {
  (void)state;
  const char *u = "app://self/blog/posting?id=1&lang=en";
  dn__buf b;
  dn__buf_init(&b, 0);
  assert_int_equal(dn__buf_reserve(&b, 256), 0);
  dn_test_fail_alloc_at(0);
  assert_int_equal(dn__uri_normalize_buf(&b, u, strlen(u), NULL), 0);
  char tag[DN_URI_TAG_MAX + 1];
  assert_int_equal(dn_uri_tag(u, strlen(u), tag, NULL, NULL), 0);
  long calls = dn_test_alloc_calls();
  dn_test_alloc_reset();
  assert_int_equal(calls, 0);
  assert_string_equal(b.data, u);
  dn__buf_free(&b);
}

/* Sorting is stable over many pairs, including repeated names. */
static void test_query_sort_is_stable(void **state) {
  (void)state;
  char in[8192], want[8192];
  size_t o = 0, w = 0;
  o += (size_t)snprintf(in + o, sizeof in - o, "app://self/x?");
  w += (size_t)snprintf(want + w, sizeof want - w, "app://self/x?");
  for (int i = 0; i < 600; i++)
    o += (size_t)snprintf(in + o, sizeof in - o, "%sk%d=%d", i ? "&" : "",
                          (i * 7) % 5, i);
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < 600; i++)
      if ((i * 7) % 5 == k)
        w += (size_t)snprintf(want + w, sizeof want - w, "%sk%d=%d",
                              w > 13 ? "&" : "", k, i);
  expect_norm(in, want);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct err_case {
  const char *in;
  size_t len; /* 0: strlen */
  size_t position;
  const char *reason; /* a substring of err.text */
} err_case;

static const err_case err_cases[] = {
    {"", 0, 0, "empty URI"},
    {"foo", 0, 0, "missing scheme"},
    {"//host/path", 0, 0, "missing scheme"},
    {":x", 0, 0, "missing scheme"},
    {"/a:b", 0, 0, "missing scheme"},
    {"1a:b", 0, 0, "must start with a letter"},
    {"a_b:c", 0, 1, "character '_' is not allowed in the scheme"},
    {"a%41:c", 0, 1, "character '%' is not allowed in the scheme"},
    {"ab c:d", 0, 2, "space is not allowed in the scheme"},
    {"app://self/a b", 0, 12, "space is not allowed in the path"},
    {"app://self/\"", 0, 11, "character '\"' is not allowed in the path"},
    {"app://self/<", 0, 11, "character '<'"},
    {"app://self/>", 0, 11, "character '>'"},
    {"app://self/\\", 0, 11, "character '\\'"},
    {"app://self/^", 0, 11, "character '^'"},
    {"app://self/`", 0, 11, "character '`'"},
    {"app://self/{", 0, 11, "character '{'"},
    {"app://self/|", 0, 11, "character '|'"},
    {"app://self/}", 0, 11, "character '}'"},
    {"app://self/[", 0, 11, "character '[' is not allowed in the path"},
    {"app://self/\x7f", 0, 11, "control byte 0x7F"},
    {"app://self/\t", 0, 11, "control byte 0x09"},
    {"app://self/\xc3\xa9", 0, 11, "non-ASCII byte 0xC3"},
    {"app://self/x?a=\x01", 0, 15,
     "control byte 0x01 is not allowed in the query"},
    {"app://self/x?a=[]", 0, 15, "in the query"},
    {"app://self/x#a#b", 0, 14, "character '#' is not allowed in the fragment"},
    {"app://self/x#a b", 0, 14, "in the fragment"},
    {"app://se lf/", 0, 8, "space is not allowed in the host"},
    {"app://a@b@c/", 0, 9, "character '@' is not allowed in the host"},
    {"app://u[@h/", 0, 7, "in the userinfo"},
    {"app://self/%", 0, 11, "malformed percent escape in the path"},
    {"app://self/%4", 0, 11, "malformed percent escape"},
    {"app://self/%4g", 0, 11, "two hex digits"},
    {"app://self/x?%zz", 0, 13, "malformed percent escape in the query"},
    {"app://h%2/", 0, 7, "malformed percent escape in the host"},
    {"http://h:99999/", 0, 9, "invalid port"},
    {"http://h:123456789012345678901234567890/", 0, 9, "invalid port"},
    {"http://h:8a/", 0, 10, "character 'a' is not allowed in the port"},
    {"http://h:-1/", 0, 9, "in the port"},
    {"http://[::1/", 0, 7, "missing ']'"},
    {"http://[::g]/", 0, 10, "character 'g' is not allowed in an IPv6"},
    {"http://[1:2:3:4:5:6:7:8:9]/", 0, 8, "invalid IPv6 address"},
    {"http://[::1%25eth0]/", 0, 11, "character '%'"},
    {"http://[]/", 0, 8, "invalid IPv6 address"},
    {"http://[::1]x/", 0, 12, "after ']'"},
    {"http://[v.x]/", 0, 9, "IPvFuture"},
    {"http://[v1x]/", 0, 10, "IPvFuture"},
    {"http://[v1.]/", 0, 10, "IPvFuture"},
    {"http://[v1.a/b]/", 0, 7, "missing ']'"},
    {"http://[v1.a{]/", 0, 12, "in an IPvFuture address"},
    {"a:b\0c", 5, 3, "control byte 0x00"},
};

static void test_error_positions(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
    const err_case *c = &err_cases[i];
    size_t len = c->len ? c->len : strlen(c->in);
    char *out = (char *)"untouched";
    dn_error err;
    memset(&err, 0, sizeof err);
    int rc = dn_uri_normalize(c->in, len, &out, NULL, &err);
    if (rc != DN_EURI)
      fail_msg("case %zu (%s): rc %d", i, c->in, rc);
    assert_string_equal(out, "untouched");
    assert_int_equal(err.code, DN_EURI);
    if (err.position != c->position || !strstr(err.text, c->reason))
      fail_msg("case %zu (%s): got %zu '%s', want %zu '%s'", i, c->in,
               err.position, err.text, c->position, c->reason);
    char tag[DN_URI_TAG_MAX + 1];
    assert_int_equal(dn_uri_tag(c->in, len, tag, NULL, NULL), DN_EURI);
    assert_int_equal(dn__uri_is_normal(c->in, len), 0);
  }
}

static void test_length_limit(void **state) {
  (void)state;
  char *u = malloc(DN_URI_MAX + 2);
  memcpy(u, "app://self/", 11);
  memset(u + 11, 'a', DN_URI_MAX + 1 - 11);
  u[DN_URI_MAX + 1] = '\0';
  char *out = NULL;
  dn_error err;
  assert_int_equal(dn_uri_normalize(u, DN_URI_MAX + 1, &out, NULL, &err),
                   DN_EURI);
  assert_int_equal(err.position, DN_URI_MAX);
  assert_non_null(strstr(err.text, "longer than 8192"));
  size_t n = 0;
  assert_int_equal(dn_uri_normalize(u, DN_URI_MAX, &out, &n, &err), 0);
  assert_int_equal(n, DN_URI_MAX);
  dn_free(out);
  /* A URI of the longest length that needs rebuilding fits a buffer
   * limited to DN_URI_MAX + 1, as the engine uses, with and without the
   * "/." a path without authority may get. */
  const char *heads[] = {"APP://self/", "A:x/..//"};
  const char *want[] = {"app://self/", "a:/.//"};
  for (size_t k = 0; k < 2; k++) {
    size_t hl = strlen(heads[k]);
    memcpy(u, heads[k], hl);
    memset(u + hl, 'b', DN_URI_MAX - hl);
    dn__buf b;
    dn__buf_init(&b, DN_URI_MAX + 1);
    assert_int_equal(dn__uri_normalize_buf(&b, u, DN_URI_MAX, &err), 0);
    assert_int_equal(strncmp(b.data, want[k], strlen(want[k])), 0);
    assert_int_equal(b.len, DN_URI_MAX - hl + strlen(want[k]));
    dn__buf_free(&b);
  }
  /* The canonical text of an IPv6 host can be longer than what was
   * written; the normal form must still fit the limit. */
  memcpy(u, "app://[::ffff:ffff:ffff]/", 25);
  assert_int_equal(dn_uri_normalize(u, DN_URI_MAX, &out, NULL, &err), DN_EURI);
  assert_non_null(strstr(err.text, "normalised URI is longer"));
  free(u);
}

static void test_null_arguments(void **state) {
  (void)state;
  char *out = NULL;
  char tag[DN_URI_TAG_MAX + 1];
  dn_error err;
  assert_int_equal(dn_uri_normalize(NULL, 3, &out, NULL, &err), DN_EINVAL);
  assert_int_equal(dn_uri_normalize("a:b", 3, NULL, NULL, &err), DN_EINVAL);
  assert_int_equal(dn_uri_normalize(NULL, 0, &out, NULL, &err), DN_EURI);
  assert_int_equal(dn_uri_tag(NULL, 3, tag, NULL, &err), DN_EINVAL);
  assert_int_equal(dn_uri_tag("a:b", 3, NULL, NULL, &err), DN_EINVAL);
  assert_int_equal(dn_uri_tag_normalized(NULL, 3, tag, NULL), DN_EINVAL);
  assert_int_equal(dn_uri_tag_normalized("a:b", 0, tag, NULL), DN_EINVAL);
  assert_int_equal(dn_tag_validate(NULL, 3, &err), DN_EINVAL);
  assert_int_equal(dn_uri_normalize("a:b", 3, &out, NULL, NULL), 0);
  assert_string_equal(out, "a:b");
  dn_free(out);
}

/* Appending keeps what the buffer held; a failure leaves it as it was. */
static void test_buf_append_and_limit(void **state) {
  (void)state;
  dn__buf b;
  dn__buf_init(&b, 24);
  assert_int_equal(dn__buf_append_cstr(&b, "key:"), 0);
  assert_int_equal(dn__uri_normalize_buf(&b, "A:b?y&x", 7, NULL), 0);
  assert_string_equal(b.data, "key:a:b?x&y");
  dn_error err;
  assert_int_equal(dn__uri_normalize_buf(&b, "a:b c", 5, &err), DN_EURI);
  assert_int_equal(dn__uri_normalize_buf(&b, "app://self/abcdefghij", 21, &err),
                   DN_ETOOBIG);
  assert_int_equal(err.code, DN_ETOOBIG);
  assert_int_equal(
      dn__uri_normalize_full(&b, "APP://self/abcdefghij", 21, &err),
      DN_ETOOBIG);
  assert_string_equal(b.data, "key:a:b?x&y");
  assert_int_equal(b.len, 11);
  dn__buf_free(&b);
}

/* ---- URI tags ----------------------------------------------------------- */

static void expect_tag(const char *uri, const char *want) {
  char tag[DN_URI_TAG_MAX + 1];
  size_t n = 0;
  dn_error err;
  int rc = dn_uri_tag(uri, strlen(uri), tag, &n, &err);
  if (rc != 0)
    fail_msg("%s: error %s", uri, err.text);
  if (strcmp(tag, want) != 0)
    fail_msg("%s: tag %s, want %s", uri, tag, want);
  check_tag_shape(tag, n);
}

static void test_tag_examples(void **state) {
  (void)state;
  expect_tag("app://self/item?id=1", "app%3A||self|item%3Fid%3D1");
  expect_tag("APP://Self/item?id=1#x", "app%3A||self|item%3Fid%3D1");
  expect_tag("page://self/item?id=1", "page%3A||self|item%3Fid%3D1");
  expect_tag("app://self/news?b=2&a=1", "app%3A||self|news%3Fa%3D1%26b%3D2");
  expect_tag("app://self/x?q=%3D", "app%3A||self|x%3Fq%3D%253D");
  expect_tag("app://self/a,b;c(d)*e@f:g",
             "app%3A||self|a%2Cb%3Bc%28d%29%2Ae%40f%3Ag");
  expect_tag("app://self/~a-b_c.d!e$f'g+h", "app%3A||self|~a-b_c.d!e$f'g+h");
  expect_tag("app://self/caf%C3%A9", "app%3A||self|caf%25C3%25A9");
  expect_tag("app://[::1]:80/", "app%3A||%5B%3A%3A1%5D%3A80|");
}

/* A raw '=' and an encoded one are different URIs, so different tags. */
static void test_tag_distinguishes_escapes_and_schemes(void **state) {
  (void)state;
  const char *uris[] = {"app://self/x?a=1",  "app://self/x?a%3D1",
                        "page://self/x?a=1", "app://self/x|a=1",
                        "app://self/x/a=1",  "app://self/x?a%7C1"};
  char tags[6][DN_URI_TAG_MAX + 1];
  size_t ok = 0;
  for (size_t i = 0; i < 6; i++) {
    if (dn_uri_tag(uris[i], strlen(uris[i]), tags[i], NULL, NULL) != 0)
      continue; /* '|' is not allowed in a URI */
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(tags[i], tags[j]);
    ok++;
  }
  assert_int_equal(ok, 5);
}

static void test_tag_long_uris(void **state) {
  (void)state;
  char u[600], tag[DN_URI_TAG_MAX + 1], tag2[DN_URI_TAG_MAX + 1];
  size_t n, n2;
  /* "app://s/" and 118 bytes of path encode to exactly 128 bytes ("://"
   * costs two more): still a short tag. */
  memcpy(u, "app://s/", 8);
  memset(u + 8, 'x', 118);
  u[126] = '\0';
  assert_int_equal(dn_uri_tag(u, strlen(u), tag, &n, NULL), 0);
  assert_int_equal(n, DN_URI_TAG_MAX);
  assert_null(strchr(tag, '#'));
  /* One byte more and it becomes a long tag. */
  u[126] = 'y';
  u[127] = '\0';
  assert_int_equal(dn_uri_tag(u, strlen(u), tag, &n, NULL), 0);
  check_tag_shape(tag, n);
  assert_non_null(strchr(tag, '#'));
  assert_int_equal(strncmp(tag, "app%3A||s|xxx", 13), 0);
  assert_true(n - 33 <= DN__URI_TAG_PREFIX_MAX);
  /* The digest is XXH3-128 of the whole normalised URI, big-endian hex. */
  XXH128_canonical_t h;
  XXH128_canonicalFromHash(&h, XXH3_128bits(u, strlen(u)));
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", h.digest[i]);
  assert_string_equal(tag + n - 32, hex);
  /* Two URIs that differ only after the prefix get different tags. */
  memset(u + 8, 'x', 400);
  u[408] = '\0';
  memcpy(u + 408, "?a=1", 5);
  assert_int_equal(dn_uri_tag(u, strlen(u), tag, &n, NULL), 0);
  u[411] = '2';
  assert_int_equal(dn_uri_tag(u, strlen(u), tag2, &n2, NULL), 0);
  assert_int_equal(n, n2);
  assert_memory_equal(tag, tag2, n - 32);
  assert_string_not_equal(tag, tag2);
}

/* The prefix of a long tag never ends inside a "%XX" escape. */
static void test_tag_prefix_is_token_aligned(void **state) {
  (void)state;
  for (size_t pad = 0; pad < 6; pad++) {
    char u[400] = "app://s/";
    memset(u + 8, 'a', pad);
    for (size_t i = 8 + pad; i < 300; i++)
      u[i] = ',';
    u[300] = '\0';
    char tag[DN_URI_TAG_MAX + 1];
    size_t n;
    assert_int_equal(dn_uri_tag(u, strlen(u), tag, &n, NULL), 0);
    check_tag_shape(tag, n);
    size_t prefix = n - 33;
    for (size_t i = 0; i < prefix; i++)
      if (tag[i] == '%')
        assert_true(i + 3 <= prefix);
    assert_true(prefix > DN__URI_TAG_PREFIX_MAX - 3);
  }
}

/* Builds a random valid URI from pieces that exercise every component. */
static size_t random_uri(unsigned *seed, char *out) {
  static const char *const schemes[] = {"app", "page", "APP", "h2+x"};
  static const char *const hosts[] = {"self",   "Self", "[::1]",
                                      "h:8080", "u@h",  ""};
  static const char *const pieces[] = {
      "/", "a", "B", "..", ".", "%41", "%2f",       "%c3%a9", "=",  "&",
      "?", ",", ";", "(",  ")", "*",   "+",         "!",      "$",  "'",
      "@", ":", "~", "-",  "_", "%25", "xyzxyzxyz", "%7C",    "%23"};
  size_t o = 0;
  unsigned r = (unsigned)rand_r(seed);
  o += (size_t)snprintf(out + o, 64, "%s:", schemes[r % 4]);
  if (r & 4)
    o += (size_t)snprintf(out + o, 64, "//%s/", hosts[(r >> 3) % 6]);
  int n = rand_r(seed) % ((r & 0x100) ? 80 : 12);
  int query = 0;
  for (int i = 0; i < n; i++) {
    const char *p = pieces[rand_r(seed) % (sizeof pieces / sizeof *pieces)];
    if (*p == '?' && query++)
      p = "&";
    o += (size_t)snprintf(out + o, 64, "%s", p);
  }
  return o;
}

typedef struct tag_pair {
  char tag[DN_URI_TAG_MAX + 1];
  char *norm;
} tag_pair;

static int tag_pair_cmp(const void *a, const void *b) {
  return strcmp(((const tag_pair *)a)->tag, ((const tag_pair *)b)->tag);
}

/* Thousands of generated URIs: every tag has the right shape, a short tag
 * decodes back to the normal form, and equal tags mean equal URIs. */
static void test_tag_generated_uris(void **state) {
  (void)state;
  enum { N = 5000 };
  tag_pair *v = calloc(N, sizeof *v);
  unsigned seed = 12345;
  char u[2048], dec[2048];
  for (size_t i = 0; i < N; i++) {
    size_t len = random_uri(&seed, u);
    size_t n, nn;
    dn_error err;
    if (dn_uri_normalize(u, len, &v[i].norm, &nn, &err) != 0)
      fail_msg("%s: %s", u, err.text);
    assert_int_equal(dn_uri_tag(u, len, v[i].tag, &n, NULL), 0);
    check_tag_shape(v[i].tag, n);
    char again[DN_URI_TAG_MAX + 1];
    assert_int_equal(dn_uri_tag_normalized(v[i].norm, nn, again, NULL), 0);
    assert_string_equal(again, v[i].tag);
    if (!strchr(v[i].tag, '#')) {
      assert_int_equal(tag_decode(v[i].tag, dec), nn);
      assert_string_equal(dec, v[i].norm);
    }
  }
  qsort(v, N, sizeof *v, tag_pair_cmp);
  for (size_t i = 1; i < N; i++)
    if (strcmp(v[i].tag, v[i - 1].tag) == 0)
      assert_string_equal(v[i].norm, v[i - 1].norm);
  for (size_t i = 0; i < N; i++)
    dn_free(v[i].norm);
  free(v);
}

/* Bytes a normal URI cannot hold still give a valid tag. */
static void test_tag_normalized_any_bytes(void **state) {
  (void)state;
  char in[256], tag[DN_URI_TAG_MAX + 1];
  for (int i = 0; i < 256; i++)
    in[i] = (char)(255 - i);
  for (size_t len = 1; len <= sizeof in; len += 17) {
    size_t n;
    assert_int_equal(dn_uri_tag_normalized(in, len, tag, &n), 0);
    check_tag_shape(tag, n);
  }
  size_t n;
  assert_int_equal(dn_uri_tag_normalized("#|^`", 4, tag, &n), 0);
  assert_string_equal(tag, "%23%7C%5E%60");
}

static void test_tag_validate(void **state) {
  (void)state;
  dn_error err;
  assert_int_equal(dn_tag_validate("post-1", 6, &err), 0);
  assert_int_equal(dn_tag_validate("a:/b?c&d|#%~!'()*;@[]{}<>^`$+", 29, &err),
                   0);
  assert_int_equal(dn_tag_validate("", 0, &err), DN_ETAG);
  assert_int_equal(err.position, 0);
  const char *bad[] = {"ab c",  "ab,c",   "ab\"c",  "ab=c",
                       "ab\\c", "ab\x7f", "ab\x01", "ab\xc3"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&err, 0, sizeof err);
    assert_int_equal(dn_tag_validate(bad[i], strlen(bad[i]), &err), DN_ETAG);
    assert_int_equal(err.code, DN_ETAG);
    assert_int_equal(err.position, 2);
  }
  char *big = malloc(DN_TAG_MAX + 1);
  memset(big, 'k', DN_TAG_MAX + 1);
  assert_int_equal(dn_tag_validate(big, DN_TAG_MAX, &err), 0);
  assert_int_equal(dn_tag_validate(big, DN_TAG_MAX + 1, &err), DN_ETAG);
  assert_int_equal(err.position, DN_TAG_MAX);
  free(big);
}

static void test_strings_free(void **state) {
  (void)state;
  dn_strings_free(NULL);
  dn_strings s = {0};
  dn_strings_free(&s);
  /* With the default allocator, malloc'ed arrays stand in for a list the
   * library built; the items come from the library itself. */
  s.count = 2;
  s.items = malloc(2 * sizeof *s.items);
  s.lens = malloc(2 * sizeof *s.lens);
  assert_int_equal(dn_uri_normalize("a:x", 3, &s.items[0], &s.lens[0], NULL),
                   0);
  assert_int_equal(dn_uri_normalize("a:y", 3, &s.items[1], &s.lens[1], NULL),
                   0);
  dn_strings_free(&s);
  assert_null(s.items);
  assert_null(s.lens);
  assert_int_equal(s.count, 0);
}

/* ---- out of memory ------------------------------------------------------ */

static int oom_normalize(void *ud) {
  char *out = NULL;
  const char *u = ud;
  int rc = dn_uri_normalize(u, strlen(u), &out, NULL, NULL);
  if (rc == 0) {
    if (strncmp(out, "app://self/x?a", 14) != 0 && strcmp(out, "a:b") != 0)
      return DN_EINVAL;
    dn_free(out);
  }
  return rc;
}

static int oom_tag(void *ud) {
  char tag[DN_URI_TAG_MAX + 1];
  const char *u = ud;
  return dn_uri_tag(u, strlen(u), tag, NULL, NULL);
}

static void test_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_normalize, (void *)"a:b");
  dn_test_every_alloc_failure(oom_normalize, (void *)"APP://Self/x?a=1");
  dn_test_every_alloc_failure(oom_normalize,
                              (void *)"app://self/x?z=1&b=2&a=3&%61=4");
  dn_test_every_alloc_failure(oom_tag, (void *)"app://self/x?z=1&b=2&a=3");
  dn_test_every_alloc_failure(oom_tag, (void *)"app://self/x?a=1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize_table),
      cmocka_unit_test(test_normal_forms_are_fixed_points),
      cmocka_unit_test(test_normal_input_does_not_allocate),
      cmocka_unit_test(test_query_sort_is_stable),
      cmocka_unit_test(test_error_positions),
      cmocka_unit_test(test_length_limit),
      cmocka_unit_test(test_null_arguments),
      cmocka_unit_test(test_buf_append_and_limit),
      cmocka_unit_test(test_tag_examples),
      cmocka_unit_test(test_tag_distinguishes_escapes_and_schemes),
      cmocka_unit_test(test_tag_long_uris),
      cmocka_unit_test(test_tag_prefix_is_token_aligned),
      cmocka_unit_test(test_tag_generated_uris),
      cmocka_unit_test(test_tag_normalized_any_bytes),
      cmocka_unit_test(test_tag_validate),
      cmocka_unit_test(test_strings_free),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
