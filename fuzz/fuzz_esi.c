/* fuzz_esi.c - libFuzzer target for the ESI parser of origin mode.
 *
 * Parses arbitrary bytes with small limits (2 KiB, below libFuzzer's
 * default -max_len, and an include limit of 1 to 8 picked by the first
 * byte, so both limit paths are reached often) and checks:
 *  - no crash; an error is one of the documented codes, filled into the
 *    error struct with a position inside the input, and leaves *out as
 *    it was;
 *  - every item's slices lie inside the document's storage, which is no
 *    longer than the input, and the item lengths add up to it exactly;
 *  - texts are never empty and never neighbours, offsets rise, and every
 *    text is a byte-for-byte copy of the input at its offset (texts
 *    merged across removed markup only need to start there);
 *  - an include's src (and alt, when present) is non-empty, NUL-terminated
 *    and free of control bytes and spaces, and onerror is 0 or 1;
 *  - the include count matches the items and stays within the limit;
 *  - an input without "<esi:", "</esi:" or "<!--esi" is one text equal to
 *    the input;
 *  - parsing the same input again gives the same result, and parsing it
 *    from a copy that is then destroyed leaves the document intact.
 * A failed property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

#define FUZZ_MAX_BYTES 2048

static int inside(dn_slice s, dn_slice storage) {
  return s.ptr >= storage.ptr && s.len <= storage.len &&
         (size_t)(s.ptr - storage.ptr) <= storage.len - s.len;
}

static void check_value(dn_slice v, dn_slice storage) {
  CHECK(v.len > 0 && v.ptr != NULL);
  CHECK(v.len < storage.len && inside(v, storage));
  CHECK(v.ptr[v.len] == '\0');
  for (size_t i = 0; i < v.len; i++) {
    unsigned char c = (unsigned char)v.ptr[i];
    CHECK(c > 0x20 && c != 0x7F);
  }
}

/* Whether the input holds anything that starts ESI markup. */
static int has_marker(const char *in, size_t size) {
  static const char *const markers[] = {"<esi:", "</esi:", "<!--esi"};
  for (size_t i = 0; i < size; i++) {
    if (in[i] != '<')
      continue;
    for (size_t m = 0; m < 3; m++) {
      size_t n = strlen(markers[m]);
      if (size - i >= n && memcmp(in + i, markers[m], n) == 0)
        return 1;
    }
  }
  return 0;
}

static void check_doc(const dn__esi_doc *d, const char *in, size_t size,
                      size_t max_includes) {
  dn_slice storage = dn__esi_bytes(d);
  CHECK(storage.ptr != NULL && storage.len <= size);
  size_t n = dn__esi_count(d), includes = 0, total = 0;
  CHECK(dn__esi_at(d, n) == NULL);
  for (size_t i = 0; i < n; i++) {
    const dn__esi_item *it = dn__esi_at(d, i);
    const dn__esi_item *prev = i ? dn__esi_at(d, i - 1) : NULL;
    CHECK(it != NULL && it->offset < size);
    CHECK(!prev || prev->offset < it->offset);
    if (it->kind == DN__ESI_TEXT) {
      CHECK(it->text.len > 0 && inside(it->text, storage));
      CHECK(!prev || prev->kind != DN__ESI_TEXT);
      CHECK(it->src.len == 0 && it->alt.len == 0);
      /* A text starts as the input does at its offset. */
      CHECK(in[it->offset] == it->text.ptr[0]);
      total += it->text.len;
    } else {
      CHECK(it->kind == DN__ESI_INCLUDE);
      CHECK(it->text.len == 0);
      CHECK(it->onerror_continue == 0 || it->onerror_continue == 1);
      CHECK(size - it->offset >= 20 &&
            memcmp(in + it->offset, "<esi:", 5) == 0);
      check_value(it->src, storage);
      total += it->src.len + 1;
      if (it->alt.ptr) {
        check_value(it->alt, storage);
        total += it->alt.len + 1;
      } else {
        CHECK(it->alt.len == 0);
      }
      includes++;
    }
  }
  CHECK(total == storage.len);
  CHECK(includes == dn__esi_includes(d) && includes <= max_includes);
  if (!has_marker(in, size)) {
    CHECK(n == (size ? 1 : 0));
    CHECK(storage.len == size && memcmp(storage.ptr, in, size) == 0);
  }
}

static int same_doc(const dn__esi_doc *a, const dn__esi_doc *b) {
  dn_slice sa = dn__esi_bytes(a), sb = dn__esi_bytes(b);
  if (dn__esi_count(a) != dn__esi_count(b) || sa.len != sb.len ||
      memcmp(sa.ptr, sb.ptr, sa.len) != 0)
    return 0;
  for (size_t i = 0; i < dn__esi_count(a); i++) {
    const dn__esi_item *x = dn__esi_at(a, i), *y = dn__esi_at(b, i);
    if (x->kind != y->kind || x->offset != y->offset ||
        x->text.len != y->text.len || x->src.len != y->src.len ||
        x->alt.len != y->alt.len || x->onerror_continue != y->onerror_continue)
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dn__esi_limits lim = {FUZZ_MAX_BYTES, 1 + (size ? data[0] % 8 : 0)};
  const char *in = (const char *)data;
  dn__esi_doc *sentinel = (dn__esi_doc *)&sentinel, *d = sentinel;
  dn_error err;
  int rc = dn__esi_parse(in, size, &lim, &d, &err);
  if (rc) {
    CHECK(d == sentinel);
    CHECK(rc == DN__ESI_EMARKUP || rc == DN_ENOTSUP || rc == DN_ETOOBIG);
    CHECK(err.code == rc && err.position <= size && err.text[0] != '\0');
    CHECK(rc != DN_ETOOBIG || size > FUZZ_MAX_BYTES || has_marker(in, size));
    CHECK(has_marker(in, size) || rc == DN_ETOOBIG);
    CHECK(dn__esi_parse(in, size, &lim, &d, NULL) == rc && d == sentinel);
    return 0;
  }
  check_doc(d, in, size, lim.max_includes);
  /* From a copy that is destroyed afterwards: the same document. */
  char *copy = malloc(size ? size : 1);
  CHECK(copy != NULL);
  if (size)
    memcpy(copy, in, size);
  dn__esi_doc *d2 = NULL;
  CHECK(dn__esi_parse(copy, size, &lim, &d2, NULL) == 0);
  memset(copy, 0xA5, size);
  free(copy);
  CHECK(same_doc(d, d2));
  dn__esi_free(d2);
  dn__esi_free(d);
  return 0;
}
