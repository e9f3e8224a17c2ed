/* bench_purge.c - how many invalidations per second a purger sustains,
 * and how much batching it achieves, into a local HTTP endpoint.
 *
 * A sink (libuv + libhttp-parser, on its own thread) answers every request
 * with 200 at once, so what is measured is the purger: queueing from the
 * invalidating threads, batching, key computation, request building and
 * libcurl. Producer threads call dn_purger_purge_tags as fast as they can
 * with tags drawn from a fixed space (so batches coalesce duplicates);
 * the clock stops when dn_purger_drain returns, that is when the CDN has
 * acknowledged every purge.
 *
 * Reported per scenario (median of three rounds): invalidations per
 * second, batches and requests, the batching factor (invalidations per
 * request), keys per request, and the cost of one purge call on the
 * invalidating thread. Tags come from a space of 10,000 (so batches
 * coalesce duplicates) or are all distinct (no coalescing).
 *
 *   bench_purge [invalidations]     (default 200000)
 */
#include <http_parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "donut/purge.h"

#define PRODUCERS 2
#define TAG_SPACE 10000
#define ROUNDS 3

/* ---- the sink ----------------------------------------------------------- */

typedef struct sink {
  uv_loop_t loop;
  uv_tcp_t server;
  uv_async_t stop;
  uv_thread_t thread;
  int port;
  unsigned long requests;
} sink;

typedef struct conn {
  uv_tcp_t tcp;
  http_parser parser;
  sink *s;
  char buf[65536];
} conn;

static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static int on_complete(http_parser *p) {
  conn *c = p->data;
  c->s->requests++;
  uv_write_t *w = malloc(sizeof *w);
  uv_buf_t b = uv_buf_init((char *)ok, sizeof ok - 1);
  if (w && uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    free(w);
  return 0;
}

static const http_parser_settings settings = {.on_message_complete =
                                                  on_complete};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  conn *c = h->data;
  *b = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn *c = st->data;
  if (n < 0 || http_parser_execute(&c->parser, &settings, b->base, (size_t)n) !=
                   (size_t)n) {
    uv_close((uv_handle_t *)st, on_closed);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  sink *s = server->data;
  conn *c = calloc(1, sizeof *c);
  if (status < 0 || !c) {
    free(c);
    return;
  }
  c->s = s;
  uv_tcp_init(&s->loop, &c->tcp);
  c->tcp.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  else
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void close_all(uv_handle_t *h, void *ud) {
  (void)ud;
  if (!uv_is_closing(h))
    uv_close(h,
             h->type == UV_TCP && h->data && h->data != ud ? on_closed : NULL);
}

static void on_stop(uv_async_t *a) {
  sink *s = a->data;
  uv_walk(&s->loop, close_all, s);
}

static void sink_main(void *arg) {
  sink *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
}

static int sink_start(sink *s) {
  struct sockaddr_in addr;
  struct sockaddr_storage got;
  int len = sizeof got;
  memset(s, 0, sizeof *s);
  uv_loop_init(&s->loop);
  uv_tcp_init(&s->loop, &s->server);
  s->server.data = s;
  uv_async_init(&s->loop, &s->stop, on_stop);
  s->stop.data = s;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&s->server, (const struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&s->server, 128, on_connection) ||
      uv_tcp_getsockname(&s->server, (struct sockaddr *)&got, &len))
    return -1;
  s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  return uv_thread_create(&s->thread, sink_main, s);
}

static void sink_stop(sink *s) {
  uv_async_send(&s->stop);
  uv_thread_join(&s->thread);
  uv_loop_close(&s->loop);
}

/* ---- producers ----------------------------------------------------------- */

typedef struct producer {
  dn_purger *p;
  long count, first;
  unsigned space; /* tags drawn from this many; 0: every tag distinct */
  unsigned seed;
  uint64_t ns;
} producer;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *produce(void *arg) {
  producer *pr = arg;
  char tag[32];
  uint64_t t0 = now_ns();
  for (long i = 0; i < pr->count; i++) {
    pr->seed = pr->seed * 1103515245u + 12345u;
    long id = pr->space ? (long)((pr->seed >> 8) % pr->space) : pr->first + i;
    int n = snprintf(tag, sizeof tag, "tag-%ld", id);
    dn_slice s = {tag, (size_t)n};
    if (dn_purger_purge_tags(pr->p, &s, 1, NULL) != 0) {
      fprintf(stderr, "purge failed\n");
      exit(1);
    }
  }
  pr->ns = now_ns() - t0;
  return NULL;
}

/* ---- scenarios ----------------------------------------------------------- */

typedef struct scenario {
  const char *name;
  const char *backend; /* "fastly", "varnish" or "cloudflare" */
  int outbox;          /* 0 none, 1 before send, 2 before return */
  long invalidations;
  unsigned space; /* distinct tags; 0: every invalidation its own tag */
} scenario;

typedef struct result {
  double per_s, per_request, keys_per_request, ns_per_call;
  uint64_t batches, requests, failed;
} result;

static int backend_for(const scenario *sc, const char *url, dn_purge_backend *b,
                       dn_cdn_profile *profile) {
  if (strcmp(sc->backend, "varnish") == 0) {
    const char *urls[] = {url};
    dn_purge_varnish_options o;
    dn_purge_varnish_options_init(&o);
    o.urls = urls;
    o.nurls = 1;
    *profile = DN_CDN_VARNISH;
    return dn_purge_backend_varnish(&o, b, NULL);
  }
  if (strcmp(sc->backend, "cloudflare") == 0) {
    dn_purge_cloudflare_options o;
    dn_purge_cloudflare_options_init(&o);
    o.token = "bench-token";
    o.zone = "zone";
    o.api_url = url;
    *profile = DN_CDN_CLOUDFLARE;
    return dn_purge_backend_cloudflare(&o, b, NULL);
  }
  dn_purge_fastly_options o;
  dn_purge_fastly_options_init(&o);
  o.token = "bench-token";
  o.service = "SVC";
  o.api_url = url;
  *profile = DN_CDN_FASTLY;
  return dn_purge_backend_fastly(&o, b, NULL);
}

static result run(const scenario *sc, const char *url) {
  dn_purge_backend b;
  dn_purger_options o;
  dn_purger_options_init(&o);
  if (backend_for(sc, url, &b, &o.profile)) {
    fprintf(stderr, "backend failed\n");
    exit(1);
  }
  char dir[64] = "";
  if (sc->outbox) {
    snprintf(dir, sizeof dir, "/tmp/dn-bench-outbox-XXXXXX");
    if (!mkdtemp(dir))
      exit(1);
    o.outbox_dir = dir;
    o.durability = sc->outbox == 2 ? DN_PURGE_SYNC_BEFORE_RETURN
                                   : DN_PURGE_SYNC_BEFORE_SEND;
  }
  dn_purger *p;
  dn_error err;
  if (dn_purger_new(b, &o, &p, &err)) {
    fprintf(stderr, "purger: %s\n", err.text);
    exit(1);
  }
  producer pr[PRODUCERS];
  pthread_t th[PRODUCERS];
  uint64_t t0 = now_ns();
  for (int i = 0; i < PRODUCERS; i++) {
    long each = sc->invalidations / PRODUCERS;
    pr[i] = (producer){p, each, each * i, sc->space, 7u + (unsigned)i, 0};
    pthread_create(&th[i], NULL, produce, &pr[i]);
  }
  uint64_t call_ns = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    pthread_join(th[i], NULL);
    call_ns += pr[i].ns;
  }
  if (dn_purger_drain(p, 600000) != 0) {
    fprintf(stderr, "drain timed out\n");
    exit(1);
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  dn_purger_stats st;
  dn_purger_stats_get(p, &st);
  dn_purger_free(p);
  if (*dir)
    rmdir(dir);
  double n = (double)st.invalidations;
  result r = {n / secs,
              st.requests ? n / (double)st.requests : 0.0,
              st.requests ? (double)st.keys / (double)st.requests : 0.0,
              (double)call_ns / n,
              st.batches,
              st.requests,
              st.failed};
  return r;
}

static int by_rate(const void *a, const void *b) {
  double x = ((const result *)a)->per_s, y = ((const result *)b)->per_s;
  return x < y ? -1 : x > y;
}

/* Runs a scenario ROUNDS times and prints the median round. */
static void report(const scenario *sc, const char *url) {
  result r[ROUNDS];
  for (int i = 0; i < ROUNDS; i++)
    r[i] = run(sc, url);
  qsort(r, ROUNDS, sizeof r[0], by_rate);
  const result *m = &r[ROUNDS / 2];
  printf("%-36s %9.0f inval/s %5llu batches %6llu requests %7.1f "
         "inval/request %6.1f keys/request %7.0f ns/call%s\n",
         sc->name, m->per_s, (unsigned long long)m->batches,
         (unsigned long long)m->requests, m->per_request, m->keys_per_request,
         m->ns_per_call, m->failed ? " FAILED" : "");
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
  if (n < PRODUCERS)
    n = PRODUCERS;
  sink s;
  if (sink_start(&s)) {
    fprintf(stderr, "sink failed to start\n");
    return 1;
  }
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
  printf("donut %s purger benchmark: %ld invalidations of 1 tag from %d "
         "threads, window 50 ms, median of %d rounds\n",
         dn_version(), n, PRODUCERS, ROUNDS);
  const scenario scenarios[] = {
      {"fastly, 10k tags", "fastly", 0, n, TAG_SPACE},
      {"cloudflare, 10k tags", "cloudflare", 0, n, TAG_SPACE},
      {"varnish, 10k tags", "varnish", 0, n, TAG_SPACE},
      {"fastly, every tag distinct", "fastly", 0, n, 0},
      {"fastly + outbox (sync before send)", "fastly", 1, n, TAG_SPACE},
      {"fastly + outbox (sync before return)", "fastly", 2, n / 20, 0},
  };
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    report(&scenarios[i], url);
  sink_stop(&s);
  printf("sink answered %lu requests\n", s.requests);
  return 0;
}
