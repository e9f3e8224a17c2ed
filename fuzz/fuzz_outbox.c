/* fuzz_outbox.c - libFuzzer target for outbox replay.
 *
 * Outbox files are read back after crashes, so replay must survive any
 * bytes: torn lines, flipped bits, hostile JSON. Checks:
 *  - no crash, replay returns 0 (or DN_ENOMEM), and every line that is
 *    not a valid record is counted as damaged rather than applied;
 *  - re-encoding what survived and replaying that gives the same entries
 *    with nothing damaged (the writer's format is what the reader reads).
 * A failed property aborts, which libFuzzer reports as a crash.
 */
/* purge_internal.h pulls in <uv.h>, which needs POSIX declarations. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "purge_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dn__vec v;
  dn__vec_init(&v, sizeof(dn__entry *));
  size_t corrupt = 0, lines = 0;
  for (size_t i = 0; i < size; i++)
    lines += data[i] == '\n';
  int rc = dn__outbox_apply(&v, (const char *)data, size, &corrupt);
  CHECK(rc == 0 || rc == DN_ENOMEM);
  CHECK(corrupt <= lines + 1);
  dn__buf out;
  dn__buf_init(&out, 0);
  for (size_t i = 0; rc == 0 && i < v.len; i++) {
    const dn__entry *e = DN__VEC_AT(&v, dn__entry *, i);
    CHECK(e->state == DN_OUTBOX_PENDING || e->state == DN_OUTBOX_FAILED);
    CHECK(dn__strlist_count(&e->tags) > 0);
    CHECK(i == 0 || DN__VEC_AT(&v, dn__entry *, i - 1)->id < e->id);
    rc = dn__outbox_encode_entry(&out, e);
  }
  if (rc == 0) {
    size_t entries = 0, again = 0;
    CHECK(dn__outbox_replay_buf(out.data ? out.data : "", out.len, &entries,
                                &again) == 0);
    CHECK(entries == v.len && again == 0);
  }
  dn__buf_free(&out);
  dn__entries_free(&v);
  return 0;
}
