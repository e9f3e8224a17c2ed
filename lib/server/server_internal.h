/* server_internal.h - the server's structures, shared by server.c
 * (listeners, connections, I/O), server_site.c (answering from the engine)
 * and server_control.c (the control API and metrics).
 *
 * Every request becomes a job. A job's run step computes the whole
 * response (status line, fields, body) and touches only the engine and the
 * request, so it may run on libuv's thread pool; its finish step runs on
 * the loop thread, counts, logs and writes.
 */
#ifndef DN_SERVER_INTERNAL_H
#define DN_SERVER_INTERNAL_H

#include <time.h>
#include <uv.h>

#include "buf.h"
#include "donut/server.h"
#include "server_parse.h"

#define DN__CACHE_HIT 0
#define DN__CACHE_MISS 1
#define DN__CACHE_RECOMPOSED 2
#define DN__CACHE_NONE 3
#define DN__CACHE_KINDS 4
#define DN__LATENCY_BUCKETS 14

typedef struct dn__conn dn__conn;

typedef struct dn__listener {
  uv_tcp_t tcp;
  dn_server *srv;
  int control;
  int active; /* the handle is initialised and not yet closed */
  unsigned nconns;
  char addr[64];
} dn__listener;

struct dn_server_reply {
  int status;
  char content_type[128];
  dn__buf body;
  dn__buf fields; /* "Name: value\r\n" lines added by the handler */
};

typedef struct dn__job {
  uv_work_t work;
  dn__conn *conn;
  dn_server *srv;
  const dn__req *req; /* borrowed from the paused parser */
  int control;
  int loop_only; /* must run on the loop thread (reads server counters) */
  /* results */
  int status;
  int close; /* answer with Connection: close */
  int cache; /* DN__CACHE_* */
  dn__buf head;
  dn__buf body; /* owned body, or */
  dn_rep *rep;  /* the representation whose body is sent */
  int send_body;
  size_t body_len;
  char error[200]; /* logged on the loop thread when set */
} dn__job;

struct dn__conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_idle_t yield; /* runs the rest of a pipeline on the next loop turn */
  dn_server *srv;
  dn__listener *ls;
  dn__conn *prev, *next;
  dn__reqparser rp;
  char *in;
  size_t in_len, in_pos, in_cap;
  int handles;  /* open libuv handles */
  int busy;     /* a job is in flight */
  int closing;  /* handles are closing */
  int draining; /* response sent, waiting for the peer before closing */
  int close_after_write;
  int reading;
  int eof;      /* the peer finished sending */
  int yielding; /* waiting for the next loop turn (yield is active) */
  int timer_kind;
  uv_shutdown_t shutdown;
  size_t write_pending;
  size_t accounted;     /* buffer bytes counted in the server's buffer_bytes */
  unsigned served;      /* responses sent */
  unsigned turn;        /* requests answered since it last yielded */
  uint64_t idle_since;  /* uv_hrtime() when it began to wait for a request */
  uint64_t req_hr;      /* uv_hrtime() when the request was whole */
  uint64_t req_wall_ms; /* wall clock at the same time */
  char remote[80];
};

typedef struct dn__latency {
  uint64_t bucket[DN__LATENCY_BUCKETS + 1]; /* +Inf last */
  uint64_t count;
  uint64_t sum_us;
} dn__latency;

/* Counters, shared by the servers of one process that run on several loops
 * (dn_server_options.share_counters_with); updated with relaxed atomics. */
typedef struct dn__counters {
  dn_server_stats st;
  dn__latency lat[DN__CACHE_KINDS];
  int refs;
} dn__counters;

#define DN__COUNT(srv, field, n)                                               \
  __atomic_fetch_add(&(srv)->c->st.field, (uint64_t)(n), __ATOMIC_RELAXED)
#define DN__UNCOUNT(srv, field, n)                                             \
  __atomic_fetch_sub(&(srv)->c->st.field, (uint64_t)(n), __ATOMIC_RELAXED)

/* A consistent-enough copy of the counters (each field read atomically). */
void dn__counters_read(const dn_server *srv, dn_server_stats *st,
                       dn__latency lat[DN__CACHE_KINDS]);

struct dn_server {
  uv_loop_t *loop;
  dn_server_options o;
  char *listen_addr, *control_addr, *token, *base;
  size_t token_len, base_len;
  dn__listener site, ctl;
  dn__conn *conns;
  int shutting_down;
  int free_pending;
  int done_called;
  unsigned jobs;  /* jobs in flight */
  unsigned alive; /* connections not yet freed, closing ones included */
  void (*done)(void *ud);
  void *done_ud;
  dn__counters *c;
};

/* The wall clock of the server's options, in ms. */
static inline uint64_t dn__server_now_ms(const dn_server *srv) {
  if (srv->o.now_ms)
    return srv->o.now_ms(srv->o.clock_ud);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* server.c */
void dn__server_on_connection(uv_stream_t *server, int status);
void dn__conn_close(dn__conn *c);
/* 1 when the connection has no request in progress. */
int dn__conn_idle(const dn__conn *c);
/* Runs `done` (and a pending free) once everything is closed. */
void dn__server_check_done(dn_server *srv);
/* Frees the server's memory (the last step of dn_server_free). */
void dn__server_free_memory(dn_server *srv);
void dn__server_log(dn_server *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* server_site.c: answers a request on the site listener. With cache_only,
 * answers only a GET or HEAD that the handler takes or the cache holds and
 * returns 0, having changed nothing, for anything else; otherwise returns
 * 1. */
int dn__site_run(dn__job *j, int cache_only);
/* Writes the status line, `fields` and the framing fields into j->head:
 * Content-Length (unless 1xx/204/304), Connection, Cache-Status (when not
 * NULL) and the extra fields. Returns 0 or DN_ENOMEM. */
int dn__job_head(dn__job *j, const dn_http_headers *fields,
                 const char *cache_status, const char *extra);
/* Completes the job with `status` and its current body: Date,
 * Content-Type, Cache-Control: no-store, and the framing fields. */
void dn__job_reply(dn__job *j, int status, const char *content_type,
                   const char *cache_status, const char *extra);
/* A complete small response with a text body. */
void dn__job_simple(dn__job *j, int status, const char *content_type,
                    const char *body, const char *extra);

/* server_control.c: answers a request on the control listener. The
 * loop_only part is decided by dn__control_loop_only. */
int dn__control_loop_only(const dn__req *req);
void dn__control_run(dn__job *j);
/* Percent-decodes query parameter `name` of `query` into out. Returns 1
 * when found, 0 when absent, -1 on a bad escape or overflow. */
int dn__query_param(dn_slice query, const char *name, dn__buf *out);

#endif
