/* test_store_memory.c - the in-process memory store.
 *
 * Semantics of get/set/del/add, expiry on an injected clock, LRU order,
 * byte accounting against the budget, oversized values, the invalidation
 * sequence, index sets, reference counting of values, out-of-memory paths,
 * and multi-threaded races (ADD winners, mixed-operation stress).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "store.h"
#include "test_support.h"

/* ---- helpers --------------------------------------------------------------
 */

static _Atomic uint64_t fake_now;

static uint64_t fake_clock(void *ud) {
  (void)ud;
  return atomic_load(&fake_now);
}

static dn_store *new_store(size_t max_bytes, unsigned shards, bool clock) {
  dn_store_memory_options o;
  dn_store_memory_options_init(&o);
  o.max_bytes = max_bytes;
  o.shards = shards;
  if (clock) {
    o.now_ms = fake_clock;
    atomic_store(&fake_now, 1000);
  }
  dn_store *s = NULL;
  assert_int_equal(dn_store_memory_new(&o, &s), 0);
  assert_non_null(s);
  return s;
}

static dn_slice sl(const char *s) { return dn_slice_from_cstr(s); }

static int put(dn_store *s, const char *k, const char *v, uint64_t ttl,
               int mode) {
  dn_blob *b;
  assert_int_equal(dn_blob_new(v, strlen(v), &b), 0);
  int rc = dn__store_set(s, sl(k), b, ttl, mode);
  dn_blob_unref(b);
  return rc;
}

/* The value under k as a malloc'ed string, or NULL on a miss. */
static char *get(dn_store *s, const char *k) {
  dn_slice key = sl(k);
  dn_blob *b = NULL;
  assert_int_equal(dn__store_get_multi(s, &key, 1, &b, NULL), 0);
  if (!b)
    return NULL;
  char *r = strndup(dn_blob_data(b), dn_blob_len(b));
  dn_blob_unref(b);
  return r;
}

static void assert_value(dn_store *s, const char *k, const char *want) {
  char *got = get(s, k);
  if (!want) {
    assert_null(got);
    return;
  }
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static dn_store_stats stats(dn_store *s) {
  dn_store_stats st;
  assert_int_equal(dn_store_stats_get(s, &st), 0);
  return st;
}

static bool has_member(const dn_strings *s, const char *m) {
  for (size_t i = 0; i < s->count; i++)
    if (s->lens[i] == strlen(m) && strcmp(s->items[i], m) == 0)
      return true;
  return false;
}

static uint64_t rng_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* ---- basic semantics ------------------------------------------------------
 */

static void test_set_get_del(void **state) {
  (void)state;
  dn_store *s = new_store(0, 0, false);
  assert_string_equal(dn_store_name(s), "memory");
  assert_value(s, "a", NULL);
  assert_int_equal(put(s, "a", "one", 0, DN_STORE_SET), 0);
  assert_value(s, "a", "one");
  assert_int_equal(put(s, "a", "two", 0, DN_STORE_SET), 0);
  assert_value(s, "a", "two");
  assert_int_equal(put(s, "", "empty key", 0, DN_STORE_SET), 0);
  assert_int_equal(put(s, "e", "", 0, DN_STORE_SET), 0);
  assert_value(s, "", "empty key");
  assert_value(s, "e", "");
  dn_store_stats st = stats(s);
  assert_int_equal(st.items, 3);
  assert_int_equal(st.hits, 4);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.limit_bytes, DN_STORE_MEMORY_DEFAULT_BYTES);
  assert_int_equal(dn__store_del(s, sl("a")), 0);
  assert_int_equal(dn__store_del(s, sl("a")), 0); /* missing: not an error */
  assert_value(s, "a", NULL);
  assert_int_equal(dn__store_del(s, sl("")), 0);
  assert_int_equal(dn__store_del(s, sl("e")), 0);
  st = stats(s);
  assert_int_equal(st.items, 0);
  assert_int_equal(st.bytes, 0);
  dn_store_free(s);
}

static void test_get_multi_and_set_multi(void **state) {
  (void)state;
  dn_store *s = new_store(0, 4, false);
  dn_slice keys[64];
  dn_blob *vals[64];
  char names[64][16];
  for (int i = 0; i < 64; i++) {
    snprintf(names[i], sizeof names[i], "k%d", i);
    keys[i] = sl(names[i]);
    assert_int_equal(dn_blob_new(names[i], strlen(names[i]), &vals[i]), 0);
  }
  assert_int_equal(dn__store_set_multi(s, keys, vals, 32, 0), 0);
  dn_blob *out[64];
  uint64_t seq = 0, seq2 = 1;
  assert_int_equal(dn__store_get_multi(s, keys, 64, out, &seq), 0);
  assert_int_equal(dn__store_seq_get(s, &seq2), 0);
  assert_int_equal(seq, seq2);
  for (int i = 0; i < 64; i++) {
    if (i < 32) {
      assert_ptr_equal(out[i], vals[i]); /* a hit is a reference */
      dn_blob_unref(out[i]);
    } else {
      assert_null(out[i]);
    }
    dn_blob_unref(vals[i]);
  }
  dn_slice bad[2] = {sl("k1"), {NULL, 3}};
  out[0] = vals[0]; /* garbage that must be cleared */
  assert_int_equal(dn__store_get_multi(s, bad, 2, out, NULL), DN_EINVAL);
  assert_null(out[0]);
  assert_int_equal(dn__store_get_multi(s, NULL, 0, NULL, &seq), 0);
  dn_store_free(s);
}

static void test_add_semantics(void **state) {
  (void)state;
  dn_store *s = new_store(0, 0, true);
  assert_int_equal(put(s, "lease", "a", 0, DN_STORE_ADD), 0);
  assert_int_equal(put(s, "lease", "b", 0, DN_STORE_ADD), DN_EEXIST);
  assert_value(s, "lease", "a");
  assert_int_equal(put(s, "t", "x", 50, DN_STORE_ADD), 0);
  assert_int_equal(put(s, "t", "y", 50, DN_STORE_ADD), DN_EEXIST);
  atomic_fetch_add(&fake_now, 50); /* expired counts as absent */
  assert_int_equal(put(s, "t", "z", 50, DN_STORE_ADD), 0);
  assert_value(s, "t", "z");
  assert_int_equal(put(s, "t", "w", 0, 7), DN_EINVAL);
  assert_int_equal(stats(s).items, 2);
  dn_store_free(s);
}

static void test_ttl_expiry(void **state) {
  (void)state;
  dn_store *s = new_store(0, 0, true);
  assert_int_equal(put(s, "short", "1", 100, DN_STORE_SET), 0);
  assert_int_equal(put(s, "forever", "2", 0, DN_STORE_SET), 0);
  assert_int_equal(put(s, "huge", "3", UINT64_MAX, DN_STORE_SET), 0);
  atomic_fetch_add(&fake_now, 99);
  assert_value(s, "short", "1");
  atomic_fetch_add(&fake_now, 1);
  assert_value(s, "short", NULL);
  assert_int_equal(stats(s).items, 2); /* reclaimed by the lookup */
  atomic_fetch_add(&fake_now, 1000000000);
  assert_value(s, "forever", "2");
  assert_value(s, "huge", "3");
  /* Overwriting resets the ttl. */
  assert_int_equal(put(s, "r", "a", 10, DN_STORE_SET), 0);
  assert_int_equal(put(s, "r", "b", 0, DN_STORE_SET), 0);
  atomic_fetch_add(&fake_now, 20);
  assert_value(s, "r", "b");
  dn_store_free(s);
}

/* ---- budget and eviction --------------------------------------------------
 */

static void test_lru_order(void **state) {
  (void)state;
  char v[1000];
  memset(v, 'v', sizeof v - 1);
  v[sizeof v - 1] = '\0';
  dn_store *s = new_store(64 * 1024, 1, false);
  assert_int_equal(put(s, "k000", v, 0, DN_STORE_SET), 0);
  uint64_t charge = stats(s).bytes;
  assert_true(charge > 1000 + 4);
  int fit = (int)((64 * 1024) / charge);
  char k[32];
  for (int i = 1; i < fit; i++) {
    snprintf(k, sizeof k, "k%03d", i);
    assert_int_equal(put(s, k, v, 0, DN_STORE_SET), 0);
  }
  assert_int_equal(stats(s).evictions, 0);
  assert_int_equal(stats(s).items, fit);
  free(get(s, "k000")); /* k000 becomes the newest; k001 is now oldest */
  assert_int_equal(put(s, "new1", v, 0, DN_STORE_SET), 0);
  assert_int_equal(stats(s).evictions, 1);
  assert_value(s, "k001", NULL);
  assert_value(s, "k000", v);
  assert_int_equal(put(s, "new2", v, 0, DN_STORE_SET), 0);
  assert_value(s, "k002", NULL);
  assert_value(s, "k000", v);
  assert_value(s, "k003", v);
  assert_true(stats(s).bytes <= 64 * 1024);
  dn_store_free(s);
}

static void random_workload(unsigned shards, uint64_t seed) {
  enum { KEYS = 300, OPS = 20000, BUDGET = 96 * 1024 };
  const size_t budget = BUDGET;
  dn_store *s = new_store(budget, shards, true);
  static char buf[BUDGET / 8];
  memset(buf, 'x', sizeof buf);
  uint64_t r = seed;
  char k[32], m[32];
  for (int i = 0; i < OPS; i++) {
    int key = (int)(rng_next(&r) % KEYS), op = (int)(rng_next(&r) % 10);
    snprintf(k, sizeof k, "key%d", key);
    if (op < 4) {
      size_t len = (size_t)(rng_next(&r) % (budget / 8));
      dn_blob *b;
      assert_int_equal(dn_blob_new(buf, len, &b), 0);
      int rc = dn__store_set(s, sl(k), b, rng_next(&r) % 3 * 50, DN_STORE_SET);
      assert_true(rc == 0 || rc == DN_ETOOBIG);
      dn_blob_unref(b);
    } else if (op < 7) {
      free(get(s, k));
    } else if (op < 8) {
      assert_int_equal(dn__store_del(s, sl(k)), 0);
    } else {
      snprintf(m, sizeof m, "m%d", (int)(rng_next(&r) % 50));
      assert_int_equal(dn__store_index_add(s, sl(k), sl(m), 100), 0);
    }
    atomic_fetch_add(&fake_now, rng_next(&r) % 3);
    assert_true(stats(s).bytes <= budget);
  }
  /* Delete every value and let every set expire (lookups reclaim them). */
  atomic_fetch_add(&fake_now, 1000);
  for (int key = 0; key < KEYS; key++) {
    snprintf(k, sizeof k, "key%d", key);
    assert_int_equal(dn__store_del(s, sl(k)), 0);
    dn_strings none;
    assert_int_equal(dn__store_index_members(s, sl(k), &none), 0);
    assert_int_equal(none.count, 0);
  }
  dn_store_stats st = stats(s);
  assert_int_equal(st.items, 0);
  assert_int_equal(st.bytes, 0); /* every charge was given back exactly */
  assert_true(st.evictions > 0);
  dn_store_free(s);
}

/* Against a model: with no eviction and no expiry, every read must return
 * exactly what the model holds, through table growth and deletions. */
static void test_matches_model(void **state) {
  (void)state;
  enum { KEYS = 3000, OPS = 60000 };
  static int model[KEYS]; /* 0 = absent, else the version stored */
  memset(model, 0, sizeof model);
  dn_store *s = new_store(256u << 20, 2, false);
  uint64_t r = 42;
  char k[32], v[32];
  for (int i = 1; i <= OPS; i++) {
    int key = (int)(rng_next(&r) % KEYS), op = (int)(rng_next(&r) % 4);
    snprintf(k, sizeof k, "model:%d", key);
    if (op == 0) {
      snprintf(v, sizeof v, "%d", i);
      assert_int_equal(put(s, k, v, 0, DN_STORE_SET), 0);
      model[key] = i;
    } else if (op == 1) {
      snprintf(v, sizeof v, "%d", i);
      int rc = put(s, k, v, 0, DN_STORE_ADD);
      assert_int_equal(rc, model[key] ? DN_EEXIST : 0);
      if (!rc)
        model[key] = i;
    } else if (op == 2) {
      assert_int_equal(dn__store_del(s, sl(k)), 0);
      model[key] = 0;
    }
    snprintf(v, sizeof v, "%d", model[key]);
    assert_value(s, k, model[key] ? v : NULL);
  }
  uint64_t live = 0;
  for (int key = 0; key < KEYS; key++)
    live += model[key] != 0;
  assert_int_equal(stats(s).items, live);
  assert_int_equal(stats(s).evictions, 0);
  dn_store_free(s);
}

static void test_budget_random_workload(void **state) {
  (void)state;
  random_workload(1, 88172645463325252ull);
  random_workload(4, 1234567);
  random_workload(16, 987654321);
}

static void test_too_big(void **state) {
  (void)state;
  const size_t budget = 80 * 1024;
  dn_store *s = new_store(budget, 2, false);
  assert_int_equal(put(s, "k", "small", 0, DN_STORE_SET), 0);
  uint64_t before = stats(s).bytes;
  char *big = malloc(budget / 8 + 1);
  memset(big, 'b', budget / 8);
  big[budget / 8] = '\0';
  assert_int_equal(put(s, "k", big, 0, DN_STORE_SET), DN_ETOOBIG);
  assert_int_equal(put(s, "other", big, 0, DN_STORE_ADD), DN_ETOOBIG);
  big[budget / 8 - 200] = '\0'; /* just under the cap with the overhead */
  assert_int_equal(put(s, "fits", big, 0, DN_STORE_SET), 0);
  assert_int_equal(dn__store_del(s, sl("fits")), 0);
  dn_store_stats st = stats(s);
  assert_int_equal(st.items, 1);
  assert_int_equal(st.bytes, before);
  assert_value(s, "k", "small"); /* the failed set changed nothing */
  /* A key alone over the cap. */
  big[budget / 8 - 200] = 'b';
  dn_blob *b;
  assert_int_equal(dn_blob_new("v", 1, &b), 0);
  assert_int_equal(dn__store_set(s, sl(big), b, 0, DN_STORE_SET), DN_ETOOBIG);
  dn_blob_unref(b);
  /* An index set may not grow past the cap either. */
  char m[512];
  memset(m, 'm', sizeof m - 1);
  m[sizeof m - 1] = '\0';
  int rc = 0, added = 0;
  for (; added < 1000 && rc == 0; added++) {
    char digits[16];
    snprintf(digits, sizeof digits, "%06d", added);
    memcpy(m, digits, 6); /* distinct members of 511 bytes */
    rc = dn__store_index_add(s, sl("idx"), sl(m), 0);
  }
  assert_int_equal(rc, DN_ETOOBIG);
  dn_strings got;
  assert_int_equal(dn__store_index_members(s, sl("idx"), &got), 0);
  assert_int_equal(got.count, added - 1);
  dn_strings_free(&got);
  assert_true(stats(s).bytes <= budget);
  free(big);
  dn_store_free(s);
}

static void test_blob_refs_survive_del_and_eviction(void **state) {
  (void)state;
  dn_store *s = new_store(16 * 1024, 1, false);
  dn_blob *mine;
  assert_int_equal(dn_blob_new("payload", 7, &mine), 0);
  assert_int_equal(dn__store_set(s, sl("a"), mine, 0, DN_STORE_SET), 0);
  assert_int_equal(atomic_load(&mine->refs), 2);
  dn_slice key = sl("a");
  dn_blob *got = NULL;
  assert_int_equal(dn__store_get_multi(s, &key, 1, &got, NULL), 0);
  assert_ptr_equal(got, mine);
  assert_int_equal(atomic_load(&mine->refs), 3);
  dn_blob_unref(mine); /* now only the store and `got` hold it */
  assert_int_equal(dn__store_del(s, sl("a")), 0);
  assert_int_equal(atomic_load(&got->refs), 1);
  assert_memory_equal(dn_blob_data(got), "payload", 7);
  dn_blob_unref(got);

  /* Eviction: write far more than the budget, so "b" goes (even with the
   * second chance its read earned it), then read the old reference. */
  assert_int_equal(put(s, "b", "bbbbbbbb", 0, DN_STORE_SET), 0);
  key = sl("b");
  assert_int_equal(dn__store_get_multi(s, &key, 1, &got, NULL), 0);
  assert_non_null(got);
  char k[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "fill%d", i);
    assert_int_equal(
        put(s, k, "0123456789012345678901234567890123456789", 0, DN_STORE_SET),
        0);
  }
  assert_value(s, "b", NULL);
  assert_int_equal(atomic_load(&got->refs), 1);
  assert_memory_equal(dn_blob_data(got), "bbbbbbbb", 8);
  dn_blob_unref(got);
  dn_store_free(s);
}

/* ---- sequence and index ---------------------------------------------------
 */

static void test_seq(void **state) {
  (void)state;
  dn_store *a = new_store(0, 0, false), *b = new_store(0, 0, false);
  uint64_t sa, sb, v;
  assert_int_equal(dn__store_seq_get(a, &sa), 0);
  assert_int_equal(dn__store_seq_get(b, &sb), 0);
  assert_true(sa < (1ull << 62));
  assert_true(sb < (1ull << 62));
  assert_true(sa != sb); /* random starts: equal with probability 2^-62 */
  for (uint64_t i = 1; i <= 5; i++) {
    assert_int_equal(dn__store_seq_bump(a, &v), 0);
    assert_int_equal(v, sa + i);
  }
  assert_int_equal(dn__store_seq_get(a, &v), 0);
  assert_int_equal(v, sa + 5);
  dn_slice key = sl("x");
  dn_blob *out;
  assert_int_equal(dn__store_get_multi(a, &key, 1, &out, &v), 0);
  assert_int_equal(v, sa + 5);
  dn_store_free(a);
  dn_store_free(b);
}

static void test_index(void **state) {
  (void)state;
  dn_store *s = new_store(0, 0, true);
  dn_strings got;
  assert_int_equal(dn__store_index_members(s, sl("d"), &got), 0);
  assert_int_equal(got.count, 0);
  const char *members[] = {"page://a", "page://b", "page://a", "page://c",
                           "page://b", "",         "page://d", "page://e"};
  for (size_t i = 0; i < sizeof members / sizeof *members; i++)
    assert_int_equal(dn__store_index_add(s, sl("d"), sl(members[i]), 100), 0);
  assert_int_equal(dn__store_index_members(s, sl("d"), &got), 0);
  const char *want[] = {"page://a", "page://b", "page://c",
                        "",         "page://d", "page://e"};
  assert_int_equal(got.count, 6); /* in no particular order */
  for (size_t i = 0; i < 6; i++)
    assert_true(has_member(&got, want[i]));
  dn_strings_free(&got);
  /* A member with a NUL inside is kept whole. */
  dn_slice nul = {"a\0b", 3};
  assert_int_equal(dn__store_index_add(s, sl("n"), nul, 0), 0);
  assert_int_equal(dn__store_index_members(s, sl("n"), &got), 0);
  assert_int_equal(got.lens[0], 3);
  assert_memory_equal(got.items[0], "a\0b", 4);
  dn_strings_free(&got);
  /* Values and sets have separate key spaces, and del removes values. */
  assert_int_equal(put(s, "v", "value", 0, DN_STORE_SET), 0);
  assert_int_equal(dn__store_index_add(s, sl("v"), sl("m"), 0), 0);
  assert_value(s, "v", "value");
  assert_value(s, "d", NULL);
  assert_int_equal(put(s, "d", "x", 0, DN_STORE_ADD), 0);
  assert_int_equal(dn__store_del(s, sl("d")), 0);
  assert_int_equal(dn__store_del(s, sl("v")), 0);
  assert_int_equal(dn__store_index_members(s, sl("v"), &got), 0);
  assert_int_equal(got.count, 1);
  assert_string_equal(got.items[0], "m");
  dn_strings_free(&got);
  /* Adding refreshes the ttl, even for a member already present. */
  atomic_fetch_add(&fake_now, 90);
  assert_int_equal(dn__store_index_add(s, sl("d"), sl("page://a"), 100), 0);
  atomic_fetch_add(&fake_now, 60);
  assert_int_equal(dn__store_index_members(s, sl("d"), &got), 0);
  assert_int_equal(got.count, 6);
  dn_strings_free(&got);
  atomic_fetch_add(&fake_now, 40);
  assert_int_equal(dn__store_index_members(s, sl("d"), &got), 0);
  assert_int_equal(got.count, 0);
  assert_int_equal(stats(s).items, 2); /* "n" and "v" never expire */
  dn_store_free(s);
}

static void test_index_many_members(void **state) {
  (void)state;
  dn_store *s = new_store(0, 0, false);
  char m[32];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 5000; i++) {
      snprintf(m, sizeof m, "app://self/item?id=%d", i);
      assert_int_equal(dn__store_index_add(s, sl("big"), sl(m), 0), 0);
    }
  dn_strings got;
  assert_int_equal(dn__store_index_members(s, sl("big"), &got), 0);
  assert_int_equal(got.count, 5000);
  char *seen = calloc(5000, 1);
  for (size_t i = 0; i < got.count; i++) {
    assert_int_equal(strncmp(got.items[i], "app://self/item?id=", 19), 0);
    int id = (int)strtol(got.items[i] + 19, NULL, 10);
    assert_true(id >= 0 && id < 5000 && !seen[id]);
    seen[id] = 1;
  }
  free(seen);
  dn_strings_free(&got);
  assert_int_equal(stats(s).items, 1);
  dn_store_free(s);
}

static void test_options(void **state) {
  (void)state;
  dn_store_memory_options o;
  dn_store_memory_options_init(&o);
  dn_store *s = NULL;
  o.shards = 5000;
  assert_int_equal(dn_store_memory_new(&o, &s), DN_EINVAL);
  assert_null(s);
  assert_int_equal(dn_store_memory_new(NULL, NULL), DN_EINVAL);
  o.shards = 3; /* rounded up to 4 */
  o.max_bytes = 12345;
  assert_int_equal(dn_store_memory_new(&o, &s), 0);
  assert_int_equal(stats(s).limit_bytes, 12345);
  dn_store_free(s);
  assert_int_equal(dn_store_memory_new(NULL, &s), 0);
  assert_int_equal(put(s, "k", "v", 0, DN_STORE_SET), 0);
  assert_int_equal(put(s, "t", "v", 3600000, DN_STORE_SET), 0); /* real clock */
  assert_value(s, "t", "v");
  dn_store_free(s);
  dn_store_free(NULL);
}

/* ---- out of memory --------------------------------------------------------
 */

/* Builds a store, grows a shard's table and an index set, and reads back.
 * Each failing call must report DN_ENOMEM and leave the store as it was. */
static int oom_run(void *ud) {
  (void)ud;
  dn_store_memory_options o;
  dn_store_memory_options_init(&o);
  o.max_bytes = 1 << 20;
  o.shards = 1;
  dn_store *s;
  int rc = dn_store_memory_new(&o, &s);
  if (rc)
    return rc;
  char k[32];
  for (int i = 0; i < 40 && !rc; i++) {
    snprintf(k, sizeof k, "key%d", i);
    dn_blob *b;
    if ((rc = dn_blob_new(k, strlen(k), &b)) != 0)
      break;
    uint64_t items = stats(s).items, bytes = stats(s).bytes;
    rc = dn__store_set(s, sl(k), b, 0, i % 2 ? DN_STORE_ADD : DN_STORE_SET);
    dn_blob_unref(b);
    if (rc) {
      assert_int_equal(stats(s).items, items);
      assert_int_equal(stats(s).bytes, bytes);
    }
  }
  for (int i = 0; i < 20 && !rc; i++) {
    snprintf(k, sizeof k, "m%d", i);
    uint64_t bytes = stats(s).bytes;
    rc = dn__store_index_add(s, sl(i % 3 ? "idx" : "idx2"), sl(k), 0);
    if (rc)
      assert_int_equal(stats(s).bytes, bytes);
  }
  dn_strings got = {0};
  if (!rc)
    rc = dn__store_index_members(s, sl("idx"), &got);
  if (!rc)
    assert_int_equal(got.count, 13);
  dn_strings_free(&got);
  dn_store_free(s);
  return rc;
}

static void test_oom(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_run, NULL);
}

/* ---- threads --------------------------------------------------------------
 */

enum { RACERS = 8, RACE_ROUNDS = 200 };

typedef struct race {
  dn_store *s;
  pthread_barrier_t *start;
  int id;
  int wins;
  int errors; /* cmocka's asserts are not for threads: count instead */
} race;

static void *add_racer(void *arg) {
  race *r = arg;
  char k[32], v[16];
  snprintf(v, sizeof v, "%d", r->id);
  for (int round = 0; round < RACE_ROUNDS; round++) {
    snprintf(k, sizeof k, "lease%d", round);
    pthread_barrier_wait(r->start);
    int rc = put(r->s, k, v, round % 2 ? 1000 : 0, DN_STORE_ADD);
    if (rc == 0)
      r->wins++;
    else if (rc != DN_EEXIST)
      r->errors++;
  }
  return NULL;
}

static void test_add_race(void **state) {
  (void)state;
  dn_store *s = new_store(0, 4, false);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, RACERS);
  pthread_t t[RACERS];
  race r[RACERS];
  for (int i = 0; i < RACERS; i++) {
    r[i] = (race){.s = s, .start = &start, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, add_racer, &r[i]), 0);
  }
  int wins = 0, errors = 0;
  for (int i = 0; i < RACERS; i++) /* all joined before asserting */
    pthread_join(t[i], NULL);
  for (int i = 0; i < RACERS; i++) {
    errors += r[i].errors;
    wins += r[i].wins;
  }
  assert_int_equal(errors, 0);
  pthread_barrier_destroy(&start);
  assert_int_equal(wins, RACE_ROUNDS); /* exactly one winner per key */
  assert_int_equal(stats(s).items, RACE_ROUNDS);
  dn_store_free(s);
}

/* The writer bumps the sequence, then stores the value it got; readers
 * read the key and the sequence in one get_multi. The sequence is read
 * after the lookup, so it can never be older than a value seen. */
typedef struct seq_check {
  dn_store *s;
  _Atomic int done;
  long stale, seen;
} seq_check;

static void *seq_writer(void *arg) {
  seq_check *c = arg;
  char v[32];
  for (int i = 0; i < 20000; i++) {
    uint64_t seq;
    dn__store_seq_bump(c->s, &seq);
    snprintf(v, sizeof v, "%llu", (unsigned long long)seq);
    put(c->s, "version", v, 0, DN_STORE_SET);
  }
  atomic_store(&c->done, 1);
  return NULL;
}

static void test_seq_not_older_than_values(void **state) {
  (void)state;
  seq_check c = {.s = new_store(0, 0, false)};
  pthread_t w;
  assert_int_equal(pthread_create(&w, NULL, seq_writer, &c), 0);
  dn_slice key = sl("version");
  while (!atomic_load(&c.done)) {
    dn_blob *b = NULL;
    uint64_t seq;
    c.stale += dn__store_get_multi(c.s, &key, 1, &b, &seq) != 0;
    if (!b)
      continue;
    unsigned long long v = strtoull(dn_blob_data(b), NULL, 10);
    dn_blob_unref(b);
    c.seen++;
    c.stale += seq < v;
  }
  pthread_join(w, NULL);
  assert_int_equal(c.stale, 0);
  dn_store_free(c.s);
}

enum { STRESS_THREADS = 4, STRESS_OPS = 100000, STRESS_KEYS = 2000 };

typedef struct stresser {
  dn_store *s;
  uint64_t seed;
  uint64_t gets, bumps;
  int bad; /* wrong values read, or unexpected return codes */
} stresser;

/* Every value stored under "s<n>" is "s<n>" followed by filler, so any
 * value read back can be checked against its key. */
static void stress_one(stresser *t, uint64_t *r) {
  char k[32], v[256];
  unsigned n = (unsigned)(rng_next(r) % STRESS_KEYS), op = rng_next(r) % 16;
  int kl = snprintf(k, sizeof k, "s%u", n);
  dn_slice key = {k, (size_t)kl};
  if (op < 8) {
    dn_blob *b = NULL;
    uint64_t seq;
    t->bad += dn__store_get_multi(t->s, &key, 1, &b, &seq) != 0;
    t->gets++;
    if (b && (dn_blob_len(b) < (size_t)kl ||
              memcmp(dn_blob_data(b), k, (size_t)kl) != 0))
      t->bad++;
    dn_blob_unref(b);
  } else if (op < 13) {
    size_t len = (size_t)kl + rng_next(r) % 200;
    memset(v, '.', len);
    memcpy(v, k, (size_t)kl);
    dn_blob *b;
    if (dn_blob_new(v, len, &b) != 0) {
      t->bad++;
      return;
    }
    int rc = dn__store_set(t->s, key, b, 0, op == 12 ? DN_STORE_ADD : 0);
    t->bad += rc != 0 && rc != DN_EEXIST;
    dn_blob_unref(b);
  } else if (op < 14) {
    t->bad += dn__store_del(t->s, key) != 0;
  } else if (op < 15) {
    char m[32];
    snprintf(m, sizeof m, "m%u", (unsigned)(rng_next(r) % 8));
    /* Same keys as the values: index sets have their own key space. */
    t->bad += dn__store_index_add(t->s, key, sl(m), 1000) != 0;
    dn_strings got;
    t->bad += dn__store_index_members(t->s, key, &got) != 0;
    /* Empty when another thread's write evicted it in between. */
    t->bad += got.count > 8 || (got.count && got.items[0][0] != 'm');
    dn_strings_free(&got);
  } else {
    uint64_t seq;
    t->bad += dn__store_seq_bump(t->s, &seq) != 0;
    t->bumps++;
  }
}

static void *stress_thread(void *arg) {
  stresser *t = arg;
  uint64_t r = t->seed;
  for (int i = 0; i < STRESS_OPS; i++)
    stress_one(t, &r);
  return NULL;
}

static void test_stress_threads(void **state) {
  (void)state;
  const size_t budget = 256 * 1024;
  dn_store *s = new_store(budget, 8, true);
  uint64_t seq0, seq1;
  assert_int_equal(dn__store_seq_get(s, &seq0), 0);
  pthread_t th[STRESS_THREADS];
  stresser t[STRESS_THREADS];
  for (int i = 0; i < STRESS_THREADS; i++) {
    t[i] =
        (stresser){.s = s, .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)};
    assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &t[i]), 0);
  }
  uint64_t gets = 0, bumps = 0;
  int bad = 0;
  for (int i = 0; i < STRESS_THREADS; i++) /* all joined before asserting */
    pthread_join(th[i], NULL);
  for (int i = 0; i < STRESS_THREADS; i++) {
    bad += t[i].bad;
    gets += t[i].gets;
    bumps += t[i].bumps;
  }
  assert_int_equal(bad, 0);
  dn_store_stats st = stats(s);
  assert_int_equal(st.hits + st.misses, gets);
  assert_true(st.hits > 0 && st.evictions > 0);
  assert_true(st.bytes <= budget);
  /* Bumps are never lost: each thread's bumps all landed. */
  assert_int_equal(dn__store_seq_get(s, &seq1), 0);
  assert_int_equal(seq1, seq0 + bumps);
  char k[32];
  atomic_fetch_add(&fake_now, 1000); /* every index set expires */
  for (unsigned n = 0; n < STRESS_KEYS; n++) {
    snprintf(k, sizeof k, "s%u", n);
    assert_int_equal(dn__store_del(s, sl(k)), 0);
    dn_strings none;
    assert_int_equal(dn__store_index_members(s, sl(k), &none), 0);
    assert_int_equal(none.count, 0);
  }
  st = stats(s);
  assert_int_equal(st.items, 0);
  assert_int_equal(st.bytes, 0);
  dn_store_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_set_get_del),
      cmocka_unit_test(test_get_multi_and_set_multi),
      cmocka_unit_test(test_add_semantics),
      cmocka_unit_test(test_ttl_expiry),
      cmocka_unit_test(test_lru_order),
      cmocka_unit_test(test_matches_model),
      cmocka_unit_test(test_budget_random_workload),
      cmocka_unit_test(test_too_big),
      cmocka_unit_test(test_blob_refs_survive_del_and_eviction),
      cmocka_unit_test(test_seq),
      cmocka_unit_test(test_index),
      cmocka_unit_test(test_index_many_members),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_oom),
      cmocka_unit_test(test_add_race),
      cmocka_unit_test(test_seq_not_older_than_values),
      cmocka_unit_test(test_stress_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
