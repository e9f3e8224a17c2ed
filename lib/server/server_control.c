/* server_control.c - the control API: bearer-token check, POST /purge,
 * GET /inspect, GET /stats (JSON) and GET /healthz. GET /metrics is in
 * server_metrics.c.
 *
 * The token is compared through SHA-256 digests with CRYPTO_memcmp, so
 * the comparison takes the same time whatever token is sent. A purge
 * request is checked whole (every tag valid, every URI normalisable)
 * before anything is invalidated, so a bad request changes nothing.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "server_internal.h"
#include "text.h"

#define JSON_TYPE "application/json"
#define PURGE_MAX 1000 /* tags or URIs in one purge request */

static int path_is(dn_slice target, const char *path) {
  size_t n = strlen(path);
  return target.len >= n && memcmp(target.ptr, path, n) == 0 &&
         (target.len == n || target.ptr[n] == '?');
}

int dn__control_loop_only(const dn__req *req) {
  return path_is(req->target, "/metrics") || path_is(req->target, "/stats") ||
         path_is(req->target, "/healthz");
}

int dn__query_param(dn_slice query, const char *name, dn__buf *out) {
  size_t nl = strlen(name);
  const char *p = query.ptr, *end = query.ptr + query.len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    /* An application/x-www-form-urlencoded value: '+' is a space. Out of
     * memory reads as a bad escape, as it always has. */
    if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0)
      return dn__percent_decode(eq + 1, (size_t)(stop - eq - 1),
                                DN__PCT_PLUS_SPACE, out)
                 ? -1
                 : 1;
    p = stop + 1;
  }
  return 0;
}

int dn_server_request_param(const dn_server_request *req, const char *name,
                            char *out, size_t cap, size_t *len) {
  if (!req || !name || !out)
    return DN_EINVAL;
  dn__buf v;
  dn__buf_init(&v, 0);
  int got = dn__query_param(req->query, name, &v);
  int rc = got == 1 ? 0 : got == 0 ? DN_ENOTFOUND : DN_EURI;
  if (rc == 0 && v.len + 1 > cap)
    rc = DN_ETOOBIG;
  if (rc == 0) {
    if (v.len)
      memcpy(out, v.data, v.len);
    out[v.len] = '\0';
    if (len)
      *len = v.len;
  }
  dn__buf_free(&v);
  return rc;
}

static void digest(const void *p, size_t n, unsigned char out[32]) {
  unsigned int len = 32;
  if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
    memset(out, 0, 32);
}

/* RFC 6750 §2.1: Authorization: Bearer <token>. */
static int authorized(const dn__job *j) {
  const dn__req *q = j->req;
  for (size_t i = 0; i < q->nfields; i++) {
    dn_slice n = q->fields[i].name, v = q->fields[i].value;
    if (n.len != 13 || strncasecmp(n.ptr, "Authorization", 13) != 0)
      continue;
    if (v.len < 8 || strncasecmp(v.ptr, "Bearer ", 7) != 0)
      return 0;
    unsigned char a[32], b[32];
    digest(v.ptr + 7, v.len - 7, a);
    digest(j->srv->token, j->srv->token_len, b);
    return CRYPTO_memcmp(a, b, 32) == 0;
  }
  return 0;
}

/* Answers with the JSON text of o (the reference is taken). */
static void reply_json(dn__job *j, int status, json_t *o, const char *extra) {
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  dn__buf_truncate(&j->body, 0);
  int rc = text ? dn__buf_append_cstr(&j->body, text) : DN_ENOMEM;
  free(text);
  if (rc == 0 && (rc = dn__buf_append_byte(&j->body, '\n')) == 0) {
    dn__job_reply(j, status, JSON_TYPE, NULL, extra);
    return;
  }
  dn__job_simple(j, 500, JSON_TYPE, "{\"error\":\"out of memory\"}\n", NULL);
}

static void reply_error(dn__job *j, int status, int code, const char *text,
                        const char *extra) {
  json_t *o = json_pack("{s:s,s:s}", "error", text, "code",
                        code ? dn_err_name(code) : "");
  reply_json(j, status, o, extra);
}

/* A URI given to the control API: a request path ("/news?id=1") names a
 * resource of the site; anything else is a resource URI. On success
 * *norm is owned (dn_free). */
static int resolve_uri(dn_server *srv, const char *s, size_t n, char **norm,
                       dn_error *err) {
  if (!(n && s[0] == '/'))
    return dn_uri_normalize(s, n, norm, NULL, err);
  dn__buf b;
  dn__buf_init(&b, DN_URI_MAX);
  int rc = dn__buf_append(&b, srv->base, srv->base_len);
  rc = rc ? rc : dn__buf_append(&b, s, n);
  if (rc == 0)
    rc = dn_uri_normalize(b.data, b.len, norm, NULL, err);
  else
    dn__error_set(err, DN_EURI, 0, "URI too long");
  dn__buf_free(&b);
  return rc ? (rc == DN_ENOMEM ? rc : DN_EURI) : 0;
}

/* 1 when v is absent or an array of at most PURGE_MAX strings. */
static int string_array(json_t *v) {
  if (!v)
    return 1;
  if (!json_is_array(v) || json_array_size(v) > PURGE_MAX)
    return 0;
  for (size_t i = 0; i < json_array_size(v); i++)
    if (!json_is_string(json_array_get(v, i)))
      return 0;
  return 1;
}

typedef struct purge_req {
  dn_slice tags[PURGE_MAX];
  size_t ntags;
  char *uris[PURGE_MAX];
  size_t nuris;
} purge_req;

/* Checks every tag and resolves every URI; nothing is invalidated yet. */
static int purge_check(dn__job *j, json_t *tags, json_t *uris, purge_req *p,
                       dn_error *err) {
  for (size_t i = 0; i < json_array_size(tags); i++) {
    json_t *t = json_array_get(tags, i);
    dn_slice s = {json_string_value(t), json_string_length(t)};
    int rc = dn_tag_validate(s.ptr, s.len, err);
    if (rc)
      return rc;
    p->tags[p->ntags++] = s;
  }
  for (size_t i = 0; i < json_array_size(uris); i++) {
    json_t *u = json_array_get(uris, i);
    int rc = resolve_uri(j->srv, json_string_value(u), json_string_length(u),
                         &p->uris[p->nuris], err);
    if (rc)
      return rc;
    p->nuris++;
  }
  return 0;
}

static int purge_apply(dn__job *j, const purge_req *p, json_t *done,
                       dn_error *err) {
  dn_engine *e = j->srv->o.engine;
  int rc = p->ntags ? dn_engine_invalidate_tags(e, p->tags, p->ntags, err) : 0;
  json_t *ta = json_array(), *ua = json_array();
  json_object_set_new(done, "tags", ta);
  json_object_set_new(done, "uris", ua);
  for (size_t i = 0; rc == 0 && i < p->ntags; i++)
    json_array_append_new(ta, json_stringn(p->tags[i].ptr, p->tags[i].len));
  for (size_t i = 0; rc == 0 && i < p->nuris; i++) {
    rc = dn_engine_purge(e, p->uris[i], strlen(p->uris[i]), err);
    if (rc == 0)
      json_array_append_new(ua, json_string(p->uris[i]));
  }
  return rc;
}

static void do_purge(dn__job *j) {
  const dn__req *q = j->req;
  if (strcmp(q->method, "POST") != 0) {
    reply_error(j, 405, 0, "use POST", "Allow: POST\r\n");
    return;
  }
  json_error_t je;
  json_t *root = json_loadb(q->body.ptr, q->body.len, 0, &je);
  json_t *tags = json_object_get(root, "tags");
  json_t *uris = json_object_get(root, "uris");
  if (!json_is_object(root) || !string_array(tags) || !string_array(uris) ||
      json_array_size(tags) + json_array_size(uris) == 0) {
    json_decref(root);
    reply_error(j, 400, DN_EJSON,
                "expected {\"tags\": [strings], \"uris\": [strings]} with at "
                "least one entry",
                NULL);
    return;
  }
  purge_req *p = dn__calloc(1, sizeof *p);
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = p ? purge_check(j, tags, uris, p, &err) : DN_ENOMEM;
  json_t *done = json_object();
  int applied = rc == 0;
  if (rc == 0)
    rc = done ? purge_apply(j, p, done, &err) : DN_ENOMEM;
  for (size_t i = 0; p && i < p->nuris; i++)
    dn_free(p->uris[i]);
  dn__free(p);
  json_decref(root);
  if (rc == 0) {
    reply_json(j, 200, done, NULL);
    return;
  }
  json_decref(done);
  if (applied)
    snprintf(j->error, sizeof j->error, "purge: %s", err.text);
  reply_error(j, applied || rc == DN_ENOMEM ? 500 : 400, rc,
              err.text[0] ? err.text : dn_strerror(rc), NULL);
}

static void do_inspect(dn__job *j) {
  dn_slice path, query = {"", 0};
  const char *qm = memchr(j->req->target.ptr, '?', j->req->target.len);
  path = j->req->target;
  if (qm)
    query = (dn_slice){qm + 1, path.len - (size_t)(qm + 1 - path.ptr)};
  dn__buf u;
  dn__buf_init(&u, DN_URI_MAX);
  if (dn__query_param(query, "uri", &u) != 1 || u.len == 0) {
    dn__buf_free(&u);
    reply_error(j, 400, DN_EINVAL, "expected /inspect?uri=URI", NULL);
    return;
  }
  dn_error err;
  memset(&err, 0, sizeof err);
  char *norm = NULL, *text = NULL;
  int rc = resolve_uri(j->srv, u.data, u.len, &norm, &err);
  if (rc == 0)
    rc = dn_engine_inspect_json(j->srv->o.engine, norm, strlen(norm), &text,
                                &err);
  dn__buf_free(&u);
  dn_free(norm);
  if (rc) {
    reply_error(j, rc == DN_EURI ? 400 : 500, rc, err.text, NULL);
    return;
  }
  dn__buf_truncate(&j->body, 0);
  rc = dn__buf_append_cstr(&j->body, text);
  rc = rc ? rc : dn__buf_append_byte(&j->body, '\n');
  dn_free(text);
  if (rc)
    dn__job_simple(j, 500, JSON_TYPE, "{\"error\":\"out of memory\"}\n", NULL);
  else
    dn__job_reply(j, 200, JSON_TYPE, NULL, NULL);
}

static void add_renderer(void *ud, const char *name, uint64_t renders) {
  json_object_set_new(ud, name, json_integer((json_int_t)renders));
}

static void do_stats(dn__job *j) {
  dn_engine_stats es;
  dn_engine_stats_get(j->srv->o.engine, &es);
  dn_server_stats sst;
  dn__latency lat[DN__CACHE_KINDS];
  dn__counters_read(j->srv, &sst, lat);
  const dn_server_stats *ss = &sst;
  json_t *r = json_object();
  dn_engine_renderer_stats(j->srv->o.engine, add_renderer, r);
  dn_store *store = dn_engine_store(j->srv->o.engine);
  dn_store_stats st;
  json_t *sj = json_pack("{s:s}", "name", dn_store_name(store));
  if (dn_store_stats_get(store, &st) == 0)
    json_object_update_new(
        sj, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "items",
                      (json_int_t)st.items, "bytes", (json_int_t)st.bytes,
                      "limit_bytes", (json_int_t)st.limit_bytes, "hits",
                      (json_int_t)st.hits, "misses", (json_int_t)st.misses,
                      "evictions", (json_int_t)st.evictions, "errors",
                      (json_int_t)st.errors));
#define I(x) (json_int_t)(x)
  json_t *o = json_pack(
      "{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o,s:o,"
      "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
      "engine", "gets", I(es.gets), "hits", I(es.hits), "misses", I(es.misses),
      "recomposes", I(es.recomposes), "renders", I(es.renders), "purges",
      I(es.purges), "invalidations", I(es.invalidations), "store_errors",
      I(es.store_errors), "raced_renders", I(es.raced_renders),
      "coalesced_waits", I(es.coalesced_waits), "renderers", r, "store", sj,
      "server", "connections_open", I(ss->connections_open),
      "connections_total", I(ss->connections_total), "connections_rejected",
      I(ss->connections_rejected), "requests", I(ss->requests), "timeouts",
      I(ss->timeouts), "bad_requests", I(ss->bad_requests), "responses_5xx",
      I(ss->responses_5xx), "bytes_out", I(ss->bytes_out));
#undef I
  reply_json(j, 200, o, NULL);
}

static void do_metrics(dn__job *j) {
  char *text = NULL;
  size_t len = 0;
  if (dn_server_metrics_text(j->srv, &text, &len)) {
    dn__job_simple(j, 500, "text/plain", "out of memory\n", NULL);
    return;
  }
  dn__buf_free(&j->body);
  dn__buf_init(&j->body, 0);
  j->body.data = text;
  j->body.len = len;
  j->body.cap = len + 1;
  dn__job_reply(j, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

void dn__control_run(dn__job *j) {
  const dn__req *q = j->req;
  if (!authorized(j)) {
    reply_error(j, 401, 0, "a valid bearer token is required",
                "WWW-Authenticate: Bearer realm=\"donut\"\r\n");
    return;
  }
  int get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
  if (path_is(q->target, "/purge"))
    do_purge(j);
  else if (!get && dn__control_loop_only(q))
    reply_error(j, 405, 0, "use GET", "Allow: GET, HEAD\r\n");
  else if (path_is(q->target, "/inspect"))
    get ? do_inspect(j)
        : reply_error(j, 405, 0, "use GET", "Allow: GET, HEAD\r\n");
  else if (path_is(q->target, "/metrics"))
    do_metrics(j);
  else if (path_is(q->target, "/stats"))
    do_stats(j);
  else if (path_is(q->target, "/healthz"))
    reply_json(j, 200, json_pack("{s:s}", "status", "ok"), NULL);
  else
    reply_error(j, 404, DN_ENOTFOUND,
                "no such endpoint: /purge, /inspect, /metrics, /stats, "
                "/healthz",
                NULL);
}
