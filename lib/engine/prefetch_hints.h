/* prefetch_hints.h - which tags a stored record carried when this process last
 * saw it.
 *
 * To check a view against a shared store the engine needs the view and the
 * current versions of its tags; the tags are only known once the view has
 * been read. Remembering them per key lets the next read fetch the view
 * and the versions it is expected to need in one multi-get. A hint is only
 * a guess: when it does not match the record, the engine reads the right
 * versions in a second round trip, so a wrong or lost hint costs time,
 * never correctness.
 */
#ifndef DN_HINTS_H
#define DN_HINTS_H

#include "buf.h"
#include "donut/common.h"
#include "record.h"

typedef struct dn__hints dn__hints;

int dn__hints_new(dn__hints **out);
void dn__hints_free(dn__hints *h);

/* Appends the remembered tags of `key` to `tags` as one NUL-separated
 * list and returns how many there are (0 when none is remembered). When
 * seq is not NULL it receives the invalidation sequence the record was
 * composed at (0 when unknown). */
size_t dn__hints_get(dn__hints *h, dn_slice key, dn__buf *tags, uint64_t *seq);

/* Remembers the tags of `key` and the sequence it was composed at (0 when
 * unknown); failures are ignored (hints are optional). */
void dn__hints_put(dn__hints *h, dn_slice key, const dn__tagver *tags, size_t n,
                   uint64_t seq);

#endif
