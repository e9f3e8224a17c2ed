/* esi.c - the ESI 1.0 parser of origin mode (see esi.h).
 *
 * One pass over the body: memchr finds each '<', and only "<esi:",
 * "</esi:" and "<!--esi" start markup; every other byte stays text. The
 * document is one allocation, a header followed by as many bytes of
 * storage as the input has. That is always enough, because the output is
 * never longer than the input: texts are disjoint pieces of it, and a
 * decoded attribute value plus its NUL is never longer than the quoted
 * value it came from. Texts are copied into the storage when markup ends
 * them, so a text that follows another one (across an <esi:remove> or a
 * "<!--esi" marker) simply makes the previous item longer. The items grow
 * in a dn__vec that the document adopts; with texts merged there are at
 * most 2 * includes + 1 of them, so max_includes bounds them too.
 *
 * The parse stops at the first error, in input order. Each search for a
 * closing marker either finds it, and the parse goes on after it, or
 * fails the parse, so the whole pass is linear in the input.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "esi.h"
#include "text.h"
#include "vec.h"

struct dn__esi_doc {
  dn__esi_item *items;
  size_t count;
  size_t includes;
  size_t used;  /* bytes of storage in use */
  char bytes[]; /* storage: as many bytes as the input */
};

typedef struct parser {
  const char *in;
  size_t len;
  size_t max_includes;
  dn__esi_doc *doc;
  dn__vec items; /* dn__esi_item */
  dn_error *err;
} parser;

#define NOT_FOUND ((size_t)-1)
/* Longest piece of a name an error message repeats. */
#define SHOW_NAME 32

/* XML 1.0 §2.3: S ::= (#x20 | #x9 | #xD | #xA)+ */
static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes of an element name (the ASCII part of an XML NCName); attribute
 * names may also hold ':', so "xml:lang" is reported by its name. */
static int is_name(char c, int colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
         (colon && c == ':');
}

static int shown_len(size_t n) { return (int)(n < SHOW_NAME ? n : SHOW_NAME); }

static int nomem(parser *p, size_t pos) {
  return dn__error_set(p->err, DN_ENOMEM, pos, "out of memory");
}

static int unclosed(parser *p, size_t at, const char *what) {
  return dn__error_set(p->err, DN__ESI_EMARKUP, at, "unclosed %s at byte %zu",
                       what, at);
}

static int starts(const parser *p, size_t i, size_t end, const char *lit) {
  size_t n = strlen(lit);
  return end - i >= n && memcmp(p->in + i, lit, n) == 0;
}

static size_t skip_space(const parser *p, size_t i, size_t end) {
  while (i < end && is_space(p->in[i]))
    i++;
  return i;
}

/* The first position in [from, end) where lit starts, or NOT_FOUND. */
static size_t find(const parser *p, size_t from, size_t end, const char *lit) {
  size_t n = strlen(lit);
  while (from <= end && end - from >= n) {
    const char *c = memchr(p->in + from, lit[0], end - from - n + 1);
    if (!c)
      break;
    size_t at = (size_t)(c - p->in);
    if (memcmp(c, lit, n) == 0)
      return at;
    from = at + 1;
  }
  return NOT_FOUND;
}

/* Points *dst at room for n more bytes of storage. The bound argued at
 * the top of this file means this cannot fail; the check keeps a mistake
 * from ever writing out of bounds. */
static int room(parser *p, size_t n, size_t pos, char **dst) {
  if (n > p->len - p->doc->used)
    return dn__error_set(p->err, DN_ETOOBIG, pos,
                         "output longer than the input at byte %zu", pos);
  *dst = p->doc->bytes + p->doc->used;
  return 0;
}

/* Copies input [from, to) into the storage as text, growing the previous
 * item when it is a text (the storage is contiguous, so it ends here). */
static int emit_text(parser *p, size_t from, size_t to) {
  if (from == to)
    return 0;
  size_t n = to - from;
  char *dst = NULL;
  int rc = room(p, n, from, &dst);
  if (rc)
    return rc;
  memcpy(dst, p->in + from, n);
  dn__esi_item *last =
      p->items.len ? &DN__VEC_AT(&p->items, dn__esi_item, p->items.len - 1)
                   : NULL;
  if (last && last->kind == DN__ESI_TEXT) {
    last->text.len += n;
  } else {
    dn__esi_item *it = dn__vec_push(&p->items);
    if (!it)
      return nomem(p, from);
    it->kind = DN__ESI_TEXT;
    it->text.ptr = dst;
    it->text.len = n;
    it->offset = from;
  }
  p->doc->used += n;
  return 0;
}

/* ---- attribute values ------------------------------------------------ */

static const struct {
  const char *name; /* after '&', with the ';' */
  char c;
} named_refs[] = {
    {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};

enum { REF_OK, REF_MALFORMED, REF_NOT_ASCII };

/* Decodes "&#NN;" or "&#xNN;" at s (n bytes) into *c, its length into
 * *used. Only ASCII is accepted: a URL needs nothing else, and anything
 * else belongs percent-encoded. */
static int numeric_ref(const char *s, size_t n, char *c, size_t *used) {
  size_t k = 2;
  int hex = k < n && (s[k] == 'x' || s[k] == 'X');
  unsigned long v = 0;
  size_t digits = 0;
  for (k += (size_t)hex; k < n; k++, digits++) {
    int dv = hex                          ? dn__hex_value(s[k], 0)
             : s[k] >= '0' && s[k] <= '9' ? s[k] - '0'
                                          : -1;
    if (dv < 0)
      break;
    v = v * (hex ? 16 : 10) + (unsigned)dv;
    if (v > 0x10FFFF)
      v = 0x110000; /* stays out of range however many digits follow */
  }
  if (!digits || k == n || s[k] != ';')
    return REF_MALFORMED;
  if (v > 0x7F)
    return REF_NOT_ASCII;
  *c = (char)v;
  *used = k + 1;
  return REF_OK;
}

/* Decodes the character reference at s (n bytes, s[0] == '&') into *c,
 * its length into *used. Where no known reference starts, the '&' stands
 * for itself: a bare '&' in a query string is common. */
static int char_ref(const char *s, size_t n, char *c, size_t *used) {
  if (n >= 2 && s[1] == '#')
    return numeric_ref(s, n, c, used);
  for (size_t r = 0; r < sizeof named_refs / sizeof named_refs[0]; r++) {
    size_t len = strlen(named_refs[r].name);
    if (n - 1 >= len && memcmp(s + 1, named_refs[r].name, len) == 0) {
      *c = named_refs[r].c;
      *used = len + 1;
      return REF_OK;
    }
  }
  *c = '&';
  *used = 1;
  return REF_OK;
}

/* Decodes the value of attribute `what` at input [at, at + n) into the
 * storage, NUL-terminated, and points *out at it. The decoded value must
 * be non-empty and hold no control bytes or spaces. */
static int attr_value(parser *p, size_t at, size_t n, const char *what,
                      dn_slice *out) {
  char *dst = NULL;
  int rc = room(p, n + 1, at, &dst);
  if (rc)
    return rc;
  size_t o = 0;
  for (size_t i = at; i < at + n;) {
    char c = p->in[i];
    size_t step = 1;
    int ref = c == '&' ? char_ref(p->in + i, at + n - i, &c, &step) : REF_OK;
    if (ref != REF_OK)
      return dn__error_set(p->err, DN__ESI_EMARKUP, i,
                           ref == REF_NOT_ASCII
                               ? "character reference beyond ASCII in %s at "
                                 "byte %zu"
                               : "malformed character reference in %s at "
                                 "byte %zu",
                           what, i);
    unsigned char u = (unsigned char)c;
    if (u == 0x20)
      return dn__error_set(p->err, DN__ESI_EMARKUP, i,
                           "%s holds a space at byte %zu", what, i);
    if (u < 0x20 || u == 0x7F) {
      char b[8];
      return dn__error_set(p->err, DN__ESI_EMARKUP, i,
                           "%s holds the control byte %s at byte %zu", what,
                           dn__byte_show(c, b), i);
    }
    dst[o++] = c;
    i += step;
  }
  if (o == 0)
    return dn__error_set(p->err, DN__ESI_EMARKUP, at, "empty %s at byte %zu",
                         what, at);
  dst[o] = '\0';
  p->doc->used += o + 1;
  out->ptr = dst;
  out->len = o;
  return 0;
}

/* ---- elements -------------------------------------------------------- */

typedef struct include_tag {
  size_t at; /* the '<' */
  dn__esi_item item;
  int seen_src, seen_alt, seen_onerror;
} include_tag;

/* Stores the attribute whose name is input [name, name + nlen) and whose
 * value is input [v, v + vlen). */
static int include_attr(parser *p, include_tag *t, size_t name, size_t nlen,
                        size_t v, size_t vlen) {
  const char *s = p->in + name;
  int *seen = NULL;
  if (nlen == 3 && memcmp(s, "src", 3) == 0)
    seen = &t->seen_src;
  else if (nlen == 3 && memcmp(s, "alt", 3) == 0)
    seen = &t->seen_alt;
  else if (nlen == 7 && memcmp(s, "onerror", 7) == 0)
    seen = &t->seen_onerror;
  if (!seen)
    return dn__error_set(p->err, DN_ENOTSUP, name,
                         "unsupported attribute '%.*s' in <esi:include> at "
                         "byte %zu",
                         shown_len(nlen), s, name);
  if (*seen)
    return dn__error_set(p->err, DN__ESI_EMARKUP, name,
                         "duplicate attribute '%.*s' in <esi:include> at "
                         "byte %zu",
                         (int)nlen, s, name);
  *seen = 1;
  if (seen == &t->seen_src)
    return attr_value(p, v, vlen, "src", &t->item.src);
  if (seen == &t->seen_alt)
    return attr_value(p, v, vlen, "alt", &t->item.alt);
  /* ESI 1.0 §3.1: "continue" is the only value onerror defines. */
  if (vlen != 8 || memcmp(p->in + v, "continue", 8) != 0)
    return dn__error_set(p->err, DN__ESI_EMARKUP, v,
                         "onerror must be \"continue\" at byte %zu", v);
  t->item.onerror_continue = 1;
  return 0;
}

/* Reads one `name = "value"` at *i (on a name byte) and stores it. */
static int include_attr_read(parser *p, include_tag *t, size_t *i, size_t end) {
  size_t name = *i, k = name;
  while (k < end && is_name(p->in[k], 1))
    k++;
  size_t nlen = k - name;
  k = skip_space(p, k, end);
  if (k == end)
    return unclosed(p, t->at, "<esi:include>");
  if (p->in[k] != '=')
    return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                         "attribute '%.*s' has no value at byte %zu",
                         shown_len(nlen), p->in + name, k);
  k = skip_space(p, k + 1, end);
  if (k == end)
    return unclosed(p, t->at, "<esi:include>");
  char q = p->in[k];
  if (q != '"' && q != '\'')
    return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                         "value of attribute '%.*s' is not quoted at byte %zu",
                         shown_len(nlen), p->in + name, k);
  const char *close = memchr(p->in + k + 1, q, end - k - 1);
  if (!close)
    return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                         "unclosed quote in attribute '%.*s' at byte %zu",
                         shown_len(nlen), p->in + name, k);
  size_t v = k + 1, vlen = (size_t)(close - p->in) - v;
  *i = v + vlen + 1;
  return include_attr(p, t, name, nlen, v, vlen);
}

/* Reads the attributes of the start tag up to its '>' or "/>"; sets
 * *paired for the form with an end tag and *i just past the tag. */
static int include_start_tag(parser *p, include_tag *t, size_t *i, size_t end,
                             int *paired) {
  char b[8];
  for (;;) {
    size_t ws = *i, k = skip_space(p, *i, end);
    if (k == end)
      return unclosed(p, t->at, "<esi:include>");
    char c = p->in[k];
    if (c == '>' || c == '/') {
      if (c == '/' && k + 1 == end)
        return unclosed(p, t->at, "<esi:include>");
      if (c == '/' && p->in[k + 1] != '>')
        return dn__error_set(p->err, DN__ESI_EMARKUP, k + 1,
                             "expected '>' after '/' in <esi:include> at "
                             "byte %zu",
                             k + 1);
      *paired = c == '>';
      *i = k + (c == '>' ? 1 : 2);
      return 0;
    }
    if (is_name(c, 1) && k == ws)
      return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                           "missing space before attribute at byte %zu", k);
    if (!is_name(c, 1))
      return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                           "unexpected %s in <esi:include> at byte %zu",
                           dn__byte_show(c, b), k);
    *i = k;
    int rc = include_attr_read(p, t, i, end);
    if (rc)
      return rc;
  }
}

/* The end tag of the paired form: only whitespace may come before it. */
static int include_end_tag(parser *p, const include_tag *t, size_t i,
                           size_t end, size_t *next) {
  size_t k = skip_space(p, i, end);
  if (!starts(p, k, end, "</esi:include")) {
    if (find(p, k, end, "</esi:include") == NOT_FOUND)
      return unclosed(p, t->at, "<esi:include> (no </esi:include>)");
    return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                         "unexpected content inside <esi:include> at byte %zu",
                         k);
  }
  size_t j = skip_space(p, k + 13, end);
  if (j == end || p->in[j] != '>')
    return dn__error_set(p->err, DN__ESI_EMARKUP, k,
                         "malformed </esi:include> at byte %zu", k);
  *next = j + 1;
  return 0;
}

/* ESI 1.0 §3.1: <esi:include src="..." [alt="..."] [onerror="continue"]/>.
 * i is just past "<esi:include". */
static int include(parser *p, size_t at, size_t i, size_t end, size_t *next) {
  include_tag t;
  memset(&t, 0, sizeof t);
  t.at = at;
  if (p->doc->includes == p->max_includes)
    return dn__error_set(p->err, DN_ETOOBIG, at,
                         "more than %zu includes: <esi:include> at byte %zu",
                         p->max_includes, at);
  int paired = 0;
  int rc = include_start_tag(p, &t, &i, end, &paired);
  if (rc)
    return rc;
  if (!t.seen_src)
    return dn__error_set(p->err, DN__ESI_EMARKUP, at,
                         "<esi:include> without src at byte %zu", at);
  *next = i;
  if (paired && (rc = include_end_tag(p, &t, i, end, next)))
    return rc;
  dn__esi_item *it = dn__vec_push(&p->items);
  if (!it)
    return nomem(p, at);
  *it = t.item;
  it->kind = DN__ESI_INCLUDE;
  it->offset = at;
  p->doc->includes++;
  return 0;
}

/* ESI 1.0 §3.6: <esi:remove> ... </esi:remove>; the content is dropped
 * unread. i is just past "<esi:remove". */
static int remove_element(parser *p, size_t at, size_t i, size_t end,
                          size_t *next) {
  char b[8];
  i = skip_space(p, i, end);
  if (i == end)
    return unclosed(p, at, "<esi:remove>");
  if (p->in[i] != '>')
    return dn__error_set(p->err, DN__ESI_EMARKUP, i,
                         "unexpected %s in <esi:remove> at byte %zu",
                         dn__byte_show(p->in[i], b), i);
  size_t close = find(p, i + 1, end, "</esi:remove");
  if (close == NOT_FOUND)
    return unclosed(p, at, "<esi:remove>");
  size_t k = skip_space(p, close + 12, end);
  if (k == end || p->in[k] != '>')
    return dn__error_set(p->err, DN__ESI_EMARKUP, close,
                         "malformed </esi:remove> at byte %zu", close);
  *next = k + 1;
  return 0;
}

/* At "<esi:" or "</esi:" (close is 1): finds the element name and where it
 * ends; fails for a truncated or nameless tag. */
static int element_name(parser *p, size_t at, size_t end, int close,
                        size_t *name, size_t *nlen) {
  char b[8];
  const char *open = close ? "</esi:" : "<esi:";
  size_t i = at + strlen(open);
  *name = i;
  while (i < end && is_name(p->in[i], 0))
    i++;
  *nlen = i - *name;
  if (i == end)
    return dn__error_set(p->err, DN__ESI_EMARKUP, at,
                         "unclosed %s%.*s%s at byte %zu", open,
                         shown_len(*nlen), p->in + *name, *nlen ? ">" : "", at);
  if (!*nlen)
    return dn__error_set(p->err, DN__ESI_EMARKUP, at,
                         "%s without an element name at byte %zu", open, at);
  if (!is_space(p->in[i]) && p->in[i] != '/' && p->in[i] != '>')
    return dn__error_set(
        p->err, DN__ESI_EMARKUP, i, "unexpected %s after %s%.*s at byte %zu",
        dn__byte_show(p->in[i], b), open, shown_len(*nlen), p->in + *name, i);
  return 0;
}

/* At "<esi:": dispatches on the element name. */
static int element(parser *p, size_t at, size_t end, size_t *next) {
  size_t name, nlen;
  int rc = element_name(p, at, end, 0, &name, &nlen);
  if (rc)
    return rc;
  const char *s = p->in + name;
  if (nlen == 7 && memcmp(s, "include", 7) == 0)
    return include(p, at, name + nlen, end, next);
  if (nlen == 6 && memcmp(s, "remove", 6) == 0)
    return remove_element(p, at, name + nlen, end, next);
  return dn__error_set(p->err, DN_ENOTSUP, at,
                       "unsupported ESI element <esi:%.*s> at byte %zu",
                       shown_len(nlen), s, at);
}

/* At "</esi:": every end tag is consumed by its element, so this one has
 * no start tag. */
static int stray_end_tag(parser *p, size_t at, size_t end) {
  size_t name, nlen;
  int rc = element_name(p, at, end, 1, &name, &nlen);
  if (rc)
    return rc;
  return dn__error_set(p->err, DN__ESI_EMARKUP, at,
                       "</esi:%.*s> without a start tag at byte %zu",
                       shown_len(nlen), p->in + name, at);
}

static int scan(parser *p, size_t i, size_t end);

/* ESI 1.0 §3.8: "<!--esi" ... "-->"; the markers go, the content is ESI.
 * The content ends at the first "-->", as an XML comment does, so a
 * "<!--esi" inside it has no end and fails. */
static int esi_comment(parser *p, size_t at, size_t end, size_t *next) {
  size_t close = find(p, at + 7, end, "-->");
  if (close == NOT_FOUND)
    return unclosed(p, at, "<!--esi");
  int rc = scan(p, at + 7, close);
  if (rc)
    return rc;
  *next = close + 3;
  return 0;
}

/* Parses input [i, end): text and markup. */
static int scan(parser *p, size_t i, size_t end) {
  size_t text = i;
  while (i < end) {
    const char *lt = memchr(p->in + i, '<', end - i);
    if (!lt)
      break;
    size_t at = (size_t)(lt - p->in), next = 0;
    int kind = starts(p, at, end, "<esi:")     ? 1
               : starts(p, at, end, "</esi:")  ? 2
               : starts(p, at, end, "<!--esi") ? 3
                                               : 0;
    if (!kind) {
      i = at + 1;
      continue;
    }
    int rc = emit_text(p, text, at);
    if (!rc)
      rc = kind == 1   ? element(p, at, end, &next)
           : kind == 2 ? stray_end_tag(p, at, end)
                       : esi_comment(p, at, end, &next);
    if (rc)
      return rc;
    i = text = next;
  }
  return emit_text(p, text, end);
}

/* ---- public ---------------------------------------------------------- */

int dn__esi_parse(const void *body, size_t len, const dn__esi_limits *lim,
                  dn__esi_doc **out, dn_error *err) {
  if (!out || (!body && len))
    return dn__error_set(err, DN_EINVAL, 0, "no body or no output");
  size_t max_bytes =
      lim && lim->max_bytes ? lim->max_bytes : DN__ESI_DEFAULT_MAX_BYTES;
  if (len > max_bytes || len > (size_t)-1 / 2)
    return dn__error_set(err, DN_ETOOBIG, max_bytes,
                         "body of %zu bytes is over the limit of %zu bytes",
                         len, max_bytes);
  parser p;
  memset(&p, 0, sizeof p);
  p.in = body;
  p.len = len;
  p.max_includes = lim && lim->max_includes ? lim->max_includes
                                            : DN__ESI_DEFAULT_MAX_INCLUDES;
  p.err = err;
  dn__vec_init(&p.items, sizeof(dn__esi_item));
  p.doc = dn__malloc(sizeof(dn__esi_doc) + len);
  if (!p.doc)
    return nomem(&p, 0);
  memset(p.doc, 0, sizeof(dn__esi_doc));
  int rc = len ? scan(&p, 0, len) : 0;
  if (rc) {
    dn__vec_free(&p.items);
    dn__free(p.doc);
    return rc;
  }
  p.doc->items = p.items.items;
  p.doc->count = p.items.len;
  *out = p.doc;
  return 0;
}

size_t dn__esi_count(const dn__esi_doc *d) { return d ? d->count : 0; }

const dn__esi_item *dn__esi_at(const dn__esi_doc *d, size_t i) {
  return d && i < d->count ? &d->items[i] : NULL;
}

size_t dn__esi_includes(const dn__esi_doc *d) { return d ? d->includes : 0; }

dn_slice dn__esi_bytes(const dn__esi_doc *d) {
  dn_slice s = {NULL, 0};
  if (d) {
    s.ptr = d->bytes;
    s.len = d->used;
  }
  return s;
}

void dn__esi_free(dn__esi_doc *d) {
  if (!d)
    return;
  dn__free(d->items);
  dn__free(d);
}
