/* fuzz_uri.c - libFuzzer target for URI normalisation and URI tags.
 *
 * Feeds arbitrary bytes to the normaliser and the tagger and checks:
 *  - no crash, and errors are DN_EURI with a position inside the input;
 *  - the "already normal" shortcut and the general path agree, on the
 *    input and on its normal form, and rebuilding stays within the
 *    input's length (plus what a canonical IPv6 host adds);
 *  - normalisation is idempotent: a normal form normalises to itself and
 *    is recognised as normal;
 *  - a URI tag is 1 to DN_URI_TAG_MAX bytes of the tag alphabet, equals
 *    the tag of the normal form, and a short tag decodes back to it;
 *  - any bytes at all given to dn_uri_tag_normalized still make a valid
 *    tag.
 * A failed property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "donut/uri.h"
#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

static int tag_byte_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%'+-.^_`|~", c));
}

static unsigned hexval(char c) {
  return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

/* Checks the shape of a tag; for a short one, that it decodes to `norm`. */
static void check_tag(const char *tag, size_t n, const char *norm,
                      size_t norm_len) {
  CHECK(n >= 1 && n <= DN_URI_TAG_MAX && strlen(tag) == n);
  for (size_t i = 0; i < n; i++)
    CHECK(tag_byte_ok((unsigned char)tag[i]));
  CHECK(dn_tag_validate(tag, n, NULL) == 0);
  const char *hash = memchr(tag, '#', n);
  if (hash) {
    CHECK(hash == tag + n - 33 &&
          (size_t)(hash - tag) <= DN__URI_TAG_PREFIX_MAX);
    return;
  }
  size_t o = 0;
  for (size_t i = 0; i < n; i++, o++) {
    char c = tag[i];
    if (c == '|') {
      c = '/';
    } else if (c == '%') {
      CHECK(i + 2 < n);
      c = (char)(hexval(tag[i + 1]) << 4 | hexval(tag[i + 2]));
      i += 2;
    }
    CHECK(o < norm_len && norm[o] == c);
  }
  CHECK(o == norm_len);
}

static void check_normal(const char *in, size_t size, const dn__buf *a) {
  dn__buf c;
  dn__buf_init(&c, 0);
  CHECK(dn__uri_is_normal(a->data, a->len));
  CHECK(dn__uri_is_normal(in, size) ==
        (a->len == size && memcmp(a->data, in, size) == 0));
  CHECK(dn__uri_normalize_full(&c, a->data, a->len, NULL) == 0);
  CHECK(c.len == a->len && memcmp(c.data, a->data, a->len) == 0);
  dn__buf_free(&c);
  char tag[DN_URI_TAG_MAX + 1], tag2[DN_URI_TAG_MAX + 1];
  size_t n = 0, n2 = 0;
  CHECK(dn_uri_tag(in, size, tag, &n, NULL) == 0);
  CHECK(dn_uri_tag_normalized(a->data, a->len, tag2, &n2) == 0);
  CHECK(n == n2 && memcmp(tag, tag2, n + 1) == 0);
  check_tag(tag, n, a->data, a->len);
}

/* Rebuilds into caller storage of exactly size + 1 bytes: without an IPv6
 * host the normal form never needs more, and writing past the end while
 * rebuilding (dot-segments, the "/." prefix, sorting) trips ASan. */
static void check_bound(const char *in, size_t size, const dn__buf *a) {
  char *mem = malloc(size + 1);
  dn__buf c;
  CHECK(mem != NULL);
  dn__buf_init_with(&c, mem, size + 1, 0);
  CHECK(dn__uri_normalize_full(&c, in, size, NULL) == 0);
  CHECK(c.len == a->len && memcmp(c.data, a->data, a->len) == 0);
  CHECK(c.data == mem || memchr(in, '[', size) != NULL);
  dn__buf_free(&c);
  free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  dn__buf a, b;
  dn_error err;
  dn__buf_init(&a, 0);
  dn__buf_init(&b, 0);
  int rc = dn__uri_normalize_buf(&a, in, size, &err);
  int rc2 = dn__uri_normalize_full(&b, in, size, NULL);
  CHECK(rc == rc2);
  if (rc == 0) {
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(a.len <= DN_URI_MAX && strlen(a.data) == a.len);
    check_normal(in, size, &a);
    check_bound(in, size, &a);
  } else {
    char tag[DN_URI_TAG_MAX + 1];
    CHECK(rc == DN_EURI && err.code == DN_EURI && err.position <= size);
    CHECK(!dn__uri_is_normal(in, size));
    CHECK(dn_uri_tag(in, size, tag, NULL, NULL) == DN_EURI);
  }
  if (size > 0) {
    char tag[DN_URI_TAG_MAX + 1];
    size_t n = 0;
    CHECK(dn_uri_tag_normalized(in, size, tag, &n) == 0);
    check_tag(tag, n, in, size);
  }
  dn__buf_free(&a);
  dn__buf_free(&b);
  return 0;
}
