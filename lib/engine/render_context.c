/* render_context.c - the render context: what a renderer (or a framework
 * writing directly with dn_engine_put_begin) builds up.
 *
 * A render collects body bytes with holes at positions, headers, tags,
 * vary names and lifetimes. Every call validates its input first and
 * changes nothing when it fails; after dn_render_fail every call returns
 * DN_ESTATE.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "engine_internal.h"
#include "text.h"
#include "uritpl.h"

_Thread_local int dn__in_render;

#define DN__VARY_NAME_MAX 256

int dn__render_init(dn_render *r, dn_engine *e, const char *uri, size_t len,
                    const dn_request *req, int cacheable) {
  memset(r, 0, sizeof *r);
  r->uri = dn__strndup(uri, len);
  if (!r->uri)
    return DN_ENOMEM;
  r->e = e;
  r->uri_len = len;
  r->req = req;
  r->cacheable = cacheable;
  r->status = 200;
  r->ttl_s = -1;
  r->smaxage_s = -1;
  dn__buf_init(&r->body, 0);
  dn__vec_init(&r->headers, sizeof(dn__rhdr));
  dn__vec_init(&r->holes, sizeof(dn__rhole));
  dn__vec_init(&r->tags, sizeof(char *));
  dn__vec_init(&r->vary, sizeof(char *));
  dn__vec_init(&r->params, sizeof(dn__param));
  return 0;
}

static void free_strvec(dn__vec *v) {
  for (size_t i = 0; i < v->len; i++)
    dn__free(DN__VEC_AT(v, char *, i));
  dn__vec_free(v);
}

void dn__render_free(dn_render *r) {
  dn__free(r->uri);
  dn__buf_free(&r->body);
  for (size_t i = 0; i < r->headers.len; i++) {
    dn__free(DN__VEC_AT(&r->headers, dn__rhdr, i).name);
    dn__free(DN__VEC_AT(&r->headers, dn__rhdr, i).value);
  }
  dn__vec_free(&r->headers);
  for (size_t i = 0; i < r->holes.len; i++) {
    dn__free(DN__VEC_AT(&r->holes, dn__rhole, i).uri);
    dn__free(DN__VEC_AT(&r->holes, dn__rhole, i).alt);
  }
  dn__vec_free(&r->holes);
  free_strvec(&r->tags);
  free_strvec(&r->vary);
  for (size_t i = 0; i < r->params.len; i++) {
    dn__free(DN__VEC_AT(&r->params, dn__param, i).name);
    dn__free(DN__VEC_AT(&r->params, dn__param, i).value);
  }
  dn__vec_free(&r->params);
}

/* A render that ran out of memory (or over a size limit) is poisoned: the
 * renderer may ignore the code, but its truncated output is never used. */
static int sticky(dn_render *r, int rc) {
  if ((rc == DN_ENOMEM || rc == DN_ETOOBIG) && !r->failed) {
    r->failed = 1;
    r->fail_code = rc;
    r->fail_msg[0] = '\0';
  }
  return rc;
}

#define CHECK_LIVE(r)                                                          \
  do {                                                                         \
    if (!(r))                                                                  \
      return DN_EINVAL;                                                        \
    if ((r)->failed)                                                           \
      return DN_ESTATE;                                                        \
  } while (0)

const char *dn_render_uri(const dn_render *r) { return r->uri; }

dn_slice dn_render_method(const dn_render *r) {
  if (!r->req || !r->req->method.len)
    return dn_slice_from_cstr("GET");
  return r->req->method;
}

/* ---- query parameters -----------------------------------------------------
 */
/* Percent-decodes ('+' is kept as is: URIs, not forms; a '%' that starts
 * no escape stands for itself). NULL when out of memory. */
static char *decode_component(const char *s, size_t len) {
  dn__buf b;
  dn__buf_init(&b, 0);
  char *out = dn__percent_decode(s, len, DN__PCT_KEEP_BAD, &b)
                  ? NULL
                  : dn__buf_steal(&b, NULL);
  dn__buf_free(&b);
  return out;
}

/* Parses the query into r->params. All or nothing: on failure the entries
 * added so far are freed and the render is poisoned, so a renderer that
 * took a missing parameter for an absent one cannot cache that output. */
static int parse_params(dn_render *r) {
  const char *q = memchr(r->uri, '?', r->uri_len);
  if (!q)
    return 0;
  const char *end = r->uri + r->uri_len;
  const char *p = q + 1;
  int rc = 0;
  while (rc == 0 && p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *name_end = eq ? eq : stop;
    char *name = decode_component(p, (size_t)(name_end - p));
    char *value = eq ? decode_component(eq + 1, (size_t)(stop - eq - 1))
                     : dn__strndup("", 0);
    dn__param *prm = name && value ? dn__vec_push(&r->params) : NULL;
    if (!prm) {
      dn__free(name);
      dn__free(value);
      rc = DN_ENOMEM;
      break;
    }
    prm->name = name;
    prm->value = value;
    p = stop + 1;
  }
  if (rc) {
    for (size_t i = 0; i < r->params.len; i++) {
      dn__free(DN__VEC_AT(&r->params, dn__param, i).name);
      dn__free(DN__VEC_AT(&r->params, dn__param, i).value);
    }
    r->params.len = 0;
    return sticky(r, rc);
  }
  return 0;
}

const char *dn_render_param(dn_render *r, const char *name) {
  if (!r || !name)
    return NULL;
  if (!r->params_parsed) {
    if (parse_params(r))
      return NULL;
    r->params_parsed = 1;
  }
  for (size_t i = 0; i < r->params.len; i++) {
    dn__param *p = &DN__VEC_AT(&r->params, dn__param, i);
    if (strcmp(p->name, name) == 0)
      return p->value;
  }
  return NULL;
}

/* ---- request headers ------------------------------------------------------
 */
static int declared(const dn_render *r, const char *name) {
  for (size_t i = 0; i < r->vary.len; i++)
    if (strcasecmp(DN__VEC_AT(&r->vary, char *, i), name) == 0)
      return 1;
  return 0;
}

int dn_render_header(dn_render *r, const char *name, dn_slice *out) {
  CHECK_LIVE(r);
  if (!name || !out)
    return DN_EINVAL;
  if (r->cacheable && !r->uncacheable && !declared(r, name))
    return DN_ESTATE;
  size_t n = strlen(name);
  for (size_t i = 0; r->req && i < r->req->nheaders; i++) {
    const dn_header *h = &r->req->headers[i];
    if (h->name.len == n && strncasecmp(h->name.ptr, name, n) == 0) {
      *out = h->value;
      return 0;
    }
  }
  return DN_ENOTFOUND;
}

int dn_render_header_at(dn_render *r, size_t i, dn_header *out) {
  CHECK_LIVE(r);
  if (!out)
    return DN_EINVAL;
  if (r->cacheable && !r->uncacheable)
    return DN_ESTATE;
  if (!r->req || i >= r->req->nheaders)
    return DN_ENOTFOUND;
  *out = r->req->headers[i];
  return 0;
}

/* RFC 6265 §4.2.1: cookie-string = cookie-pair *( ";" SP cookie-pair ).
 * Whitespace around pairs is tolerated; every Cookie header is searched. */
static int find_cookie(dn_slice v, const char *name, dn_slice *out) {
  size_t n = strlen(name), i = 0;
  while (i < v.len) {
    while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t'))
      i++;
    size_t start = i;
    while (i < v.len && v.ptr[i] != ';')
      i++;
    const char *eq = memchr(v.ptr + start, '=', i - start);
    if (eq && (size_t)(eq - (v.ptr + start)) == n &&
        memcmp(v.ptr + start, name, n) == 0) {
      size_t vs = (size_t)(eq - v.ptr) + 1, ve = i;
      while (ve > vs && (v.ptr[ve - 1] == ' ' || v.ptr[ve - 1] == '\t'))
        ve--;
      if (ve - vs >= 2 && v.ptr[vs] == '"' && v.ptr[ve - 1] == '"')
        vs++, ve--;
      *out = (dn_slice){v.ptr + vs, ve - vs};
      return 0;
    }
    i++;
  }
  return DN_ENOTFOUND;
}

int dn_render_cookie(dn_render *r, const char *name, dn_slice *out) {
  CHECK_LIVE(r);
  if (!name || !out)
    return DN_EINVAL;
  if (r->cacheable && !r->uncacheable && !declared(r, "cookie"))
    return DN_ESTATE;
  for (size_t i = 0; r->req && i < r->req->nheaders; i++) {
    const dn_header *h = &r->req->headers[i];
    if (h->name.len == 6 && strncasecmp(h->name.ptr, "cookie", 6) == 0 &&
        find_cookie(h->value, name, out) == 0)
      return 0;
  }
  return DN_ENOTFOUND;
}

/* RFC 9110 §5.6.2: token = 1*tchar. */
static int is_tchar(int c) {
  return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int valid_token(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!is_tchar((unsigned char)*s))
      return 0;
  return 1;
}

/* RFC 9110 §5.5: field values are visible characters, SP and HTAB; no CR,
 * LF, NUL or other control bytes, so no header injection. */
static int valid_field_value(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return 0;
  }
  return 1;
}

int dn_render_vary(dn_render *r, const char *name) {
  CHECK_LIVE(r);
  if (!name || !valid_token(name))
    return DN_EHEADER;
  if (declared(r, name))
    return 0;
  char *copy = dn__strndup(name, strlen(name));
  if (!copy)
    return sticky(r, DN_ENOMEM);
  for (char *p = copy; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  char **slot = dn__vec_push(&r->vary);
  if (!slot) {
    dn__free(copy);
    return sticky(r, DN_ENOMEM);
  }
  *slot = copy;
  return 0;
}

/* ---- output ---------------------------------------------------------------
 */
int dn_render_write(dn_render *r, const void *data, size_t len) {
  CHECK_LIVE(r);
  if (!data && len)
    return DN_EINVAL;
  return sticky(r, dn__buf_append(&r->body, data, len));
}

int dn_render_write_str(dn_render *r, const char *s) {
  return dn_render_write(r, s, s ? strlen(s) : 0);
}

int dn_render_set_status(dn_render *r, int status) {
  CHECK_LIVE(r);
  if (status < 100 || status > 599)
    return DN_ERANGE;
  r->status = status;
  return 0;
}

/* A Vary field set by the renderer declares what the output depends on
 * (RFC 9110 §12.5.5), so it is handled as dn_render_vary calls: the names
 * become part of the cache key. "Vary: *" makes the resource uncacheable. */
static int declare_vary_list(dn_render *r, const char *value) {
  /* Check every name first: a call that fails changes nothing. */
  for (const char *p = value; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',' && *p != ' ' && *p != '\t')
      p++;
    size_t n = (size_t)(p - start);
    if (n > DN__VARY_NAME_MAX || (n > 1 && memchr(start, '*', n)))
      return DN_EHEADER;
    for (size_t i = 0; i < n; i++)
      if (!is_tchar((unsigned char)start[i]))
        return DN_EHEADER;
  }
  const char *p = value;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',' && *p != ' ' && *p != '\t')
      p++;
    size_t n = (size_t)(p - start);
    if (n == 1 && *start == '*') {
      r->uncacheable = 1;
      continue;
    }
    if (n == 0)
      continue;
    char name[DN__VARY_NAME_MAX + 1];
    if (n > DN__VARY_NAME_MAX)
      return DN_EHEADER;
    memcpy(name, start, n);
    name[n] = '\0';
    int rc = dn_render_vary(r, name);
    if (rc)
      return rc;
  }
  return 0;
}

int dn_render_set_header(dn_render *r, const char *name, const char *value) {
  CHECK_LIVE(r);
  if (!name || !value || !valid_token(name) || !valid_field_value(value))
    return DN_EHEADER;
  if (strcasecmp(name, "vary") == 0)
    return declare_vary_list(r, value);
  char *n = dn__strndup(name, strlen(name));
  char *v = dn__strndup(value, strlen(value));
  dn__rhdr *h = n && v ? dn__vec_push(&r->headers) : NULL;
  if (!h) {
    dn__free(n);
    dn__free(v);
    return sticky(r, DN_ENOMEM);
  }
  h->name = n;
  h->value = v;
  return 0;
}

int dn_render_embed(dn_render *r, const char *uri, int flags) {
  return dn_render_embed_alt(r, uri, NULL, flags);
}

int dn_render_embed_alt(dn_render *r, const char *uri, const char *alt,
                        int flags) {
  CHECK_LIVE(r);
  if (!uri || (flags & ~(DN_EMBED_UNCACHEABLE | DN_EMBED_OPTIONAL)))
    return DN_EINVAL;
  char *norm = NULL, *anorm = NULL;
  size_t len, alen = 0;
  int rc = dn_uri_normalize(uri, strlen(uri), &norm, &len, NULL);
  if (rc == 0 && alt)
    rc = dn_uri_normalize(alt, strlen(alt), &anorm, &alen, NULL);
  if (rc) {
    dn__free(norm);
    return sticky(r, rc);
  }
  dn__rhole *h = dn__vec_push(&r->holes);
  if (!h) {
    dn__free(norm);
    dn__free(anorm);
    return sticky(r, DN_ENOMEM);
  }
  h->uri = norm;
  h->len = len;
  h->alt = anorm;
  h->alt_len = alen;
  h->offset = r->body.len;
  h->flags = flags;
  return 0;
}

static int add_tag_n(dn_render *r, const char *tag, size_t len) {
  for (size_t i = 0; i < r->tags.len; i++) {
    const char *t = DN__VEC_AT(&r->tags, char *, i);
    if (strlen(t) == len && memcmp(t, tag, len) == 0)
      return 0;
  }
  char *copy = dn__strndup(tag, len);
  char **slot = copy ? dn__vec_push(&r->tags) : NULL;
  if (!slot) {
    dn__free(copy);
    return sticky(r, DN_ENOMEM);
  }
  *slot = copy;
  return 0;
}

int dn_render_add_tag(dn_render *r, const char *tag) {
  CHECK_LIVE(r);
  if (!tag)
    return DN_EINVAL;
  size_t len = strlen(tag);
  int rc = dn_tag_validate(tag, len, NULL);
  return rc ? rc : add_tag_n(r, tag, len);
}

int dn_render_add_uri_dependency(dn_render *r, const char *uri) {
  CHECK_LIVE(r);
  if (!uri)
    return DN_EINVAL;
  char tag[DN_URI_TAG_MAX + 1];
  size_t len;
  int rc = dn_uri_tag(uri, strlen(uri), tag, &len, NULL);
  return rc ? sticky(r, rc) : add_tag_n(r, tag, len);
}

int dn_render_add_tags_from_rows(dn_render *r, const char *tpl,
                                 const char *rows, size_t rows_len) {
  CHECK_LIVE(r);
  if (!tpl || !rows)
    return DN_EINVAL;
  dn_strings tags = {0};
  int rc = dn_uri_tags_from_rows(tpl, strlen(tpl), rows, rows_len, &tags, NULL);
  if (rc)
    return sticky(r, rc);
  /* All or nothing: remember where the list was, undo on failure. */
  size_t mark = r->tags.len;
  for (size_t i = 0; i < tags.count && rc == 0; i++)
    rc = add_tag_n(r, tags.items[i], tags.lens[i]);
  if (rc) {
    for (size_t i = mark; i < r->tags.len; i++)
      dn__free(DN__VEC_AT(&r->tags, char *, i));
    r->tags.len = mark;
  }
  dn_strings_free(&tags);
  return rc;
}

int dn_render_set_ttl(dn_render *r, uint64_t ttl_s) {
  CHECK_LIVE(r);
  if (ttl_s > (uint64_t)INT64_MAX / 1000)
    return DN_ERANGE;
  r->ttl_s = (int64_t)ttl_s;
  return 0;
}

int dn_render_set_s_maxage(dn_render *r, uint64_t s) {
  CHECK_LIVE(r);
  if (s > (uint64_t)INT64_MAX / 1000)
    return DN_ERANGE;
  r->smaxage_s = (int64_t)s;
  return 0;
}

int dn_render_set_stale(dn_render *r, uint32_t while_revalidate_s,
                        uint32_t if_error_s) {
  CHECK_LIVE(r);
  if (while_revalidate_s > DN_STALE_MAX_S || if_error_s > DN_STALE_MAX_S)
    return DN_ERANGE;
  r->swr_s = while_revalidate_s;
  r->sie_s = if_error_s;
  return 0;
}

int dn_render_set_expires_at(dn_render *r, uint64_t at_ms) {
  CHECK_LIVE(r);
  if (!at_ms)
    return DN_ERANGE;
  r->expires_at_ms = at_ms;
  return 0;
}

int dn_render_set_uncacheable(dn_render *r) {
  CHECK_LIVE(r);
  r->uncacheable = 1;
  return 0;
}

int dn_render_fail(dn_render *r, int code, const char *msg) {
  if (!r)
    return DN_EINVAL;
  if (code >= 0 || code <= DN__ERR_LAST)
    code = DN_ERENDER;
  if (!r->failed) {
    r->failed = 1;
    r->fail_code = code;
    size_t n = msg ? strlen(msg) : 0;
    if (n >= sizeof r->fail_msg)
      n = sizeof r->fail_msg - 1;
    if (n)
      memcpy(r->fail_msg, msg, n);
    r->fail_msg[n] = '\0';
  }
  return r->fail_code;
}

/* ---- the finished render as a shell ---------------------------------------
 */
int dn__render_to_shell(dn_render *r, uint64_t now_ms, dn__shell *s,
                        dn__vec *tagvers, dn__vec *hdrs, dn__vec *holes) {
  memset(s, 0, sizeof *s);
  s->status = r->status;
  s->created_ms = now_ms;
  s->ttl_s = r->ttl_s;
  s->smaxage_s = r->smaxage_s;
  s->swr_s = r->swr_s;
  s->sie_s = r->sie_s;
  if (r->ttl_s < 0 && r->e->default_ttl_s)
    s->ttl_s = (int64_t)r->e->default_ttl_s;
  if (r->expires_at_ms)
    s->expires_ms = r->expires_at_ms;
  else if (s->ttl_s >= 0)
    s->expires_ms = now_ms + (uint64_t)s->ttl_s * 1000;
  s->flags = r->uncacheable ? DN__REC_UNCACHEABLE : 0;
  dn__vec_init(tagvers, sizeof(dn__tagver));
  dn__vec_init(hdrs, sizeof(dn_header));
  dn__vec_init(holes, sizeof(dn__hole));
  if (dn__vec_reserve(tagvers, r->tags.len + 1) ||
      dn__vec_reserve(hdrs, r->headers.len) ||
      dn__vec_reserve(holes, r->holes.len))
    goto oom;
  if (dn_uri_tag_normalized(r->uri, r->uri_len, r->uri_tag, NULL))
    goto oom;
  DN__VEC_AT(tagvers, dn__tagver, 0).tag = dn_slice_from_cstr(r->uri_tag);
  tagvers->len = 1;
  for (size_t i = 0; i < r->tags.len; i++) {
    const char *t = DN__VEC_AT(&r->tags, char *, i);
    if (strcmp(t, r->uri_tag) == 0)
      continue;
    DN__VEC_AT(tagvers, dn__tagver, tagvers->len++).tag = dn_slice_from_cstr(t);
  }
  for (size_t i = 0; i < r->headers.len; i++) {
    dn__rhdr *h = &DN__VEC_AT(&r->headers, dn__rhdr, i);
    DN__VEC_AT(hdrs, dn_header, i) =
        (dn_header){dn_slice_from_cstr(h->name), dn_slice_from_cstr(h->value)};
  }
  hdrs->len = r->headers.len;
  for (size_t i = 0; i < r->holes.len; i++) {
    dn__rhole *h = &DN__VEC_AT(&r->holes, dn__rhole, i);
    DN__VEC_AT(holes, dn__hole, i) =
        (dn__hole){{h->uri, h->len}, {h->alt, h->alt_len}, h->offset, h->flags};
  }
  holes->len = r->holes.len;
  s->tags = tagvers->items;
  s->ntags = tagvers->len;
  s->headers = hdrs->items;
  s->nheaders = hdrs->len;
  s->holes = holes->items;
  s->nholes = holes->len;
  s->vary = NULL;
  s->nvary = 0;
  s->body = (dn_slice){r->body.data ? r->body.data : "", r->body.len};
  return 0;
oom:
  dn__vec_free(tagvers);
  dn__vec_free(hdrs);
  dn__vec_free(holes);
  return DN_ENOMEM;
}
