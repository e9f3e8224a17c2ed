/* origin_policy.c - the caching decision for an upstream response.
 *
 * One pass over the fields (scan_fields) parses Cache-Control with
 * dn_http_cc_parse, splits Surrogate-Control into its un-targeted
 * directives and hands those to dn_http_cc_parse as well, and remembers
 * the singleton fields (Expires, Date, Age, Content-Type). The rules of
 * origin_policy.h then run in order over that summary: refusal() for the
 * rules that forbid storage, lifetime() for freshness. Vary names are
 * collected for every response; tags only for one that will be stored.
 * Tags are de-duplicated through a small open-addressing table on the
 * stack, so a response with many repeated tags costs linear time.
 */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "donut/uri.h"
#include "error.h"
#include "origin_policy.h"
#include "vec.h"

/* ---- slices -------------------------------------------------------------- */

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* RFC 9110 §5.6.3: s without leading and trailing OWS. */
static dn_slice trim(const char *s, size_t len) {
  while (len && is_ows((unsigned char)s[0])) {
    s++;
    len--;
  }
  while (len && is_ows((unsigned char)s[len - 1]))
    len--;
  dn_slice out = {s, len};
  return out;
}

/* 1 when a equals the NUL-terminated b, ignoring ASCII case. */
static int ci_eq(dn_slice a, const char *b) {
  size_t n = strlen(b);
  if (a.len != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b[i]))
      return 0;
  return 1;
}

static void free_strings(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    dn__free(v[i]);
  dn__free(v);
}

/* ---- one pass over the fields -------------------------------------------- */

typedef struct scan {
  dn_http_cc cc; /* every Cache-Control line merged */
  int cc_bad;
  dn_http_cc sc; /* the un-targeted Surrogate-Control directives */
  int sc_bad;
  int sc_esi; /* content="ESI/1.0" among them */
  int set_cookie;
  dn_slice expires, date, age, ctype;
  size_t nexpires, ndate, nage, nctype;
} scan;

/* Finds the end of the list member starting at s[i]: the next ',' outside
 * a quoted-string (RFC 9110 §5.6.4), or len. *semi gets the first ';'
 * outside one, or the end. Returns 0, or -1 for an unterminated string. */
static int member_end(const char *s, size_t len, size_t i, size_t *end,
                      size_t *semi) {
  *semi = SIZE_MAX;
  for (; i < len && s[i] != ','; i++) {
    if (s[i] == '"') {
      for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\')
          i++; /* quoted-pair */
      if (i >= len)
        return -1;
    } else if (s[i] == ';' && *semi == SIZE_MAX) {
      *semi = i;
    }
  }
  *end = i;
  if (*semi == SIZE_MAX)
    *semi = i;
  return 0;
}

/* Edge Architecture §2.2.4: content="ESI/1.0" (a list of capabilities). */
static int has_esi_capability(dn_slice v) {
  if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
    v.ptr++;
    v.len -= 2;
  }
  size_t i = 0;
  while (i < v.len) {
    size_t start = i;
    while (i < v.len && !is_ows((unsigned char)v.ptr[i]) && v.ptr[i] != ',')
      i++;
    dn_slice cap = {v.ptr + start, i - start};
    if (ci_eq(cap, "ESI/1.0"))
      return 1;
    i++;
  }
  return 0;
}

/* One un-targeted Surrogate-Control directive. Returns 0 or -1. */
static int sc_directive(dn_slice d, scan *s) {
  const char *eq = memchr(d.ptr, '=', d.len);
  dn_slice name = trim(d.ptr, eq ? (size_t)(eq - d.ptr) : d.len);
  if (ci_eq(name, "content")) {
    if (!eq)
      return -1;
    s->sc_esi |=
        has_esi_capability(trim(eq + 1, (size_t)(d.ptr + d.len - (eq + 1))));
    return 0;
  }
  if (eq && ci_eq(name, "max-age")) {
    /* §2.2.3: max-age=N+M; the freshness extension M is ignored. */
    dn_slice v = trim(eq + 1, (size_t)(d.ptr + d.len - (eq + 1)));
    const char *plus = memchr(v.ptr, '+', v.len);
    if (plus && v.ptr[0] != '"')
      d.len = (size_t)(plus - d.ptr);
  }
  return dn_http_cc_parse(d.ptr, d.len, &s->sc, NULL) ? -1 : 0;
}

/* Edge Architecture §2.2, §2.3: directives separated by commas, each
 * possibly targeted with ";device-token". Returns 0 or -1. */
static int read_surrogate_control(dn_slice v, scan *s) {
  for (size_t i = 0; i < v.len; i++) {
    size_t end, semi;
    if (member_end(v.ptr, v.len, i, &end, &semi))
      return -1;
    dn_slice d = trim(v.ptr + i, semi - i);
    if (d.len && semi == end && sc_directive(d, s))
      return -1;
    i = end;
  }
  return 0;
}

/* Remembers a singleton field and how many lines it had. */
static void note(dn_slice *slot, size_t *count, dn_slice value) {
  if (++*count == 1)
    *slot = value;
}

static void scan_fields(const dn_http_field *f, size_t n, scan *s) {
  memset(s, 0, sizeof *s);
  dn_http_cc_init(&s->cc);
  dn_http_cc_init(&s->sc);
  for (size_t i = 0; i < n; i++) {
    dn_slice name = f[i].name, value = f[i].value;
    if (ci_eq(name, "Cache-Control")) {
      if (!s->cc_bad && dn_http_cc_parse(value.ptr, value.len, &s->cc, NULL))
        s->cc_bad = 1;
    } else if (ci_eq(name, "Surrogate-Control")) {
      if (!s->sc_bad && read_surrogate_control(value, s))
        s->sc_bad = 1;
    } else if (ci_eq(name, "Set-Cookie")) {
      s->set_cookie = 1;
    } else if (ci_eq(name, "Expires")) {
      note(&s->expires, &s->nexpires, value);
    } else if (ci_eq(name, "Date")) {
      note(&s->date, &s->ndate, value);
    } else if (ci_eq(name, "Age")) {
      note(&s->age, &s->nage, value);
    } else if (ci_eq(name, "Content-Type")) {
      note(&s->ctype, &s->nctype, value);
    }
  }
}

/* ---- Vary ---------------------------------------------------------------- */

/* Adds the lower-cased name unless it is already there. 0 or DN_ENOMEM;
 * *why is set when the list is full. */
static int vary_add(dn__vec *names, dn_slice m, const char **why) {
  for (size_t i = 0; i < names->len; i++)
    if (ci_eq(m, DN__VEC_AT(names, char *, i)))
      return 0;
  if (names->len == DN__ORIGIN_MAX_VARY) {
    *why = "too many Vary names";
    return 0;
  }
  char *copy = dn__strndup(m.ptr, m.len);
  char **slot = copy ? dn__vec_push(names) : NULL;
  if (!slot) {
    dn__free(copy);
    return DN_ENOMEM;
  }
  for (size_t i = 0; i < m.len; i++)
    copy[i] = (char)lower((unsigned char)copy[i]);
  *slot = copy;
  return 0;
}

/* RFC 9110 §12.5.5: Vary = #( "*" / field-name ). Returns 0 or DN_ENOMEM;
 * *why is set when the list cannot be used. */
static int read_vary(const dn_http_field *f, size_t n, dn__vec *names,
                     int *star, const char **why) {
  for (size_t k = 0; k < n && !*why; k++) {
    if (!ci_eq(f[k].name, "Vary"))
      continue;
    dn_slice v = f[k].value;
    size_t i = 0;
    while (i < v.len && !*why) {
      size_t start = i;
      while (i < v.len && v.ptr[i] != ',')
        i++;
      dn_slice m = trim(v.ptr + start, i - start);
      i++;
      if (m.len == 1 && m.ptr[0] == '*')
        *star = 1;
      else if (m.len && dn_http_field_name_validate(m.ptr, m.len, NULL))
        *why = "unparseable Vary";
      else if (m.len && vary_add(names, m, why))
        return DN_ENOMEM;
    }
  }
  return 0;
}

/* ---- the rules ----------------------------------------------------------- */

enum { ST_NEVER, ST_ERROR, ST_HEURISTIC, ST_EXPLICIT };

/* RFC 9110 §15.1 and origin_policy.h rule 1. */
static int status_kind(int status) {
  if (status < 200 || status > 599 || status == 206 || status == 304)
    return ST_NEVER;
  if (status >= 500)
    return ST_ERROR;
  switch (status) {
  case 200:
  case 203:
  case 204:
  case 300:
  case 301:
  case 308:
  case 405:
  case 410:
  case 414:
    return ST_HEURISTIC;
  default:
    return ST_EXPLICIT; /* 404 included, see the header */
  }
}

static int sc_max_age(const scan *s) {
  return !s->sc_bad && s->sc.max_age != DN_HTTP_UNSET;
}

/* Rules 1 to 7: why the response must not be stored, or NULL. */
static const char *refusal(int status, const scan *s, int creds, int vary_star,
                           const char *vary_why) {
  int kind = status_kind(status);
  if (kind == ST_NEVER)
    return "status not storable";
  if (kind == ST_ERROR)
    return "status 5xx";
  if (s->cc_bad)
    return "unparseable Cache-Control";
  if (s->sc_bad)
    return "unparseable Surrogate-Control";
  if (s->cc.flags & DN_HTTP_CC_NO_STORE)
    return "Cache-Control: no-store";
  if (s->sc.flags & DN_HTTP_CC_NO_STORE)
    return "Surrogate-Control: no-store";
  if (s->cc.flags & DN_HTTP_CC_PRIVATE)
    return "Cache-Control: private";
  if (s->set_cookie)
    return "Set-Cookie";
  if (vary_star)
    return "Vary: *";
  if (vary_why)
    return vary_why;
  if (creds && !(s->cc.flags & DN_HTTP_CC_PUBLIC) &&
      s->cc.s_maxage == DN_HTTP_UNSET && !sc_max_age(s))
    return "credentials without public or s-maxage";
  if ((s->cc.flags & DN_HTTP_CC_NO_CACHE) && !sc_max_age(s))
    return "Cache-Control: no-cache";
  return NULL;
}

/* RFC 9111 §4.2.3: age_value, 0 when absent or invalid. */
static int64_t age_value(const scan *s) {
  if (s->nage != 1)
    return 0;
  dn_slice v = trim(s->age.ptr, s->age.len);
  int64_t age = 0;
  for (size_t i = 0; i < v.len; i++) {
    if (v.ptr[i] < '0' || v.ptr[i] > '9')
      return 0;
    if (age < DN__ORIGIN_TTL_MAX) /* §1.2.2: saturate at 2^31 */
      age = age * 10 + (v.ptr[i] - '0');
  }
  return age > DN__ORIGIN_TTL_MAX ? DN__ORIGIN_TTL_MAX : age;
}

/* RFC 9111 §4.2.1 with Surrogate-Control first. Returns 1 with *life set
 * when the response states a lifetime, else 0. *why is set for an invalid
 * Expires (§5.3: already expired). */
static int freshness(const scan *s, int64_t now, int64_t *life,
                     const char **why) {
  int64_t expires, date;
  if (sc_max_age(s))
    *life = s->sc.max_age;
  else if (s->cc.s_maxage != DN_HTTP_UNSET)
    *life = s->cc.s_maxage;
  else if (s->cc.max_age != DN_HTTP_UNSET)
    *life = s->cc.max_age;
  else if (!s->nexpires)
    return 0;
  else if (s->nexpires > 1 || dn_http_date_parse(s->expires.ptr, s->expires.len,
                                                 now, &expires, NULL)) {
    *life = 0;
    *why = "invalid Expires";
  } else {
    /* RFC 9110 §6.6.1: without a valid Date, the time of receipt. */
    if (s->ndate != 1 ||
        dn_http_date_parse(s->date.ptr, s->date.len, now, &date, NULL))
      date = now;
    *life = expires - date;
  }
  return 1;
}

/* Rules 8 and 9: sets *ttl and returns NULL, or returns why not. */
static const char *lifetime(int status, const scan *s, const dn__origin_opts *o,
                            int64_t now, int64_t *ttl) {
  const char *why = NULL;
  int64_t life;
  if (!freshness(s, now, &life, &why)) {
    if (status_kind(status) != ST_HEURISTIC &&
        !(s->cc.flags & DN_HTTP_CC_PUBLIC))
      return "no explicit freshness for this status";
    if (o->default_ttl_s == 0)
      return "no lifetime";
    life = o->default_ttl_s;
  }
  if (why)
    return why;
  life -= age_value(s);
  if (life <= 0)
    return "expired on arrival";
  *ttl = life > DN__ORIGIN_TTL_MAX ? DN__ORIGIN_TTL_MAX : life;
  return NULL;
}

/* RFC 9110 §8.3.1: the media type, case-insensitive, parameters ignored. */
static int is_html(dn_slice ctype) {
  const char *semi = memchr(ctype.ptr, ';', ctype.len);
  size_t n = semi ? (size_t)(semi - ctype.ptr) : ctype.len;
  return ci_eq(trim(ctype.ptr, n), "text/html");
}

/* ---- tags ---------------------------------------------------------------- */

#define TAG_SLOTS (2 * DN__ORIGIN_MAX_TAGS) /* a power of two */

typedef struct tagset {
  dn__vec tags; /* char * */
  size_t bytes;
  uint16_t slot[TAG_SLOTS]; /* index + 1 into tags; 0 = empty */
} tagset;

static size_t tag_hash(const char *p, size_t len) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return (size_t)(h & (TAG_SLOTS - 1));
}

/* Copies at most cap - 1 bytes of p, printable ASCII only, for a message. */
static void shown(const char *p, size_t len, char *out, size_t cap) {
  size_t n = len < cap - 1 ? len : cap - 1;
  for (size_t i = 0; i < n; i++)
    out[i] = (p[i] >= 0x20 && p[i] <= 0x7e) ? p[i] : '?';
  out[n] = '\0';
}

/* Adds one tag (p, len), found at offset `at` of field `field`. */
static int tag_add(tagset *t, const char *field, const char *p, size_t len,
                   size_t at, dn_error *err) {
  dn_error e;
  char s[41];
  if (dn_tag_validate(p, len, &e)) {
    shown(p, len, s, sizeof s);
    return dn__error_set(err, DN_ETAG, at + e.position, "%s: tag \"%s%s\": %s",
                         field, s, len >= sizeof s ? "..." : "", e.text);
  }
  size_t h = tag_hash(p, len);
  for (; t->slot[h]; h = (h + 1) & (TAG_SLOTS - 1)) {
    const char *old = DN__VEC_AT(&t->tags, char *, t->slot[h] - 1);
    if (strncmp(old, p, len) == 0 && old[len] == '\0')
      return 0; /* a duplicate */
  }
  if (t->tags.len == DN__ORIGIN_MAX_TAGS)
    return dn__error_set(err, DN_ETOOBIG, at, "%s: more than %d tags", field,
                         DN__ORIGIN_MAX_TAGS);
  if (len > DN__ORIGIN_MAX_TAG_BYTES - t->bytes)
    return dn__error_set(err, DN_ETOOBIG, at, "%s: tags exceed %d bytes", field,
                         DN__ORIGIN_MAX_TAG_BYTES);
  char *copy = dn__strndup(p, len);
  char **slot = copy ? dn__vec_push(&t->tags) : NULL;
  if (!slot) {
    dn__free(copy);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  *slot = copy;
  t->bytes += len;
  t->slot[h] = (uint16_t)t->tags.len;
  return 0;
}

static const struct {
  const char *name;
  unsigned bit;
  const char *seps; /* what separates two tags */
} tag_fields[] = {
    {"Surrogate-Key", DN__ORIGIN_TAGS_SURROGATE_KEY, " \t"},
    {"Cache-Tag", DN__ORIGIN_TAGS_CACHE_TAG, ","},
    {"xkey", DN__ORIGIN_TAGS_XKEY, " \t,"},
};

static int is_sep(char c, const char *seps) {
  return c != '\0' && strchr(seps, c) != NULL;
}

/* Splits one field value into tags. */
static int tags_from(tagset *t, const char *field, const char *seps, dn_slice v,
                     dn_error *err) {
  size_t i = 0;
  while (i < v.len) {
    size_t start = i;
    while (i < v.len && !is_sep(v.ptr[i], seps))
      i++;
    dn_slice tag = trim(v.ptr + start, i - start);
    i++;
    if (!tag.len)
      continue;
    int rc =
        tag_add(t, field, tag.ptr, tag.len, (size_t)(tag.ptr - v.ptr), err);
    if (rc)
      return rc;
  }
  return 0;
}

static int read_tags(const dn_http_field *f, size_t n, unsigned bits, tagset *t,
                     dn_error *err) {
  bits |= DN__ORIGIN_TAGS_SURROGATE_KEY;
  for (size_t k = 0; k < n; k++) {
    for (size_t j = 0; j < sizeof tag_fields / sizeof *tag_fields; j++) {
      if (!(bits & tag_fields[j].bit) || !ci_eq(f[k].name, tag_fields[j].name))
        continue;
      int rc =
          tags_from(t, tag_fields[j].name, tag_fields[j].seps, f[k].value, err);
      if (rc)
        return rc;
    }
  }
  return 0;
}

/* ---- the entry points ---------------------------------------------------- */

void dn__origin_opts_init(dn__origin_opts *o) {
  o->tag_fields = DN__ORIGIN_TAGS_SURROGATE_KEY;
  o->esi_html = 0;
  o->default_ttl_s = 0;
}

void dn__origin_policy_free(dn__origin_policy *p) {
  if (!p)
    return;
  free_strings(p->tags, p->ntags);
  free_strings(p->vary, p->nvary);
  memset(p, 0, sizeof *p);
}

/* The flags and lifetimes that do not allocate. */
static void fill(dn__origin_policy *out, const scan *s,
                 const dn__origin_opts *o) {
  out->stale_while_revalidate_s =
      s->cc_bad ? DN_HTTP_UNSET : s->cc.stale_while_revalidate;
  out->stale_if_error_s = s->cc_bad ? DN_HTTP_UNSET : s->cc.stale_if_error;
  if (!s->sc_bad && s->sc.stale_while_revalidate != DN_HTTP_UNSET)
    out->stale_while_revalidate_s = s->sc.stale_while_revalidate;
  if (!s->sc_bad && s->sc.stale_if_error != DN_HTTP_UNSET)
    out->stale_if_error_s = s->sc.stale_if_error;
  out->esi = (!s->sc_bad && s->sc_esi) ||
             (o->esi_html && s->nctype == 1 && is_html(s->ctype));
}

int dn__origin_policy_read(int status, const dn_http_field *f, size_t n,
                           int64_t now_s, int with_credentials,
                           const dn__origin_opts *o, dn__origin_policy *out,
                           dn_error *err) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!out || (!f && n) || (o && o->default_ttl_s < 0))
    return dn__error_set(err, DN_EINVAL, 0, "invalid argument");
  dn__origin_opts defaults;
  if (!o) {
    dn__origin_opts_init(&defaults);
    o = &defaults;
  }
  scan s;
  scan_fields(f, n, &s);
  dn__vec vary;
  dn__vec_init(&vary, sizeof(char *));
  tagset tags;
  tags.bytes = 0;
  dn__vec_init(&tags.tags, sizeof(char *));
  memset(tags.slot, 0, sizeof tags.slot);
  const char *why = NULL;
  int64_t ttl = 0;
  int rc = read_vary(f, n, &vary, &out->vary_star, &why);
  if (rc) {
    dn__error_set(err, rc, 0, "out of memory");
    goto out;
  }
  why = refusal(status, &s, with_credentials, out->vary_star, why);
  if (!why)
    why = lifetime(status, &s, o, now_s, &ttl);
  if (!why && (rc = read_tags(f, n, o->tag_fields, &tags, err)) != 0)
    goto out;
  fill(out, &s, o);
  out->cacheable = why == NULL;
  out->why = why;
  out->ttl_s = why ? 0 : ttl;
  out->tags = tags.tags.items;
  out->ntags = tags.tags.len;
  out->vary = vary.items;
  out->nvary = vary.len;
  return 0;
out:
  free_strings(tags.tags.items, tags.tags.len);
  free_strings(vary.items, vary.len);
  memset(out, 0, sizeof *out);
  return rc;
}
