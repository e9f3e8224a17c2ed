/* uritpl.c - placeholder; replaced by the URI template module. */
#include "donut/uritpl.h"
int dn_uritpl_expand_str(const char *tpl, size_t tpl_len, const char *vars_json,
                         size_t vars_len, char **out, size_t *out_len,
                         dn_error *err) {
  (void)tpl; (void)tpl_len; (void)vars_json; (void)vars_len; (void)out;
  (void)out_len; (void)err;
  return DN_ENOTSUP;
}
int dn_uri_tags_from_rows(const char *tpl, size_t tpl_len,
                          const char *rows_json, size_t rows_len,
                          dn_strings *out, dn_error *err) {
  (void)tpl; (void)tpl_len; (void)rows_json; (void)rows_len; (void)out;
  (void)err;
  return DN_ENOTSUP;
}
