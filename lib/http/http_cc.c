/* http_cc.c - Cache-Control parsing and generation (RFC 9111 §5.2).
 *
 *   Cache-Control   = #cache-directive
 *   cache-directive = token [ "=" ( token / quoted-string ) ]
 *
 * Directive names are case-insensitive (§5.2). The parser validates the
 * whole list before it changes the caller's struct, keeps the directives
 * donut uses and ignores the others (§5.2.3: unrecognised directives MUST
 * be ignored). The generator writes directives in a fixed order separated
 * by ", ", which is valid both as Cache-Control and as an RFC 8941
 * dictionary, the syntax RFC 9213 requires of CDN-Cache-Control.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "http_util.h"

typedef struct {
  const char *name;
  unsigned flag;
} flag_directive;

static const flag_directive flag_directives[] = {
    {"no-store", DN_HTTP_CC_NO_STORE},
    {"no-cache", DN_HTTP_CC_NO_CACHE},
    {"private", DN_HTTP_CC_PRIVATE},
    {"public", DN_HTTP_CC_PUBLIC},
    {"must-revalidate", DN_HTTP_CC_MUST_REVALIDATE},
    {"proxy-revalidate", DN_HTTP_CC_PROXY_REVALIDATE},
    {"no-transform", DN_HTTP_CC_NO_TRANSFORM},
    {"immutable", DN_HTTP_CC_IMMUTABLE},
    {"must-understand", DN_HTTP_CC_MUST_UNDERSTAND},
};

void dn_http_cc_init(dn_http_cc *cc) {
  cc->flags = 0;
  cc->max_age = DN_HTTP_UNSET;
  cc->s_maxage = DN_HTTP_UNSET;
  cc->stale_while_revalidate = DN_HTTP_UNSET;
  cc->stale_if_error = DN_HTTP_UNSET;
}

/* Returns the duration field a directive name selects, or NULL. */
static int64_t *duration_field(dn_http_cc *cc, dn_slice name) {
  if (dn__http_ci_eq(name, "max-age"))
    return &cc->max_age;
  if (dn__http_ci_eq(name, "s-maxage"))
    return &cc->s_maxage;
  if (dn__http_ci_eq(name, "stale-while-revalidate"))
    return &cc->stale_while_revalidate;
  if (dn__http_ci_eq(name, "stale-if-error"))
    return &cc->stale_if_error;
  return NULL;
}

/* Applies one directive. `value` excludes the quotes of a quoted-string;
 * `has_value` says whether "=" was present. */
static void apply(dn_http_cc *cc, dn_slice name, dn_slice value,
                  int has_value) {
  for (size_t i = 0; i < sizeof flag_directives / sizeof *flag_directives;
       i++) {
    if (dn__http_ci_eq(name, flag_directives[i].name)) {
      cc->flags |= flag_directives[i].flag;
      return;
    }
  }
  int64_t *field = duration_field(cc, name);
  if (!field)
    return; /* §5.2.3: unknown directives are ignored */
  /* §4.2.1: invalid freshness information (a missing or non-integer
   * value) should make the response stale, so it counts as 0. A repeated
   * directive keeps the more restrictive (smaller) value. */
  int64_t v = 0;
  if (!has_value || dn__http_delta_seconds(value.ptr, value.len, &v))
    v = 0;
  if (*field == DN_HTTP_UNSET || v < *field)
    *field = v;
}

/* Scans `token [ "=" ( token / quoted-string ) ]` at s[*pos]. */
static int scan_directive(const char *s, size_t len, size_t *pos,
                          dn_slice *name, dn_slice *value, int *has_value,
                          dn_error *err) {
  size_t i = *pos, start = i;
  while (i < len && dn__http_is_tchar((unsigned char)s[i]))
    i++;
  if (i == start)
    return dn__error_set(err, DN_EHEADER, i,
                         "expected a directive name in Cache-Control");
  name->ptr = s + start;
  name->len = i - start;
  *has_value = i < len && s[i] == '=';
  value->ptr = s + i;
  value->len = 0;
  if (*has_value) {
    start = ++i;
    if (i < len && s[i] == '"') {
      if (dn__http_skip_quoted(s, len, &i))
        return dn__error_set(err, DN_EHEADER, i,
                             "invalid quoted-string in Cache-Control");
      value->ptr = s + start + 1;
      value->len = i - start - 2;
    } else {
      while (i < len && dn__http_is_tchar((unsigned char)s[i]))
        i++;
      if (i == start)
        return dn__error_set(err, DN_EHEADER, i,
                             "expected a value after '=' in Cache-Control");
      value->ptr = s + start;
      value->len = i - start;
    }
  }
  *pos = i;
  return 0;
}

int dn_http_cc_parse(const char *s, size_t len, dn_http_cc *cc, dn_error *err) {
  if (!s) {
    s = "";
    len = 0;
  }
  dn_http_cc tmp = *cc;
  size_t i = 0;
  for (;;) {
    /* #rule: empty elements and OWS around commas are allowed. */
    while (i < len && (s[i] == ',' || dn__http_is_ows((unsigned char)s[i])))
      i++;
    if (i >= len)
      break;
    dn_slice name = {s, 0}, value = {s, 0};
    int has_value = 0;
    int rc = scan_directive(s, len, &i, &name, &value, &has_value, err);
    if (rc)
      return rc;
    while (i < len && dn__http_is_ows((unsigned char)s[i]))
      i++;
    if (i < len && s[i] != ',')
      return dn__error_set(err, DN_EHEADER, i,
                           "expected ',' between Cache-Control directives");
    apply(&tmp, name, value, has_value);
  }
  *cc = tmp;
  return 0;
}

static int64_t clamp(int64_t v) {
  if (v < 0)
    return 0;
  return v > DN__HTTP_DELTA_MAX ? DN__HTTP_DELTA_MAX : v;
}

/* Appends ", " (when not first) and the directive. The caller's buffer
 * is large enough for every directive at once (DN_HTTP_CC_MAX). */
static size_t put(char *out, size_t n, const char *name, int64_t v) {
  if (n) {
    memcpy(out + n, ", ", 2);
    n += 2;
  }
  size_t k = strlen(name);
  memcpy(out + n, name, k);
  n += k;
  if (v != DN_HTTP_UNSET) {
    char num[24];
    int m = snprintf(num, sizeof num, "=%lld", (long long)clamp(v));
    memcpy(out + n, num, (size_t)m);
    n += (size_t)m;
  }
  out[n] = '\0';
  return n;
}

void dn_http_cc_format(const dn_http_cc *cc, char out[DN_HTTP_CC_MAX + 1],
                       size_t *len) {
  size_t n = 0;
  unsigned f = cc->flags;
  out[0] = '\0';
  if (f & DN_HTTP_CC_PUBLIC)
    n = put(out, n, "public", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_PRIVATE)
    n = put(out, n, "private", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_NO_CACHE)
    n = put(out, n, "no-cache", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_NO_STORE)
    n = put(out, n, "no-store", DN_HTTP_UNSET);
  if (cc->max_age != DN_HTTP_UNSET)
    n = put(out, n, "max-age", cc->max_age);
  if (cc->s_maxage != DN_HTTP_UNSET)
    n = put(out, n, "s-maxage", cc->s_maxage);
  if (f & DN_HTTP_CC_MUST_REVALIDATE)
    n = put(out, n, "must-revalidate", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_PROXY_REVALIDATE)
    n = put(out, n, "proxy-revalidate", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_MUST_UNDERSTAND)
    n = put(out, n, "must-understand", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_NO_TRANSFORM)
    n = put(out, n, "no-transform", DN_HTTP_UNSET);
  if (f & DN_HTTP_CC_IMMUTABLE)
    n = put(out, n, "immutable", DN_HTTP_UNSET);
  if (cc->stale_while_revalidate != DN_HTTP_UNSET)
    n = put(out, n, "stale-while-revalidate", cc->stale_while_revalidate);
  if (cc->stale_if_error != DN_HTTP_UNSET)
    n = put(out, n, "stale-if-error", cc->stale_if_error);
  if (len)
    *len = n;
}
