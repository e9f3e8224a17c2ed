/* fuzz_edgerc.c - libFuzzer target for the .edgerc reader.
 *
 * The first byte picks the section asked for ("default", "ccu" or a name
 * taken from the input); the rest is the file. Checks:
 *  - no crash; the result is 0, DN_ECONFIG or DN_ENOMEM;
 *  - on success the four credentials are non-empty NUL-terminated strings
 *    inside the returned block, with no CR, LF or leading/trailing space;
 *  - an error text never contains the value of client_secret when the
 *    input has one (secrets stay out of messages).
 * A failed property aborts, which libFuzzer reports as a crash.
 */
/* purge_internal.h pulls in <uv.h>, which needs POSIX declarations. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "donut/common.h"
#include "purge_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

static void check_value(const char *v) {
  size_t n = strlen(v);
  CHECK(n > 0);
  CHECK(!strchr(v, '\r') && !strchr(v, '\n'));
  CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const char *const sections[] = {"default", "ccu", NULL};
  const char *section = sections[data[0] % 3];
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  dn_purge_akamai_options o;
  dn_purge_akamai_options_init(&o);
  char *buf = NULL;
  dn_error err;
  int rc = dn__edgerc_parse(text, len, section, &o, &buf, &err);
  CHECK(rc == 0 || rc == DN_ECONFIG || rc == DN_ENOMEM);
  if (rc == 0) {
    CHECK(buf != NULL);
    check_value(o.host);
    check_value(o.client_token);
    check_value(o.client_secret);
    check_value(o.access_token);
    CHECK(strlen(o.client_secret) < 8 || !strstr(err.text, o.client_secret));
  } else {
    CHECK(buf == NULL);
    CHECK(memchr(err.text, '\0', sizeof err.text) != NULL);
  }
  dn_free(buf);
  return 0;
}
