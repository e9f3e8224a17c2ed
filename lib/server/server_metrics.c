/* server_metrics.c - the Prometheus text exposition (format 0.0.4) of the
 * engine's, the store's and the server's counters, served at GET /metrics.
 *
 * Labels are low-cardinality on purpose: renderer names (one per
 * registered renderer), cache outcomes (hit, miss, recomposed, none) and
 * status classes. Request latency is a histogram per cache outcome,
 * measured from the moment a request has arrived whole to the moment its
 * response is handed to the socket.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "server_internal.h"

/* ---- counters ----------------------------------------------------------
 */
static uint64_t load(const uint64_t *p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void dn__counters_read(const dn_server *srv, dn_server_stats *st,
                       dn__latency lat[DN__CACHE_KINDS]) {
  const dn__counters *c = srv->c;
  const uint64_t *from = (const uint64_t *)&c->st;
  uint64_t *to = (uint64_t *)st;
  for (size_t i = 0; i < sizeof *st / sizeof(uint64_t); i++)
    to[i] = load(from + i);
  for (int k = 0; lat && k < DN__CACHE_KINDS; k++) {
    for (int b = 0; b <= DN__LATENCY_BUCKETS; b++)
      lat[k].bucket[b] = load(&c->lat[k].bucket[b]);
    lat[k].count = load(&c->lat[k].count);
    lat[k].sum_us = load(&c->lat[k].sum_us);
  }
}

#include "text.h"

typedef struct mbuf {
  dn__buf b;
  int rc;
} mbuf;

static void put(mbuf *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(mbuf *m, const char *fmt, ...) {
  if (m->rc)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = dn__vformat(line, sizeof line, fmt, ap);
  va_end(ap);
  m->rc = dn__buf_append(&m->b, line, n);
}

static void family(mbuf *m, const char *name, const char *type,
                   const char *help) {
  put(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(mbuf *m, const char *name, const char *help, uint64_t v) {
  family(m, name, "counter", help);
  put(m, "%s %" PRIu64 "\n", name, v);
}

static void renderer_line(void *ud, const char *name, uint64_t renders) {
  mbuf *m = ud;
  /* Label values escape backslash, quote and newline. */
  char esc[256];
  size_t o = 0;
  for (const char *p = name; *p && o + 3 < sizeof esc; p++) {
    if (*p == '\\' || *p == '"' || *p == '\n')
      esc[o++] = '\\';
    esc[o++] = *p == '\n' ? 'n' : *p;
  }
  esc[o] = '\0';
  put(m, "donut_renders_total{renderer=\"%s\"} %" PRIu64 "\n", esc, renders);
}

static void engine_metrics(const dn_server *srv, mbuf *m) {
  dn_engine_stats es;
  dn_engine_stats_get(srv->o.engine, &es);
  counter(m, "donut_gets_total", "Resource gets.", es.gets);
  counter(m, "donut_cache_hits_total", "Gets answered by a cached view.",
          es.hits);
  counter(m, "donut_cache_misses_total",
          "Views that were missing or stale (holes included).", es.misses);
  counter(m, "donut_recomposes_total",
          "Pages composed again from a cached shell.", es.recomposes);
  counter(m, "donut_engine_renders_total", "Renderer calls, all renderers.",
          es.renders);
  counter(m, "donut_purges_total", "URI purges.", es.purges);
  counter(m, "donut_invalidations_total", "Tag invalidations.",
          es.invalidations);
  counter(m, "donut_store_errors_total", "Store operations that failed.",
          es.store_errors);
  counter(m, "donut_raced_renders_total",
          "Renders invalidated while they ran (not stored as fresh).",
          es.raced_renders);
  counter(m, "donut_coalesced_waits_total",
          "Gets that waited for another render of the same URI.",
          es.coalesced_waits);
  family(m, "donut_renders_total", "counter", "Renderer calls per renderer.");
  dn_engine_renderer_stats(srv->o.engine, renderer_line, m);
}

static void store_metrics(const dn_server *srv, mbuf *m) {
  dn_store *s = dn_engine_store(srv->o.engine);
  dn_store_stats st;
  family(m, "donut_store_info", "gauge", "The store in use.");
  put(m, "donut_store_info{store=\"%s\"} 1\n", dn_store_name(s));
  if (dn_store_stats_get(s, &st) != 0)
    return;
  family(m, "donut_store_items", "gauge", "Values held by the store.");
  put(m, "donut_store_items %" PRIu64 "\n", st.items);
  family(m, "donut_store_bytes", "gauge", "Bytes held by the store.");
  put(m, "donut_store_bytes %" PRIu64 "\n", st.bytes);
  counter(m, "donut_store_evictions_total", "Values evicted by the store.",
          st.evictions);
}

static void latency_metrics(const dn__latency *lat, mbuf *m) {
  static const char *const le[DN__LATENCY_BUCKETS] = {
      "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
      "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "2.5"};
  static const char *const kinds[] = {"hit", "miss", "recomposed", "none"};
  family(m, "donut_http_request_duration_seconds", "histogram",
         "Time from a whole request to its response, by cache outcome.");
  for (int k = 0; k < DN__CACHE_KINDS; k++) {
    const dn__latency *l = &lat[k];
    uint64_t cum = 0;
    for (int b = 0; b < DN__LATENCY_BUCKETS; b++) {
      cum += l->bucket[b];
      put(m,
          "donut_http_request_duration_seconds_bucket{cache=\"%s\","
          "le=\"%s\"} %" PRIu64 "\n",
          kinds[k], le[b], cum);
    }
    put(m,
        "donut_http_request_duration_seconds_bucket{cache=\"%s\","
        "le=\"+Inf\"} %" PRIu64 "\n",
        kinds[k], l->count);
    put(m, "donut_http_request_duration_seconds_sum{cache=\"%s\"} %.6f\n",
        kinds[k], (double)l->sum_us / 1e6);
    put(m,
        "donut_http_request_duration_seconds_count{cache=\"%s\"} %" PRIu64 "\n",
        kinds[k], l->count);
  }
}

static void server_metrics(const dn_server_stats *s, mbuf *m) {
  family(m, "donut_http_responses_total", "counter",
         "Responses by status class.");
  put(m, "donut_http_responses_total{code=\"2xx\"} %" PRIu64 "\n",
      s->responses_2xx);
  put(m, "donut_http_responses_total{code=\"3xx\"} %" PRIu64 "\n",
      s->responses_3xx);
  put(m, "donut_http_responses_total{code=\"4xx\"} %" PRIu64 "\n",
      s->responses_4xx);
  put(m, "donut_http_responses_total{code=\"5xx\"} %" PRIu64 "\n",
      s->responses_5xx);
  family(m, "donut_http_connections_open", "gauge", "Open connections.");
  put(m, "donut_http_connections_open %" PRIu64 "\n", s->connections_open);
  counter(m, "donut_http_connections_total", "Accepted connections.",
          s->connections_total);
  counter(m, "donut_http_connections_rejected_total",
          "Connections refused over the limit (503).", s->connections_rejected);
  counter(m, "donut_http_timeouts_total", "Requests that timed out (408).",
          s->timeouts);
  counter(m, "donut_http_bad_requests_total", "Malformed requests (400).",
          s->bad_requests);
  counter(m, "donut_http_sent_bytes_total", "Bytes written to clients.",
          s->bytes_out);
}

int dn_server_metrics_text(const dn_server *srv, char **out, size_t *len) {
  if (!srv || !out)
    return DN_EINVAL;
  mbuf m;
  dn__buf_init(&m.b, 0);
  m.rc = 0;
  engine_metrics(srv, &m);
  store_metrics(srv, &m);
  dn_server_stats st;
  dn__latency lat[DN__CACHE_KINDS];
  dn__counters_read(srv, &st, lat);
  server_metrics(&st, &m);
  latency_metrics(lat, &m);
  char *text = m.rc ? NULL : dn__buf_steal(&m.b, len);
  dn__buf_free(&m.b);
  if (!text)
    return DN_ENOMEM;
  *out = text;
  return 0;
}
