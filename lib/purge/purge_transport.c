/* purge_transport.c - one purge request on the wire: a dn_purge_req
 * turned into a libcurl easy handle and sent over a curl loop
 * (lib/client/curl_loop.c), which drives libcurl's multi interface with
 * libuv and reports back here.
 *
 * The request's fields become headers, its body the POST fields. Of the
 * response only the status, the first DN__BODY_KEEP bytes of the body (for
 * error messages) and Retry-After (RFC 9110 §10.2.3) are kept. When the
 * transfer ends the easy handle is freed and the caller's callback gets
 * the result; nothing here knows about batches, jobs or retries.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http_util.h"
#include "purge_internal.h"

/* ---- responses ---------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  dn__purge_http *h = ud;
  size_t len = size * n, room = DN__BODY_KEEP - h->body_len;
  size_t take = len < room ? len : room;
  memcpy(h->body + h->body_len, data, take);
  h->body_len += take;
  h->body[h->body_len] = '\0';
  return len;
}

/* RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  dn__purge_http *h = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
    size_t vl = len - (sizeof name - 1);
    while (vl && (data[sizeof name - 2 + vl] == '\n' ||
                  data[sizeof name - 2 + vl] == '\r'))
      vl--;
    dn_slice v = dn__http_trim(data + sizeof name - 1, vl);
    size_t take =
        v.len < sizeof h->retry_after - 1 ? v.len : sizeof h->retry_after - 1;
    memcpy(h->retry_after, v.ptr, take);
    h->retry_after[take] = '\0';
  }
  return len;
}

/* The delay a Retry-After value asks for, in ms; -1 when it is absent or
 * malformed. */
int64_t dn__purge_retry_after_ms(const char *v, uint64_t now) {
  size_t len = strlen(v);
  if (len == 0)
    return -1;
  if (strspn(v, "0123456789") == len) {
    int64_t s;
    if (dn__http_delta_seconds(v, len, &s))
      return -1;
    return s * 1000;
  }
  int64_t t;
  if (dn_http_date_parse(v, len, (int64_t)(now / 1000), &t, NULL))
    return -1;
  int64_t d = t * 1000 - (int64_t)now;
  return d > 0 ? d : 0;
}

/* ---- transfers ---------------------------------------------------------- */

static int set_request(dn__purge_http *h, const dn_purge_req *r, CURL *e,
                       uint64_t timeout_ms, uint64_t connect_timeout_ms) {
  struct curl_slist *hdrs = NULL, *n;
  dn__buf line;
  dn__buf_init(&line, 0);
  for (size_t i = 0; i < r->fields.len; i++) {
    const dn__field *f = &DN__VEC_AT(&r->fields, dn__field, i);
    dn__buf_truncate(&line, 0);
    if (dn__buf_append_cstr(&line, f->name) || dn__buf_append(&line, ": ", 2) ||
        dn__buf_append_cstr(&line, f->value) ||
        !(n = curl_slist_append(hdrs, line.data)))
      goto fail;
    hdrs = n;
  }
  dn__buf_free(&line);
  /* No "Expect: 100-continue" round trip: the APIs answer at once. */
  if (!(n = curl_slist_append(hdrs, "Expect:")))
    goto fail;
  hdrs = n;
  h->hdrs = hdrs;
  const char *m = r->method[0] ? r->method : (r->has_body ? "POST" : "GET");
  if (curl_easy_setopt(e, CURLOPT_URL, r->url) ||
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs) ||
      curl_easy_setopt(e, CURLOPT_USERAGENT, "donut/" DN_VERSION_STRING) ||
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ||
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->curl_err) ||
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) ||
      curl_easy_setopt(e, CURLOPT_WRITEDATA, h) ||
      curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) ||
      curl_easy_setopt(e, CURLOPT_HEADERDATA, h) ||
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) ||
      curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms))
    return DN_ENOMEM;
  if (r->has_body && (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                       (curl_off_t)r->body_len) ||
                      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body)))
    return DN_ENOMEM;
  if (strcmp(m, r->has_body ? "POST" : "GET") != 0 &&
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m))
    return DN_ENOMEM;
  return 0;
fail:
  dn__buf_free(&line);
  curl_slist_free_all(hdrs);
  return DN_ENOMEM;
}

/* Frees the easy handle and the header list of h's transfer. */
static void release(dn__purge_http *h) {
  if (h->easy)
    curl_easy_cleanup(h->easy);
  curl_slist_free_all(h->hdrs);
  h->easy = NULL;
  h->hdrs = NULL;
}

static void on_done(void *ud, CURL *easy, CURLcode res) {
  dn__purge_http *h = ud;
  long status = 0;
  if (res == CURLE_OK)
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  release(h);
  h->done(h->ud, res, (int)status);
}

int dn__purge_http_start(dn__purge_http *h, dn__curl_loop *cl,
                         const dn_purge_req *req, uint64_t timeout_ms,
                         uint64_t connect_timeout_ms, dn__purge_http_done done,
                         void *ud) {
  h->body_len = 0;
  h->body[0] = '\0';
  h->retry_after[0] = '\0';
  h->curl_err[0] = '\0';
  h->hdrs = NULL;
  h->cl = cl;
  h->done = done;
  h->ud = ud;
  h->easy = curl_easy_init();
  int rc = h->easy
               ? set_request(h, req, h->easy, timeout_ms, connect_timeout_ms)
               : DN_ENOMEM;
  if (rc == 0)
    rc = dn__curl_loop_start(cl, h->easy, on_done, h);
  if (rc)
    release(h);
  return rc;
}

void dn__purge_http_abort(dn__purge_http *h) {
  if (!h->easy)
    return;
  dn__curl_loop_cancel(h->cl, h->easy);
  release(h);
}
