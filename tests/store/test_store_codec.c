/* test_store_codec.c - the value format and key mapping of the shared
 * stores: round trips, compression, and rejection of every truncation, bit
 * flip, foreign value and value of another key. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "blob.h"
#include "store_codec.h"
#include "test_support.h"

static dn_slice S(const char *s) { return dn_slice_from_cstr(s); }

static void encode_ok(dn_slice key, const char *p, size_t n, size_t thr,
                      dn__buf *out) {
  dn__buf_init(out, 0);
  assert_int_equal(dn__codec_encode(NULL, key, p, n, thr, SIZE_MAX, out), 0);
}

static void decode_eq(const dn__buf *enc, dn_slice key, const char *p,
                      size_t n) {
  dn_blob *b = NULL;
  assert_int_equal(dn__codec_decode(NULL, enc->data, enc->len, key,
                                    DN__CODEC_MAX_PAYLOAD, &b),
                   0);
  assert_int_equal(dn_blob_len(b), n);
  if (n)
    assert_memory_equal(dn_blob_data(b), p, n);
  dn_blob_unref(b);
}

static void test_round_trip_small_and_empty(void **state) {
  (void)state;
  dn__buf e;
  encode_ok(S("k"), "hello", 5, 1024, &e);
  assert_int_equal(e.len, DN__CODEC_OVERHEAD + 1 + 5);
  assert_memory_equal(e.data, "DNUT", 4);
  decode_eq(&e, S("k"), "hello", 5);
  dn__buf_free(&e);
  encode_ok(S(""), "", 0, 0, &e);
  decode_eq(&e, S(""), "", 0);
  dn__buf_free(&e);
}

static void test_compresses_only_when_smaller(void **state) {
  (void)state;
  size_t n = 64 * 1024;
  char *text = malloc(n), *noise = malloc(n);
  for (size_t i = 0; i < n; i++) {
    text[i] = "abcdefgh<>/"[i % 11];
    noise[i] = (char)(XXH64(&i, sizeof i, 7) & 0xff);
  }
  dn__buf e;
  encode_ok(S("t"), text, n, 1024, &e);
  assert_true(e.len < n / 10);
  assert_int_equal(e.data[5], DN__CODEC_FLAG_ZSTD);
  decode_eq(&e, S("t"), text, n);
  dn__buf_free(&e);
  encode_ok(S("n"), noise, n, 1024, &e);
  assert_int_equal(e.data[5], 0);
  assert_int_equal(e.len, DN__CODEC_OVERHEAD + 1 + n);
  decode_eq(&e, S("n"), noise, n);
  dn__buf_free(&e);
  /* Below the threshold, or with compression off, text stays raw. */
  encode_ok(S("t"), text, 1023, 1024, &e);
  assert_int_equal(e.data[5], 0);
  dn__buf_free(&e);
  encode_ok(S("t"), text, n, SIZE_MAX, &e);
  assert_int_equal(e.data[5], 0);
  decode_eq(&e, S("t"), text, n);
  dn__buf_free(&e);
  free(text);
  free(noise);
}

static void test_other_key_is_not_found(void **state) {
  (void)state;
  dn__buf e;
  encode_ok(S("alpha"), "v", 1, 1024, &e);
  dn_blob *b = NULL;
  assert_int_equal(
      dn__codec_decode(NULL, e.data, e.len, S("alphb"), 1 << 20, &b),
      DN_ENOTFOUND);
  assert_int_equal(
      dn__codec_decode(NULL, e.data, e.len, S("alph"), 1 << 20, &b),
      DN_ENOTFOUND);
  assert_null(b);
  dn__buf_free(&e);
}

static void check_rejects_damage(dn__buf *e, dn_slice key) {
  dn_blob *b = NULL;
  for (size_t n = 0; n < e->len; n++)
    assert_int_equal(dn__codec_decode(NULL, e->data, n, key, 1 << 20, &b),
                     DN_ECORRUPT);
  for (size_t i = 0; i < e->len * 8; i++) {
    e->data[i / 8] ^= (char)(1 << (i % 8));
    assert_int_equal(dn__codec_decode(NULL, e->data, e->len, key, 1 << 20, &b),
                     DN_ECORRUPT);
    e->data[i / 8] ^= (char)(1 << (i % 8));
  }
  assert_null(b);
}

static void test_every_truncation_and_bit_flip_is_corrupt(void **state) {
  (void)state;
  dn__buf e;
  encode_ok(S("key"), "payload bytes", 13, 1024, &e);
  check_rejects_damage(&e, S("key"));
  char text[3000];
  for (size_t i = 0; i < sizeof text; i++)
    text[i] = "0123456789"[i % 10];
  dn__buf_free(&e);
  encode_ok(S("z"), text, sizeof text, 1024, &e);
  assert_int_equal(e.data[5], DN__CODEC_FLAG_ZSTD);
  check_rejects_damage(&e, S("z"));
  dn__buf_free(&e);
}

/* Re-seals a hand-edited value so that only the edit is wrong. */
static void reseal(char *p, size_t len) {
  uint64_t h = XXH3_64bits(p, len - 8);
  for (int i = 0; i < 8; i++)
    p[len - 8 + i] = (char)(h >> (8 * i));
}

static void test_sealed_but_inconsistent_values_are_corrupt(void **state) {
  (void)state;
  dn__buf e;
  dn_blob *b = NULL;
  encode_ok(S("k"), "abcdef", 6, 1024, &e);
  e.data[5] = DN__CODEC_FLAG_ZSTD; /* claims zstd, holds raw bytes */
  reseal(e.data, e.len);
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 1 << 20, &b),
                   DN_ECORRUPT);
  e.data[5] = 0x02; /* unknown flag */
  reseal(e.data, e.len);
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 1 << 20, &b),
                   DN_ECORRUPT);
  e.data[5] = 0;
  e.data[4] = 2; /* a future format version */
  reseal(e.data, e.len);
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 1 << 20, &b),
                   DN_ECORRUPT);
  e.data[4] = 1;
  e.data[8] = 100; /* key longer than the value */
  reseal(e.data, e.len);
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 1 << 20, &b),
                   DN_ECORRUPT);
  assert_null(b);
  dn__buf_free(&e);
}

static void test_payload_limit_on_decode(void **state) {
  (void)state;
  char zeros[100000] = {0};
  dn__buf e;
  encode_ok(S("k"), zeros, sizeof zeros, 1024, &e);
  assert_true(e.len < 1000);
  dn_blob *b = NULL;
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 99999, &b),
                   DN_ECORRUPT);
  assert_null(b);
  assert_int_equal(dn__codec_decode(NULL, e.data, e.len, S("k"), 100000, &b),
                   0);
  dn_blob_unref(b);
  dn__buf_free(&e);
}

static void test_foreign_values_are_corrupt(void **state) {
  (void)state;
  const char *foreign[] = {"",
                           "1",
                           "12345678901234567890",
                           "{\"json\": true, \"padding\": \"xxxxxxxxxxxx\"}",
                           "DNUT",
                           "DNUT\x01\x00\x00\x00"};
  dn_blob *b = NULL;
  for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
    assert_int_equal(dn__codec_decode(NULL, foreign[i], strlen(foreign[i]),
                                      S("k"), 1 << 20, &b),
                     DN_ECORRUPT);
  char zeros[64] = {0};
  assert_int_equal(
      dn__codec_decode(NULL, zeros, sizeof zeros, S(""), 1 << 20, &b),
      DN_ECORRUPT);
  assert_null(b);
}

static void test_encode_limit_is_too_big(void **state) {
  (void)state;
  char noise[2048];
  for (size_t i = 0; i < sizeof noise; i++)
    noise[i] = (char)(XXH64(&i, sizeof i, 1) & 0xff);
  dn__buf e;
  dn__buf_init(&e, 0);
  size_t exact = DN__CODEC_OVERHEAD + 1 + sizeof noise;
  assert_int_equal(
      dn__codec_encode(NULL, S("k"), noise, sizeof noise, 1024, exact - 1, &e),
      DN_ETOOBIG);
  assert_int_equal(e.len, 0);
  assert_int_equal(
      dn__codec_encode(NULL, S("k"), noise, sizeof noise, 1024, exact, &e), 0);
  assert_int_equal(e.len, exact);
  /* A compressible value is judged by its compressed size. */
  char zeros[100000] = {0};
  assert_int_equal(
      dn__codec_encode(NULL, S("k"), zeros, sizeof zeros, 1024, 4096, &e), 0);
  dn__buf_free(&e);
}

static int encode_decode_once(void *ud) {
  (void)ud;
  char text[4096];
  for (size_t i = 0; i < sizeof text; i++)
    text[i] = "abc"[i % 3];
  dn__buf e;
  dn__buf_init(&e, 0);
  int rc =
      dn__codec_encode(NULL, S("key"), text, sizeof text, 1024, 1 << 20, &e);
  dn_blob *b = NULL;
  if (!rc)
    rc = dn__codec_decode(NULL, e.data, e.len, S("key"), 1 << 20, &b);
  if (!rc && (dn_blob_len(b) != sizeof text ||
              memcmp(dn_blob_data(b), text, sizeof text) != 0))
    rc = DN_EINVAL;
  dn_blob_unref(b);
  dn__buf_free(&e);
  return rc;
}

static void test_codec_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(encode_decode_once, NULL);
}

static void test_server_keys(void **state) {
  (void)state;
  char k[DN__SKEY_MAX + 1], k2[DN__SKEY_MAX + 1];
  size_t kl, kl2;
  assert_int_equal(dn__skey(k, &kl, "donut", 'v', S("app://self/a?b=1"), 0), 0);
  assert_string_equal(k, "donut:v:app://self/a?b=1");
  /* A space is fine for redis, not for memcached. */
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', S("a b"), 1), 0);
  assert_string_equal(k, "ns:v:a b");
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', S("a b"), 0), 0);
  assert_int_equal(kl, 2 + 3 + 64);
  assert_memory_equal(k, "ns:V:", 5);
  /* Deterministic, and different keys give different hashes. */
  assert_int_equal(dn__skey(k2, &kl2, "ns", 'v', S("a b"), 0), 0);
  assert_string_equal(k, k2);
  assert_int_equal(dn__skey(k2, &kl2, "ns", 'v', S("a  b"), 0), 0);
  assert_string_not_equal(k, k2);
  /* Index keys live apart from value keys. */
  assert_int_equal(dn__skey(k2, &kl2, "ns", 'i', S("a b"), 0), 0);
  assert_memory_equal(k2, "ns:I:", 5);
  /* The longest plain key, and one byte more. */
  char big[400];
  memset(big, 'x', sizeof big);
  dn_slice edge = {big, DN__SKEY_MAX - 3 - 2};
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', edge, 0), 0);
  assert_int_equal(kl, DN__SKEY_MAX);
  edge.len++;
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', edge, 0), 0);
  assert_int_equal(kl, 2 + 3 + 64);
  /* NUL and UTF-8 bytes. */
  dn_slice nul = {"a\0b", 3};
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', nul, 0), 0);
  for (size_t i = 0; i < kl; i++)
    assert_true(k[i] > 0x20 && k[i] < 0x7f);
  assert_int_equal(dn__skey(k, &kl, "ns", 'v', nul, 1), 0);
  assert_int_equal(kl, 8);
  assert_int_equal(dn__skey_seq(k, "ns"), 6);
  assert_string_equal(k, "ns:seq");
}

static void test_parse_seq(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(dn__parse_seq("0", 1, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(dn__parse_seq("18446744073709551615", 20, &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(dn__parse_seq("18446744073709551616", 20, &v), DN_ECORRUPT);
  assert_int_equal(dn__parse_seq("", 0, &v), DN_ECORRUPT);
  assert_int_equal(dn__parse_seq("-1", 2, &v), DN_ECORRUPT);
  assert_int_equal(dn__parse_seq("12 ", 3, &v), DN_ECORRUPT);
  for (int i = 0; i < 100; i++)
    assert_true(dn__seq_start() < ((uint64_t)1 << 62));
}

static void test_options(void **state) {
  (void)state;
  dn__shared_conf c;
  dn_error err;
  assert_int_equal(dn__shared_conf_init(&c, NULL, &err), 0);
  assert_string_equal(c.ns, "donut");
  assert_int_equal(c.item_limit, DN_STORE_SHARED_ITEM_LIMIT);
  assert_int_equal(c.io_timeout_ms, DN_STORE_SHARED_IO_TIMEOUT_MS);
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  const char *bad[] = {"", "has space", "a:b",
                       "toolong-toolong-toolong-"
                       "toolong-toolong-toolong-toolong-toolong-x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    o.key_namespace = bad[i];
    memset(&err, 0, sizeof err);
    assert_int_equal(dn__shared_conf_init(&c, &o, &err), DN_ECONFIG);
    assert_int_equal(err.code, DN_ECONFIG);
    assert_true(strlen(err.text) > 0);
  }
  o.key_namespace = "app-1.v2_x";
  o.item_limit = 100;
  assert_int_equal(dn__shared_conf_init(&c, &o, &err), DN_ECONFIG);
  o.item_limit = 0;
  assert_int_equal(dn__shared_conf_init(&c, &o, &err), 0);
  assert_string_equal(c.ns, "app-1.v2_x");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_small_and_empty),
      cmocka_unit_test(test_compresses_only_when_smaller),
      cmocka_unit_test(test_other_key_is_not_found),
      cmocka_unit_test(test_every_truncation_and_bit_flip_is_corrupt),
      cmocka_unit_test(test_sealed_but_inconsistent_values_are_corrupt),
      cmocka_unit_test(test_payload_limit_on_decode),
      cmocka_unit_test(test_foreign_values_are_corrupt),
      cmocka_unit_test(test_encode_limit_is_too_big),
      cmocka_unit_test(test_codec_out_of_memory),
      cmocka_unit_test(test_server_keys),
      cmocka_unit_test(test_parse_seq),
      cmocka_unit_test(test_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
