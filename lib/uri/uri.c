/* uri.c - URI normalisation (RFC 3986) and URI tags.
 *
 * A URI is parsed once into the offsets of its components. That pass
 * validates every byte and also notes whether normalising would change
 * anything; when nothing would, the input is copied as it is, which is the
 * common case on a cache hit. Otherwise the normal form is rebuilt
 * component by component into the output buffer: case and percent-encoding
 * first (RFC 3986 §6.2.2.1, §6.2.2.2), then dot-segments removed in place
 * (§5.2.4), then the query pairs sorted by name. A URI tag encodes the
 * normal form into the bytes every CDN accepts in a tag header, cut to a
 * readable prefix plus a digest when it is long (see docs/uri-tags.md).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "buf.h"
#include "donut/uri.h"
#include "error.h"
#include "text.h"
#include "uri.h"

/* ---- character classes (RFC 3986 §2 and Appendix A) --------------------- */

enum {
  C_ALPHA = 1 << 0,
  C_DIGIT = 1 << 1,
  C_HEX = 1 << 2,
  C_UNRES = 1 << 3,  /* unreserved */
  C_SUB = 1 << 4,    /* sub-delims */
  C_SCHEME = 1 << 5, /* ALPHA / DIGIT / "+" / "-" / "." */
  C_USER = 1 << 6,   /* unreserved / sub-delims / ":" */
  C_PCHAR = 1 << 7,  /* unreserved / sub-delims / ":" / "@" */
  C_QUERY = 1 << 8,  /* pchar / "/" / "?" */
  C_UPPER = 1 << 9,  /* "A"-"Z" */
  C_IP6 = 1 << 10,   /* HEXDIG / ":" / "." */
  C_TAG = 1 << 11,   /* kept as is in a URI tag */
};

#define IS_UP(c) ((c) >= 'A' && (c) <= 'Z')
#define IS_AL(c) (IS_UP(c) || ((c) >= 'a' && (c) <= 'z'))
#define IS_DI(c) ((c) >= '0' && (c) <= '9')
#define IS_HX(c)                                                               \
  (IS_DI(c) || ((c) >= 'A' && (c) <= 'F') || ((c) >= 'a' && (c) <= 'f'))
#define IS_UN(c)                                                               \
  (IS_AL(c) || IS_DI(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define IS_SD(c)                                                               \
  ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' ||      \
   (c) == ')' || (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' ||       \
   (c) == '=')
#define IS_US(c) (IS_UN(c) || IS_SD(c) || (c) == ':')
#define IS_PC(c) (IS_US(c) || (c) == '@')
#define CLS(c)                                                                 \
  ((IS_AL(c) ? C_ALPHA : 0) | (IS_DI(c) ? C_DIGIT : 0) |                       \
   (IS_HX(c) ? C_HEX : 0) | (IS_UN(c) ? C_UNRES : 0) |                         \
   (IS_SD(c) ? C_SUB : 0) |                                                    \
   (IS_AL(c) || IS_DI(c) || (c) == '+' || (c) == '-' || (c) == '.' ? C_SCHEME  \
                                                                   : 0) |      \
   (IS_US(c) ? C_USER : 0) | (IS_PC(c) ? C_PCHAR : 0) |                        \
   (IS_PC(c) || (c) == '/' || (c) == '?' ? C_QUERY : 0) |                      \
   (IS_UP(c) ? C_UPPER : 0) |                                                  \
   (IS_HX(c) || (c) == ':' || (c) == '.' ? C_IP6 : 0) |                        \
   (IS_UN(c) || (c) == '!' || (c) == '$' || (c) == '\'' || (c) == '+' ? C_TAG  \
                                                                      : 0))
#define R4(c) CLS(c), CLS(c + 1), CLS(c + 2), CLS(c + 3)
#define R16(c) R4(c), R4(c + 4), R4(c + 8), R4(c + 12)
#define R64(c) R16(c), R16(c + 16), R16(c + 32), R16(c + 48)
static const uint16_t cls[256] = {R64(0), R64(64), R64(128), R64(192)};

#define CLASS(c) (cls[(unsigned char)(c)])

/* The byte an escape "%XX" at s[i] stands for; its digits are checked. */
static unsigned escaped(const char *s, size_t i) {
  unsigned char v = 0;
  dn__hex_decode(&v, s + i + 1, 2, 0);
  return v;
}

/* ---- parsing ----------------------------------------------------------- */

/* Offsets of the components of one URI, and whether it is already normal. */
typedef struct uri_parts {
  size_t len;
  size_t scheme_end; /* the ':' after the scheme */
  int has_auth;      /* "//" authority present */
  int has_user;      /* userinfo "@" present: userinfo is [user_start, at) */
  size_t user_start, user_end;
  size_t host_start, host_end; /* an IP literal includes its brackets */
  int host_ip6;                /* IPv6 literal, canonical text in ip6 */
  char ip6[INET6_ADDRSTRLEN];
  size_t ip6_len;
  int has_port; /* ':' after the host */
  size_t port_start, port_end;
  size_t path_start, path_end;
  int has_query; /* '?' present: the query is (path_end, query_end) */
  size_t query_end;
  int normal; /* normalising would change nothing */
} uri_parts;

/* Describes byte c for an error message, in the caller's small buffer. */
static const char *describe(unsigned char c, char buf[32]) {
  if (c == ' ')
    return "space";
  if (c < 0x20 || c == 0x7f)
    snprintf(buf, 32, "control byte 0x%02X", c);
  else if (c >= 0x80)
    snprintf(buf, 32, "non-ASCII byte 0x%02X", c);
  else
    snprintf(buf, 32, "character '%c'", c);
  return buf;
}

static int bad_byte(dn_error *err, const char *s, size_t i, const char *where) {
  char d[32];
  return dn__error_set(err, DN_EURI, i, "%s is not allowed in %s",
                       describe((unsigned char)s[i], d), where);
}

/* RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG. §6.2.2.2: the normal
 * form has upper-case hex and never encodes an unreserved byte. */
static int check_escape(uri_parts *p, const char *s, size_t i, size_t end,
                        const char *where, dn_error *err) {
  if (end - i < 3 || !(CLASS(s[i + 1]) & C_HEX) || !(CLASS(s[i + 2]) & C_HEX))
    return dn__error_set(err, DN_EURI, i,
                         "malformed percent escape in %s: '%%' must be "
                         "followed by two hex digits",
                         where);
  unsigned v = escaped(s, i);
  if ((CLASS(v) & C_UNRES) || s[i + 1] >= 'a' || s[i + 2] >= 'a')
    p->normal = 0;
  return 0;
}

/* Checks the bytes [i, end) of one component: each is in `allowed` or
 * starts a percent escape. With `fold`, an upper-case letter makes the URI
 * not normal (RFC 3986 §6.2.2.1: scheme and host are case-insensitive). */
static int scan(uri_parts *p, const char *s, size_t i, size_t end,
                unsigned allowed, int fold, const char *where, dn_error *err) {
  for (; i < end; i++) {
    unsigned k = CLASS(s[i]);
    if (k & allowed) {
      if (fold && (k & C_UPPER))
        p->normal = 0;
      continue;
    }
    if (s[i] != '%')
      return bad_byte(err, s, i, where);
    int rc = check_escape(p, s, i, end, where, err);
    if (rc)
      return rc;
    i += 2;
  }
  return 0;
}

/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
static int parse_scheme(uri_parts *p, const char *s, size_t len,
                        dn_error *err) {
  size_t i = 0;
  while (i < len && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#')
    i++;
  if (i == len || s[i] != ':' || i == 0)
    return dn__error_set(err, DN_EURI, 0,
                         "missing scheme: a URI starts with a scheme and ':' "
                         "(as in \"app://self/\")");
  for (size_t j = 0; j < i; j++) {
    unsigned k = CLASS(s[j]);
    if (j == 0 && !(k & C_ALPHA)) {
      char d[32];
      return dn__error_set(err, DN_EURI, 0,
                           "the scheme must start with a letter, not %s",
                           describe((unsigned char)s[0], d));
    }
    if (!(k & C_SCHEME))
      return bad_byte(err, s, j, "the scheme");
    if (k & C_UPPER)
      p->normal = 0;
  }
  p->scheme_end = i;
  return 0;
}

/* RFC 3986 §3.2.2: IPvFuture = "v" 1*HEXDIG "." 1*( unreserved /
 * sub-delims / ":" ), between i and end (the brackets excluded). */
static int parse_ipvfuture(uri_parts *p, const char *s, size_t i, size_t end,
                           dn_error *err) {
  size_t j = i + 1;
  while (j < end && (CLASS(s[j]) & C_HEX))
    j++;
  if (j == i + 1 || j + 1 >= end || s[j] != '.')
    return dn__error_set(err, DN_EURI, j,
                         "invalid IPvFuture address: expected 'v', hex "
                         "digits, '.' and the address");
  for (size_t k = i; k < end; k++)
    if (CLASS(s[k]) & C_UPPER)
      p->normal = 0;
  for (size_t k = j + 1; k < end; k++)
    if (!(CLASS(s[k]) & C_USER))
      return bad_byte(err, s, k, "an IPvFuture address");
  return 0;
}

/* RFC 3986 §3.2.2: IPv6address, checked and made canonical by the C
 * library (inet_pton/inet_ntop), which gives the RFC 5952 text form. */
static int parse_ipv6(uri_parts *p, const char *s, size_t i, size_t end,
                      dn_error *err) {
  char text[INET6_ADDRSTRLEN];
  unsigned char addr[16];
  size_t n = end - i;
  for (size_t k = i; k < end; k++)
    if (!(CLASS(s[k]) & C_IP6))
      return bad_byte(err, s, k, "an IPv6 address");
  if (n == 0 || n >= sizeof text)
    return dn__error_set(err, DN_EURI, i, "invalid IPv6 address");
  memcpy(text, s + i, n);
  text[n] = '\0';
  if (inet_pton(AF_INET6, text, addr) != 1 ||
      !inet_ntop(AF_INET6, addr, p->ip6, sizeof p->ip6))
    return dn__error_set(err, DN_EURI, i, "invalid IPv6 address");
  p->host_ip6 = 1;
  p->ip6_len = strlen(p->ip6);
  if (p->ip6_len != n || memcmp(p->ip6, s + i, n) != 0)
    p->normal = 0;
  return 0;
}

/* RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]". */
static int parse_ip_literal(uri_parts *p, const char *s, size_t i, size_t end,
                            dn_error *err) {
  size_t close = i + 1;
  while (close < end && s[close] != ']')
    close++;
  if (close == end)
    return dn__error_set(err, DN_EURI, i,
                         "unterminated IP literal: missing ']'");
  p->host_end = close + 1;
  if (p->host_end < end && s[p->host_end] != ':')
    return bad_byte(err, s, p->host_end, "the authority after ']'");
  if (close > i + 1 && (s[i + 1] == 'v' || s[i + 1] == 'V'))
    return parse_ipvfuture(p, s, i + 1, close, err);
  return parse_ipv6(p, s, i + 1, close, err);
}

/* RFC 3986 §3.2.3: port = *DIGIT. "URI producers and normalizers should
 * omit the port component and its ':' delimiter if port is empty"; leading
 * zeros are dropped too, and values above 65535 are rejected. */
static int parse_port(uri_parts *p, const char *s, size_t i, size_t end,
                      dn_error *err) {
  unsigned long v = 0;
  p->has_port = 1;
  p->port_start = i;
  p->port_end = end;
  for (size_t k = i; k < end; k++) {
    if (!(CLASS(s[k]) & C_DIGIT))
      return bad_byte(err, s, k, "the port");
    if (v <= 65535)
      v = v * 10 + (unsigned long)(s[k] - '0');
  }
  if (v > 65535)
    return dn__error_set(err, DN_EURI, i, "invalid port: above 65535");
  if (i == end || (end - i > 1 && s[i] == '0'))
    p->normal = 0;
  return 0;
}

/* RFC 3986 §3.2: authority = [ userinfo "@" ] host [ ":" port ], after
 * "//" and up to the next '/', '?', '#' or the end. */
static int parse_authority(uri_parts *p, const char *s, size_t len,
                           dn_error *err) {
  size_t start = p->scheme_end + 3, end = start, h = start;
  int rc;
  while (end < len && s[end] != '/' && s[end] != '?' && s[end] != '#')
    end++;
  p->has_auth = 1;
  p->path_start = end;
  const char *at = memchr(s + start, '@', end - start);
  if (at) {
    p->has_user = 1;
    p->user_start = start;
    p->user_end = (size_t)(at - s);
    rc = scan(p, s, start, p->user_end, C_USER, 0, "the userinfo", err);
    if (rc)
      return rc;
    h = p->user_end + 1;
  }
  p->host_start = h;
  if (h < end && s[h] == '[') {
    rc = parse_ip_literal(p, s, h, end, err);
  } else {
    const char *colon = memchr(s + h, ':', end - h);
    p->host_end = colon ? (size_t)(colon - s) : end;
    rc = scan(p, s, h, p->host_end, C_UNRES | C_SUB, 1, "the host", err);
  }
  if (rc == 0 && p->host_end < end)
    rc = parse_port(p, s, p->host_end + 1, end, err);
  return rc;
}

static int is_dot_segment(const char *s, size_t start, size_t end) {
  return (end - start == 1 && s[start] == '.') ||
         (end - start == 2 && s[start] == '.' && s[start + 1] == '.');
}

/* RFC 3986 §3.3: the path runs to the first '?' or '#'. It is normal when
 * it has no "." or ".." segment (§6.2.2.3), except the "/." that keeps a
 * path without authority from starting with "//" (see put_path). */
static int parse_path(uri_parts *p, const char *s, size_t len, dn_error *err) {
  size_t i = p->path_start, seg = i, keep = (size_t)-1;
  if (!p->has_auth && len - i >= 4 && memcmp(s + i, "/.//", 4) == 0)
    keep = i + 1;
  for (; i < len && s[i] != '?' && s[i] != '#'; i++) {
    if (s[i] == '/') {
      if (seg != keep && is_dot_segment(s, seg, i))
        p->normal = 0;
      seg = i + 1;
    } else if (!(CLASS(s[i]) & C_PCHAR)) {
      if (s[i] != '%')
        return bad_byte(err, s, i, "the path");
      int rc = check_escape(p, s, i, len, "the path", err);
      if (rc)
        return rc;
      i += 2;
    }
  }
  if (is_dot_segment(s, seg, i))
    p->normal = 0;
  p->path_end = i;
  return 0;
}

static int name_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

/* Query pairs seen so far, to tell whether they are already in order. */
typedef struct query_scan {
  size_t pair;     /* start of the current pair */
  size_t name_end; /* its first '=', or 0 when none yet */
  const char *prev;
  size_t prev_len;
} query_scan;

static void end_pair(uri_parts *p, query_scan *q, const char *s, size_t i) {
  if (q->pair == i) {
    p->normal = 0; /* an empty pair, or an empty query */
  } else {
    size_t n = (q->name_end ? q->name_end : i) - q->pair;
    if (q->prev && name_cmp(q->prev, q->prev_len, s + q->pair, n) > 0)
      p->normal = 0;
    q->prev = s + q->pair;
    q->prev_len = n;
  }
  q->pair = i + 1;
  q->name_end = 0;
}

/* RFC 3986 §3.4: query = *( pchar / "/" / "?" ), from '?' to '#' or the
 * end. Normal when not empty, with no empty pair, names in order. */
static int parse_query(uri_parts *p, const char *s, size_t len, dn_error *err) {
  size_t i = p->path_end + 1;
  query_scan q = {i, 0, NULL, 0};
  p->has_query = 1;
  for (; i < len && s[i] != '#'; i++) {
    if (s[i] == '&') {
      end_pair(p, &q, s, i);
    } else if (s[i] == '=') {
      if (!q.name_end)
        q.name_end = i;
    } else if (!(CLASS(s[i]) & C_QUERY)) {
      if (s[i] != '%')
        return bad_byte(err, s, i, "the query");
      int rc = check_escape(p, s, i, len, "the query", err);
      if (rc)
        return rc;
      i += 2;
    }
  }
  end_pair(p, &q, s, i);
  p->query_end = i;
  return 0;
}

/* Splits and validates `s`; see uri_parts. */
static int parse(uri_parts *p, const char *s, size_t len, dn_error *err) {
  memset(p, 0, sizeof *p);
  p->len = len;
  p->normal = 1;
  if (len == 0)
    return dn__error_set(err, DN_EURI, 0, "empty URI");
  if (len > DN_URI_MAX)
    return dn__error_set(err, DN_EURI, DN_URI_MAX, "URI longer than %d bytes",
                         DN_URI_MAX);
  int rc = parse_scheme(p, s, len, err);
  if (rc)
    return rc;
  p->path_start = p->scheme_end + 1;
  if (len - p->path_start >= 2 && s[p->path_start] == '/' &&
      s[p->path_start + 1] == '/' && (rc = parse_authority(p, s, len, err)))
    return rc;
  if ((rc = parse_path(p, s, len, err)))
    return rc;
  if (p->path_end < len && s[p->path_end] == '?' &&
      (rc = parse_query(p, s, len, err)))
    return rc;
  size_t f = p->has_query ? p->query_end : p->path_end;
  if (f == len)
    return 0;
  /* RFC 3986 §3.5: fragment = *( pchar / "/" / "?" ); checked, dropped. */
  p->normal = 0;
  return scan(p, s, f + 1, len, C_QUERY, 0, "the fragment", err);
}

/* ---- rebuilding the normal form ----------------------------------------- */

/* Writes s[i, end) to d at o with escapes of unreserved bytes decoded and
 * the others in upper-case hex (RFC 3986 §6.2.2.2), letters lower-cased
 * when `fold` is set (§6.2.2.1). Returns the new offset. */
static size_t put_pct(char *d, size_t o, const char *s, size_t i, size_t end,
                      int fold) {
  for (; i < end; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      c = (unsigned char)escaped(s, i);
      i += 2;
      if (!(CLASS(c) & C_UNRES)) {
        d[o++] = '%';
        o += dn__hex_encode(d + o, &c, 1, DN__HEX_UPPER);
        continue;
      }
    }
    d[o++] = (char)(fold && (CLASS(c) & C_UPPER) ? c | 0x20 : c);
  }
  return o;
}

static size_t put_authority(char *d, size_t o, const uri_parts *p,
                            const char *s) {
  d[o++] = '/';
  d[o++] = '/';
  if (p->has_user) {
    o = put_pct(d, o, s, p->user_start, p->user_end, 0);
    d[o++] = '@';
  }
  if (p->host_ip6) {
    d[o++] = '[';
    memcpy(d + o, p->ip6, p->ip6_len);
    o += p->ip6_len;
    d[o++] = ']';
  } else {
    o = put_pct(d, o, s, p->host_start, p->host_end, 1);
  }
  if (p->has_port && p->port_end > p->port_start) {
    size_t i = p->port_start;
    while (i + 1 < p->port_end && s[i] == '0')
      i++;
    d[o++] = ':';
    memcpy(d + o, s + i, p->port_end - i);
    o += p->port_end - i;
  }
  return o;
}

/* RFC 3986 §5.2.4 C: "remove the last segment and its preceding '/' (if
 * any) from the output buffer" d[start, out). Returns the new end. */
static size_t pop_segment(const char *d, size_t start, size_t out) {
  while (out > start && d[out - 1] != '/')
    out--;
  return out > start ? out - 1 : out;
}

/* RFC 3986 §5.2.4 remove_dot_segments over d[in, end), in place: the
 * output never outgrows the input, so it is written behind the read
 * position. A rule that "replaces a prefix with '/'" steps over all but
 * the last byte of the prefix and overwrites that one with '/'. Returns
 * the end of the output. */
static size_t remove_dots(char *d, size_t in, size_t end) {
  size_t start = in, out = in;
  while (in < end) {
    size_t n = end - in;
    const char *s = d + in;
    int pop = 0;
    if (n >= 3 && memcmp(s, "../", 3) == 0) {
      in += 3; /* A */
    } else if (n >= 2 && memcmp(s, "./", 2) == 0) {
      in += 2; /* A */
    } else if ((n >= 3 && memcmp(s, "/./", 3) == 0) ||
               (n == 2 && memcmp(s, "/.", 2) == 0)) {
      in += n == 2 ? 1 : 2; /* B */
      d[in] = '/';
    } else if ((n >= 4 && memcmp(s, "/../", 4) == 0) ||
               (n == 3 && memcmp(s, "/..", 3) == 0)) {
      in += n == 3 ? 2 : 3; /* C */
      d[in] = '/';
      pop = 1;
    } else if ((n == 1 && s[0] == '.') || (n == 2 && memcmp(s, "..", 2) == 0)) {
      in = end; /* D */
    } else {
      size_t k = in + 1; /* E */
      while (k < end && d[k] != '/')
        k++;
      memmove(d + out, d + in, k - in);
      out += k - in;
      in = k;
    }
    if (pop)
      out = pop_segment(d, start, out);
  }
  return out;
}

/* Writes the path. A path without authority must not start with "//"
 * (RFC 3986 §3.3), which dot-segment removal can produce ("a:/.//b"); as
 * in the WHATWG URL standard, "/." is kept in front so the normal form
 * still parses to the same path. */
static size_t put_path(char *d, size_t o, const uri_parts *p, const char *s) {
  size_t start = o;
  o = put_pct(d, o, s, p->path_start, p->path_end, 0);
  o = remove_dots(d, start, o);
  if (!p->has_auth && o - start >= 2 && d[start] == '/' &&
      d[start + 1] == '/') {
    memmove(d + start + 2, d + start, o - start);
    d[start] = '/';
    d[start + 1] = '.';
    o += 2;
  }
  return o;
}

/* Whether the '&'-separated pairs of q[0, n) are non-empty and in order. */
static int pairs_in_order(const char *q, size_t n) {
  uri_parts check = {.normal = 1};
  query_scan scan_state = {0, 0, NULL, 0};
  for (size_t k = 0; k < n && check.normal; k++) {
    if (q[k] == '&')
      end_pair(&check, &scan_state, q, k);
    else if (q[k] == '=' && !scan_state.name_end)
      scan_state.name_end = k;
  }
  if (check.normal)
    end_pair(&check, &scan_state, q, n);
  return check.normal;
}

/* One query pair while sorting: its bytes, its name and where it was. */
typedef struct query_pair {
  const char *p;
  size_t len, name_len, idx;
} query_pair;

static int pair_cmp(const void *a, const void *b) {
  const query_pair *x = a, *y = b;
  int c = name_cmp(x->p, x->name_len, y->p, y->name_len);
  return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sorts the '&'-separated, non-empty pairs of q[0, n) by name, stably
 * (qsort is not stable, so the original index breaks ties). */
static int sort_query(char *q, size_t n) {
  size_t count = 1;
  for (size_t i = 0; i < n; i++)
    count += q[i] == '&';
  query_pair *v = dn__malloc(count * sizeof *v + n);
  if (!v)
    return DN_ENOMEM;
  char *copy = (char *)(v + count);
  memcpy(copy, q, n);
  for (size_t k = 0, i = 0; k < count; k++) {
    const char *amp = memchr(copy + i, '&', n - i);
    size_t j = amp ? (size_t)(amp - copy) : n;
    const char *eq = memchr(copy + i, '=', j - i);
    v[k] =
        (query_pair){copy + i, j - i, eq ? (size_t)(eq - copy) - i : j - i, k};
    i = j + 1;
  }
  qsort(v, count, sizeof *v, pair_cmp);
  for (size_t k = 0, o = 0; k < count; k++) {
    if (k)
      q[o++] = '&';
    memcpy(q + o, v[k].p, v[k].len);
    o += v[k].len;
  }
  dn__free(v);
  return 0;
}

/* Writes the query: each pair normalised, empty pairs dropped, the pairs
 * sorted by name unless already in order, and no '?' when nothing is
 * left. Returns 0 or DN_ENOMEM. */
static int put_query(char *d, size_t *o_io, const uri_parts *p, const char *s) {
  size_t o = *o_io, q0 = o + 1, i = p->path_end + 1, end = p->query_end;
  d[o++] = '?';
  while (i <= end) {
    const char *amp = memchr(s + i, '&', end - i);
    size_t j = amp ? (size_t)(amp - s) : end;
    if (j > i) {
      if (o > q0)
        d[o++] = '&';
      o = put_pct(d, o, s, i, j, 0);
    }
    i = j + 1;
  }
  if (o == q0) {
    *o_io = q0 - 1;
    return 0;
  }
  *o_io = o;
  return pairs_in_order(d + q0, o - q0) ? 0 : sort_query(d + q0, o - q0);
}

/* Appends the normal form of a parsed URI to out. */
static int rebuild(dn__buf *out, const uri_parts *p, const char *s,
                   dn_error *err) {
  size_t mark = out->len, host = p->host_end - p->host_start, o = 0;
  /* Only a canonical IPv6 text can be longer than its input. Every other
   * step writes at most what it read: the "/." that put_path may add
   * follows the removal of at least two bytes of dot-segments (an input
   * path without authority cannot start with "//" itself, and removing a
   * final "/." alone keeps the first two bytes), so the bound is exact
   * enough for a caller's buffer limited to DN_URI_MAX + 1. */
  size_t grow =
      p->host_ip6 && p->ip6_len + 2 > host ? p->ip6_len + 2 - host : 0;
  int rc = dn__buf_reserve(out, p->len + grow);
  if (rc)
    return rc;
  char *d = out->data + mark;
  for (size_t i = 0; i < p->scheme_end; i++)
    d[o++] = (char)(CLASS(s[i]) & C_UPPER ? s[i] | 0x20 : s[i]);
  d[o++] = ':';
  if (p->has_auth)
    o = put_authority(d, o, p, s);
  o = put_path(d, o, p, s);
  if (p->has_query)
    rc = put_query(d, &o, p, s);
  if (rc == 0 && o > DN_URI_MAX)
    rc =
        dn__error_set(err, DN_EURI, p->host_start,
                      "the normalised URI is longer than %d bytes", DN_URI_MAX);
  if (rc) {
    out->data[mark] = '\0';
    return rc;
  }
  out->len = mark + o;
  out->data[out->len] = '\0';
  return 0;
}

static int normalize(dn__buf *out, const char *uri, size_t len, int full,
                     dn_error *err) {
  uri_parts p;
  if (!out || (!uri && len))
    return dn__error_set(err, DN_EINVAL, 0, "NULL argument");
  int rc = parse(&p, uri, len, err);
  if (rc)
    return rc;
  rc = p.normal && !full ? dn__buf_append(out, uri, len)
                         : rebuild(out, &p, uri, err);
  if (rc == DN_ENOMEM || rc == DN_ETOOBIG)
    dn__error_set(err, rc, 0, "%s", dn_strerror(rc));
  return rc;
}

int dn__uri_normalize_buf(dn__buf *out, const char *uri, size_t len,
                          dn_error *err) {
  return normalize(out, uri, len, 0, err);
}

int dn__uri_normalize_full(dn__buf *out, const char *uri, size_t len,
                           dn_error *err) {
  return normalize(out, uri, len, 1, err);
}

int dn__uri_is_normal(const char *uri, size_t len) {
  uri_parts p;
  return uri && parse(&p, uri, len, NULL) == 0 && p.normal;
}

int dn_uri_normalize(const char *uri, size_t len, char **out, size_t *out_len,
                     dn_error *err) {
  if (!out)
    return dn__error_set(err, DN_EINVAL, 0, "NULL argument");
  dn__buf b;
  dn__buf_init(&b, 0);
  int rc = dn__uri_normalize_buf(&b, uri, len, err);
  char *s = rc ? NULL : dn__buf_steal(&b, out_len);
  if (!rc && !s)
    rc = dn__error_set(err, DN_ENOMEM, 0, "%s", dn_strerror(DN_ENOMEM));
  dn__buf_free(&b);
  if (!rc)
    *out = s;
  return rc;
}

/* ---- URI tags ------------------------------------------------------------ */

/* Tags use only bytes every CDN accepts: Akamai's Edge-Cache-Tag wants an
 * HTTP token (RFC 7230 §3.2.6 tchar) without '*', and its cache-tag
 * character class also leaves out '&'. Of the bytes a normal URI holds,
 * the unreserved ones and "!$'+" qualify and are kept; '/' is so common
 * that it gets the one-byte stand-in '|' (never in a URI); anything else,
 * '%' included, becomes "%XX", so the encoding is injective. '#' never
 * occurs in the encoding and marks a long tag. Writes the tag form of c at
 * out[o] and returns the new offset. */
static size_t put_tag_byte(char *out, size_t o, unsigned char c) {
  if (CLASS(c) & C_TAG) {
    out[o++] = (char)c;
  } else if (c == '/') {
    out[o++] = '|';
  } else {
    out[o++] = '%';
    o += dn__hex_encode(out + o, &c, 1, DN__HEX_UPPER);
  }
  return o;
}

size_t dn__uri_tag_write(const char *norm, size_t len,
                         char out[DN_URI_TAG_MAX + 1]) {
  size_t o = 0, cut = 0, i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)norm[i];
    size_t n = (CLASS(c) & C_TAG) || c == '/' ? 1 : 3;
    if (o + n > DN_URI_TAG_MAX)
      break;
    o = put_tag_byte(out, o, c);
    if (o <= DN__URI_TAG_PREFIX_MAX)
      cut = o;
  }
  if (i < len) {
    /* Too long: a readable prefix, '#', and XXH3-128 of the whole URI. */
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits(norm, len));
    o = cut;
    out[o++] = '#';
    o += dn__hex_encode(out + o, h.digest, sizeof h.digest, 0);
  }
  out[o] = '\0';
  return o;
}

int dn__uri_tag_buf(dn__buf *out, const char *norm, size_t len) {
  char tag[DN_URI_TAG_MAX + 1];
  size_t n = dn__uri_tag_write(norm, len, tag);
  return dn__buf_append(out, tag, n);
}

int dn_uri_tag_normalized(const char *uri, size_t len,
                          char out[DN_URI_TAG_MAX + 1], size_t *out_len) {
  if (!uri || !out || len == 0)
    return DN_EINVAL;
  size_t n = dn__uri_tag_write(uri, len, out);
  if (out_len)
    *out_len = n;
  return 0;
}

int dn_uri_tag(const char *uri, size_t len, char out[DN_URI_TAG_MAX + 1],
               size_t *out_len, dn_error *err) {
  uri_parts p;
  if (!out || (!uri && len))
    return dn__error_set(err, DN_EINVAL, 0, "NULL argument");
  int rc = parse(&p, uri, len, err);
  if (rc)
    return rc;
  if (p.normal)
    return dn_uri_tag_normalized(uri, len, out, out_len);
  dn__buf b;
  dn__buf_init(&b, 0);
  rc = rebuild(&b, &p, uri, err);
  if (rc == 0)
    rc = dn_uri_tag_normalized(b.data, b.len, out, out_len);
  else if (rc == DN_ENOMEM)
    dn__error_set(err, rc, 0, "%s", dn_strerror(rc));
  dn__buf_free(&b);
  return rc;
}

/* ---- tags and string lists ---------------------------------------------- */

int dn_tag_validate(const char *tag, size_t len, dn_error *err) {
  if (!tag && len)
    return dn__error_set(err, DN_EINVAL, 0, "NULL argument");
  if (len == 0)
    return dn__error_set(err, DN_ETAG, 0, "empty tag");
  if (len > DN_TAG_MAX)
    return dn__error_set(err, DN_ETAG, DN_TAG_MAX, "tag longer than %d bytes",
                         DN_TAG_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)tag[i];
    if (c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == '=' || c == '\\') {
      char d[32];
      return dn__error_set(err, DN_ETAG, i, "%s is not allowed in a tag",
                           describe(c, d));
    }
  }
  return 0;
}

void dn_strings_free(dn_strings *s) {
  if (!s)
    return;
  for (size_t i = 0; s->items && i < s->count; i++)
    dn__free(s->items[i]);
  dn__free(s->items);
  dn__free(s->lens);
  s->items = NULL;
  s->lens = NULL;
  s->count = 0;
}
