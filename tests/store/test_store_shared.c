/* test_store_shared.c - one conformance suite run against real memcached
 * and redis servers (started on free loopback ports by tests/support/
 * servers.c), plus what only one backend has: ketama placement for
 * memcached, indexes, passwords and databases for redis. Fault tests stop,
 * pause and restart a server in the middle of a test.
 *
 * A missing server binary fails the suite: a cache that was never tested
 * against its server must not look green.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "donut/store_shared.h"
#include "servers.h"
#include "store.h"
#include "store_codec.h"
#include "test_support.h"

typedef struct backend {
  int kind;
  dn_test_server *srv;
  dn_store *st;
} backend;

static dn_test_server g_mc, g_mc2, g_rd;
static backend b_mc = {DN_TEST_MEMCACHED, &g_mc, NULL};
static backend b_rd = {DN_TEST_REDIS, &g_rd, NULL};

/* ---- helpers ----------------------------------------------------------------
 */
static dn_slice S(const char *s) { return dn_slice_from_cstr(s); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static dn_blob *B(const void *p, size_t n) {
  dn_blob *b = NULL;
  assert_int_equal(dn_blob_new(p, n, &b), 0);
  return b;
}

static int open_store(int kind, const dn_test_server *srv,
                      const dn_store_shared_options *o, dn_store **out) {
  dn_error err = {0};
  int rc = kind == DN_TEST_MEMCACHED
               ? dn_store_memcached_new(srv->addr, o, out, &err)
               : dn_store_redis_new(srv->url, o, out, &err);
  if (rc)
    fail_msg("cannot open store: %s (%s)", dn_strerror(rc), err.text);
  return rc;
}

static int put(dn_store *st, dn_slice k, const char *v, uint64_t ttl,
               int mode) {
  dn_blob *b = B(v, strlen(v));
  int rc = dn__store_set(st, k, b, ttl, mode);
  dn_blob_unref(b);
  return rc;
}

/* Reads one key; NULL for a miss. Fails on an error. */
static dn_blob *get1(dn_store *st, dn_slice k) {
  dn_blob *out = NULL;
  assert_int_equal(dn__store_get_multi(st, &k, 1, &out, NULL), 0);
  return out;
}

static void assert_value(dn_store *st, dn_slice k, const char *want) {
  dn_blob *b = get1(st, k);
  if (!want) {
    assert_null(b);
    return;
  }
  assert_non_null(b);
  assert_int_equal(dn_blob_len(b), strlen(want));
  assert_memory_equal(dn_blob_data(b), want, strlen(want));
  dn_blob_unref(b);
}

static dn_store_stats stats(dn_store *st) {
  dn_store_stats s;
  assert_int_equal(dn_store_stats_get(st, &s), 0);
  return s;
}

/* The server key the store uses for `key` in namespace "donut". */
static size_t skey(const backend *b, dn_slice key, char kind, char *out) {
  size_t kl;
  assert_int_equal(
      dn__skey(out, &kl, "donut", kind, key, b->kind == DN_TEST_REDIS), 0);
  return kl;
}

/* Writes raw bytes under a server key, behind the store's back. */
static void raw_put(const backend *b, const char *k, size_t kl, const void *v,
                    size_t vl) {
  size_t cap = kl + vl + 128;
  char *cmd = malloc(cap), reply[256];
  int n =
      b->kind == DN_TEST_MEMCACHED
          ? snprintf(cmd, cap, "set %.*s 0 0 %zu\r\n", (int)kl, k, vl)
          : snprintf(cmd, cap, "*3\r\n$3\r\nSET\r\n$%zu\r\n%.*s\r\n$%zu\r\n",
                     kl, (int)kl, k, vl);
  memcpy(cmd + n, v, vl);
  memcpy(cmd + n + vl, "\r\n", 2);
  int got =
      dn_test_server_send(b->srv, cmd, (size_t)n + vl + 2, reply, sizeof reply);
  free(cmd);
  assert_true(got > 0);
  assert_true(strncmp(reply, "STORED", 6) == 0 ||
              strncmp(reply, "+OK", 3) == 0);
}

static void raw_del(const backend *b, const char *k, size_t kl) {
  char cmd[512], reply[256];
  int n = b->kind == DN_TEST_MEMCACHED
              ? snprintf(cmd, sizeof cmd, "delete %.*s\r\n", (int)kl, k)
              : snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nDEL\r\n$%zu\r\n%.*s\r\n",
                         kl, (int)kl, k);
  assert_true(dn_test_server_send(b->srv, cmd, (size_t)n, reply, sizeof reply) >
              0);
}

/* The length of the raw value under a server key, or -1. */
static long raw_len(const backend *b, const char *k, size_t kl) {
  char cmd[512], reply[512];
  long len = -1;
  int n =
      b->kind == DN_TEST_MEMCACHED
          ? snprintf(cmd, sizeof cmd, "get %.*s\r\n", (int)kl, k)
          : snprintf(cmd, sizeof cmd, "*2\r\n$6\r\nSTRLEN\r\n$%zu\r\n%.*s\r\n",
                     kl, (int)kl, k);
  assert_true(dn_test_server_send(b->srv, cmd, (size_t)n, reply, sizeof reply) >
              0);
  if (b->kind == DN_TEST_MEMCACHED) {
    /* "VALUE <key> <flags> <bytes>\r\n": the number before the CR. */
    char *cr = strchr(reply, '\r');
    if (strncmp(reply, "VALUE ", 6) == 0 && cr) {
      *cr = '\0';
      len = strtol(strrchr(reply, ' ') + 1, NULL, 10);
    }
  } else if (reply[0] == ':') {
    len = strtol(reply + 1, NULL, 10);
    if (len == 0)
      len = -1;
  }
  return len;
}

static void flush_server(const dn_test_server *srv) {
  char reply[64];
  if (srv->kind == DN_TEST_MEMCACHED)
    dn_test_server_send(srv, "flush_all\r\n", 11, reply, sizeof reply);
  else
    dn_test_server_send(srv, "*1\r\n$8\r\nFLUSHALL\r\n", 18, reply,
                        sizeof reply);
}

/* ---- fixtures
 * -----------------------------------------------------------------
 */
static int start_or_report(dn_test_server *s, int kind,
                           const char *const *extra) {
  if (dn_test_server_start(s, kind, extra) == 0)
    return 0;
  print_error("cannot start %s: %s\n",
              kind == DN_TEST_MEMCACHED ? "memcached" : "redis-server",
              s->error);
  return -1;
}

static int group_setup(void **state) {
  (void)state;
  if (start_or_report(&g_mc, DN_TEST_MEMCACHED, NULL) ||
      start_or_report(&g_mc2, DN_TEST_MEMCACHED, NULL) ||
      start_or_report(&g_rd, DN_TEST_REDIS, NULL))
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  dn_test_server_stop(&g_mc);
  dn_test_server_stop(&g_mc2);
  dn_test_server_stop(&g_rd);
  return 0;
}

static int setup(void **state) {
  backend *b = *state;
  flush_server(b->srv);
  /* The suite checks behaviour, not speed: generous timeouts keep a
   * loaded machine from failing calls. Fault tests use their own. */
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.connect_timeout_ms = 3000;
  o.io_timeout_ms = 3000;
  return open_store(b->kind, b->srv, &o, &b->st);
}

static int teardown(void **state) {
  backend *b = *state;
  dn_store_free(b->st);
  b->st = NULL;
  return 0;
}

/* ---- conformance
 * ----------------------------------------------------------------
 */
static void test_set_get_overwrite_del(void **state) {
  backend *b = *state;
  assert_string_equal(dn_store_name(b->st),
                      b->kind == DN_TEST_MEMCACHED ? "memcached" : "redis");
  assert_value(b->st, S("k1"), NULL);
  assert_int_equal(put(b->st, S("k1"), "value-1", 0, DN_STORE_SET), 0);
  assert_value(b->st, S("k1"), "value-1");
  assert_int_equal(put(b->st, S("k1"), "value-2", 0, DN_STORE_SET), 0);
  assert_value(b->st, S("k1"), "value-2");
  assert_int_equal(put(b->st, S("empty"), "", 0, DN_STORE_SET), 0);
  assert_value(b->st, S("empty"), "");
  assert_int_equal(dn__store_del(b->st, S("k1")), 0);
  assert_value(b->st, S("k1"), NULL);
  assert_int_equal(dn__store_del(b->st, S("k1")), 0);
}

static void test_add_only_when_absent(void **state) {
  backend *b = *state;
  assert_int_equal(put(b->st, S("a"), "first", 0, DN_STORE_ADD), 0);
  assert_int_equal(put(b->st, S("a"), "second", 0, DN_STORE_ADD), DN_EEXIST);
  assert_value(b->st, S("a"), "first");
  assert_int_equal(dn__store_del(b->st, S("a")), 0);
  assert_int_equal(put(b->st, S("a"), "third", 5000, DN_STORE_ADD), 0);
  assert_value(b->st, S("a"), "third");
  dn_store_stats s = stats(b->st);
  assert_int_equal(s.errors, 0);
}

static void test_ttl_expires(void **state) {
  backend *b = *state;
  assert_int_equal(put(b->st, S("short"), "v", 1000, DN_STORE_SET), 0);
  assert_int_equal(put(b->st, S("forever"), "v", 0, DN_STORE_SET), 0);
  /* Over memcached's 30-day relative limit: an absolute time. */
  uint64_t month = (uint64_t)31 * 24 * 3600 * 1000;
  assert_int_equal(put(b->st, S("long"), "v", month, DN_STORE_SET), 0);
  assert_int_equal(put(b->st, S("huge"), "v", UINT64_MAX, DN_STORE_SET), 0);
  assert_value(b->st, S("huge"), "v");
  assert_value(b->st, S("short"), "v");
  /* memcached counts whole seconds on a clock that ticks once a second. */
  sleep_ms(2600);
  assert_value(b->st, S("short"), NULL);
  assert_value(b->st, S("forever"), "v");
  assert_value(b->st, S("long"), "v");
}

static void test_get_multi_is_one_round_trip(void **state) {
  backend *b = *state;
  uint64_t seq0 = 0, seq = 0;
  assert_int_equal(dn__store_seq_get(b->st, &seq0), 0);
  char names[20][16];
  dn_slice keys[20];
  for (int i = 0; i < 20; i++) {
    snprintf(names[i], sizeof names[i], "multi-%d", i);
    keys[i] = S(names[i]);
    if (i % 2 == 0)
      assert_int_equal(put(b->st, keys[i], names[i], 0, DN_STORE_SET), 0);
  }
  dn_store_stats before = stats(b->st);
  dn_blob *out[20];
  assert_int_equal(dn__store_get_multi(b->st, keys, 20, out, &seq), 0);
  dn_store_stats after = stats(b->st);
  assert_int_equal(after.round_trips - before.round_trips, 1);
  assert_int_equal(after.hits - before.hits, 10);
  assert_int_equal(after.misses - before.misses, 10);
  assert_true(seq == seq0);
  for (int i = 0; i < 20; i++) {
    if (i % 2) {
      assert_null(out[i]);
      continue;
    }
    assert_non_null(out[i]);
    assert_memory_equal(dn_blob_data(out[i]), names[i], strlen(names[i]));
    dn_blob_unref(out[i]);
  }
  /* The same key twice gets two references. */
  dn_slice dup[3] = {keys[0], keys[1], keys[0]};
  assert_int_equal(dn__store_get_multi(b->st, dup, 3, out, NULL), 0);
  assert_non_null(out[0]);
  assert_null(out[1]);
  assert_non_null(out[2]);
  dn_blob_unref(out[0]);
  dn_blob_unref(out[2]);
  assert_int_equal(dn__store_get_multi(b->st, keys, 0, out, &seq), 0);
  assert_true(seq == seq0);
}

static void *bump_thread(void *ud) {
  dn_store *st = ud;
  uint64_t *got = calloc(50, sizeof *got);
  for (int i = 0; i < 50; i++)
    if (dn__store_seq_bump(st, &got[i]))
      got[i] = 0;
  return got;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void check_concurrent_bumps(dn_store *st) {
  uint64_t start, end, all[200];
  assert_int_equal(dn__store_seq_get(st, &start), 0);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, bump_thread, st), 0);
  for (int i = 0; i < 4; i++) {
    void *got;
    pthread_join(t[i], &got);
    memcpy(all + 50 * i, got, 50 * sizeof *all);
    free(got);
  }
  qsort(all, 200, sizeof *all, u64_cmp);
  for (int i = 0; i < 200; i++)
    assert_true(all[i] == start + 1 + (uint64_t)i);
  assert_int_equal(dn__store_seq_get(st, &end), 0);
  assert_true(end == start + 200);
}

static void test_sequence(void **state) {
  backend *b = *state;
  const uint64_t top = (uint64_t)1 << 62;
  uint64_t v0, v, v2;
  assert_int_equal(dn__store_seq_get(b->st, &v0), 0);
  assert_true(v0 < top);
  assert_int_equal(dn__store_seq_get(b->st, &v), 0);
  assert_true(v == v0);
  assert_int_equal(dn__store_seq_bump(b->st, &v), 0);
  assert_true(v == v0 + 1);
  assert_int_equal(dn__store_seq_get(b->st, &v), 0);
  assert_true(v == v0 + 1);
  /* Lost: it restarts at a new random value, on read or on bump. */
  char k[DN__SKEY_MAX + 1];
  size_t kl = dn__skey_seq(k, "donut");
  raw_del(b, k, kl);
  assert_int_equal(dn__store_seq_get(b->st, &v), 0);
  assert_true(v < top && v != v0 + 1);
  raw_del(b, k, kl);
  assert_int_equal(dn__store_seq_bump(b->st, &v), 0);
  assert_true(v <= top);
  assert_int_equal(dn__store_seq_get(b->st, &v2), 0);
  assert_true(v2 == v);
  /* Not a number (a foreign writer): replaced, counted as corrupt. */
  raw_put(b, k, kl, "not-a-number", 12);
  dn_store_stats before = stats(b->st);
  assert_int_equal(dn__store_seq_bump(b->st, &v), 0);
  assert_true(v < top);
  assert_int_equal(stats(b->st).corrupt - before.corrupt, 1);
  raw_put(b, k, kl, "garbage", 7);
  assert_int_equal(dn__store_seq_get(b->st, &v2), 0);
  assert_true(v2 < top);
  check_concurrent_bumps(b->st);
}

static void test_odd_keys_round_trip(void **state) {
  backend *b = *state;
  static char big1[251], big2[10000];
  memset(big1, 'k', sizeof big1);
  memset(big2, 'k', sizeof big2);
  big2[9999] = 'z';
  static const char utf8[] = "\xc3\xbc"
                             "n"
                             "\xc3\xaf"
                             "c"
                             "\xc3\xb8"
                             "d"
                             "\xc3\xa9"
                             "/"
                             "\xe6\x97\xa5";
  const dn_slice keys[] = {
      {big1, sizeof big1},
      {big1, sizeof big1 - 1},
      {big2, sizeof big2},
      {"a\0b", 3},
      {"a\0c", 3},
      {"a", 1},
      {"a b", 3},
      {utf8, sizeof utf8 - 1},
      {"\r\nget x\r\n", 10},
      {"", 0},
      {"\x01\x7f\xff", 3},
      {"donut:seq", 9},
  };
  const size_t n = sizeof keys / sizeof *keys;
  dn_blob *vals[12], *out[12];
  for (size_t i = 0; i < n; i++) {
    char v[32];
    snprintf(v, sizeof v, "value %zu", i);
    vals[i] = B(v, strlen(v));
    assert_int_equal(dn__store_set(b->st, keys[i], vals[i], 0, DN_STORE_SET),
                     0);
  }
  assert_int_equal(dn__store_get_multi(b->st, keys, n, out, NULL), 0);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(out[i]);
    assert_int_equal(dn_blob_len(out[i]), dn_blob_len(vals[i]));
    assert_memory_equal(dn_blob_data(out[i]), dn_blob_data(vals[i]),
                        dn_blob_len(vals[i]));
    dn_blob_unref(out[i]);
    dn_blob_unref(vals[i]);
  }
  assert_int_equal(stats(b->st).corrupt, 0);
  assert_int_equal(dn__store_del(b->st, keys[2]), 0);
  assert_null(get1(b->st, keys[2]));
}

/* A value stored under another key's server key (what a SHA-256
 * collision would do) reads as a miss. */
static void test_collision_is_a_miss(void **state) {
  backend *b = *state;
  static char longkey[300];
  memset(longkey, 'q', sizeof longkey);
  dn_slice victim = {longkey, sizeof longkey};
  char k[DN__SKEY_MAX + 1];
  size_t kl = skey(b, victim, 'v', k);
  dn__buf enc;
  dn__buf_init(&enc, 0);
  assert_int_equal(dn__codec_encode(NULL, S("other key"), "other value", 11,
                                    1024, 1 << 20, &enc),
                   0);
  raw_put(b, k, kl, enc.data, enc.len);
  dn__buf_free(&enc);
  dn_store_stats before = stats(b->st);
  assert_null(get1(b->st, victim));
  dn_store_stats after = stats(b->st);
  assert_int_equal(after.corrupt - before.corrupt, 1);
  assert_int_equal(after.misses - before.misses, 1);
}

static void test_corrupt_values_are_misses(void **state) {
  backend *b = *state;
  char k[DN__SKEY_MAX + 1];
  size_t kl = skey(b, S("victim"), 'v', k);
  dn__buf enc;
  dn__buf_init(&enc, 0);
  assert_int_equal(dn__codec_encode(NULL, S("victim"), "the real value", 14,
                                    1024, 1 << 20, &enc),
                   0);
  raw_put(b, k, kl, enc.data, enc.len);
  assert_value(b->st, S("victim"), "the real value");
  dn_store_stats before = stats(b->st);
  raw_put(b, k, kl, "garbage", 7); /* foreign */
  assert_value(b->st, S("victim"), NULL);
  raw_put(b, k, kl, enc.data, enc.len - 3); /* truncated */
  assert_value(b->st, S("victim"), NULL);
  enc.data[DN__CODEC_HEADER + 8] ^= 0x20; /* one flipped bit */
  raw_put(b, k, kl, enc.data, enc.len);
  assert_value(b->st, S("victim"), NULL);
  raw_put(b, k, kl, "", 0); /* empty */
  assert_value(b->st, S("victim"), NULL);
  dn_store_stats after = stats(b->st);
  assert_int_equal(after.corrupt - before.corrupt, 4);
  assert_int_equal(after.errors - before.errors, 0);
  dn__buf_free(&enc);
  /* And the store writes over them as usual. */
  assert_int_equal(put(b->st, S("victim"), "fresh", 0, DN_STORE_SET), 0);
  assert_value(b->st, S("victim"), "fresh");
}

static void fill_noise(char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (char)(seed >> 16);
  }
}

static void test_too_big(void **state) {
  backend *b = *state;
  size_t n = ((size_t)1 << 20) + 1;
  char *noise = malloc(n), *zeros = calloc(1, 4 * n);
  fill_noise(noise, n, 7);
  assert_int_equal(put(b->st, S("big"), "old", 0, DN_STORE_SET), 0);
  dn_blob *v = B(noise, n);
  assert_int_equal(dn__store_set(b->st, S("big"), v, 0, DN_STORE_SET),
                   DN_ETOOBIG);
  assert_value(b->st, S("big"), "old");
  /* In a batch, the same. */
  dn_slice keys[2] = {S("b1"), S("big")};
  dn_blob *vals[2] = {v, v};
  assert_int_equal(dn__store_set_multi(b->st, keys, vals, 2, 0), DN_ETOOBIG);
  assert_value(b->st, S("big"), "old");
  dn_blob_unref(v);
  /* 4 MiB of zeros compresses far below the limit. */
  v = B(zeros, 4 * n);
  assert_int_equal(dn__store_set(b->st, S("zeros"), v, 0, DN_STORE_SET), 0);
  dn_blob *got = get1(b->st, S("zeros"));
  assert_non_null(got);
  assert_int_equal(dn_blob_len(got), 4 * n);
  assert_memory_equal(dn_blob_data(got), zeros, 4 * n);
  dn_blob_unref(got);
  dn_blob_unref(v);
  free(noise);
  free(zeros);
}

/* An item_limit above the server's: memcached's own refusal is also
 * DN_ETOOBIG, never a truncated value. */
static void test_server_item_limit(void **state) {
  backend *b = *state;
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.item_limit = (size_t)4 << 20;
  dn_store *st;
  assert_int_equal(open_store(b->kind, b->srv, &o, &st), 0);
  size_t n = (size_t)2 << 20;
  char *noise = malloc(n);
  fill_noise(noise, n, 3);
  dn_blob *v = B(noise, n);
  int rc = dn__store_set(st, S("huge"), v, 0, DN_STORE_SET);
  if (b->kind == DN_TEST_MEMCACHED) {
    assert_int_equal(rc, DN_ETOOBIG);
    assert_null(get1(st, S("huge")));
  } else {
    assert_int_equal(rc, 0); /* redis takes up to 512 MiB */
    dn_blob *got = get1(st, S("huge"));
    assert_non_null(got);
    assert_int_equal(dn_blob_len(got), n);
    dn_blob_unref(got);
  }
  /* The store still works afterwards. */
  assert_int_equal(put(st, S("after"), "ok", 0, DN_STORE_SET), 0);
  assert_value(st, S("after"), "ok");
  dn_blob_unref(v);
  free(noise);
  dn_store_free(st);
}

static void test_compression_on_the_wire(void **state) {
  backend *b = *state;
  char text[8192], noise[8192], k[DN__SKEY_MAX + 1];
  for (size_t i = 0; i < sizeof text; i++)
    text[i] = "<li>item</li>\n"[i % 14];
  fill_noise(noise, sizeof noise, 11);
  dn_blob *t = B(text, sizeof text), *z = B(noise, sizeof noise);
  assert_int_equal(dn__store_set(b->st, S("text"), t, 0, DN_STORE_SET), 0);
  assert_int_equal(dn__store_set(b->st, S("noise"), z, 0, DN_STORE_SET), 0);
  long tl = raw_len(b, k, skey(b, S("text"), 'v', k));
  long nl = raw_len(b, k, skey(b, S("noise"), 'v', k));
  assert_true(tl > 0 && tl < 1000);
  assert_int_equal(nl, DN__CODEC_OVERHEAD + 5 + sizeof noise);
  dn_blob *got = get1(b->st, S("text"));
  assert_int_equal(dn_blob_len(got), sizeof text);
  assert_memory_equal(dn_blob_data(got), text, sizeof text);
  dn_blob_unref(got);
  dn_blob_unref(t);
  dn_blob_unref(z);
}

static void test_set_multi_pipelined(void **state) {
  backend *b = *state;
  enum { N = 100 };
  char names[N][16], *big = malloc(5000);
  memset(big, 'x', 5000);
  dn_slice keys[N];
  dn_blob *vals[N], *out[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "sm-%d", i);
    keys[i] = S(names[i]);
    vals[i] = i % 10 ? B(names[i], strlen(names[i])) : B(big, 5000);
  }
  dn_store_stats before = stats(b->st);
  assert_int_equal(dn__store_set_multi(b->st, keys, vals, N, 60000), 0);
  assert_int_equal(stats(b->st).round_trips - before.round_trips, 1);
  /* Another store (another connection) sees every value at once. */
  dn_store *other;
  assert_int_equal(open_store(b->kind, b->srv, NULL, &other), 0);
  assert_int_equal(dn__store_get_multi(other, keys, N, out, NULL), 0);
  for (int i = 0; i < N; i++) {
    assert_non_null(out[i]);
    assert_int_equal(dn_blob_len(out[i]), dn_blob_len(vals[i]));
    dn_blob_unref(out[i]);
    dn_blob_unref(vals[i]);
  }
  assert_int_equal(dn__store_set_multi(b->st, keys, vals, 0, 0), 0);
  dn_store_free(other);
  free(big);
}

/* Batches larger than one MGET (redis) or one set_multi pipeline batch. */
static void test_large_batches(void **state) {
  backend *b = *state;
  enum { N = 1300 };
  char(*names)[16] = malloc(N * sizeof *names);
  dn_slice *keys = malloc(N * sizeof *keys);
  dn_blob **vals = malloc(N * sizeof *vals), **out = malloc(N * sizeof *out);
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "lb-%d", i);
    keys[i] = S(names[i]);
    vals[i] = B(names[i], strlen(names[i]));
  }
  assert_int_equal(dn__store_set_multi(b->st, keys, vals, N - 100, 0), 0);
  uint64_t seq0, seq;
  assert_int_equal(dn__store_seq_get(b->st, &seq0), 0);
  dn_store_stats before = stats(b->st);
  assert_int_equal(dn__store_get_multi(b->st, keys, N, out, &seq), 0);
  dn_store_stats after = stats(b->st);
  assert_int_equal(after.round_trips - before.round_trips, 1);
  assert_int_equal(after.hits - before.hits, N - 100);
  assert_true(seq == seq0);
  for (int i = 0; i < N; i++) {
    if (i >= N - 100) {
      assert_null(out[i]);
    } else {
      assert_non_null(out[i]);
      assert_int_equal(dn_blob_len(out[i]), strlen(names[i]));
      assert_memory_equal(dn_blob_data(out[i]), names[i], strlen(names[i]));
    }
    dn_blob_unref(out[i]);
    dn_blob_unref(vals[i]);
  }
  /* Many medium values: more unanswered bytes than libmemcached's own
   * purge threshold, which must never be reached. */
  char *noise = malloc(3000);
  for (int i = 0; i < 400; i++) {
    fill_noise(noise, 3000, (unsigned)i);
    vals[i] = B(noise, 3000);
  }
  assert_int_equal(dn__store_set_multi(b->st, keys, vals, 400, 0), 0);
  assert_int_equal(dn__store_get_multi(b->st, keys, 400, out, NULL), 0);
  for (int i = 0; i < 400; i++) {
    assert_non_null(out[i]);
    assert_memory_equal(dn_blob_data(out[i]), dn_blob_data(vals[i]), 3000);
    dn_blob_unref(out[i]);
    dn_blob_unref(vals[i]);
  }
  free(noise);
  free(names);
  free(keys);
  free(vals);
  free(out);
}

static void test_two_stores_share_state(void **state) {
  backend *b = *state;
  dn_store *other;
  assert_int_equal(open_store(b->kind, b->srv, NULL, &other), 0);
  assert_int_equal(put(b->st, S("shared"), "from one", 0, DN_STORE_SET), 0);
  assert_value(other, S("shared"), "from one");
  assert_int_equal(put(other, S("shared"), "from two", 0, DN_STORE_ADD),
                   DN_EEXIST);
  assert_int_equal(dn__store_del(other, S("shared")), 0);
  assert_value(b->st, S("shared"), NULL);
  uint64_t a, c;
  assert_int_equal(dn__store_seq_bump(b->st, &a), 0);
  assert_int_equal(dn__store_seq_get(other, &c), 0);
  assert_true(a == c);
  assert_int_equal(dn__store_seq_bump(other, &c), 0);
  assert_int_equal(dn__store_seq_get(b->st, &a), 0);
  assert_true(a == c);
  /* Another namespace is another cache on the same server. */
  dn_store *ns;
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.key_namespace = "other-app";
  assert_int_equal(open_store(b->kind, b->srv, &o, &ns), 0);
  assert_int_equal(put(b->st, S("mine"), "1", 0, DN_STORE_SET), 0);
  assert_value(ns, S("mine"), NULL);
  assert_int_equal(dn__store_seq_get(ns, &c), 0);
  assert_true(c != a);
  dn_store_free(ns);
  dn_store_free(other);
}

/* ---- threads
 * ------------------------------------------------------------------------
 */
typedef struct worker {
  dn_store *st;
  int id;
  int failures;
} worker;

static void *work(void *ud) {
  worker *w = ud;
  char names[10][32], v[64];
  dn_slice keys[10];
  for (int i = 0; i < 10; i++) {
    snprintf(names[i], sizeof names[i], "t%d-%d", w->id, i);
    keys[i] = S(names[i]);
  }
  for (int i = 0; i < 300; i++) {
    int n = snprintf(v, sizeof v, "%d-%d", w->id, i);
    dn_blob *b = NULL, *out[10];
    if (dn_blob_new(v, (size_t)n, &b) ||
        dn__store_set(w->st, keys[i % 10], b, 0, DN_STORE_SET))
      w->failures++;
    dn_blob_unref(b);
    if (dn__store_get_multi(w->st, keys, 10, out, NULL)) {
      w->failures++;
      continue;
    }
    const dn_blob *mine = out[i % 10];
    if (!mine || dn_blob_len(mine) != (size_t)n ||
        memcmp(dn_blob_data(mine), v, (size_t)n) != 0)
      w->failures++;
    for (int j = 0; j < 10; j++)
      dn_blob_unref(out[j]);
  }
  return NULL;
}

static void test_many_threads_share_a_pool(void **state) {
  backend *b = *state;
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.pool_size = 3;
  /* Correctness under contention, not speed: generous timeouts, so that a
   * loaded test machine does not turn into failed calls. */
  o.io_timeout_ms = 5000;
  o.connect_timeout_ms = 5000;
  dn_store *st;
  assert_int_equal(open_store(b->kind, b->srv, &o, &st), 0);
  enum { T = 8 };
  pthread_t t[T];
  worker w[T];
  for (int i = 0; i < T; i++) {
    w[i] = (worker){st, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < T; i++)
    pthread_join(t[i], NULL);
  dn_store_stats s = stats(st);
  for (int i = 0; i < T; i++)
    if (w[i].failures)
      fail_msg("worker %d: %d failures (store errors %llu)", i, w[i].failures,
               (unsigned long long)s.errors);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.hits, T * 300 * 10 - T * 45);
  dn_store_free(st);
}

/* ---- faults
 * ---------------------------------------------------------------------------
 */
static dn_store_shared_options fast_fail(void) {
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.connect_timeout_ms = 200;
  o.io_timeout_ms = 200;
  o.retry_ms = 500;
  return o;
}

static void assert_unavailable(dn_store *st) {
  dn_slice keys[2] = {S("before"), S("other")};
  dn_blob *out[2] = {(dn_blob *)1, (dn_blob *)1};
  uint64_t seq = 7;
  int rc = dn__store_get_multi(st, keys, 2, out, &seq);
  assert_true(rc == DN_ESTORE || rc == DN_ETIMEDOUT);
  assert_null(out[0]);
  assert_null(out[1]);
  rc = put(st, S("during"), "v", 0, DN_STORE_SET);
  assert_true(rc == DN_ESTORE || rc == DN_ETIMEDOUT);
  assert_true(dn__store_seq_bump(st, &seq) < 0);
  assert_true(dn__store_del(st, S("other")) < 0);
  dn_slice k = S("x");
  dn_blob *v = B("v", 1);
  assert_true(dn__store_set_multi(st, &k, &v, 1, 0) < 0);
  dn_blob_unref(v);
}

/* Retries until a write succeeds (the store must reconnect by itself). */
static void assert_recovers(dn_store *st) {
  int rc = -1;
  for (int i = 0; i < 100 && rc != 0; i++) {
    rc = put(st, S("after"), "back", 0, DN_STORE_SET);
    if (rc)
      sleep_ms(100);
  }
  assert_int_equal(rc, 0);
  assert_value(st, S("after"), "back");
}

static void test_server_stop_and_restart(void **state) {
  backend *b = *state;
  dn_test_server srv;
  assert_int_equal(start_or_report(&srv, b->kind, NULL), 0);
  dn_store_shared_options o = fast_fail();
  dn_store *st;
  assert_int_equal(open_store(b->kind, &srv, &o, &st), 0);
  assert_int_equal(put(st, S("before"), "v", 0, DN_STORE_SET), 0);
  dn_test_server_kill(&srv);
  dn_store_stats before = stats(st);
  assert_unavailable(st);
  assert_unavailable(st); /* and again, while the server is left alone */
  assert_true(stats(st).errors - before.errors >= 10);
  assert_int_equal(dn_test_server_restart(&srv), 0);
  assert_recovers(st);
  assert_value(st, S("before"), NULL); /* a restart loses everything */
  dn_store_free(st);
  dn_test_server_stop(&srv);
}

static void test_server_hangs(void **state) {
  backend *b = *state;
  dn_test_server srv;
  assert_int_equal(start_or_report(&srv, b->kind, NULL), 0);
  dn_store_shared_options o = fast_fail();
  dn_store *st;
  assert_int_equal(open_store(b->kind, &srv, &o, &st), 0);
  assert_int_equal(put(st, S("before"), "v", 0, DN_STORE_SET), 0);
  dn_test_server_pause(&srv);
  dn_blob *out = (dn_blob *)1;
  dn_slice k = S("before");
  assert_int_equal(dn__store_get_multi(st, &k, 1, &out, NULL), DN_ETIMEDOUT);
  assert_null(out);
  assert_unavailable(st);
  dn_test_server_resume(&srv);
  assert_recovers(st);
  /* Writes that timed out may still have been applied: a timeout says
   * nothing either way. What was there before is still there. */
  assert_value(st, S("before"), "v");
  dn_store_free(st);
  dn_test_server_stop(&srv);
}

/* ---- dead connections to a live server --------------------------------------
 * A connection that the server closed while it sat idle, or that died with
 * a restarted server, costs no failed operation: the request goes again
 * on a fresh connection, and no retry window starts.
 */
#define OP_KINDS 9

/* Runs operation `i` of OP_KINDS kinds and returns its result; a kind that
 * this backend does not offer (memcached's index) does a get instead. */
static int run_op(int kind, dn_store *st, int i) {
  dn_slice keys[2] = {S("dead-1"), S("dead-2")};
  dn_blob *out[2] = {NULL, NULL};
  dn_blob *v = B("v", 1);
  dn_blob *vals[2] = {v, v};
  uint64_t seq = 0;
  dn_strings m = {0};
  static unsigned leases;
  char lease[32];
  int rc;
  snprintf(lease, sizeof lease, "lease-%u", ++leases);
  if (kind == DN_TEST_MEMCACHED && i >= 7)
    i = 1;
  switch (i) {
  case 0:
    rc = dn__store_set(st, keys[0], v, 0, DN_STORE_SET);
    break;
  case 1:
    rc = dn__store_get_multi(st, keys, 2, out, &seq);
    break;
  case 2:
    rc = dn__store_set_multi(st, keys, vals, 2, 0);
    break;
  case 3:
    rc = dn__store_del(st, keys[1]);
    break;
  case 4:
    rc = dn__store_seq_get(st, &seq);
    break;
  case 5:
    rc = dn__store_seq_bump(st, &seq);
    break;
  case 6: /* a lease: exactly one add of a new key succeeds */
    rc = dn__store_set(st, (dn_slice){lease, strlen(lease)}, v, 5000,
                       DN_STORE_ADD);
    if (!rc)
      rc = dn__store_set(st, (dn_slice){lease, strlen(lease)}, v, 5000,
                         DN_STORE_ADD) == DN_EEXIST
               ? 0
               : DN_EINVAL;
    break;
  case 7:
    rc = dn__store_index_add(st, keys[0], S("member"), 0);
    break;
  default:
    rc = dn__store_index_members(st, keys[0], &m);
    break;
  }
  dn_strings_free(&m);
  dn_blob_unref(out[0]);
  dn_blob_unref(out[1]);
  dn_blob_unref(v);
  return rc;
}

static const char *const *idle_close_flags(int kind) {
  static const char *const mc[] = {"-o", "idle_timeout=1", NULL};
  static const char *const rd[] = {"--timeout", "1", NULL};
  return kind == DN_TEST_MEMCACHED ? mc : rd;
}

/* Opens a connection of our own, sends one request, and waits until the
 * server closes it for idleness (or 10 s): connections used before it are
 * closed by then too. memcached checks idle connections only every second
 * or so, so a fixed sleep would have to be long to be safe. */
static void wait_idle_close(const dn_test_server *srv) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)srv->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  const char *req =
      srv->kind == DN_TEST_MEMCACHED ? "version\r\n" : "*1\r\n$4\r\nPING\r\n";
  assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) > 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    ;
  assert_int_equal(n, 0); /* closed by the server, not timed out */
  close(fd);
  sleep_ms(100);
}

/* The server closes connections idle for a second (memcached -o
 * idle_timeout=1, redis timeout 1). Once it has closed the store's, every
 * kind of operation succeeds at the first try. */
static void test_idle_connections_closed_by_the_server(void **state) {
  backend *b = *state;
  dn_test_server srv;
  assert_int_equal(start_or_report(&srv, b->kind, idle_close_flags(b->kind)),
                   0);
  dn_store_shared_options o = fast_fail();
  o.retry_ms = 10000; /* a retry window would fail everything below */
  dn_store *st;
  assert_int_equal(open_store(b->kind, &srv, &o, &st), 0);
  for (int i = 0; i < OP_KINDS; i++)
    assert_int_equal(run_op(b->kind, st, i), 0);
  wait_idle_close(&srv);
  dn_store_stats before = stats(st);
  for (int i = 0; i < OP_KINDS; i++)
    assert_int_equal(run_op(b->kind, st, i), 0);
  dn_store_stats after = stats(st);
  assert_int_equal(after.errors, before.errors);
  /* memcached: the plain and the pipelining handle both reconnected. */
  assert_true(after.reconnects - before.reconnects >=
              (b->kind == DN_TEST_MEMCACHED ? 2u : 1u));
  dn_store_free(st);
  dn_test_server_stop(&srv);
}

/* The server restarts (empty) while the store is idle: the first
 * operation of every kind succeeds, with no retry window after it. */
static void test_restart_while_idle_costs_nothing(void **state) {
  backend *b = *state;
  dn_test_server srv;
  assert_int_equal(start_or_report(&srv, b->kind, NULL), 0);
  dn_store_shared_options o = fast_fail();
  o.retry_ms = 10000;
  dn_store *st;
  assert_int_equal(open_store(b->kind, &srv, &o, &st), 0);
  for (int i = 0; i < OP_KINDS; i++)
    assert_int_equal(run_op(b->kind, st, i), 0);
  for (int i = 0; i < OP_KINDS; i++) {
    assert_int_equal(dn_test_server_restart(&srv), 0);
    dn_store_stats before = stats(st);
    assert_int_equal(run_op(b->kind, st, i), 0);
    dn_store_stats after = stats(st);
    assert_int_equal(after.errors, before.errors);
    assert_true(after.reconnects > before.reconnects);
  }
  /* A fresh, empty server: a get is a miss, a set works. */
  assert_int_equal(dn_test_server_restart(&srv), 0);
  assert_value(st, S("before"), NULL);
  assert_int_equal(put(st, S("after"), "back", 0, DN_STORE_SET), 0);
  assert_value(st, S("after"), "back");
  dn_store_free(st);
  dn_test_server_stop(&srv);
}

/* ---- out of memory
 * ---------------------------------------------------------------------
 */
static int store_session(void *ud) {
  backend *b = ud;
  dn_store *st = NULL;
  int rc = b->kind == DN_TEST_MEMCACHED
               ? dn_store_memcached_new(b->srv->addr, NULL, &st, NULL)
               : dn_store_redis_new(b->srv->url, NULL, &st, NULL);
  if (rc)
    return rc;
  char big[3000];
  memset(big, 'b', sizeof big);
  dn_blob *v = NULL, *out[2] = {NULL, NULL};
  dn_slice keys[2] = {S("oom-1"), S("oom-2")};
  uint64_t seq;
  rc = dn_blob_new(big, sizeof big, &v);
  if (!rc)
    rc = dn__store_set(st, keys[0], v, 0, DN_STORE_SET);
  if (!rc)
    rc = dn__store_set_multi(st, keys, (dn_blob *const[]){v, v}, 2, 0);
  if (!rc)
    rc = dn__store_get_multi(st, keys, 2, out, &seq);
  if (!rc && (!out[0] || !out[1]))
    rc = DN_EINVAL;
  if (!rc)
    rc = dn__store_del(st, keys[1]);
  dn_strings m = {0};
  if (!rc && b->kind == DN_TEST_REDIS)
    rc = dn__store_index_add(st, keys[0], S("member"), 0);
  if (!rc && b->kind == DN_TEST_REDIS)
    rc = dn__store_index_members(st, keys[0], &m);
  dn_strings_free(&m);
  dn_blob_unref(out[0]);
  dn_blob_unref(out[1]);
  dn_blob_unref(v);
  dn_store_free(st);
  return rc;
}

static void test_out_of_memory(void **state) {
  backend *b = *state;
  dn_test_every_alloc_failure(store_session, b);
}

/* ---- memcached only
 * --------------------------------------------------------------------
 */
static memcached_st *mc_client(const dn_test_server *a,
                               const dn_test_server *b) {
  memcached_st *m = memcached_create(NULL);
  assert_non_null(m);
  assert_int_equal(memcached_server_add(m, "127.0.0.1", (in_port_t)a->port),
                   MEMCACHED_SUCCESS);
  if (b) {
    assert_int_equal(memcached_server_add(m, "127.0.0.1", (in_port_t)b->port),
                     MEMCACHED_SUCCESS);
    assert_int_equal(
        memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
        MEMCACHED_SUCCESS);
  }
  return m;
}

static int mc_has(memcached_st *m, const char *k, size_t kl) {
  memcached_return_t r;
  size_t vl;
  uint32_t flags;
  char *v = memcached_get(m, k, kl, &vl, &flags, &r);
  free(v);
  return v != NULL;
}

/* Keys land where any ketama client (libmemcached's ketama, MD5, weighted
 * like libketama) looks for them, and both servers get some. */
static void test_ketama_placement(void **state) {
  (void)state;
  flush_server(&g_mc);
  flush_server(&g_mc2);
  char addrs[80];
  snprintf(addrs, sizeof addrs, "%s, %s", g_mc.addr, g_mc2.addr);
  dn_store *st = NULL;
  dn_error err;
  assert_int_equal(dn_store_memcached_new(addrs, NULL, &st, &err), 0);
  memcached_st *ref = mc_client(&g_mc, &g_mc2);
  memcached_st *one = mc_client(&g_mc, NULL), *two = mc_client(&g_mc2, NULL);
  int on_one = 0, on_two = 0;
  for (int i = 0; i < 200; i++) {
    char name[32], k[DN__SKEY_MAX + 1];
    size_t kl;
    snprintf(name, sizeof name, "ketama-%d", i);
    assert_int_equal(put(st, S(name), name, 0, DN_STORE_SET), 0);
    assert_int_equal(dn__skey(k, &kl, "donut", 'v', S(name), 0), 0);
    const memcached_instance_st *where =
        memcached_server_by_key(ref, k, kl, &(memcached_return_t){0});
    int expect_one = memcached_server_port(where) == (in_port_t)g_mc.port;
    assert_int_equal(mc_has(one, k, kl), expect_one);
    assert_int_equal(mc_has(two, k, kl), !expect_one);
    on_one += expect_one;
    on_two += !expect_one;
  }
  assert_true(on_one > 20 && on_two > 20);
  /* A get_multi across both servers is still one call and sees all. */
  dn_slice keys[2] = {S("ketama-0"), S("ketama-1")};
  dn_blob *out[2];
  assert_int_equal(dn__store_get_multi(st, keys, 2, out, NULL), 0);
  assert_non_null(out[0]);
  assert_non_null(out[1]);
  dn_blob_unref(out[0]);
  dn_blob_unref(out[1]);
  memcached_free(ref);
  memcached_free(one);
  memcached_free(two);
  dn_store_free(st);
}

/* With one of two servers down, the other one's keys are still served. */
static void test_one_server_down(void **state) {
  (void)state;
  dn_test_server a, b;
  assert_int_equal(start_or_report(&a, DN_TEST_MEMCACHED, NULL), 0);
  assert_int_equal(start_or_report(&b, DN_TEST_MEMCACHED, NULL), 0);
  char addrs[80];
  snprintf(addrs, sizeof addrs, "%s,%s", a.addr, b.addr);
  dn_store_shared_options o = fast_fail();
  dn_store *st = NULL;
  assert_int_equal(dn_store_memcached_new(addrs, &o, &st, NULL), 0);
  enum { N = 40 };
  char names[N][16];
  dn_slice keys[N];
  dn_blob *out[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "half-%d", i);
    keys[i] = S(names[i]);
    assert_int_equal(put(st, keys[i], names[i], 0, DN_STORE_SET), 0);
  }
  dn_test_server_kill(&b);
  dn_store_stats before = stats(st);
  uint64_t seq;
  int rc = dn__store_get_multi(st, keys, N, out, &seq);
  size_t hits = 0;
  for (int i = 0; i < N; i++) {
    if (out[i])
      assert_memory_equal(dn_blob_data(out[i]), names[i], strlen(names[i]));
    hits += out[i] != NULL;
    dn_blob_unref(out[i]);
  }
  /* Either the sequence lived on the dead server (the whole read fails,
   * as it must: no sequence, no answer) or the live keys are served. */
  if (rc == 0)
    assert_true(hits > 0 && hits < N);
  else
    assert_int_equal(hits, 0);
  assert_true(stats(st).errors > before.errors);
  assert_int_equal(dn__store_get_multi(st, keys, N, out, NULL), 0);
  hits = 0;
  for (int i = 0; i < N; i++) {
    hits += out[i] != NULL;
    dn_blob_unref(out[i]);
  }
  assert_true(hits > 0 && hits < N);
  dn_store_free(st);
  dn_test_server_stop(&a);
  dn_test_server_stop(&b);
}

static void test_memcached_has_no_index(void **state) {
  backend *b = *state;
  dn_strings m = {0};
  assert_int_equal(dn__store_index_add(b->st, S("k"), S("m"), 0), DN_ENOTSUP);
  assert_int_equal(dn__store_index_members(b->st, S("k"), &m), DN_ENOTSUP);
}

/* ---- redis only
 * ---------------------------------------------------------------------------
 */
static int has_member(const dn_strings *m, const char *p, size_t len) {
  for (size_t i = 0; i < m->count; i++)
    if (m->lens[i] == len && memcmp(m->items[i], p, len) == 0)
      return 1;
  return 0;
}

static void test_redis_index(void **state) {
  backend *b = *state;
  dn_strings m = {0};
  assert_int_equal(dn__store_index_members(b->st, S("deps"), &m), 0);
  assert_int_equal(m.count, 0);
  dn_strings_free(&m);
  assert_int_equal(dn__store_index_add(b->st, S("deps"), S("page://a"), 0), 0);
  assert_int_equal(dn__store_index_add(b->st, S("deps"), S("page://b"), 60000),
                   0);
  assert_int_equal(dn__store_index_add(b->st, S("deps"), S("page://a"), 0), 0);
  dn_slice odd = {"x\0y", 3};
  assert_int_equal(dn__store_index_add(b->st, S("deps"), odd, 0), 0);
  assert_int_equal(dn__store_index_add(b->st, S("deps"), S("brief"), 300), 0);
  assert_int_equal(
      dn__store_index_add(b->st, S("deps"), S("page://a"), UINT64_MAX), 0);
  /* An index is not a value, and the key spaces do not meet. */
  assert_value(b->st, S("deps"), NULL);
  assert_int_equal(dn__store_index_members(b->st, S("deps"), &m), 0);
  assert_int_equal(m.count, 4);
  assert_true(has_member(&m, "page://a", 8) && has_member(&m, "x\0y", 3));
  dn_strings_free(&m);
  /* The key has a TTL, so it cannot outlive its members. */
  char k[DN__SKEY_MAX + 1], cmd[512], reply[64];
  size_t kl = skey(b, S("deps"), 'i', k);
  int n = snprintf(cmd, sizeof cmd, "*2\r\n$4\r\nPTTL\r\n$%zu\r\n%.*s\r\n", kl,
                   (int)kl, k);
  assert_true(dn_test_server_send(b->srv, cmd, (size_t)n, reply, sizeof reply) >
              0);
  long pttl = strtol(reply + 1, NULL, 10);
  assert_true(reply[0] == ':' && pttl > 60000);
  /* Each member expires on its own. */
  sleep_ms(600);
  assert_int_equal(dn__store_index_members(b->st, S("deps"), &m), 0);
  assert_int_equal(m.count, 3);
  assert_false(has_member(&m, "brief", 5));
  dn_strings_free(&m);
}

static void test_redis_big_index_is_scanned(void **state) {
  backend *b = *state;
  for (int i = 0; i < 1500; i++) {
    char member[32];
    snprintf(member, sizeof member, "page://self/item/%d", i);
    assert_int_equal(dn__store_index_add(b->st, S("many"), S(member), 0), 0);
  }
  dn_store_stats before = stats(b->st);
  dn_strings m = {0};
  assert_int_equal(dn__store_index_members(b->st, S("many"), &m), 0);
  assert_int_equal(m.count, 1500);
  for (size_t i = 1; i < m.count; i++) /* sorted, no duplicates */
    assert_true(strcmp(m.items[i - 1], m.items[i]) < 0);
  dn_strings_free(&m);
  assert_true(stats(b->st).round_trips - before.round_trips >= 2);
}

static void test_redis_password_and_db(void **state) {
  (void)state;
  const char *extra[] = {"--requirepass", "s3cr@t", NULL};
  dn_test_server srv;
  assert_int_equal(start_or_report(&srv, DN_TEST_REDIS, extra), 0);
  char url[128];
  dn_store *db3, *db0, *wrong;
  snprintf(url, sizeof url, "redis://:s3cr%%40t@127.0.0.1:%d/3", srv.port);
  assert_int_equal(dn_store_redis_new(url, NULL, &db3, NULL), 0);
  snprintf(url, sizeof url, "redis://default:s3cr%%40t@127.0.0.1:%d", srv.port);
  assert_int_equal(dn_store_redis_new(url, NULL, &db0, NULL), 0);
  snprintf(url, sizeof url, "redis://:nope@127.0.0.1:%d", srv.port);
  assert_int_equal(dn_store_redis_new(url, NULL, &wrong, NULL), 0);
  assert_int_equal(put(db3, S("k"), "in db 3", 0, DN_STORE_SET), 0);
  assert_value(db3, S("k"), "in db 3");
  assert_value(db0, S("k"), NULL);
  assert_int_equal(put(wrong, S("k"), "v", 0, DN_STORE_SET), DN_ESTORE);
  dn_blob *out = NULL;
  dn_slice k = S("k");
  assert_int_equal(dn__store_get_multi(wrong, &k, 1, &out, NULL), DN_ESTORE);
  assert_true(stats(wrong).errors >= 2);
  dn_store_free(db3);
  dn_store_free(db0);
  dn_store_free(wrong);
  dn_test_server_stop(&srv);
}

/* ---- main
 * -------------------------------------------------------------------------------------
 */
#define BOTH(fn)                                                               \
  cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &b_mc),        \
      cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &b_rd)
#define MC(fn)                                                                 \
  cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &b_mc)
#define RD(fn)                                                                 \
  cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &b_rd)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_set_get_overwrite_del),
      BOTH(test_add_only_when_absent),
      BOTH(test_ttl_expires),
      BOTH(test_get_multi_is_one_round_trip),
      BOTH(test_sequence),
      BOTH(test_odd_keys_round_trip),
      BOTH(test_collision_is_a_miss),
      BOTH(test_corrupt_values_are_misses),
      BOTH(test_too_big),
      BOTH(test_server_item_limit),
      BOTH(test_compression_on_the_wire),
      BOTH(test_set_multi_pipelined),
      BOTH(test_large_batches),
      BOTH(test_two_stores_share_state),
      BOTH(test_many_threads_share_a_pool),
      BOTH(test_server_stop_and_restart),
      BOTH(test_server_hangs),
      BOTH(test_idle_connections_closed_by_the_server),
      BOTH(test_restart_while_idle_costs_nothing),
      BOTH(test_out_of_memory),
      MC(test_ketama_placement),
      MC(test_one_server_down),
      MC(test_memcached_has_no_index),
      RD(test_redis_index),
      RD(test_redis_big_index_is_scanned),
      RD(test_redis_password_and_db),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
