/* purge_fixture.h - what the purge tests share: a recorder to purge into,
 * a purger whose reports, retries and logs are captured, and helpers to
 * compute the expected keys independently of the purger.
 *
 * The purger's own thread runs the requests; the captured events are
 * guarded by a mutex and a condition so a test can wait for "n reports"
 * without sleeping.
 */
#ifndef DN_PURGE_FIXTURE_H
#define DN_PURGE_FIXTURE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "donut/purge.h"
#include "recorder.h"
#include "test_support.h"

#define FX_MAX_EVENTS 64
#define FX_TEXT 512

typedef struct fx_report {
  uint64_t id;
  int delivered;
  size_t ntags, nuris, keys;
  unsigned requests, failed;
  int http_status;
  char error[FX_TEXT];
} fx_report;

typedef struct fx_retry {
  unsigned attempt;
  int http_status, retry_after;
  uint64_t delay_ms;
  char reason[FX_TEXT];
} fx_retry;

typedef struct fx {
  dn_test_recorder rec;
  dn_purger *p;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  fx_report reports[FX_MAX_EVENTS];
  int nreports;
  fx_retry retries[FX_MAX_EVENTS];
  int nretries;
  char logs[8192];
  uint64_t now;            /* 0: the real clock */
  unsigned char rand_byte; /* fixed random bytes when not 0 */
} fx;

static inline void fx_on_report(void *ud, const dn_purge_report *r) {
  fx *f = ud;
  pthread_mutex_lock(&f->mu);
  if (f->nreports < FX_MAX_EVENTS) {
    fx_report *o = &f->reports[f->nreports];
    o->id = r->id;
    o->delivered = r->delivered;
    o->ntags = r->ntags;
    o->nuris = r->nuris;
    o->keys = r->keys;
    o->requests = r->requests;
    o->failed = r->failed;
    o->http_status = r->http_status;
    snprintf(o->error, sizeof o->error, "%s", r->error);
  }
  f->nreports++;
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->mu);
}

static inline void fx_on_retry(void *ud, const dn_purge_retry *r) {
  fx *f = ud;
  pthread_mutex_lock(&f->mu);
  if (f->nretries < FX_MAX_EVENTS) {
    fx_retry *o = &f->retries[f->nretries];
    o->attempt = r->attempt;
    o->http_status = r->http_status;
    o->retry_after = r->retry_after;
    o->delay_ms = r->delay_ms;
    snprintf(o->reason, sizeof o->reason, "%s", r->reason);
  }
  f->nretries++;
  pthread_mutex_unlock(&f->mu);
}

static inline void fx_on_log(void *ud, int level, const char *msg) {
  fx *f = ud;
  (void)level;
  pthread_mutex_lock(&f->mu);
  size_t len = strlen(f->logs);
  snprintf(f->logs + len, sizeof f->logs - len, "%s\n", msg);
  pthread_mutex_unlock(&f->mu);
}

static inline uint64_t fx_clock(void *ud) { return ((fx *)ud)->now; }

static inline int fx_random(void *ud, void *buf, size_t n) {
  memset(buf, ((fx *)ud)->rand_byte, n);
  return 0;
}

/* Starts the recorder. */
static inline void fx_init(fx *f) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cond, NULL);
  if (dn_test_recorder_start(&f->rec))
    fail_msg("recorder: %s", f->rec.error);
}

/* Backend options from their fields in declaration order, initialised
 * with their *_options_init (an initialiser list would leave size 0). */
static inline dn_purge_varnish_options fx_varnish(const char *const *urls,
                                                  size_t nurls, int soft,
                                                  size_t max_field_bytes) {
  dn_purge_varnish_options o;
  dn_purge_varnish_options_init(&o);
  o.urls = urls;
  o.nurls = nurls;
  o.soft = soft;
  o.max_field_bytes = max_field_bytes;
  return o;
}

static inline dn_purge_fastly_options fx_fastly(const char *token,
                                                const char *service,
                                                const char *api_url, int soft,
                                                size_t max_keys) {
  dn_purge_fastly_options o;
  dn_purge_fastly_options_init(&o);
  o.token = token;
  o.service = service;
  o.api_url = api_url;
  o.soft = soft;
  o.max_keys = max_keys;
  return o;
}

static inline dn_purge_cloudflare_options fx_cloudflare(const char *token,
                                                        const char *zone,
                                                        const char *api_url,
                                                        size_t max_tags) {
  dn_purge_cloudflare_options o;
  dn_purge_cloudflare_options_init(&o);
  o.token = token;
  o.zone = zone;
  o.api_url = api_url;
  o.max_tags = max_tags;
  return o;
}

static inline dn_purge_webhook_options fx_webhook(const char *const *urls,
                                                  size_t nurls,
                                                  const char *const *headers,
                                                  size_t nheaders) {
  dn_purge_webhook_options o;
  dn_purge_webhook_options_init(&o);
  o.urls = urls;
  o.nurls = nurls;
  o.headers = headers;
  o.nheaders = nheaders;
  return o;
}

/* Options wired to the fixture's callbacks, with short retry delays. */
static inline void fx_options(fx *f, dn_purger_options *o,
                              dn_cdn_profile profile) {
  dn_purger_options_init(o);
  o->profile = profile;
  o->window_ms = 20;
  o->backoff_ms = 20;
  o->max_backoff_ms = 100;
  o->timeout_ms = 5000;
  o->report = fx_on_report;
  o->report_ud = f;
  o->on_retry = fx_on_retry;
  o->retry_ud = f;
  o->log = fx_on_log;
  o->log_ud = f;
  if (f->now) {
    o->now_ms = fx_clock;
    o->clock_ud = f;
  }
  if (f->rand_byte) {
    o->random = fx_random;
    o->random_ud = f;
  }
}

static inline void fx_start(fx *f, dn_purge_backend b,
                            const dn_purger_options *o) {
  dn_error err = {0};
  int rc = dn_purger_new(b, o, &f->p, &err);
  if (rc)
    fail_msg("dn_purger_new: %s (%s)", dn_strerror(rc), err.text);
}

/* Waits (up to 60 s) until n reports arrived; returns how many did. */
static inline int fx_wait_reports(fx *f, int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 60;
  pthread_mutex_lock(&f->mu);
  while (f->nreports < n &&
         pthread_cond_timedwait(&f->cond, &f->mu, &until) == 0)
    ;
  int got = f->nreports;
  pthread_mutex_unlock(&f->mu);
  return got;
}

static inline void fx_done(fx *f) {
  dn_purger_free(f->p);
  f->p = NULL;
  dn_test_recorder_stop(&f->rec);
  pthread_cond_destroy(&f->cond);
  pthread_mutex_destroy(&f->mu);
}

static inline void fx_purge(fx *f, const char *const *tags, size_t n) {
  dn_slice s[256];
  for (size_t i = 0; i < n; i++)
    s[i] = dn_slice_from_cstr(tags[i]);
  dn_error err = {0};
  int rc = dn_purger_purge_tags(f->p, s, n, &err);
  if (rc)
    fail_msg("purge: %s (%s)", dn_strerror(rc), err.text);
}

/* Fetches exactly `n` recorded requests (waiting for them). */
static inline char **fx_requests(fx *f, int n) {
  char **raw = NULL;
  int got = dn_test_recorder_requests(&f->rec, (size_t)n, 30000, &raw);
  if (got != n)
    fail_msg("expected %d requests, got %d (%s)", n, got, f->rec.error);
  return raw;
}

static int fx_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys dn_cdn_purge_keys gives for the tags (sorted and deduplicated
 * first, as the purger does), as one JSON array text ["a","b"]. */
static inline char *fx_keys_json(dn_cdn_profile p, const char *const *tags,
                                 size_t n, size_t from, size_t count) {
  char **sorted = calloc(n ? n : 1, sizeof *sorted);
  dn_slice s[1024];
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    sorted[i] = (char *)tags[i];
  qsort(sorted, n, sizeof *sorted, fx_cmp_str);
  for (size_t i = 0; i < n; i++)
    if (i == 0 || strcmp(sorted[i - 1], sorted[i]) != 0)
      s[m++] = dn_slice_from_cstr(sorted[i]);
  dn_slice *keys = NULL;
  size_t nkeys = 0;
  assert_int_equal(dn_cdn_purge_keys(p, s, m, &keys, &nkeys, NULL), 0);
  size_t cap = 16;
  for (size_t i = 0; i < nkeys; i++)
    cap += keys[i].len + 3;
  char *out = malloc(cap), *o = out;
  *o++ = '[';
  for (size_t i = from; i < nkeys && i < from + count; i++)
    o += snprintf(o, cap - (size_t)(o - out), "%s\"%.*s\"", i > from ? "," : "",
                  (int)keys[i].len, keys[i].ptr);
  *o++ = ']';
  *o = '\0';
  dn_free(keys);
  free(sorted);
  return out;
}

/* Number of purge keys for the tags. */
static inline size_t fx_nkeys(dn_cdn_profile p, const char *const *tags,
                              size_t n) {
  dn_slice s[1024];
  for (size_t i = 0; i < n; i++)
    s[i] = dn_slice_from_cstr(tags[i]);
  dn_slice *keys = NULL;
  size_t nkeys = 0;
  assert_int_equal(dn_cdn_purge_keys(p, s, n, &keys, &nkeys, NULL), 0);
  dn_free(keys);
  return nkeys;
}

#endif
