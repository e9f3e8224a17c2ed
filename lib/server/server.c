/* server.c - the HTTP/1.1 server on libuv: listeners, connections, input
 * buffering, timeouts, jobs and writes.
 *
 * Each connection reads into one growing input buffer and feeds it to its
 * request parser, which stops after every request. The request becomes a
 * job; while the job runs the connection parses nothing more, so pipelined
 * requests are answered in order. A job runs on the loop thread, or on
 * libuv's thread pool when the options ask for offload. Responses are
 * written with the body taken straight from the engine's representation.
 * A connection that must close (error, Connection: close, shutdown)
 * half-closes after its last response and drains what the peer still
 * sends for a moment, so that the peer reads the response instead of a
 * reset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "server_internal.h"
#include "text.h"

#define READ_CHUNK ((size_t)16 << 10)
#define IN_KEEP READ_CHUNK /* the input buffer an idle connection keeps */
#define WRITE_HIGH ((size_t)1 << 20) /* stop answering while more is queued */
#define LINGER_MS 2000
/* Pipelined requests answered in a row before the connection lets the
 * others have the loop. */
#define PIPELINE_TURN 16

enum { T_NONE, T_IDLE, T_REQUEST, T_LINGER };

typedef struct wreq {
  uv_write_t req;
  dn__conn *c;
  dn__buf head, body;
  dn_rep *rep;
  size_t bytes;  /* bytes sent */
  size_t weight; /* memory held until written: counted in write_pending */
} wreq;

static void conn_process(dn__conn *c, int from_callback);

/* ---- the memory budget -------------------------------------------------
 *
 * Every connection counts what its buffers hold (input, the parser's
 * header and body buffers, queued responses) into the shared gauge
 * buffer_bytes; growing past max_buffer_bytes is refused. */
static size_t conn_held(const dn__conn *c) {
  return c->in_cap + dn__reqparser_held(&c->rp) + c->write_pending;
}

static void conn_account(dn__conn *c) {
  size_t held = c->closing ? 0 : conn_held(c);
  if (held > c->accounted)
    DN__COUNT(c->srv, buffer_bytes, held - c->accounted);
  else if (held < c->accounted)
    DN__UNCOUNT(c->srv, buffer_bytes, c->accounted - held);
  c->accounted = held;
}

/* 1 when the server's buffers may grow by `more` bytes. */
static int budget_allows(dn_server *srv, size_t more) {
  uint64_t used = __atomic_load_n(&srv->c->st.buffer_bytes, __ATOMIC_RELAXED);
  return used <= srv->o.max_buffer_bytes &&
         more <= srv->o.max_buffer_bytes - used;
}

static int conn_admit(void *ud, size_t more) {
  dn__conn *c = ud;
  conn_account(c);
  return budget_allows(c->srv, more);
}

void dn__server_log(dn_server *srv, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dn__log_emit(srv->o.log, srv->o.log_ud, level, 512, fmt, ap);
  va_end(ap);
}

/* ---- closing ---------------------------------------------------------------
 */
static void conn_free(dn__conn *c) {
  c->srv->alive--;
  dn__reqparser_free(&c->rp);
  dn__free(c->in);
  c->in_cap = 0;
  conn_account(c);
  dn__free(c);
}

static void on_conn_closed(uv_handle_t *h) {
  dn__conn *c = h->data;
  dn_server *srv = c->srv;
  if (--c->handles == 0 && !c->busy)
    conn_free(c);
  dn__server_check_done(srv);
}

/* The server's memory, once nothing refers to it any more. */
void dn__server_free_memory(dn_server *srv) {
  if (srv->c && __atomic_sub_fetch(&srv->c->refs, 1, __ATOMIC_ACQ_REL) == 0)
    dn__free(srv->c);
  dn__free(srv->listen_addr);
  dn__free(srv->control_addr);
  dn__wipe_free(srv->token);
  dn__free(srv->base);
  dn__free(srv);
}

/* Runs the shutdown callback, and frees the server when dn_server_free
 * asked for it, once the listeners and the last connection have closed. */
void dn__server_check_done(dn_server *srv) {
  if (!srv->shutting_down || srv->site.active || srv->ctl.active ||
      srv->alive || srv->jobs)
    return;
  if (!srv->done_called) {
    srv->done_called = 1;
    if (srv->done)
      srv->done(srv->done_ud);
  }
  if (srv->free_pending)
    dn__server_free_memory(srv);
}

void dn__conn_close(dn__conn *c) {
  if (c->closing)
    return;
  dn_server *srv = c->srv;
  c->closing = 1;
  conn_account(c); /* its buffers go with it */
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (c->ls) {
    c->ls->nconns--;
    DN__UNCOUNT(srv, connections_open, 1);
  }
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
  uv_close((uv_handle_t *)&c->yield, on_conn_closed);
}

static void on_timer(uv_timer_t *t);

static void timer_set(dn__conn *c, int kind, uint64_t ms) {
  c->timer.data = c;
  uv_timer_start(&c->timer, on_timer, ms, 0);
  c->timer_kind = kind;
}

static void timer_stop(dn__conn *c) {
  uv_timer_stop(&c->timer);
  c->timer_kind = T_NONE;
}

/* After the last response: half-close, then read and drop what the peer
 * still sends until it closes too or LINGER_MS pass. */
static void on_shutdown(uv_shutdown_t *req, int status) {
  dn__conn *c = req->data;
  if (status < 0)
    dn__conn_close(c);
}

static void conn_drain(dn__conn *c) {
  if (c->closing || c->draining)
    return;
  c->draining = 1;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    dn__conn_close(c);
    return;
  }
  timer_set(c, T_LINGER, LINGER_MS);
}

/* ---- writing -------------------------------------------------------------
 */
static void wreq_free(wreq *w) {
  dn__buf_free(&w->head);
  dn__buf_free(&w->body);
  if (w->rep)
    dn_rep_unref(w->rep);
  dn__free(w);
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  dn__conn *c = w->c;
  c->write_pending -= w->weight;
  wreq_free(w);
  if (c->closing)
    return;
  conn_account(c);
  if (status < 0) {
    dn__conn_close(c);
    return;
  }
  if (c->close_after_write) {
    if (c->write_pending == 0)
      conn_drain(c);
    return;
  }
  if (c->write_pending < WRITE_HIGH / 2 && !c->busy && !c->yielding)
    conn_process(c, 1);
}

/* Queues the job's response; takes its head, body and rep. */
static int conn_write(dn__conn *c, dn__job *j) {
  wreq *w = dn__calloc(1, sizeof *w);
  if (!w)
    return DN_ENOMEM;
  w->c = c;
  w->head = j->head;
  w->body = j->body;
  w->rep = j->rep;
  dn__buf_init(&j->head, 0);
  dn__buf_init(&j->body, 0);
  j->rep = NULL;
  uv_buf_t bufs[2];
  unsigned n = 0;
  bufs[n++] = uv_buf_init(w->head.data, (unsigned)w->head.len);
  if (j->send_body && j->body_len) {
    const char *p = w->rep ? dn_rep_body(w->rep).ptr : w->body.data;
    bufs[n++] = uv_buf_init((char *)p, (unsigned)j->body_len);
  }
  w->bytes = w->head.len + (n > 1 ? j->body_len : 0);
  /* What this response holds until the peer reads it: many small answers
   * to pipelined requests cost their buffers, not just their bytes. */
  w->weight = sizeof *w + w->head.cap + w->body.cap + (n > 1 ? j->body_len : 0);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
    wreq_free(w);
    return DN_EIO;
  }
  c->write_pending += w->weight;
  conn_account(c);
  DN__COUNT(c->srv, bytes_out, w->bytes);
  return 0;
}

static void write_static(dn__conn *c, const char *text) {
  dn__job j;
  memset(&j, 0, sizeof j);
  dn__buf_init(&j.head, 0);
  dn__buf_init(&j.body, 0);
  if (dn__buf_append_cstr(&j.head, text) || conn_write(c, &j)) {
    dn__buf_free(&j.head);
    dn__conn_close(c);
  }
}

/* ---- jobs ------------------------------------------------------------------
 */
static void copy_field(const dn__req *q, const char *name, char *out,
                       size_t cap) {
  size_t n = strlen(name);
  snprintf(out, cap, "-");
  for (size_t i = 0; q && i < q->nfields; i++) {
    dn_slice f = q->fields[i].name;
    if (f.len == n && strncasecmp(f.ptr, name, n) == 0) {
      int len = (int)(q->fields[i].value.len < cap - 1 ? q->fields[i].value.len
                                                       : cap - 1);
      snprintf(out, cap, "%.*s", len, q->fields[i].value.ptr);
      return;
    }
  }
}

static void account(dn__conn *c, dn__job *j) {
  dn_server *srv = c->srv;
  int s = j->status;
  uint64_t *cls[] = {&srv->c->st.responses_2xx, &srv->c->st.responses_3xx,
                     &srv->c->st.responses_4xx, &srv->c->st.responses_5xx};
  if (s >= 200 && s < 600)
    __atomic_fetch_add(cls[s / 100 - 2], 1, __ATOMIC_RELAXED);
  uint64_t us = (uv_hrtime() - c->req_hr) / 1000;
  static const uint64_t le[DN__LATENCY_BUCKETS] = {
      100,   250,   500,    1000,   2500,   5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
  dn__latency *l = &srv->c->lat[j->cache];
  size_t b = 0;
  while (b < DN__LATENCY_BUCKETS && us > le[b])
    b++;
  __atomic_fetch_add(&l->bucket[b], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&l->count, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&l->sum_us, us, __ATOMIC_RELAXED);
  if (j->error[0])
    dn__server_log(srv, DN_LOG_ERROR, "%s", j->error);
  if (!srv->o.access)
    return;
  static const char *const names[] = {"hit", "miss", "recomposed", "-"};
  const dn__req *q = j->req;
  char target[1024], ua[256], ref[256];
  int tl = q ? (int)(q->target.len < sizeof target ? q->target.len
                                                   : sizeof target - 1)
             : 0;
  snprintf(target, sizeof target, "%.*s", tl, q ? q->target.ptr : "");
  copy_field(q, "User-Agent", ua, sizeof ua);
  copy_field(q, "Referer", ref, sizeof ref);
  dn_server_access a = {c->remote,
                        q && q->method ? q->method : "-",
                        tl ? target : "-",
                        q ? q->http_minor : 1,
                        s,
                        j->send_body ? j->body_len : 0,
                        names[j->cache],
                        ua,
                        ref,
                        c->req_wall_ms,
                        us,
                        c->ls && c->ls->control};
  srv->o.access(srv->o.access_ud, &a);
}

static void job_free(dn__job *j) {
  dn__buf_free(&j->head);
  dn__buf_free(&j->body);
  if (j->rep)
    dn_rep_unref(j->rep);
  dn__free(j);
}

/* On the loop thread: counts, logs and writes the job's response. */
static void job_finish(dn__job *j, int from_callback) {
  dn__conn *c = j->conn;
  dn_server *srv = c->srv;
  c->busy = 0;
  srv->jobs--;
  if (c->closing) {
    if (c->handles == 0)
      conn_free(c);
    job_free(j);
    dn__server_check_done(srv);
    return;
  }
  int keep = !j->close && j->req && j->req->keep_alive && !srv->shutting_down;
  const char *conn_field = !keep ? "Connection: close\r\n\r\n"
                           : j->req->http_minor == 0
                               ? "Connection: keep-alive\r\n\r\n"
                               : "\r\n";
  account(c, j);
  if (j->head.len == 0 || dn__buf_append_cstr(&j->head, conn_field) ||
      conn_write(c, j)) {
    job_free(j);
    dn__conn_close(c);
    return;
  }
  job_free(j);
  dn__reqparser_next(&c->rp);
  c->served++;
  conn_account(c);
  if (!keep) {
    /* The last response: it gets the idle timeout to be read. */
    c->close_after_write = 1;
    timer_set(c, T_IDLE, srv->o.idle_timeout_ms);
  } else if (from_callback)
    conn_process(c, 1);
}

static void job_run(dn__job *j) {
  if (j->control)
    dn__control_run(j);
  else
    (void)dn__site_run(j, 0);
}

static void work_cb(uv_work_t *w) { job_run((dn__job *)w); }

static void after_work_cb(uv_work_t *w, int status) {
  (void)status;
  job_finish((dn__job *)w, 1);
}

static dn__job *job_new(dn__conn *c) {
  dn__job *j = dn__calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->conn = c;
  j->srv = c->srv;
  j->control = c->ls && c->ls->control;
  j->cache = DN__CACHE_NONE;
  dn__buf_init(&j->head, 0);
  dn__buf_init(&j->body, 0);
  /* One allocation that fits a usual response head; growing is fine. */
  (void)dn__buf_reserve(&j->head, 1000);
  return j;
}

static void mark_request(dn__conn *c) {
  c->busy = 1;
  c->srv->jobs++;
  timer_stop(c);
  c->req_hr = uv_hrtime();
  c->req_wall_ms = dn__server_now_ms(c->srv);
  DN__COUNT(c->srv, requests, 1);
}

/* Answers a request that could not be read with `status` and closes. */
static void conn_fail(dn__conn *c, int status, const char *why) {
  dn__job *j = job_new(c);
  if (!j) {
    dn__conn_close(c);
    return;
  }
  mark_request(c);
  if (status == 400)
    DN__COUNT(c->srv, bad_requests, 1);
  j->close = 1;
  j->req = c->rp.headers_done ? dn__reqparser_req(&c->rp) : NULL;
  char body[160];
  snprintf(body, sizeof body, "%d %s: %s\n", status, dn__status_reason(status),
           why ? why : "");
  dn__job_simple(j, status, "text/plain; charset=utf-8", body,
                 status == 503 ? "Retry-After: 1\r\n" : NULL);
  job_finish(j, 0);
  c->close_after_write = 1;
}

static void dispatch(dn__conn *c) {
  dn__job *j = job_new(c);
  if (!j) {
    conn_fail(c, 503, "out of memory");
    return;
  }
  mark_request(c);
  j->req = dn__reqparser_req(&c->rp);
  if (j->control)
    j->loop_only = dn__control_loop_only(j->req);
  if (c->srv->o.offload == DN_SERVER_OFFLOAD_MISSES && !j->control &&
      dn__site_run(j, 1)) {
    job_finish(j, 0);
    return;
  }
  if (c->srv->o.offload && !j->loop_only &&
      uv_queue_work(c->srv->loop, &j->work, work_cb, after_work_cb) == 0)
    return;
  job_run(j);
  job_finish(j, 0);
}

/* ---- reading -----------------------------------------------------------
 */
static void input_compact(dn__conn *c) {
  if (c->in_pos == 0)
    return;
  memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
  c->in_len -= c->in_pos;
  c->in_pos = 0;
}

/* Gives back the memory of an input buffer that grew for a large or
 * pipelined input, once what is left of it fits in IN_KEEP. */
static void input_shrink(dn__conn *c) {
  if (c->in_cap <= IN_KEEP || c->in_len > IN_KEEP / 2)
    return;
  char *p = dn__realloc(c->in, IN_KEEP);
  if (!p)
    return; /* keep the larger one */
  c->in = p;
  c->in_cap = IN_KEEP;
}

static size_t input_limit(const dn_server *srv) {
  return srv->o.max_header_bytes + srv->o.max_body_bytes + READ_CHUNK * 4;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  dn__conn *c = h->data;
  if (c->draining)
    c->in_len = c->in_pos = 0;
  input_compact(c);
  if (c->in_cap - c->in_len < READ_CHUNK) {
    size_t cap = c->in_cap ? c->in_cap * 2 : IN_KEEP;
    char *p = NULL;
    conn_account(c);
    /* Over the budget the buffer does not grow: what fits is read, and
     * with no room at all the reads pause (on_read). */
    if (budget_allows(c->srv, cap - c->in_cap))
      p = dn__realloc(c->in, cap);
    if (!p && c->in_cap > c->in_len) {
      *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
      return;
    }
    if (!p) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->in = p;
    c->in_cap = cap;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void read_pause(dn__conn *c) {
  if (c->reading)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_resume(dn__conn *c) {
  if (c->reading || c->eof || c->closing)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  dn__conn *c = s->data;
  if (nread == 0 || c->closing)
    return;
  if (nread == UV_ENOBUFS) {
    /* No memory for input: wait until this connection's requests are
     * answered, or answer 503 when nothing is in progress. */
    read_pause(c);
    if (!c->busy && c->write_pending == 0)
      conn_fail(c, 503, "the server's request buffers are full");
    return;
  }
  if (nread < 0) {
    read_pause(c);
    c->eof = 1;
    if (c->draining || (!c->busy && dn__reqparser_partial(&c->rp)) ||
        nread != UV_EOF)
      dn__conn_close(c);
    else if (!c->busy)
      conn_process(c, 1);
    return;
  }
  if (c->draining)
    return;
  c->in_len += (size_t)nread;
  if (c->in_len - c->in_pos >= input_limit(c->srv))
    read_pause(c);
  if (!c->busy)
    conn_process(c, 1);
  else
    conn_account(c);
}

static void arm_timer(dn__conn *c) {
  dn_server *srv = c->srv;
  if (dn__reqparser_partial(&c->rp) || c->in_len > c->in_pos) {
    if (c->timer_kind != T_REQUEST)
      timer_set(c, T_REQUEST, srv->o.request_timeout_ms);
  } else if (c->timer_kind != T_IDLE) {
    c->idle_since = uv_hrtime();
    timer_set(c, T_IDLE, srv->o.idle_timeout_ms);
  }
}

/* An idle handle runs once per loop turn, after the turn's I/O (a timer
 * of 0 ms would run again at once, in the same turn). */
static void on_yield(uv_idle_t *h) {
  dn__conn *c = h->data;
  uv_idle_stop(h);
  c->yielding = 0;
  if (!c->busy && !c->closing)
    conn_process(c, 1);
}

static void conn_process_requests(dn__conn *c) {
  while (!c->busy && !c->closing && !c->draining && !c->close_after_write) {
    /* Answers wait while this connection has 1 MiB queued, or while the
     * server is over its budget and this connection has some queued. */
    if (c->write_pending >= WRITE_HIGH ||
        (c->write_pending && !budget_allows(c->srv, 0))) {
      /* Stop reading too, so a peer that sends and never reads cannot
       * make the input grow either; on_write resumes, and a peer that
       * stops reading is dropped after the idle timeout. */
      read_pause(c);
      if (c->timer_kind == T_NONE)
        timer_set(c, T_IDLE, c->srv->o.idle_timeout_ms);
      return;
    }
    if (c->turn >= PIPELINE_TURN) {
      /* Fairness: the rest waits for the next loop turn, after the other
       * connections' events, and so does reading. */
      c->turn = 0;
      read_pause(c);
      c->yielding = 1;
      uv_idle_start(&c->yield, on_yield);
      return;
    }
    size_t used = 0;
    int r = dn__reqparser_feed(&c->rp, c->in + c->in_pos, c->in_len - c->in_pos,
                               &used);
    c->in_pos += used;
    if (r == DN__PARSE_REQUEST) {
      c->turn++;
      dispatch(c);
    } else if (r == DN__PARSE_CONTINUE) {
      write_static(c, "HTTP/1.1 100 Continue\r\n\r\n");
    } else if (r == DN__PARSE_ERROR) {
      conn_fail(c, c->rp.error_status, c->rp.error_text);
      return;
    } else {
      c->turn = 0;
      input_compact(c);
      input_shrink(c);
      if (c->eof) {
        if (c->write_pending == 0)
          dn__conn_close(c);
        else
          c->close_after_write = 1;
        return;
      }
      if (c->srv->shutting_down && !dn__reqparser_partial(&c->rp)) {
        c->close_after_write = 1;
        if (c->write_pending == 0)
          dn__conn_close(c);
        return;
      }
      read_resume(c);
      arm_timer(c);
      return;
    }
  }
}

static void conn_process(dn__conn *c, int from_callback) {
  (void)from_callback;
  conn_process_requests(c);
  if (!c->closing)
    conn_account(c);
}

static void on_timer(uv_timer_t *t) {
  dn__conn *c = t->data;
  int kind = c->timer_kind;
  c->timer_kind = T_NONE;
  if (c->busy || c->closing)
    return;
  if (kind == T_REQUEST && !c->draining && !c->close_after_write) {
    DN__COUNT(c->srv, timeouts, 1);
    if (!dn__reqparser_partial(&c->rp) && c->in_len == c->in_pos) {
      /* Not a byte of a request: there is nobody to answer. */
      dn__conn_close(c);
      return;
    }
    read_pause(c);
    conn_fail(c, 408, "the request took too long to arrive");
    return;
  }
  dn__conn_close(c);
}

/* ---- accepting -------------------------------------------------------------
 */
static void remote_name(dn__conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[48] = "?";
  int port = 0;
  snprintf(c->remote, sizeof c->remote, "-");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  snprintf(c->remote, sizeof c->remote, "%s:%d", ip, port);
}

/* Over the connection limit: 503, then close once it is read. */
static void conn_reject(dn__conn *c) {
  DN__COUNT(c->srv, connections_rejected, 1);
  c->close_after_write = 1;
  write_static(c, "HTTP/1.1 503 Service Unavailable\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 21\r\nRetry-After: 1\r\n"
                  "Connection: close\r\n\r\ntoo many connections\n");
  if (c->closing)
    return;
  read_resume(c);
  timer_set(c, T_IDLE, c->srv->o.idle_timeout_ms);
}

/* The connection of `ls` that has waited longest for its next request
 * after answering one (an idle keep-alive connection), or NULL. */
static dn__conn *oldest_idle(dn_server *srv, const dn__listener *ls) {
  dn__conn *best = NULL;
  for (dn__conn *c = srv->conns; c; c = c->next)
    if (c->ls == ls && c->served && c->timer_kind == T_IDLE && !c->busy &&
        !c->draining && !c->close_after_write && c->write_pending == 0 &&
        c->in_len == c->in_pos && !dn__reqparser_partial(&c->rp) &&
        (!best || c->idle_since < best->idle_since))
      best = c;
  return best;
}

void dn__server_on_connection(uv_stream_t *server, int status) {
  dn__listener *ls = server->data;
  dn_server *srv = ls->srv;
  if (status < 0) {
    dn__server_log(srv, DN_LOG_WARN, "accept on %s: %s", ls->addr,
                   uv_strerror(status));
    return;
  }
  dn__conn *c = dn__calloc(1, sizeof *c);
  if (!c) {
    dn__server_log(srv, DN_LOG_ERROR, "accept on %s: out of memory", ls->addr);
    return;
  }
  c->srv = srv;
  srv->alive++;
  dn__reqparser_init(&c->rp, srv->o.max_header_bytes, srv->o.max_body_bytes);
  c->rp.admit = conn_admit;
  c->rp.admit_ud = c;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  uv_idle_init(srv->loop, &c->yield);
  c->tcp.data = c->timer.data = c->yield.data = c;
  c->handles = 3;
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    dn__conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  remote_name(c);
  /* At the limit, an idle keep-alive connection makes room: a client may
   * close it at any time (RFC 9112 §9.6), and it costs one new connection
   * to reopen, while refusing the newcomer costs it its request. */
  dn__conn *idle = NULL;
  if (ls->nconns >= srv->o.max_connections && !srv->shutting_down &&
      (idle = oldest_idle(srv, ls)) != NULL)
    dn__conn_close(idle);
  if (ls->nconns >= srv->o.max_connections || srv->shutting_down) {
    conn_reject(c);
    return;
  }
  c->ls = ls;
  ls->nconns++;
  DN__COUNT(srv, connections_open, 1);
  DN__COUNT(srv, connections_total, 1);
  read_resume(c);
  /* The first request, like every other, must arrive within the request
   * timeout: a silent connection gives its slot back. */
  timer_set(c, T_REQUEST, srv->o.request_timeout_ms);
}

int dn__conn_idle(const dn__conn *c) {
  return !c->busy && !dn__reqparser_partial(&c->rp);
}
