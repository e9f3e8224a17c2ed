/* test_support.h - helpers shared by the cmocka test programs.
 *
 * Includes cmocka in the right order and provides an allocator that fails
 * the Nth allocation, used to prove that every path reports DN_ENOMEM and
 * leaves nothing half-built.
 */
#ifndef DN_TEST_SUPPORT_H
#define DN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "donut.h"

/* Installs an allocator that fails the `n`th call from now on (1-based);
 * n == 0 never fails. Counts every call. */
void dn_test_fail_alloc_at(long n);
/* Restores the C library allocator. */
void dn_test_alloc_reset(void);
/* How many allocation calls happened since dn_test_fail_alloc_at(). */
long dn_test_alloc_calls(void);
/* Live allocations made through the test allocator (leak check). */
long dn_test_alloc_live(void);

/* Reads a file under tests/data into a malloc'ed NUL-terminated buffer. */
char *dn_test_read_data(const char *name, size_t *len_out);

/* Runs `fn` once with allocation n failing for n = 1, 2, ... until a run
 * makes no failing allocation. `fn` must return 0 or DN_ENOMEM when an
 * allocation failed (0 where the code degrades gracefully), and 0 when none
 * did; anything else fails the test, and so does a leaked allocation. */
void dn_test_every_alloc_failure(int (*fn)(void *), void *ud);

/* Creates the store the engine tests run against: DONUT_TEST_STORE names
 * it: "memory" (the default), "null", or "memcached" / "redis", for which
 * a real server is started on a free loopback port on first use (and
 * stopped at exit) and each store gets its own key namespace. */
int dn_test_store_new(dn_store **out);

#endif
