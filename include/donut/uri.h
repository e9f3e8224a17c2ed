/* donut/uri.h - resource URIs, URI tags and tag validation.
 *
 * Resources are addressed by URIs such as "app://self/blog/posting?id=1".
 * Before a URI is used as a cache key it is normalised, so that two
 * spellings of one resource share one cache entry. A URI tag is the
 * surrogate key that stands for one normalised URI in tag headers and
 * purge requests.
 */
#ifndef DONUT_URI_H
#define DONUT_URI_H

#include "donut/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest URI the library accepts, in bytes. */
#define DN_URI_MAX 8192
/* The longest URI tag, in bytes (Akamai's per-tag limit). */
#define DN_URI_TAG_MAX 128
/* The longest explicit tag (Fastly's per-key limit). */
#define DN_TAG_MAX 1024

/* Normalises `uri` (len bytes; it need not be NUL-terminated):
 *  - scheme and host lower-cased;
 *  - percent-encoding normalised (RFC 3986 §6.2.2): hex digits upper-cased,
 *    encoded unreserved characters decoded;
 *  - dot-segments removed (RFC 3986 §5.2.4);
 *  - query parameters stably sorted by name (repeated names keep their
 *    order), and an empty query dropped; the fragment is dropped.
 * On success *out is an owned, NUL-terminated string (free with dn_free)
 * and *out_len (may be NULL) its length. On failure returns DN_EURI (or
 * DN_ENOMEM), fills err with the byte position and reason, and leaves *out
 * untouched. Thread-safe. */
DN_EXTERN int dn_uri_normalize(const char *uri, size_t len, char **out,
                               size_t *out_len, dn_error *err);

/* Computes the URI tag of `uri`, which is normalised first. The tag is at
 * most DN_URI_TAG_MAX bytes of printable ASCII with no space, comma, quote,
 * backslash or '=' (see docs/uri-tags.md for the format). `out` must have
 * room for DN_URI_TAG_MAX + 1 bytes; it is NUL-terminated. Never allocates
 * on success beyond a temporary normalised copy. Returns 0, DN_EURI or
 * DN_ENOMEM. Thread-safe. */
DN_EXTERN int dn_uri_tag(const char *uri, size_t len,
                         char out[DN_URI_TAG_MAX + 1], size_t *out_len,
                         dn_error *err);

/* Like dn_uri_tag, for a URI that is already normalised (skips that step;
 * the caller vouches for the input). Never allocates. */
DN_EXTERN int dn_uri_tag_normalized(const char *uri, size_t len,
                                    char out[DN_URI_TAG_MAX + 1],
                                    size_t *out_len);

/* Checks that `tag` may be used as a surrogate key: 1 to DN_TAG_MAX bytes of
 * printable ASCII (0x21-0x7E) other than '"', ',', '=' and '\\'. Returns 0
 * or DN_ETAG with the position of the first bad byte in err. */
DN_EXTERN int dn_tag_validate(const char *tag, size_t len, dn_error *err);

/* A list of owned strings, as returned by dn_uri_tags_from_rows. */
typedef struct dn_strings {
  char **items; /* each NUL-terminated */
  size_t *lens;
  size_t count;
} dn_strings;

/* Frees the items and arrays of a dn_strings and zeroes it. NULL is a
 * no-op. */
DN_EXTERN void dn_strings_free(dn_strings *s);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_URI_H */
