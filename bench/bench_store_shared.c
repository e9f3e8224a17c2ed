/* bench_store_shared.c - what the shared stores cost over their client
 * libraries: a get of one 4 KiB value through dn_store (pool, key
 * mapping, checksum, decompression, blob) against a plain libmemcached or
 * hiredis get of the very same stored bytes, in the same run.
 *
 * Servers come from MEMCACHED_ADDR and REDIS_URL; when a variable is unset
 * and the benchmark was built with tests/support/servers.c
 * (DN_BENCH_SERVERS), it starts its own server on a free loopback port.
 *
 *   bench_store_shared [iterations]      (default 20000)
 *
 * The iterations are split into 20 alternating rounds of store and raw
 * gets; each side reports its best round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include "donut.h"
#include "donut/store_shared.h"
#include "store.h"
#include "store_codec.h"
#ifdef DN_BENCH_SERVERS
#include "servers.h"
#endif

#define VALUE_LEN 4096
#define ROUNDS 20

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A page fragment (compresses about 4:1) or noise (stored as it is). */
static void make_value(char *p, int html) {
  unsigned seed = 12345;
  for (size_t i = 0; i < VALUE_LEN; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = html
               ? "<li class=\"item\">Item #</li>\n0123456789"[(seed >> 16) % 38]
               : (char)(seed >> 16);
  }
}

typedef struct raw_client {
  int kind; /* 'm' or 'r' */
  memcached_st *mc;
  redisContext *rd;
} raw_client;

/* One get of the stored bytes under the server key. */
static int raw_get(raw_client *c, const char *k, size_t kl) {
  if (c->kind == 'm') {
    size_t vl;
    uint32_t flags;
    memcached_return_t r;
    char *v = memcached_get(c->mc, k, kl, &vl, &flags, &r);
    free(v);
    return v ? 0 : -1;
  }
  const char *argv[2] = {"GET", k};
  size_t lens[2] = {3, kl};
  redisReply *r = redisCommandArgv(c->rd, 2, argv, lens);
  int ok = r && r->type == REDIS_REPLY_STRING;
  freeReplyObject(r);
  return ok ? 0 : -1;
}

static double time_store(dn_store *st, dn_slice key, long n) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < n; i++) {
    dn_blob *out = NULL;
    if (dn__store_get_multi(st, &key, 1, &out, NULL) || !out) {
      fprintf(stderr, "store get failed\n");
      exit(1);
    }
    dn_blob_unref(out);
  }
  return (double)(now_ns() - t0) / (double)n;
}

static double time_raw(raw_client *c, const char *k, size_t kl, long n) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (raw_get(c, k, kl)) {
      fprintf(stderr, "raw get failed\n");
      exit(1);
    }
  return (double)(now_ns() - t0) / (double)n;
}

static void run_one(const char *name, dn_store *st, raw_client *c, int html,
                    long n) {
  char value[VALUE_LEN], k[DN__SKEY_MAX + 1];
  size_t kl;
  make_value(value, html);
  dn_slice key = dn_slice_from_cstr(html ? "bench:html" : "bench:noise");
  dn_blob *b = NULL;
  if (dn_blob_new(value, sizeof value, &b) ||
      dn__store_set(st, key, b, 0, DN_STORE_SET)) {
    fprintf(stderr, "%s: cannot store the value\n", name);
    exit(1);
  }
  dn_blob_unref(b);
  dn__skey(k, &kl, DN_STORE_SHARED_NAMESPACE, DN__SKEY_VALUE, key,
           c->kind == 'r');
  time_store(st, key, n / 10 + 1); /* warm up both paths */
  time_raw(c, k, kl, n / 10 + 1);
  /* Alternate short rounds and keep each side's best, so that a burst of
   * load from elsewhere on the machine hits both sides alike and is then
   * discarded. */
  double s = 0, r = 0;
  for (int round = 0; round < ROUNDS; round++) {
    double ts = time_store(st, key, n / ROUNDS + 1);
    double tr = time_raw(c, k, kl, n / ROUNDS + 1);
    s = round == 0 || ts < s ? ts : s;
    r = round == 0 || tr < r ? tr : r;
  }
  printf("%-10s %-6s store %8.0f ns/op   raw %8.0f ns/op   ratio %.2f\n", name,
         html ? "html" : "noise", s, r, s / r);
}

static int bench_memcached(const char *addr, long n) {
  dn_store *st = NULL;
  dn_error err = {0};
  if (dn_store_memcached_new(addr, NULL, &st, &err)) {
    fprintf(stderr, "memcached: %s\n", err.text);
    return 1;
  }
  /* The raw client is configured like the store: same servers, weighted
   * ketama, TCP_NODELAY. */
  dn__hostport hp[DN__MAX_SERVERS];
  size_t count = 0;
  raw_client c = {'m', memcached_create(NULL), NULL};
  dn__parse_servers(addr, "MEMCACHED_ADDR", hp, &count, NULL);
  for (size_t i = 0; c.mc && i < count; i++)
    if (hp[i].port)
      memcached_server_add(c.mc, hp[i].host, (in_port_t)hp[i].port);
    else
      memcached_server_add_unix_socket(c.mc, hp[i].host);
  if (!c.mc || memcached_behavior_set(c.mc, MEMCACHED_BEHAVIOR_TCP_NODELAY,
                                      1) != MEMCACHED_SUCCESS) {
    fprintf(stderr, "memcached: cannot configure a raw client\n");
    memcached_free(c.mc);
    dn_store_free(st);
    return 1;
  }
  if (count > 1)
    memcached_behavior_set(c.mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
  run_one("memcached", st, &c, 1, n);
  run_one("memcached", st, &c, 0, n);
  memcached_free(c.mc);
  dn_store_free(st);
  return 0;
}

static int bench_redis(const char *url, long n) {
  dn_store *st = NULL;
  dn_error err = {0};
  if (dn_store_redis_new(url, NULL, &st, &err)) {
    fprintf(stderr, "redis: %s\n", err.text);
    return 1;
  }
  dn__redis_url u;
  dn__parse_redis_url(url, "REDIS_URL", &u, NULL);
  raw_client c = {'r', NULL, redisConnect(u.hp.host, (int)u.hp.port)};
  if (!c.rd || c.rd->err || u.has_password || u.db) {
    fprintf(stderr, "redis: raw client needs a local redis without "
                    "password or db\n");
    redisFree(c.rd);
    dn_store_free(st);
    return 1;
  }
  run_one("redis", st, &c, 1, n);
  run_one("redis", st, &c, 0, n);
  redisFree(c.rd);
  dn_store_free(st);
  return 0;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  if (n <= 0)
    n = 20000;
  const char *mc = getenv("MEMCACHED_ADDR"), *rd = getenv("REDIS_URL");
  int rc = 0;
#ifdef DN_BENCH_SERVERS
  dn_test_server mcs = {0}, rds = {0};
  if (!mc && dn_test_server_start(&mcs, DN_TEST_MEMCACHED, NULL) == 0)
    mc = mcs.addr;
  if (!rd && dn_test_server_start(&rds, DN_TEST_REDIS, NULL) == 0)
    rd = rds.url;
#endif
  printf("get of one %d-byte value, %ld iterations, best of %d rounds\n",
         VALUE_LEN, n, ROUNDS);
  if (mc)
    rc |= bench_memcached(mc, n);
  else
    fprintf(stderr, "memcached: set MEMCACHED_ADDR\n");
  if (rd)
    rc |= bench_redis(rd, n);
  else
    fprintf(stderr, "redis: set REDIS_URL\n");
#ifdef DN_BENCH_SERVERS
  dn_test_server_stop(&mcs);
  dn_test_server_stop(&rds);
#endif
  return rc || !mc || !rd;
}
