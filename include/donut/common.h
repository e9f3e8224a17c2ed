/* donut/common.h - error codes, slices, the allocator and version.
 *
 * Everything else in the public API builds on these few definitions:
 * fallible calls return 0 or a negative DN_E* code, byte strings travel as
 * dn_slice values, parsers report position and text through dn_error, and
 * every allocation the library makes goes through one replaceable allocator.
 */
#ifndef DONUT_COMMON_H
#define DONUT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DN_STATIC)
#define DN_EXTERN
#elif defined(DN_BUILDING_LIBRARY)
#define DN_EXTERN __attribute__((visibility("default")))
#else
#define DN_EXTERN
#endif

#define DN_VERSION_MAJOR 0
#define DN_VERSION_MINOR 1
#define DN_VERSION_PATCH 0
#define DN_VERSION_STRING "0.1.0"

/* Error codes. Values are stable and never renumbered; new codes are
 * appended. XX(name, value, message). */
#define DN_ERRNO_MAP(XX)                                                       \
  XX(ENOMEM, -1, "out of memory")                                              \
  XX(EINVAL, -2, "invalid argument")                                           \
  XX(EURI, -3, "invalid URI")                                                  \
  XX(ETEMPLATE, -4, "invalid URI template")                                    \
  XX(EJSON, -5, "invalid JSON")                                                \
  XX(ENOTFOUND, -6, "not found")                                               \
  XX(ERANGE, -7, "value out of range")                                         \
  XX(ECYCLE, -8, "resource embeds itself")                                     \
  XX(EDEPTH, -9, "resources embedded too deeply")                              \
  XX(ERENDER, -10, "renderer failed")                                          \
  XX(ENOTSUP, -11, "operation not supported")                                  \
  XX(ESTORE, -12, "store failure")                                             \
  XX(EHEADER, -13, "invalid header")                                           \
  XX(ETAG, -14, "invalid tag")                                                 \
  XX(ESTATE, -15, "call not allowed in this state")                            \
  XX(EEXIST, -16, "already exists")                                            \
  XX(ETOOBIG, -17, "value too large")                                          \
  XX(ECORRUPT, -18, "corrupt or foreign value")                                \
  XX(ETIMEDOUT, -19, "timed out")                                              \
  XX(EBUSY, -20, "resource busy")                                              \
  XX(ENORENDERER, -21, "no renderer registered for URI")                       \
  XX(EIO, -22, "input/output error")                                           \
  XX(ECONFIG, -23, "invalid configuration")                                    \
  XX(EUPSTREAM, -24, "upstream failed")

typedef enum dn_errno {
#define DN__ERR_ENUM(name, value, msg) DN_##name = value,
  DN_ERRNO_MAP(DN__ERR_ENUM)
#undef DN__ERR_ENUM
      DN__ERR_LAST = -25
} dn_errno;

/* Returns a static, human-readable message for a DN_E* code. Unknown codes
 * give "unknown error". Never returns NULL. Thread-safe. */
DN_EXTERN const char *dn_strerror(int code);

/* Returns the symbolic name of a code, such as "DN_EURI". */
DN_EXTERN const char *dn_err_name(int code);

/* Where and why a parser rejected its input. Filled by parsers that take a
 * `dn_error *` (which may be NULL). Filling it never allocates. `position`
 * is a byte offset into the input; `line`/`column` are 1-based and zero when
 * they do not apply. */
typedef struct dn_error {
  int code;
  size_t position;
  int line;
  int column;
  char text[160];
} dn_error;

/* A borrowed byte string: (pointer, length), not NUL-terminated. */
typedef struct dn_slice {
  const char *ptr;
  size_t len;
} dn_slice;

/* One header field: a name and a value, both borrowed. Used for request
 * headers handed to the library and for response headers it returns. */
typedef struct dn_header {
  dn_slice name;
  dn_slice value;
} dn_header;

/* Options structs. Every dn_*_options struct that a program fills and
 * passes in starts with `size_t size`, so that fields can be added at its
 * end without breaking programs built against an older header:
 *  - initialise it with its dn_*_options_init(&opts) macro, which calls
 *    the library's dn_*_options_init_size(&opts, sizeof opts): the library
 *    writes its defaults into the bytes the program has, never more, and
 *    sets size; then set the fields you need. A struct initialised any
 *    other way ({0}, a designated initialiser) has size 0 and is refused;
 *  - a program built against an older header passes a smaller size: the
 *    fields it does not have take their defaults;
 *  - a program built against a newer header passes a larger size: it is
 *    accepted when every field this libdonut does not know is zero, and
 *    refused with DN_EINVAL otherwise (the program needs a newer
 *    libdonut);
 *  - a size of 0, or one that no version of the struct has (smaller than
 *    the end of its first field after size, or not a multiple of the
 *    alignment of size_t), is refused with DN_EINVAL.
 * Structs the library fills (stats, info, results) carry no size. */

/* Builds a slice over a NUL-terminated string (NULL gives an empty slice). */
DN_EXTERN dn_slice dn_slice_from_cstr(const char *s);

/* Replaces the allocator the library uses for everything it allocates.
 * Call before creating any donut object; the three functions must behave
 * like malloc, realloc and free (free(NULL) is a no-op). Passing NULL for
 * all three restores the C library's. Returns 0 or DN_EINVAL when only some
 * are NULL. Not thread-safe. */
DN_EXTERN int dn_replace_allocator(void *(*malloc_fn)(size_t),
                                   void *(*realloc_fn)(void *, size_t),
                                   void (*free_fn)(void *));

/* Frees memory the library handed to the caller as "owned char *" (for
 * example from dn_uri_normalize). NULL is a no-op. */
DN_EXTERN void dn_free(void *ptr);

/* The library version as "major.minor.patch". */
DN_EXTERN const char *dn_version(void);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_COMMON_H */
