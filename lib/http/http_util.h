/* http_util.h - small helpers shared by the http_*.c modules.
 *
 * Character classes of RFC 9110 §5.6, whitespace trimming, case-insensitive
 * comparison, quoted-string scanning and the lookup of request fields that
 * may be spread over several lines. Nothing here allocates.
 */
#ifndef DN_HTTP_UTIL_H
#define DN_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "donut/http.h"

/* RFC 9110 §5.6.2: tchar. */
int dn__http_is_tchar(unsigned char c);

/* RFC 9110 §5.6.3: OWS is SP or HTAB. */
static inline int dn__http_is_ows(unsigned char c) {
  return c == ' ' || c == '\t';
}

/* Returns s without leading and trailing SP/HTAB. */
dn_slice dn__http_trim(const char *s, size_t len);

/* 1 when a equals the NUL-terminated b, ignoring ASCII case. */
int dn__http_ci_eq(dn_slice a, const char *b);

/* 1 when the two slices are equal, ignoring ASCII case. */
int dn__http_ci_eq_slice(dn_slice a, dn_slice b);

/* 1 when a equals b exactly. */
int dn__http_eq(dn_slice a, const char *b);

/* Scans an RFC 9110 §5.6.4 quoted-string starting at s[*pos] (which must be
 * a DQUOTE) and leaves *pos after the closing DQUOTE. Returns 0, or
 * DN_EHEADER with *pos at the offending byte. */
int dn__http_skip_quoted(const char *s, size_t len, size_t *pos);

/* Counts the fields named `name` among req's fields. */
size_t dn__http_field_count(const dn_http_request *req, const char *name);

/* The value of the first field named `name`, trimmed; 0 or DN_ENOTFOUND. */
int dn__http_field_first(const dn_http_request *req, const char *name,
                         dn_slice *value);

/* Saturating conversion of a non-negative decimal string (1*DIGIT) to the
 * RFC 9111 §1.2.2 delta-seconds range: values above 2^31 give 2^31.
 * Returns 0, or DN_EHEADER when s is empty or has a non-digit. */
int dn__http_delta_seconds(const char *s, size_t len, int64_t *out);

/* The largest delta-seconds value (RFC 9111 §1.2.2). */
#define DN__HTTP_DELTA_MAX ((int64_t)2147483648LL)

#endif
