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
  /* The application writes its own paths, which start with the upstream's
   * prefix when it has one; the resource is the path the client sees. */
  const char *prefix = dn__upstream_prefix(o->up);
  size_t fl = strlen(prefix);
  if (fl && strncmp(path, prefix, fl) == 0 &&
      (path[fl] == '/' || path[fl] == '?' || path[fl] == '\0'))
    path += fl;
  if (rc == 0 && path[0] == '?') { /* RFC 3986 §5.2.2: the page's path */
    const char *q = strpbrk(page_path, "?#");
    rc = dn__buf_append(out, page_path,
                        q ? (size_t)(q - page_path) : strlen(page_path));
  } else if (rc == 0 && path[0] == '\0') {
    rc = dn__buf_append(out, "/", 1);
  } else if (rc == 0 && path[0] != '/') {
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
static void invalidate_batch(dn_origin *o, const dn_slice *tags, size_t n) {
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = n ? dn_engine_invalidate_tags(o->e, tags, n, &err) : 0;
  if (rc)
    dn__origin_log(o, 1, "Donut-Invalidate: %s",
                   err.text[0] ? err.text : dn_strerror(rc));
  else
    __atomic_fetch_add(&o->st.invalidations, n, __ATOMIC_RELAXED);
}

/* Every tag of the field, in batches; a tag that is not valid is logged
 * and skipped, and the others are still invalidated. */
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
    if (i == start)
      continue;
    dn_slice t = {v.ptr + start, i - start};
    dn_error err;
    if (dn_tag_validate(t.ptr, t.len, &err) != 0) {
      dn__origin_log(o, 1, "Donut-Invalidate: skipping %.*s: %s",
                     (int)(t.len > 80 ? 80 : t.len), t.ptr, err.text);
      continue;
    }
    tags[n++] = t;
    if (n == sizeof tags / sizeof tags[0]) {
      invalidate_batch(o, tags, n);
      n = 0;
    }
  }
  invalidate_batch(o, tags, n);
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

/* The upstream's answer to an unsafe request keeps its fields, validators
 * included (a client's next If-Match needs them), but for the framing and
 * hop-by-hop fields the server writes itself, Cache-Control (the server
 * sends no-store) and the fields meant for donut alone. */
static int reply_field_passes(dn_slice name) {
  static const char *const dropped[] = {"connection",        "keep-alive",
                                        "transfer-encoding", "te",
                                        "trailer",           "upgrade",
                                        "content-length",    "date",
                                        "proxy-connection",  "cache-status",
                                        "cache-control",     "content-type",
                                        "surrogate-control", "surrogate-key",
                                        "cache-tag",         "xkey",
                                        "donut-invalidate",  NULL};
  for (size_t i = 0; dropped[i]; i++)
    if (field_is(name, dropped[i]))
      return 0;
  return 1;
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
  for (size_t i = 0; rc == 0 && i < dn_http_headers_count(res->fields); i++) {
    dn_http_field f = dn_http_headers_at(res->fields, i);
    if (!reply_field_passes(f.name))
      continue;
    char *name = dn__strndup(f.name.ptr, f.name.len);
    char *value = dn__strndup(f.value.ptr, f.value.len);
    rc = name && value ? dn_server_reply_add_header(reply, name, value)
                       : DN_ENOMEM;
    dn__free(name);
    dn__free(value);
    if (rc == DN_EINVAL) /* one the server writes itself */
      rc = 0;
  }
  if (rc && rc != DN_ENOMEM) /* the fields do not fit: no partial answer */
    return reply_error(reply, DN_EUPSTREAM);
  return rc ? rc : 1;
}

/* The target as the engine names it: normalised (dot segments removed,
 * percent-encoding checked), so an unsafe request reaches the same upstream
 * path, within the upstream's prefix, as a GET of that target would.
 * Returns 0 with an owned "/path?query" in *out, DN_EURI or DN_ENOMEM. */
static int normal_target(dn_origin *o, dn_slice target, char **out) {
  if (target.len == 0 || target.ptr[0] != '/')
    return DN_EURI;
  dn__buf u;
  dn__buf_init(&u, 0);
  int rc = dn__buf_append(&u, o->base, o->base_len);
  rc = rc ? rc : dn__buf_append(&u, target.ptr, target.len);
  char *norm = NULL;
  size_t len = 0;
  if (rc == 0 && dn_uri_normalize(u.data, u.len, &norm, &len, NULL) != 0)
    rc = DN_EURI;
  if (rc == 0 &&
      (len <= o->base_len || strncmp(norm, o->base, o->base_len) != 0 ||
       norm[o->base_len] != '/'))
    rc = DN_EURI;
  if (rc == 0 && !(*out = dn__strndup(norm + o->base_len, len - o->base_len)))
    rc = DN_ENOMEM;
  dn__free(norm);
  dn__buf_free(&u);
  return rc;
}

int dn_origin_handler(void *ud, const dn_server_request *req,
                      dn_server_reply *reply) {
  dn_origin *o = ud;
  if (!o || !req || !reply)
    return DN_EINVAL;
  if (is(req->method, "GET") || is(req->method, "HEAD"))
    return 0;
  /* TRACE would echo the visitor's fields, cookies included, back to any
   * script that can send it (cross-site tracing): refused. */
  if (is(req->method, "TRACE")) {
    static const char no_trace[] = "405 Method Not Allowed\n";
    int r = dn_server_reply_set(reply, 405, "text/plain; charset=utf-8",
                                no_trace, sizeof no_trace - 1);
    return r ? r : 1;
  }
  int safe = is(req->method, "OPTIONS");
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
  char *target = NULL;
  if (rc == 0 && !method)
    rc = DN_ENOMEM;
  if (rc == 0)
    rc = normal_target(o, req->target, &target);
  static const char only_origin_form[] =
      "400 Bad Request: the target must be an origin-form path\n";
  if (rc == DN_EURI) {
    rc = dn_server_reply_set(reply, 400, "text/plain; charset=utf-8",
                             only_origin_form, sizeof only_origin_form - 1);
    rc = rc ? rc : 1;
  }
  dn__upstream_result res;
  memset(&res, 0, sizeof res);
  dn_error err;
  memset(&err, 0, sizeof err);
  if (rc == 0) {
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
