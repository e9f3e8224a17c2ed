/* test_engine.c - the engine's required behaviour: chains, bubbling,
 * donut and donut-hole pages, ETags, no stale after purge (including the
 * render that races a purge), single flight, cycles and depth, expiry,
 * safe loss, introspection and bad input.
 *
 * Every test builds a small site of renderers over mutable data, so a test
 * can change the data, purge, and check exactly which renderers ran.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"

/* ---- 1. chain ------------------------------------------------------------ */
static void test_chain_purge_renders_only_the_leaf(void **state) {
  site *s = *state;
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c1]]");
  assert_int_equal(s->renders[R_A] + s->renders[R_B] + s->renders[R_C], 3);
  char ea[40], eb[40], ec[40];
  etag_copy(a, ea);
  etag_copy_uri(s, "app://self/b", eb);
  etag_copy_uri(s, "app://self/c", ec);
  dn_rep_unref(a);

  dn_get_info info;
  a = get_info(s, "app://self/a", &info);
  assert_int_equal(info.source, DN_SOURCE_HIT);
  assert_int_equal(info.renders, 0);
  dn_rep_unref(a);

  set_data(s, "c2");
  reset_renders(s);
  assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
  a = get_info(s, "app://self/a", &info);
  assert_body(a, "A[B[c2]]");
  assert_int_equal(s->renders[R_C], 1);
  assert_int_equal(s->renders[R_A], 0);
  assert_int_equal(s->renders[R_B], 0);
  assert_int_equal(info.source, DN_SOURCE_RECOMPOSED);
  assert_int_equal(info.renders, 1);
  char ea2[40], eb2[40], ec2[40];
  etag_copy(a, ea2);
  etag_copy_uri(s, "app://self/b", eb2);
  etag_copy_uri(s, "app://self/c", ec2);
  assert_string_not_equal(ea, ea2);
  assert_string_not_equal(eb, eb2);
  assert_string_not_equal(ec, ec2);
  dn_rep_unref(a);
  assert_int_equal(s->renders[R_C], 1);
}

/* ---- 2. bubbling -----------------------------------------------------------
 */
static void test_closure_tags_and_lifetimes_bubble(void **state) {
  site *s = *state;
  dn_rep *a = get_ok(s, "app://self/a");
  assert_true(has_uri_tag(a, "app://self/a"));
  assert_true(has_uri_tag(a, "app://self/b"));
  assert_true(has_uri_tag(a, "app://self/c"));
  assert_true(has_tag(a, "tag-c"));
  assert_true(has_tag(a, "tag-b"));
  /* B has ttl 600 / s-maxage 60, C ttl 300: the minimum wins. */
  assert_int_equal(dn_rep_ttl(a), 300);
  assert_int_equal(dn_rep_s_maxage(a), 60);
  dn_rep_unref(a);

  reset_renders(s);
  dn_slice t = dn_slice_from_cstr("tag-c");
  assert_int_equal(dn_engine_invalidate_tags(s->e, &t, 1, NULL), 0);
  dn_get_info info;
  a = get_info(s, "app://self/a", &info);
  assert_int_not_equal(info.source, DN_SOURCE_HIT);
  assert_int_equal(s->renders[R_C], 1);
  assert_int_equal(s->renders[R_A] + s->renders[R_B], 0);
  dn_rep_unref(a);
  dn_rep *b = get_info(s, "app://self/b", &info);
  assert_int_equal(info.source, DN_SOURCE_HIT); /* recomposed by A's get */
  dn_rep_unref(b);
}

static void test_diamond_and_shared_leaf(void **state) {
  site *s = *state;
  dn_rep *d = get_ok(s, "app://self/diamond");
  assert_body(d, "D[E[c1]F[c1]]");
  assert_int_equal(s->renders[R_G], 1);
  dn_rep_unref(d);
  set_data(s, "g2");
  reset_renders(s);
  assert_int_equal(dn_engine_purge(s->e, "app://self/g", 12, NULL), 0);
  d = get_ok(s, "app://self/diamond");
  assert_body(d, "D[E[g2]F[g2]]");
  assert_int_equal(s->renders[R_G], 1);
  assert_int_equal(s->renders[R_DIAMOND] + s->renders[R_E] + s->renders[R_F],
                   0);
  dn_rep_unref(d);
}

static void test_same_hole_twice(void **state) {
  site *s = *state;
  dn_rep *p = get_ok(s, "app://self/twice");
  assert_body(p, "<c1|c1>");
  assert_int_equal(s->renders[R_G], 1);
  dn_rep_unref(p);
}

static void test_one_leaf_many_parents(void **state) {
  site *s = *state;
  char uri[64];
  for (int i = 0; i < 10; i++) {
    snprintf(uri, sizeof uri, "app://self/parent?n=%d", i);
    dn_rep_unref(get_ok(s, uri));
  }
  assert_int_equal(s->renders[R_G], 1);
  assert_int_equal(s->renders[R_PARENT], 10);
  set_data(s, "g9");
  reset_renders(s);
  assert_int_equal(dn_engine_purge(s->e, "app://self/g", 12, NULL), 0);
  for (int i = 0; i < 10; i++) {
    snprintf(uri, sizeof uri, "app://self/parent?n=%d", i);
    dn_rep *p = get_ok(s, uri);
    char want[64];
    snprintf(want, sizeof want, "P%d(g9)", i);
    assert_body(p, want);
    dn_rep_unref(p);
  }
  assert_int_equal(s->renders[R_G], 1);
  assert_int_equal(s->renders[R_PARENT], 0);
}

/* ---- 3. donut (uncacheable hole) ----------------------------------------- */
static void test_donut_page_renders_hole_every_time(void **state) {
  site *s = *state;
  dn_header h = {dn_slice_from_cstr("Cookie"),
                 dn_slice_from_cstr("theme=dark; name=alice")};
  dn_request req = {dn_slice_from_cstr("GET"), &h, 1};
  dn_rep *p = get_req(s, "app://self/home", &req);
  assert_body(p, "Home:Welcome to alice|news:c1");
  assert_int_equal(dn_rep_etag(p).len, 0);
  assert_false(dn_rep_cacheable(p));
  assert_false(has_tag(p, "user"));      /* the greeting's own tag */
  assert_int_equal(dn_rep_ttl(p), 3600); /* the greeting's ttl 5 does not */
  dn_rep_unref(p);

  h.value = dn_slice_from_cstr("name=bob");
  dn_get_info info;
  p = get_req_info(s, "app://self/home", &req, &info);
  assert_body(p, "Home:Welcome to bob|news:c1");
  assert_int_not_equal(info.source, DN_SOURCE_HIT);
  dn_rep_unref(p);
  p = get_req(s, "app://self/home", NULL);
  assert_body(p, "Home:Welcome to guest|news:c1");
  dn_rep_unref(p);
  assert_int_equal(s->renders[R_HOME], 1);     /* shell reused */
  assert_int_equal(s->renders[R_GREETING], 3); /* every request */
  assert_int_equal(s->renders[R_G], 1);        /* cacheable hole cached */
}

/* ---- 4. donut-hole (all cacheable) --------------------------------------- */
static void test_donut_hole_page_is_cached_with_etag(void **state) {
  site *s = *state;
  dn_rep *p = get_ok(s, "app://self/a");
  assert_int_equal(dn_rep_etag(p).len, 34);
  assert_true(dn_rep_cacheable(p));
  dn_rep_unref(p);
  dn_get_info info;
  p = get_info(s, "app://self/a", &info);
  assert_int_equal(info.source, DN_SOURCE_HIT);
  dn_rep_unref(p);
}

/* ---- 5. ETags ------------------------------------------------------------ */
static void test_identical_rerender_keeps_etag_and_last_modified(void **state) {
  site *s = *state;
  dn_rep *a = get_ok(s, "app://self/a");
  char e1[40];
  etag_copy(a, e1);
  uint64_t lm1 = dn_rep_last_modified(a);
  assert_int_not_equal(lm1, 0);
  dn_rep_unref(a);
  s->now += 5000;
  assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
  a = get_ok(s, "app://self/a");
  char e2[40];
  etag_copy(a, e2);
  assert_string_equal(e1, e2);
  assert_int_equal(dn_rep_last_modified(a), lm1);
  assert_int_equal(s->renders[R_C], 2);
  dn_rep_unref(a);
}

static void test_etag_is_the_same_in_another_engine(void **state) {
  site *s = *state;
  site *other = site_new(NULL);
  dn_rep *a = get_ok(s, "app://self/a");
  dn_rep *b = get_ok(other, "app://self/a");
  assert_int_equal(dn_rep_etag(a).len, dn_rep_etag(b).len);
  assert_memory_equal(dn_rep_etag(a).ptr, dn_rep_etag(b).ptr,
                      dn_rep_etag(a).len);
  dn_rep_unref(a);
  dn_rep_unref(b);
  site_free(other);
}

/* ---- 6. no stale after purge, including the racing render ---------------- */
static void *racing_get(void *arg) {
  site *s = arg;
  dn_rep *r = NULL;
  int rc = dn_engine_get(s->e, "app://self/slow", 15, NULL, 0, &r, NULL, NULL);
  if (rc == 0)
    dn_rep_unref(r);
  return (void *)(intptr_t)rc;
}

static void test_render_racing_a_purge_is_not_served_as_fresh(void **state) {
  site *s = *state;
  s->slow_block = 1;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, racing_get, s), 0);
  sem_wait(&s->slow_started); /* the renderer read "c1" and is paused */
  set_data(s, "g2");
  dn_slice tag = dn_slice_from_cstr("slow-data");
  assert_int_equal(dn_engine_invalidate_tags(s->e, &tag, 1, NULL), 0);
  sem_post(&s->slow_go);
  void *ret;
  pthread_join(t, &ret);
  assert_int_equal((intptr_t)ret, 0);
  dn_rep *r = get_ok(s, "app://self/slow");
  assert_body(r, "slow:g2");
  dn_rep_unref(r);
  dn_engine_stats st;
  dn_engine_stats_get(s->e, &st);
  assert_true(st.raced_renders >= 1);
}

static void test_purge_is_seen_by_the_next_get(void **state) {
  site *s = *state;
  for (int i = 0; i < 50; i++) {
    char data[16];
    snprintf(data, sizeof data, "v%d", i);
    set_data(s, data);
    assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
    dn_rep *a = get_ok(s, "app://self/a");
    char want[32];
    snprintf(want, sizeof want, "A[B[%s]]", data);
    assert_body(a, want);
    dn_rep_unref(a);
  }
}

static void test_reader_racing_the_tag_write_sees_the_purge(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "after");
  /* A get lands after the sequence moved but before C's new version is
   * written: it sees the old versions and must not remember them as
   * current for good. */
  s->during_tag_write = "app://self/a";
  assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
  assert_null(s->during_tag_write);
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[after]]");
  dn_rep_unref(a);
}

/* A thread that keeps serving a page from its per-thread view cache sees a
 * purge made by another thread on its very next get. */
typedef struct hot_reader {
  site *s;
  sem_t go, done;
  int stop;
  char body[64];
} hot_reader;

static void *hot_reader_main(void *arg) {
  hot_reader *h = arg;
  for (;;) {
    sem_wait(&h->go);
    if (h->stop)
      return NULL;
    dn_rep *r = NULL;
    if (dn_engine_get(h->s->e, "app://self/a", 12, NULL, 0, &r, NULL, NULL) ==
        0) {
      snprintf(h->body, sizeof h->body, "%.*s", (int)dn_rep_body(r).len,
               dn_rep_body(r).ptr);
      dn_rep_unref(r);
    }
    sem_post(&h->done);
  }
}

static void test_hot_cache_sees_purges_from_other_threads(void **state) {
  site *s = *state;
  hot_reader h = {.s = s};
  sem_init(&h.go, 0, 0);
  sem_init(&h.done, 0, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hot_reader_main, &h), 0);
  for (int i = 0; i < 20; i++) {
    char data[16], want[32];
    snprintf(data, sizeof data, "t%d", i);
    set_data(s, data);
    assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
    snprintf(want, sizeof want, "A[B[%s]]", data);
    for (int k = 0; k < 3; k++) { /* the first get fills, the rest hit */
      sem_post(&h.go);
      sem_wait(&h.done);
      assert_string_equal(h.body, want);
    }
  }
  h.stop = 1;
  sem_post(&h.go);
  pthread_join(t, NULL);
  sem_destroy(&h.go);
  sem_destroy(&h.done);
}

/* A render whose tag has no record yet, racing a purge of that tag: the
 * engine's first version may lose to the purge's, and the render's output
 * (older than the purge) must not be stored as fresh. */
static void test_render_creating_a_tag_that_is_purged_meanwhile(void **state) {
  site *s = *state;
  set_data(s, "old");
  s->purge_at_tag_creation = "fresh-tag";
  dn_rep_unref(get_ok(s, "app://self/newtag")); /* concurrent: either */
  assert_null(s->purge_at_tag_creation);
  dn_rep *r = get_ok(s, "app://self/newtag");
  assert_body(r, "new");
  dn_rep_unref(r);
}

/* A tag write that the store applied but reported as failed: the purge
 * says it failed, and still no get serves the old content. */
static void test_failed_tag_write_still_moves_the_sequence(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "c2");
  s->during_tag_write = "app://self/a"; /* a reader between the steps */
  s->fail_tag_write_after_apply = 1;
  dn_error err;
  assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, &err), DN_ESTORE);
  for (int i = 0; i < 3; i++) {
    dn_rep *a = get_ok(s, "app://self/a");
    assert_body(a, "A[B[c2]]");
    dn_rep_unref(a);
  }
}

/* ---- soft invalidation ------------------------------------------------------
 */
static void *regenerate_a(void *arg) {
  site *s = arg;
  dn_rep *r = NULL;
  char *body = calloc(1, 64);
  if (dn_engine_get(s->e, "app://self/a", 12, NULL, 0, &r, NULL, NULL) == 0) {
    snprintf(body, 64, "%.*s", (int)dn_rep_body(r).len, dn_rep_body(r).ptr);
    dn_rep_unref(r);
  }
  return body;
}

static void
test_soft_invalidation_serves_stale_while_one_regenerates(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "c2");
  s->c_block = 1;
  dn_slice tag = dn_slice_from_cstr("tag-c");
  assert_int_equal(
      dn_engine_invalidate_tags_ex(s->e, &tag, 1, DN_INVALIDATE_SOFT, NULL), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, regenerate_a, s), 0);
  sem_wait(&s->slow_started); /* the regenerating get is rendering C */
  /* Everyone else gets the stale page at once, rendering nothing. */
  for (int i = 0; i < 3; i++) {
    dn_get_info info;
    dn_rep *a = get_info(s, "app://self/a", &info);
    assert_body(a, "A[B[c1]]");
    assert_int_equal(info.renders, 0);
    dn_rep_unref(a);
  }
  dn_engine_stats st;
  dn_engine_stats_get(s->e, &st);
  assert_true(st.stale_served >= 3);
  sem_post(&s->slow_go);
  void *body;
  pthread_join(t, &body);
  assert_string_equal(body, "A[B[c2]]");
  free(body);
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c2]]");
  dn_rep_unref(a);
  assert_int_equal(s->renders[R_C], 2);
}

static void test_soft_invalidation_ends_with_its_grace(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "c3");
  dn_slice tag = dn_slice_from_cstr("tag-c");
  assert_int_equal(
      dn_engine_invalidate_tags_ex(s->e, &tag, 1, DN_INVALIDATE_SOFT, NULL), 0);
  /* Another process holds the regeneration lease of A and never finishes. */
  dn_blob *token;
  assert_int_equal(dn_blob_new("x", 1, &token), 0);
  assert_int_equal(dn__store_set(s->inner,
                                 dn_slice_from_cstr("dn:g:app://self/a"), token,
                                 600000, DN_STORE_SET),
                   0);
  dn_blob_unref(token);
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c1]]"); /* stale, within the grace */
  dn_rep_unref(a);
  s->now += 30001; /* past the default grace of 30 s */
  a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c3]]");
  dn_rep_unref(a);
}

/* A hole that cannot be got is replaced by its fallback, and the page that
 * needed it is not stored: once the first choice works again, it is used. */
static void test_fallback_hole_replaces_a_failed_one(void **state) {
  site *s = *state;
  s->stale_fail = 1;
  dn_rep *v = get_ok(s, "app://self/altpage");
  assert_body(v, "<hello:?>");
  dn_rep_unref(v);
  s->stale_fail = 0;
  v = get_ok(s, "app://self/altpage");
  assert_body(v, "<c1>");
  dn_rep_unref(v);
  int renders = s->renders[R_ALTPAGE] + s->renders[R_STALE];
  v = get_ok(s, "app://self/altpage"); /* now stored: a hit */
  assert_body(v, "<c1>");
  dn_rep_unref(v);
  assert_int_equal(s->renders[R_ALTPAGE] + s->renders[R_STALE], renders);
}

/* Holds (or releases) the regeneration lease of uri, as another process
 * rebuilding it would. */
static void hold_regeneration(site *s, const char *uri, int hold) {
  char key[128];
  snprintf(key, sizeof key, "dn:g:%s", uri);
  if (!hold) {
    dn__store_del(s->inner, dn_slice_from_cstr(key));
    return;
  }
  dn_blob *token;
  assert_int_equal(dn_blob_new("x", 1, &token), 0);
  assert_int_equal(dn__store_set(s->inner, dn_slice_from_cstr(key), token,
                                 600000, DN_STORE_SET),
                   0);
  dn_blob_unref(token);
}

/* ---- stale windows (RFC 5861) ---------------------------------------------
 */
static void test_stale_if_error_serves_the_expired_copy(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/stale"));
  s->now += 15000; /* expired 5 s ago */
  set_data(s, "c2");
  s->stale_fail = 1;
  dn_rep *v = get_ok(s, "app://self/stale");
  assert_body(v, "c1"); /* the render failed: the expired copy */
  dn_rep_unref(v);
  s->stale_fail = 0;
  v = get_ok(s, "app://self/stale");
  assert_body(v, "c2"); /* the source is back: fresh, and stored */
  dn_rep_unref(v);
  int renders = s->renders[R_STALE];
  dn_rep_unref(get_ok(s, "app://self/stale"));
  assert_int_equal(s->renders[R_STALE], renders);
}

static void test_stale_if_error_ends_with_its_window(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/stale"));
  s->now += 10000 + 60001; /* past expiry and the 60 s window */
  s->stale_fail = 1;
  dn_rep *v = NULL;
  dn_error err;
  assert_int_equal(
      dn_engine_get(s->e, "app://self/stale", 16, NULL, 0, &v, NULL, &err),
      DN_EUPSTREAM);
  assert_null(v);
}

/* An invalidated resource is never served stale, even when it has also
 * expired within its windows. */
static void test_stale_windows_never_excuse_a_purge(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/stale"));
  s->now += 15000;
  dn_slice tag = dn_slice_from_cstr("stale");
  assert_int_equal(dn_engine_invalidate_tags(s->e, &tag, 1, NULL), 0);
  s->stale_fail = 1;
  dn_rep *v = NULL;
  assert_int_equal(
      dn_engine_get(s->e, "app://self/stale", 16, NULL, 0, &v, NULL, NULL),
      DN_EUPSTREAM);
  assert_null(v);
}

/* Within stale-while-revalidate, while another caller holds the
 * regeneration lease, the expired copy is served without a render; the
 * lease holder's render then replaces it. */
static void test_stale_while_revalidate_serves_while_one_renders(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/stale"));
  s->now += 15000;
  set_data(s, "c2");
  hold_regeneration(s, "app://self/stale", 1);
  int renders = s->renders[R_STALE];
  dn_rep *v = get_ok(s, "app://self/stale");
  assert_body(v, "c1");
  dn_rep_unref(v);
  assert_int_equal(s->renders[R_STALE], renders);
  hold_regeneration(s, "app://self/stale", 0);
  v = get_ok(s, "app://self/stale"); /* this caller takes the lease */
  assert_body(v, "c2");
  dn_rep_unref(v);
  s->now += 31000; /* long past the first expiry's windows */
  hold_regeneration(s, "app://self/stale", 1);
  v = get_ok(s, "app://self/stale"); /* c2 expired 21 s ago: stale again */
  assert_body(v, "c2");
  dn_rep_unref(v);
  hold_regeneration(s, "app://self/stale", 0);
}

/* A soft invalidation after a hard one excuses nothing the hard one made
 * stale. */
static void test_soft_after_hard_serves_nothing_stale(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "c2");
  dn_slice tag = dn_slice_from_cstr("tag-c");
  assert_int_equal(dn_engine_invalidate_tags(s->e, &tag, 1, NULL), 0);
  assert_int_equal(
      dn_engine_invalidate_tags_ex(s->e, &tag, 1, DN_INVALIDATE_SOFT, NULL), 0);
  hold_regeneration(s, "app://self/a", 1);
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c2]]");
  dn_rep_unref(a);
}

/* A page composed around a hole served stale is never stored as fresh:
 * once the grace is over, it shows the new content. */
static void test_page_around_a_stale_hole_is_not_stored(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  set_data(s, "c2");
  dn_slice tag = dn_slice_from_cstr("tag-c");
  assert_int_equal(
      dn_engine_invalidate_tags_ex(s->e, &tag, 1, DN_INVALIDATE_SOFT, NULL), 0);
  hold_regeneration(s, "app://self/c", 1); /* C is being rebuilt elsewhere */
  dn_rep *a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c1]]"); /* stale within the grace, as allowed */
  dn_rep_unref(a);
  hold_regeneration(s, "app://self/c", 0);
  s->now += 30001;
  a = get_ok(s, "app://self/a");
  assert_body(a, "A[B[c2]]");
  dn_rep_unref(a);
}

/* ---- 7. single flight ---------------------------------------------------- */
#define NTHREADS 8

static void *flight_get(void *arg) {
  site *s = arg;
  dn_rep *r = NULL;
  dn_error err;
  int rc =
      dn_engine_get(s->e, "app://self/flight", 17, NULL, 0, &r, NULL, &err);
  if (rc == 0) {
    pthread_mutex_lock(&s->mu);
    if (!s->flight_body[0])
      snprintf(s->flight_body, sizeof s->flight_body, "%.*s",
               (int)dn_rep_body(r).len, dn_rep_body(r).ptr);
    else if (strncmp(s->flight_body, dn_rep_body(r).ptr, dn_rep_body(r).len))
      s->flight_mismatch = 1;
    pthread_mutex_unlock(&s->mu);
    dn_rep_unref(r);
  }
  return (void *)(intptr_t)rc;
}

static void run_flight(site *s, intptr_t *rcs) {
  pthread_t t[NTHREADS];
  s->flight_waiters = NTHREADS - 1;
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, flight_get, s), 0);
  for (int i = 0; i < NTHREADS; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    rcs[i] = (intptr_t)ret;
  }
}

static void test_concurrent_misses_render_once(void **state) {
  site *s = *state;
  intptr_t rcs[NTHREADS];
  run_flight(s, rcs);
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(rcs[i], 0);
  assert_int_equal(s->renders[R_FLIGHT], 1);
  assert_false(s->flight_mismatch);
  assert_string_equal(s->flight_body, "flight:c1");
}

static void test_render_error_reaches_every_waiter(void **state) {
  site *s = *state;
  s->flight_fail = 1;
  intptr_t rcs[NTHREADS];
  run_flight(s, rcs);
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(rcs[i], DN_EIO);
  assert_int_equal(s->renders[R_FLIGHT], 1);
  /* Nothing was cached: the next get renders again. */
  s->flight_fail = 0;
  s->flight_waiters = 0;
  dn_rep_unref(get_ok(s, "app://self/flight"));
  assert_int_equal(s->renders[R_FLIGHT], 2);
}

/* ---- 8. cycles and depth --------------------------------------------------
 */
static void test_cycle_is_an_error_and_caches_nothing(void **state) {
  site *s = *state;
  dn_rep *r = NULL;
  dn_error err;
  assert_int_equal(
      dn_engine_get(s->e, "app://self/cycle-a", 18, NULL, 0, &r, NULL, &err),
      DN_ECYCLE);
  assert_null(r);
  assert_non_null(strstr(err.text, "embeds itself"));
  assert_int_equal(dn_engine_get(s->e, "app://self/cycle-a", 18, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   DN_ENOTFOUND);
  assert_int_equal(dn_engine_get(s->e, "app://self/cycle-b", 18, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   DN_ENOTFOUND);
}

static void test_too_deep_is_an_error(void **state) {
  site *s = *state;
  dn_rep *r = NULL;
  dn_error err;
  assert_int_equal(
      dn_engine_get(s->e, "app://self/deep?n=40", 20, NULL, 0, &r, NULL, &err),
      DN_EDEPTH);
  assert_null(r);
  /* 32 levels below the top are allowed. */
  r = get_ok(s, "app://self/deep?n=32");
  assert_body(r, "0");
  dn_rep_unref(r);
  assert_int_equal(dn_engine_get(s->e, "app://self/deep?n=40", 20, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   DN_ENOTFOUND);
}

/* ---- 9. expiry -------------------------------------------------------------
 */
static void test_ttl_follows_the_injected_clock(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a")); /* C has ttl 300 */
  s->now += 299 * 1000;
  dn_get_info info;
  dn_rep_unref(get_info(s, "app://self/a", &info));
  assert_int_equal(info.source, DN_SOURCE_HIT);
  set_data(s, "late");
  s->now += 2000;
  dn_rep *a = get_info(s, "app://self/a", &info);
  assert_body(a, "A[B[late]]");
  assert_int_not_equal(info.source, DN_SOURCE_HIT);
  dn_rep_unref(a);
}

static void test_absolute_expiry(void **state) {
  site *s = *state;
  s->expires_at = s->now + 10000;
  dn_rep *r = get_ok(s, "app://self/expiring");
  assert_int_equal(dn_rep_expires_at(r), s->now + 10000);
  dn_rep_unref(r);
  s->now += 10000;
  dn_get_info info;
  dn_rep_unref(get_info(s, "app://self/expiring", &info));
  assert_int_equal(info.source, DN_SOURCE_RENDERED);
  assert_int_equal(s->renders[R_EXPIRING], 2);
}

/* ---- 10. safe loss and O(1) invalidation ----------------------------------
 */
static void test_losing_any_piece_is_a_miss_never_stale(void **state) {
  site *s = *state;
  static const char *kinds[] = {"t", "s", "v"};
  for (size_t k = 0; k < 3; k++) {
    dn_rep_unref(get_ok(s, "app://self/a"));
    char data[16];
    snprintf(data, sizeof data, "lost-%zu", k);
    set_data(s, data);
    /* Invalidate C, then lose pieces: whatever is lost, no stale hit. */
    assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
    store_delete_kind(s, kinds[k], "app://self/c");
    store_delete_kind(s, kinds[k], "app://self/a");
    dn_rep *a = get_ok(s, "app://self/a");
    char want[32];
    snprintf(want, sizeof want, "A[B[%s]]", data);
    assert_body(a, want);
    dn_rep_unref(a);
  }
}

static void test_invalidation_cost_does_not_grow_with_dependents(void **state) {
  site *s = *state;
  char uri[64];
  for (int i = 0; i < 200; i++) {
    snprintf(uri, sizeof uri, "app://self/parent?n=%d", i);
    dn_rep_unref(get_ok(s, uri));
  }
  s->counting = 1;
  s->store_ops = 0;
  assert_int_equal(dn_engine_purge(s->e, "app://self/g", 12, NULL), 0);
  s->counting = 0;
  /* Two sequence bumps around one tag write, whatever the dependents. */
  assert_int_equal(s->store_ops, 3);
}

/* ---- round trips (shared stores) ------------------------------------------
 */
static uint64_t round_trips(site *s) {
  dn_store_stats st;
  dn_store_stats_get(s->inner, &st);
  return st.round_trips;
}

/* Round trips to recompose a page of `n` items after item 0 changed. */
static uint64_t recompose_round_trips(site *s, int n, uint64_t *hit_trips) {
  char uri[48];
  snprintf(uri, sizeof uri, "app://self/wide?n=%d", n);
  dn_rep_unref(get_ok(s, uri));
  uint64_t before = round_trips(s);
  dn_get_info info;
  dn_rep_unref(get_info(s, uri, &info));
  assert_int_equal(info.source, DN_SOURCE_HIT);
  *hit_trips = round_trips(s) - before;
  dn_slice tag = dn_slice_from_cstr("item-0");
  assert_int_equal(dn_engine_invalidate_tags(s->e, &tag, 1, NULL), 0);
  before = round_trips(s);
  reset_renders(s);
  dn_rep_unref(get_info(s, uri, &info));
  assert_int_equal(info.source, DN_SOURCE_RECOMPOSED);
  assert_int_equal(s->renders[R_ITEM], 1);
  return round_trips(s) - before;
}

static void test_round_trips_do_not_grow_with_holes(void **state) {
  site *s = *state;
  if (s->inner->ops->flags & DN_STORE_F_LOCAL)
    skip(); /* an in-process store makes no round trips */
  uint64_t hit5, hit40;
  uint64_t five = recompose_round_trips(s, 5, &hit5);
  uint64_t forty = recompose_round_trips(s, 40, &hit40);
  print_message("round trips: hit %llu; recompose after one hole changed: "
                "%llu with 5 holes, %llu with 40\n",
                (unsigned long long)hit5, (unsigned long long)five,
                (unsigned long long)forty);
  /* A hit is one multi-get: the view with the sequence. */
  assert_int_equal(hit5, 1);
  assert_int_equal(hit40, 1);
  /* The holes of a shell come in one multi-get, so eight times the holes
   * cost no more round trips. */
  assert_int_equal(five, forty);
}

/* ---- 11. introspection -----------------------------------------------------
 */
static void test_holes_and_dependents(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/a"));
  dn_strings h = {0};
  assert_int_equal(dn_engine_holes(s->e, "app://self/b", 12, &h, NULL), 0);
  assert_int_equal(h.count, 1);
  assert_string_equal(h.items[0], "app://self/c");
  dn_strings_free(&h);
  /* A store without a set type (memcached) cannot answer, and says so. */
  int indexed = s->inner->ops->index_members != NULL;
  assert_int_equal(dn_engine_dependents(s->e, "app://self/c", 12, &h, NULL),
                   indexed ? 0 : DN_ENOTSUP);
  if (indexed) {
    assert_int_equal(h.count, 1);
    assert_string_equal(h.items[0], "app://self/b");
  }
  dn_strings_free(&h);
  char *json = NULL;
  assert_int_equal(
      dn_engine_inspect_json(s->e, "app://self/b", 12, &json, NULL), 0);
  assert_non_null(strstr(json, "\"cached\":true"));
  assert_non_null(strstr(json, "\"holes\":[{\"uri\":\"app://self/c\""));
  assert_non_null(strstr(json, indexed ? "\"dependents\":[\"app://self/a\"]"
                                       : "\"dependents\":null"));
  dn_free(json);
}

static void test_store_without_index_says_so(void **state) {
  (void)state;
  dn_store *null_store;
  assert_int_equal(dn_store_null_new(&null_store), 0);
  site *s = site_new(null_store);
  dn_rep_unref(get_ok(s, "app://self/a"));
  dn_strings h = {0};
  assert_int_equal(dn_engine_dependents(s->e, "app://self/c", 12, &h, NULL),
                   DN_ENOTSUP);
  /* The null store caches nothing: every get renders. */
  dn_rep_unref(get_ok(s, "app://self/a"));
  assert_int_equal(s->renders[R_A], 2);
  site_free(s);
  dn_store_free(null_store);
}

/* ---- 12. bad input ----------------------------------------------------------
 */
static void test_bad_input_gets_clear_errors(void **state) {
  site *s = *state;
  dn_rep *r = NULL;
  dn_error err;
  assert_int_equal(dn_engine_get(s->e, "no scheme", 9, NULL, 0, &r, NULL, &err),
                   DN_EURI);
  assert_int_equal(
      dn_engine_get(s->e, "app://self/none", 15, NULL, 0, &r, NULL, &err),
      DN_ENORENDERER);
  assert_non_null(strstr(err.text, "app://self/none"));
  dn_slice bad[2] = {dn_slice_from_cstr("ok"),
                     dn_slice_from_cstr("evil\r\nX: 1")};
  dn_rep_unref(get_ok(s, "app://self/a"));
  assert_int_equal(dn_engine_invalidate_tags(s->e, bad, 2, &err), DN_ETAG);
  assert_non_null(strstr(err.text, "tag 1"));
  dn_get_info info;
  dn_rep_unref(get_info(s, "app://self/a", &info));
  assert_int_equal(info.source, DN_SOURCE_HIT); /* nothing was invalidated */
  /* The "bad" renderer checks its own calls (see the fixture). */
  r = get_ok(s, "app://self/bad");
  assert_body(r, "checked");
  dn_rep_unref(r);
  assert_int_equal(s->bad_checks_failed, 0);
}

static void test_renderer_that_fails_then_writes(void **state) {
  site *s = *state;
  dn_rep *r = NULL;
  dn_error err;
  assert_int_equal(
      dn_engine_get(s->e, "app://self/fails", 16, NULL, 0, &r, NULL, &err),
      DN_ERENDER);
  assert_non_null(strstr(err.text, "database is down"));
  assert_int_equal(s->write_after_fail_rc, DN_ESTATE);
}

/* ---- vary
 * -------------------------------------------------------------------- */
static void test_vary_keys_variants_and_bubbles(void **state) {
  site *s = *state;
  dn_header h = {dn_slice_from_cstr("Accept-Language"),
                 dn_slice_from_cstr("ja")};
  dn_request req = {dn_slice_from_cstr("GET"), &h, 1};
  dn_rep *p = get_req(s, "app://self/intl", &req);
  assert_body(p, "[hello:ja]");
  assert_int_equal(dn_rep_vary_count(p), 1);
  assert_int_equal(dn_rep_vary(p, 0).len, 15);
  dn_rep_unref(p);
  h.value = dn_slice_from_cstr("en");
  p = get_req(s, "app://self/intl", &req);
  assert_body(p, "[hello:en]");
  dn_rep_unref(p);
  h.value = dn_slice_from_cstr("ja");
  dn_get_info info;
  p = get_req_info(s, "app://self/intl", &req, &info);
  assert_body(p, "[hello:ja]");
  assert_int_equal(info.source, DN_SOURCE_HIT);
  dn_rep_unref(p);
  assert_int_equal(s->renders[R_HELLO], 2);
}

/* ---- direct writes --------------------------------------------------------
 */
static void test_put_get_delete(void **state) {
  site *s = *state;
  dn_rep_unref(get_ok(s, "app://self/wrapper"));
  dn_render *w;
  assert_int_equal(dn_engine_put_begin(s->e, "app://self/stored", 17, &w, NULL),
                   0);
  assert_int_equal(dn_render_write_str(w, "written"), 0);
  assert_int_equal(dn_render_add_tag(w, "direct"), 0);
  assert_int_equal(dn_engine_put_commit(w, NULL), 0);
  dn_rep *r = NULL;
  assert_int_equal(dn_engine_get(s->e, "app://self/stored", 17, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   0);
  assert_body(r, "written");
  assert_true(has_tag(r, "direct"));
  dn_rep_unref(r);
  /* The page that embeds it sees the new content. */
  r = get_ok(s, "app://self/wrapper");
  assert_body(r, "W(written)");
  dn_rep_unref(r);
  assert_int_equal(dn_engine_delete(s->e, "app://self/stored", 17, NULL), 0);
  assert_int_equal(dn_engine_get(s->e, "app://self/stored", 17, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   DN_ENOTFOUND);
}

static void test_put_of_private_content_is_refused(void **state) {
  site *s = *state;
  dn_render *w;
  dn_error err;
  int heard = s->heard;
  assert_int_equal(dn_engine_put_begin(s->e, "app://self/p", 12, &w, NULL), 0);
  assert_int_equal(dn_render_set_header(w, "Set-Cookie", "sid=1"), 0);
  assert_int_equal(dn_engine_put_commit(w, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "not storable"));
  /* Refused before anything changed: nothing was invalidated. */
  assert_int_equal(s->heard, heard);
}

static void test_bad_vary_field_changes_nothing(void **state) {
  site *s = *state;
  dn_render *w;
  assert_int_equal(dn_engine_put_begin(s->e, "app://self/v", 12, &w, NULL), 0);
  assert_int_equal(dn_render_set_header(w, "Vary", "Accept, bad\"name"),
                   DN_EHEADER);
  assert_int_equal(dn_render_set_header(w, "Vary", "Accept, *x"), DN_EHEADER);
  assert_int_equal(dn_engine_put_commit(w, NULL), 0);
  dn_rep *r = NULL;
  assert_int_equal(dn_engine_get(s->e, "app://self/v", 12, NULL,
                                 DN_GET_CACHE_ONLY, &r, NULL, NULL),
                   0);
  assert_int_equal(dn_rep_vary_count(r), 0); /* Accept was not declared */
  dn_rep_unref(r);
}

/* ---- listeners --------------------------------------------------------------
 */
static void test_listeners_hear_invalidations(void **state) {
  site *s = *state;
  assert_int_equal(dn_engine_purge(s->e, "app://self/c", 12, NULL), 0);
  assert_int_equal(s->heard, 1);
  char tag[DN_URI_TAG_MAX + 1];
  assert_int_equal(dn_uri_tag("app://self/c", 12, tag, NULL, NULL), 0);
  assert_string_equal(s->heard_tag, tag);
}

/* ---- out of memory ----------------------------------------------------------
 */
static int oom_get(void *ud) {
  (void)ud;
  site *s = site_new(NULL);
  if (!s)
    return DN_ENOMEM;
  dn_rep *r = NULL;
  int rc = dn_engine_get(s->e, "app://self/a", 12, NULL, 0, &r, NULL, NULL);
  if (rc == 0 && strncmp(dn_rep_body(r).ptr, "A[B[c1]]", 8) != 0)
    rc = DN_EINVAL;
  dn_rep_unref(r);
  if (rc == 0)
    rc = dn_engine_purge(s->e, "app://self/c", 12, NULL);
  /* A renderer that reads a query parameter: under allocation failure it
   * must fail, never render (and cache) a page without its parameter. */
  for (int i = 0; rc == 0 && i < 2; i++) {
    rc = dn_engine_get(s->e, "app://self/parent?n=7", 21, NULL, 0, &r, NULL,
                       NULL);
    if (rc == 0 && strncmp(dn_rep_body(r).ptr, "P7(", 3) != 0)
      rc = DN_EINVAL;
    if (rc == 0)
      dn_rep_unref(r);
  }
  site_free(s);
  return rc;
}

static void test_every_allocation_failure_is_clean(void **state) {
  (void)state;
  dn_test_every_alloc_failure(oom_get, NULL);
}

/* ---- options from older and newer programs --------------------------------
 */
/* A new engine with `o` and the deep renderer; the depth reached. */
static int depth_with(site *s, const dn_engine_options *o, int levels) {
  dn_engine *e = NULL;
  int rc = dn_engine_new(o, &e);
  if (rc)
    return rc;
  dn_engine_register(e, "app://self/deep{?n}", NULL, r_deep, s);
  char uri[32];
  int n = snprintf(uri, sizeof uri, "app://self/deep?n=%d", levels);
  dn_rep *r = NULL;
  rc = dn_engine_get(e, uri, (size_t)n, NULL, 0, &r, NULL, NULL);
  dn_rep_unref(r);
  dn_engine_free(e);
  return rc;
}

static void test_options_of_an_older_program_take_defaults(void **state) {
  site *s = *state;
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.max_depth = 1;
  assert_int_equal(depth_with(s, &o, 2), DN_EDEPTH);
  /* A program that knew only the fields before max_depth: the library's
   * default (32) applies, whatever lies past its size. */
  o.size = offsetof(dn_engine_options, max_depth);
  assert_int_equal(depth_with(s, &o, 2), 0);
  /* The oldest size there can be ends with the first field. */
  o.key_prefix = ""; /* refused when read */
  o.size = sizeof o;
  assert_int_equal(depth_with(s, &o, 0), DN_EINVAL);
  o.size = offsetof(dn_engine_options, key_prefix);
  assert_int_equal(depth_with(s, &o, 2), 0);
  o.size = offsetof(dn_engine_options, log_ud);
  assert_int_equal(depth_with(s, &o, 0), DN_EINVAL);
}

static void test_options_of_no_known_size_are_refused(void **state) {
  site *s = *state;
  dn_engine_options o;
  dn_engine_options_init(&o);
  assert_int_equal(o.size, sizeof o);
  size_t bad[] = {0, sizeof(size_t),
                  offsetof(dn_engine_options, key_prefix) + 1, (size_t)1 << 20};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.size = bad[i];
    assert_int_equal(depth_with(s, &o, 0), DN_EINVAL);
  }
  /* A newer program's larger struct: fine while the fields this library
   * does not know are zero. */
  union {
    dn_engine_options o;
    unsigned char b[sizeof(dn_engine_options) + 16];
  } newer;
  dn_engine_options_init_size(&newer.o, sizeof newer);
  assert_int_equal(newer.o.size, sizeof newer);
  assert_int_equal(newer.o.max_depth, 32);
  assert_int_equal(depth_with(s, &newer.o, 2), 0);
  newer.b[sizeof(dn_engine_options) + 3] = 1;
  assert_int_equal(depth_with(s, &newer.o, 0), DN_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      SITE_TEST(test_chain_purge_renders_only_the_leaf),
      SITE_TEST(test_closure_tags_and_lifetimes_bubble),
      SITE_TEST(test_diamond_and_shared_leaf),
      SITE_TEST(test_same_hole_twice),
      SITE_TEST(test_one_leaf_many_parents),
      SITE_TEST(test_donut_page_renders_hole_every_time),
      SITE_TEST(test_donut_hole_page_is_cached_with_etag),
      SITE_TEST(test_identical_rerender_keeps_etag_and_last_modified),
      SITE_TEST(test_etag_is_the_same_in_another_engine),
      SITE_TEST(test_render_racing_a_purge_is_not_served_as_fresh),
      SITE_TEST(test_purge_is_seen_by_the_next_get),
      SITE_TEST(test_reader_racing_the_tag_write_sees_the_purge),
      SITE_TEST(test_hot_cache_sees_purges_from_other_threads),
      SITE_TEST(test_soft_invalidation_serves_stale_while_one_regenerates),
      SITE_TEST(test_soft_invalidation_ends_with_its_grace),
      SITE_TEST(test_soft_after_hard_serves_nothing_stale),
      SITE_TEST(test_stale_if_error_serves_the_expired_copy),
      SITE_TEST(test_fallback_hole_replaces_a_failed_one),
      SITE_TEST(test_stale_if_error_ends_with_its_window),
      SITE_TEST(test_stale_windows_never_excuse_a_purge),
      SITE_TEST(test_stale_while_revalidate_serves_while_one_renders),
      SITE_TEST(test_page_around_a_stale_hole_is_not_stored),
      SITE_TEST(test_render_creating_a_tag_that_is_purged_meanwhile),
      SITE_TEST(test_failed_tag_write_still_moves_the_sequence),
      SITE_TEST(test_concurrent_misses_render_once),
      SITE_TEST(test_render_error_reaches_every_waiter),
      SITE_TEST(test_cycle_is_an_error_and_caches_nothing),
      SITE_TEST(test_too_deep_is_an_error),
      SITE_TEST(test_ttl_follows_the_injected_clock),
      SITE_TEST(test_absolute_expiry),
      SITE_TEST(test_losing_any_piece_is_a_miss_never_stale),
      SITE_TEST(test_invalidation_cost_does_not_grow_with_dependents),
      SITE_TEST(test_round_trips_do_not_grow_with_holes),
      SITE_TEST(test_holes_and_dependents),
      cmocka_unit_test(test_store_without_index_says_so),
      SITE_TEST(test_bad_input_gets_clear_errors),
      SITE_TEST(test_renderer_that_fails_then_writes),
      SITE_TEST(test_vary_keys_variants_and_bubbles),
      SITE_TEST(test_put_get_delete),
      SITE_TEST(test_put_of_private_content_is_refused),
      SITE_TEST(test_bad_vary_field_changes_nothing),
      SITE_TEST(test_listeners_hear_invalidations),
      cmocka_unit_test(test_every_allocation_failure_is_clean),
      SITE_TEST(test_options_of_an_older_program_take_defaults),
      SITE_TEST(test_options_of_no_known_size_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
