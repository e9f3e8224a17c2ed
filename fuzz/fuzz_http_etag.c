/* fuzz_http_etag.c - libFuzzer target for entity-tags and their lists.
 *
 * Feeds arbitrary bytes to dn_http_etag_parse, dn_http_etag_list_parse and
 * to precondition evaluation (as If-Match and If-None-Match, one line or
 * split in two at the first byte's position) and checks:
 *  - no crash; errors are DN_EHEADER with a position inside the input;
 *  - every parsed tag's opaque-tag lies inside the input, has only etagc
 *    bytes, and formats back to a tag that parses to the same value;
 *  - the list count does not depend on the room given for the tags;
 *  - a list that does not parse never matches: If-None-Match gives 200,
 *    If-Match gives 412, and the status is always 200, 304 or 412.
 * A failed property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "donut/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

static void check_tag(const char *s, size_t size, dn_http_etag t) {
  CHECK(t.opaque.ptr >= s && t.opaque.ptr + t.opaque.len <= s + size);
  for (size_t i = 0; i < t.opaque.len; i++) {
    unsigned char c = (unsigned char)t.opaque.ptr[i];
    CHECK(c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80);
  }
  char out[4096];
  size_t n;
  if (dn_http_etag_format(t, out, sizeof out, &n))
    return; /* too long for this buffer */
  dn_http_etag back;
  CHECK(dn_http_etag_parse(out, n, &back, NULL) == 0);
  CHECK(dn_http_etag_match(back, t, 1) == !t.weak);
  CHECK(back.weak == t.weak && dn_http_etag_match(back, t, 0));
}

static int status_of(const char *name, const char *s, size_t size, size_t split,
                     const char *method) {
  dn_http_field f[2] = {{{name, strlen(name)}, {s, split}},
                        {{name, strlen(name)}, {s + split, size - split}}};
  dn_http_request q = {{method, strlen(method)}, f, split < size ? 2 : 1};
  if (split >= size)
    f[0].value.len = size;
  dn_http_etag cur = {{"xyzzy", 5}, 0};
  int st = dn_http_preconditions(&q, &cur, 783459811, 1795219200);
  CHECK(st == 200 || st == 304 || st == 412);
  return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  dn_http_etag one, tags[8];
  dn_error err;
  if (dn_http_etag_parse(s, size, &one, &err) == 0)
    check_tag(s, size, one);
  else
    CHECK(err.code == DN_EHEADER && err.position <= size);
  size_t count, count0;
  int star, star0;
  int rc = dn_http_etag_list_parse(s, size, tags, 8, &count, &star, &err);
  CHECK(rc == 0 || (rc == DN_EHEADER && err.position <= size));
  if (rc == 0) {
    for (size_t i = 0; i < count && i < 8; i++)
      check_tag(s, size, tags[i]);
    CHECK(dn_http_etag_list_parse(s, size, NULL, 0, &count0, &star0, NULL) ==
          0);
    CHECK(count0 == count && star0 == star);
  }
  size_t split = size ? data[0] % (size + 1) : 0;
  int inm = status_of("If-None-Match", s, size, size, "GET");
  int im = status_of("If-Match", s, size, size, "PUT");
  if (rc != 0) {
    CHECK(inm == 200);
    CHECK(im == 412);
  }
  (void)status_of("If-None-Match", s, size, split, "GET");
  (void)status_of("If-Match", s, size, split, "DELETE");
  return 0;
}
