/* test_store_env.c - choosing a store from options and the environment:
 * MEMCACHED_ADDR, REDIS_URL, DONUT_STORE, DONUT_NAMESPACE, the
 * descriptions for logs (never with a password), explicit options over
 * the environment, and DN_ECONFIG for every malformed value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donut/store_shared.h"
#include "servers.h"
#include "store.h"
#include "store_codec.h"
#include "test_support.h"

static dn_test_server g_mc, g_mc2, g_rd;

static int group_setup(void **state) {
  (void)state;
  dn_test_server *all[3] = {&g_mc, &g_mc2, &g_rd};
  int kinds[3] = {DN_TEST_MEMCACHED, DN_TEST_MEMCACHED, DN_TEST_REDIS};
  for (int i = 0; i < 3; i++)
    if (dn_test_server_start(all[i], kinds[i], NULL)) {
      print_error("cannot start a server: %s\n", all[i]->error);
      return -1;
    }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  dn_test_server_stop(&g_mc);
  dn_test_server_stop(&g_mc2);
  dn_test_server_stop(&g_rd);
  return 0;
}

static int clean_env(void **state) {
  (void)state;
  unsetenv("MEMCACHED_ADDR");
  unsetenv("REDIS_URL");
  unsetenv("DONUT_STORE");
  unsetenv("DONUT_NAMESPACE");
  return 0;
}

/* Opens from the environment, checks the kind and the description, and
 * proves the store works with a write and a read. */
static void open_check(const dn_store_env_options *o, const char *name,
                       const char *desc_want) {
  dn_store *st = NULL;
  dn_error err = {0};
  char desc[200];
  int rc = dn_store_from_env(o, &st, desc, sizeof desc, &err);
  if (rc)
    fail_msg("dn_store_from_env: %s: %s", dn_strerror(rc), err.text);
  assert_string_equal(dn_store_name(st), name);
  assert_string_equal(desc, desc_want);
  dn_blob *v = NULL, *out = NULL;
  dn_slice k = dn_slice_from_cstr("env-key");
  assert_int_equal(dn_blob_new("x", 1, &v), 0);
  assert_int_equal(dn__store_set(st, k, v, 0, DN_STORE_SET), 0);
  assert_int_equal(dn__store_get_multi(st, &k, 1, &out, NULL), 0);
  if (strcmp(name, "null") == 0)
    assert_null(out);
  else
    assert_non_null(out);
  dn_blob_unref(out);
  dn_blob_unref(v);
  dn_store_free(st);
}

static void test_default_is_memory(void **state) {
  (void)state;
  open_check(NULL, "memory", "memory, 64 MiB budget");
  setenv("MEMCACHED_ADDR", "", 1); /* empty counts as unset */
  open_check(NULL, "memory", "memory, 64 MiB budget");
  dn_store_memory_options mo;
  dn_store_memory_options_init(&mo);
  mo.max_bytes = (size_t)8 << 20;
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.memory = &mo;
  open_check(&o, "memory", "memory, 8 MiB budget");
}

static void test_null_store(void **state) {
  (void)state;
  setenv("DONUT_STORE", "null", 1);
  setenv("MEMCACHED_ADDR", g_mc.addr, 1);
  open_check(NULL, "null", "null (caches nothing)");
}

static void test_memcached_from_env(void **state) {
  (void)state;
  char want[200], two[80];
  setenv("MEMCACHED_ADDR", g_mc.addr, 1);
  snprintf(want, sizeof want, "memcached, 1 server: %s", g_mc.addr);
  open_check(NULL, "memcached", want);
  snprintf(two, sizeof two, "%s, %s", g_mc.addr, g_mc2.addr);
  setenv("MEMCACHED_ADDR", two, 1);
  snprintf(want, sizeof want, "memcached, 2 servers, ketama: %s,%s", g_mc.addr,
           g_mc2.addr);
  open_check(NULL, "memcached", want);
  setenv("DONUT_STORE", "memcached", 1);
  open_check(NULL, "memcached", want);
}

static void test_redis_from_env_hides_password(void **state) {
  (void)state;
  char url[128], want[200];
  /* The test server has no password; redis accepts AUTH only when one is
   * set, so check the description with a URL that is never dialled. */
  dn_store *st = NULL;
  char desc[200];
  setenv("REDIS_URL", "redis://:hunter2@cache.internal:6380/4", 1);
  assert_int_equal(dn_store_from_env(NULL, &st, desc, sizeof desc, NULL), 0);
  assert_string_equal(desc, "redis, db 4, with password: cache.internal:6380");
  assert_null(strstr(desc, "hunter2"));
  dn_store_free(st);
  snprintf(url, sizeof url, "%s/2", g_rd.url);
  setenv("REDIS_URL", url, 1);
  snprintf(want, sizeof want, "redis, db 2: 127.0.0.1:%d", g_rd.port);
  open_check(NULL, "redis", want);
}

static void test_options_beat_environment(void **state) {
  (void)state;
  char want[200];
  setenv("MEMCACHED_ADDR", g_mc.addr, 1);
  setenv("DONUT_STORE", "memcached", 1);
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.store = "redis";
  o.redis_url = g_rd.url;
  snprintf(want, sizeof want, "redis, db 0: 127.0.0.1:%d", g_rd.port);
  open_check(&o, "redis", want);
  unsetenv("DONUT_STORE");
  o.store = NULL;
  open_check(&o, "redis", want); /* the option's URL beats the env's addr */
  o.redis_url = NULL;
  o.store = "memory";
  open_check(&o, "memory", "memory, 64 MiB budget");
  /* A namespace from the environment, and from the options. */
  setenv("DONUT_NAMESPACE", "bad namespace", 1);
  dn_store *st = NULL;
  dn_error err = {0};
  o.store = NULL;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_ECONFIG);
  dn_store_shared_options so;
  dn_store_shared_options_init(&so);
  so.key_namespace = "good";
  o.shared = &so;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), 0);
  dn_store_free(st);
}

static void test_both_addresses_are_ambiguous(void **state) {
  (void)state;
  setenv("MEMCACHED_ADDR", g_mc.addr, 1);
  setenv("REDIS_URL", g_rd.url, 1);
  dn_store *st = NULL;
  dn_error err = {0};
  char desc[64] = "untouched";
  assert_int_equal(dn_store_from_env(NULL, &st, desc, sizeof desc, &err),
                   DN_ECONFIG);
  assert_null(st);
  assert_string_equal(desc, "");
  assert_non_null(strstr(err.text, "DONUT_STORE"));
  setenv("DONUT_STORE", "redis", 1);
  assert_int_equal(dn_store_from_env(NULL, &st, NULL, 0, &err), 0);
  assert_string_equal(dn_store_name(st), "redis");
  dn_store_free(st);
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.memcached_addr = g_mc.addr;
  o.redis_url = g_rd.url;
  unsetenv("DONUT_STORE");
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_ECONFIG);
}

typedef struct bad_case {
  const char *var, *value;
} bad_case;

static void test_malformed_values(void **state) {
  (void)state;
  static const bad_case cases[] = {
      {"MEMCACHED_ADDR", ","},
      {"MEMCACHED_ADDR", "127.0.0.1:11211,"},
      {"MEMCACHED_ADDR", "host:"},
      {"MEMCACHED_ADDR", "host:0"},
      {"MEMCACHED_ADDR", "host:65536"},
      {"MEMCACHED_ADDR", "host:12a"},
      {"MEMCACHED_ADDR", ":11211"},
      {"MEMCACHED_ADDR", "::1:11211"},
      {"MEMCACHED_ADDR", "[::1"},
      {"MEMCACHED_ADDR", "[::1]x"},
      {"MEMCACHED_ADDR", "a b:1"},
      {"MEMCACHED_ADDR", "h:1,h:1"},
      {"MEMCACHED_ADDR", "memcached://h:1"},
      /* What memcached_servers_parse() takes loosely: a weight after a
       * second ':' or a space, a whitespace byte it skips after a comma, a
       * port strtoul() overflows on, a ':' that cuts a socket path. */
      {"MEMCACHED_ADDR", "h:1:2"},
      {"MEMCACHED_ADDR", "h:1 2"},
      {"MEMCACHED_ADDR", "a,\tb"},
      {"MEMCACHED_ADDR", "h:99999999999999999999999"},
      {"MEMCACHED_ADDR", "h:000080"},
      {"MEMCACHED_ADDR", "/run/memcached:1"},
      {"MEMCACHED_ADDR", "[::g]:1"},
      {"MEMCACHED_ADDR", "[]:1"},
      {"REDIS_URL", "http://h:6379"},
      {"REDIS_URL", "rediss://h:6379"},
      {"REDIS_URL", "redis://"},
      {"REDIS_URL", "redis://h:99999"},
      {"REDIS_URL", "redis://h/abc"},
      {"REDIS_URL", "redis://h/1?timeout=1"},
      {"REDIS_URL", "redis://user@h"},
      {"REDIS_URL", "redis://:%zz@h"},
      {"REDIS_URL", "redis://:a%00b@h"},
      {"REDIS_URL", "redis://h/12345678901"},
      /* What libcurl's URL API takes loosely. */
      {"REDIS_URL", "redis:/h"},
      {"REDIS_URL", "redis:///h"},
      {"REDIS_URL", "redis://h/1?"},
      {"REDIS_URL", "redis://h/1#"},
      {"REDIS_URL", "redis://h:"},
      {"REDIS_URL", "redis://h:0"},
      {"REDIS_URL", "redis://:p%3@h"},
      {"REDIS_URL", "redis://:p%@h"},
      {"REDIS_URL", "redis://@h"},
      {"REDIS_URL", "redis://[fe80::1%25eth0]:6379"},
      {"REDIS_URL", "redis://h/a/../2"},
      {"REDIS_URL", "redis://h/%32"},
      {"REDIS_URL", "redis://h/2/"},
      {"REDIS_URL", "redis://:p@"},
      {"REDIS_URL", "redis://h h"},
      {"REDIS_URL", "redis://[::1"},
      {"REDIS_URL", "redis://:a%0ab@h"},
      {"DONUT_STORE", "memcache"},
      {"DONUT_STORE", "redis"},
      {"DONUT_STORE", "MEMORY"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    clean_env(NULL);
    setenv(cases[i].var, cases[i].value, 1);
    dn_store *st = NULL;
    dn_error err = {0};
    int rc = dn_store_from_env(NULL, &st, NULL, 0, &err);
    if (rc != DN_ECONFIG)
      fail_msg("%s=%s gave %s", cases[i].var, cases[i].value, dn_err_name(rc));
    assert_null(st);
    assert_int_equal(err.code, DN_ECONFIG);
    assert_non_null(strstr(err.text, strcmp(cases[i].var, "DONUT_STORE")
                                         ? cases[i].var
                                         : "DONUT_STORE"));
  }
}

/* Messages name the variable or option the address came from, and the
 * constructors name their argument; err.position is the byte offset. */
static void expect_error(const dn_store_env_options *o, const char *text,
                         size_t position) {
  dn_store *st = NULL;
  dn_error err = {0};
  assert_int_equal(dn_store_from_env(o, &st, NULL, 0, &err), DN_ECONFIG);
  assert_null(st);
  assert_string_equal(err.text, text);
  assert_int_equal(err.position, position);
}

static void test_messages_name_the_setting(void **state) {
  (void)state;
  setenv("MEMCACHED_ADDR", "host:0", 1);
  expect_error(NULL, "MEMCACHED_ADDR: port must be 1 to 65535", 5);
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.memcached_addr = "h:1,h:x";
  expect_error(&o, "memcached_addr: port must be decimal digits", 6);
  o.memcached_addr = "h:1,/run/memcached:1";
  expect_error(&o, "memcached_addr: a socket path cannot contain ':'", 18);
  clean_env(NULL);
  setenv("REDIS_URL", "rediss://h:6379", 1);
  expect_error(NULL, "REDIS_URL: TLS (rediss://) is not supported", 0);
  setenv("REDIS_URL", "redis://u:p@h/abc", 1);
  expect_error(NULL, "REDIS_URL: db must be a decimal number", 14);
  setenv("REDIS_URL", "redis://:p@", 1);
  expect_error(NULL, "REDIS_URL: empty host", 11);
  setenv("REDIS_URL", "redis://:p%zz@h", 1);
  expect_error(NULL, "REDIS_URL: bad percent-encoding", 10);
  o.memcached_addr = NULL;
  o.redis_url = "redis://h/1#";
  expect_error(&o, "redis_url: query and fragment are not supported", 11);
  dn_store *st = NULL;
  dn_error err = {0};
  assert_int_equal(dn_store_redis_new("redis://h:", NULL, &st, &err),
                   DN_ECONFIG);
  assert_string_equal(err.text, "url: port must be 1 to 65535");
  assert_int_equal(dn_store_memcached_new("h , h:11211", NULL, &st, &err),
                   DN_ECONFIG);
  assert_string_equal(err.text, "servers: server listed twice");
  assert_int_equal(err.position, 4);
}

/* memcached_servers_parse() copies each entry into a fixed stack buffer
 * (8 KiB) without checking its length: a long entry must be refused
 * before it gets there. */
static void test_long_entries(void **state) {
  (void)state;
  size_t n = 20000;
  char *s = malloc(n + 16);
  assert_non_null(s);
  memcpy(s, "h:1,", 4);
  memset(s + 4, 'a', n);
  memcpy(s + 4 + n, ":11211", 7);
  dn_store *st = NULL;
  dn_error err = {0};
  assert_int_equal(dn_store_memcached_new(s, NULL, &st, &err), DN_ECONFIG);
  assert_string_equal(err.text, "servers: host name too long");
  assert_int_equal(err.position, 4);
  /* The longest host that fits, and one byte more. */
  memset(s, 'a', DN__HOST_MAX);
  s[DN__HOST_MAX - 1] = '\0';
  assert_int_equal(dn_store_memcached_new(s, NULL, &st, &err), 0);
  dn_store_free(st);
  s[DN__HOST_MAX - 1] = 'a';
  s[DN__HOST_MAX] = '\0';
  assert_int_equal(dn_store_memcached_new(s, NULL, &st, &err), DN_ECONFIG);
  /* The same for a redis host and password. */
  memcpy(s, "redis://", 8);
  memset(s + 8, 'a', n);
  s[8 + n] = '\0';
  assert_int_equal(dn_store_redis_new(s, NULL, &st, &err), DN_ECONFIG);
  assert_string_equal(err.text, "url: host name too long");
  memcpy(s, "redis://:", 9);
  memcpy(s + 8 + n, "@h", 3);
  assert_int_equal(dn_store_redis_new(s, NULL, &st, &err), DN_ECONFIG);
  assert_string_equal(err.text, "url: user or password too long");
  free(s);
}

static void test_address_forms(void **state) {
  (void)state;
  dn__hostport hp[DN__MAX_SERVERS];
  size_t n = 0;
  dn_error err = {0};
  assert_int_equal(dn__parse_servers(" cache-1.internal , [::1]:11311,"
                                     "/run/memcached.sock,10.0.0.2:1",
                                     "X", hp, &n, &err),
                   0);
  assert_int_equal(n, 4);
  assert_string_equal(hp[0].host, "cache-1.internal");
  assert_int_equal(hp[0].port, 11211);
  assert_string_equal(hp[1].host, "::1");
  assert_int_equal(hp[1].port, 11311);
  assert_string_equal(hp[2].host, "/run/memcached.sock");
  assert_int_equal(hp[2].port, 0);
  assert_int_equal(hp[3].port, 1);
  assert_int_equal(dn__parse_servers("h:1,h:2,h:x", "X", hp, &n, &err),
                   DN_ECONFIG);
  assert_int_equal(err.position, 10);
  dn__redis_url u;
  assert_int_equal(dn__parse_redis_url("REDIS://al%69ce:p%40ss:w@[::1]:7000/15",
                                       "X", &u, &err),
                   0);
  assert_string_equal(u.user, "alice");
  assert_string_equal(u.password, "p@ss:w");
  assert_string_equal(u.hp.host, "::1");
  assert_int_equal(u.hp.port, 7000);
  assert_int_equal(u.db, 15);
  assert_int_equal(dn__parse_redis_url("redis://h/", "X", &u, &err), 0);
  assert_int_equal(u.db, 0);
  assert_int_equal(u.hp.port, 6379);
  assert_false(u.has_password);
  /* An empty user or password, and bytes that need percent-encoding. */
  assert_int_equal(
      dn__parse_redis_url("redis://%3a%20:@[::1]:00080", "X", &u, &err), 0);
  assert_string_equal(u.user, ": ");
  assert_string_equal(u.password, "");
  assert_true(u.has_password);
  assert_string_equal(u.hp.host, "::1");
  assert_int_equal(u.hp.port, 80);
  /* A failed parse leaves no password behind. */
  assert_int_equal(dn__parse_redis_url("redis://:secret@h/x", "X", &u, &err),
                   DN_ECONFIG);
  assert_string_equal(u.password, "");
  /* libmemcached keeps the brackets of an IPv6 address and takes a
   * trailing empty entry as nothing; neither gets through. */
  assert_int_equal(dn__parse_servers("[::1]", "X", hp, &n, &err), 0);
  assert_string_equal(hp[0].host, "::1");
  assert_int_equal(hp[0].port, 11211);
  assert_int_equal(dn__parse_servers("h:1,h:2, ", "X", hp, &n, &err),
                   DN_ECONFIG);
  assert_int_equal(err.position, 9);
  /* 64 servers are fine, 65 are not. */
  char many[65 * 16] = "";
  size_t len = 0;
  for (int i = 0; i < 65; i++)
    len += (size_t)snprintf(many + len, sizeof many - len, "%sh%d:1",
                            i ? "," : "", i);
  assert_int_equal(dn__parse_servers(many, "X", hp, &n, &err), DN_ECONFIG);
  *strrchr(many, ',') = '\0';
  assert_int_equal(dn__parse_servers(many, "X", hp, &n, &err), 0);
  assert_int_equal(n, 64);
}

static void test_constructors_reject_bad_input(void **state) {
  (void)state;
  dn_store *st = NULL;
  dn_error err = {0};
  assert_int_equal(dn_store_memcached_new(NULL, NULL, &st, &err), DN_EINVAL);
  assert_int_equal(dn_store_redis_new("redis://h", NULL, NULL, &err),
                   DN_EINVAL);
  assert_int_equal(dn_store_from_env(NULL, NULL, NULL, 0, &err), DN_EINVAL);
  assert_int_equal(dn_store_memcached_new("h:1:2", NULL, &st, &err),
                   DN_ECONFIG);
  assert_non_null(strstr(err.text, "servers"));
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.key_namespace = "no:colons";
  assert_int_equal(dn_store_redis_new("redis://h", &o, &st, &err), DN_ECONFIG);
  assert_null(st);
}

static int from_env_once(void *ud) {
  const char *url = ud;
  dn_store *st = NULL;
  char desc[128];
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.redis_url = url;
  int rc = dn_store_from_env(&o, &st, desc, sizeof desc, NULL);
  dn_store_free(st);
  st = NULL;
  if (rc)
    return rc;
  o.redis_url = NULL;
  o.memcached_addr = g_mc.addr;
  rc = dn_store_from_env(&o, &st, desc, sizeof desc, NULL);
  dn_store_free(st);
  return rc;
}

static void test_from_env_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(from_env_once, g_rd.url);
}

/* Each options struct cut before a field that would be refused if it were
 * read: the fields past the cut take their defaults. Size 0 is refused,
 * and so is a newer program's field this library does not know. */
static void test_options_from_older_and_newer_programs(void **state) {
  (void)state;
  dn_store *st = NULL;
  dn_error err = {0};
  dn_store_memory_options mo;
  dn_store_memory_options_init(&mo);
  mo.max_bytes = (size_t)8 << 20;
  mo.shards = 5000;
  dn_store_env_options o;
  dn_store_env_options_init(&o);
  o.memory = &mo;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_EINVAL);
  mo.size = offsetof(dn_store_memory_options, shards);
  open_check(&o, "memory", "memory, 8 MiB budget");
  mo.size = 0;
  assert_int_equal(dn_store_memory_new(&mo, &st), DN_EINVAL);
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_store_memory_options_init"));
  o.size = offsetof(dn_store_env_options, memory); /* memory is not read */
  open_check(&o, "memory", "memory, 64 MiB budget");
  o.size = 0;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_store_env_options_init"));

  char want[200];
  snprintf(want, sizeof want, "memcached, 1 server: %s", g_mc.addr);
  dn_store_shared_options so;
  dn_store_shared_options_init(&so);
  so.key_namespace = "older";
  so.pool_size = 5000; /* above the maximum */
  dn_store_env_options_init(&o);
  o.memcached_addr = g_mc.addr;
  o.shared = &so;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_ECONFIG);
  so.size = offsetof(dn_store_shared_options, pool_size);
  open_check(&o, "memcached", want);
  so.size = 0;
  assert_int_equal(dn_store_from_env(&o, &st, NULL, 0, &err), DN_EINVAL);
  assert_int_equal(dn_store_memcached_new(g_mc.addr, &so, &st, &err),
                   DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_store_shared_options_init"));
  assert_int_equal(dn_store_redis_new(g_rd.url, &so, &st, &err), DN_EINVAL);
  assert_null(st);

  union {
    dn_store_env_options o;
    unsigned char b[sizeof(dn_store_env_options) + 16];
  } newer;
  dn_store_env_options_init_size(&newer.o, sizeof newer);
  newer.o.store = "memory";
  open_check(&newer.o, "memory", "memory, 64 MiB budget");
  newer.b[sizeof(dn_store_env_options) + 15] = 1;
  assert_int_equal(dn_store_from_env(&newer.o, &st, NULL, 0, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "newer libdonut"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, clean_env, clean_env)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_default_is_memory),
      T(test_null_store),
      T(test_memcached_from_env),
      T(test_redis_from_env_hides_password),
      T(test_options_beat_environment),
      T(test_both_addresses_are_ambiguous),
      T(test_malformed_values),
      T(test_messages_name_the_setting),
      T(test_long_entries),
      T(test_address_forms),
      T(test_constructors_reject_bad_input),
      T(test_from_env_out_of_memory),
      T(test_options_from_older_and_newer_programs),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
