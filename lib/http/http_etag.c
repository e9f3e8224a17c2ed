/* http_etag.c - entity-tags: parsing, lists, comparison (RFC 9110 §8.8.3).
 *
 *   entity-tag = [ weak ] opaque-tag
 *   weak       = %s"W/"
 *   opaque-tag = DQUOTE *etagc DQUOTE
 *   etagc      = %x21 / %x23-7E / obs-text
 *
 * An opaque-tag is not a quoted-string: a backslash is an ordinary byte and
 * a comma may appear inside the quotes, so lists are split by a small
 * scanner rather than on commas. Lists follow the #rule of RFC 9110 §5.6.1,
 * which obliges recipients to accept empty elements and optional
 * whitespace. Nothing here allocates.
 */
#include <string.h>

#include "error.h"
#include "http_etag.h"
#include "http_util.h"

static int is_etagc(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

int dn__http_etagc_valid(const char *s, size_t len, size_t *bad) {
  for (size_t i = 0; i < len; i++) {
    if (!is_etagc((unsigned char)s[i])) {
      if (bad)
        *bad = i;
      return 0;
    }
  }
  return 1;
}

/* Scans one entity-tag at s[*pos]; leaves *pos after it. */
static int scan_tag(const char *s, size_t len, size_t *pos, dn_http_etag *out,
                    dn_error *err) {
  size_t i = *pos;
  int weak = 0;
  if (len - i >= 2 && s[i] == 'W' && s[i + 1] == '/') {
    weak = 1;
    i += 2;
  }
  if (i >= len || s[i] != '"')
    return dn__error_set(err, DN_EHEADER, i,
                         "expected '\"' to open an "
                         "entity-tag");
  size_t start = ++i;
  while (i < len && s[i] != '"') {
    if (!is_etagc((unsigned char)s[i]))
      return dn__error_set(err, DN_EHEADER, i,
                           "byte 0x%02x is not allowed in an entity-tag",
                           (unsigned char)s[i]);
    i++;
  }
  if (i >= len)
    return dn__error_set(err, DN_EHEADER, i, "unterminated entity-tag");
  out->opaque.ptr = s + start;
  out->opaque.len = i - start;
  out->weak = weak;
  *pos = i + 1;
  return 0;
}

/* The list iterator: returns 1 with the next tag, 0 at the end, or
 * DN_EHEADER. #rule: *( "," OWS ) element *( OWS "," [ OWS element ] ). */
static int next_tag(const char *s, size_t len, size_t *pos, dn_http_etag *tag,
                    dn_error *err) {
  size_t i = *pos;
  while (i < len && (s[i] == ',' || dn__http_is_ows((unsigned char)s[i])))
    i++;
  if (i >= len) {
    *pos = i;
    return 0;
  }
  int rc = scan_tag(s, len, &i, tag, err);
  if (rc)
    return rc;
  while (i < len && dn__http_is_ows((unsigned char)s[i]))
    i++;
  if (i < len && s[i] != ',')
    return dn__error_set(err, DN_EHEADER, i,
                         "expected ',' between entity-tags");
  *pos = i;
  return 1;
}

int dn_http_etag_parse(const char *s, size_t len, dn_http_etag *out,
                       dn_error *err) {
  if (!s)
    return dn__error_set(err, DN_EHEADER, 0, "empty entity-tag");
  size_t i = 0;
  while (i < len && dn__http_is_ows((unsigned char)s[i]))
    i++;
  dn_http_etag tag;
  int rc = scan_tag(s, len, &i, &tag, err);
  if (rc)
    return rc;
  while (i < len && dn__http_is_ows((unsigned char)s[i]))
    i++;
  if (i != len)
    return dn__error_set(err, DN_EHEADER, i,
                         "unexpected text after the entity-tag");
  *out = tag;
  return 0;
}

static int is_star(const char *s, size_t len) {
  dn_slice v = dn__http_trim(s, len);
  return v.len == 1 && v.ptr[0] == '*';
}

int dn_http_etag_list_parse(const char *s, size_t len, dn_http_etag *tags,
                            size_t cap, size_t *count, int *star,
                            dn_error *err) {
  if (!s) {
    s = "";
    len = 0;
  }
  if (is_star(s, len)) {
    *star = 1;
    *count = 0;
    return 0;
  }
  size_t pos = 0, n = 0;
  dn_http_etag tag;
  int rc;
  while ((rc = next_tag(s, len, &pos, &tag, err)) == 1) {
    if (n < cap && tags)
      tags[n] = tag;
    n++;
  }
  if (rc < 0)
    return rc;
  *star = 0;
  *count = n;
  return 0;
}

int dn_http_etag_match(dn_http_etag a, dn_http_etag b, int strong) {
  /* RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak
   * comparison ignores the weak indicator. */
  if (strong && (a.weak || b.weak))
    return 0;
  return a.opaque.len == b.opaque.len &&
         (a.opaque.len == 0 ||
          memcmp(a.opaque.ptr, b.opaque.ptr, a.opaque.len) == 0);
}

int dn_http_etag_format(dn_http_etag tag, char *out, size_t cap, size_t *len) {
  if (!dn__http_etagc_valid(tag.opaque.ptr, tag.opaque.len, NULL))
    return DN_EHEADER;
  size_t need = tag.opaque.len + 2 + (tag.weak ? 2 : 0);
  if (!out || need + 1 > cap)
    return DN_ETOOBIG;
  size_t i = 0;
  if (tag.weak) {
    out[i++] = 'W';
    out[i++] = '/';
  }
  out[i++] = '"';
  if (tag.opaque.len)
    memcpy(out + i, tag.opaque.ptr, tag.opaque.len);
  i += tag.opaque.len;
  out[i++] = '"';
  out[i] = '\0';
  if (len)
    *len = i;
  return 0;
}

/* Evaluates one field line; updates *found. Returns 0 or DN_EHEADER. */
static int match_line(dn_slice v, const dn_http_etag *current, int strong,
                      int *found) {
  size_t pos = 0;
  dn_http_etag tag;
  int rc;
  while ((rc = next_tag(v.ptr, v.len, &pos, &tag, NULL)) == 1)
    if (current && dn_http_etag_match(tag, *current, strong))
      *found = 1;
  return rc;
}

int dn__http_etag_fields_match(const dn_http_request *req, const char *name,
                               const dn_http_etag *current, int strong) {
  size_t lines = 0, stars = 0;
  int found = 0;
  for (size_t i = 0; i < req->field_count; i++) {
    const dn_http_field *f = &req->fields[i];
    if (!dn__http_ci_eq(f->name, name))
      continue;
    lines++;
    if (is_star(f->value.ptr, f->value.len)) {
      stars++;
      continue;
    }
    if (match_line(f->value, current, strong, &found) < 0)
      return DN__ETAG_MALFORMED;
  }
  if (lines == 0)
    return DN__ETAG_ABSENT;
  if (stars)
    return stars == 1 && lines == 1 ? DN__ETAG_STAR : DN__ETAG_MALFORMED;
  return found ? DN__ETAG_MATCH : DN__ETAG_NOMATCH;
}
