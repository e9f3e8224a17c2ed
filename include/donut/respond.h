/* donut/respond.h - from an engine representation and a request to the
 * status and complete header list to send.
 *
 * This joins the engine (donut/engine.h) and the HTTP layer
 * (donut/http.h): the representation's ETag, Last-Modified, closure tags,
 * lifetimes and Vary become the inputs of dn_http_respond, which evaluates
 * the request's preconditions (200, 304 or 412) and computes Cache-Control,
 * the CDN profile's fields and the rest.
 */
#ifndef DONUT_RESPOND_H
#define DONUT_RESPOND_H

#include "donut/engine.h"
#include "donut/http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What dn_rep_respond needs besides the representation and the request.
 * Initialise with dn_respond_options_init, then set fields; new fields are
 * only ever added at the end (see "Options structs" in donut/common.h). */
typedef struct dn_respond_options {
  /* sizeof(dn_respond_options) as the program was compiled, set by
   * dn_respond_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  dn_cdn_profile cdn;
  /* Now, in ms since the epoch (use the engine's clock). */
  uint64_t now_ms;
  /* Client lifetime (Cache-Control max-age) in seconds; DN_HTTP_UNSET
   * means 0, so browsers revalidate with the ETag. */
  int64_t max_age;
  int64_t stale_while_revalidate; /* DN_HTTP_UNSET: none */
  int64_t stale_if_error;         /* DN_HTTP_UNSET: none */
  /* Extra DN_HTTP_* flags, e.g. DN_HTTP_NO_CACHE. A page that is not
   * cacheable (it has uncacheable holes) always gets DN_HTTP_PRIVATE. */
  unsigned flags;
} dn_respond_options;

/* Fills the first `size` bytes of opts with the defaults (no CDN, max-age
 * unset, no extra flags) and sets opts->size to `size`; use the macro,
 * which passes sizeof *opts. */
DN_EXTERN void dn_respond_options_init_size(dn_respond_options *opts,
                                            size_t size);
#define dn_respond_options_init(opts)                                          \
  dn_respond_options_init_size((opts), sizeof *(opts))

/* Computes the response to `req` for `rep` (see dn_http_respond for the
 * rules). The rep's own headers are the renderer's fields; Age is counted
 * from when the view was composed. Returns 0, DN_EINVAL (opts not
 * initialised with dn_respond_options_init, or from a newer header and
 * setting fields this libdonut does not know) or the error of
 * dn_http_respond; *out is untouched on failure. Thread-safe. */
DN_EXTERN int dn_rep_respond(const dn_rep *rep, const dn_http_request *req,
                             const dn_respond_options *opts,
                             dn_http_result *out, dn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_RESPOND_H */
