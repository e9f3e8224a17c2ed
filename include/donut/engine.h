/* donut/engine.h - the cache engine: renderers, shells and holes, get,
 * purge and tag invalidation.
 *
 * A resource framework registers renderers for URI patterns and asks the
 * engine for resources by URI. On a miss the engine calls the renderer,
 * which writes the resource's own bytes and leaves holes where other
 * resources are embedded. The renderer's output (the shell) is cached with
 * the resource's own tags; the composed page (the view) is cached with the
 * union of every cacheable hole's tags (its closure) and a content-derived
 * ETag. Invalidating a tag or purging a URI makes every view whose closure
 * contains it stale at once, at any depth, and the next get re-renders only
 * the resources whose own tags changed.
 *
 * Thread-safety: an engine may be used by any number of threads at once.
 * Renderers may run on any thread that calls dn_engine_get. A renderer must
 * not call back into an engine (that returns DN_ESTATE).
 */
#ifndef DONUT_ENGINE_H
#define DONUT_ENGINE_H

#include "donut/common.h"
#include "donut/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_engine dn_engine;
typedef struct dn_render dn_render;
typedef struct dn_rep dn_rep;

/* The request a resource is rendered for. Renderers of uncacheable holes
 * may read any header; a cacheable resource must declare the headers it
 * reads (dn_render_vary). All fields are borrowed for the call. */
typedef struct dn_request {
  dn_slice method; /* empty means GET */
  const dn_header *headers;
  size_t nheaders;
} dn_request;

/* The clock, in milliseconds since the Unix epoch. */
typedef uint64_t (*dn_clock_fn)(void *ud);

/* Log levels for the optional log callback. */
#define DN_LOG_ERROR 0
#define DN_LOG_WARN 1
#define DN_LOG_INFO 2
#define DN_LOG_DEBUG 3

/* The engine's options. Initialise with dn_engine_options_init, then set
 * fields; new fields are only ever added at the end (see "Options structs"
 * in donut/common.h). */
typedef struct dn_engine_options {
  /* sizeof(dn_engine_options) as the program was compiled, set by
   * dn_engine_options_init: a program built against an older header keeps
   * working, the fields it does not have take their defaults. */
  size_t size;
  /* Where state is kept. NULL creates an in-process memory store owned by
   * the engine. A store passed here is borrowed: it must outlive the
   * engine and may be shared by several engines. */
  dn_store *store;
  /* Prefix of every key the engine writes; default "dn". */
  const char *key_prefix;
  /* The clock; NULL uses CLOCK_REALTIME. Tests move an injected clock. */
  dn_clock_fn now_ms;
  void *clock_ud;
  /* Deepest embedding allowed (default 32). */
  unsigned max_depth;
  /* Server-side lifetime of a resource that sets none, in seconds; 0 (the
   * default) means until invalidated, as event-driven content expects. */
  uint64_t default_ttl_s;
  /* How long a render lease lasts before another process may take over
   * (default 10000 ms); also bounds how long a waiter waits. */
  uint64_t lease_ms;
  /* After a soft invalidation (DN_INVALIDATE_SOFT), how long what it made
   * stale may still be served while one caller regenerates it (default
   * 30000 ms). */
  uint64_t soft_grace_ms;
  /* Each thread keeps the views it served last and reuses one while the
   * store's invalidation sequence has not moved since it was checked; with
   * a shared store that check reads the sequence from the server (a few
   * bytes instead of the page). A purge anywhere moves the sequence, so
   * the cache is always coherent. Set to 1 to turn it off. */
  int no_thread_cache;
  /* Optional log callback (off by default). msg is NUL-terminated. */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
} dn_engine_options;

/* Fills the first `size` bytes of opts with the defaults and sets
 * opts->size to `size`; use the macro, which passes sizeof *opts. */
DN_EXTERN void dn_engine_options_init_size(dn_engine_options *opts,
                                           size_t size);
#define dn_engine_options_init(opts)                                           \
  dn_engine_options_init_size((opts), sizeof *(opts))

/* Creates an engine. opts may be NULL for the defaults. Returns 0,
 * DN_EINVAL (also for options not initialised with dn_engine_options_init,
 * and for options from a newer header that set fields this libdonut does
 * not know) or DN_ENOMEM; on failure *out is untouched. */
DN_EXTERN int dn_engine_new(const dn_engine_options *opts, dn_engine **out);

/* Destroys an engine. No call may be in progress. NULL is a no-op. */
DN_EXTERN void dn_engine_free(dn_engine *engine);

/* ---- renderers -------------------------------------------------------------
 */

/* A renderer produces a resource's own output into r. It returns 0, or a
 * negative DN_E* code (or calls dn_render_fail) when it cannot. */
typedef int (*dn_render_fn)(dn_render *r, void *ud);

/* Registers a renderer for a URI pattern:
 *  - "scheme://host/path" matches that path with any query;
 *  - "scheme://host/path{?a,b}" is the same, naming the query variables the
 *    renderer reads (a trailing RFC 6570 query expression);
 *  - "scheme://host/prefix*" matches every path that starts with prefix.
 * The longest matching pattern wins; an exact pattern beats a prefix of the
 * same length. `name` labels the renderer in statistics (low cardinality,
 * for example "weather"); NULL uses the pattern. Registering the same
 * pattern twice replaces the renderer. Returns 0, DN_EURI (bad pattern),
 * DN_EINVAL or DN_ENOMEM. Not to be called while gets are in progress. */
DN_EXTERN int dn_engine_register(dn_engine *engine, const char *pattern,
                                 const char *name, dn_render_fn fn, void *ud);

/* ---- inside a renderer -----------------------------------------------------
 * Every function below returns 0 or a negative DN_E* code, and a call that
 * fails changes nothing. After a renderer has failed, every further call
 * returns DN_ESTATE. The strings passed are copied.
 */

/* The normalised URI being rendered (borrowed, NUL-terminated). */
DN_EXTERN const char *dn_render_uri(const dn_render *r);
/* The first value of query parameter `name`, percent-decoded, or NULL.
 * The value is borrowed until the renderer returns. */
DN_EXTERN const char *dn_render_param(dn_render *r, const char *name);
/* The request method ("GET" when none was given). */
DN_EXTERN dn_slice dn_render_method(const dn_render *r);
/* Reads a request header (case-insensitive name). An uncacheable render may
 * read any header; a cacheable one must have declared it with
 * dn_render_vary, or this returns DN_ESTATE. Missing headers give
 * DN_ENOTFOUND. */
DN_EXTERN int dn_render_header(dn_render *r, const char *name, dn_slice *out);
/* Reads a cookie from the request's Cookie headers; same rules as
 * dn_render_header for the Cookie header. */
DN_EXTERN int dn_render_cookie(dn_render *r, const char *name, dn_slice *out);
/* The i-th header field of the request, in the order received, for a render
 * that has been marked uncacheable (a cacheable one must name the headers it
 * reads with dn_render_vary). Returns 0, DN_ENOTFOUND past the last field or
 * DN_ESTATE for a cacheable render. The slices are borrowed for the call. */
DN_EXTERN int dn_render_header_at(dn_render *r, size_t i, dn_header *out);
/* Declares that the output depends on request header `name`. The header's
 * value becomes part of the cache key, and it bubbles up to every page
 * that embeds this resource (and into their Vary). */
DN_EXTERN int dn_render_vary(dn_render *r, const char *name);

/* Appends body bytes. */
DN_EXTERN int dn_render_write(dn_render *r, const void *data, size_t len);
DN_EXTERN int dn_render_write_str(dn_render *r, const char *s);
/* Sets the status (100-599; default 200). */
DN_EXTERN int dn_render_set_status(dn_render *r, int status);
/* Adds a response header. Names must be RFC 9110 tokens and values must
 * not contain control bytes (DN_EHEADER). A "Vary" field is not stored as
 * such: each name it lists is declared as with dn_render_vary, and
 * "Vary: *" makes the resource uncacheable. */
DN_EXTERN int dn_render_set_header(dn_render *r, const char *name,
                                   const char *value);

#define DN_EMBED_CACHEABLE 0   /* donut-hole: the page depends on it */
#define DN_EMBED_UNCACHEABLE 1 /* donut: rendered on every request */
/* Added to either: when the hole cannot be got (its renderer fails, it
 * embeds itself, ...), it is left empty instead of failing the page, and
 * that page is served but not stored (ESI's onerror="continue"). */
#define DN_EMBED_OPTIONAL 2

/* Embeds another resource at the current write position. A cacheable hole
 * makes this resource depend on it (its tags and lifetimes bubble up). An
 * uncacheable hole is rendered on every request; the page that contains it
 * is never stored composed and has no ETag. */
DN_EXTERN int dn_render_embed(dn_render *r, const char *uri, int flags);
/* The same, with a fallback: when `uri` cannot be got, `alt` (NULL: none)
 * is embedded in its place, and the page that needed it is served but not
 * stored (ESI's alt attribute). */
DN_EXTERN int dn_render_embed_alt(dn_render *r, const char *uri,
                                  const char *alt, int flags);

/* Adds a tag (surrogate key); see dn_tag_validate for what is allowed. */
DN_EXTERN int dn_render_add_tag(dn_render *r, const char *tag);
/* Adds the URI tag of `uri` (a dependency on that resource). */
DN_EXTERN int dn_render_add_uri_dependency(dn_render *r, const char *uri);
/* Adds the URI tags of `tpl` expanded over each object of the JSON array
 * `rows` (BEAR.Sunday's fromAssoc). Errors name the template position or
 * the row. */
DN_EXTERN int dn_render_add_tags_from_rows(dn_render *r, const char *tpl,
                                           const char *rows, size_t rows_len);
/* Server-side lifetime in seconds (the cached shell and every view that
 * embeds this resource expire with it). */
DN_EXTERN int dn_render_set_ttl(dn_render *r, uint64_t ttl_s);
/* Shared-cache (CDN) lifetime in seconds. */
DN_EXTERN int dn_render_set_s_maxage(dn_render *r, uint64_t s_maxage_s);
/* RFC 5861 stale windows, in seconds after the resource expires (at most
 * DN_STALE_MAX_S each): within while_revalidate_s, one caller renders it
 * again while every other caller (in any process) gets the expired copy;
 * within if_error_s, a render that fails is answered with the expired copy
 * instead of the error. A page gets the smallest windows of its closure,
 * and one that was served with a stale part is not stored. An invalidated
 * resource is never served stale by these windows. 0 (the default) for
 * none. */
#define DN_STALE_MAX_S 86400u
DN_EXTERN int dn_render_set_stale(dn_render *r, uint32_t while_revalidate_s,
                                  uint32_t if_error_s);
/* An absolute expiry, in milliseconds since the epoch, instead of a ttl. */
DN_EXTERN int dn_render_set_expires_at(dn_render *r, uint64_t at_ms);
/* Marks this resource uncacheable: it is rendered on every request, and
 * pages that embed it become donut pages. */
DN_EXTERN int dn_render_set_uncacheable(dn_render *r);
/* Fails the render with a code (default DN_ERENDER) and a message that
 * reaches the caller of dn_engine_get. Returns `code`. */
DN_EXTERN int dn_render_fail(dn_render *r, int code, const char *msg);

/* ---- getting resources -----------------------------------------------------
 */

/* Where a representation came from. */
typedef enum dn_source {
  DN_SOURCE_HIT = 1,        /* the composed view came from the cache */
  DN_SOURCE_RECOMPOSED = 2, /* the shell came from the cache; holes were
                               fetched or rendered and the page composed */
  DN_SOURCE_RENDERED = 3    /* the resource's own renderer ran */
} dn_source;

/* What one get did. */
typedef struct dn_get_info {
  dn_source source;
  unsigned renders; /* renderer calls this get made, holes included */
} dn_get_info;

#define DN_GET_CACHE_ONLY 1u /* never render: a miss is DN_ENOTFOUND */

/* Returns the representation of `uri` for `req` (NULL means a plain GET
 * with no headers). On success *out holds a reference (release it with
 * dn_rep_unref); a cache hit copies no bytes. info may be NULL. On failure
 * *out is untouched, nothing is cached, and err (may be NULL) says why:
 * DN_EURI, DN_ENORENDERER, DN_ENOTFOUND (cache-only miss), DN_ERENDER or
 * the renderer's own code, DN_ECYCLE, DN_EDEPTH, DN_ESTATE (called from a
 * renderer), DN_ENOMEM. A store failure is not an error: the engine
 * renders through. Thread-safe. */
DN_EXTERN int dn_engine_get(dn_engine *engine, const char *uri, size_t len,
                            const dn_request *req, unsigned flags, dn_rep **out,
                            dn_get_info *info, dn_error *err);

/* ---- representations -------------------------------------------------------
 * Immutable and reference-counted; every accessor returns borrowed data
 * valid while the caller holds a reference. Thread-safe.
 */
DN_EXTERN dn_rep *dn_rep_ref(dn_rep *rep);
DN_EXTERN void dn_rep_unref(dn_rep *rep);
DN_EXTERN int dn_rep_status(const dn_rep *rep);
DN_EXTERN dn_slice dn_rep_body(const dn_rep *rep);
/* The strong ETag including its quotes, or an empty slice for a page that
 * contains uncacheable holes. */
DN_EXTERN dn_slice dn_rep_etag(const dn_rep *rep);
/* Last-Modified in ms since the epoch (0 when there is no ETag). */
DN_EXTERN uint64_t dn_rep_last_modified(const dn_rep *rep);
/* When this view was composed, in ms since the epoch (for Age). */
DN_EXTERN uint64_t dn_rep_created(const dn_rep *rep);
/* 1 when the page is stored composed (all holes cacheable). */
DN_EXTERN int dn_rep_cacheable(const dn_rep *rep);
DN_EXTERN size_t dn_rep_header_count(const dn_rep *rep);
DN_EXTERN dn_header dn_rep_header(const dn_rep *rep, size_t i);
/* Closure tags: own tags, own URI tag and every cacheable hole's. */
DN_EXTERN size_t dn_rep_tag_count(const dn_rep *rep);
DN_EXTERN dn_slice dn_rep_tag(const dn_rep *rep, size_t i);
/* Request headers the page varies on (bubbled up from holes). */
DN_EXTERN size_t dn_rep_vary_count(const dn_rep *rep);
DN_EXTERN dn_slice dn_rep_vary(const dn_rep *rep, size_t i);
/* Effective lifetimes: the minimum over the closure, in seconds, or -1
 * when none was set. */
DN_EXTERN int64_t dn_rep_ttl(const dn_rep *rep);
DN_EXTERN int64_t dn_rep_s_maxage(const dn_rep *rep);
/* Absolute expiry in ms since the epoch, or 0 for none. */
DN_EXTERN uint64_t dn_rep_expires_at(const dn_rep *rep);

/* ---- writing directly (frameworks that render themselves) ------------------
 */

/* Starts writing the representation of `uri` as if it were rendered: use
 * the dn_render_* calls on *out, then dn_engine_put_commit or
 * dn_engine_put_abort (each frees *out). */
DN_EXTERN int dn_engine_put_begin(dn_engine *engine, const char *uri,
                                  size_t len, dn_render **out, dn_error *err);
/* Stores what was written. Views that embed the URI become stale. Returns
 * 0 or the first error (nothing is stored then). Frees r either way. */
DN_EXTERN int dn_engine_put_commit(dn_render *r, dn_error *err);
DN_EXTERN void dn_engine_put_abort(dn_render *r);

/* Removes the cached shell and views of `uri` and invalidates its URI tag,
 * so pages that embed it are rebuilt. */
DN_EXTERN int dn_engine_delete(dn_engine *engine, const char *uri, size_t len,
                               dn_error *err);

/* ---- invalidation ---------------------------------------------------------
 */

/* Invalidates the URI tag of `uri`: the resource and every page that
 * embeds it, at any depth, are no longer served from the cache once this
 * returns. Costs O(1) whatever the number of dependents. */
DN_EXTERN int dn_engine_purge(dn_engine *engine, const char *uri, size_t len,
                              dn_error *err);

/* Invalidates tags; same guarantees as dn_engine_purge. Tags are checked
 * first: an invalid tag returns DN_ETAG and invalidates nothing. */
DN_EXTERN int dn_engine_invalidate_tags(dn_engine *engine, const dn_slice *tags,
                                        size_t n, dn_error *err);

/* Flags of the _ex invalidation calls. */
#define DN_INVALIDATE_SOFT 1u

/* Like dn_engine_invalidate_tags and dn_engine_purge. With
 * DN_INVALIDATE_SOFT the invalidation is soft: a page made stale by it is
 * regenerated by the first caller that wants it, while every other caller
 * keeps getting the stale page (counted in stats.stale_served) until the
 * new one is stored or soft_grace_ms has passed. This spares the origin a
 * stampede after purging popular content, at the price of serving it a
 * little longer, as memcached's stale/win flags and Facebook's leases do.
 * Without the flag these are the hard calls above. */
DN_EXTERN int dn_engine_invalidate_tags_ex(dn_engine *engine,
                                           const dn_slice *tags, size_t n,
                                           unsigned flags, dn_error *err);
DN_EXTERN int dn_engine_purge_ex(dn_engine *engine, const char *uri, size_t len,
                                 unsigned flags, dn_error *err);

/* Called after every invalidation with the tags invalidated (URI purges
 * pass the URI tag). Runs on the invalidating thread; it must not block
 * for long and must not call back into the engine. */
typedef void (*dn_invalidate_fn)(void *ud, const dn_slice *tags, size_t n);

/* Adds a listener. Returns 0, DN_ENOMEM. Not to be called while
 * invalidations are in progress. */
DN_EXTERN int dn_engine_on_invalidate(dn_engine *engine, dn_invalidate_fn fn,
                                      void *ud);

/* ---- introspection -------------------------------------------------------
 */

/* Describes what the cache holds for `uri` as a JSON object: "uri",
 * "cached" (view present and valid), "etag", "tags", "ttl", "s_maxage",
 * "age" (seconds), "holes" ([{"uri","cacheable"}]) and "dependents" (URIs
 * whose shells embed it, or null when the store cannot answer). On success
 * *json_out is an owned string (free with dn_free). */
DN_EXTERN int dn_engine_inspect_json(dn_engine *engine, const char *uri,
                                     size_t len, char **json_out,
                                     dn_error *err);

/* The URIs embedded by the cached shell of `uri` (DN_ENOTFOUND when no
 * shell is cached). */
DN_EXTERN int dn_engine_holes(dn_engine *engine, const char *uri, size_t len,
                              dn_strings *out, dn_error *err);

/* The URIs whose cached shells embed `uri` (the reverse graph). A store
 * without an index returns DN_ENOTSUP. */
DN_EXTERN int dn_engine_dependents(dn_engine *engine, const char *uri,
                                   size_t len, dn_strings *out, dn_error *err);

/* Counters since the engine was created. */
typedef struct dn_engine_stats {
  uint64_t gets, hits, misses, recomposes, renders, purges, invalidations;
  uint64_t store_errors, raced_renders, coalesced_waits;
  uint64_t stale_served; /* stale pages served during soft regeneration */
} dn_engine_stats;

DN_EXTERN void dn_engine_stats_get(dn_engine *engine, dn_engine_stats *out);

/* Calls fn for every registered renderer with its name and render count. */
DN_EXTERN void dn_engine_renderer_stats(dn_engine *engine,
                                        void (*fn)(void *ud, const char *name,
                                                   uint64_t renders),
                                        void *ud);

/* The engine's store (borrowed). */
DN_EXTERN dn_store *dn_engine_store(dn_engine *engine);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_ENGINE_H */
