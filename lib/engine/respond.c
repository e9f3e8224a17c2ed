/* respond.c - maps an engine representation onto the HTTP layer's
 * description of a representation and computes the response.
 *
 * The engine stores ETags with their quotes (a strong entity-tag); the HTTP
 * layer takes the opaque-tag without them. A page with uncacheable holes
 * has no ETag and is marked private, so no shared cache keeps a page made
 * for one visitor.
 */
#include <string.h>

#include "donut/respond.h"
#include "error.h"
#include "options.h"
#include "alloc.h"
#include "record.h"

void dn_respond_options_init_size(dn_respond_options *o, size_t size) {
  dn_respond_options d;
  memset(&d, 0, sizeof d);
  d.cdn = DN_CDN_NONE;
  d.max_age = DN_HTTP_UNSET;
  d.stale_while_revalidate = DN_HTTP_UNSET;
  d.stale_if_error = DN_HTTP_UNSET;
  dn__options_init(o, size, &d, sizeof d);
}

/* The profile's tag fields for the view's closure, computed once and kept
 * on the view (its closure never changes). NULL when they cannot be
 * computed now; the caller then lets dn_http_respond compute them. */
static const dn_http_headers *tag_fields(dn_rep *rep, dn_cdn_profile p,
                                         const dn_slice *tags, size_t n) {
  if ((int)p <= DN_CDN_NONE || (int)p >= DN__CDN_PROFILES)
    return NULL;
  dn_http_headers *h =
      atomic_load_explicit(&rep->cdn_fields[p], memory_order_acquire);
  if (h)
    return h;
  h = dn_http_headers_new();
  if (!h || dn_cdn_tag_fields(p, tags, n, h, NULL)) {
    dn_http_headers_free(h);
    return NULL;
  }
  dn_http_headers *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&rep->cdn_fields[p], &expected,
                                               h, memory_order_acq_rel,
                                               memory_order_acquire)) {
    dn_http_headers_free(h);
    h = expected;
  }
  return h;
}

int dn_rep_respond(const dn_rep *rep, const dn_http_request *req,
                   const dn_respond_options *opts, dn_http_result *out,
                   dn_error *err) {
  if (!rep || !opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "rep, opts and out are required");
  /* Options from an older header end before the fields it did not have;
   * flags is the last field this library knows. */
  dn_respond_options ro;
  dn_respond_options_init(&ro);
  int orc = DN__OPTIONS_READ(dn_respond_options, cdn, flags, &ro, opts, err);
  if (orc)
    return orc;
  opts = &ro;
  dn_http_repr r;
  dn_http_repr_init(&r);
  r.status = rep->status;
  r.fields = rep->headers;
  r.field_count = rep->nheaders;
  r.now = (int64_t)(opts->now_ms / 1000);
  if (rep->etag.len >= 2) {
    r.etag = (dn_slice){rep->etag.ptr + 1, rep->etag.len - 2};
    r.last_modified = (int64_t)(rep->last_modified_ms / 1000);
  }
  r.stored_at = (int64_t)(rep->created_ms / 1000);
  r.max_age = opts->max_age;
  r.s_maxage = rep->smaxage_s >= 0 ? rep->smaxage_s : DN_HTTP_UNSET;
  r.stale_while_revalidate = opts->stale_while_revalidate;
  r.stale_if_error = opts->stale_if_error;
  r.expires_at =
      rep->expires_ms ? (int64_t)(rep->expires_ms / 1000) : DN_HTTP_UNSET;
  r.flags = opts->flags;
  if (!(rep->flags & DN__REC_CACHEABLE))
    r.flags |= DN_HTTP_PRIVATE;
  /* The closure's tag slices sit in an array of dn__tagver; the HTTP layer
   * wants plain slices, so gather them (on the stack when few). */
  dn_slice small[64];
  dn_slice *tags = small;
  if (rep->ntags > 64) {
    tags = dn__malloc(rep->ntags * sizeof *tags);
    if (!tags)
      return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  for (size_t i = 0; i < rep->ntags; i++)
    tags[i] = rep->tags[i].tag;
  r.tags = tags;
  r.tag_count = rep->ntags;
  r.vary = rep->vary;
  r.vary_count = rep->nvary;
  /* Only views: a donut page is rebuilt per request, so caching on it would
   * only cost. Views are never handed out before they are complete, so the
   * cache is the only thing written after decoding (atomically). */
  if (rep->flags & DN__REC_CACHEABLE)
    r.cdn_tag_fields = tag_fields((dn_rep *)rep, opts->cdn, tags, rep->ntags);
  int rc = dn_http_respond(&r, req, opts->cdn, out, err);
  if (tags != small)
    dn__free(tags);
  return rc;
}
