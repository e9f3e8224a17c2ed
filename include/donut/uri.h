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

/* Normalises `uri` (len bytes; it need not be NUL-terminated), following
 * RFC 3986 (see docs/uri-tags.md):
 *  - scheme and host lower-cased, an IPv6 host in RFC 5952 form;
 *  - percent-encoding normalised (RFC 3986 §6.2.2): hex digits upper-cased,
 *    encoded unreserved characters decoded, in every component;
 *  - dot-segments removed (RFC 3986 §5.2.4); a path without authority
 *    that would then start with "//" keeps "/." in front;
 *  - leading zeros and an empty port dropped;
 *  - the query split on '&', empty pairs dropped, pairs stably sorted by
 *    name (the bytes before the first '='), and an empty query dropped;
 *    the fragment is dropped.
 * The input must be an absolute URI ("scheme:" then the rest) of at most
 * DN_URI_MAX bytes using only the characters RFC 3986 allows.
 * On success *out is an owned, NUL-terminated string (free with dn_free)
 * and *out_len (may be NULL) its length. Errors: DN_EURI, with the byte
 * position and reason in err (may be NULL); DN_ENOMEM; DN_EINVAL when out
 * is NULL or uri is NULL with len > 0. On failure *out is untouched.
 * Thread-safe. */
DN_EXTERN int dn_uri_normalize(const char *uri, size_t len, char **out,
                               size_t *out_len, dn_error *err);

/* Computes the URI tag of `uri`, which is normalised first. The tag is 1 to
 * DN_URI_TAG_MAX bytes drawn from A-Z a-z 0-9 and !#$%'+-.^_`|~ only (HTTP
 * token characters without '*' and '&', which Akamai's Edge-Cache-Tag also
 * accepts), so it is valid in every CDN's tag header and passes
 * dn_tag_validate. Distinct normal forms get distinct tags; the format is
 * in docs/uri-tags.md. `out` must have room for DN_URI_TAG_MAX + 1 bytes;
 * it is NUL-terminated, and *out_len (may be NULL) gets its length. Does
 * not allocate when uri is already normal; otherwise allocates one
 * temporary normalised copy. Returns 0, DN_EURI (position and reason in
 * err), DN_ENOMEM or DN_EINVAL (NULL out, or NULL uri with len > 0).
 * Thread-safe. */
DN_EXTERN int dn_uri_tag(const char *uri, size_t len,
                         char out[DN_URI_TAG_MAX + 1], size_t *out_len,
                         dn_error *err);

/* Like dn_uri_tag, for a URI that is already normalised (skips that step;
 * the caller vouches for the input, and any bytes still give a well-formed
 * tag). Never allocates. Returns 0, or DN_EINVAL when uri or out is NULL
 * or len is 0. Thread-safe. */
DN_EXTERN int dn_uri_tag_normalized(const char *uri, size_t len,
                                    char out[DN_URI_TAG_MAX + 1],
                                    size_t *out_len);

/* Checks that `tag` may be used as a surrogate key: 1 to DN_TAG_MAX bytes of
 * printable ASCII (0x21-0x7E) other than '"', ',', '=' and '\\'. Returns 0,
 * DN_ETAG with the position of the first bad byte (or of the length limit)
 * in err, or DN_EINVAL when tag is NULL with len > 0. Akamai accepts fewer
 * characters and at most 128 (see docs/uri-tags.md). Thread-safe. */
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
