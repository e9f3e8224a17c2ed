/* bench_store_memory.c - speed and memory overhead of the memory store.
 *
 * Fills a store with entries (keys of 32 bytes, values of 512), then
 * times get hits (with and without a ttl), get misses and overwriting sets with
 * 1 and 2 threads, each thread picking keys with its own xorshift generator. It
 * reports ns per operation as seen by one thread, the aggregate throughput, and
 * the bytes each entry costs beyond its key and value: once from the
 * store's own accounting and once from glibc's malloc statistics.
 *
 * Two data sets: 1,000 entries (cache-resident) and 50,000 (about 35 MB,
 * mostly out of cache). The "plain lookup" row is the yardstick: an
 * unlocked open-addressing table over the same keys. Each figure is the
 * median of 5 runs.
 *
 *   bench_store_memory [ops-per-thread]
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "donut.h"
#include "store.h"

#define KEY_LEN 32
#define VALUE_LEN 512
#define TTL_MS 3600000u
#define REPEAT 5

/* The plain lookup is the yardstick: an unlocked open-addressing table of
 * the same keys, no reference counting, reading the value's first byte. */
typedef struct plain_node {
  uint64_t hash;
  char key[KEY_LEN];
  char value[VALUE_LEN];
} plain_node;

typedef struct plain_table {
  plain_node **slots;
  size_t mask;
} plain_table;

enum op { OP_PLAIN, OP_HIT, OP_HIT_TTL, OP_MISS, OP_SET, OP_COUNT };
static const char *const op_names[] = {"plain lookup", "get hit",
                                       "get hit (ttl)", "get miss", "set"};

typedef struct bench {
  dn_store *store;
  plain_table *plain;
  char (*keys)[KEY_LEN + 1];
  size_t n;
  long ops;
  dn_blob *value;
  pthread_barrier_t *start;
  enum op op;
  uint64_t seed;
  long failures;
} bench;

static volatile char sink;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static int plain_get(const plain_table *t, const char *key) {
  uint64_t h = XXH3_64bits(key, KEY_LEN);
  for (size_t i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
    const plain_node *n = t->slots[i];
    if (n->hash == h && memcmp(n->key, key, KEY_LEN) == 0) {
      sink = n->value[0];
      return 0;
    }
  }
  return -1;
}

/* One operation on key k; returns nonzero on an unexpected result. Even
 * keys were stored without a ttl and odd keys with one. */
static int one_op(bench *b, size_t k) {
  dn_slice key = {b->keys[k], KEY_LEN};
  char miss[KEY_LEN];
  dn_blob *got = NULL;
  switch (b->op) {
  case OP_PLAIN:
    return plain_get(b->plain, b->keys[k]);
  case OP_SET:
    return dn__store_set(b->store, key, b->value, 0, DN_STORE_SET) != 0;
  case OP_MISS:
    memcpy(miss, b->keys[k], KEY_LEN);
    miss[0] = 'X';
    key.ptr = miss;
    break;
  case OP_HIT:
    key.ptr = b->keys[k & ~(size_t)1];
    break;
  default:
    key.ptr = b->keys[(k | 1) < b->n ? k | 1 : 1];
    break;
  }
  dn__store_get_multi(b->store, &key, 1, &got, NULL);
  int bad = (got == NULL) != (b->op == OP_MISS);
  if (got)
    sink = dn_blob_data(got)[0];
  dn_blob_unref(got);
  return bad;
}

static void *worker(void *arg) {
  bench *b = arg;
  uint64_t r = b->seed;
  pthread_barrier_wait(b->start);
  for (long i = 0; i < b->ops; i++)
    b->failures += one_op(b, (size_t)(rng_next(&r) % b->n));
  return NULL;
}

/* Runs `threads` workers doing op; returns ns per op seen by one thread. */
static double run(bench *proto, enum op op, int threads, double *mops) {
  pthread_t t[2];
  bench b[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    b[i] = *proto;
    b[i].op = op;
    b[i].start = &start;
    b[i].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    pthread_create(&t[i], NULL, worker, &b[i]);
  }
  pthread_barrier_wait(&start);
  double t0 = now_s();
  long failures = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    failures += b[i].failures;
  }
  double elapsed = now_s() - t0;
  pthread_barrier_destroy(&start);
  if (failures)
    fprintf(stderr, "bench: %ld unexpected results\n", failures);
  *mops = (double)proto->ops * threads / elapsed / 1e6;
  return elapsed * 1e9 / (double)proto->ops;
}

/* The machine is shared: report the median of several runs, with the
 * throughput of that run. */
static double median_of(bench *b, enum op op, int threads, double *mops) {
  double ns[REPEAT], m[REPEAT];
  for (int i = 0; i < REPEAT; i++)
    ns[i] = run(b, op, threads, &m[i]);
  for (int i = 1; i < REPEAT; i++) /* insertion sort by ns, m alongside */
    for (int j = i; j > 0 && ns[j] < ns[j - 1]; j--) {
      double t = ns[j];
      ns[j] = ns[j - 1];
      ns[j - 1] = t;
      t = m[j];
      m[j] = m[j - 1];
      m[j - 1] = t;
    }
  *mops = m[REPEAT / 2];
  return ns[REPEAT / 2];
}

/* Bytes malloc has handed out: small blocks in the heap plus blocks big
 * enough to get their own mapping (such as grown shard tables). */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Fills the store, measuring what the entries cost beyond key and value,
 * and builds the plain table over the same keys and values. */
static int fill(bench *b, double *by_store, double *by_malloc) {
  char v[VALUE_LEN];
  memset(v, 'v', sizeof v);
  size_t before = heap_in_use();
  for (size_t i = 0; i < b->n; i++) {
    dn_blob *blob;
    if (dn_blob_new(v, sizeof v, &blob) != 0)
      return -1;
    int rc = dn__store_set(b->store, (dn_slice){b->keys[i], KEY_LEN}, blob,
                           i % 2 ? TTL_MS : 0, DN_STORE_SET);
    dn_blob_unref(blob);
    if (rc)
      return -1;
  }
  size_t after = heap_in_use();
  dn_store_stats st;
  dn_store_stats_get(b->store, &st);
  if (st.items != b->n || st.evictions)
    return -1;
  double payload = (double)(KEY_LEN + VALUE_LEN);
  *by_store = (double)st.bytes / (double)st.items - payload;
  *by_malloc = (double)(after - before) / (double)b->n - payload;
  return 0;
}

/* Nodes are allocated one by one, like the store's entries and blobs. */
static int plain_build(bench *b, plain_table *t, plain_node **nodes) {
  size_t cap = 1;
  while (cap < b->n * 2)
    cap *= 2;
  t->slots = calloc(cap, sizeof *t->slots);
  if (!t->slots)
    return -1;
  t->mask = cap - 1;
  for (size_t i = 0; i < b->n; i++) {
    plain_node *n = nodes[i] = malloc(sizeof *n);
    if (!n)
      return -1;
    n->hash = XXH3_64bits(b->keys[i], KEY_LEN);
    memcpy(n->key, b->keys[i], KEY_LEN);
    memset(n->value, 'v', VALUE_LEN);
    size_t j = n->hash & t->mask;
    while (t->slots[j])
      j = (j + 1) & t->mask;
    t->slots[j] = n;
  }
  b->plain = t;
  return 0;
}

static int dataset(size_t n, long ops) {
  bench b = {.n = n, .ops = ops};
  plain_table t = {0};
  plain_node **nodes = calloc(n, sizeof *nodes);
  b.keys = malloc(n * sizeof *b.keys);
  double by_store, by_malloc;
  if (!nodes || !b.keys || dn_store_memory_new(NULL, &b.store) != 0 ||
      dn_blob_new("a fresh value", 13, &b.value) != 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    snprintf(b.keys[i], sizeof b.keys[i], "app://self/posting?id=%010u",
             (unsigned)(i % 1000000000u));
  if (fill(&b, &by_store, &by_malloc) != 0 || plain_build(&b, &t, nodes) != 0)
    return -1;
  printf("\n%zu entries (key %d B, value %d B), %ld ops per thread\n", n,
         KEY_LEN, VALUE_LEN, ops);
  printf("%-14s %10s %8s %10s %8s\n", "operation", "1T ns/op", "Mops/s",
         "2T ns/op", "Mops/s");
  for (enum op op = OP_PLAIN; op < OP_COUNT; op++) {
    double m1, m2;
    double ns1 = median_of(&b, op, 1, &m1), ns2 = median_of(&b, op, 2, &m2);
    printf("%-14s %10.1f %8.2f %10.1f %8.2f\n", op_names[op], ns1, m1, ns2, m2);
  }
  printf("overhead per entry beyond key+value: %.1f B (store accounting), "
         "%.1f B (malloc)\n",
         by_store, by_malloc);
  dn_blob_unref(b.value);
  dn_store_free(b.store);
  free(t.slots);
  for (size_t i = 0; i < n; i++)
    free(nodes[i]);
  free(nodes);
  free(b.keys);
  return 0;
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
  if (ops <= 0)
    return 2;
  printf("memory store benchmark (default options: 64 MiB, 16 shards)\n");
  if (dataset(1000, ops) != 0 || dataset(50000, ops) != 0) {
    fprintf(stderr, "bench: setting up failed\n");
    return 1;
  }
  return 0;
}
