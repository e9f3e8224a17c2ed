/* purge_req.c - the request a purge backend builds, and small helpers the
 * backends share: string lists, JSON key arrays within an API's limits,
 * URL labels without credentials, and redaction of secrets.
 *
 * A backend never touches libcurl: it fills a dn_purge_req (method, URL,
 * fields, body), every field checked against RFC 9110 so nothing can
 * inject a header, and the loop turns it into a transfer. Fields holding a
 * credential are marked secret; any text the purger reports or logs is
 * scrubbed of their values.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

/* ---- string lists ------------------------------------------------------ */

void dn__strlist_init(dn__strlist *l) {
  dn__buf_init(&l->bytes, 0);
  dn__vec_init(&l->spans, sizeof(dn__span));
}

void dn__strlist_free(dn__strlist *l) {
  dn__buf_free(&l->bytes);
  dn__vec_free(&l->spans);
}

size_t dn__strlist_count(const dn__strlist *l) { return l->spans.len; }

dn_slice dn__strlist_at(const dn__strlist *l, size_t i) {
  dn__span s = DN__VEC_AT(&l->spans, dn__span, i);
  dn_slice out = {l->bytes.data + s.off, s.len};
  return out;
}

int dn__strlist_add(dn__strlist *l, const char *s, size_t len) {
  if (dn__vec_reserve(&l->spans, l->spans.len + 1))
    return DN_ENOMEM;
  size_t off = l->bytes.len;
  int rc = dn__buf_append(&l->bytes, s, len);
  if (rc)
    return rc == DN_ETOOBIG ? DN_ETOOBIG : DN_ENOMEM;
  dn__span *sp = dn__vec_push(&l->spans); /* reserved: cannot fail */
  sp->off = off;
  sp->len = len;
  return 0;
}

int dn__strlist_add_z(dn__strlist *l, const char *s, size_t len) {
  size_t mark = l->bytes.len;
  int rc = dn__strlist_add(l, s, len);
  if (rc == 0 && dn__buf_append_byte(&l->bytes, '\0')) {
    l->spans.len--;
    dn__buf_truncate(&l->bytes, mark);
    rc = DN_ENOMEM;
  }
  return rc;
}

int dn__strlist_add_all(dn__strlist *l, const dn__strlist *src) {
  size_t n = dn__strlist_count(src);
  if (n == 0)
    return 0;
  if (dn__vec_reserve(&l->spans, l->spans.len + n) ||
      dn__buf_reserve(&l->bytes, src->bytes.len))
    return DN_ENOMEM;
  size_t base = l->bytes.len;
  dn__buf_append(&l->bytes, src->bytes.data, src->bytes.len);
  for (size_t i = 0; i < n; i++) {
    dn__span *sp = dn__vec_push(&l->spans);
    *sp = DN__VEC_AT(&src->spans, dn__span, i);
    sp->off += base;
  }
  return 0;
}

static int slice_cmp(const void *a, const void *b) {
  const dn_slice *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->ptr, y->ptr, n);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

int dn__strlist_dedup(dn__strlist *l) {
  size_t n = dn__strlist_count(l);
  if (n < 2)
    return 0;
  dn_slice *s;
  if (dn__strlist_slices(l, &s))
    return DN_ENOMEM;
  qsort(s, n, sizeof *s, slice_cmp);
  dn__strlist out;
  dn__strlist_init(&out);
  int rc = dn__buf_reserve(&out.bytes, l->bytes.len) ||
                   dn__vec_reserve(&out.spans, n)
               ? DN_ENOMEM
               : 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (i == 0 || slice_cmp(&s[i - 1], &s[i]) != 0)
      rc = dn__strlist_add(&out, s[i].ptr, s[i].len);
  dn__free(s);
  if (rc) {
    dn__strlist_free(&out);
    return rc;
  }
  dn__strlist_free(l);
  *l = out;
  return 0;
}

int dn__strlist_slices(const dn__strlist *l, dn_slice **out) {
  size_t n = dn__strlist_count(l);
  *out = NULL;
  if (n == 0)
    return 0;
  dn_slice *s = dn__malloc(n * sizeof *s);
  if (!s)
    return DN_ENOMEM;
  for (size_t i = 0; i < n; i++)
    s[i] = dn__strlist_at(l, i);
  *out = s;
  return 0;
}

void dn__strlist_move(dn__strlist *dst, dn__strlist *src) {
  *dst = *src;
  dn__strlist_init(src);
}

/* ---- the request builder ---------------------------------------------- */

void dn__purge_req_init(dn_purge_req *r) {
  memset(r, 0, sizeof *r);
  dn__vec_init(&r->fields, sizeof(dn__field));
  dn__vec_init(&r->secrets, sizeof(char *));
}

/* Wipes and frees the secrets registered after the first `keep`. */
static void drop_secrets(dn_purge_req *r, size_t keep) {
  while (r->secrets.len > keep)
    dn__wipe_free(DN__VEC_AT(&r->secrets, char *, --r->secrets.len));
}

void dn__purge_req_reset(dn_purge_req *r) {
  for (size_t i = 0; i < r->fields.len; i++) {
    dn__field *f = &DN__VEC_AT(&r->fields, dn__field, i);
    dn__free(f->name);
    if (f->secret)
      dn__wipe_free(f->value);
    else
      dn__free(f->value);
  }
  dn__vec_free(&r->fields);
  drop_secrets(r, 0);
  dn__vec_free(&r->secrets);
  dn__free(r->url);
  dn__free(r->body);
  dn__purge_req_init(r);
}

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int dn_purge_req_set_method(dn_purge_req *req, const char *method) {
  size_t n = method ? strlen(method) : 0;
  if (!req || n == 0 || n >= sizeof req->method)
    return DN_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)method[i]))
      return DN_EINVAL;
  memcpy(req->method, method, n + 1);
  return 0;
}

int dn_purge_req_set_url(dn_purge_req *req, const char *url) {
  if (!req || dn__purge_check_url("url", url, NULL))
    return DN_EINVAL;
  char *copy = dn__strndup(url, strlen(url));
  if (!copy)
    return DN_ENOMEM;
  dn__free(req->url);
  req->url = copy;
  return 0;
}

static int add_secret(dn_purge_req *req, const char *s, size_t len) {
  if (len < 4)
    return 0; /* too short to be a credential worth hiding */
  if (dn__vec_reserve(&req->secrets, req->secrets.len + 1))
    return DN_ENOMEM;
  char *copy = dn__strndup(s, len);
  if (!copy)
    return DN_ENOMEM;
  *(char **)dn__vec_push(&req->secrets) = copy;
  return 0;
}

int dn_purge_req_add_secret(dn_purge_req *req, const char *secret) {
  if (!req || !secret)
    return DN_EINVAL;
  return add_secret(req, secret, strlen(secret));
}

/* Registers the words of a secret value ("Bearer <token>": the token), so
 * a server that echoes only the token is redacted too. */
static int add_secret_words(dn_purge_req *req, const char *v) {
  int rc = 0;
  while (rc == 0 && *v) {
    size_t skip = strspn(v, " \t"), len = strcspn(v + skip, " \t");
    v += skip;
    if (len >= 8)
      rc = add_secret(req, v, len);
    v += len;
  }
  return rc;
}

static int add_field(dn_purge_req *req, const char *name, const char *value,
                     int secret) {
  if (!req || !name || !value)
    return DN_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  if (dn_http_field_name_validate(name, nl, NULL) ||
      dn_http_field_value_validate(value, vl, NULL))
    return DN_EHEADER;
  if (dn__vec_reserve(&req->fields, req->fields.len + 1))
    return DN_ENOMEM;
  size_t nsecrets = req->secrets.len;
  if (secret && add_secret_words(req, value)) {
    drop_secrets(req, nsecrets);
    return DN_ENOMEM;
  }
  char *n = dn__strndup(name, nl), *v = dn__strndup(value, vl);
  if (!n || !v) {
    dn__free(n);
    dn__wipe_free(v);
    drop_secrets(req, nsecrets);
    return DN_ENOMEM;
  }
  dn__field *f = dn__vec_push(&req->fields);
  f->name = n;
  f->value = v;
  f->secret = secret;
  return 0;
}

int dn_purge_req_add_header(dn_purge_req *req, const char *name,
                            const char *value) {
  return add_field(req, name, value, 0);
}

int dn_purge_req_add_secret_header(dn_purge_req *req, const char *name,
                                   const char *value) {
  return add_field(req, name, value, 1);
}

int dn_purge_req_set_body(dn_purge_req *req, const void *body, size_t len) {
  if (!req || (!body && len))
    return DN_EINVAL;
  char *copy = dn__strndup(body ? body : "", len);
  if (!copy)
    return DN_ENOMEM;
  dn__free(req->body);
  req->body = copy;
  req->body_len = len;
  req->has_body = 1;
  return 0;
}

/* Replaces each occurrence of `secret` in text by "(redacted)". */
static void redact_one(char *text, size_t cap, const char *secret) {
  static const char mark[] = "(redacted)";
  size_t sl = strlen(secret), ml = sizeof mark - 1;
  if (sl < 4)
    return; /* too short to be a credential worth hiding */
  char *from = text, *hit;
  while ((hit = strstr(from, secret)) != NULL) {
    size_t tail = strlen(hit + sl);
    size_t room = cap - (size_t)(hit - text) - 1;
    size_t m = ml < room ? ml : room;
    size_t keep = m + tail > room ? room - m : tail;
    memmove(hit + m, hit + sl, keep);
    memcpy(hit, mark, m);
    hit[m + keep] = '\0';
    from = hit + m; /* never rescan the mark itself */
  }
}

void dn__purge_req_redact(const dn_purge_req *r, char *text, size_t cap) {
  if (!text || cap == 0)
    return;
  for (size_t i = 0; i < r->fields.len; i++) {
    const dn__field *f = &DN__VEC_AT(&r->fields, dn__field, i);
    if (f->secret)
      redact_one(text, cap, f->value);
  }
  for (size_t i = 0; i < r->secrets.len; i++)
    redact_one(text, cap, DN__VEC_AT(&r->secrets, char *, i));
}

void dn__purge_url_label(const char *url, char *out, size_t cap) {
  char *scheme = NULL, *host = NULL, *port = NULL;
  CURLU *u = curl_url();
  snprintf(out, cap, "(bad url)");
  if (!u)
    return;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
      snprintf(out, cap, "%s://%s:%s", scheme, host, port);
    else
      snprintf(out, cap, "%s://%s", scheme, host);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
}

void dn__purge_url_destination(const char *url, char *out, size_t cap) {
  char label[300], *path = NULL;
  size_t len = strnlen(out, cap);
  CURLU *u = curl_url();
  dn__purge_url_label(url, label, sizeof label);
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
    path = NULL;
  if (len < cap)
    snprintf(out + len, cap - len, "%s%s%s", len ? " " : "", label,
             path ? path : "");
  curl_free(path);
  curl_url_cleanup(u);
}

int dn__purge_check_url(const char *what, const char *s, dn_error *err) {
  if (!s || !*s)
    return dn__error_set(err, DN_ECONFIG, 0, "%s: empty URL", what);
  if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s: URL must start with http:// or https://", what);
  for (size_t i = 0; s[i]; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return dn__error_set(err, DN_ECONFIG, i,
                           "%s: URL has a space or control byte", what);
  CURLU *u = curl_url();
  if (!u)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, s, 0);
  curl_url_cleanup(u);
  if (uc != CURLUE_OK)
    return dn__error_set(err, DN_ECONFIG, 0, "%s: not a valid URL", what);
  return 0;
}

int dn__purge_strdup(const char *s, char **out) {
  *out = NULL;
  if (!s)
    return 0;
  *out = dn__strndup(s, strlen(s));
  return *out ? 0 : DN_ENOMEM;
}

char *dn__purge_join(const char *base, const char *path) {
  size_t bl = strlen(base), pl = strlen(path);
  while (bl && base[bl - 1] == '/')
    bl--;
  char *s = dn__malloc(bl + pl + 1);
  if (!s)
    return NULL;
  memcpy(s, base, bl);
  memcpy(s + bl, path, pl + 1);
  return s;
}

/* JSON keys are surrogate keys: printable ASCII without '"' or '\\'
 * (dn_tag_validate), so each takes its length plus two quotes and, after
 * the first, a comma; jansson escapes nothing in them. */
int dn__purge_json_keys(dn_purge_req *req, const char *field,
                        const dn_slice *keys, size_t n, size_t max_count,
                        size_t max_bytes, size_t *used) {
  size_t size = strlen(field) + 7; /* {"field":[]} */
  size_t take = 0;
  while (take < n && (max_count == 0 || take < max_count)) {
    size_t add = keys[take].len + 2 + (take ? 1 : 0);
    if (max_bytes && size + add > max_bytes)
      break;
    size += add;
    take++;
  }
  if (take == 0 && n > 0)
    return DN_ETOOBIG;
  json_t *arr = json_array(), *obj = json_object();
  int rc = arr && obj ? 0 : DN_ENOMEM;
  for (size_t i = 0; rc == 0 && i < take; i++)
    if (json_array_append_new(arr, json_stringn(keys[i].ptr, keys[i].len)))
      rc = DN_ENOMEM;
  if (rc == 0 && json_object_set(obj, field, arr))
    rc = DN_ENOMEM;
  char *text = rc ? NULL : json_dumps(obj, JSON_COMPACT);
  if (rc == 0 && !text)
    rc = DN_ENOMEM;
  if (rc == 0 && max_bytes && strlen(text) > max_bytes)
    rc = DN_ETOOBIG;
  if (rc == 0)
    rc = dn_purge_req_set_body(req, text, strlen(text));
  free(text);
  json_decref(arr);
  json_decref(obj);
  if (rc == 0)
    *used = take;
  return rc;
}
