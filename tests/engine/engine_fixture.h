/* engine_fixture.h - a small site of renderers for the engine tests.
 *
 * Each test gets a fresh site: an engine over a store (the memory store by
 * default; see dn_test_store_new), an injected clock, render counters per
 * renderer, and one piece of mutable data the leaves render. The store is
 * wrapped in a counting store so tests can check how many operations an
 * invalidation costs.
 */
#ifndef DN_ENGINE_FIXTURE_H
#define DN_ENGINE_FIXTURE_H

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "test_support.h"

enum {
  R_A,
  R_B,
  R_C,
  R_DIAMOND,
  R_E,
  R_F,
  R_G,
  R_TWICE,
  R_PARENT,
  R_HOME,
  R_NEWS,
  R_GREETING,
  R_SLOW,
  R_FLIGHT,
  R_CYCLE,
  R_DEEP,
  R_EXPIRING,
  R_BAD,
  R_FAILS,
  R_INTL,
  R_HELLO,
  R_WRAPPER,
  R_STORED,
  R_WIDE,
  R_ITEM,
  R_NEWTAG,
  R_STALE,
  R_ALTPAGE,
  R_COUNT
};

typedef struct site {
  dn_engine *e;
  dn_store *inner;          /* the real store */
  dn_store *counted;        /* the counting wrapper the engine uses */
  dn_store_ops counted_ops; /* counting_ops with the inner store's flags */
  int owns_inner;
  uint64_t now;
  pthread_mutex_t mu;
  char data[64];
  int renders[R_COUNT];
  /* the racing render */
  int slow_block;
  int c_block; /* C's next render waits on slow_go after posting started */
  sem_t slow_started, slow_go;
  /* single flight */
  int flight_waiters, flight_fail, flight_mismatch;
  char flight_body[64];
  uint64_t expires_at;
  int bad_checks_failed;
  int write_after_fail_rc;
  int heard;
  char heard_tag[DN_URI_TAG_MAX + 1];
  int counting;
  int store_ops;
  /* A get made from inside the store's tag write, between the sequence
   * bump and the new versions landing (a reader racing the purge). */
  const char *during_tag_write;
  /* When the engine first creates this tag's record (DN_STORE_ADD), the
   * data changes and the tag is invalidated first, as a concurrent purge
   * would. */
  const char *purge_at_tag_creation;
  int stale_fail; /* app://self/stale fails while set (its source is down) */
  /* The next tag write is applied, then reported as failed (a timeout
   * after the server applied it). */
  int fail_tag_write_after_apply;
} site;

/* ---- the counting store ---------------------------------------------------
 */
static void count_op(site *s) {
  if (s->counting)
    __atomic_add_fetch(&s->store_ops, 1, __ATOMIC_RELAXED);
}

static int c_get_multi(void *self, const dn_slice *k, size_t n, dn_blob **o,
                       uint64_t *seq) {
  site *s = self;
  count_op(s);
  return s->inner->ops->get_multi(s->inner->self, k, n, o, seq);
}
static void set_data(site *s, const char *d);

static int c_set(void *self, dn_slice k, dn_blob *v, uint64_t ttl, int mode) {
  site *s = self;
  count_op(s);
  const char *tag = s->purge_at_tag_creation;
  if (tag && mode == DN_STORE_ADD && k.len > 5 &&
      memcmp(k.ptr, "dn:t:", 5) == 0 && strlen(tag) == k.len - 5 &&
      memcmp(k.ptr + 5, tag, k.len - 5) == 0) {
    s->purge_at_tag_creation = NULL;
    set_data(s, "new");
    dn_slice t = dn_slice_from_cstr(tag);
    dn_engine_invalidate_tags(s->e, &t, 1, NULL);
  }
  return s->inner->ops->set(s->inner->self, k, v, ttl, mode);
}
static int c_set_multi(void *self, const dn_slice *k, dn_blob *const *v,
                       size_t n, uint64_t ttl) {
  site *s = self;
  count_op(s);
  const char *racer = s->during_tag_write;
  if (racer) {
    s->during_tag_write = NULL;
    dn_rep *r = NULL;
    if (dn_engine_get(s->e, racer, strlen(racer), NULL, 0, &r, NULL, NULL) == 0)
      dn_rep_unref(r);
  }
  if (s->fail_tag_write_after_apply) {
    s->fail_tag_write_after_apply = 0;
    dn__store_set_multi(s->inner, k, v, n, ttl);
    return DN_ETIMEDOUT;
  }
  return dn__store_set_multi(s->inner, k, v, n, ttl);
}
static int c_del(void *self, dn_slice k) {
  site *s = self;
  count_op(s);
  return s->inner->ops->del(s->inner->self, k);
}
static int c_seq_get(void *self, uint64_t *o) {
  site *s = self;
  count_op(s);
  return s->inner->ops->seq_get(s->inner->self, o);
}
static int c_seq_bump(void *self, uint64_t *o) {
  site *s = self;
  count_op(s);
  return s->inner->ops->seq_bump(s->inner->self, o);
}
static int c_index_add(void *self, dn_slice k, dn_slice m, uint64_t ttl) {
  site *s = self;
  return dn__store_index_add(s->inner, k, m, ttl);
}
static int c_index_members(void *self, dn_slice k, dn_strings *o) {
  site *s = self;
  return dn__store_index_members(s->inner, k, o);
}
static void c_destroy(void *self) { (void)self; }

static const dn_store_ops counting_ops = {.version = DN_STORE_OPS_VERSION,
                                          .name = "counting",
                                          .get_multi = c_get_multi,
                                          .set = c_set,
                                          .set_multi = c_set_multi,
                                          .del = c_del,
                                          .seq_get = c_seq_get,
                                          .seq_bump = c_seq_bump,
                                          .index_add = c_index_add,
                                          .index_members = c_index_members,
                                          .destroy = c_destroy};

/* ---- renderers ------------------------------------------------------------
 */
#define COUNT(r, idx)                                                          \
  site *s = ud;                                                                \
  __atomic_add_fetch(&s->renders[idx], 1, __ATOMIC_RELAXED)

static void data_copy(site *s, char *out, size_t n) {
  pthread_mutex_lock(&s->mu);
  snprintf(out, n, "%s", s->data);
  pthread_mutex_unlock(&s->mu);
}

static int r_a(dn_render *r, void *ud) {
  COUNT(r, R_A);
  dn_render_write_str(r, "A[");
  dn_render_embed(r, "app://self/b", DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, "]");
}
static int r_b(dn_render *r, void *ud) {
  COUNT(r, R_B);
  dn_render_write_str(r, "B[");
  dn_render_embed(r, "app://self/c", DN_EMBED_CACHEABLE);
  dn_render_add_tag(r, "tag-b");
  dn_render_set_ttl(r, 600);
  dn_render_set_s_maxage(r, 60);
  return dn_render_write_str(r, "]");
}
static int r_c(dn_render *r, void *ud) {
  COUNT(r, R_C);
  char d[64];
  data_copy(s, d, sizeof d);
  if (__atomic_exchange_n(&s->c_block, 0, __ATOMIC_ACQ_REL)) {
    sem_post(&s->slow_started);
    sem_wait(&s->slow_go);
  }
  dn_render_add_tag(r, "tag-c");
  dn_render_set_ttl(r, 300);
  return dn_render_write_str(r, d);
}
static int embed_between(dn_render *r, const char *pre, const char *uri,
                         const char *post) {
  dn_render_write_str(r, pre);
  dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, post);
}
static int r_diamond(dn_render *r, void *ud) {
  COUNT(r, R_DIAMOND);
  dn_render_write_str(r, "D[");
  dn_render_embed(r, "app://self/e", DN_EMBED_CACHEABLE);
  dn_render_embed(r, "app://self/f", DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, "]");
}
static int r_e(dn_render *r, void *ud) {
  COUNT(r, R_E);
  return embed_between(r, "E[", "app://self/g", "]");
}
static int r_f(dn_render *r, void *ud) {
  COUNT(r, R_F);
  return embed_between(r, "F[", "app://self/g", "]");
}
static int r_g(dn_render *r, void *ud) {
  COUNT(r, R_G);
  char d[64];
  data_copy(s, d, sizeof d);
  return dn_render_write_str(r, d);
}
static int r_twice(dn_render *r, void *ud) {
  COUNT(r, R_TWICE);
  dn_render_write_str(r, "<");
  dn_render_embed(r, "app://self/g", DN_EMBED_CACHEABLE);
  dn_render_write_str(r, "|");
  dn_render_embed(r, "app://self/g", DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, ">");
}
static int r_parent(dn_render *r, void *ud) {
  COUNT(r, R_PARENT);
  char pre[32];
  const char *n = dn_render_param(r, "n");
  snprintf(pre, sizeof pre, "P%s(", n ? n : "?");
  return embed_between(r, pre, "app://self/g", ")");
}
static int r_home(dn_render *r, void *ud) {
  COUNT(r, R_HOME);
  dn_render_write_str(r, "Home:");
  dn_render_embed(r, "app://self/greeting", DN_EMBED_UNCACHEABLE);
  dn_render_write_str(r, "|");
  return dn_render_embed(r, "app://self/news", DN_EMBED_CACHEABLE);
}
static int r_news(dn_render *r, void *ud) {
  COUNT(r, R_NEWS);
  dn_render_set_ttl(r, 3600);
  return embed_between(r, "news:", "app://self/g", "");
}
static int r_greeting(dn_render *r, void *ud) {
  COUNT(r, R_GREETING);
  dn_slice name;
  char out[96];
  if (dn_render_cookie(r, "name", &name) == 0)
    snprintf(out, sizeof out, "Welcome to %.*s", (int)name.len, name.ptr);
  else
    snprintf(out, sizeof out, "Welcome to guest");
  dn_render_add_tag(r, "user");
  dn_render_set_ttl(r, 5);
  return dn_render_write_str(r, out);
}
static int r_slow(dn_render *r, void *ud) {
  COUNT(r, R_SLOW);
  char d[64], out[80];
  data_copy(s, d, sizeof d);
  if (__atomic_exchange_n(&s->slow_block, 0, __ATOMIC_ACQ_REL)) {
    sem_post(&s->slow_started);
    sem_wait(&s->slow_go);
  }
  dn_render_add_tag(r, "slow-data");
  snprintf(out, sizeof out, "slow:%s", d);
  return dn_render_write_str(r, out);
}
static int r_flight(dn_render *r, void *ud) {
  COUNT(r, R_FLIGHT);
  /* Hold the render until every other thread is waiting for it. */
  for (int i = 0; i < 5000 && s->flight_waiters; i++) {
    dn_engine_stats st;
    dn_engine_stats_get(s->e, &st);
    if (st.coalesced_waits >= (uint64_t)s->flight_waiters)
      break;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (s->flight_fail)
    return dn_render_fail(r, DN_EIO, "backend unavailable");
  char d[64], out[80];
  data_copy(s, d, sizeof d);
  snprintf(out, sizeof out, "flight:%s", d);
  return dn_render_write_str(r, out);
}
static int r_cycle(dn_render *r, void *ud) {
  COUNT(r, R_CYCLE);
  const char *me = dn_render_uri(r);
  int a = strstr(me, "cycle-a") != NULL;
  return dn_render_embed(r, a ? "app://self/cycle-b" : "app://self/cycle-a",
                         DN_EMBED_CACHEABLE);
}
static int r_deep(dn_render *r, void *ud) {
  COUNT(r, R_DEEP);
  const char *n = dn_render_param(r, "n");
  int level = n ? (int)strtol(n, NULL, 10) : 0;
  if (level <= 0)
    return dn_render_write_str(r, "0");
  char next[64];
  snprintf(next, sizeof next, "app://self/deep?n=%d", level - 1);
  return dn_render_embed(r, next, DN_EMBED_CACHEABLE);
}
static int r_expiring(dn_render *r, void *ud) {
  COUNT(r, R_EXPIRING);
  dn_render_set_expires_at(r, s->expires_at);
  return dn_render_write_str(r, "exp");
}
#define EXPECT_RC(call, want)                                                  \
  do {                                                                         \
    if ((call) != (want))                                                      \
      s->bad_checks_failed++;                                                  \
  } while (0)
static int r_bad(dn_render *r, void *ud) {
  COUNT(r, R_BAD);
  dn_slice v;
  dn_rep *rep = NULL;
  EXPECT_RC(dn_render_add_tag(r, "bad\r\n"), DN_ETAG);
  EXPECT_RC(dn_render_add_tag(r, "has space"), DN_ETAG);
  EXPECT_RC(dn_render_add_tag(r, "a=b"), DN_ETAG);
  EXPECT_RC(dn_render_set_header(r, "X-A", "v\r\nInjected: 1"), DN_EHEADER);
  EXPECT_RC(dn_render_set_header(r, "Bad Name", "v"), DN_EHEADER);
  EXPECT_RC(dn_render_embed(r, "not a uri", DN_EMBED_CACHEABLE), DN_EURI);
  EXPECT_RC(dn_render_embed(r, "app://self/a", 7), DN_EINVAL);
  EXPECT_RC(dn_render_set_status(r, 99), DN_ERANGE);
  EXPECT_RC(dn_render_header(r, "Accept", &v), DN_ESTATE);
  EXPECT_RC(dn_engine_get(s->e, "app://self/a", 12, NULL, 0, &rep, NULL, NULL),
            DN_ESTATE);
  EXPECT_RC(dn_engine_purge(s->e, "app://self/a", 12, NULL), DN_ESTATE);
  EXPECT_RC(dn_render_add_tags_from_rows(r, "app://self/x{?id", "[]", 2),
            DN_ETEMPLATE);
  return dn_render_write_str(r, "checked");
}
static int r_fails(dn_render *r, void *ud) {
  COUNT(r, R_FAILS);
  dn_render_write_str(r, "partial");
  dn_render_fail(r, DN_ERENDER, "database is down");
  s->write_after_fail_rc = dn_render_write_str(r, "more");
  return DN_ERENDER;
}
static int r_intl(dn_render *r, void *ud) {
  COUNT(r, R_INTL);
  return embed_between(r, "[", "app://self/hello", "]");
}
static int r_hello(dn_render *r, void *ud) {
  COUNT(r, R_HELLO);
  dn_slice lang = {"?", 1};
  /* Declared as a response header, which must work like dn_render_vary. */
  dn_render_set_header(r, "Vary", "Accept-Language");
  dn_render_header(r, "Accept-Language", &lang);
  char out[64];
  snprintf(out, sizeof out, "hello:%.*s", (int)lang.len, lang.ptr);
  return dn_render_write_str(r, out);
}
static int r_wrapper(dn_render *r, void *ud) {
  COUNT(r, R_WRAPPER);
  return embed_between(r, "W(", "app://self/stored", ")");
}
static int r_stored(dn_render *r, void *ud) {
  COUNT(r, R_STORED);
  return dn_render_write_str(r, "initial");
}

/* app://self/wide?n=N embeds N items; item 0 carries the tag "item-0". */
static int r_wide(dn_render *r, void *ud) {
  COUNT(r, R_WIDE);
  const char *n = dn_render_param(r, "n");
  int count = n ? (int)strtol(n, NULL, 10) : 0;
  for (int i = 0; i < count; i++) {
    char uri[64];
    snprintf(uri, sizeof uri, "app://self/item?i=%d", i);
    dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
  }
  return dn_render_write_str(r, ".");
}
static int r_item(dn_render *r, void *ud) {
  COUNT(r, R_ITEM);
  char tag[32];
  snprintf(tag, sizeof tag, "item-%s", dn_render_param(r, "i"));
  dn_render_add_tag(r, tag);
  return dn_render_write_str(r, "i");
}

static int r_newtag(dn_render *r, void *ud) {
  COUNT(r, R_NEWTAG);
  char d[64];
  data_copy(s, d, sizeof d);
  dn_render_add_tag(r, "fresh-tag");
  return dn_render_write_str(r, d);
}

/* app://self/stale lives 10 s, then may be served stale for 30 s while it
 * is regenerated and for 60 s when regenerating it fails; tag "stale". */
static int r_stale(dn_render *r, void *ud) {
  COUNT(r, R_STALE);
  if (s->stale_fail)
    return dn_render_fail(r, DN_EUPSTREAM, "the source is down");
  char d[64];
  data_copy(s, d, sizeof d);
  dn_render_set_ttl(r, 10);
  dn_render_set_stale(r, 30, 60);
  dn_render_add_tag(r, "stale");
  return dn_render_write_str(r, d);
}

/* app://self/altpage embeds app://self/stale with app://self/hello as its
 * fallback (ESI's alt). */
static int r_altpage(dn_render *r, void *ud) {
  COUNT(r, R_ALTPAGE);
  dn_render_write_str(r, "<");
  dn_render_embed_alt(r, "app://self/stale", "app://self/hello",
                      DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, ">");
}

static uint64_t site_clock(void *ud) { return ((site *)ud)->now; }

static void site_heard(void *ud, const dn_slice *tags, size_t n) {
  site *s = ud;
  s->heard++;
  if (n)
    snprintf(s->heard_tag, sizeof s->heard_tag, "%.*s", (int)tags[0].len,
             tags[0].ptr);
}

static const struct {
  const char *pattern;
  dn_render_fn fn;
} site_routes[] = {
    {"app://self/a", r_a},
    {"app://self/b", r_b},
    {"app://self/c", r_c},
    {"app://self/diamond", r_diamond},
    {"app://self/e", r_e},
    {"app://self/f", r_f},
    {"app://self/g", r_g},
    {"app://self/twice", r_twice},
    {"app://self/parent{?n}", r_parent},
    {"app://self/home", r_home},
    {"app://self/news", r_news},
    {"app://self/greeting", r_greeting},
    {"app://self/slow", r_slow},
    {"app://self/flight", r_flight},
    {"app://self/cycle-*", r_cycle},
    {"app://self/deep{?n}", r_deep},
    {"app://self/expiring", r_expiring},
    {"app://self/bad", r_bad},
    {"app://self/fails", r_fails},
    {"app://self/intl", r_intl},
    {"app://self/hello", r_hello},
    {"app://self/wrapper", r_wrapper},
    {"app://self/stored", r_stored},
    {"app://self/wide{?n}", r_wide},
    {"app://self/item{?i}", r_item},
    {"app://self/newtag", r_newtag},
    {"app://self/stale", r_stale},
    {"app://self/altpage", r_altpage},
};

static void site_free(site *s) {
  if (!s)
    return;
  dn_engine_free(s->e);
  dn_store_free(s->counted);
  if (s->owns_inner)
    dn_store_free(s->inner);
  sem_destroy(&s->slow_started);
  sem_destroy(&s->slow_go);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* A site over `store` (NULL: a new store from dn_test_store_new). Returns
 * NULL only when out of memory. */
static site *site_new(dn_store *store) {
  site *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  pthread_mutex_init(&s->mu, NULL);
  sem_init(&s->slow_started, 0, 0);
  sem_init(&s->slow_go, 0, 0);
  snprintf(s->data, sizeof s->data, "%s", "c1");
  s->now = 1700000000000ull;
  s->inner = store;
  if (!store) {
    s->owns_inner = 1;
    if (dn_test_store_new(&s->inner))
      goto fail;
  }
  s->counted_ops = counting_ops;
  s->counted_ops.flags = s->inner->ops->flags;
  if (dn_store_new(&s->counted_ops, s, &s->counted))
    goto fail;
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.store = s->counted;
  o.now_ms = site_clock;
  o.clock_ud = s;
  if (dn_engine_new(&o, &s->e))
    goto fail;
  for (size_t i = 0; i < sizeof site_routes / sizeof site_routes[0]; i++)
    if (dn_engine_register(s->e, site_routes[i].pattern, NULL,
                           site_routes[i].fn, s))
      goto fail;
  if (dn_engine_on_invalidate(s->e, site_heard, s))
    goto fail;
  return s;
fail:
  site_free(s);
  return NULL;
}

static int site_setup(void **state) {
  site *s = site_new(NULL);
  if (!s)
    return -1;
  /* The chain tests expect C and G to render the same data. */
  *state = s;
  return 0;
}

static int site_teardown(void **state) {
  site_free(*state);
  return 0;
}

#define SITE_TEST(fn)                                                          \
  cmocka_unit_test_setup_teardown(fn, site_setup, site_teardown)

static void set_data(site *s, const char *d) {
  pthread_mutex_lock(&s->mu);
  snprintf(s->data, sizeof s->data, "%s", d);
  pthread_mutex_unlock(&s->mu);
}

static void reset_renders(site *s) { memset(s->renders, 0, sizeof s->renders); }

static dn_rep *get_req_info(site *s, const char *uri, const dn_request *req,
                            dn_get_info *info) {
  dn_rep *r = NULL;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_engine_get(s->e, uri, strlen(uri), req, 0, &r, info, &err);
  if (rc)
    fail_msg("get %s: %s (%s)", uri, dn_strerror(rc), err.text);
  return r;
}

static dn_rep *get_req(site *s, const char *uri, const dn_request *req) {
  return get_req_info(s, uri, req, NULL);
}
static dn_rep *get_info(site *s, const char *uri, dn_get_info *info) {
  return get_req_info(s, uri, NULL, info);
}
static dn_rep *get_ok(site *s, const char *uri) {
  return get_req_info(s, uri, NULL, NULL);
}

#define assert_body(rep, want)                                                 \
  do {                                                                         \
    dn_slice b_ = dn_rep_body(rep);                                            \
    char got_[256];                                                            \
    snprintf(got_, sizeof got_, "%.*s", (int)b_.len, b_.ptr);                  \
    assert_string_equal(got_, want);                                           \
  } while (0)

static void etag_copy(const dn_rep *r, char out[40]) {
  dn_slice e = dn_rep_etag(r);
  snprintf(out, 40, "%.*s", (int)e.len, e.ptr);
}

static void etag_copy_uri(site *s, const char *uri, char out[40]) {
  dn_rep *r = get_ok(s, uri);
  etag_copy(r, out);
  dn_rep_unref(r);
}

static int has_tag(const dn_rep *r, const char *tag) {
  for (size_t i = 0; i < dn_rep_tag_count(r); i++) {
    dn_slice t = dn_rep_tag(r, i);
    if (t.len == strlen(tag) && memcmp(t.ptr, tag, t.len) == 0)
      return 1;
  }
  return 0;
}

static int has_uri_tag(const dn_rep *r, const char *uri) {
  char tag[DN_URI_TAG_MAX + 1];
  if (dn_uri_tag(uri, strlen(uri), tag, NULL, NULL))
    return 0;
  return has_tag(r, tag);
}

/* Deletes the store's piece of `kind` ("t" tag version, "s" shell, "v"
 * view) for uri, as an eviction would. */
static void store_delete_kind(site *s, const char *kind, const char *uri) {
  char body[DN_URI_TAG_MAX + 1], key[512];
  if (kind[0] == 't')
    dn_uri_tag(uri, strlen(uri), body, NULL, NULL);
  else
    snprintf(body, sizeof body, "%s", uri);
  snprintf(key, sizeof key, "dn:%s:%s", kind, body);
  dn__store_del(s->inner, dn_slice_from_cstr(key));
}

#endif
