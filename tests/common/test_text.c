/* test_text.c - the shared text helpers of lib/util/text.c: hex digits. */
#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_round_trip_of_every_byte),
      cmocka_unit_test(test_hex_value_of_every_byte_class),
      cmocka_unit_test(test_hex_decode_refuses_without_writing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
