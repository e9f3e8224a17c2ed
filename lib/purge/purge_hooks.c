/* purge_hooks.c - a purger's log, clock and randomness: the callbacks of
 * its options, or the defaults when they are not given (no log, the real
 * time, OpenSSL's RAND_bytes). Called from any thread.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <time.h>

#include "purge_internal.h"
#include "text.h"

void dn__purge_log(dn_purger *p, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dn__log_emit(p->o.log, p->o.log_ud, level, 600, fmt, ap);
  va_end(ap);
}

uint64_t dn__purge_now(dn_purger *p) {
  if (p->o.now_ms)
    return p->o.now_ms(p->o.clock_ud);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void dn__purge_random(dn_purger *p, void *buf, size_t n) {
  if (p->o.random && p->o.random(p->o.random_ud, buf, n) == 0)
    return;
  if (!p->o.random && RAND_bytes(buf, (int)n) == 1)
    return;
  /* No randomness to be had: jitter and nonces still differ per call. */
  uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)buf;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ((unsigned char *)buf)[i] = (unsigned char)x;
  }
}
