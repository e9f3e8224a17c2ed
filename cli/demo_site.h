/* demo_site.h - the built-in demo site of `donut serve`, an application of
 * the public API (docs/server.md).
 *
 * A small news site over in-memory data that shows donut-hole and donut
 * caching. Its resources are "app://self" + the path:
 *   /news?id=N       news page; embeds /weather?city=tokyo and
 *                    /comments?post=N (both cacheable)
 *   /home            donut page: embeds /greeting (uncacheable) and
 *                    /news?id=1
 *   /greeting        "Welcome to NAME" from the `name` cookie
 *   /weather?city=C  ttl 3600, tag "weather"
 *   /comments?post=N its rows; tags from app://self/comment{?id}
 *   /comment?id=M    one comment
 * PUT /weather?city=C and PUT /comment?id=M (body: the new text) change
 * the data and purge that URI.
 */
#ifndef DONUT_CLI_DEMO_SITE_H
#define DONUT_CLI_DEMO_SITE_H

#include <donut.h>

typedef struct demo_site demo_site;

/* Creates the demo data and registers its renderers on `engine`
 * (borrowed; it must outlive the demo). Returns 0, DN_EINVAL or
 * DN_ENOMEM. */
int demo_site_new(dn_engine *engine, demo_site **out);

/* Frees the demo. NULL is a no-op. */
void demo_site_free(demo_site *demo);

/* The demo's request handler (PUT routes): pass it as the server's
 * handler with the demo as handler_ud. Thread-safe. */
int demo_site_handler(void *demo, const dn_server_request *req,
                      dn_server_reply *reply);

#endif /* DONUT_CLI_DEMO_SITE_H */
