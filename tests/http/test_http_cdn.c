/* test_http_cdn.c - CDN profiles: field syntax, documented limits, hashed
 * and compacted tags, and the purge-side mapping.
 *
 * The central property: for closures of up to 10,000 tags, every
 * profile's tag field stays within the CDN's limits, and for every tag of
 * the closure the keys dn_cdn_purge_keys returns intersect the keys in the
 * page's field, so a purge always reaches the page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "donut/http.h"
#include "test_support.h"

static const dn_cdn_profile tagged[] = {
    DN_CDN_GENERIC, DN_CDN_FASTLY, DN_CDN_AKAMAI, DN_CDN_CLOUDFLARE,
    DN_CDN_VARNISH, DN_CDN_BUNNY,  DN_CDN_RFC9875};
#define NTAGGED (sizeof tagged / sizeof tagged[0])

/* ---- a strict reader of the fields, independent of the library --------- */

typedef struct keyset {
  char **keys;
  size_t count;
} keyset;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keyset_free(keyset *s) {
  for (size_t i = 0; i < s->count; i++)
    free(s->keys[i]);
  free(s->keys);
  s->keys = NULL;
  s->count = 0;
}

static void keyset_add(keyset *s, const char *p, size_t n) {
  s->keys = realloc(s->keys, (s->count + 1) * sizeof *s->keys);
  assert_non_null(s->keys);
  char *k = malloc(n + 1);
  assert_non_null(k);
  memcpy(k, p, n);
  k[n] = '\0';
  s->keys[s->count++] = k;
}

/* RFC 8941 §4.2.5: sf-string = DQUOTE *chr DQUOTE. Parses a List of
 * Strings (no parameters), as RFC 9875 §2 defines Cache-Groups. */
static void parse_sf_string_list(const char *v, size_t n, keyset *out) {
  size_t i = 0;
  while (i < n) {
    assert_int_equal(v[i], '"');
    size_t start = ++i;
    while (i < n && v[i] != '"') {
      assert_true(v[i] >= 0x20 && v[i] <= 0x7e && v[i] != '\\');
      i++;
    }
    assert_true(i < n);
    keyset_add(out, v + start, i - start);
    i++;
    if (i == n)
      break;
    /* OWS "," OWS, and no trailing comma (RFC 8941 §4.2.1). */
    while (i < n && v[i] == ' ')
      i++;
    assert_int_equal(v[i], ',');
    i++;
    while (i < n && v[i] == ' ')
      i++;
    assert_true(i < n);
  }
}

static void split_keys(const char *v, size_t n, char sep, keyset *out) {
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    while (i < n && v[i] != sep)
      i++;
    assert_true(i > start); /* no empty keys */
    keyset_add(out, v + start, i - start);
    i++;
    assert_true(i != n); /* no trailing separator */
  }
}

/* Reads the profile's tag field from h (there must be exactly one) and
 * checks it against the profile's documented syntax and limits. */
static void read_tag_field(dn_cdn_profile p, const dn_http_headers *h,
                           keyset *out) {
  dn_cdn_limits l;
  assert_int_equal(dn_cdn_limits_get(p, &l), 0);
  size_t found = 0;
  for (size_t i = 0; i < dn_http_headers_count(h); i++) {
    dn_http_field f = dn_http_headers_at(h, i);
    if (f.name.len != strlen(l.tag_field) ||
        strncasecmp(f.name.ptr, l.tag_field, f.name.len) != 0)
      continue;
    found++;
    assert_int_equal(
        dn_http_field_value_validate(f.value.ptr, f.value.len, NULL), 0);
    assert_true(f.value.len <= l.max_value_len);
    if (l.sf_strings)
      parse_sf_string_list(f.value.ptr, f.value.len, out);
    else
      split_keys(f.value.ptr, f.value.len, l.separator, out);
  }
  assert_int_equal(found, 1);
  if (l.max_tags)
    assert_true(out->count <= l.max_tags);
  for (size_t i = 0; i < out->count; i++) {
    const char *k = out->keys[i];
    assert_true(strlen(k) >= 1 && strlen(k) <= l.max_tag_len);
    for (const char *c = k; *c; c++) {
      assert_true(*c > 0x20 && *c < 0x7f && *c != ',' && *c != '"');
      if (p == DN_CDN_AKAMAI) /* Akamai: token characters, no '*' */
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                               "QRSTUVWXYZ0123456789!#$%&'+-.^_`|~",
                               *c));
    }
  }
  qsort(out->keys, out->count, sizeof *out->keys, cmp_str);
  for (size_t i = 1; i < out->count; i++)
    assert_true(strcmp(out->keys[i - 1], out->keys[i]) != 0);
}

static int keyset_has(const keyset *s, const char *p, size_t n) {
  char buf[2048];
  assert_true(n < sizeof buf);
  memcpy(buf, p, n);
  buf[n] = '\0';
  const char *key = buf;
  return bsearch(&key, s->keys, s->count, sizeof *s->keys, cmp_str) != NULL;
}

/* ---- closures ----------------------------------------------------------- */

/* Tag i of a synthetic closure: short, with ':' and '/', or very long. */
static char *make_tag(size_t i) {
  char *t = malloc(400);
  assert_non_null(t);
  if (i % 5 == 0)
    snprintf(t, 400, "item-%zu", i);
  else if (i % 5 == 1)
    snprintf(t, 400, "app:/self/blog/posting/%zu", i);
  else if (i % 5 == 2)
    snprintf(t, 400, "%0150zu-long", i);
  else
    snprintf(t, 400, "t%zu", i);
  return t;
}

typedef struct closure {
  char **names;
  dn_slice *tags;
  size_t n;
} closure;

static closure make_closure(size_t n) {
  closure c = {calloc(n, sizeof(char *)), calloc(n, sizeof(dn_slice)), n};
  assert_non_null(c.names);
  for (size_t i = 0; i < n; i++) {
    c.names[i] = make_tag(i);
    c.tags[i] = dn_slice_from_cstr(c.names[i]);
  }
  return c;
}

static void closure_free(closure *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->names[i]);
  free(c->names);
  free(c->tags);
}

/* Every tag's purge keys reach the page carrying `c` under profile p. */
static void check_closure(dn_cdn_profile p, const closure *c) {
  dn_http_headers *h = dn_http_headers_new();
  dn_error err;
  assert_int_equal(dn_cdn_tag_fields(p, c->tags, c->n, h, &err), 0);
  keyset page = {NULL, 0};
  read_tag_field(p, h, &page);
  for (size_t i = 0; i < c->n; i++) {
    dn_slice *keys;
    size_t count, hit = 0;
    assert_int_equal(dn_cdn_purge_keys(p, &c->tags[i], 1, &keys, &count, &err),
                     0);
    assert_true(count >= 2);
    for (size_t k = 0; k < count; k++)
      hit += keyset_has(&page, keys[k].ptr, keys[k].len);
    dn_free(keys);
    if (!hit)
      fail_msg("%s: purging tag %zu (%s) misses the page",
               dn_cdn_profile_name(p), i, c->names[i]);
  }
  keyset_free(&page);
  dn_http_headers_free(h);
}

static void test_closures_of_10000_tags(void **state) {
  (void)state;
  closure c = make_closure(10000);
  for (size_t i = 0; i < NTAGGED; i++)
    check_closure(tagged[i], &c);
  closure_free(&c);
}

static void test_closures_of_many_sizes(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 2, 31, 33, 127, 129, 500, 1500, 4000};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    closure c = make_closure(sizes[s]);
    for (size_t i = 0; i < NTAGGED; i++)
      check_closure(tagged[i], &c);
    closure_free(&c);
  }
}

/* ---- exact output for small closures ------------------------------------ */

static void expect_field(dn_cdn_profile p, const char *tags, const char *name,
                         const char *value) {
  dn_slice list[16];
  size_t n = 0;
  for (const char *t = tags; *t;) {
    const char *end = strchr(t, ' ');
    size_t len = end ? (size_t)(end - t) : strlen(t);
    list[n].ptr = t;
    list[n++].len = len;
    t += len + (end != NULL);
  }
  dn_http_headers *h = dn_http_headers_new();
  assert_int_equal(dn_cdn_tag_fields(p, list, n, h, NULL), 0);
  if (!name) {
    assert_int_equal(dn_http_headers_count(h), 0);
  } else {
    assert_int_equal(dn_http_headers_count(h), 1);
    dn_http_field f = dn_http_headers_at(h, 0);
    assert_int_equal(f.name.len, strlen(name));
    assert_memory_equal(f.name.ptr, name, f.name.len);
    if (f.value.len != strlen(value) ||
        memcmp(f.value.ptr, value, f.value.len) != 0)
      fail_msg("%s: got '%.*s', want '%s'", dn_cdn_profile_name(p),
               (int)f.value.len, f.value.ptr, value);
  }
  dn_http_headers_free(h);
}

static void test_small_closures(void **state) {
  (void)state;
  const char *tags = "a b c b";
  expect_field(DN_CDN_NONE, tags, NULL, NULL);
  expect_field(DN_CDN_GENERIC, tags, "Surrogate-Key", "a b c");
  expect_field(DN_CDN_FASTLY, tags, "Surrogate-Key", "a b c");
  expect_field(DN_CDN_AKAMAI, tags, "Edge-Cache-Tag", "a,b,c");
  expect_field(DN_CDN_CLOUDFLARE, tags, "Cache-Tag", "a,b,c");
  expect_field(DN_CDN_VARNISH, tags, "xkey", "a b c");
  expect_field(DN_CDN_BUNNY, tags, "CDN-Tag", "a,b,c");
  expect_field(DN_CDN_RFC9875, tags, "Cache-Groups", "\"a\", \"b\", \"c\"");
  /* First occurrence order is kept. */
  expect_field(DN_CDN_FASTLY, "z y z x", "Surrogate-Key", "z y x");
  /* Akamai forbids ':' and '/', so such tags travel hashed. */
  dn_http_headers *h = dn_http_headers_new();
  dn_slice t[2] = {dn_slice_from_cstr("app:/self/x"), dn_slice_from_cstr("k")};
  assert_int_equal(dn_cdn_tag_fields(DN_CDN_AKAMAI, t, 2, h, NULL), 0);
  dn_http_field f = dn_http_headers_at(h, 0);
  assert_int_equal(f.value.len, 19 + 2);
  assert_memory_equal(f.value.ptr, "dh-", 3);
  assert_memory_equal(f.value.ptr + 19, ",k", 2);
  dn_http_headers_free(h);
}

static void test_tag_length_limits(void **state) {
  (void)state;
  char tag[1100];
  memset(tag, 'a', sizeof tag);
  static const struct {
    dn_cdn_profile p;
    size_t max;
  } t[] = {{DN_CDN_AKAMAI, 128}, {DN_CDN_RFC9875, 32}, {DN_CDN_FASTLY, 1024}};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    for (size_t len = t[i].max; len <= t[i].max + 1; len++) {
      dn_slice s = {tag, len};
      dn_http_headers *h = dn_http_headers_new();
      assert_int_equal(dn_cdn_tag_fields(t[i].p, &s, 1, h, NULL),
                       len > 1024 ? DN_ETAG : 0);
      if (len <= 1024) {
        dn_http_field f = dn_http_headers_at(h, 0);
        size_t quotes = t[i].p == DN_CDN_RFC9875 ? 2 : 0;
        assert_int_equal(f.value.len, (len <= t[i].max ? len : 19) + quotes);
      }
      dn_http_headers_free(h);
    }
  }
}

static void test_invalid_tags_are_rejected(void **state) {
  (void)state;
  static const char *const bad[] = {"a b",  "a\r\nX-Evil: 1", "a\n",  "a,b",
                                    "a=b",  "a\"b",           "a\\b", "",
                                    "\x01", "caf\xc3\xa9"};
  char huge[1100];
  memset(huge, 'x', sizeof huge);
  for (size_t p = 0; p < NTAGGED; p++) {
    for (size_t i = 0; i <= sizeof bad / sizeof *bad; i++) {
      dn_slice t[2] = {dn_slice_from_cstr("ok"),
                       i < sizeof bad / sizeof *bad
                           ? dn_slice_from_cstr(bad[i])
                           : (dn_slice){huge, sizeof huge}};
      dn_http_headers *h = dn_http_headers_new();
      dn_error err;
      assert_int_equal(dn_cdn_tag_fields(tagged[p], t, 2, h, &err), DN_ETAG);
      assert_int_equal(dn_http_headers_count(h), 0);
      assert_non_null(strstr(err.text, "tag 1"));
      dn_slice *keys = (dn_slice *)1;
      size_t count = 99;
      assert_int_equal(dn_cdn_purge_keys(tagged[p], t, 2, &keys, &count, NULL),
                       DN_ETAG);
      assert_int_equal(count, 99);
      dn_http_headers_free(h);
    }
  }
}

/* ---- purge keys --------------------------------------------------------- */

static void test_purge_keys(void **state) {
  (void)state;
  dn_slice t[3] = {dn_slice_from_cstr("post-1"), dn_slice_from_cstr("post-1"),
                   dn_slice_from_cstr("post-2")};
  dn_slice *keys;
  size_t count;
  assert_int_equal(dn_cdn_purge_keys(DN_CDN_FASTLY, t, 1, &keys, &count, NULL),
                   0);
  /* The tag itself and one bucket key per level (six levels). */
  assert_int_equal(count, 7);
  assert_int_equal(keys[0].len, 6);
  assert_memory_equal(keys[0].ptr, "post-1", 6);
  for (size_t i = 1; i < count; i++) {
    char prefix[24];
    snprintf(prefix, sizeof prefix, "dk%zu-", i - 1);
    assert_memory_equal(keys[i].ptr, prefix, 4);
  }
  /* Deterministic: the same keys on every call (and every machine). */
  dn_slice *again;
  size_t count2;
  assert_int_equal(
      dn_cdn_purge_keys(DN_CDN_FASTLY, t, 1, &again, &count2, NULL), 0);
  assert_int_equal(count2, count);
  for (size_t i = 0; i < count; i++)
    assert_memory_equal(keys[i].ptr, again[i].ptr, keys[i].len);
  dn_free(again);
  dn_free(keys);
  /* Duplicates collapse: two distinct tags give their two forms and at
   * most two bucket keys per level. */
  assert_int_equal(dn_cdn_purge_keys(DN_CDN_AKAMAI, t, 3, &keys, &count, NULL),
                   0);
  assert_true(count >= 8 && count <= 14);
  dn_free(keys);
  assert_int_equal(dn_cdn_purge_keys(DN_CDN_NONE, t, 3, &keys, &count, NULL),
                   0);
  assert_int_equal(count, 0);
  assert_null(keys);
  assert_int_equal(
      dn_cdn_purge_keys((dn_cdn_profile)99, t, 3, &keys, &count, NULL),
      DN_EINVAL);
}

/* ---- profiles ----------------------------------------------------------- */

static void test_profiles(void **state) {
  (void)state;
  static const char *const names[] = {"none",   "generic",    "fastly",
                                      "akamai", "cloudflare", "varnish",
                                      "bunny",  "rfc9875"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    dn_cdn_profile p;
    assert_int_equal(dn_cdn_profile_parse(names[i], strlen(names[i]), &p), 0);
    assert_int_equal((int)p, (int)i);
    assert_string_equal(dn_cdn_profile_name(p), names[i]);
  }
  dn_cdn_profile p = DN_CDN_NONE;
  assert_int_equal(dn_cdn_profile_parse("FASTLY", 6, &p), 0);
  assert_int_equal(p, DN_CDN_FASTLY);
  assert_int_equal(dn_cdn_profile_parse("fast", 4, &p), DN_EINVAL);
  assert_int_equal(dn_cdn_profile_parse(NULL, 0, &p), DN_EINVAL);
  assert_int_equal(p, DN_CDN_FASTLY);
  assert_string_equal(dn_cdn_profile_name((dn_cdn_profile)42), "unknown");
  /* BEAR.Sunday's rule: one year where the CDN purges by tag. */
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_FASTLY), 31536000);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_AKAMAI), 31536000);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_CLOUDFLARE), 31536000);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_VARNISH), 31536000);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_BUNNY), 31536000);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_GENERIC), 10);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_NONE), 10);
  assert_int_equal(dn_cdn_default_ttl(DN_CDN_RFC9875), 10);
  /* The documented limits. */
  dn_cdn_limits l;
  assert_int_equal(dn_cdn_limits_get(DN_CDN_FASTLY, &l), 0);
  assert_int_equal(l.max_tag_len, 1024);
  assert_int_equal(l.max_value_len, 16384);
  assert_int_equal(dn_cdn_limits_get(DN_CDN_AKAMAI, &l), 0);
  assert_int_equal(l.max_tags, 128);
  assert_int_equal(l.max_tag_len, 128);
  assert_int_equal(l.separator, ',');
  assert_int_equal(dn_cdn_limits_get(DN_CDN_CLOUDFLARE, &l), 0);
  assert_true(l.max_value_len <= 16 * 1024);
  assert_int_equal(l.max_tag_len, 1024);
  assert_int_equal(dn_cdn_limits_get(DN_CDN_BUNNY, &l), 0);
  assert_int_equal(l.max_value_len, 1024);
  assert_int_equal(dn_cdn_limits_get(DN_CDN_RFC9875, &l), 0);
  assert_int_equal(l.max_tags, 32);
  assert_int_equal(l.max_tag_len, 32);
  assert_int_equal(dn_cdn_limits_get((dn_cdn_profile)-1, &l), DN_EINVAL);
}

/* ---- allocation failures ---------------------------------------------- */

static int fields_run(void *ud) {
  closure *c = ud;
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return DN_ENOMEM;
  int rc = dn_cdn_tag_fields(DN_CDN_AKAMAI, c->tags, c->n, h, NULL);
  if (!rc && dn_http_headers_count(h) != 1)
    rc = DN_EINVAL;
  dn_http_headers_free(h);
  if (rc)
    return rc;
  dn_slice *keys = NULL;
  size_t count = 0;
  rc = dn_cdn_purge_keys(DN_CDN_CLOUDFLARE, c->tags, c->n, &keys, &count, NULL);
  dn_free(keys);
  return rc;
}

static void test_alloc_failures(void **state) {
  (void)state;
  closure c = make_closure(300);
  dn_test_every_alloc_failure(fields_run, &c);
  closure_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_profiles),
      cmocka_unit_test(test_small_closures),
      cmocka_unit_test(test_tag_length_limits),
      cmocka_unit_test(test_invalid_tags_are_rejected),
      cmocka_unit_test(test_purge_keys),
      cmocka_unit_test(test_closures_of_many_sizes),
      cmocka_unit_test(test_closures_of_10000_tags),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
