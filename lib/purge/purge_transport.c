/* purge_transport.c - a purger's HTTP transfers: libcurl's multi interface
 * driven by libuv.
 *
 * curl_multi_socket_action is the engine: libcurl's socket callback starts
 * and stops a uv_poll_t per socket, its timer callback arms one uv_timer_t,
 * and both handlers call back into libcurl and then collect the finished
 * transfers, which go back to purge_loop.c. A transfer is built from the
 * backend's dn_purge_req; the response body is kept only up to
 * DN__BODY_KEEP bytes (for error messages), and Retry-After is captured
 * (RFC 9110 §10.2.3).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http_util.h"
#include "purge_internal.h"

struct dn__sock {
  uv_poll_t poll;
  curl_socket_t fd;
  dn_purger *p;
  int closing;
  dn__sock *next, *prev;
};

/* ---- responses ---------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  dn__job *j = ud;
  size_t len = size * n, room = DN__BODY_KEEP - j->body_len;
  size_t take = len < room ? len : room;
  memcpy(j->body + j->body_len, data, take);
  j->body_len += take;
  j->body[j->body_len] = '\0';
  return len;
}

/* RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  dn__job *j = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
    size_t vl = len - (sizeof name - 1);
    while (vl && (data[sizeof name - 2 + vl] == '\n' ||
                  data[sizeof name - 2 + vl] == '\r'))
      vl--;
    dn_slice v = dn__http_trim(data + sizeof name - 1, vl);
    size_t take =
        v.len < sizeof j->retry_after - 1 ? v.len : sizeof j->retry_after - 1;
    memcpy(j->retry_after, v.ptr, take);
    j->retry_after[take] = '\0';
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

static int set_request(dn__job *j, CURL *e) {
  dn_purger *p = j->p;
  const dn_purge_req *r = &j->req;
  struct curl_slist *h = NULL, *n;
  dn__buf line;
  dn__buf_init(&line, 0);
  for (size_t i = 0; i < r->fields.len; i++) {
    const dn__field *f = &DN__VEC_AT(&r->fields, dn__field, i);
    dn__buf_truncate(&line, 0);
    if (dn__buf_append_cstr(&line, f->name) || dn__buf_append(&line, ": ", 2) ||
        dn__buf_append_cstr(&line, f->value) ||
        !(n = curl_slist_append(h, line.data)))
      goto fail;
    h = n;
  }
  dn__buf_free(&line);
  /* No "Expect: 100-continue" round trip: the APIs answer at once. */
  if (!(n = curl_slist_append(h, "Expect:")))
    goto fail;
  h = n;
  j->hdrs = h;
  const char *m = r->method[0] ? r->method : (r->has_body ? "POST" : "GET");
  if (curl_easy_setopt(e, CURLOPT_URL, r->url) ||
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, h) ||
      curl_easy_setopt(e, CURLOPT_USERAGENT, "donut/" DN_VERSION_STRING) ||
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ||
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
      curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)j) ||
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->curl_err) ||
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) ||
      curl_easy_setopt(e, CURLOPT_WRITEDATA, j) ||
      curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) ||
      curl_easy_setopt(e, CURLOPT_HEADERDATA, j) ||
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->o.timeout_ms) ||
      curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                       (long)p->o.connect_timeout_ms))
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
  curl_slist_free_all(h);
  return DN_ENOMEM;
}

int dn__purge_http_start(dn__job *j) {
  dn_purger *p = j->p;
  j->body_len = 0;
  j->body[0] = '\0';
  j->retry_after[0] = '\0';
  j->curl_err[0] = '\0';
  CURL *e = curl_easy_init();
  if (!e || set_request(j, e) || curl_multi_add_handle(p->multi, e)) {
    curl_slist_free_all(j->hdrs);
    j->hdrs = NULL;
    if (e)
      curl_easy_cleanup(e);
    return DN_ENOMEM;
  }
  j->easy = e;
  return 0;
}

void dn__purge_http_abort(dn__job *j) {
  if (!j->easy)
    return;
  curl_multi_remove_handle(j->p->multi, j->easy);
  curl_easy_cleanup(j->easy);
  curl_slist_free_all(j->hdrs);
  j->easy = NULL;
  j->hdrs = NULL;
}

static void check_multi(dn_purger *p) {
  CURLMsg *m;
  int left;
  while (!p->closing && (m = curl_multi_info_read(p->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle; /* m is invalid once the handle is gone */
    CURLcode res = m->data.result;
    char *priv = NULL;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    dn__job *j = (dn__job *)priv;
    dn__purge_http_abort(j);
    dn__purge_job_finished(j, res, res == CURLE_OK ? (int)status : 0);
  }
}

/* ---- libcurl <-> libuv ----------------------------------------------- */

static void on_sock_closed(uv_handle_t *h) {
  dn__sock *k = h->data;
  dn_purger *p = k->p;
  if (k->prev)
    k->prev->next = k->next;
  else
    p->socks = k->next;
  if (k->next)
    k->next->prev = k->prev;
  dn__free(k);
  p->handles_open--;
  dn__purge_maybe_release(p);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  dn__sock *k = h->data;
  dn_purger *p = k->p;
  int flags = 0, running;
  if (p->closing || k->closing)
    return;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(p->multi, k->fd, flags, &running);
  check_multi(p);
}

static void sock_close(dn__sock *k) {
  if (k->closing)
    return;
  k->closing = 1;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp,
                          void *socketp) {
  dn_purger *p = userp;
  dn__sock *k = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (k)
      sock_close(k);
    if (p->multi)
      curl_multi_assign(p->multi, s, NULL);
    return 0;
  }
  if (p->closing)
    return 0;
  if (!k) {
    k = dn__calloc(1, sizeof *k);
    if (!k || uv_poll_init_socket(p->loop, &k->poll, s) != 0) {
      dn__free(k);
      return -1;
    }
    k->poll.data = k;
    k->p = p;
    k->fd = s;
    k->next = p->socks;
    if (p->socks)
      p->socks->prev = k;
    p->socks = k;
    p->handles_open++;
    curl_multi_assign(p->multi, s, k);
  }
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) |
           (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  uv_poll_start(&k->poll, ev, on_poll);
  return 0;
}

static void on_curl_timeout(uv_timer_t *t) {
  dn_purger *p = t->data;
  int running;
  if (p->closing)
    return;
  curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi(p);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  dn_purger *p = userp;
  (void)m;
  if (p->closing)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&p->curl_timer);
  else
    uv_timer_start(&p->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

void dn__purge_http_init(dn_purger *p) {
  uv_timer_init(p->loop, &p->curl_timer);
  p->curl_timer.data = p;
  p->handles_open++;
  curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
  curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
}

void dn__purge_http_close(dn_purger *p) {
  uv_close((uv_handle_t *)&p->curl_timer, dn__purge_handle_closed);
  for (dn__sock *k = p->socks; k; k = k->next)
    sock_close(k);
  curl_multi_cleanup(p->multi);
  p->multi = NULL;
}
