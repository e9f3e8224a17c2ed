/* fuzz_cdn_config.c - libFuzzer target for the JSON CDN configuration.
 *
 * Parses arbitrary bytes as a configuration (no environment). Checks:
 *  - no crash; the result is 0 or one of the documented codes;
 *  - on failure nothing is returned and the error text is terminated;
 *  - on success the profile is a known one, the purger name is one of the
 *    built-in backends or none, and the one-line description has no
 *    control bytes and never shows a token: every token key reads
 *    "(set)" (a value containing " fastly.token=x" must not forge one).
 * Relative .edgerc paths resolve against a directory that does not
 * exist, so the target never reads the machine's files.
 * A failed property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "donut/purge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dn_cdn_config *c = NULL;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_cdn_config_parse((const char *)data, size,
                               "/nonexistent-fuzz-dir", &c, &err);
  CHECK(rc == 0 || rc == DN_EJSON || rc == DN_ECONFIG || rc == DN_EIO ||
        rc == DN_ENOMEM);
  if (rc) {
    CHECK(c == NULL);
    CHECK(memchr(err.text, '\0', sizeof err.text) != NULL);
    return 0;
  }
  CHECK(strcmp(dn_cdn_profile_name(dn_cdn_config_profile(c)), "unknown"));
  const char *p = dn_cdn_config_purger(c);
  CHECK(!p || !strcmp(p, "varnish") || !strcmp(p, "fastly") ||
        !strcmp(p, "cloudflare") || !strcmp(p, "akamai") ||
        !strcmp(p, "webhook"));
  char desc[2048];
  dn_cdn_config_describe(c, desc, sizeof desc);
  CHECK(strlen(desc) < sizeof desc);
  /* Values are sanitised, so " key=" can only be the key itself. */
  for (const char *c = desc; *c; c++)
    CHECK((unsigned char)*c > 0x20 || *c == ' ');
  static const char *const keys[] = {" fastly.token=", " cloudflare.token="};
  for (int k = 0; k < 2; k++)
    for (const char *t = strstr(desc, keys[k]); t; t = strstr(t + 1, keys[k]))
      CHECK(strncmp(t + strlen(keys[k]), "(set)", 5) == 0 &&
            (t[strlen(keys[k]) + 5] == ' ' || !t[strlen(keys[k]) + 5]));
  dn_cdn_config_free(c);
  return 0;
}
