/* thread_cache.h - a per-thread cache of validated views, in front of an
 * in-process store.
 *
 * A cache hit through the store costs a URI normalisation, a key build, a
 * sharded-lock lookup and a validity check. For the hottest pages that is
 * most of the time spent, so each thread keeps a small direct-mapped table
 * from the request URI, exactly as given, to the view it last served.
 * An entry is used only while the store's invalidation sequence still
 * equals the one the view was last validated at and the view has not
 * expired; anything else falls through to the full path, which refreshes
 * the entry. With an in-process store the sequence is read from memory;
 * with a shared store it is read from the server on every get (a few bytes,
 * where the view would be kilobytes), so another process's purge is seen
 * by the very next get.
 */
#ifndef DN_HOT_H
#define DN_HOT_H

#include "engine_internal.h"

/* A new engine identity, never reused (0 is never returned). */
uint64_t dn__hot_engine_id(void);

/* A reference to the cached view of uri when it was last validated at
 * store sequence `seq`, else NULL. The caller checks expiry. */
dn_rep *dn__hot_get(uint64_t engine_id, const char *uri, size_t len,
                    uint64_t seq);

/* Remembers rep (takes its own reference) as the view of uri when uri is
 * already normal (equal to the view's own URI). Views that vary on request
 * headers and views that cannot be cached are not kept. Allocation failures are
 * ignored: the cache is optional. */
void dn__hot_put(uint64_t engine_id, const char *uri, size_t len, dn_rep *rep);

/* Drops this thread's entries of an engine (called when it is freed). */
void dn__hot_forget(uint64_t engine_id);

#endif
