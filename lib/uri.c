/* uri.c - placeholder; replaced by the URI module. */
#include "donut/uri.h"
int dn_uri_normalize(const char *uri, size_t len, char **out, size_t *out_len,
                     dn_error *err) {
  (void)uri; (void)len; (void)out; (void)out_len; (void)err;
  return DN_ENOTSUP;
}
int dn_uri_tag(const char *uri, size_t len, char out[DN_URI_TAG_MAX + 1],
               size_t *out_len, dn_error *err) {
  (void)uri; (void)len; (void)out; (void)out_len; (void)err;
  return DN_ENOTSUP;
}
void dn_strings_free(dn_strings *s) { (void)s; }
