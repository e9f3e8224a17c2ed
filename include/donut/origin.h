/* donut/origin.h - origin mode: the engine in front of any HTTP application.
 *
 * A dn_origin registers one renderer for every resource under a base URI
 * (the pattern "app://self/" plus a star) that fetches the resource from an
 * upstream application over HTTP, and a server handler that passes unsafe
 * methods (POST, PUT, PATCH, DELETE, ...) through to it. The upstream's
 * response headers tell the engine everything (docs/origin.md):
 *  - lifetimes from Surrogate-Control max-age, Cache-Control s-maxage,
 *    max-age and Expires, in that order; no-store, private, no-cache and
 *    Set-Cookie make a response uncacheable;
 *  - tags from Surrogate-Key (and Cache-Tag or xkey when asked for);
 *  - Vary, which becomes part of the cache key and bubbles up;
 *  - ESI 1.0 includes (<esi:include src=".."/>), which become holes, when
 *    the response opts in with Surrogate-Control: content="ESI/1.0" (or,
 *    with esi_html, for every HTML response).
 * A cacheable fetch never carries the visitor's Cookie or Authorization. A
 * resource that answers uncacheable is fetched again with the visitor's
 * request headers, and later fetches of it go with them at once.
 *
 * Every call may come from any thread; the renderer and the handler block
 * on the upstream, so the server should offload them
 * (DN_SERVER_OFFLOAD_MISSES).
 */
#ifndef DONUT_ORIGIN_H
#define DONUT_ORIGIN_H

#include "donut/common.h"
#include "donut/engine.h"
#include "donut/server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_origin dn_origin;

/* Which response fields carry tags (Surrogate-Key always does). */
#define DN_ORIGIN_TAGS_CACHE_TAG 0x2u /* Cache-Tag, comma-separated */
#define DN_ORIGIN_TAGS_XKEY 0x4u      /* xkey, space-separated */

/* The origin's options. Initialise with dn_origin_options_init, then set
 * fields; new fields are only ever added at the end (see "Options structs"
 * in donut/common.h). */
typedef struct dn_origin_options {
  /* sizeof(dn_origin_options) as the program was compiled, set by
   * dn_origin_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  /* "http://HOST[:PORT][/PREFIX]" (required). Request "/a?b" is fetched as
   * "<upstream>/a?b". */
  const char *upstream;
  /* The server's resource_base (default "app://self"). */
  const char *resource_base;
  uint32_t connect_timeout_ms;    /* default 2000 */
  uint32_t first_byte_timeout_ms; /* until the status line; default 15000 */
  uint32_t total_timeout_ms;      /* default 30000 */
  /* Responses larger than this are served but never stored (default
   * 8 MiB); twice as large are refused (502). */
  size_t max_body_bytes;
  /* At most this many ESI includes in one response (default 256). */
  size_t max_includes;
  unsigned tag_fields; /* DN_ORIGIN_TAGS_* */
  /* 1: process ESI in every text/html response, even without the opt-in. */
  int esi_html;
  /* Lifetime of a response that states none; 0 (the default): not
   * stored. */
  int64_t default_ttl_s;
  /* Optional log callback: errors and notable events, one line each. */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
} dn_origin_options;

/* Fills the first `size` bytes of opts with the defaults above (upstream
 * is NULL) and sets opts->size to `size`; use the macro, which passes
 * sizeof *opts. */
DN_EXTERN void dn_origin_options_init_size(dn_origin_options *opts,
                                           size_t size);
#define dn_origin_options_init(opts)                                           \
  dn_origin_options_init_size((opts), sizeof *(opts))

/* Creates an origin for `engine` (borrowed; it must outlive the origin) and
 * registers its renderer for every path under resource_base. Returns 0,
 * DN_EINVAL (no upstream, options not initialised with
 * dn_origin_options_init, or from a newer header and setting fields this
 * libdonut does not know; err says which), DN_ECONFIG (a malformed
 * upstream URL or option; err says what) or DN_ENOMEM. On failure nothing
 * is registered. */
DN_EXTERN int dn_origin_new(dn_engine *engine, const dn_origin_options *opts,
                            dn_origin **out, dn_error *err);

/* Frees the origin. Call it after the server that uses it has stopped, and
 * before the engine is freed. NULL is a no-op. */
DN_EXTERN void dn_origin_free(dn_origin *origin);

/* The server handler of origin mode (pass the origin as handler_ud). GET
 * and HEAD are left to the engine (returns 0). Every other method goes to
 * the upstream as it came, body and conditional headers included, and its
 * answer goes back to the client. After a 2xx or 3xx answer, the target
 * URI, the same-origin URIs in Location and Content-Location (RFC 9111
 * §4.4) and the tags of a Donut-Invalidate field are invalidated. An
 * upstream that cannot be reached gives 502, one that is too slow 504. */
DN_EXTERN int dn_origin_handler(void *origin, const dn_server_request *req,
                                dn_server_reply *reply);

/* Counters since dn_origin_new. */
typedef struct dn_origin_stats {
  uint64_t fetches;         /* upstream exchanges for renders */
  uint64_t private_fetches; /* of those, sent with the visitor's headers */
  uint64_t passes;          /* unsafe requests passed through */
  uint64_t invalidations;   /* URIs and tags invalidated after them */
  uint64_t upstream_errors; /* refused, reset, malformed, 5xx */
  uint64_t upstream_timeouts;
} dn_origin_stats;

DN_EXTERN void dn_origin_stats_get(const dn_origin *origin,
                                   dn_origin_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_ORIGIN_H */
