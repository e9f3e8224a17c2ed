/* test_purge.c - the purger's core against a local recorder: coalescing
 * into batches, the engine's listener, retries with backoff and jitter,
 * Retry-After in both forms, timeouts and dropped connections, failures
 * that reach the report callback and the statistics, retrying failed
 * purges, draining, and credentials that never show in any text the
 * purger produces.
 */
#include <uv.h>

#include "purge_fixture.h"

static const char *const two_tags[] = {"weather", "city-tokyo"};

static dn_purge_backend varnish_at(const char *url) {
  const char *urls[] = {url};
  dn_purge_varnish_options vo = fx_varnish(urls, 1, 0, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, NULL), 0);
  return b;
}

static dn_purge_backend webhook_at(const char *url) {
  const char *urls[] = {url};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, NULL, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, NULL), 0);
  return b;
}

/* ---- batching on a caller's loop --------------------------------------- */

/* A thousand invalidations queued before the loop runs become one batch:
 * one request carrying each key once. The loop is the caller's, and the
 * purger closes cleanly on it. */
static void coalesces_into_one_batch(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.loop = &loop;
  fx_start(&f, varnish_at(f.rec.url), &o);
  char names[50][16];
  const char *all[50];
  for (int i = 0; i < 50; i++) {
    snprintf(names[i], sizeof names[i], "tag-%02d", i);
    all[i] = names[i];
  }
  for (int i = 0; i < 1000; i++) {
    const char *t[] = {names[i % 50], names[(i * 7) % 50]};
    fx_purge(&f, t, 2);
  }
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.invalidations, 1000);
  assert_int_equal(st.queued_tags, 2000);
  while (f.nreports < 1)
    uv_run(&loop, UV_RUN_ONCE);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.batches, 1);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.pending, 0);
  assert_int_equal(f.reports[0].ntags, 50);
  assert_int_equal(f.reports[0].keys, fx_nkeys(DN_CDN_VARNISH, all, 50));
  /* dn_purger_drain refuses the loop thread. */
  assert_int_equal(dn_purger_drain(f.p, 10), DN_ESTATE);
  dn_purger_free(f.p);
  f.p = NULL;
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  char **raw = fx_requests(&f, 1);
  dn_test_recorder_free(raw, 1);
  fx_done(&f);
}

/* ---- the engine's invalidations ------------------------------------------ */

static void listens_to_the_engine(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  dn_engine *e;
  assert_int_equal(dn_engine_new(NULL, &e), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(dn_purger_listen(f.p, e), 0);
  dn_slice tags[] = {dn_slice_from_cstr("weather")};
  assert_int_equal(dn_engine_invalidate_tags(e, tags, 1, NULL), 0);
  const char *uri = "page://self/weather?city=tokyo";
  assert_int_equal(dn_engine_purge(e, uri, strlen(uri), NULL), 0);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.invalidations, 2);
  char **raw = fx_requests(&f, (int)st.requests);
  char tag[DN_URI_TAG_MAX + 1];
  assert_int_equal(dn_uri_tag(uri, strlen(uri), tag, NULL, NULL), 0);
  int saw_weather = 0, saw_uri = 0;
  for (uint64_t i = 0; i < st.requests; i++) {
    saw_weather |= strstr(raw[i], "\"weather\"") != NULL;
    saw_uri |= strstr(raw[i], tag) != NULL;
  }
  assert_true(saw_weather && saw_uri);
  dn_test_recorder_free(raw, (int)st.requests);
  dn_engine_free(e); /* the engine goes first: it cannot unsubscribe */
  fx_done(&f);
}

/* ---- retries ------------------------------------------------------------ */

static void retries_with_backoff_then_delivers(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  f.rand_byte = 0x01;
  assert_int_equal(
      dn_test_recorder_script(&f.rec, "[{\"status\":503,\"body\":\"busy\"},"
                                      "{\"status\":502},{\"status\":500}]"),
      0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.backoff_ms = 40;
  o.max_backoff_ms = 100;
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 2);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  assert_int_equal(f.reports[0].requests, 4);
  assert_int_equal(f.nretries, 3);
  /* Exponential, capped, with jitter in [d/2, d]: 40, 80, then 100. */
  uint64_t caps[] = {40, 80, 100};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(f.retries[i].attempt, (unsigned)i + 1);
    assert_false(f.retries[i].retry_after);
    assert_true(f.retries[i].delay_ms >= caps[i] / 2);
    assert_true(f.retries[i].delay_ms <= caps[i]);
  }
  assert_int_equal(f.retries[0].http_status, 503);
  assert_non_null(strstr(f.retries[0].reason, "HTTP 503: busy"));
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.retries, 3);
  assert_int_equal(st.status_5xx, 3);
  assert_int_equal(st.status_2xx, 1);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.failed, 0);
  fx_done(&f);
}

/* RFC 9110 §10.2.3: Retry-After as delay-seconds and as an HTTP-date. */
static void honours_retry_after(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  f.now = 1700000000000ull; /* Tue, 14 Nov 2023 22:13:20 GMT */
  assert_int_equal(
      dn_test_recorder_script(
          &f.rec, "[{\"status\":429,\"headers\":[[\"Retry-After\",\"1\"]]},"
                  "{\"status\":503,\"headers\":[[\"Retry-After\","
                  "\"Tue, 14 Nov 2023 22:13:22 GMT\"]]},"
                  "{\"status\":503,\"headers\":[[\"retry-after\",\"soon\"]]},"
                  "{\"status\":503,\"headers\":[[\"Retry-After\",\"0\"]]}]"),
      0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 1);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  assert_int_equal(f.nretries, 4);
  assert_int_equal(f.retries[0].http_status, 429);
  assert_true(f.retries[0].retry_after);
  assert_int_equal(f.retries[0].delay_ms, 1000);
  assert_true(f.retries[1].retry_after);
  assert_int_equal(f.retries[1].delay_ms, 2000);
  /* A malformed value falls back to the backoff, and so does 0 (it would
   * otherwise retry at once, over and over). */
  assert_false(f.retries[2].retry_after);
  assert_false(f.retries[3].retry_after);
  assert_true(f.retries[3].delay_ms > 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.retry_after, 2);
  assert_int_equal(st.status_429, 1);
  fx_done(&f);
}

/* A Retry-After beyond max_retry_after_ms is capped. */
static void caps_retry_after(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_script(&f.rec,
                                           "[{\"status\":503,\"headers\":"
                                           "[[\"Retry-After\",\"86400\"]]}]"),
                   0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.max_retry_after_ms = 50;
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 1);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_int_equal(f.retries[0].delay_ms, 50);
  fx_done(&f);
}

/* Timeouts and dropped connections are retried too. */
static void retries_timeouts_and_resets(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(
      dn_test_recorder_script(&f.rec, "[{\"delay_ms\":3000},{\"close\":true}]"),
      0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.timeout_ms = 300;
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 1);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.timeouts, 1);
  assert_int_equal(st.transport_errors, 1);
  assert_int_equal(st.retries, 2);
  assert_int_equal(f.retries[0].http_status, 0);
  fx_done(&f);
}

/* When the retries run out, the batch fails: the report says so, the
 * statistics count it, and a retry of failed purges delivers it later. */
static void exhausted_then_retried(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_default(&f.rec, "{\"status\":503}"), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.max_attempts = 3;
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 2);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  assert_int_equal(f.reports[0].requests, 3);
  assert_int_equal(f.reports[0].failed, 1);
  assert_int_equal(f.reports[0].http_status, 503);
  assert_non_null(strstr(f.reports[0].error, "varnish"));
  assert_non_null(strstr(f.reports[0].error, "HTTP 503"));
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.delivered, 0);
  assert_int_equal(st.failed_entries, 1);
  assert_int_equal(st.retries, 2);
  assert_non_null(strstr(f.logs, "giving up after 3 attempts"));
  assert_int_equal(dn_test_recorder_default(&f.rec, "{\"status\":200}"), 0);
  dn_purger_retry_failed(f.p);
  assert_int_equal(fx_wait_reports(&f, 2), 2);
  assert_true(f.reports[1].delivered);
  assert_int_equal(f.reports[1].ntags, 2);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.failed_entries, 0);
  assert_int_equal(st.delivered, 1);
  fx_done(&f);
}

/* Other 4xx answers are not retried. */
static void rejected_without_retry(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_script(
                       &f.rec, "[{\"status\":403,\"body\":\"forbidden\"}]"),
                   0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 1);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  assert_int_equal(f.reports[0].requests, 1);
  assert_int_equal(f.nretries, 0);
  assert_non_null(strstr(f.reports[0].error, "HTTP 403: forbidden"));
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.status_other, 1);
  fx_done(&f);
}

/* ---- credentials ---------------------------------------------------- */

static int contains(const char *hay, const char *needle) {
  return strstr(hay, needle) != NULL;
}

/* The server echoes the token back; no report, retry reason or log line
 * may carry it. */
static void credentials_never_leak(void **state) {
  (void)state;
  static const char *const secret = "TOPSECRET-fastly-0123456789";
  fx f;
  fx_init(&f);
  assert_int_equal(
      dn_test_recorder_script(
          &f.rec, "[{\"status\":503,\"body\":\"key TOPSECRET-fastly-0123456789"
                  " overloaded\"},{\"status\":401,\"body\":\"bad key: "
                  "TOPSECRET-fastly-0123456789\"}]"),
      0);
  dn_purge_fastly_options fo = fx_fastly(secret, "SVC", f.rec.url, 0, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_FASTLY);
  fx_start(&f, b, &o);
  fx_purge(&f, two_tags, 2);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  assert_false(contains(f.reports[0].error, secret));
  assert_true(contains(f.reports[0].error, "(redacted)"));
  assert_int_equal(f.nretries, 1);
  assert_false(contains(f.retries[0].reason, secret));
  assert_false(contains(f.logs, secret));
  assert_false(contains(f.logs, "TOPSECRET"));
  /* The request itself did carry it. */
  char **raw = fx_requests(&f, 2);
  assert_true(contains(raw[0], "Fastly-Key: TOPSECRET-fastly-0123456789"));
  dn_test_recorder_free(raw, 2);
  fx_done(&f);
}

/* A server that echoes the bare token (Cloudflare sends "Bearer <token>")
 * or Akamai's client and access tokens is redacted too, also when the
 * token sits where the excerpt of the body is cut. */
static void echoed_tokens_never_leak(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(
      dn_test_recorder_script(
          &f.rec,
          "[{\"status\":503,\"body\":\"" /* the token straddles the cut */
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxx"
          " SuperSecretCfToken123\"},"
          "{\"status\":403,\"body\":\"bad token SuperSecretCfToken123\"}]"),
      0);
  dn_purge_cloudflare_options co =
      fx_cloudflare("SuperSecretCfToken123", "abc123", f.rec.url, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_CLOUDFLARE);
  fx_start(&f, b, &o);
  fx_purge(&f, two_tags, 2);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  assert_true(contains(f.reports[0].error, "HTTP 403"));
  assert_true(contains(f.reports[0].error, "(redacted)"));
  assert_false(contains(f.reports[0].error, "SuperSecret"));
  assert_int_equal(f.nretries, 1);
  assert_false(contains(f.retries[0].reason, "SuperSecret"));
  assert_false(contains(f.logs, "SuperSecret"));
  fx_done(&f);

  fx_init(&f);
  assert_int_equal(
      dn_test_recorder_script(
          &f.rec, "[{\"status\":400,\"body\":\"client akab-client-0123456789"
                  " access akab-access-0123456789 key SecretKey0123456789\"}]"),
      0);
  dn_purge_akamai_options ao;
  dn_purge_akamai_options_init(&ao);
  ao.host = "akab-host.luna.akamaiapis.net";
  ao.client_token = "akab-client-0123456789";
  ao.client_secret = "SecretKey0123456789";
  ao.access_token = "akab-access-0123456789";
  ao.api_url = f.rec.url;
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, NULL), 0);
  fx_options(&f, &o, DN_CDN_AKAMAI);
  fx_start(&f, b, &o);
  fx_purge(&f, two_tags, 2);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  assert_true(contains(f.reports[0].error, "HTTP 400"));
  assert_false(contains(f.reports[0].error, "akab-client-0123456789"));
  assert_false(contains(f.reports[0].error, "akab-access-0123456789"));
  assert_false(contains(f.reports[0].error, "SecretKey0123456789"));
  assert_false(contains(f.logs, "0123456789"));
  fx_done(&f);
}

/* ---- queueing ------------------------------------------------------------ */

static void rejects_bad_input(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  fx_start(&f, varnish_at(f.rec.url), &o);
  dn_slice bad[] = {dn_slice_from_cstr("ok"), dn_slice_from_cstr("no space")};
  dn_error err = {0};
  assert_int_equal(dn_purger_purge_tags(f.p, bad, 2, &err), DN_ETAG);
  assert_int_equal(err.line, 1);
  assert_int_equal(err.position, 2);
  dn_slice uris[] = {dn_slice_from_cstr("app://self/ok"),
                     dn_slice_from_cstr("not a uri")};
  assert_int_equal(dn_purger_purge_uris(f.p, uris, 2, &err), DN_EURI);
  assert_int_equal(err.line, 1);
  assert_int_equal(dn_purger_purge_tags(f.p, NULL, 1, &err), DN_EINVAL);
  assert_int_equal(dn_purger_purge_tags(f.p, NULL, 0, &err), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.invalidations, 0);
  assert_int_equal(st.queued_tags, 0);
  assert_int_equal(dn_purger_drain(f.p, 1000), 0);
  assert_int_equal(dn_purger_drain(NULL, 0), DN_EINVAL);
  fx_done(&f);
  dn_purger_free(NULL);
}

/* drain gives up at its deadline; freeing with a request in flight
 * abandons it cleanly. */
static void drain_times_out(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_script(&f.rec, "[{\"delay_ms\":5000}]"), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  fx_start(&f, varnish_at(f.rec.url), &o);
  fx_purge(&f, two_tags, 1);
  assert_int_equal(dn_purger_drain(f.p, 200), DN_ETIMEDOUT);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.pending, 1);
  fx_done(&f); /* frees the purger mid-request */
  assert_int_equal(f.nreports, 0);
}

/* With one request at a time, a batch that needs many still completes. */
static void one_request_at_a_time(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  const char *urls[] = {f.rec.url};
  dn_purge_varnish_options vo = fx_varnish(urls, 1, 0, 64);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  o.max_inflight = 1;
  fx_start(&f, b, &o);
  const char *tags[] = {"a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8"};
  fx_purge(&f, tags, 8);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  assert_true(f.reports[0].requests > 2);
  fx_done(&f);
}

/* ---- options from older and newer programs ------------------------------ */

static void purger_options_of_older_and_newer_programs(void **state) {
  (void)state;
  dn_purger_options o;
  dn_purger_options_init(&o);
  assert_int_equal(o.size, sizeof o);
  o.outbox_dir = "/dev/null/outbox"; /* cannot be created: DN_EIO if read */
  dn_purge_backend b = varnish_at("http://127.0.0.1:9/");
  dn_purger *p = NULL;
  dn_error err;
  assert_int_equal(dn_purger_new(b, &o, &p, &err), DN_EIO);
  /* A program that knew only profile and loop: the outbox past its size is
   * not read (pending purges stay in memory), the tunables it lacks take
   * their defaults. */
  o.size = offsetof(dn_purger_options, outbox_dir);
  assert_int_equal(dn_purger_new(b, &o, &p, &err), 0);
  dn_purger_free(p); /* and the backend with it */
  b = varnish_at("http://127.0.0.1:9/");
  o.size = 0;
  assert_int_equal(dn_purger_new(b, &o, &p, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_purger_options_init"));
  /* A newer program: accepted while the fields this library does not know
   * are zero. */
  union {
    dn_purger_options o;
    unsigned char b[sizeof(dn_purger_options) + 16];
  } newer;
  dn_purger_options_init_size(&newer.o, sizeof newer);
  newer.b[sizeof(dn_purger_options) + 8] = 1;
  assert_int_equal(dn_purger_new(b, &newer.o, &p, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "newer libdonut"));
  newer.b[sizeof(dn_purger_options) + 8] = 0;
  assert_int_equal(dn_purger_new(b, &newer.o, &p, &err), 0);
  dn_purger_free(p);
}

static void backend_options_of_older_programs(void **state) {
  (void)state;
  dn_purge_backend b;
  dn_error err;
  /* Each struct cut before a field that would be refused if it were read:
   * the field keeps its default. Size 0 is refused. */
  dn_purge_fastly_options fo = fx_fastly("tok", "svc", "not a url", 0, 0);
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_ECONFIG);
  fo.size = offsetof(dn_purge_fastly_options, api_url);
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), 0);
  dn_purge_backend_free(&b);
  fo.size = 0;
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_purge_fastly_options_init"));

  dn_purge_cloudflare_options co = fx_cloudflare("tok", "zone", "nope", 0);
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, &err), DN_ECONFIG);
  co.size = offsetof(dn_purge_cloudflare_options, api_url);
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, &err), 0);
  dn_purge_backend_free(&b);
  co.size = 0;
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, &err), DN_EINVAL);

  dn_purge_akamai_options ao;
  dn_purge_akamai_options_init(&ao);
  ao.host = "akab-host.luna.akamaiapis.net";
  ao.client_token = "c";
  ao.client_secret = "s";
  ao.access_token = "a";
  ao.network = "moon";
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), DN_ECONFIG);
  ao.size = offsetof(dn_purge_akamai_options, network);
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), 0);
  dn_purge_backend_free(&b);
  ao.size = 0;
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), DN_EINVAL);

  const char *urls[] = {"http://127.0.0.1:9/"};
  const char *hdr[] = {"NoColon"};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, hdr, 1);
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, &err), DN_ECONFIG);
  wo.size = offsetof(dn_purge_webhook_options, headers);
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, &err), 0);
  dn_purge_backend_free(&b);
  wo.size = 0;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, &err), DN_EINVAL);

  dn_purge_varnish_options vo = fx_varnish(urls, 1, 1, 64);
  vo.size = offsetof(dn_purge_varnish_options, soft);
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, &err), 0);
  dn_purge_backend_free(&b);
  vo.size = 0;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, &err), DN_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(coalesces_into_one_batch),
      cmocka_unit_test(listens_to_the_engine),
      cmocka_unit_test(retries_with_backoff_then_delivers),
      cmocka_unit_test(honours_retry_after),
      cmocka_unit_test(caps_retry_after),
      cmocka_unit_test(retries_timeouts_and_resets),
      cmocka_unit_test(exhausted_then_retried),
      cmocka_unit_test(rejected_without_retry),
      cmocka_unit_test(credentials_never_leak),
      cmocka_unit_test(echoed_tokens_never_leak),
      cmocka_unit_test(rejects_bad_input),
      cmocka_unit_test(drain_times_out),
      cmocka_unit_test(one_request_at_a_time),
      cmocka_unit_test(purger_options_of_older_and_newer_programs),
      cmocka_unit_test(backend_options_of_older_programs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
