/* http_util.c - character classes, trimming and field lookup for the http
 * layer (see http_util.h).
 *
 * Every function works on (pointer, length) input that need not be
 * NUL-terminated, never reads past it, and never allocates.
 */
#include <string.h>

#include "http_util.h"

int dn__http_is_tchar(unsigned char c) {
  /* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
   *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

dn_slice dn__http_trim(const char *s, size_t len) {
  while (len && dn__http_is_ows((unsigned char)s[0])) {
    s++;
    len--;
  }
  while (len && dn__http_is_ows((unsigned char)s[len - 1]))
    len--;
  dn_slice out = {s, len};
  return out;
}

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int dn__http_ci_eq_slice(dn_slice a, dn_slice b) {
  if (a.len != b.len)
    return 0;
  for (size_t i = 0; i < a.len; i++)
    if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b.ptr[i]))
      return 0;
  return 1;
}

int dn__http_ci_eq(dn_slice a, const char *b) {
  dn_slice s = {b, strlen(b)};
  return dn__http_ci_eq_slice(a, s);
}

int dn__http_eq(dn_slice a, const char *b) {
  size_t n = strlen(b);
  return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

int dn__http_skip_quoted(const char *s, size_t len, size_t *pos) {
  /* RFC 9110 §5.6.4:
   *   quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
   *   qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
   *   quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text ) */
  size_t i = *pos + 1;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"') {
      *pos = i + 1;
      return 0;
    }
    if (c == '\\') {
      if (i + 1 >= len)
        break;
      unsigned char e = (unsigned char)s[i + 1];
      if (e != '\t' && (e < 0x20 || e == 0x7f)) {
        *pos = i + 1;
        return DN_EHEADER;
      }
      i += 2;
      continue;
    }
    if (c != '\t' && (c < 0x20 || c == 0x7f)) {
      *pos = i;
      return DN_EHEADER;
    }
    i++;
  }
  *pos = len;
  return DN_EHEADER;
}

size_t dn__http_field_count(const dn_http_request *req, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < req->field_count; i++)
    if (dn__http_ci_eq(req->fields[i].name, name))
      n++;
  return n;
}

int dn__http_field_first(const dn_http_request *req, const char *name,
                         dn_slice *value) {
  for (size_t i = 0; i < req->field_count; i++) {
    if (!dn__http_ci_eq(req->fields[i].name, name))
      continue;
    *value = dn__http_trim(req->fields[i].value.ptr, req->fields[i].value.len);
    return 0;
  }
  return DN_ENOTFOUND;
}

int dn__http_delta_seconds(const char *s, size_t len, int64_t *out) {
  /* RFC 9111 §1.2.2: delta-seconds = 1*DIGIT; a value greater than the
   * greatest integer a cache can represent is taken as 2^31. */
  if (len == 0)
    return DN_EHEADER;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return DN_EHEADER;
    if (v < DN__HTTP_DELTA_MAX)
      v = v * 10 + (s[i] - '0');
  }
  *out = v > DN__HTTP_DELTA_MAX ? DN__HTTP_DELTA_MAX : v;
  return 0;
}
