/* esi.h - the ESI 1.0 subset that origin mode understands.
 *
 * In origin mode donut sits in front of any web application. An upstream
 * response may carry ESI markup (W3C Note "ESI Language Specification
 * 1.0"); dn__esi_parse turns such a body into a document: a sequence of
 * literal TEXT items, sent as they are, and INCLUDE items, which become
 * the engine's holes. The supported subset is
 *
 *   <esi:include src="..." [alt="..."] [onerror="continue"]/>   (§3.1)
 *   <esi:include ...></esi:include>       (only whitespace between)
 *   <esi:remove> ... </esi:remove>        (§3.6: the content is dropped)
 *   <!--esi ... -->                       (§3.8: markers dropped, content
 *                                          processed as ESI)
 *
 * Anything else that looks like ESI markup (`<esi:NAME`, `</esi:NAME`) is
 * an error, so ESI markup never reaches a visitor. Everything that is not
 * ESI markup is copied byte for byte.
 */
#ifndef DN_ESI_H
#define DN_ESI_H

#include <stddef.h>

#include "donut/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The code dn__esi_parse returns for malformed markup (and for bad
 * arguments). common.h has no parser code for ESI yet; when one is
 * appended to DN_ERRNO_MAP this is the one line to change. */
#define DN__ESI_EMARKUP DN_EINVAL

#define DN__ESI_DEFAULT_MAX_BYTES ((size_t)8 << 20)
#define DN__ESI_DEFAULT_MAX_INCLUDES ((size_t)256)

/* Limits on one body. A field of zero takes the default above. */
typedef struct dn__esi_limits {
  size_t max_bytes;    /* longest body accepted */
  size_t max_includes; /* most <esi:include> elements accepted */
} dn__esi_limits;

typedef enum dn__esi_kind { DN__ESI_TEXT, DN__ESI_INCLUDE } dn__esi_kind;

/* One item of a document. Every slice points into storage the document
 * owns, so items stay valid until dn__esi_free. */
typedef struct dn__esi_item {
  dn__esi_kind kind;
  /* TEXT: bytes to send as they are (may hold NULs); never empty. */
  dn_slice text;
  /* INCLUDE: the attribute values after entity decoding, never empty, free
   * of control bytes and spaces, and NUL-terminated (ptr[len] == '\0') so
   * they can go where a C string is expected. alt is {NULL, 0} when the
   * attribute is absent. */
  dn_slice src, alt;
  int onerror_continue; /* INCLUDE: onerror="continue" was given */
  size_t offset;        /* where the item starts in the input */
} dn__esi_item;

typedef struct dn__esi_doc dn__esi_doc;

/* Parses the ESI markup in `body` (len bytes, not NUL-terminated, may hold
 * NULs) into a new document stored in *out, which the caller owns and
 * releases with dn__esi_free. `lim` may be NULL for the defaults.
 *
 * Items come in input order. Adjacent texts are merged (text before and
 * after an <esi:remove> becomes one item), so two TEXT items are never
 * neighbours and no TEXT item is empty; an empty body gives no items, and
 * a body without ESI markup gives one TEXT item. A TEXT item's offset is
 * that of its first byte; an INCLUDE's is that of its '<'. The document
 * never needs more bytes than the input holds. A body without ESI costs
 * one memchr scan, one copy and two allocations.
 *
 * Returns 0; DN__ESI_EMARKUP for malformed markup (unclosed or truncated
 * tags, bad quoting, a missing or empty src, control bytes or spaces in
 * src/alt, a stray closing tag); DN_ENOTSUP for an ESI element or include
 * attribute donut does not implement (<esi:try>, <esi:vars>, ttl="...");
 * DN_ETOOBIG when the body or its include count is over a limit;
 * DN_ENOMEM; or DN_EINVAL when out is NULL or body is NULL with len > 0.
 * On failure err (may be NULL) holds the code, the byte offset and a
 * message such as "unclosed <esi:include> at byte 120", *out is untouched
 * and nothing leaks; err is not touched on success. Thread-safe (no
 * shared state); never reads past body + len. */
int dn__esi_parse(const void *body, size_t len, const dn__esi_limits *lim,
                  dn__esi_doc **out, dn_error *err);

/* The number of items (0 for NULL). */
size_t dn__esi_count(const dn__esi_doc *d);

/* Item i, borrowed from d; NULL when i is out of range. */
const dn__esi_item *dn__esi_at(const dn__esi_doc *d, size_t i);

/* The number of INCLUDE items (0 for NULL). */
size_t dn__esi_includes(const dn__esi_doc *d);

/* The storage every item's slices point into, borrowed from d: text bytes
 * and decoded attribute values (with their NULs), in item order. Its
 * length is never more than the input's. {NULL, 0} for NULL. */
dn_slice dn__esi_bytes(const dn__esi_doc *d);

/* Frees d and everything it owns. NULL is a no-op. */
void dn__esi_free(dn__esi_doc *d);

#ifdef __cplusplus
}
#endif
#endif /* DN_ESI_H */
