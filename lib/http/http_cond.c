/* http_cond.c - conditional requests (RFC 9110 §13).
 *
 * dn_http_preconditions() follows the evaluation order of §13.2.2:
 *   1. If-Match            (strong comparison; false -> 412)
 *   2. If-Unmodified-Since (only without If-Match; false -> 412)
 *   3. If-None-Match       (weak comparison; false -> 304 for GET/HEAD,
 *                           412 otherwise)
 *   4. If-Modified-Since   (GET/HEAD only, without If-None-Match;
 *                           false -> 304)
 *   5. If-Range            (not evaluated: donut never sends 206)
 *   6. perform the method  -> 200
 * A malformed entity-tag list never matches; a date that is not a valid
 * HTTP-date (or is a list of dates) makes its field ignored (§13.1.3,
 * §13.1.4), as does a missing Last-Modified.
 */
#include "http_etag.h"
#include "http_util.h"

static int is_get_or_head(dn_slice method) {
  return dn__http_eq(method, "GET") || dn__http_eq(method, "HEAD");
}

/* Reads the single date of a date field. Returns 1 with *t set, or 0 when
 * the field is absent, repeated (more than one member) or invalid. */
static int field_date(const dn_http_request *req, const char *name, int64_t now,
                      int64_t *t) {
  if (dn__http_field_count(req, name) != 1)
    return 0;
  dn_slice v;
  if (dn__http_field_first(req, name, &v))
    return 0;
  return dn_http_date_parse(v.ptr, v.len, now, t, NULL) == 0;
}

/* Step 1. Returns 1 to continue, 0 when the condition is false. */
static int if_match_ok(int r) {
  /* §13.1.1: "*" is true when a current representation exists (which the
   * caller's 2xx says); otherwise true only on a strong match. */
  return r == DN__ETAG_STAR || r == DN__ETAG_MATCH;
}

int dn_http_preconditions(const dn_http_request *req, const dn_http_etag *etag,
                          int64_t last_modified, int64_t now) {
  int64_t t;
  int r = dn__http_etag_fields_match(req, "If-Match", etag, 1);
  if (r != DN__ETAG_ABSENT) {
    if (!if_match_ok(r))
      return 412;
  } else if (last_modified != DN_HTTP_UNSET &&
             field_date(req, "If-Unmodified-Since", now, &t)) {
    /* §13.2.2 step 2: true when last modified <= the date. */
    if (last_modified > t)
      return 412;
  }
  r = dn__http_etag_fields_match(req, "If-None-Match", etag, 0);
  if (r != DN__ETAG_ABSENT) {
    /* §13.1.2: false when "*" and a representation exists, or when a
     * listed tag matches weakly. */
    if (r == DN__ETAG_STAR || r == DN__ETAG_MATCH)
      return is_get_or_head(req->method) ? 304 : 412;
    return 200;
  }
  if (is_get_or_head(req->method) && last_modified != DN_HTTP_UNSET &&
      field_date(req, "If-Modified-Since", now, &t)) {
    /* §13.2.2 step 4: false (-> 304) when last modified <= the date. */
    if (last_modified <= t)
      return 304;
  }
  return 200;
}

int dn_http_if_range(const char *value, size_t len, const dn_http_etag *etag,
                     int64_t last_modified, int64_t now) {
  /* §13.1.5: If-Range = entity-tag / HTTP-date. An entity-tag starts with
   * DQUOTE or "W/"; it must match strongly. A date must exactly match a
   * Last-Modified that is itself a strong validator, which we cannot tell
   * here, so an exact match is required. */
  dn_slice v = dn__http_trim(value ? value : "", value ? len : 0);
  if (v.len &&
      (v.ptr[0] == '"' || (v.len > 1 && v.ptr[0] == 'W' && v.ptr[1] == '/'))) {
    dn_http_etag tag;
    if (!etag || dn_http_etag_parse(v.ptr, v.len, &tag, NULL))
      return 0;
    return dn_http_etag_match(tag, *etag, 1);
  }
  int64_t t;
  if (last_modified == DN_HTTP_UNSET ||
      dn_http_date_parse(v.ptr, v.len, now, &t, NULL))
    return 0;
  return t == last_modified;
}
