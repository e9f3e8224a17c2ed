/* support.c - the failing allocator and data-file helpers used by the
 * tests (see test_support.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "servers.h"
#include "test_support.h"

static long fail_at, calls, live;

/* A small header records the size so realloc/free keep `live` exact. */
typedef struct {
  size_t n;
  size_t pad;
} hdr;

static void *t_malloc(size_t n) {
  if (fail_at && ++calls == fail_at)
    return NULL;
  if (!fail_at)
    calls++;
  hdr *h = malloc(sizeof(hdr) + n);
  if (!h)
    return NULL;
  h->n = n;
  live++;
  return h + 1;
}

static void *t_realloc(void *p, size_t n) {
  if (!p)
    return t_malloc(n);
  if (fail_at && ++calls == fail_at)
    return NULL;
  if (!fail_at)
    calls++;
  hdr *h = realloc((hdr *)p - 1, sizeof(hdr) + n);
  if (!h)
    return NULL;
  h->n = n;
  return h + 1;
}

static void t_free(void *p) {
  if (!p)
    return;
  live--;
  free((hdr *)p - 1);
}

void dn_test_fail_alloc_at(long n) {
  fail_at = n;
  calls = 0;
  live = 0;
  dn_replace_allocator(t_malloc, t_realloc, t_free);
}

void dn_test_alloc_reset(void) { dn_replace_allocator(NULL, NULL, NULL); }

long dn_test_alloc_calls(void) { return calls; }

long dn_test_alloc_live(void) { return live; }

char *dn_test_read_data(const char *name, size_t *len_out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", DN_TEST_DATA_DIR, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)sz + 1);
  if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (!buf)
    return NULL;
  buf[sz] = '\0';
  if (len_out)
    *len_out = (size_t)sz;
  return buf;
}

void dn_test_every_alloc_failure(int (*fn)(void *), void *ud) {
  for (long n = 1; n < 100000; n++) {
    dn_test_fail_alloc_at(n);
    int rc = fn(ud);
    long leaked = dn_test_alloc_live();
    long made = dn_test_alloc_calls();
    dn_test_alloc_reset();
    if (leaked != 0)
      fail_msg("allocation failure %ld leaked %ld blocks", n, leaked);
    if (made < n) {
      /* No allocation failed: the run must have succeeded. */
      if (rc != 0)
        fail_msg("run without failure returned %d", rc);
      return;
    }
    /* Paths that degrade gracefully (a cache write that fails still
     * serves) may succeed; anything else must report DN_ENOMEM. */
    if (rc != DN_ENOMEM && rc != 0)
      fail_msg("allocation %ld failed but call returned %d (%s)", n, rc,
               dn_strerror(rc));
  }
  fail_msg("too many allocations");
}

/* One real server per test process, started on first use and stopped at
 * exit; every store gets its own key namespace, so tests never see each
 * other's keys. */
static dn_test_server shared_server;
static int shared_server_kind;
static unsigned store_counter;

static void stop_shared_server(void) { dn_test_server_stop(&shared_server); }

static int start_shared_server(int kind) {
  if (shared_server_kind == kind)
    return 0;
  if (dn_test_server_start(&shared_server, kind, NULL) != 0) {
    fprintf(stderr, "cannot start the test server: %s\n", shared_server.error);
    return DN_ESTORE;
  }
  shared_server_kind = kind;
  atexit(stop_shared_server);
  return 0;
}

int dn_test_store_new(dn_store **out) {
  const char *kind = getenv("DONUT_TEST_STORE");
  if (!kind || !*kind || strcmp(kind, "memory") == 0)
    return dn_store_memory_new(NULL, out);
  if (strcmp(kind, "null") == 0)
    return dn_store_null_new(out);
  int memcached = strcmp(kind, "memcached") == 0;
  if (!memcached && strcmp(kind, "redis") != 0)
    return DN_ECONFIG;
  int rc = start_shared_server(memcached ? DN_TEST_MEMCACHED : DN_TEST_REDIS);
  if (rc)
    return rc;
  char ns[48];
  snprintf(ns, sizeof ns, "t%ld-%u", (long)getpid(), ++store_counter);
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  o.key_namespace = ns;
  dn_error err;
  rc = memcached ? dn_store_memcached_new(shared_server.addr, &o, out, &err)
                 : dn_store_redis_new(shared_server.url, &o, out, &err);
  if (rc && rc != DN_ENOMEM)
    fprintf(stderr, "cannot create the %s store: %s\n", kind, err.text);
  return rc;
}
