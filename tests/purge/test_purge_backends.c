/* test_purge_backends.c - the exact requests each backend sends, checked
 * byte for byte against a local recorder: Fastly, Cloudflare, Akamai
 * (with an EdgeGrid signature computed here with OpenSSL, independently
 * of the library), Varnish and the webhook; how each splits a big batch
 * within its API's limits; and a custom backend through the ops table.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "purge_fixture.h"
#include "purge_internal.h"

static const char *const weather_tags[] = {"weather", "city-tokyo"};

static void expect_request(const char *raw, const char *expected) {
  if (strcmp(raw, expected) != 0)
    fail_msg("request differs.\n--- got:\n%s\n--- expected:\n%s", raw,
             expected);
}

static const char *body_of(const char *raw) {
  const char *b = strstr(raw, "\r\n\r\n");
  assert_non_null(b);
  return b + 4;
}

/* The value of header `name` (case-sensitive, as sent) into out. */
static int header_of(const char *raw, const char *name, char *out, size_t cap) {
  char pat[128];
  snprintf(pat, sizeof pat, "\r\n%s: ", name);
  const char *h = strstr(raw, pat), *end;
  if (!h || h > body_of(raw))
    return -1;
  h += strlen(pat);
  end = strstr(h, "\r\n");
  snprintf(out, cap, "%.*s", (int)(end - h), h);
  return 0;
}

/* Appends the strings of array `field` in each body to one list. */
static size_t collect_keys(char **raw, int n, const char *field, char ***out) {
  size_t count = 0;
  char **keys = NULL;
  for (int i = 0; i < n; i++) {
    json_t *o = json_loads(body_of(raw[i]), 0, NULL);
    json_t *a = json_object_get(o, field);
    assert_true(json_is_array(a));
    for (size_t k = 0; k < json_array_size(a); k++) {
      keys = realloc(keys, (count + 1) * sizeof *keys);
      keys[count++] = strdup(json_string_value(json_array_get(a, k)));
    }
    json_decref(o);
  }
  *out = keys;
  return count;
}

static void free_keys(char **k, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(k[i]);
  free(k);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks that the keys sent are exactly dn_cdn_purge_keys of the tags,
 * each once (requests run concurrently, so their order may vary). */
static void expect_keys(dn_cdn_profile p, const char *const *tags, size_t n,
                        char **got, size_t ngot) {
  char *want = fx_keys_json(p, tags, n, 0, (size_t)-1);
  json_t *a = json_loads(want, 0, NULL);
  assert_int_equal(json_array_size(a), ngot);
  char **w = calloc(ngot + 1, sizeof *w);
  for (size_t i = 0; i < ngot; i++)
    w[i] = (char *)json_string_value(json_array_get(a, i));
  qsort(w, ngot, sizeof *w, cmp_str);
  qsort(got, ngot, sizeof *got, cmp_str);
  for (size_t i = 0; i < ngot; i++) {
    assert_string_equal(w[i], got[i]);
    if (i)
      assert_true(strcmp(got[i - 1], got[i]) != 0);
  }
  free(w);
  json_decref(a);
  free(want);
}

/* n distinct tags "<prefix>-<i>" padded to len bytes. */
static char **make_tags(const char *prefix, size_t n, size_t len) {
  char **t = calloc(n, sizeof *t);
  for (size_t i = 0; i < n; i++) {
    t[i] = malloc(len + 1);
    int w = snprintf(t[i], len + 1, "%s-%05zu-", prefix, i);
    memset(t[i] + w, 'x', len - (size_t)w);
    t[i][len] = '\0';
  }
  return t;
}

static void purge_many(fx *f, char **tags, size_t n) {
  dn_slice *s = calloc(n, sizeof *s);
  for (size_t i = 0; i < n; i++)
    s[i] = dn_slice_from_cstr(tags[i]);
  dn_error err = {0};
  assert_int_equal(dn_purger_purge_tags(f->p, s, n, &err), 0);
  free(s);
}

static void free_tags(char **t, size_t n) { free_keys(t, n); }

/* ---- Fastly --------------------------------------------------------- */

static void fastly_exact(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  char api[128];
  snprintf(api, sizeof api, "%s/", f.rec.url); /* a trailing slash is fine */
  dn_purge_fastly_options fo =
      fx_fastly("fastly-token-123", "SVC42abc", api, 0, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_FASTLY);
  fx_start(&f, b, &o);
  fx_purge(&f, weather_tags, 2);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  char *keys = fx_keys_json(DN_CDN_FASTLY, weather_tags, 2, 0, 1000);
  char body[4096], expected[8192];
  snprintf(body, sizeof body, "{\"surrogate_keys\":%s}", keys);
  snprintf(expected, sizeof expected,
           "POST /service/SVC42abc/purge HTTP/1.1\r\n"
           "Host: 127.0.0.1:%d\r\n"
           "User-Agent: donut/" DN_VERSION_STRING "\r\n"
           "Fastly-Key: fastly-token-123\r\n"
           "Accept: application/json\r\n"
           "Content-Type: application/json\r\n"
           "Content-Length: %zu\r\n"
           "\r\n%s",
           f.rec.port, strlen(body), body);
  expect_request(raw[0], expected);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  assert_int_equal(f.reports[0].ntags, 2);
  assert_int_equal(f.reports[0].keys, fx_nkeys(DN_CDN_FASTLY, weather_tags, 2));
  dn_test_recorder_free(raw, 1);
  free(keys);
  fx_done(&f);
}

/* 300 tags make over a thousand keys: batches of at most 256, soft. */
static void fastly_batches_of_256_soft(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  dn_purge_fastly_options fo = fx_fastly("tok-abcdef", "SVC", f.rec.url, 1, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_FASTLY);
  fx_start(&f, b, &o);
  char **tags = make_tags("article", 300, 20);
  purge_many(&f, tags, 300);
  assert_int_equal(dn_purger_drain(f.p, 60000), 0);
  size_t nkeys = fx_nkeys(DN_CDN_FASTLY, (const char *const *)tags, 300);
  int nreq = (int)((nkeys + 255) / 256);
  char **raw = fx_requests(&f, nreq);
  char v[64];
  int partial = 0;
  for (int i = 0; i < nreq; i++) {
    assert_int_equal(header_of(raw[i], "Fastly-Soft-Purge", v, sizeof v), 0);
    assert_string_equal(v, "1");
    char **k;
    size_t n = collect_keys(&raw[i], 1, "surrogate_keys", &k);
    assert_true(n <= 256 && n > 0);
    partial += n < 256; /* all are full but one, in any order */
    assert_true(partial <= 1);
    free_keys(k, n);
  }
  char **all;
  size_t nall = collect_keys(raw, nreq, "surrogate_keys", &all);
  expect_keys(DN_CDN_FASTLY, (const char *const *)tags, 300, all, nall);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.requests, (uint64_t)nreq);
  assert_int_equal(st.keys, nkeys);
  assert_int_equal(st.batches, 1);
  free_keys(all, nall);
  dn_test_recorder_free(raw, nreq);
  free_tags(tags, 300);
  fx_done(&f);
}

/* ---- Cloudflare -------------------------------------------------- */

static void cloudflare_exact(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  dn_purge_cloudflare_options co =
      fx_cloudflare("cf-token-xyz", "023e105f4ecef8ad9ca31a8", f.rec.url, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_CLOUDFLARE);
  fx_start(&f, b, &o);
  fx_purge(&f, weather_tags, 2);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  char *keys = fx_keys_json(DN_CDN_CLOUDFLARE, weather_tags, 2, 0, 1000);
  char body[4096], expected[8192];
  snprintf(body, sizeof body, "{\"tags\":%s}", keys);
  snprintf(expected, sizeof expected,
           "POST /client/v4/zones/023e105f4ecef8ad9ca31a8/purge_cache "
           "HTTP/1.1\r\n"
           "Host: 127.0.0.1:%d\r\n"
           "User-Agent: donut/" DN_VERSION_STRING "\r\n"
           "Authorization: Bearer cf-token-xyz\r\n"
           "Accept: application/json\r\n"
           "Content-Type: application/json\r\n"
           "Content-Length: %zu\r\n"
           "\r\n%s",
           f.rec.port, strlen(body), body);
  expect_request(raw[0], expected);
  dn_test_recorder_free(raw, 1);
  free(keys);
  fx_done(&f);
}

/* The per-request tag limit: 100 by default, 30 when configured. */
static void cloudflare_tag_limit(void **state) {
  (void)state;
  size_t limits[] = {0, 30};
  for (int l = 0; l < 2; l++) {
    fx f;
    fx_init(&f);
    dn_purge_cloudflare_options co =
        fx_cloudflare("tok-abcdef", "zone1", f.rec.url, limits[l]);
    dn_purge_backend b;
    assert_int_equal(dn_purge_backend_cloudflare(&co, &b, NULL), 0);
    dn_purger_options o;
    fx_options(&f, &o, DN_CDN_CLOUDFLARE);
    fx_start(&f, b, &o);
    char **tags = make_tags("t", 40, 12);
    purge_many(&f, tags, 40);
    assert_int_equal(dn_purger_drain(f.p, 60000), 0);
    size_t max = limits[l] ? limits[l] : 100;
    size_t nkeys = fx_nkeys(DN_CDN_CLOUDFLARE, (const char *const *)tags, 40);
    int nreq = (int)((nkeys + max - 1) / max);
    char **raw = fx_requests(&f, nreq);
    for (int i = 0; i < nreq; i++) {
      char **k;
      size_t n = collect_keys(&raw[i], 1, "tags", &k);
      assert_true(n > 0 && n <= max);
      free_keys(k, n);
    }
    char **all;
    size_t nall = collect_keys(raw, nreq, "tags", &all);
    expect_keys(DN_CDN_CLOUDFLARE, (const char *const *)tags, 40, all, nall);
    free_keys(all, nall);
    dn_test_recorder_free(raw, nreq);
    free_tags(tags, 40);
    fx_done(&f);
  }
}

/* ---- Akamai -------------------------------------------------------- */

static void b64(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* EdgeGrid v1, written out here from the specification. */
static void expected_auth(const char *ctok, const char *secret,
                          const char *atok, const char *ts, const char *nonce,
                          const char *host, const char *path, const char *body,
                          char *out, size_t cap) {
  unsigned char mac[32], digest[32];
  unsigned int ml;
  char key[64], hash[64] = "", sig[64], data[1 << 17];
  char auth[512];
  snprintf(auth, sizeof auth,
           "EG1-HMAC-SHA256 client_token=%s;access_token=%s;timestamp=%s;"
           "nonce=%s;",
           ctok, atok, ts, nonce);
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)ts,
       strlen(ts), mac, &ml);
  b64(mac, ml, key);
  if (*body) {
    SHA256((const unsigned char *)body, strlen(body), digest);
    b64(digest, 32, hash);
  }
  snprintf(data, sizeof data, "POST\thttp\t%s\t%s\t\t%s\t%s", host, path, hash,
           auth);
  HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)data,
       strlen(data), mac, &ml);
  b64(mac, ml, sig);
  snprintf(out, cap, "%ssignature=%s", auth, sig);
}

static const char *const AK_CTOK = "akab-client-token-1234-abcd";
static const char *const AK_SECRET = "SeCrEt0123456789abcdefghijKLMNOPQRSTUV=";
static const char *const AK_ATOK = "akab-access-token-5678-efgh";

static dn_purge_backend akamai_backend(fx *f, size_t max_request) {
  dn_purge_akamai_options ao;
  dn_purge_akamai_options_init(&ao);
  ao.host = "akab-host-0000.luna.akamaiapis.net";
  ao.client_token = AK_CTOK;
  ao.client_secret = AK_SECRET;
  ao.access_token = AK_ATOK;
  ao.api_url = f->rec.url;
  ao.max_request_bytes = max_request;
  dn_purge_backend b;
  dn_error err = {0};
  if (dn_purge_backend_akamai(&ao, &b, &err))
    fail_msg("akamai: %s", err.text);
  return b;
}

static void akamai_exact_signature(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  f.now = 1700000000123ull; /* 2023-11-14 22:13:20 UTC */
  f.rand_byte = 0xab;
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_AKAMAI);
  fx_start(&f, akamai_backend(&f, 0), &o);
  fx_purge(&f, weather_tags, 2);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  char *keys = fx_keys_json(DN_CDN_AKAMAI, weather_tags, 2, 0, 1000);
  char body[4096], host[64], auth[1024], expected[8192];
  snprintf(body, sizeof body, "{\"objects\":%s}", keys);
  snprintf(host, sizeof host, "127.0.0.1:%d", f.rec.port);
  expected_auth(AK_CTOK, AK_SECRET, AK_ATOK, "20231114T22:13:20+0000",
                "abababab-abab-abab-abab-abababababab", host,
                "/ccu/v3/invalidate/tag/production", body, auth, sizeof auth);
  snprintf(expected, sizeof expected,
           "POST /ccu/v3/invalidate/tag/production HTTP/1.1\r\n"
           "Host: %s\r\n"
           "User-Agent: donut/" DN_VERSION_STRING "\r\n"
           "Accept: application/json\r\n"
           "Content-Type: application/json\r\n"
           "Authorization: %s\r\n"
           "Content-Length: %zu\r\n"
           "\r\n%s",
           host, auth, strlen(body), body);
  expect_request(raw[0], expected);
  dn_test_recorder_free(raw, 1);
  free(keys);
  fx_done(&f);
}

/* A request that waits for a slot is signed when it goes out, not when
 * its batch was planned: Akamai refuses timestamps more than 30 s off. */
static void akamai_signs_when_sent(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  f.now = 1700000000000ull; /* 2023-11-14 22:13:20 UTC */
  assert_int_equal(dn_test_recorder_script(&f.rec, "[{\"delay_ms\":1000}]"), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_AKAMAI);
  o.max_inflight = 1;
  fx_start(&f, akamai_backend(&f, 200), &o);
  char **tags = make_tags("product", 30, 20);
  purge_many(&f, tags, 30);
  struct timespec pause = {0, 300 * 1000000L};
  nanosleep(&pause, NULL); /* the first request is out, the rest wait */
  f.now += 120000;         /* two minutes later */
  assert_int_equal(dn_purger_drain(f.p, 60000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_true(st.requests >= 3);
  char **raw = fx_requests(&f, (int)st.requests);
  for (uint64_t i = 0; i < st.requests; i++) {
    char got[1024];
    assert_int_equal(header_of(raw[i], "Authorization", got, sizeof got), 0);
    assert_non_null(strstr(got, i == 0 ? "timestamp=20231114T22:13:20+0000;"
                                       : "timestamp=20231114T22:15:20+0000;"));
  }
  dn_test_recorder_free(raw, (int)st.requests);
  free_tags(tags, 30);
  fx_done(&f);
}

/* Known answers published with Akamai's reference clients (testdata.json
 * of the EdgeGrid clients): a GET and a POST signed with max-body 2048. */
static void edgegrid_known_answers(void **state) {
  (void)state;
  const char *ct = "akab-client-token-xxx-xxxxxxxxxxxxxxxx";
  const char *at = "akab-access-token-xxx-xxxxxxxxxxxxxxxx";
  const char *sec = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=";
  const char *host =
      "akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net";
  const char *ts = "20140321T19:34:21+0000";
  const char *nonce = "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  char out[1024];
  assert_int_equal(dn__edgegrid_sign(ct, sec, at, 2048, "GET", "https", host,
                                     "/", "", 0, ts, nonce, out, sizeof out),
                   0);
  assert_non_null(strstr(out, "signature=tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LTh"
                              "iAOhMxYU="));
  const char *data = "datadatadatadatadatadatadatadata";
  assert_int_equal(dn__edgegrid_sign(ct, sec, at, 2048, "POST", "https", host,
                                     "/testapi/v1/t3", data, strlen(data), ts,
                                     nonce, out, sizeof out),
                   0);
  assert_string_equal(out,
                      "EG1-HMAC-SHA256 "
                      "client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;"
                      "access_token=akab-access-token-xxx-xxxxxxxxxxxxxxxx;"
                      "timestamp=20140321T19:34:21+0000;"
                      "nonce=nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx;"
                      "signature=hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4=");
  /* An empty POST body has no content hash. */
  assert_int_equal(dn__edgegrid_sign(ct, sec, at, 2048, "POST", "https", host,
                                     "/testapi/v1/t6", "", 0, ts, nonce, out,
                                     sizeof out),
                   0);
  assert_non_null(strstr(out, "signature=1gEDxeQGD5GovIkJJGcBaKnZ+VaPtrc4qBU"
                              "HixjsPCQ="));
  char ts2[24];
  dn__edgegrid_timestamp(1395430461000ull, ts2);
  assert_string_equal(ts2, ts);
  assert_int_equal(dn__edgegrid_sign(ct, sec, at, 2048, "GET", "https", host,
                                     "/", "", 0, ts, nonce, out, 40),
                   DN_ETOOBIG);
}

/* Thousands of long tags: every body stays within 50,000 bytes, every
 * request carries its own valid signature, and all keys arrive once. */
static void akamai_body_limit(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  f.now = 1700000000000ull;
  f.rand_byte = 0x5a;
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_AKAMAI);
  fx_start(&f, akamai_backend(&f, 0), &o);
  char **tags = make_tags("product", 1000, 100);
  purge_many(&f, tags, 1000);
  assert_int_equal(dn_purger_drain(f.p, 60000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_true(st.requests >= 3);
  char **raw = fx_requests(&f, (int)st.requests);
  char host[64];
  snprintf(host, sizeof host, "127.0.0.1:%d", f.rec.port);
  int partial = 0;
  for (uint64_t i = 0; i < st.requests; i++) {
    const char *body = body_of(raw[i]);
    assert_true(strlen(body) <= 50000);
    partial += strlen(body) < 49000; /* all are full but one */
    assert_true(partial <= 1);
    char got[1024], want[1024];
    assert_int_equal(header_of(raw[i], "Authorization", got, sizeof got), 0);
    expected_auth(AK_CTOK, AK_SECRET, AK_ATOK, "20231114T22:13:20+0000",
                  "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a", host,
                  "/ccu/v3/invalidate/tag/production", body, want, sizeof want);
    assert_string_equal(got, want);
  }
  char **all;
  size_t nall = collect_keys(raw, (int)st.requests, "objects", &all);
  expect_keys(DN_CDN_AKAMAI, (const char *const *)tags, 1000, all, nall);
  free_keys(all, nall);
  dn_test_recorder_free(raw, (int)st.requests);
  free_tags(tags, 1000);
  fx_done(&f);
}

/* ---- Varnish ------------------------------------------------------------ */

/* Two servers each get the PURGE; soft purges use xkey-softpurge. */
static void varnish_two_servers(void **state) {
  (void)state;
  for (int soft = 0; soft < 2; soft++) {
    fx f;
    fx_init(&f);
    dn_test_recorder second;
    assert_int_equal(dn_test_recorder_start(&second), 0);
    char u1[96], u2[96];
    snprintf(u1, sizeof u1, "%s/", f.rec.url);
    snprintf(u2, sizeof u2, "%s", second.url);
    const char *urls[] = {u1, u2};
    dn_purge_varnish_options vo = fx_varnish(urls, 2, soft, 0);
    dn_purge_backend b;
    assert_int_equal(dn_purge_backend_varnish(&vo, &b, NULL), 0);
    dn_purger_options o;
    fx_options(&f, &o, DN_CDN_VARNISH);
    fx_start(&f, b, &o);
    fx_purge(&f, weather_tags, 2);
    assert_int_equal(dn_purger_drain(f.p, 30000), 0);
    char *keys = fx_keys_json(DN_CDN_VARNISH, weather_tags, 2, 0, 1000);
    /* ["a","b"] -> a b */
    char field[2048], *o2 = field;
    for (const char *k = keys + 1; *k && *k != ']'; k++)
      if (*k != '"')
        *o2++ = *k == ',' ? ' ' : *k;
    *o2 = '\0';
    dn_test_recorder *recs[] = {&f.rec, &second};
    for (int r = 0; r < 2; r++) {
      char **raw = NULL;
      assert_int_equal(dn_test_recorder_requests(recs[r], 1, 30000, &raw), 1);
      char expected[4096];
      snprintf(expected, sizeof expected,
               "PURGE / HTTP/1.1\r\n"
               "Host: 127.0.0.1:%d\r\n"
               "User-Agent: donut/" DN_VERSION_STRING "\r\n"
               "Accept: */*\r\n"
               "%s: %s\r\n"
               "\r\n",
               recs[r]->port, soft ? "xkey-softpurge" : "xkey", field);
      expect_request(raw[0], expected);
      dn_test_recorder_free(raw, 1);
    }
    free(keys);
    dn_test_recorder_stop(&second);
    fx_done(&f);
  }
}

/* Keys that do not fit one field are split over several requests. */
static void varnish_field_limit(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  const char *urls[] = {f.rec.url};
  dn_purge_varnish_options vo = fx_varnish(urls, 1, 0, 300);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_VARNISH);
  fx_start(&f, b, &o);
  char **tags = make_tags("k", 50, 30);
  purge_many(&f, tags, 50);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  char **raw = fx_requests(&f, (int)st.requests);
  size_t total = 0;
  for (uint64_t i = 0; i < st.requests; i++) {
    char v[1024];
    assert_int_equal(header_of(raw[i], "xkey", v, sizeof v), 0);
    assert_true(strlen(v) <= 300);
    total += 1;
    for (char *c = v; *c; c++)
      total += *c == ' ';
  }
  assert_int_equal(total,
                   fx_nkeys(DN_CDN_VARNISH, (const char *const *)tags, 50));
  dn_test_recorder_free(raw, (int)st.requests);
  free_tags(tags, 50);
  fx_done(&f);
}

/* ---- webhook ---------------------------------------------------------- */

static void webhook_body(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  char url[128];
  snprintf(url, sizeof url, "%s/hooks/purge?src=donut", f.rec.url);
  const char *urls[] = {url};
  const char *headers[] = {"Authorization: Bearer hook-secret-42"};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, headers, 1);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  fx_start(&f, b, &o);
  dn_slice uris[] = {dn_slice_from_cstr("app://self/weather?city=tokyo")};
  assert_int_equal(dn_purger_purge_uris(f.p, uris, 1, NULL), 0);
  fx_purge(&f, weather_tags, 1);
  /* Both calls are in the window: one batch. */
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  char **raw = fx_requests(&f, (int)st.requests);
  char tag[DN_URI_TAG_MAX + 1];
  assert_int_equal(dn_uri_tag(uris[0].ptr, uris[0].len, tag, NULL, NULL), 0);
  const char *tags[] = {"weather", tag};
  int last = (int)st.requests - 1;
  json_t *body = json_loads(body_of(raw[last]), 0, NULL);
  assert_non_null(body);
  json_t *jt = json_object_get(body, "tags"),
         *ju = json_object_get(body, "uris");
  if (st.batches == 1) {
    assert_int_equal(json_array_size(jt), 2);
    assert_int_equal(json_array_size(ju), 1);
    assert_string_equal(json_string_value(json_array_get(ju, 0)),
                        "app://self/weather?city=tokyo");
    char **k;
    size_t n = collect_keys(&raw[last], 1, "keys", &k);
    expect_keys(DN_CDN_GENERIC, tags, 2, k, n);
    free_keys(k, n);
  }
  json_decref(body);
  char v[256];
  assert_int_equal(header_of(raw[0], "Authorization", v, sizeof v), 0);
  assert_string_equal(v, "Bearer hook-secret-42");
  assert_int_equal(header_of(raw[0], "Content-Type", v, sizeof v), 0);
  assert_string_equal(v, "application/json");
  assert_int_equal(
      strncmp(raw[0], "POST /hooks/purge?src=donut HTTP/1.1\r\n", 38), 0);
  dn_test_recorder_free(raw, (int)st.requests);
  fx_done(&f);
}

/* With a profile that emits no tag field there are no keys, and the
 * webhook still hears about the tags. */
static void webhook_without_keys(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  const char *urls[] = {f.rec.url};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, NULL, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, NULL), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_NONE);
  fx_start(&f, b, &o);
  fx_purge(&f, weather_tags, 2);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  assert_string_equal(body_of(raw[0]),
                      "{\"tags\":[\"city-tokyo\",\"weather\"],\"keys\":[],"
                      "\"uris\":[]}");
  dn_test_recorder_free(raw, 1);
  fx_done(&f);
}

/* ---- a backend of the application's own --------------------------------- */

typedef struct custom {
  char url[128];
  int destroyed;
} custom;

static size_t custom_targets(void *self) {
  (void)self;
  return 1;
}

/* One key per request, as a query parameter (like Bunny's purge API). */
static int custom_build(void *self, const dn_purge_batch *b, dn_purge_req *r,
                        size_t *used) {
  custom *c = self;
  char url[1024];
  snprintf(url, sizeof url, "%s/purge?tag=%.*s", c->url, (int)b->keys[0].len,
           b->keys[0].ptr);
  int rc = dn_purge_req_set_method(r, "POST");
  if (rc == 0)
    rc = dn_purge_req_set_url(r, url);
  if (rc == 0)
    rc = dn_purge_req_add_secret_header(r, "AccessKey", "custom-key-777");
  assert_int_equal(dn_purge_req_add_header(r, "X-Bad", "a\r\nInjected: 1"),
                   DN_EHEADER);
  assert_int_equal(dn_purge_req_add_header(r, "Bad Name", "x"), DN_EHEADER);
  assert_int_equal(dn_purge_req_set_url(r, "ftp://x/"), DN_EINVAL);
  *used = 1;
  return rc;
}

static void custom_destroy(void *self) { ((custom *)self)->destroyed = 1; }

static const dn_purger_ops custom_ops = {
    DN_PURGER_OPS_VERSION, "custom",       0,   custom_targets,
    custom_build,          custom_destroy, NULL};

static void custom_backend(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  custom c = {{0}, 0};
  snprintf(c.url, sizeof c.url, "%s", f.rec.url);
  dn_purge_backend b = {&custom_ops, &c};
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_BUNNY);
  fx_start(&f, b, &o);
  assert_string_equal(dn_purger_name(f.p), "custom");
  const char *one[] = {"news"};
  fx_purge(&f, one, 1);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  size_t n = fx_nkeys(DN_CDN_BUNNY, one, 1);
  char **raw = fx_requests(&f, (int)n);
  int found = 0; /* requests run concurrently: any order */
  for (size_t i = 0; i < n; i++) {
    found += strncmp(raw[i], "POST /purge?tag=news HTTP/1.1\r\n", 31) == 0;
    assert_non_null(strstr(raw[i], "\r\nAccessKey: custom-key-777\r\n"));
  }
  assert_int_equal(found, 1);
  dn_test_recorder_free(raw, (int)n);
  fx_done(&f);
  assert_int_equal(c.destroyed, 1);
  /* An incomplete table is refused and stays the caller's. */
  dn_purger_ops bad = custom_ops;
  bad.build = NULL;
  dn_purge_backend bb = {&bad, &c};
  dn_purger *p = NULL;
  c.destroyed = 0;
  assert_int_equal(dn_purger_new(bb, NULL, &p, NULL), DN_EINVAL);
  assert_null(p);
  assert_int_equal(c.destroyed, 0);
}

/* ---- constructors ----------------------------------------------------- */

static void bad_backend_options(void **state) {
  (void)state;
  dn_purge_backend b;
  dn_error err;
  dn_purge_fastly_options fo = fx_fastly("", "svc", NULL, 0, 0);
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_ECONFIG);
  fo.token = "tok";
  fo.service = "svc/../x";
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_ECONFIG);
  fo.service = "svc";
  fo.api_url = "api.fastly.com";
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_ECONFIG);
  fo.api_url = NULL;
  fo.token = "bad\ntoken";
  assert_int_equal(dn_purge_backend_fastly(&fo, &b, &err), DN_ECONFIG);
  assert_null(strstr(err.text, "bad"));
  dn_purge_cloudflare_options co = fx_cloudflare("tok", "", NULL, 0);
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, &err), DN_ECONFIG);
  co.zone = "z1";
  co.max_tags = 5000;
  assert_int_equal(dn_purge_backend_cloudflare(&co, &b, &err), DN_ECONFIG);
  dn_purge_varnish_options vo = fx_varnish(NULL, 0, 0, 0);
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, &err), DN_ECONFIG);
  const char *bad_urls[] = {"http://a b/"};
  vo.urls = bad_urls;
  vo.nurls = 1;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, &err), DN_ECONFIG);
  dn_purge_akamai_options ao;
  dn_purge_akamai_options_init(&ao);
  ao.host = "h.example";
  ao.client_token = "c";
  ao.client_secret = "s";
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), DN_ECONFIG);
  ao.access_token = "a";
  ao.network = "moon";
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), DN_ECONFIG);
  ao.network = "staging";
  ao.max_request_bytes = 60000;
  assert_int_equal(dn_purge_backend_akamai(&ao, &b, &err), DN_ECONFIG);
  const char *hdr[] = {"NoColon"};
  const char *urls[] = {"https://hooks.example/x"};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, hdr, 1);
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, &err), DN_ECONFIG);
}

static const char *const oom_urls[] = {"http://127.0.0.1:1/",
                                       "http://127.0.0.1:2/"};
static const char *const oom_headers[] = {"X-A: 1", "Authorization: t"};

static int make_each_backend(void *ud) {
  (void)ud;
  dn_purge_backend b;
  dn_purge_varnish_options vo = fx_varnish(oom_urls, 2, 0, 0);
  dn_purge_fastly_options fo = fx_fastly("tok", "svc", NULL, 1, 0);
  dn_purge_cloudflare_options co = fx_cloudflare("tok", "zone", NULL, 0);
  dn_purge_webhook_options wo = fx_webhook(oom_urls, 2, oom_headers, 2);
  dn_purge_akamai_options ao;
  dn_purge_akamai_options_init(&ao);
  ao.host = "h.example";
  ao.client_token = "c";
  ao.client_secret = "s";
  ao.access_token = "a";
  int rc;
  if ((rc = dn_purge_backend_varnish(&vo, &b, NULL)) != 0)
    return rc;
  dn_purge_backend_free(&b);
  if ((rc = dn_purge_backend_fastly(&fo, &b, NULL)) != 0)
    return rc;
  dn_purge_backend_free(&b);
  if ((rc = dn_purge_backend_cloudflare(&co, &b, NULL)) != 0)
    return rc;
  dn_purge_backend_free(&b);
  if ((rc = dn_purge_backend_webhook(&wo, &b, NULL)) != 0)
    return rc;
  dn_purge_backend_free(&b);
  if ((rc = dn_purge_backend_akamai(&ao, &b, NULL)) != 0)
    return rc;
  dn_purge_backend_free(&b);
  return 0;
}

static void backends_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(make_each_backend, NULL);
}

/* Building requests under allocation failure: nothing leaks. */
static int build_each(void *ud) {
  (void)ud;
  dn_purge_backend b;
  dn_purge_fastly_options fo = fx_fastly("tok", "svc", NULL, 1, 0);
  int rc = dn_purge_backend_fastly(&fo, &b, NULL);
  if (rc)
    return rc;
  dn_slice keys[] = {dn_slice_from_cstr("a"), dn_slice_from_cstr("b")};
  dn_purge_batch in;
  memset(&in, 0, sizeof in);
  in.keys = keys;
  in.nkeys = 2;
  in.now_ms = 1700000000000ull;
  dn_purge_req req;
  dn__purge_req_init(&req);
  size_t used = 0;
  rc = b.ops->build(b.self, &in, &req, &used);
  dn__purge_req_reset(&req);
  dn_purge_backend_free(&b);
  if (rc)
    return rc;
  return used == 2 ? 0 : -1;
}

static void build_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(build_each, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fastly_exact),
      cmocka_unit_test(fastly_batches_of_256_soft),
      cmocka_unit_test(cloudflare_exact),
      cmocka_unit_test(cloudflare_tag_limit),
      cmocka_unit_test(akamai_exact_signature),
      cmocka_unit_test(akamai_signs_when_sent),
      cmocka_unit_test(edgegrid_known_answers),
      cmocka_unit_test(akamai_body_limit),
      cmocka_unit_test(varnish_two_servers),
      cmocka_unit_test(varnish_field_limit),
      cmocka_unit_test(webhook_body),
      cmocka_unit_test(webhook_without_keys),
      cmocka_unit_test(custom_backend),
      cmocka_unit_test(bad_backend_options),
      cmocka_unit_test(backends_out_of_memory),
      cmocka_unit_test(build_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
