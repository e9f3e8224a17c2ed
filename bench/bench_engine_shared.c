/* bench_engine_shared.c - the engine over memcached and redis, against the
 * client libraries in the same run:
 *
 *   hit    dn_engine_get of a cached page (4 KiB, 3 holes, 5 closure
 *          tags) vs. a raw libmemcached / hiredis get of the very bytes
 *          the store keeps for that page's view. Target: at most 1.3x.
 *          "quiet": nothing invalidated since the page was composed;
 *          "after": the gets that follow one unrelated invalidation;
 *          "churn": an unrelated invalidation before every get (the worst
 *          case: the thread cache's sequence check misses every time, so
 *          the view and its tag versions are fetched as well). Only the
 *          gets are timed.
 *   purge  dn_engine_invalidate_tags of a tag carried by N cached
 *          resources (default 100,000), and the next get of one of them.
 *
 * Servers: MEMCACHED_ADDR / REDIS_URL, else its own on free loopback ports.
 *
 *   bench_engine_shared [--quick]
 */
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "donut.h"
#include "servers.h"
#include "store_codec.h"

#define BODY 4096

static char body[BODY];

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int r_page(dn_render *r, void *ud) {
  (void)ud;
  dn_render_write(r, body, BODY - 3 * 64);
  for (int i = 0; i < 3; i++) {
    char uri[48];
    snprintf(uri, sizeof uri, "app://self/part?i=%d", i);
    dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
  }
  return 0;
}

static int r_part(dn_render *r, void *ud) {
  (void)ud;
  dn_render_add_tag(r, "part");
  return dn_render_write(r, body + BODY - 3 * 64, 64);
}

static int r_item(dn_render *r, void *ud) {
  (void)ud;
  dn_render_add_tag(r, "many");
  return dn_render_write_str(r, "item");
}

typedef struct raw {
  memcached_st *mc;
  redisContext *rd;
  char key[DN__SKEY_MAX + 1]; /* the server key of the page's view */
  size_t key_len;
} raw;

static size_t raw_get(raw *c) {
  if (c->mc) {
    size_t vl = 0;
    uint32_t fl;
    memcached_return_t rc;
    char *v = memcached_get(c->mc, c->key, c->key_len, &vl, &fl, &rc);
    free(v);
    return v ? vl : 0;
  }
  redisReply *r = redisCommand(c->rd, "GET %b", c->key, c->key_len);
  size_t n = r && r->type == REDIS_REPLY_STRING ? r->len : 0;
  freeReplyObject(r);
  return n;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void bench_store(const char *name, dn_store *st, raw *c, long n,
                        long many) {
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.store = st;
  dn_engine *e;
  dn_engine_new(&o, &e);
  dn_engine_register(e, "app://self/page", "page", r_page, NULL);
  dn_engine_register(e, "app://self/part{?i}", "part", r_part, NULL);
  dn_engine_register(e, "app://self/item{?id}", "item", r_item, NULL);
  dn_rep *rep;
  if (dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL)) {
    fprintf(stderr, "%s: get failed\n", name);
    exit(1);
  }
  dn_rep_unref(rep);
  dn__skey(c->key, &c->key_len, "donut", DN__SKEY_VALUE,
           dn_slice_from_cstr("dn:v:app://self/page"), c->rd != NULL);
  size_t stored = raw_get(c);
  if (!stored) {
    fprintf(stderr, "%s: the view is not under the expected key\n", name);
    exit(1);
  }
  for (int busy = 0; busy < 2; busy++) {
    if (busy) {
      /* Something else changes: hits must now check tag versions. */
      dn_slice other = dn_slice_from_cstr("unrelated");
      dn_engine_invalidate_tags(e, &other, 1, NULL);
      dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL);
      dn_rep_unref(rep);
    }
    double hit[5], rawt[5];
    for (int round = 0; round < 5; round++) {
      double t0 = now_ns();
      for (long i = 0; i < n; i++) {
        dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL);
        dn_rep_unref(rep);
      }
      hit[round] = (now_ns() - t0) / (double)n;
      t0 = now_ns();
      for (long i = 0; i < n; i++)
        raw_get(c);
      rawt[round] = (now_ns() - t0) / (double)n;
    }
    qsort(hit, 5, sizeof(double), cmp);
    qsort(rawt, 5, sizeof(double), cmp);
    printf("%-10s %-5s hit %7.1f us   raw get of the %zu stored bytes %7.1f us"
           "   ratio %.2f\n",
           name, busy ? "after" : "quiet", hit[2] / 1000, stored,
           rawt[2] / 1000, hit[2] / rawt[2]);
  }
  long churn_n = n / 4;
  double churn = 0;
  for (long i = 0; i < churn_n; i++) {
    dn_slice other = dn_slice_from_cstr("unrelated");
    dn_engine_invalidate_tags(e, &other, 1, NULL);
    double t0 = now_ns();
    dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL);
    churn += now_ns() - t0;
    dn_rep_unref(rep);
  }
  printf("%-10s churn hit %7.1f us   (an invalidation before every get)\n",
         name, churn / (double)churn_n / 1000);

  char uri[48];
  for (long i = 0; i < many; i++) {
    size_t len = (size_t)snprintf(uri, sizeof uri, "app://self/item?id=%ld", i);
    if (dn_engine_get(e, uri, len, NULL, 0, &rep, NULL, NULL) == 0)
      dn_rep_unref(rep);
  }
  dn_slice tag = dn_slice_from_cstr("many");
  double t0 = now_ns();
  int rc = dn_engine_invalidate_tags(e, &tag, 1, NULL);
  double inv = now_ns() - t0;
  size_t len =
      (size_t)snprintf(uri, sizeof uri, "app://self/item?id=%ld", many / 2);
  dn_get_info info = {0};
  t0 = now_ns();
  dn_engine_get(e, uri, len, NULL, 0, &rep, &info, NULL);
  double next = now_ns() - t0;
  dn_rep_unref(rep);
  printf("%-10s invalidate a tag on %ld resources: %.1f us (rc %d); next "
         "get of one: %.1f us, %u render\n",
         name, many, inv / 1000, rc, next / 1000, info.renders);
  dn_engine_free(e);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  long n = quick ? 2000 : 20000, many = quick ? 10000 : 100000;
  unsigned seed = 7;
  for (int i = 0; i < BODY; i++) {
    seed = seed * 1103515245u + 12345u;
    body[i] = (char)('!' + (seed >> 16) % 90); /* incompressible text */
  }
  dn_test_server mcs = {0}, rds = {0};
  const char *mc = getenv("MEMCACHED_ADDR"), *rd = getenv("REDIS_URL");
  if (!mc && dn_test_server_start(&mcs, DN_TEST_MEMCACHED, NULL) == 0)
    mc = mcs.addr;
  if (!rd && dn_test_server_start(&rds, DN_TEST_REDIS, NULL) == 0)
    rd = rds.url;
  if (!mc || !rd) {
    fprintf(stderr, "bench_engine_shared: no memcached or redis\n");
    return 1;
  }
  printf("page: %d bytes, 3 holes\n", BODY);
  dn_store *st;
  dn_error err;
  if (dn_store_memcached_new(mc, NULL, &st, &err) == 0) {
    raw c = {memcached(NULL, 0), NULL, {0}, 0};
    memcached_server_add(c.mc, "127.0.0.1",
                         (in_port_t)atoi(strchr(mc, ':') + 1));
    bench_store("memcached", st, &c, n, many);
    memcached_free(c.mc);
    dn_store_free(st);
  }
  if (dn_store_redis_new(rd, NULL, &st, &err) == 0) {
    const char *hp = strstr(rd, "//") + 2;
    raw c = {
        NULL, redisConnect("127.0.0.1", atoi(strchr(hp, ':') + 1)), {0}, 0};
    bench_store("redis", st, &c, n, many);
    redisFree(c.rd);
    dn_store_free(st);
  }
  dn_test_server_stop(&mcs);
  dn_test_server_stop(&rds);
  return 0;
}
