/* test_store_optional.c - the shared stores are optional parts of the
 * build (DONUT_WITH_MEMCACHED, DONUT_WITH_REDIS in donut/config.h). Their
 * constructors exist in every build; a store that was left out gives
 * DN_ENOTSUP with a message that says so, whether it is created directly
 * or selected by the options or the environment. The test uses only the
 * public API and starts no server, so it builds and runs in every variant:
 * in a build with the store it checks the other side (the store exists and
 * refuses a bad address as before). */
#include <stdlib.h>
#include <string.h>

#include "donut.h"
#include "donut/store_shared.h"
#include "test_support.h"

#define MC_OFF                                                                 \
  "memcached support is not built into this libdonut "                         \
  "(DONUT_WITH_MEMCACHED=OFF)"
#define RD_OFF                                                                 \
  "redis support is not built into this libdonut (DONUT_WITH_REDIS=OFF)"

static int clean_env(void **state) {
  (void)state;
  unsetenv("MEMCACHED_ADDR");
  unsetenv("REDIS_URL");
  unsetenv("DONUT_STORE");
  unsetenv("DONUT_NAMESPACE");
  return 0;
}

/* dn_store_from_env with `o`: when `built`, 0 and a store named `name`;
 * otherwise DN_ENOTSUP, no store, and err.text is want_off. */
static void from_env(const dn_store_env_options *o, int built, const char *name,
                     const char *want_off) {
  dn_store *st = NULL;
  dn_error err = {0};
  char desc[160] = "untouched";
  int rc = dn_store_from_env(o, &st, desc, sizeof desc, &err);
  if (built) {
    if (rc)
      fail_msg("dn_store_from_env: %s: %s", dn_strerror(rc), err.text);
    assert_string_equal(dn_store_name(st), name);
    dn_store_free(st);
    return;
  }
  assert_int_equal(rc, DN_ENOTSUP);
  assert_null(st);
  assert_int_equal(err.code, DN_ENOTSUP);
  assert_string_equal(err.text, want_off);
  assert_string_equal(desc, "");
}

static void test_memcached_constructor(void **state) {
  (void)state;
  dn_store *st = NULL;
  dn_error err = {0};
  int rc = dn_store_memcached_new("127.0.0.1:0", NULL, &st, &err);
  assert_null(st);
  if (DONUT_WITH_MEMCACHED) {
    assert_int_equal(rc, DN_ECONFIG);
    assert_string_equal(err.text, "servers: port must be 1 to 65535");
  } else {
    assert_int_equal(rc, DN_ENOTSUP);
    assert_string_equal(err.text, MC_OFF);
    assert_int_equal(dn_store_memcached_new(NULL, NULL, NULL, NULL),
                     DN_ENOTSUP);
  }
}

static void test_redis_constructor(void **state) {
  (void)state;
  dn_store *st = NULL;
  dn_error err = {0};
  int rc = dn_store_redis_new("redis://127.0.0.1:0", NULL, &st, &err);
  assert_null(st);
  if (DONUT_WITH_REDIS) {
    assert_int_equal(rc, DN_ECONFIG);
    assert_string_equal(err.text, "url: port must be 1 to 65535");
  } else {
    assert_int_equal(rc, DN_ENOTSUP);
    assert_string_equal(err.text, RD_OFF);
    assert_int_equal(dn_store_redis_new(NULL, NULL, NULL, NULL), DN_ENOTSUP);
  }
}

/* Creating a shared store connects to nothing, so port 1 on loopback does
 * for a build that has the store. */
static void test_memcached_selected(void **state) {
  (void)state;
  int on = DONUT_WITH_MEMCACHED;
  setenv("MEMCACHED_ADDR", "127.0.0.1:1", 1);
  from_env(NULL, on, "memcached", "MEMCACHED_ADDR: " MC_OFF);
  setenv("DONUT_STORE", "memcached", 1);
  from_env(NULL, on, "memcached", "DONUT_STORE: " MC_OFF);
  /* Not built is said before the missing address. */
  unsetenv("MEMCACHED_ADDR");
  if (!on)
    from_env(NULL, 0, NULL, "DONUT_STORE: " MC_OFF);
  unsetenv("DONUT_STORE");
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.memcached_addr = "127.0.0.1:1";
  from_env(&o, on, "memcached", "memcached_addr: " MC_OFF);
  o.store = "memcached";
  from_env(&o, on, "memcached", "store option: " MC_OFF);
}

static void test_redis_selected(void **state) {
  (void)state;
  int on = DONUT_WITH_REDIS;
  setenv("REDIS_URL", "redis://127.0.0.1:1", 1);
  from_env(NULL, on, "redis", "REDIS_URL: " RD_OFF);
  setenv("DONUT_STORE", "redis", 1);
  from_env(NULL, on, "redis", "DONUT_STORE: " RD_OFF);
  unsetenv("REDIS_URL");
  if (!on)
    from_env(NULL, 0, NULL, "DONUT_STORE: " RD_OFF);
  unsetenv("DONUT_STORE");
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.redis_url = "redis://127.0.0.1:1";
  from_env(&o, on, "redis", "redis_url: " RD_OFF);
}

/* The stores that are always built are chosen as before. */
static void test_memory_and_null(void **state) {
  (void)state;
  dn_store *st = NULL;
  char desc[64];
  assert_int_equal(dn_store_from_env(NULL, &st, desc, sizeof desc, NULL), 0);
  assert_string_equal(dn_store_name(st), "memory");
  assert_string_equal(desc, "memory, 64 MiB budget");
  dn_store_free(st);
  setenv("DONUT_STORE", "null", 1);
  setenv("MEMCACHED_ADDR", "127.0.0.1:1", 1);
  assert_int_equal(dn_store_from_env(NULL, &st, desc, sizeof desc, NULL), 0);
  assert_string_equal(desc, "null (caches nothing)");
  dn_store_free(st);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, clean_env, clean_env)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_memcached_constructor), T(test_redis_constructor),
      T(test_memcached_selected),    T(test_redis_selected),
      T(test_memory_and_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
