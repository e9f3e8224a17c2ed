/* uritpl.c - RFC 6570 URI templates (level 4) and URI tags from rows.
 *
 * Parsing turns a template into a list of parts: literals, stored already
 * encoded as RFC 6570 §3.1 asks, and expressions, each an operator and a
 * list of varspecs. A parsed template is never written again, so threads
 * may share it. Expansion follows the algorithm of RFC 6570 Appendix A and
 * reads the variables from a jansson object. Output goes into a dn__buf
 * that is cut back to its old length on any failure, so no partial output
 * ever escapes. dn_uri_tags_from_rows (BEAR.Sunday's fromAssoc) expands a
 * template once per row and collects the URI tags, first occurrence first.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "text.h"
#include "uritpl.h"

/* RFC 6570 §3.2.1 and Appendix A: how each operator expands. */
typedef struct op_def {
  char ch;       /* the operator; 0 for simple string expansion */
  char first;    /* written before the first defined value; 0 for none */
  char sep;      /* written between values */
  bool named;    /* name=value pairs */
  bool ifemp_eq; /* an empty value gives "name=" (else just "name") */
  bool reserved; /* reserved characters and pct-triplets pass through */
} op_def;

static const op_def ops[] = {
    {0, 0, ',', false, false, false},     {'+', 0, ',', false, false, true},
    {'#', '#', ',', false, false, true},  {'.', '.', '.', false, false, false},
    {'/', '/', '/', false, false, false}, {';', ';', ';', true, false, false},
    {'?', '?', '&', true, true, false},   {'&', '&', '&', true, true, false},
};
#define NOPS (sizeof ops / sizeof ops[0])

typedef struct tpl_var {
  size_t pos;      /* byte offset of the varspec in the template */
  size_t name_off; /* the varname as written, in dn_uritpl.text */
  size_t name_len;
  unsigned prefix; /* RFC 6570 §2.4.1 max-length; 0 when absent */
  bool explode;    /* RFC 6570 §2.4.2 */
} tpl_var;

typedef struct tpl_part {
  size_t pos;         /* byte offset in the template */
  int op;             /* index into ops, or -1 for a literal */
  size_t off, len;    /* literal: its encoded text in dn_uritpl.text */
  size_t var0, nvars; /* expression: its varspecs in dn_uritpl.vars */
} tpl_part;

struct dn_uritpl {
  char *text; /* encoded literals and variable names */
  tpl_part *parts;
  size_t nparts;
  tpl_var *vars;
  size_t nvars;
};

typedef struct parser {
  const char *s;
  size_t len, i;
  dn__buf text;
  tpl_part *parts;
  size_t nparts;
  tpl_var *vars;
  size_t nvars;
  dn_error *err;
} parser;

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* True when s[i..] starts with a pct-encoded triplet (RFC 3986 §2.1). */
static bool is_triplet(const char *s, size_t n, size_t i) {
  return s[i] == '%' && n - i >= 3 && dn__hex_value(s[i + 1], 0) >= 0 &&
         dn__hex_value(s[i + 2], 0) >= 0;
}

/* RFC 3986 §2.3 unreserved and §2.2 reserved characters. */
static bool is_unreserved(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_reserved(char c) {
  return c != '\0' && strchr(":/?#[]@!$&'()*+,;=", c) != NULL;
}

/* ---- parsing --------------------------------------------------------- */

static int parse_fail(parser *p, size_t pos, const char *why) {
  return dn__error_set(p->err, DN_ETEMPLATE, pos, "%s", why);
}

static int parse_nomem(parser *p, int rc) {
  return dn__error_set(p->err, rc, p->i, "%s", dn_strerror(rc));
}

/* Decodes one UTF-8 sequence (RFC 3629 §4). Returns its length, or 0 when
 * s does not start with a well-formed sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t len;
  uint32_t v, min;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    len = 2, v = s[0] & 0x1Fu, min = 0x80;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    len = 3, v = s[0] & 0x0Fu, min = 0x800;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    len = 4, v = s[0] & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[k] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[k] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

/* RFC 6570 §1.5: ucschar and iprivate, the non-ASCII literals. */
static bool is_ucs_literal(uint32_t cp) {
  if (cp < 0x10000)
    return (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFDCF) ||
           (cp >= 0xFDF0 && cp <= 0xFFEF);
  return (cp & 0xFFFF) <= 0xFFFD && !(cp >= 0xE0000 && cp < 0xE1000);
}

/* A non-ASCII literal: RFC 6570 §3.1 copies it pct-encoded as UTF-8. */
static int literal_utf8(parser *p) {
  const unsigned char *s = (const unsigned char *)p->s + p->i;
  uint32_t cp = 0;
  size_t n = utf8_decode(s, p->len - p->i, &cp);
  if (n == 0)
    return parse_fail(p, p->i, "invalid UTF-8 in a literal");
  if (!is_ucs_literal(cp))
    return dn__error_set(p->err, DN_ETEMPLATE, p->i,
                         "character U+%04X is not allowed in a template "
                         "(RFC 6570 §2.1)",
                         (unsigned)cp);
  for (size_t k = 0; k < n; k++) {
    char t[3] = {'%'};
    dn__hex_encode(t + 1, s + k, 1, DN__HEX_UPPER);
    int rc = dn__buf_append(&p->text, t, 3);
    if (rc)
      return parse_nomem(p, rc);
  }
  p->i += n;
  return 0;
}

/* One literal character (RFC 6570 §2.1 literals). */
static int literal_char(parser *p) {
  char c = p->s[p->i], b[8];
  if ((unsigned char)c >= 0x80)
    return literal_utf8(p);
  size_t n = 1;
  if (c == '%') {
    if (!is_triplet(p->s, p->len, p->i))
      return parse_fail(p, p->i, "'%' not followed by two hex digits");
    n = 3; /* an existing pct-triplet is copied as it is */
  } else if (c == '}') {
    return parse_fail(p, p->i, "'}' without a matching '{'");
  } else if ((unsigned char)c <= 0x20 || c == 0x7F || strchr("\"<>\\^`|", c)) {
    return dn__error_set(p->err, DN_ETEMPLATE, p->i,
                         "character %s is not allowed in a template "
                         "(RFC 6570 §2.1)",
                         dn__byte_show(c, b));
  }
  int rc = dn__buf_append(&p->text, p->s + p->i, n);
  if (rc)
    return parse_nomem(p, rc);
  p->i += n;
  return 0;
}

static int parse_literal(parser *p) {
  size_t start = p->i, mark = p->text.len;
  while (p->i < p->len && p->s[p->i] != '{') {
    int rc = literal_char(p);
    if (rc)
      return rc;
  }
  tpl_part *part = &p->parts[p->nparts++];
  part->pos = start;
  part->op = -1;
  part->off = mark;
  part->len = p->text.len - mark;
  return 0;
}

/* RFC 6570 §2.3 varchar: ALPHA / DIGIT / "_" / pct-encoded. Returns its
 * length at s[i], or 0. */
static size_t varchar_len(const parser *p, size_t i) {
  if (i >= p->len)
    return 0;
  if (is_alnum(p->s[i]) || p->s[i] == '_')
    return 1;
  return is_triplet(p->s, p->len, i) ? 3 : 0;
}

static int unclosed(parser *p, size_t open) {
  return parse_fail(p, open, "'{' is not closed by a '}'");
}

/* RFC 6570 §2.3: varname = varchar *( ["."] varchar ). */
static int parse_varname(parser *p, size_t open) {
  size_t start = p->i, k;
  char b[8];
  for (;;) {
    if ((k = varchar_len(p, p->i)) != 0)
      p->i += k;
    else if (p->i > start && p->i < p->len && p->s[p->i] == '.' &&
             varchar_len(p, p->i + 1))
      p->i++;
    else
      break;
  }
  if (p->i > start)
    return 0;
  if (p->i >= p->len)
    return unclosed(p, open);
  if (p->s[p->i] == '%')
    return parse_fail(p, p->i, "'%' not followed by two hex digits");
  return dn__error_set(p->err, DN_ETEMPLATE, p->i,
                       "expected a variable name, found %s (RFC 6570 §2.3)",
                       dn__byte_show(p->s[p->i], b));
}

/* RFC 6570 §2.4.1: max-length = %x31-39 0*3DIGIT. */
static int parse_prefix(parser *p, unsigned *out) {
  unsigned v = 0;
  size_t start = p->i;
  while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    if (p->i - start == 4 || (p->i == start && p->s[p->i] == '0'))
      break;
    v = v * 10 + (unsigned)(p->s[p->i++] - '0');
  }
  if (v == 0 || (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9'))
    return parse_fail(p, p->i,
                      "prefix length must be 1 to 9999 (RFC 6570 §2.4.1)");
  *out = v;
  return 0;
}

static int parse_varspec(parser *p, size_t open) {
  tpl_var *v = &p->vars[p->nvars];
  memset(v, 0, sizeof *v);
  v->pos = p->i;
  int rc = parse_varname(p, open);
  if (rc)
    return rc;
  v->name_off = p->text.len;
  v->name_len = p->i - v->pos;
  rc = dn__buf_append(&p->text, p->s + v->pos, v->name_len);
  if (rc)
    return parse_nomem(p, rc);
  if (p->i < p->len && p->s[p->i] == ':') {
    p->i++;
    rc = parse_prefix(p, &v->prefix);
  } else if (p->i < p->len && p->s[p->i] == '*') {
    p->i++;
    v->explode = true;
  }
  if (rc == 0)
    p->nvars++;
  return rc;
}

/* RFC 6570 §2.2: the operator, if any, after '{'. */
static int parse_operator(parser *p, int *op) {
  char c = p->s[p->i], b[8];
  *op = 0;
  if (c != '\0' && strchr("=,!@|", c))
    return dn__error_set(p->err, DN_ETEMPLATE, p->i,
                         "operator %s is reserved (RFC 6570 §2.2)",
                         dn__byte_show(c, b));
  for (size_t k = 1; k < NOPS; k++) {
    if (ops[k].ch == c) {
      *op = (int)k;
      p->i++;
      break;
    }
  }
  return 0;
}

/* RFC 6570 §2.2: "{" [ operator ] variable-list "}". */
static int parse_expr(parser *p) {
  size_t open = p->i++;
  int op = 0, rc;
  char b[8];
  if (p->i >= p->len)
    return unclosed(p, open);
  if ((rc = parse_operator(p, &op)) != 0)
    return rc;
  tpl_part *part = &p->parts[p->nparts];
  part->pos = open;
  part->op = op;
  part->var0 = p->nvars;
  for (;;) {
    if ((rc = parse_varspec(p, open)) != 0)
      return rc;
    if (p->i >= p->len)
      return unclosed(p, open);
    char c = p->s[p->i++];
    if (c == '}')
      break;
    if (c != ',')
      return dn__error_set(p->err, DN_ETEMPLATE, p->i - 1,
                           "unexpected %s in an expression "
                           "(expected ',' or '}')",
                           dn__byte_show(c, b));
  }
  part->nvars = p->nvars - part->var0;
  p->nparts++;
  return 0;
}

/* Sizes the part and varspec arrays from an upper bound: every expression
 * has one '{', every extra varspec one ','. */
static int parser_init(parser *p, const char *s, size_t len, dn_error *err) {
  size_t braces = 0, commas = 0;
  for (size_t i = 0; i < len; i++) {
    braces += s[i] == '{';
    commas += s[i] == ',';
  }
  memset(p, 0, sizeof *p);
  p->s = s;
  p->len = len;
  p->err = err;
  dn__buf_init(&p->text, 0);
  p->parts = dn__calloc(2 * braces + 1, sizeof *p->parts);
  p->vars = dn__calloc(braces + commas + 1, sizeof *p->vars);
  if (!p->parts || !p->vars)
    return parse_nomem(p, DN_ENOMEM);
  return 0;
}

static void parser_free(parser *p) {
  dn__buf_free(&p->text);
  dn__free(p->parts);
  dn__free(p->vars);
}

int dn_uritpl_parse(const char *tpl, size_t len, dn_uritpl **out,
                    dn_error *err) {
  if ((!tpl && len) || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no template or no output");
  if (len > DN_URITPL_MAX)
    return dn__error_set(err, DN_ETEMPLATE, DN_URITPL_MAX,
                         "template longer than %d bytes", DN_URITPL_MAX);
  parser p;
  dn_uritpl *t = NULL;
  int rc = parser_init(&p, tpl ? tpl : "", len, err);
  while (rc == 0 && p.i < p.len)
    rc = p.s[p.i] == '{' ? parse_expr(&p) : parse_literal(&p);
  if (rc)
    goto out;
  t = dn__calloc(1, sizeof *t);
  char *text = t ? dn__buf_steal(&p.text, NULL) : NULL;
  if (!text) {
    dn__free(t);
    rc = parse_nomem(&p, DN_ENOMEM);
    goto out;
  }
  t->text = text;
  t->parts = p.parts;
  t->nparts = p.nparts;
  t->vars = p.vars;
  t->nvars = p.nvars;
  p.parts = NULL;
  p.vars = NULL;
  *out = t;
out:
  parser_free(&p);
  return rc;
}

void dn_uritpl_free(dn_uritpl *tpl) {
  if (!tpl)
    return;
  dn__free(tpl->text);
  dn__free(tpl->parts);
  dn__free(tpl->vars);
  dn__free(tpl);
}

/* ---- numbers ----------------------------------------------------------- */

/* Lays out k significant digits `dig` whose value is 0.dig x 10^n the way
 * ECMA-262 Number::toString (§6.1.6.1.20) does, which is also the text
 * JSON.stringify writes: plain notation from 1e-7 up to 1e21, exponential
 * ("1e+21", "5e-324") outside it. */
static size_t layout_number(bool neg, const char *dig, int k, int n,
                            char *out) {
  size_t w = 0;
  if (neg)
    out[w++] = '-';
  if (k <= n && n <= 21) {
    memcpy(out + w, dig, (size_t)k);
    w += (size_t)k;
    for (int z = k; z < n; z++)
      out[w++] = '0';
  } else if (n > 0 && n <= 21) {
    memcpy(out + w, dig, (size_t)n);
    w += (size_t)n;
    out[w++] = '.';
    memcpy(out + w, dig + n, (size_t)(k - n));
    w += (size_t)(k - n);
  } else if (n > -6 && n <= 0) {
    out[w++] = '0';
    out[w++] = '.';
    for (int z = n; z < 0; z++)
      out[w++] = '0';
    memcpy(out + w, dig, (size_t)k);
    w += (size_t)k;
  } else {
    out[w++] = dig[0];
    if (k > 1) {
      out[w++] = '.';
      memcpy(out + w, dig + 1, (size_t)(k - 1));
      w += (size_t)(k - 1);
    }
    int e =
        snprintf(out + w, 8, "e%c%d", n > 0 ? '+' : '-', n > 0 ? n - 1 : 1 - n);
    w += e > 0 ? (size_t)e : 0;
  }
  out[w] = '\0';
  return w;
}

/* JSON numbers expand from their text, but jansson keeps only the value of
 * a number, not its text, and no library we depend on prints a double as
 * its shortest round-trip text, so this small piece is written here. The
 * fewest significant digits (1 to 17) that strtod reads back as the same
 * double are the digits the user most likely wrote: 37.76, not
 * 37.759999999999998. snprintf and strtod use the same (the thread's)
 * locale, so the round-trip test holds in any locale, and only digits and
 * the exponent are taken from the text, never its decimal point. */
size_t dn__uritpl_number_text(const json_t *num, char out[DN__URITPL_NUM_MAX]) {
  if (json_is_integer(num)) {
    int n = snprintf(out, DN__URITPL_NUM_MAX, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(num));
    return n > 0 ? (size_t)n : 0;
  }
  double d = json_real_value(num);
  char text[DN__URITPL_NUM_MAX], dig[20];
  for (int prec = 0; prec < 17; prec++) {
    snprintf(text, sizeof text, "%.*e", prec, d); /* "-d.ddde+XX" */
    if (strtod(text, NULL) == d)
      break;
  }
  int k = 0;
  const char *p = text;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9' && k < (int)sizeof dig)
      dig[k++] = *p;
  while (k > 1 && dig[k - 1] == '0')
    k--;
  int n = (int)strtol(*p ? p + 1 : p, NULL, 10) + 1;
  if (k == 1 && dig[0] == '0')
    n = 1; /* zero, of either sign, is "0" as in ECMA-262 */
  return layout_number(d < 0, dig, k, n, out);
}

/* ---- expansion ------------------------------------------------------- */

enum { V_UNDEF, V_SCALAR, V_LIST, V_ASSOC };

typedef struct expander {
  const dn_uritpl *t;
  const op_def *op;
  const tpl_var *var;
  dn__buf *out;
} expander;

/* Walks the defined members of a list or associative array: null members
 * are undefined and skipped (RFC 6570 §2.3, Appendix A). */
typedef struct members {
  json_t *c;
  size_t idx;
  void *it;
} members;

static void members_start(members *m, json_t *c) {
  m->c = c;
  m->idx = 0;
  m->it = json_is_object(c) ? json_object_iter(c) : NULL;
}

static bool members_next(members *m, const char **key, size_t *key_len,
                         json_t **val) {
  for (;;) {
    if (json_is_array(m->c)) {
      if (m->idx >= json_array_size(m->c))
        return false;
      *key = NULL;
      *val = json_array_get(m->c, m->idx++);
    } else {
      if (!m->it)
        return false;
      *key = json_object_iter_key(m->it);
      *key_len = json_object_iter_key_len(m->it);
      *val = json_object_iter_value(m->it);
      m->it = json_object_iter_next(m->c, m->it);
    }
    if (!json_is_null(*val))
      return true;
  }
}

static void scalar_text(json_t *v, char num[DN__URITPL_NUM_MAX], const char **s,
                        size_t *n) {
  if (json_is_string(v)) {
    *s = json_string_value(v);
    *n = json_string_length(v);
  } else if (json_is_number(v)) {
    *n = dn__uritpl_number_text(v, num);
    *s = num;
  } else {
    *s = json_is_true(v) ? "true" : "false";
    *n = strlen(*s);
  }
}

static int expand_fail(const expander *x, dn_error *err, const char *why) {
  const tpl_var *v = x->var;
  int n = v->name_len > 40 ? 40 : (int)v->name_len;
  return dn__error_set(err, DN_ETEMPLATE, v->pos, "variable '%.*s%s': %s", n,
                       x->t->text + v->name_off,
                       n < (int)v->name_len ? "..." : "", why);
}

/* Sorts a value into undefined, scalar, list or associative array. RFC
 * 6570 §2.3: a list or array without defined members is undefined. */
static int classify(const expander *x, json_t *v, int *kind, dn_error *err) {
  members m;
  const char *key;
  size_t klen, defined = 0;
  json_t *val;
  *kind = V_UNDEF;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_array(v) && !json_is_object(v)) {
    *kind = V_SCALAR;
    return 0;
  }
  for (members_start(&m, v); members_next(&m, &key, &klen, &val); defined++)
    if (json_is_array(val) || json_is_object(val))
      return expand_fail(x, err,
                         "a list or associative array may hold "
                         "only strings, numbers and booleans");
  if (defined == 0)
    return 0;
  /* RFC 6570 §2.4.1: prefix modifiers are not applicable to composite
   * values. */
  if (x->var->prefix)
    return expand_fail(x, err,
                       "a prefix modifier cannot apply to a list or "
                       "associative array (RFC 6570 §2.4.1)");
  *kind = json_is_array(v) ? V_LIST : V_ASSOC;
  return 0;
}

/* Copies s, pct-encoding every byte outside the operator's allowed set
 * (RFC 6570 §3.2.1): unreserved, plus reserved and existing pct-triplets
 * for "+" and "#". */
static int encode(dn__buf *out, const char *s, size_t n, bool reserved) {
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    for (;;) {
      if (run < n &&
          (is_unreserved(s[run]) || (reserved && is_reserved(s[run]))))
        run++;
      else if (run < n && reserved && is_triplet(s, n, run))
        run += 3;
      else
        break;
    }
    int rc = dn__buf_append(out, s + i, run - i);
    if (rc == 0 && run < n) {
      unsigned char c = (unsigned char)s[run++];
      char t[3] = {'%'};
      dn__hex_encode(t + 1, &c, 1, DN__HEX_UPPER);
      rc = dn__buf_append(out, t, 3);
    }
    if (rc)
      return rc;
    i = run;
  }
  return 0;
}

/* RFC 6570 §2.4.1: the first max characters (code points) of s, never
 * splitting a UTF-8 sequence or, in reserved expansion, a pct-triplet. */
static size_t prefix_len(const char *s, size_t n, unsigned max, bool reserved) {
  size_t i = 0;
  for (unsigned chars = 0; i < n && chars < max; chars++) {
    if (reserved && is_triplet(s, n, i)) {
      i += 3;
      continue;
    }
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
      i++;
  }
  return i;
}

static int append_name(const expander *x) {
  return dn__buf_append(x->out, x->t->text + x->var->name_off,
                        x->var->name_len);
}

/* Appends "=value", or ifemp when the value is empty (named operators). */
static int append_named_value(const expander *x, const char *s, size_t n) {
  if (n == 0)
    return x->op->ifemp_eq ? dn__buf_append_byte(x->out, '=') : 0;
  int rc = dn__buf_append_byte(x->out, '=');
  return rc ? rc : encode(x->out, s, n, x->op->reserved);
}

static int expand_scalar(const expander *x, json_t *v) {
  char num[DN__URITPL_NUM_MAX];
  const char *s;
  size_t n;
  scalar_text(v, num, &s, &n);
  if (x->var->prefix)
    n = prefix_len(s, n, x->var->prefix, x->op->reserved);
  if (!x->op->named)
    return encode(x->out, s, n, x->op->reserved);
  int rc = append_name(x);
  return rc ? rc : append_named_value(x, s, n);
}

/* A list or associative array without explode: "name=a,b" or "k,v,k,v". */
static int expand_joined(const expander *x, json_t *c) {
  char num[DN__URITPL_NUM_MAX];
  const char *key, *s;
  size_t klen, n;
  json_t *val;
  members m;
  int rc = 0;
  bool first = true;
  if (x->op->named && (rc = append_name(x)) == 0)
    rc = dn__buf_append_byte(x->out, '=');
  for (members_start(&m, c); rc == 0 && members_next(&m, &key, &klen, &val);) {
    if (!first && (rc = dn__buf_append_byte(x->out, ',')) != 0)
      break;
    first = false;
    if (key && (rc = encode(x->out, key, klen, x->op->reserved)) == 0)
      rc = dn__buf_append_byte(x->out, ',');
    scalar_text(val, num, &s, &n);
    if (rc == 0)
      rc = encode(x->out, s, n, x->op->reserved);
  }
  return rc;
}

/* One member of an exploded value: "name=v" or "key=v" for named
 * operators, else "v" or "key=v". */
static int exploded_member(const expander *x, const char *key, size_t klen,
                           json_t *val) {
  char num[DN__URITPL_NUM_MAX];
  const char *s;
  size_t n;
  int rc;
  scalar_text(val, num, &s, &n);
  if (x->op->named) {
    rc = key ? encode(x->out, key, klen, x->op->reserved) : append_name(x);
    return rc ? rc : append_named_value(x, s, n);
  }
  if (key) {
    rc = encode(x->out, key, klen, x->op->reserved);
    if (rc == 0)
      rc = dn__buf_append_byte(x->out, '=');
    if (rc)
      return rc;
  }
  return encode(x->out, s, n, x->op->reserved);
}

/* A list or associative array with explode (RFC 6570 §2.4.2): each member
 * becomes its own value, separated by the operator's separator. */
static int expand_exploded(const expander *x, json_t *c) {
  const char *key;
  size_t klen = 0;
  json_t *val;
  members m;
  int rc = 0;
  bool first = true;
  for (members_start(&m, c); rc == 0 && members_next(&m, &key, &klen, &val);) {
    if (!first && (rc = dn__buf_append_byte(x->out, x->op->sep)) != 0)
      break;
    first = false;
    rc = exploded_member(x, key, klen, val);
  }
  return rc;
}

int dn__uritpl_buf_fail(dn_error *err, int rc, size_t pos) {
  if (rc == DN_ETOOBIG)
    return dn__error_set(err, rc, pos, "expansion longer than the limit");
  return dn__error_set(err, rc, pos, "%s", dn_strerror(rc));
}

/* RFC 6570 Appendix A: one expression, varspec by varspec. */
static int expand_expr(const dn_uritpl *t, const tpl_part *part, json_t *vars,
                       dn__buf *out, dn_error *err) {
  expander x = {t, &ops[part->op], NULL, out};
  bool first = true;
  for (size_t k = 0; k < part->nvars; k++) {
    x.var = &t->vars[part->var0 + k];
    json_t *v = vars ? json_object_getn(vars, t->text + x.var->name_off,
                                        x.var->name_len)
                     : NULL;
    int kind, rc = classify(&x, v, &kind, err);
    if (rc)
      return rc;
    if (kind == V_UNDEF)
      continue;
    char lead = first ? x.op->first : x.op->sep;
    first = false;
    if (lead && (rc = dn__buf_append_byte(out, lead)) != 0)
      return dn__uritpl_buf_fail(err, rc, x.var->pos);
    if (kind == V_SCALAR)
      rc = expand_scalar(&x, v);
    else
      rc = x.var->explode ? expand_exploded(&x, v) : expand_joined(&x, v);
    if (rc)
      return dn__uritpl_buf_fail(err, rc, x.var->pos);
  }
  return 0;
}

int dn__uritpl_expand_json(const dn_uritpl *tpl, json_t *vars, dn__buf *out,
                           dn_error *err) {
  if (!tpl || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no template or no output");
  if (vars && !json_is_object(vars))
    return dn__error_set(err, DN_EINVAL, 0,
                         "the variables must be a JSON object");
  size_t mark = out->len;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < tpl->nparts; k++) {
    const tpl_part *part = &tpl->parts[k];
    if (part->op >= 0)
      rc = expand_expr(tpl, part, vars, out, err);
    else if ((rc = dn__buf_append(out, tpl->text + part->off, part->len)))
      rc = dn__uritpl_buf_fail(err, rc, part->pos);
  }
  if (rc)
    dn__buf_truncate(out, mark);
  return rc;
}

/* ---- public expansion -------------------------------------------------- */

int dn__uritpl_load_json(const char *text, size_t len, bool want_array,
                         json_t **out, dn_error *err) {
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    int code =
        json_error_code(&je) == json_error_out_of_memory ? DN_ENOMEM : DN_EJSON;
    dn__error_set(err, code, je.position > 0 ? (size_t)je.position : 0, "%s",
                  je.text);
    if (err) {
      err->line = je.line > 0 ? je.line : 0;
      err->column = je.column > 0 ? je.column : 0;
    }
    return code;
  }
  if (want_array ? !json_is_array(j) : !json_is_object(j)) {
    json_decref(j);
    return dn__error_set(err, DN_EJSON, 0, "%s",
                         want_array ? "the rows must be a JSON array"
                                    : "the variables must be a JSON object");
  }
  *out = j;
  return 0;
}

int dn_uritpl_expand(const dn_uritpl *tpl, const char *vars_json,
                     size_t vars_len, char **out, size_t *out_len,
                     dn_error *err) {
  if (!tpl || !out || (!vars_json && vars_len))
    return dn__error_set(err, DN_EINVAL, 0, "no template or no output");
  json_t *vars = NULL;
  if (vars_json) {
    int rc = dn__uritpl_load_json(vars_json, vars_len, false, &vars, err);
    if (rc)
      return rc;
  }
  dn__buf b;
  dn__buf_init(&b, DN__URITPL_OUT_MAX);
  int rc = dn__uritpl_expand_json(tpl, vars, &b, err);
  if (rc)
    goto out;
  size_t n;
  char *s = dn__buf_steal(&b, &n);
  if (!s) {
    rc = dn__uritpl_buf_fail(err, DN_ENOMEM, 0);
    goto out;
  }
  *out = s;
  if (out_len)
    *out_len = n;
out:
  dn__buf_free(&b);
  json_decref(vars);
  return rc;
}

int dn_uritpl_expand_str(const char *tpl, size_t tpl_len, const char *vars_json,
                         size_t vars_len, char **out, size_t *out_len,
                         dn_error *err) {
  dn_uritpl *t = NULL;
  int rc = dn_uritpl_parse(tpl, tpl_len, &t, err);
  if (rc)
    return rc;
  rc = dn_uritpl_expand(t, vars_json, vars_len, out, out_len, err);
  dn_uritpl_free(t);
  return rc;
}
