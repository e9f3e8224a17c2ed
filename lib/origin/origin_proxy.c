/* origin_proxy.c - what origin mode does besides rendering: unsafe methods
 * passed through to the upstream and the invalidations that follow them
 * (RFC 9111 §4.4), and the same-origin test that both ESI includes and
 * Location fields go through.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "origin_internal.h"

/* ---- same-origin URIs -------------------------------------------------------
 */
/* The path of `ref` when it is an absolute URL, a network-path reference
 * ("//host/path") or an absolute path on `authority` (or on `host_field`,
 * the client's Host); NULL for another origin. */
/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), ended
 * by ':' before any '/', '?' or '#'. */
static int has_scheme(const char *ref) {
  size_t n = strcspn(ref, ":/?#");
  if (ref[n] != ':' || n == 0 ||
      !((ref[0] | 0x20) >= 'a' && (ref[0] | 0x20) <= 'z'))
    return 0;
  return strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789+-.") == n;
}

static const char *same_origin_path(const char *ref, const char *authority,
                                    dn_slice host_field) {
  const char *p = ref;
  if (strncasecmp(p, "http://", 7) == 0)
    p += 5;
  else if (strncasecmp(p, "https://", 8) == 0)
    p += 6;
  else if (has_scheme(p))
    return NULL;
  if (p[0] != '/' || p[1] != '/')
    return p == ref ? ref : NULL;
  p += 2;
  size_t al = strcspn(p, "/?#");
  const char *path = p[al] ? p + al : "/";
  size_t n = strlen(authority);
  if (al == n && strncasecmp(p, authority, n) == 0)
    return path;
  if (host_field.len && al == host_field.len &&
      strncasecmp(p, host_field.ptr, al) == 0)
    return path;
  /* The upstream's authority carries its port; a URL may leave out :80. */
  const char *colon = strrchr(authority, ':');
  if (colon && strcmp(colon, ":80") == 0 && al == (size_t)(colon - authority) &&
      strncasecmp(p, authority, al) == 0)
    return path;
  return NULL;
}

/* base + path, resolving a relative path against the page's directory
 * (RFC 3986 §5.2.3); dot segments are removed by the URI normalisation that
 * every embed and purge goes through. */
static int join(dn_origin *o, const char *page_path, const char *path,
                dn__buf *out) {
  int rc = dn__buf_append(out, o->base, o->base_len);
  if (rc == 0 && path[0] != '/') {
    const char *q = strpbrk(page_path, "?#");
    size_t pl = q ? (size_t)(q - page_path) : strlen(page_path);
    while (pl && page_path[pl - 1] != '/')
      pl--;
    rc = pl ? dn__buf_append(out, page_path, pl) : dn__buf_append(out, "/", 1);
  }
  return rc ? rc : dn__buf_append_cstr(out, path);
}

int dn__origin_include_uri(dn_origin *o, const char *page_uri, dn_slice src,
                           dn__buf *out, dn_error *err) {
  char *s = dn__strndup(src.ptr, src.len);
  if (!s)
    return DN_ENOMEM;
  int rc = 0;
  const char *path =
      same_origin_path(s, dn__upstream_authority(o->up), (dn_slice){0});
  if (!path)
    rc = dn__error_set(err, DN_EURI, 0,
                       "include of another host or scheme: %.200s", s);
  else
    rc = join(o, page_uri + o->base_len, path, out);
  dn__free(s);
  return rc;
}

/* ---- unsafe methods ---------------------------------------------------------
 */
static int is(dn_slice s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int field_is(dn_slice name, const char *lit) {
  return name.len == strlen(lit) && strncasecmp(name.ptr, lit, name.len) == 0;
}

static void invalidate_uri(dn_origin *o, const char *ref, dn_slice host,
                           const char *target) {
  const char *path = same_origin_path(ref, dn__upstream_authority(o->up), host);
  if (!path)
    return;
  dn__buf uri;
  dn__buf_init(&uri, 0);
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = join(o, target, path, &uri);
  if (rc == 0)
    rc = dn_engine_purge(o->e, uri.data, uri.len, &err);
  if (rc)
    dn__origin_log(o, 1, "invalidating %s after an unsafe request: %s",
                   uri.data ? uri.data : ref,
                   err.text[0] ? err.text : dn_strerror(rc));
  else
    __atomic_fetch_add(&o->st.invalidations, 1, __ATOMIC_RELAXED);
  dn__buf_free(&uri);
}

/* Donut-Invalidate: tag tag ... (spaces or commas). */
static void invalidate_tags(dn_origin *o, dn_slice v) {
  dn_slice tags[64];
  size_t n = 0, i = 0;
  while (i < v.len) {
    while (i < v.len &&
           (v.ptr[i] == ' ' || v.ptr[i] == ',' || v.ptr[i] == '\t'))
      i++;
    size_t start = i;
    while (i < v.len && v.ptr[i] != ' ' && v.ptr[i] != ',' && v.ptr[i] != '\t')
      i++;
    if (i > start && n < sizeof tags / sizeof tags[0])
      tags[n++] = (dn_slice){v.ptr + start, i - start};
  }
  if (!n)
    return;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_engine_invalidate_tags(o->e, tags, n, &err);
  if (rc)
    dn__origin_log(o, 1, "Donut-Invalidate: %s",
                   err.text[0] ? err.text : dn_strerror(rc));
  else
    __atomic_fetch_add(&o->st.invalidations, n, __ATOMIC_RELAXED);
}

/* RFC 9111 §4.4: after a non-error answer to an unsafe request, the target
 * URI and the same-origin URIs in Location and Content-Location. */
static void invalidate_after(dn_origin *o, const dn_server_request *req,
                             const dn__upstream_result *res, const char *target,
                             dn_slice host) {
  invalidate_uri(o, target, host, target);
  char ref[2048];
  for (size_t i = 0; i < dn_http_headers_count(res->fields); i++) {
    dn_http_field f = dn_http_headers_at(res->fields, i);
    if (field_is(f.name, "donut-invalidate")) {
      invalidate_tags(o, f.value);
      continue;
    }
    if ((!field_is(f.name, "location") &&
         !field_is(f.name, "content-location")) ||
        f.value.len >= sizeof ref)
      continue;
    memcpy(ref, f.value.ptr, f.value.len);
    ref[f.value.len] = '\0';
    invalidate_uri(o, ref, host, target);
  }
  (void)req;
}

static int reply_error(dn_server_reply *reply, int rc) {
  int status = rc == DN_ETIMEDOUT ? 504 : 502;
  const char *text =
      status == 504 ? "504 Gateway Timeout\n" : "502 Bad Gateway\n";
  int r = dn_server_reply_set(reply, status, "text/plain; charset=utf-8", text,
                              strlen(text));
  return r ? r : 1;
}

static int reply_from(dn_server_reply *reply, const dn__upstream_result *res) {
  const char *ctype = NULL;
  char ct[128];
  for (size_t i = 0; i < dn_http_headers_count(res->fields); i++) {
    dn_http_field f = dn_http_headers_at(res->fields, i);
    if (field_is(f.name, "content-type") && f.value.len < sizeof ct) {
      memcpy(ct, f.value.ptr, f.value.len);
      ct[f.value.len] = '\0';
      ctype = ct;
    }
  }
  int rc = dn_server_reply_set(reply, res->status, ctype, res->body.data,
                               res->body.len);
  char name[128], value[4096];
  for (size_t i = 0; rc == 0 && i < dn_http_headers_count(res->fields); i++) {
    dn_http_field f = dn_http_headers_at(res->fields, i);
    if (field_is(f.name, "content-type") ||
        !dn__origin_field_passes(f.name, 1) || f.name.len >= sizeof name ||
        f.value.len >= sizeof value)
      continue;
    memcpy(name, f.name.ptr, f.name.len);
    name[f.name.len] = '\0';
    memcpy(value, f.value.ptr, f.value.len);
    value[f.value.len] = '\0';
    int r = dn_server_reply_add_header(reply, name, value);
    rc = r == DN_ENOMEM ? r : 0; /* a field the server refuses is left out */
  }
  return rc ? rc : 1;
}

int dn_origin_handler(void *ud, const dn_server_request *req,
                      dn_server_reply *reply) {
  dn_origin *o = ud;
  if (!o || !req || !reply)
    return DN_EINVAL;
  if (is(req->method, "GET") || is(req->method, "HEAD"))
    return 0;
  int safe = is(req->method, "OPTIONS") || is(req->method, "TRACE");
  __atomic_fetch_add(&o->st.passes, 1, __ATOMIC_RELAXED);
  dn__origin_fields fl = {0};
  dn_slice host = {0};
  int rc = dn__origin_fields_common(&fl);
  for (size_t i = 0; rc == 0 && i < req->field_count; i++) {
    if (field_is(req->fields[i].name, "host"))
      host = req->fields[i].value;
    rc = dn__origin_fields_forward(&fl, req->fields[i].name,
                                   req->fields[i].value, 0);
  }
  char *method = dn__strndup(req->method.ptr, req->method.len);
  char *target = dn__strndup(req->target.ptr, req->target.len);
  if (rc == 0 && (!method || !target))
    rc = DN_ENOMEM;
  static const char only_origin_form[] =
      "400 Bad Request: origin-form targets only\n";
  if (rc == 0 && target[0] != '/') {
    rc = dn_server_reply_set(reply, 400, "text/plain; charset=utf-8",
                             only_origin_form, sizeof only_origin_form - 1);
    rc = rc ? rc : 1;
  }
  dn__upstream_result res;
  memset(&res, 0, sizeof res);
  dn_error err;
  memset(&err, 0, sizeof err);
  if (rc == 0 && target[0] == '/') {
    dn_slice body = {req->body.ptr ? req->body.ptr : "", req->body.len};
    rc = dn__upstream_exchange(o->up, method, target,
                               (const char *const *)fl.lines, body, &res, &err);
    if (rc && rc != DN_ENOMEM) {
      __atomic_fetch_add(rc == DN_ETIMEDOUT ? &o->st.upstream_timeouts
                                            : &o->st.upstream_errors,
                         1, __ATOMIC_RELAXED);
      dn__origin_log(o, 1, "%s", err.text);
      rc = reply_error(reply, rc);
    } else if (rc == 0) {
      if (!safe && res.status >= 200 && res.status < 400)
        invalidate_after(o, req, &res, target, host);
      rc = reply_from(reply, &res);
      dn__upstream_result_free(&res);
    }
  }
  dn__origin_fields_free(&fl);
  dn__free(method);
  dn__free(target);
  return rc;
}
