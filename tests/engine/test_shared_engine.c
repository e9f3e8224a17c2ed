/* test_shared_engine.c - engines in several processes sharing one real
 * memcached or redis server:
 *  - a purge in one process is honoured by the very next get in another;
 *  - concurrent misses from several processes render once (the lease);
 *  - a lease holder that dies delays the others by at most the lease time;
 *  - when the server goes away the engine keeps serving by rendering, and
 *    caches again once the server is back.
 * Every test runs against both servers.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "servers.h"
#include "test_support.h"

typedef struct shared_counters {
  int renders;     /* across every process */
  int block_first; /* the first render blocks until killed */
  char data[32];
} shared_counters;

static shared_counters *counters; /* MAP_SHARED, survives fork */

typedef struct fixture {
  int kind;
  dn_test_server server;
  char ns[32];
} fixture;

static int r_page(dn_render *r, void *ud) {
  (void)ud;
  int n = __atomic_add_fetch(&counters->renders, 1, __ATOMIC_SEQ_CST);
  if (n == 1 && counters->block_first)
    pause(); /* play a process that dies holding the lease */
  struct timespec ts = {0, 200 * 1000000L}; /* long enough to overlap */
  nanosleep(&ts, NULL);
  dn_render_add_tag(r, "shared-data");
  return dn_render_write_str(r, counters->data);
}

/* Log lines about the store ("store ..."), counted by count_log, which
 * engine_for installs when log_lines is set. */
static int *log_lines;

static void count_log(void *ud, int level, const char *msg) {
  (void)ud;
  (void)level;
  if (log_lines && strncmp(msg, "store ", 6) == 0) {
    ++*log_lines;
    print_message("log: %s\n", msg);
  }
}

/* An engine over a fresh connection to the fixture's server. */
static dn_engine *engine_for(fixture *f, dn_store **store, uint64_t lease) {
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.key_namespace = f->ns;
  dn_error err;
  int rc = f->kind == DN_TEST_MEMCACHED
               ? dn_store_memcached_new(f->server.addr, &o, store, &err)
               : dn_store_redis_new(f->server.url, &o, store, &err);
  if (rc)
    return NULL;
  dn_engine_options eo;
  dn_engine_options_init(&eo);
  eo.store = *store;
  eo.lease_ms = lease;
  eo.log = count_log;
  dn_engine *e = NULL;
  if (dn_engine_new(&eo, &e) ||
      dn_engine_register(e, "app://self/page", "page", r_page, NULL)) {
    dn_engine_free(e);
    dn_store_free(*store);
    return NULL;
  }
  return e;
}

static int get_body(dn_engine *e, char *out, size_t n, dn_get_info *info) {
  dn_rep *rep;
  int rc = dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, info, NULL);
  if (rc)
    return rc;
  snprintf(out, n, "%.*s", (int)dn_rep_body(rep).len, dn_rep_body(rep).ptr);
  dn_rep_unref(rep);
  return 0;
}

static int setup(void **state, int kind) {
  fixture *f = calloc(1, sizeof *f);
  f->kind = kind;
  if (dn_test_server_start(&f->server, kind, NULL) != 0) {
    fprintf(stderr, "%s\n", f->server.error);
    free(f);
    return -1;
  }
  snprintf(f->ns, sizeof f->ns, "x%ld", (long)getpid());
  memset(counters, 0, sizeof *counters);
  snprintf(counters->data, sizeof counters->data, "v1");
  *state = f;
  return 0;
}
static int setup_memcached(void **state) {
  return setup(state, DN_TEST_MEMCACHED);
}
static int setup_redis(void **state) { return setup(state, DN_TEST_REDIS); }
static int teardown(void **state) {
  fixture *f = *state;
  dn_test_server_stop(&f->server);
  free(f);
  return 0;
}

/* Runs fn in a child process; returns its exit status. */
static int in_child(fixture *f, int (*fn)(fixture *, int), int arg,
                    pid_t *pid_out) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0)
    _exit(fn(f, arg));
  if (pid_out) {
    *pid_out = pid;
    return 0;
  }
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* ---- a purge in one process, the next get in another ----------------------
 */
static int child_purge(fixture *f, int arg) {
  (void)arg;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 10000);
  if (!e)
    return 10;
  snprintf(counters->data, sizeof counters->data, "v2");
  int rc = dn_engine_purge(e, "app://self/page", 15, NULL);
  dn_engine_free(e);
  dn_store_free(st);
  return rc ? 11 : 0;
}

static int child_get(fixture *f, int arg) {
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 10000);
  if (!e)
    return 10;
  char body[32];
  dn_get_info info;
  int rc = get_body(e, body, sizeof body, &info);
  dn_engine_free(e);
  dn_store_free(st);
  if (rc)
    return 11;
  /* arg 1: expect a hit on the other process's render */
  if (arg == 1 && info.source != DN_SOURCE_HIT)
    return 12;
  return strcmp(body, counters->data) == 0 ? 0 : 13;
}

static void test_purge_is_seen_by_another_process(void **state) {
  fixture *f = *state;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 10000);
  assert_non_null(e);
  char body[32];
  assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
  assert_string_equal(body, "v1");
  /* Another process finds it cached: no render there. */
  assert_int_equal(in_child(f, child_get, 1, NULL), 0);
  assert_int_equal(counters->renders, 1);
  for (int round = 0; round < 5; round++) {
    assert_int_equal(in_child(f, child_purge, 0, NULL), 0);
    dn_get_info info;
    assert_int_equal(get_body(e, body, sizeof body, &info), 0);
    assert_string_equal(body, "v2");
    assert_int_not_equal(info.source, DN_SOURCE_HIT);
    snprintf(counters->data, sizeof counters->data, "v1");
    assert_int_equal(dn_engine_purge(e, "app://self/page", 15, NULL), 0);
    assert_int_equal(in_child(f, child_get, 0, NULL), 0); /* sees v1 */
  }
  dn_engine_free(e);
  dn_store_free(st);
}

/* ---- a stampede from several processes ------------------------------------
 */
#define PROCS 4

static void test_processes_missing_at_once_render_once(void **state) {
  fixture *f = *state;
  pid_t pids[PROCS];
  for (int i = 0; i < PROCS; i++)
    in_child(f, child_get, 0, &pids[i]);
  for (int i = 0; i < PROCS; i++) {
    int status;
    waitpid(pids[i], &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  assert_int_equal(counters->renders, 1);
}

/* ---- a lease holder that dies ----------------------------------------------
 */
static int child_get_short_lease(fixture *f, int arg) {
  (void)arg;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 500);
  if (!e)
    return 10;
  char body[32];
  int rc = get_body(e, body, sizeof body, NULL);
  dn_engine_free(e);
  dn_store_free(st);
  return rc ? 11 : strcmp(body, "v1") ? 12 : 0;
}

static void test_dead_lease_holder_delays_others_briefly(void **state) {
  fixture *f = *state;
  counters->block_first = 1;
  pid_t holder;
  in_child(f, child_get_short_lease, 0, &holder);
  while (__atomic_load_n(&counters->renders, __ATOMIC_SEQ_CST) == 0)
    usleep(1000); /* the holder has taken the lease and is rendering */
  kill(holder, SIGKILL);
  waitpid(holder, NULL, 0);
  /* The lease expires after 500 ms; the next process renders itself. */
  assert_int_equal(in_child(f, child_get_short_lease, 0, NULL), 0);
  assert_int_equal(counters->renders, 2);
}

/* ---- a soft purge across processes ------------------------------------------
 */
static void
test_soft_purge_serves_stale_while_another_process_renders(void **state) {
  fixture *f = *state;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 10000);
  assert_non_null(e);
  char body[32];
  assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
  snprintf(counters->data, sizeof counters->data, "v2");
  dn_slice tag = dn_slice_from_cstr("shared-data");
  assert_int_equal(
      dn_engine_invalidate_tags_ex(e, &tag, 1, DN_INVALIDATE_SOFT, NULL), 0);
  int before = counters->renders;
  pid_t child;
  in_child(f, child_get, 0, &child); /* regenerates: its render takes 200 ms */
  while (__atomic_load_n(&counters->renders, __ATOMIC_SEQ_CST) == before)
    usleep(1000);
  /* Meanwhile this process gets the stale page and renders nothing. */
  dn_get_info info;
  assert_int_equal(get_body(e, body, sizeof body, &info), 0);
  assert_string_equal(body, "v1");
  assert_int_equal(info.renders, 0);
  int status;
  waitpid(child, &status, 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(get_body(e, body, sizeof body, &info), 0);
  assert_string_equal(body, "v2");
  assert_int_equal(counters->renders, before + 1);
  dn_engine_free(e);
  dn_store_free(st);
}

/* ---- the server goes away and comes back ------------------------------------
 */
static void test_engine_serves_through_a_dead_store(void **state) {
  fixture *f = *state;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 200);
  assert_non_null(e);
  char body[32];
  assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
  dn_test_server_kill(&f->server);
  dn_engine_stats before, after;
  dn_engine_stats_get(e, &before);
  int renders = counters->renders;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
    assert_string_equal(body, "v1");
  }
  dn_engine_stats_get(e, &after);
  assert_true(after.store_errors > before.store_errors);
  assert_int_equal(counters->renders, renders + 3); /* rendered through */
  /* A purge that cannot reach the store says so. */
  dn_error err;
  assert_int_equal(dn_engine_purge(e, "app://self/page", 15, &err), DN_ESTORE);
  assert_int_equal(dn_test_server_restart(&f->server), 0);
  /* Back: after the store's retry interval, gets cache again. */
  int cached = 0;
  for (int i = 0; i < 60 && !cached; i++) {
    dn_get_info info;
    assert_int_equal(get_body(e, body, sizeof body, &info), 0);
    cached = info.source == DN_SOURCE_HIT;
    usleep(100 * 1000);
  }
  assert_true(cached);
  dn_engine_free(e);
  dn_store_free(st);
}

/* An outage in which every request fails store operations writes two
 * lines: one when it starts, one when the store is back, with the count. */
static void test_outage_is_logged_twice(void **state) {
  fixture *f = *state;
  int lines = 0;
  log_lines = &lines;
  dn_store *st;
  dn_engine *e = engine_for(f, &st, 200);
  assert_non_null(e);
  char body[32];
  assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
  dn_test_server_kill(&f->server);
  dn_engine_stats before, after;
  dn_engine_stats_get(e, &before);
  for (int i = 0; i < 8; i++) /* each renders, in 200 ms */
    assert_int_equal(get_body(e, body, sizeof body, NULL), 0);
  dn_engine_stats_get(e, &after);
  assert_true(after.store_errors - before.store_errors >= 8);
  assert_int_equal(lines, 1);
  assert_int_equal(dn_test_server_restart(&f->server), 0);
  int cached = 0;
  for (int i = 0; i < 60 && !cached; i++) {
    dn_get_info info;
    assert_int_equal(get_body(e, body, sizeof body, &info), 0);
    cached = info.source == DN_SOURCE_HIT;
    usleep(100 * 1000);
  }
  assert_true(cached);
  assert_int_equal(lines, 2);
  log_lines = NULL;
  dn_engine_free(e);
  dn_store_free(st);
}

int main(void) {
  counters = mmap(NULL, sizeof *counters, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (counters == MAP_FAILED)
    return 1;
#define BOTH(fn)                                                               \
  cmocka_unit_test_setup_teardown(fn, setup_memcached, teardown),              \
      cmocka_unit_test_setup_teardown(fn, setup_redis, teardown)
  const struct CMUnitTest tests[] = {
      BOTH(test_purge_is_seen_by_another_process),
      BOTH(test_processes_missing_at_once_render_once),
      BOTH(test_dead_lease_holder_delays_others_briefly),
      BOTH(test_soft_purge_serves_stale_while_another_process_renders),
      BOTH(test_engine_serves_through_a_dead_store),
      BOTH(test_outage_is_logged_twice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
