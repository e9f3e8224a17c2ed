/* uri.h - internal entry points of the URI module.
 *
 * The engine normalises the URI of every request before it looks anything
 * up, so lib/ gets allocation-free variants of the public calls: they
 * append to a caller's dn__buf or write into a fixed array. The public
 * functions in donut/uri.h are thin wrappers over these.
 */
#ifndef DN_URI_H
#define DN_URI_H

#include <stddef.h>

#include "buf.h"
#include "donut/uri.h"

/* The longest readable prefix a long URI tag keeps before its marker. The
 * marker '#' and 32 hex digits of XXH3-128 follow it (docs/uri-tags.md). */
#define DN__URI_TAG_PREFIX_MAX (DN_URI_TAG_MAX - 1 - 32)

/* Validates `uri` (len bytes) and appends its normal form to `out`. A URI
 * that is already normal is detected in one pass and copied; other URIs
 * are rebuilt (a second pass), and only an unsorted query allocates
 * anything besides the output. Returns 0; DN_EURI with position and reason
 * in err (may be NULL); DN_ENOMEM; or DN_ETOOBIG when out's limit is hit.
 * On failure out is as it was. Thread-safe. */
int dn__uri_normalize_buf(dn__buf *out, const char *uri, size_t len,
                          dn_error *err);

/* Like dn__uri_normalize_buf but always rebuilds, never copies. Tests and
 * the fuzzer use it to check that the "already normal" shortcut agrees
 * with the general path. */
int dn__uri_normalize_full(dn__buf *out, const char *uri, size_t len,
                           dn_error *err);

/* Returns 1 when `uri` is valid and already in normal form, else 0. One
 * pass, never allocates. */
int dn__uri_is_normal(const char *uri, size_t len);

/* Writes the URI tag of the normalised URI `norm` into out (NUL-terminated)
 * and returns its length (1 to DN_URI_TAG_MAX; 0 only when len is 0).
 * Never fails and never allocates; the caller vouches that norm is normal
 * (any bytes still give a valid tag, just not a meaningful one). */
size_t dn__uri_tag_write(const char *norm, size_t len,
                         char out[DN_URI_TAG_MAX + 1]);

/* Appends the URI tag of the normalised URI `norm` to out. Returns 0,
 * DN_ENOMEM or DN_ETOOBIG; out is unchanged on failure. */
int dn__uri_tag_buf(dn__buf *out, const char *norm, size_t len);

#endif /* DN_URI_H */
