/* test_curl_loop.c - lib/client/curl_loop.c against a local recorder:
 * concurrent transfers reported through their callbacks, an easy handle
 * reused on a pooled connection, multi options, cancelling, closing with
 * transfers in flight (cancelled, reported from the loop, then closed),
 * and calls that fail and change nothing.
 *
 * The curl loop is the transport of the purgers (lib/purge), so it is
 * tested beside them.
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "curl_loop.h"
#include "recorder.h"
#include "test_support.h"

typedef struct result {
  int calls;
  CURLcode code;
  long status;
  int order; /* when it ran, counted by the test */
} result;

typedef struct env {
  uv_loop_t loop;
  dn__curl_loop cl;
  dn_test_recorder rec;
  int closed, ticks, in_close;
} env;

static int tick;

static void on_done(void *ud, CURL *easy, CURLcode code) {
  result *r = ud;
  r->calls++;
  r->code = code;
  r->order = ++tick;
  if (code == CURLE_OK)
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
}

static void on_closed(void *ud) {
  env *e = ud;
  e->closed++;
  e->ticks = ++tick;
}

static void env_init(env *e) {
  memset(e, 0, sizeof *e);
  tick = 0;
  assert_int_equal(dn__curl_global_init(), 0);
  if (dn_test_recorder_start(&e->rec) != 0)
    fail_msg("recorder: %s", e->rec.error);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  dn__curl_loop_init(&e->cl, &e->loop);
}

/* Closes the curl loop, runs the loop until everything is closed, and
 * checks that nothing is left open. */
static void env_close(env *e) {
  dn__curl_loop_close(&e->cl, on_closed, e);
  assert_int_equal(e->closed, 0); /* never from within the call */
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  dn_test_recorder_stop(&e->rec);
}

static size_t discard(char *data, size_t size, size_t n, void *ud) {
  (void)data;
  (void)ud;
  return size * n;
}

static CURL *easy_for(env *e, const char *path) {
  char url[128];
  snprintf(url, sizeof url, "%s%s", e->rec.url, path);
  CURL *h = curl_easy_init();
  assert_non_null(h);
  assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);
  assert_int_equal(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L), CURLE_OK);
  assert_int_equal(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
  assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard),
                   CURLE_OK);
  return h;
}

/* Runs the loop until r has been reported (or ten seconds pass). */
static void run_until(env *e, const result *r) {
  uint64_t end = uv_hrtime() + 10000000000ull;
  while (r->calls == 0 && uv_hrtime() < end)
    uv_run(&e->loop, UV_RUN_ONCE);
}

/* Runs the loop until the recorder has seen n requests. */
static void run_until_recorded(env *e, int n) {
  int got = 0;
  for (int i = 0; i < 100 && got < n; i++) {
    uv_run(&e->loop, UV_RUN_NOWAIT);
    char **raw;
    got = dn_test_recorder_requests(&e->rec, (size_t)n, 50, &raw);
    if (got > 0)
      dn_test_recorder_free(raw, got);
  }
  assert_true(got >= n);
}

/* ---- transfers ----------------------------------------------------------- */

/* Eight transfers at once, each reported once to its own callback. */
static void reports_each_transfer(void **state) {
  (void)state;
  env e;
  env_init(&e);
  assert_int_equal(
      dn_test_recorder_script(&e.rec, "[{\"status\":503},{\"status\":204}]"),
      0);
  enum { N = 8 };
  CURL *h[N];
  result r[N];
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++) {
    h[i] = easy_for(&e, "/x");
    assert_int_equal(dn__curl_loop_start(&e.cl, h[i], on_done, &r[i]), 0);
  }
  assert_int_equal(dn__curl_loop_active(&e.cl), N);
  for (int i = 0; i < N; i++)
    assert_int_equal(r[i].calls, 0); /* never from within start */
  for (int i = 0; i < N; i++)
    run_until(&e, &r[i]);
  int ok = 0, unavailable = 0, none = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].code, CURLE_OK);
    ok += r[i].status == 200;
    unavailable += r[i].status == 503;
    none += r[i].status == 204;
    char *priv = (char *)1;
    curl_easy_getinfo(h[i], CURLINFO_PRIVATE, &priv);
    assert_null(priv); /* given back */
    curl_easy_cleanup(h[i]);
  }
  assert_int_equal(ok, N - 2);
  assert_int_equal(unavailable, 1);
  assert_int_equal(none, 1);
  assert_int_equal(dn__curl_loop_active(&e.cl), 0);
  env_close(&e);
}

/* A handle started again once reported runs again, on the connection the
 * first transfer left in the pool. */
static void reuses_handles_and_connections(void **state) {
  (void)state;
  env e;
  env_init(&e);
  assert_int_equal(
      dn__curl_loop_set_long(&e.cl, CURLMOPT_MAX_HOST_CONNECTIONS, 2L), 0);
  CURL *h = easy_for(&e, "/again");
  for (int round = 0; round < 3; round++) {
    result r = {0};
    assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &r), 0);
    run_until(&e, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    long connects = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, round == 0 ? 1 : 0);
  }
  char **raw;
  int n = dn_test_recorder_requests(&e.rec, 3, 5000, &raw);
  assert_int_equal(n, 3);
  dn_test_recorder_free(raw, n);
  curl_easy_cleanup(h);
  env_close(&e);
}

/* A transport error is a result like any other. */
static void reports_transport_errors(void **state) {
  (void)state;
  env e;
  env_init(&e);
  assert_int_equal(
      dn_test_recorder_script(&e.rec, "[{\"close\":true},{\"close\":true}]"),
      0);
  CURL *h = easy_for(&e, "/dropped");
  result r = {0};
  assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &r), 0);
  run_until(&e, &r);
  assert_int_equal(r.calls, 1);
  assert_int_not_equal(r.code, CURLE_OK);
  curl_easy_cleanup(h);
  env_close(&e);
}

/* ---- failures that change nothing ---------------------------------------- */

static void refuses_what_it_cannot_do(void **state) {
  (void)state;
  env e;
  env_init(&e);
  /* Not a long option, and the loop's own callbacks. */
  assert_int_equal(dn__curl_loop_set_long(&e.cl, CURLMOPT_SOCKETFUNCTION, 0L),
                   DN_EINVAL);
  assert_int_equal(dn__curl_loop_set_long(&e.cl, CURLMOPT_TIMERDATA, 0L),
                   DN_EINVAL);
  CURL *h = easy_for(&e, "/once");
  result r = {0}, twice = {0};
  assert_int_equal(dn__curl_loop_start(&e.cl, NULL, on_done, &r), DN_EINVAL);
  assert_int_equal(dn__curl_loop_start(&e.cl, h, NULL, &r), DN_EINVAL);
  /* Out of memory: nothing started, no callback. */
  dn_test_fail_alloc_at(1);
  assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &r), DN_ENOMEM);
  dn_test_alloc_reset();
  assert_int_equal(dn__curl_loop_active(&e.cl), 0);
  assert_int_equal(dn__curl_loop_cancel(&e.cl, h), DN_ENOTFOUND);
  /* Started twice: the second call fails and the first still runs. */
  assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &r), 0);
  assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &twice), DN_EINVAL);
  assert_int_equal(dn__curl_loop_active(&e.cl), 1);
  run_until(&e, &r);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 200);
  assert_int_equal(twice.calls, 0);
  curl_easy_cleanup(h);
  env_close(&e);
}

/* ---- cancelling and closing ------------------------------------------- */

/* A cancelled transfer is never reported and its handle can be freed at
 * once; cancelling it again finds nothing. */
static void cancels_without_a_callback(void **state) {
  (void)state;
  env e;
  env_init(&e);
  assert_int_equal(
      dn_test_recorder_script(&e.rec, "[{\"status\":200,\"delay_ms\":1500}]"),
      0);
  CURL *h = easy_for(&e, "/slow");
  result r = {0};
  assert_int_equal(dn__curl_loop_start(&e.cl, h, on_done, &r), 0);
  run_until_recorded(&e, 1);
  assert_int_equal(dn__curl_loop_cancel(&e.cl, h), 0);
  assert_int_equal(dn__curl_loop_active(&e.cl), 0);
  assert_int_equal(dn__curl_loop_cancel(&e.cl, h), DN_ENOTFOUND);
  curl_easy_cleanup(h);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  assert_int_equal(r.calls, 0);
  env_close(&e);
  assert_int_equal(r.calls, 0);
}

/* Closing with transfers in flight: each is reported from the loop with
 * CURLE_ABORTED_BY_CALLBACK, after the close call returned and before
 * closed; a start while closing fails. */
static result cancelled[3];
static env *closing_env;
static int started_while_closing = 1;

static void on_cancelled(void *ud, CURL *easy, CURLcode code) {
  on_done(ud, easy, code);
  CURL *other = curl_easy_init();
  result unused = {0};
  started_while_closing =
      dn__curl_loop_start(&closing_env->cl, other, on_done, &unused);
  curl_easy_cleanup(other);
  curl_easy_cleanup(easy);
}

static void close_reports_what_was_in_flight(void **state) {
  (void)state;
  env e;
  env_init(&e);
  closing_env = &e;
  memset(cancelled, 0, sizeof cancelled);
  assert_int_equal(
      dn_test_recorder_default(&e.rec, "{\"status\":200,\"delay_ms\":1500}"),
      0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(dn__curl_loop_start(&e.cl, easy_for(&e, "/slow"),
                                         on_cancelled, &cancelled[i]),
                     0);
  run_until_recorded(&e, 3);
  dn__curl_loop_close(&e.cl, on_closed, &e);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cancelled[i].calls, 0);
  CURL *late = easy_for(&e, "/late");
  result unused = {0};
  assert_int_equal(dn__curl_loop_start(&e.cl, late, on_done, &unused),
                   DN_ESTATE);
  assert_int_equal(
      dn__curl_loop_set_long(&e.cl, CURLMOPT_MAX_HOST_CONNECTIONS, 1L),
      DN_ESTATE);
  curl_easy_cleanup(late);
  uv_run(&e.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(cancelled[i].calls, 1);
    assert_int_equal(cancelled[i].code, CURLE_ABORTED_BY_CALLBACK);
    assert_true(cancelled[i].order < e.ticks);
  }
  assert_int_equal(started_while_closing, DN_ESTATE);
  assert_int_equal(e.closed, 1);
  dn__curl_loop_close(&e.cl, on_closed, &e); /* again: nothing */
  assert_int_equal(uv_loop_close(&e.loop), 0);
  assert_int_equal(e.closed, 1);
  dn_test_recorder_stop(&e.rec);
}

/* A curl loop that never sent anything closes from the loop too. */
static void closes_unused(void **state) {
  (void)state;
  env e;
  env_init(&e);
  env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reports_each_transfer),
      cmocka_unit_test(reuses_handles_and_connections),
      cmocka_unit_test(reports_transport_errors),
      cmocka_unit_test(refuses_what_it_cannot_do),
      cmocka_unit_test(cancels_without_a_callback),
      cmocka_unit_test(close_reports_what_was_in_flight),
      cmocka_unit_test(closes_unused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
