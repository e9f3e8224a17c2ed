/* test_common.c - error codes, slices, buffers, the allocator and wiping
 * secrets. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "test_support.h"

static void test_strerror_covers_every_code(void **state) {
  (void)state;
  for (int code = -1; code > DN__ERR_LAST; code--) {
    assert_string_not_equal(dn_strerror(code), "unknown error");
    assert_int_equal(strncmp(dn_err_name(code), "DN_E", 4), 0);
  }
  assert_string_equal(dn_strerror(0), "success");
  assert_string_equal(dn_strerror(-9999), "unknown error");
  assert_string_equal(dn_err_name(DN_EURI), "DN_EURI");
}

static void test_buf_limit_leaves_buffer_unchanged(void **state) {
  (void)state;
  dn__buf b;
  dn__buf_init(&b, 8);
  assert_int_equal(dn__buf_append(&b, "12345", 5), 0);
  assert_int_equal(dn__buf_append(&b, "6789", 4), DN_ETOOBIG);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "12345");
  assert_int_equal(dn__buf_append_u64(&b, 123), 0);
  assert_string_equal(b.data, "12345123");
  dn__buf_free(&b);
}

static void test_buf_u64_extremes(void **state) {
  (void)state;
  dn__buf b;
  dn__buf_init(&b, 0);
  assert_int_equal(dn__buf_append_u64(&b, 0), 0);
  assert_int_equal(dn__buf_append_byte(&b, ' '), 0);
  assert_int_equal(dn__buf_append_u64(&b, UINT64_MAX), 0);
  assert_string_equal(b.data, "0 18446744073709551615");
  size_t n;
  char *s = dn__buf_steal(&b, &n);
  assert_int_equal(n, 22);
  assert_null(b.data);
  dn_free(s);
}

static int build_something(void *ud) {
  (void)ud;
  dn__buf b;
  dn__buf_init(&b, 0);
  for (int i = 0; i < 100; i++) {
    int rc = dn__buf_append_cstr(&b, "0123456789");
    if (rc) {
      dn__buf_free(&b);
      return rc;
    }
  }
  dn__buf_free(&b);
  return 0;
}

static void test_alloc_failures_are_reported(void **state) {
  (void)state;
  dn_test_every_alloc_failure(build_something, NULL);
}

static void test_replace_allocator_rejects_partial(void **state) {
  (void)state;
  assert_int_equal(dn_replace_allocator(NULL, NULL, free), DN_EINVAL);
  assert_int_equal(dn_replace_allocator(NULL, NULL, NULL), 0);
}

static void test_wipe_clears_secrets(void **state) {
  (void)state;
  char key[16];
  memset(key, 0x5a, sizeof key);
  dn__wipe(key + 4, 8);
  for (size_t i = 0; i < sizeof key; i++)
    assert_int_equal(key[i], i >= 4 && i < 12 ? 0 : 0x5a);
  dn__wipe(NULL, 0);
  dn__wipe(key, 0);
  assert_int_equal(key[0], 0x5a);
  /* wipe_free frees what dn__strndup made, and takes NULL. */
  char *token = dn__strndup("hunter2-hunter2", 15);
  assert_non_null(token);
  dn__wipe_free(token);
  dn__wipe_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strerror_covers_every_code),
      cmocka_unit_test(test_buf_limit_leaves_buffer_unchanged),
      cmocka_unit_test(test_buf_u64_extremes),
      cmocka_unit_test(test_alloc_failures_are_reported),
      cmocka_unit_test(test_replace_allocator_rejects_partial),
      cmocka_unit_test(test_wipe_clears_secrets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
