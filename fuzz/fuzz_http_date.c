/* fuzz_http_date.c - libFuzzer target for HTTP-date parsing (RFC 9110
 * §5.6.7) and the date preconditions.
 *
 * Feeds arbitrary bytes to dn_http_date_parse (with a clock taken from
 * the first bytes, so the two-digit-year window moves) and checks:
 *  - no crash; errors are DN_EHEADER with a position inside the input and
 *    leave the output untouched;
 *  - an accepted date lies in years 0-9999, formats as an IMF-fixdate that
 *    parses back to the same instant, and formatting is a fixed point;
 *  - as If-Modified-Since / If-Unmodified-Since the input gives only 200,
 *    304 or 412, and an invalid date is ignored (200).
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

static int status_of(const char *name, const char *method, const char *s,
                     size_t size) {
  dn_http_field f = {{name, strlen(name)}, {s, size}};
  dn_http_request q = {{method, strlen(method)}, &f, 1};
  int st = dn_http_preconditions(&q, NULL, 783459811, 1795219200);
  CHECK(st == 200 || st == 304 || st == 412);
  return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  int64_t now = 1795219200;
  if (size >= 4) /* a clock between 1970 and about 2106 */
    now = (int64_t)((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                    (uint32_t)data[2] << 8 | data[3]);
  int64_t t = 42;
  dn_error err;
  int rc = dn_http_date_parse(s, size, now, &t, &err);
  if (rc) {
    CHECK(rc == DN_EHEADER && err.position <= size && t == 42);
  } else {
    CHECK(t >= -62167219200LL && t <= 253402300799LL);
    char out[DN_HTTP_DATE_LEN + 1], again[DN_HTTP_DATE_LEN + 1];
    CHECK(dn_http_date_format(t, out) == 0);
    CHECK(strlen(out) == DN_HTTP_DATE_LEN);
    int64_t back;
    CHECK(dn_http_date_parse(out, DN_HTTP_DATE_LEN, now, &back, NULL) == 0);
    CHECK(back == t);
    CHECK(dn_http_date_format(back, again) == 0 && strcmp(out, again) == 0);
  }
  rc = dn_http_date_parse(s, size, 1795219200, &t, NULL);
  int ims = status_of("If-Modified-Since", "GET", s, size);
  int ius = status_of("If-Unmodified-Since", "PUT", s, size);
  if (rc) {
    CHECK(ims == 200);
    CHECK(ius == 200);
  }
  return 0;
}
