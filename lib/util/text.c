/* text.c - small text helpers every layer shares (see text.h).
 *
 * Each is written once here, byte by byte with explicit ranges rather than
 * <ctype.h>, so the result never depends on the locale.
 */
#include <stdio.h>
#include <string.h>

#include "text.h"
#include "donut/common.h"

/* ---- hex ----------------------------------------------------------------- */

size_t dn__hex_encode(char *out, const void *in, size_t n, unsigned flags) {
  const char *digits =
      flags & DN__HEX_UPPER ? "0123456789ABCDEF" : "0123456789abcdef";
  const unsigned char *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return 2 * n;
}

int dn__hex_value(int c, unsigned flags) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F' && !(flags & DN__HEX_LOWER_ONLY))
    return c - 'A' + 10;
  return -1;
}

const char *dn__byte_show(char c, char buf[8]) {
  unsigned char u = (unsigned char)c;
  if (u >= 0x20 && u < 0x7F) {
    buf[0] = '\'';
    buf[1] = (char)u;
    buf[2] = '\'';
    buf[3] = '\0';
  } else {
    buf[0] = '0';
    buf[1] = 'x';
    buf[2 + dn__hex_encode(buf + 2, &u, 1, DN__HEX_UPPER)] = '\0';
  }
  return buf;
}

int dn__hex_decode(void *out, const char *s, size_t n, unsigned flags) {
  if (n % 2)
    return DN_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (dn__hex_value(s[i], flags) < 0)
      return DN_EINVAL;
  unsigned char *o = out;
  for (size_t i = 0; i < n; i += 2)
    o[i / 2] = (unsigned char)(dn__hex_value(s[i], flags) << 4 |
                               dn__hex_value(s[i + 1], flags));
  return 0;
}

/* ---- percent-decoding ---------------------------------------------------- */

int dn__percent_decode(const char *s, size_t n, unsigned flags, dn__buf *out) {
  if (n == 0)
    return 0;
  int rc = dn__buf_reserve(out, n);
  if (rc)
    return rc;
  char *d = out->data + out->len;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (n - i >= 3 && dn__hex_decode(&c, s + i + 1, 2, 0) == 0) {
        i += 2;
      } else if (!(flags & DN__PCT_KEEP_BAD)) {
        d[0] = '\0'; /* the NUL that ended out before */
        return DN_EURI;
      }
    } else if (c == '+' && (flags & DN__PCT_PLUS_SPACE)) {
      c = ' ';
    }
    d[o++] = (char)c;
  }
  out->len += o;
  out->data[out->len] = '\0';
  return 0;
}

/* ---- formatting and log lines -------------------------------------------- */

size_t dn__vformat(char *out, size_t cap, const char *fmt, va_list ap) {
  int n = vsnprintf(out, cap, fmt, ap);
  if (n < 0) { /* an encoding error: keep what was written before it */
    out[cap - 1] = '\0';
    return strlen(out);
  }
  return (size_t)n < cap ? (size_t)n : cap - 1;
}

void dn__log_emit(dn__log_fn cb, void *ud, int level, size_t cap,
                  const char *fmt, va_list ap) {
  if (!cb)
    return;
  char line[DN__LOG_LINE_MAX];
  dn__vformat(line, cap < sizeof line ? cap : sizeof line, fmt, ap);
  cb(ud, level, line);
}
