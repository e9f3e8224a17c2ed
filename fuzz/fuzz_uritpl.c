/* fuzz_uritpl.c - libFuzzer target for RFC 6570 templates.
 *
 * The input is a template, a NUL byte, then JSON text (variables, or rows
 * when it is an array); without a NUL the variables are "{}". Checks:
 *  - nothing crashes or leaks, whatever the bytes;
 *  - a rejected template reports DN_ETEMPLATE at a position inside it;
 *  - an expansion holds only URI characters (RFC 3986 unreserved and
 *    reserved, and '%' only as the start of a pct-triplet): literals are
 *    encoded as RFC 6570 §3.1 asks, so even they never add other bytes;
 *  - expanding twice gives the same bytes, and a failed expansion leaves
 *    the caller's buffer as it was;
 *  - every real number's text reads back as the same double.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "donut.h"
#include "uritpl.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      __builtin_trap();                                                        \
  } while (0)

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
         (c >= 'a' && c <= 'f');
}

static int is_uri_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("-._~:/?#[]@!$&'()*+,;=", c));
}

static void check_uri_chars(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      CHECK(n - i >= 3 && is_hex(s[i + 1]) && is_hex(s[i + 2]));
      i += 2;
    } else {
      CHECK(is_uri_char(s[i]));
    }
  }
}

static void check_numbers(json_t *vars) {
  const char *key;
  json_t *v;
  char text[DN__URITPL_NUM_MAX];
  json_object_foreach(vars, key, v) {
    if (!json_is_real(v))
      continue;
    size_t n = dn__uritpl_number_text(v, text);
    CHECK(n == strlen(text) && strtod(text, NULL) == json_real_value(v));
  }
}

static void expand_object(const dn_uritpl *t, json_t *vars) {
  dn__buf a, b;
  dn__buf_init(&a, 1 << 16);
  dn__buf_init(&b, 1 << 16);
  int rc = dn__buf_append(&b, "keep", 4);
  CHECK(rc == 0);
  rc = dn__uritpl_expand_json(t, vars, &a, NULL);
  int rc2 = dn__uritpl_expand_json(t, vars, &b, NULL);
  CHECK(rc == rc2);
  if (rc == 0) {
    check_uri_chars(a.data ? a.data : "", a.len);
    CHECK(b.len == a.len + 4 &&
          memcmp(b.data + 4, a.data ? a.data : "", a.len) == 0);
  } else {
    CHECK(rc == DN_ETEMPLATE || rc == DN_ETOOBIG);
    CHECK(b.len == 4 && memcmp(b.data, "keep", 4) == 0);
  }
  dn__buf_free(&a);
  dn__buf_free(&b);
  check_numbers(vars);
}

static void tags_from_rows(const dn_uritpl *t, json_t *rows) {
  dn_strings out = {0};
  if (dn__uritpl_tags_from_json(t, rows, &out, NULL) == 0) {
    CHECK(out.count <= json_array_size(rows));
    for (size_t i = 0; i < out.count; i++)
      CHECK(out.lens[i] == strlen(out.items[i]) &&
            out.lens[i] <= DN_URI_TAG_MAX);
  }
  dn_strings_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *nul = memchr(s, '\0', size);
  size_t tlen = nul ? (size_t)(nul - s) : size;
  dn_uritpl *t = NULL;
  dn_error err;
  int rc = dn_uritpl_parse(s, tlen, &t, &err);
  if (rc) {
    CHECK(rc == DN_ETEMPLATE && err.code == rc && err.position <= tlen);
    CHECK(memchr(err.text, '\0', sizeof err.text) != NULL);
    return 0;
  }
  json_t *vars =
      nul ? json_loadb(nul + 1, size - tlen - 1, 0, NULL) : json_object();
  if (json_is_object(vars))
    expand_object(t, vars);
  else if (json_is_array(vars))
    tags_from_rows(t, vars);
  json_decref(vars);
  /* The public path: JSON text in, owned string out. */
  char *out = NULL;
  size_t out_len = 0;
  if (nul && dn_uritpl_expand(t, nul + 1, size - tlen - 1, &out, &out_len,
                              &err) == 0) {
    CHECK(strlen(out) == out_len);
    check_uri_chars(out, out_len);
    dn_free(out);
  }
  dn_uritpl_free(t);
  return 0;
}
