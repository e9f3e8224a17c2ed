/* server_site.c - answering site requests: the application's handler
 * first, then the engine, then dn_rep_respond for the status and the
 * caching fields, plus the framing fields and Cache-Status.
 *
 * Everything here runs inside a job and touches only the engine, the
 * request and the job, so it may run on libuv's thread pool.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "donut/respond.h"
#include "error.h"
#include "server_internal.h"

static int no_length(int status) {
  return status < 200 || status == 204 || status == 304;
}

int dn__job_head(dn__job *j, const dn_http_headers *fields,
                 const char *cache_status, const char *extra) {
  dn__buf *h = &j->head;
  char line[64];
  snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", j->status,
           dn__status_reason(j->status));
  int rc = dn__buf_append_cstr(h, line);
  for (size_t i = 0; rc == 0 && i < dn_http_headers_count(fields); i++) {
    dn_http_field f = dn_http_headers_at(fields, i);
    rc = dn__buf_append(h, f.name.ptr, f.name.len);
    rc = rc ? rc : dn__buf_append(h, ": ", 2);
    rc = rc ? rc : dn__buf_append(h, f.value.ptr, f.value.len);
    rc = rc ? rc : dn__buf_append(h, "\r\n", 2);
  }
  if (rc == 0 && !no_length(j->status)) {
    rc = dn__buf_append_cstr(h, "Content-Length: ");
    rc = rc ? rc : dn__buf_append_u64(h, j->body_len);
    rc = rc ? rc : dn__buf_append(h, "\r\n", 2);
  }
  if (rc == 0 && cache_status) {
    rc = dn__buf_append_cstr(h, "Cache-Status: ");
    rc = rc ? rc : dn__buf_append_cstr(h, cache_status);
    rc = rc ? rc : dn__buf_append(h, "\r\n", 2);
  }
  if (rc == 0 && extra)
    rc = dn__buf_append_cstr(h, extra);
  if (rc)
    dn__buf_truncate(h, 0);
  return rc;
}

/* Date, Content-Type and Cache-Control: no-store for answers that are not
 * representations of resources (errors, handler replies, control API). */
static void simple_fields(dn__job *j, const char *content_type,
                          dn_http_headers *hs) {
  char date[DN_HTTP_DATE_LEN + 1];
  if (dn_http_date_format((int64_t)(dn__server_now_ms(j->srv) / 1000), date) ==
      0)
    dn_http_headers_add(hs, dn_slice_from_cstr("Date"),
                        dn_slice_from_cstr(date), NULL);
  if (content_type && *content_type)
    dn_http_headers_add(hs, dn_slice_from_cstr("Content-Type"),
                        dn_slice_from_cstr(content_type), NULL);
  dn_http_headers_add(hs, dn_slice_from_cstr("Cache-Control"),
                      dn_slice_from_cstr("no-store"), NULL);
}

void dn__job_reply(dn__job *j, int status, const char *content_type,
                   const char *cache_status, const char *extra) {
  j->status = status;
  j->body_len = j->body.len;
  j->send_body = !no_length(status) && !(j->req && j->req->method &&
                                         strcmp(j->req->method, "HEAD") == 0);
  dn_http_headers *hs = dn_http_headers_new();
  if (hs)
    simple_fields(j, content_type, hs);
  if (!hs || dn__job_head(j, hs, cache_status, extra))
    snprintf(j->error, sizeof j->error, "out of memory building a response");
  dn_http_headers_free(hs);
}

void dn__job_simple(dn__job *j, int status, const char *content_type,
                    const char *body, const char *extra) {
  dn__buf_truncate(&j->body, 0);
  if (body && dn__buf_append_cstr(&j->body, body))
    dn__buf_truncate(&j->body, 0);
  dn__job_reply(j, status, content_type, NULL, extra);
}

int dn_server_reply_add_header(dn_server_reply *r, const char *name,
                               const char *value) {
  static const char *const own[] = {
      "content-length", "content-type", "transfer-encoding",
      "connection",     "date",         "cache-status"};
  if (!r || !name || !value)
    return DN_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  if (dn_http_field_name_validate(name, nl, NULL) != 0 ||
      dn_http_field_value_validate(value, vl, NULL) != 0)
    return DN_EHEADER;
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (strcasecmp(name, own[i]) == 0)
      return DN_EINVAL;
  if (r->fields.len + nl + vl + 4 > DN_SERVER_MAX_HEADER_BYTES)
    return DN_ETOOBIG;
  size_t before = r->fields.len;
  int rc = dn__buf_append(&r->fields, name, nl);
  rc = rc ? rc : dn__buf_append(&r->fields, ": ", 2);
  rc = rc ? rc : dn__buf_append(&r->fields, value, vl);
  rc = rc ? rc : dn__buf_append(&r->fields, "\r\n", 2);
  if (rc)
    dn__buf_truncate(&r->fields, before);
  return rc;
}

int dn_server_reply_set(dn_server_reply *r, int status,
                        const char *content_type, const void *body,
                        size_t len) {
  if (!r || (len && !body))
    return DN_EINVAL;
  if (status < 100 || status > 599)
    return DN_ERANGE;
  const char *ct = content_type ? content_type : "";
  if (strlen(ct) >= sizeof r->content_type ||
      dn_http_field_value_validate(ct, strlen(ct), NULL) != 0)
    return DN_EHEADER;
  dn__buf nb;
  dn__buf_init(&nb, 0);
  if (dn__buf_append(&nb, body ? body : "", len))
    return DN_ENOMEM;
  dn__buf_free(&r->body);
  r->body = nb;
  r->status = status;
  snprintf(r->content_type, sizeof r->content_type, "%s", ct);
  return 0;
}

static void split_target(dn_slice t, dn_slice *path, dn_slice *query) {
  const char *q = memchr(t.ptr, '?', t.len);
  *path = (dn_slice){t.ptr, q ? (size_t)(q - t.ptr) : t.len};
  *query = q ? (dn_slice){q + 1, t.len - (size_t)(q - t.ptr) - 1}
             : (dn_slice){"", 0};
}

/* Returns 1 when the handler answered (the job is complete). */
static int run_handler(dn__job *j) {
  dn_server *srv = j->srv;
  const dn__req *q = j->req;
  dn_server_request r = {dn_slice_from_cstr(q->method),
                         q->target,
                         {0},
                         {0},
                         q->body,
                         q->fields,
                         q->nfields};
  split_target(q->target, &r.path, &r.query);
  dn_server_reply reply;
  memset(&reply, 0, sizeof reply);
  dn__buf_init(&reply.body, 0);
  dn__buf_init(&reply.fields, 0);
  int rc = srv->o.handler(srv->o.handler_ud, &r, &reply);
  if (rc == 0) {
    dn__buf_free(&reply.body);
    dn__buf_free(&reply.fields);
    return 0;
  }
  if (rc < 0 || reply.status == 0) {
    snprintf(j->error, sizeof j->error, "handler for %s %.*s: %s", q->method,
             (int)(q->target.len > 200 ? 200 : q->target.len), q->target.ptr,
             rc < 0 ? dn_strerror(rc) : "no reply");
    dn__buf_free(&reply.body);
    dn__buf_free(&reply.fields);
    dn__job_simple(j, 500, "text/plain; charset=utf-8",
                   "500 Internal Server Error\n", NULL);
    return 1;
  }
  dn__buf_free(&j->body);
  j->body = reply.body;
  dn__job_reply(j, reply.status, reply.content_type, "donut; fwd=method",
                reply.fields.len ? reply.fields.data : NULL);
  dn__buf_free(&reply.fields);
  return 1;
}

/* "/path?q" (origin-form) or "http://host/path?q" (absolute-form, RFC
 * 9112 §3.2.2) to the resource URI. */
static int resource_uri(dn__job *j, dn__buf *out) {
  dn_slice t = j->req->target;
  int slash = 0; /* the path is empty: it means "/" (RFC 9112 §3.2.2) */
  if (t.len && t.ptr[0] != '/') {
    size_t i = 0;
    while (i + 3 <= t.len && memcmp(t.ptr + i, "://", 3) != 0)
      i++;
    if (i + 3 > t.len)
      return DN_EURI;
    /* The authority ends at the first '/', '?' or '#' (RFC 3986 §3.2). */
    size_t a = i + 3;
    while (a < t.len && !strchr("/?#", t.ptr[a]))
      a++;
    if (a < t.len && t.ptr[a] == '#')
      return DN_EURI;
    slash = a == t.len || t.ptr[a] == '?';
    t = (dn_slice){t.ptr + a, t.len - a};
  }
  int rc = dn__buf_append(out, j->srv->base, j->srv->base_len);
  if (rc == 0 && slash)
    rc = dn__buf_append(out, "/", 1);
  rc = rc ? rc : dn__buf_append(out, t.ptr, t.len);
  return rc == DN_ENOMEM ? rc : rc ? DN_EURI : 0;
}

static void engine_error(dn__job *j, int rc, const dn_error *err) {
  char body[300];
  int status = rc == DN_EURI                                ? 400
               : rc == DN_ENORENDERER || rc == DN_ENOTFOUND ? 404
               : rc == DN_EUPSTREAM                         ? 502
               : rc == DN_ETIMEDOUT                         ? 504
                                                            : 500;
  if (status >= 500) {
    /* The details (an upstream's address, a store's error) go to the log,
     * not to the client. */
    snprintf(j->error, sizeof j->error, "GET %.*s: %s: %s",
             (int)(j->req->target.len > 100 ? 100 : j->req->target.len),
             j->req->target.ptr, dn_err_name(rc), err->text);
    snprintf(body, sizeof body, "%d %s\n", status, dn__status_reason(status));
  } else {
    snprintf(body, sizeof body, "%d %s: %s\n", status,
             dn__status_reason(status), err->text);
  }
  dn__job_simple(j, status, "text/plain; charset=utf-8", body, NULL);
}

static void cache_status(dn__job *j, const dn_rep *rep, dn_source src,
                         char *out, size_t cap) {
  int stored = dn_rep_cacheable(rep);
  if (src == DN_SOURCE_HIT) {
    j->cache = DN__CACHE_HIT;
    uint64_t exp = dn_rep_expires_at(rep), now = dn__server_now_ms(j->srv);
    if (exp > now)
      snprintf(out, cap, "donut; hit; ttl=%llu",
               (unsigned long long)((exp - now) / 1000));
    else
      snprintf(out, cap, "donut; hit");
  } else if (src == DN_SOURCE_RECOMPOSED) {
    /* RFC 9211 §2.2: the stored page could not be used as it was. */
    j->cache = DN__CACHE_RECOMPOSED;
    snprintf(out, cap, "donut; fwd=stale; detail=recomposed%s",
             stored ? "; stored" : "");
  } else {
    j->cache = DN__CACHE_MISS;
    snprintf(out, cap, "donut; fwd=miss%s", stored ? "; stored" : "");
  }
}

static void respond_rep(dn__job *j, dn_rep *rep, dn_source src) {
  const dn__req *q = j->req;
  dn_respond_options ro;
  dn_respond_options_init(&ro);
  ro.cdn = j->srv->o.cdn;
  ro.now_ms = dn__server_now_ms(j->srv);
  ro.max_age = j->srv->o.max_age;
  dn_http_request hr = {dn_slice_from_cstr(q->method), q->fields, q->nfields};
  dn_http_result res;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_rep_respond(rep, &hr, &ro, &res, &err);
  if (rc) {
    dn_rep_unref(rep);
    engine_error(j, rc, &err);
    return;
  }
  char cs[96];
  cache_status(j, rep, src, cs, sizeof cs);
  j->status = res.status;
  j->send_body = res.send_body;
  /* HEAD announces the length a GET would get (RFC 9110 §9.3.2); a 412
   * has no body at all. */
  int head = strcmp(q->method, "HEAD") == 0;
  j->body_len =
      res.send_body || (head && res.status == 200) ? dn_rep_body(rep).len : 0;
  j->rep = rep;
  if (dn__job_head(j, res.headers, cs, NULL))
    snprintf(j->error, sizeof j->error, "out of memory building a response");
  dn_http_result_free(&res);
}

int dn__site_run(dn__job *j, int cache_only) {
  const dn__req *q = j->req;
  int head_or_get =
      strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
  if (cache_only && !head_or_get)
    return 0;
  if (j->srv->o.handler && run_handler(j))
    return 1;
  if (!head_or_get) {
    dn__job_simple(j, 405, "text/plain; charset=utf-8",
                   "405 Method Not Allowed\n", "Allow: GET, HEAD\r\n");
    return 1;
  }
  dn__buf uri;
  dn__buf_init(&uri, DN_URI_MAX);
  dn_header hdrs[DN__REQ_MAX_FIELDS];
  for (size_t i = 0; i < q->nfields; i++)
    hdrs[i] = (dn_header){q->fields[i].name, q->fields[i].value};
  dn_request req = {dn_slice_from_cstr(q->method), hdrs, q->nfields};
  dn_error err;
  memset(&err, 0, sizeof err);
  dn_rep *rep = NULL;
  dn_get_info info = {DN_SOURCE_RENDERED, 0};
  int rc = resource_uri(j, &uri);
  if (rc)
    dn__error_set(&err, rc, 0, "bad request-target");
  else
    rc = dn_engine_get(j->srv->o.engine, uri.data, uri.len, &req,
                       cache_only ? DN_GET_CACHE_ONLY : 0, &rep, &info, &err);
  dn__buf_free(&uri);
  if (cache_only && rc == DN_ENOTFOUND)
    return 0; /* a miss: the caller renders it off the loop */
  if (rc)
    engine_error(j, rc, &err);
  else
    respond_rep(j, rep, info.source);
  return 1;
}
