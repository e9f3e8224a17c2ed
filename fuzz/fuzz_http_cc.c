/* fuzz_http_cc.c - libFuzzer target for Cache-Control parsing and
 * generation (RFC 9111 §5.2) and the "never store" predicate.
 *
 * Feeds arbitrary bytes to dn_http_cc_parse and checks:
 *  - no crash; errors are DN_EHEADER with a position inside the input and
 *    leave the struct unchanged;
 *  - parsed durations are unset or within 0..2^31;
 *  - dn_http_cc_format of the result fits DN_HTTP_CC_MAX, is a valid
 *    field value, and parses back to exactly the same struct;
 *  - dn_http_storable with the input as Cache-Control says "store" only
 *    when the parse succeeded without no-store or private.
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

static int duration_ok(int64_t v) {
  return v == DN_HTTP_UNSET || (v >= 0 && v <= 2147483648LL);
}

static int same(const dn_http_cc *a, const dn_http_cc *b) {
  return a->flags == b->flags && a->max_age == b->max_age &&
         a->s_maxage == b->s_maxage &&
         a->stale_while_revalidate == b->stale_while_revalidate &&
         a->stale_if_error == b->stale_if_error;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  dn_http_cc cc, before;
  dn_http_cc_init(&cc);
  before = cc;
  dn_error err;
  int rc = dn_http_cc_parse(s, size, &cc, &err);
  dn_http_field f = {{"Cache-Control", 13}, {s, size}};
  int storable = dn_http_storable(&f, 1, 0);
  if (rc) {
    CHECK(rc == DN_EHEADER && err.position <= size && same(&cc, &before));
    CHECK(storable == 0);
    return 0;
  }
  CHECK(duration_ok(cc.max_age) && duration_ok(cc.s_maxage) &&
        duration_ok(cc.stale_while_revalidate) &&
        duration_ok(cc.stale_if_error));
  CHECK(storable == !(cc.flags & (DN_HTTP_CC_NO_STORE | DN_HTTP_CC_PRIVATE)));
  char out[DN_HTTP_CC_MAX + 1];
  size_t n;
  dn_http_cc_format(&cc, out, &n);
  CHECK(n <= DN_HTTP_CC_MAX && strlen(out) == n);
  CHECK(dn_http_field_value_validate(out, n, NULL) == 0);
  dn_http_cc back;
  dn_http_cc_init(&back);
  CHECK(dn_http_cc_parse(out, n, &back, NULL) == 0);
  CHECK(same(&back, &cc));
  return 0;
}
