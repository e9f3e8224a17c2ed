/* server_fixture.h - a demo server on a libuv loop in its own thread, and a
 * small blocking HTTP client over real TCP, for the server tests.
 *
 * Each test gets a fresh engine (memory store), the demo site and a server
 * on 127.0.0.1 with ports chosen by the kernel, small limits so the
 * robustness tests stay quick, and an access-log callback that records the
 * last statuses. The loop thread is stopped through a uv_async_t that
 * starts a graceful shutdown; teardown checks that the loop ended.
 */
#ifndef DN_SERVER_FIXTURE_H
#define DN_SERVER_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "demo_site.h"
#include "donut/server.h"
#include "test_support.h"

#define TOKEN "test-token-0123456789abcdef"
#define IO_TIMEOUT_MS 5000

typedef struct fixture {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  dn_engine *engine;
  demo_site *demo;
  dn_server *srv;
  int port, ctl_port;
  int offload;
  int done;
  int stopped;
  pthread_mutex_t mu;
  int statuses[64];
  int nstatus;
} fixture;

static void fx_access(void *ud, const dn_server_access *a) {
  fixture *f = ud;
  pthread_mutex_lock(&f->mu);
  if (f->nstatus < 64)
    f->statuses[f->nstatus++] = a->status;
  pthread_mutex_unlock(&f->mu);
}

/* When set, adjusts the options of the servers fx_start_ex starts (the
 * tests of limits and budgets). */
static void (*fx_tweak)(dn_server_options *o);

static void fx_closed(uv_handle_t *h) { (void)h; }

static void fx_done(void *ud) {
  fixture *f = ud;
  f->done = 1;
  uv_close((uv_handle_t *)&f->stop, fx_closed);
}

static void fx_on_stop(uv_async_t *a) {
  fixture *f = a->data;
  dn_server_shutdown(f->srv, fx_done, f);
}

static void *fx_thread(void *ud) {
  fixture *f = ud;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int port_of(const char *addr) {
  const char *c = strrchr(addr, ':');
  return c ? (int)strtol(c + 1, NULL, 10) : 0;
}

static fixture *fx_start_ex(int offload, uint32_t request_timeout_ms,
                            uint32_t idle_timeout_ms) {
  fixture *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  f->offload = offload;
  if (uv_loop_init(&f->loop) || dn_engine_new(NULL, &f->engine) ||
      demo_site_new(f->engine, &f->demo))
    return NULL;
  dn_server_options o;
  dn_server_options_init(&o);
  o.engine = f->engine;
  o.listen = "127.0.0.1:0";
  o.control = "127.0.0.1:0";
  o.control_token = TOKEN;
  o.offload = offload;
  o.max_header_bytes = 2048;
  o.max_body_bytes = 4096;
  o.max_connections = 4;
  o.request_timeout_ms = request_timeout_ms;
  o.idle_timeout_ms = idle_timeout_ms;
  o.handler = demo_site_handler;
  o.handler_ud = f->demo;
  o.access = fx_access;
  o.access_ud = f;
  if (fx_tweak)
    fx_tweak(&o);
  dn_error err;
  if (dn_server_new(&f->loop, &o, &f->srv, &err) != 0)
    fail_msg("server: %s", err.text);
  char a[64];
  dn_server_address(f->srv, 0, a, sizeof a);
  f->port = port_of(a);
  dn_server_address(f->srv, 1, a, sizeof a);
  f->ctl_port = port_of(a);
  uv_async_init(&f->loop, &f->stop, fx_on_stop);
  f->stop.data = f;
  pthread_create(&f->thread, NULL, fx_thread, f);
  return f;
}

static fixture *fx_start(int offload, uint32_t request_timeout_ms) {
  return fx_start_ex(offload, request_timeout_ms, 10000);
}

/* Graceful shutdown from the test thread; returns when the loop ended. */
static void fx_stop(fixture *f) {
  if (f->stopped)
    return;
  f->stopped = 1;
  uv_async_send(&f->stop);
  pthread_join(f->thread, NULL);
}

static void fx_free(fixture *f) {
  dn_server_free(f->srv);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  demo_site_free(f->demo);
  dn_engine_free(f->engine);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

static int fx_setup_inline(void **state) {
  *state = fx_start(0, 300);
  return *state ? 0 : -1;
}
static int fx_setup_offload(void **state) {
  *state = fx_start(1, 300);
  return *state ? 0 : -1;
}
/* Impatient with idle peers (300 ms), patient with requests. */
static int fx_setup_inline_idle(void **state) {
  *state = fx_start_ex(0, 10000, 300);
  return *state ? 0 : -1;
}
static int fx_setup_offload_idle(void **state) {
  *state = fx_start_ex(1, 10000, 300);
  return *state ? 0 : -1;
}
/* Patient variants for tests that hold a request open on purpose. */
static int fx_setup_inline_patient(void **state) {
  *state = fx_start(0, 10000);
  return *state ? 0 : -1;
}
static int fx_setup_offload_patient(void **state) {
  *state = fx_start(1, 10000);
  return *state ? 0 : -1;
}
static int fx_teardown(void **state) {
  fixture *f = *state;
  fx_stop(f);
  assert_true(f->done);
  fx_free(f);
  return 0;
}

/* ---- the client -----------------------------------------------------------
 */
static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void send_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    s += w;
    n -= (size_t)w;
  }
}

static void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

/* Reads some bytes: >0, 0 at EOF, -1 on error or timeout. */
static ssize_t recv_some(int fd, char *buf, size_t cap) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
    return -1;
  return recv(fd, buf, cap, 0);
}

typedef struct resp {
  int status;
  char head[8192];
  char body[65536];
  size_t body_len;
} resp;

/* Buffered reader over one connection. */
typedef struct conn {
  int fd;
  char buf[131072];
  size_t len;
} conn;

static conn *conn_open(int port) {
  conn *c = calloc(1, sizeof *c);
  c->fd = tcp_connect(port);
  assert_true(c->fd >= 0);
  return c;
}

static void conn_close_fd(conn *c) {
  close(c->fd);
  free(c);
}

/* Reads one response; for HEAD requests pass head_only. Returns 0, or -1
 * when the connection closed or timed out first. */
static int read_resp(conn *c, resp *r, int head_only) {
  memset(r, 0, sizeof *r);
  char *end;
  while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
    ssize_t n = recv_some(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n <= 0)
      return -1;
    c->len += (size_t)n;
  }
  size_t hl = (size_t)(end - c->buf) + 4;
  memcpy(r->head, c->buf, hl < sizeof r->head ? hl : sizeof r->head - 1);
  r->status = (int)strtol(c->buf + 9, NULL, 10);
  size_t cl = 0;
  char *p = strcasestr(r->head, "\r\nContent-Length: ");
  if (p && !head_only && r->status != 304 && r->status >= 200)
    cl = (size_t)strtoul(p + 18, NULL, 10);
  while (c->len < hl + cl) {
    ssize_t n = recv_some(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n <= 0)
      return -1;
    c->len += (size_t)n;
  }
  memcpy(r->body, c->buf + hl, cl < sizeof r->body ? cl : sizeof r->body - 1);
  r->body_len = cl;
  memmove(c->buf, c->buf + hl + cl, c->len - hl - cl);
  c->len -= hl + cl;
  return 0;
}

/* 1 when the peer closes the connection (EOF or reset) before sending
 * anything more. */
static int closed_by_peer(conn *c) {
  char tmp[256];
  if (c->len)
    return 0;
  ssize_t n = recv_some(c->fd, tmp, sizeof tmp);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* The value of header `name` in r (first line only), or "". */
static const char *hdr(const resp *r, const char *name, char *out, size_t cap) {
  char pat[128];
  snprintf(pat, sizeof pat, "\r\n%s: ", name);
  const char *p = strcasestr(r->head, pat);
  out[0] = '\0';
  if (!p)
    return out;
  p += strlen(pat);
  const char *e = strstr(p, "\r\n");
  snprintf(out, cap, "%.*s", (int)(e - p), p);
  return out;
}

/* One request on a new connection. */
static void fetch(int port, const char *req, resp *r) {
  conn *c = conn_open(port);
  send_str(c->fd, req);
  assert_int_equal(read_resp(c, r, strncmp(req, "HEAD", 4) == 0), 0);
  conn_close_fd(c);
}

static void get(fixture *f, const char *path, resp *r) {
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
  fetch(f->port, req, r);
}

static void control(fixture *f, const char *method, const char *path,
                    const char *body, resp *r) {
  char req[4096];
  snprintf(req, sizeof req,
           "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
           "\r\nContent-Length: %zu\r\n\r\n%s",
           method, path, body ? strlen(body) : 0, body ? body : "");
  fetch(f->ctl_port, req, r);
}

static uint64_t renders_of(fixture *f, const char *name);

typedef struct rcount {
  const char *name;
  uint64_t n;
} rcount;

static void rc_cb(void *ud, const char *name, uint64_t renders) {
  rcount *c = ud;
  if (strcmp(name, c->name) == 0)
    c->n = renders;
}

static uint64_t renders_of(fixture *f, const char *name) {
  rcount c = {name, 0};
  dn_engine_renderer_stats(f->engine, rc_cb, &c);
  return c.n;
}

#endif
