/* test_text.c - the shared text helpers of lib/util/text.c: hex digits,
 * percent-decoding and log lines. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "test_support.h"
#include "text.h"

static void test_hex_round_trip_of_every_byte(void **state) {
  (void)state;
  unsigned char all[256], back[256];
  char lower[512], upper[512];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  assert_int_equal(dn__hex_encode(lower, all, 256, 0), 512);
  assert_int_equal(dn__hex_encode(upper, all, 256, DN__HEX_UPPER), 512);
  assert_memory_equal(lower + 2 * 0xab, "ab", 2);
  assert_memory_equal(upper + 2 * 0xab, "AB", 2);
  assert_memory_equal(lower + 2 * 0x0f, "0f", 2);
  assert_memory_equal(upper + 2 * 0xf0, "F0", 2);
  assert_int_equal(dn__hex_decode(back, lower, 512, DN__HEX_LOWER_ONLY), 0);
  assert_memory_equal(back, all, 256);
  memset(back, 0, sizeof back);
  assert_int_equal(dn__hex_decode(back, upper, 512, 0), 0);
  assert_memory_equal(back, all, 256);
  /* Nothing is written past 2 * n, and n = 0 writes nothing. */
  char out[4] = "xxx";
  assert_int_equal(dn__hex_encode(out, all, 0, 0), 0);
  assert_int_equal(dn__hex_encode(out, all + 0x7f, 1, 0), 2);
  assert_string_equal(out, "7fx");
}

static void test_hex_value_of_every_byte_class(void **state) {
  (void)state;
  for (int c = -128; c < 256; c++) {
    int want = -1, want_lower = -1;
    if (c >= '0' && c <= '9')
      want = want_lower = c - '0';
    else if (c >= 'a' && c <= 'f')
      want = want_lower = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      want = c - 'A' + 10;
    assert_int_equal(dn__hex_value(c, 0), want);
    assert_int_equal(dn__hex_value(c, DN__HEX_LOWER_ONLY), want_lower);
  }
  /* The neighbours of each range, and bytes that are letters elsewhere. */
  const char *none = "/:@G`g xX\x7f";
  for (const char *p = none; *p; p++)
    assert_int_equal(dn__hex_value(*p, 0), -1);
  assert_int_equal(dn__hex_value((char)0xe1, 0), -1); /* signed char */
  assert_int_equal(dn__hex_value(0xc1, 0), -1);
}

static void test_hex_decode_refuses_without_writing(void **state) {
  (void)state;
  unsigned char out[4] = {1, 2, 3, 4};
  const unsigned char same[4] = {1, 2, 3, 4};
  assert_int_equal(dn__hex_decode(out, "abc", 3, 0), DN_EINVAL);
  assert_int_equal(dn__hex_decode(out, "00zz", 4, 0), DN_EINVAL);
  assert_int_equal(dn__hex_decode(out, "0g", 2, 0), DN_EINVAL);
  assert_int_equal(dn__hex_decode(out, "AB", 2, DN__HEX_LOWER_ONLY), DN_EINVAL);
  assert_int_equal(dn__hex_decode(out, "0\0", 2, 0), DN_EINVAL);
  assert_memory_equal(out, same, 4);
  assert_int_equal(dn__hex_decode(out, "", 0, 0), 0);
  assert_memory_equal(out, same, 4);
  assert_int_equal(dn__hex_decode(out, "aB09", 4, 0), 0);
  assert_int_equal(out[0], 0xab);
  assert_int_equal(out[1], 0x09);
  assert_int_equal(out[2], 3);
}

static void test_byte_show(void **state) {
  (void)state;
  char b[8];
  assert_string_equal(dn__byte_show('a', b), "'a'");
  assert_string_equal(dn__byte_show(' ', b), "' '");
  assert_string_equal(dn__byte_show('~', b), "'~'");
  assert_string_equal(dn__byte_show('\0', b), "0x00");
  assert_string_equal(dn__byte_show('\n', b), "0x0A");
  assert_string_equal(dn__byte_show(0x7f, b), "0x7F");
  assert_string_equal(dn__byte_show((char)0xe9, b), "0xE9");
}

/* Decodes s with flags into a fresh buffer; the result in *out. */
static int pct(const char *s, unsigned flags, dn__buf *out) {
  dn__buf_init(out, 0);
  return dn__percent_decode(s, strlen(s), flags, out);
}

static void test_percent_decoding(void **state) {
  (void)state;
  dn__buf b;
  assert_int_equal(pct("a%41%4a%4A%7e%7E", 0, &b), 0);
  assert_string_equal(b.data, "aAJJ~~");
  dn__buf_free(&b);
  /* '+' is itself, or a space for forms; "%2B" is always '+'. */
  assert_int_equal(pct("a+b%2B", 0, &b), 0);
  assert_string_equal(b.data, "a+b+");
  dn__buf_free(&b);
  assert_int_equal(pct("a+b%2B", DN__PCT_PLUS_SPACE, &b), 0);
  assert_string_equal(b.data, "a b+");
  dn__buf_free(&b);
  /* "%00" is a NUL byte inside the result, which stays NUL-terminated. */
  assert_int_equal(pct("x%00y", 0, &b), 0);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "x\0y", 4);
  dn__buf_free(&b);
  /* Bytes outside ASCII pass through; "%ff" is byte 0xff. */
  assert_int_equal(pct("\xc3\xa9%ff", 0, &b), 0);
  assert_memory_equal(b.data, "\xc3\xa9\xff", 4);
  dn__buf_free(&b);
  /* Nothing to decode appends nothing and allocates nothing. */
  assert_int_equal(pct("", 0, &b), 0);
  assert_null(b.data);
  dn__buf_free(&b);
}

static void test_percent_malformed_escapes(void **state) {
  (void)state;
  /* Truncated escapes, bad digits and a lone '%', strict and kept. */
  static const struct {
    const char *in, *kept;
  } bad[] = {
      {"%", "%"},       {"a%", "a%"},   {"%4", "%4"},
      {"ab%4", "ab%4"}, {"%zz", "%zz"}, {"%4g", "%4g"},
      {"%g4", "%g4"},   {"%%41", "%A"}, {"% 41", "% 41"},
      {"%+41", "%+41"}, {"%-1", "%-1"}, {"x%\xc3\xa9", "x%\xc3\xa9"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    dn__buf b;
    dn__buf_init(&b, 0);
    assert_int_equal(dn__buf_append_cstr(&b, "keep"), 0);
    assert_int_equal(dn__percent_decode(bad[i].in, strlen(bad[i].in), 0, &b),
                     DN_EURI);
    assert_int_equal(b.len, 4); /* out is as it was */
    assert_string_equal(b.data, "keep");
    assert_int_equal(dn__percent_decode(bad[i].in, strlen(bad[i].in),
                                        DN__PCT_PLUS_SPACE, &b),
                     DN_EURI);
    assert_string_equal(b.data, "keep");
    dn__buf_truncate(&b, 0);
    assert_int_equal(
        dn__percent_decode(bad[i].in, strlen(bad[i].in), DN__PCT_KEEP_BAD, &b),
        0);
    assert_string_equal(b.data, bad[i].kept);
    dn__buf_free(&b);
  }
  /* The length bounds the input: an escape cut by n is truncated. */
  dn__buf b;
  dn__buf_init(&b, 0);
  assert_int_equal(dn__percent_decode("%41", 2, 0, &b), DN_EURI);
  assert_int_equal(dn__percent_decode("%41", 2, DN__PCT_KEEP_BAD, &b), 0);
  assert_string_equal(b.data, "%4");
  dn__buf_free(&b);
}

static void test_percent_out_of_room_is_not_malformed(void **state) {
  (void)state;
  dn__buf b;
  dn__buf_init(&b, 4);
  assert_int_equal(dn__buf_append_cstr(&b, "ab"), 0);
  assert_int_equal(dn__percent_decode("xyz", 3, 0, &b), DN_ETOOBIG);
  assert_string_equal(b.data, "ab");
  assert_int_equal(dn__percent_decode("xy", 2, 0, &b), 0);
  assert_string_equal(b.data, "abxy");
  dn__buf_free(&b);
}

static int decode_something(void *ud) {
  (void)ud;
  dn__buf b;
  dn__buf_init(&b, 0);
  int rc = dn__percent_decode("a%20b+c", 7, DN__PCT_PLUS_SPACE, &b);
  if (rc == 0 && strcmp(b.data, "a b c") != 0)
    rc = DN_EINVAL;
  dn__buf_free(&b);
  return rc;
}

static void test_percent_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(decode_something, NULL);
}

static size_t fmt(char *out, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static size_t fmt(char *out, size_t cap, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  size_t n = dn__vformat(out, cap, f, ap);
  va_end(ap);
  return n;
}

static void test_format_cuts_to_fit(void **state) {
  (void)state;
  char out[8];
  assert_int_equal(fmt(out, sizeof out, "%d-%s", 42, "ab"), 5);
  assert_string_equal(out, "42-ab");
  assert_int_equal(fmt(out, sizeof out, "%s", "1234567"), 7);
  assert_string_equal(out, "1234567");
  assert_int_equal(fmt(out, sizeof out, "%s", "12345678"), 7);
  assert_string_equal(out, "1234567");
  assert_int_equal(fmt(out, sizeof out, "%s%d", "abcdef", 12345), 7);
  assert_string_equal(out, "abcdef1");
  assert_int_equal(fmt(out, 1, "%s", "abc"), 0);
  assert_string_equal(out, "");
  assert_int_equal(fmt(out, sizeof out, "%s", ""), 0);
  assert_string_equal(out, "");
  /* An encoding error (a wide character the C locale cannot write) still
   * leaves a terminated line no longer than the buffer. */
  memset(out, 'x', sizeof out);
  size_t n = fmt(out, sizeof out, "ab%lc", (wint_t)0x2603);
  assert_true(n < sizeof out);
  assert_int_equal(strlen(out), n);
}

typedef struct logged {
  int calls, level;
  void *ud;
  char msg[2 * DN__LOG_LINE_MAX];
} logged;

static void record(void *ud, int level, const char *msg) {
  logged *l = ud;
  l->calls++;
  l->level = level;
  l->ud = ud;
  snprintf(l->msg, sizeof l->msg, "%s", msg);
}

static void emit(dn__log_fn cb, void *ud, size_t cap, const char *f, ...)
    __attribute__((format(printf, 4, 5)));

static void emit(dn__log_fn cb, void *ud, size_t cap, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  dn__log_emit(cb, ud, DN_LOG_WARN, cap, f, ap);
  va_end(ap);
}

static void test_log_lines_are_cut_at_their_cap(void **state) {
  (void)state;
  logged l = {0};
  emit(record, &l, 256, "store %s failed: %s", "get", "timeout");
  assert_int_equal(l.calls, 1);
  assert_int_equal(l.level, DN_LOG_WARN);
  assert_ptr_equal(l.ud, &l);
  assert_string_equal(l.msg, "store get failed: timeout");
  /* Each caller keeps its own cap: 256 bytes is 255 characters. */
  char big[3000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  emit(record, &l, 256, "%s", big);
  assert_int_equal(strlen(l.msg), 255);
  emit(record, &l, 600, "<%s>", big);
  assert_int_equal(strlen(l.msg), 599);
  assert_int_equal(l.msg[0], '<');
  /* No cap goes past the line on the stack. */
  emit(record, &l, 100000, "%s", big);
  assert_int_equal(strlen(l.msg), DN__LOG_LINE_MAX - 1);
  assert_int_equal(l.calls, 4);
  /* Without a callback nothing happens, and nothing is formatted. */
  emit(NULL, &l, 256, "%s", big);
  assert_int_equal(l.calls, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_round_trip_of_every_byte),
      cmocka_unit_test(test_hex_value_of_every_byte_class),
      cmocka_unit_test(test_hex_decode_refuses_without_writing),
      cmocka_unit_test(test_byte_show),
      cmocka_unit_test(test_percent_decoding),
      cmocka_unit_test(test_percent_malformed_escapes),
      cmocka_unit_test(test_percent_out_of_room_is_not_malformed),
      cmocka_unit_test(test_percent_out_of_memory),
      cmocka_unit_test(test_format_cuts_to_fit),
      cmocka_unit_test(test_log_lines_are_cut_at_their_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
