/* cmd_purge.c - `donut purge --tag T... --uri U...`: invalidates tags and
 * purges URIs, through a running server's control API or directly in a
 * shared store.
 *
 * The command builds one plan (tags and URIs, request paths resolved to
 * resource URIs) and hands it to a target. Targets are a small table so
 * that other destinations (a CDN purger, for instance) can be added next
 * to the two that exist: the control API of a running server and the
 * shared store named by the environment.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"

#define PLAN_MAX 256

typedef struct purge_plan {
  const char *tags[PLAN_MAX];
  size_t ntags;
  char uris[PLAN_MAX][DN_URI_MAX + 1];
  size_t nuris;
  const char *server; /* --server, or NULL */
  int json;
  int cdn_only; /* --cdn-only: purge the configured CDN, not the cache */
} purge_plan;

/* What was done, for printing: {"via":..., "tags":[...], "uris":[...]}. */
typedef int (*purge_target_fn)(const dn_cli_command *cmd,
                               const purge_plan *plan, json_t *done);

static int via_server(const dn_cli_command *cmd, const purge_plan *plan,
                      json_t *done) {
  json_t *body = json_object(), *t = json_array(), *u = json_array();
  for (size_t i = 0; i < plan->ntags; i++)
    json_array_append_new(t, json_string(plan->tags[i]));
  for (size_t i = 0; i < plan->nuris; i++)
    json_array_append_new(u, json_string(plan->uris[i]));
  json_object_set_new(body, "tags", t);
  json_object_set_new(body, "uris", u);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (!text)
    return dn_cli_fail(cmd, "out of memory");
  const char *base = dn_cli_server_url(plan->server);
  dn_cli_reply r;
  int rc = dn_cli_control_call(cmd, base, "POST", "/purge", text, &r);
  free(text);
  if (rc)
    return rc;
  if (r.status < 200 || r.status > 299) {
    rc = dn_cli_reply_error(cmd, &r);
    free(r.body);
    return rc;
  }
  json_t *answer = json_loads(r.body, 0, NULL);
  free(r.body);
  if (!json_is_object(answer)) {
    json_decref(answer);
    return dn_cli_fail(cmd, "the server's answer is not JSON");
  }
  json_object_update(done, answer);
  json_decref(answer);
  json_object_set_new(done, "via", json_string(base));
  return DN_CLI_EXIT_OK;
}

static int direct_apply(const dn_cli_command *cmd, const purge_plan *plan,
                        dn_engine *e, json_t *ta, json_t *ua) {
  dn_error err;
  memset(&err, 0, sizeof err);
  dn_slice tags[PLAN_MAX];
  for (size_t i = 0; i < plan->ntags; i++)
    tags[i] = dn_slice_from_cstr(plan->tags[i]);
  int rc =
      plan->ntags ? dn_engine_invalidate_tags(e, tags, plan->ntags, &err) : 0;
  if (rc)
    return dn_cli_fail(cmd, "invalidating tags: %s", err.text);
  for (size_t i = 0; i < plan->ntags; i++)
    json_array_append_new(ta, json_string(plan->tags[i]));
  for (size_t i = 0; i < plan->nuris; i++) {
    char *norm = NULL;
    rc = dn_uri_normalize(plan->uris[i], strlen(plan->uris[i]), &norm, NULL,
                          &err);
    if (rc == 0)
      rc = dn_engine_purge(e, norm, strlen(norm), &err);
    if (rc == 0)
      json_array_append_new(ua, json_string(norm));
    dn_free(norm);
    if (rc)
      return dn_cli_fail(cmd, "purging '%s': %s", plan->uris[i], err.text);
  }
  return DN_CLI_EXIT_OK;
}

static int via_store(const dn_cli_command *cmd, const purge_plan *plan,
                     json_t *done) {
  dn_cli_direct d;
  int rc = dn_cli_direct_open(cmd, &d);
  if (rc)
    return rc;
  json_t *ta = json_array(), *ua = json_array();
  json_object_set_new(done, "tags", ta);
  json_object_set_new(done, "uris", ua);
  json_object_set_new(done, "via", json_string(d.desc));
  rc = direct_apply(cmd, plan, d.engine, ta, ua);
  dn_cli_direct_close(&d);
  return rc;
}

/* Purges the configured CDN from this process: after a purge made
 * directly in a shared store (no server is there to do it), and for
 * --cdn-only. A running server purges its CDN itself when its engine
 * invalidates, so a purge through the control API does not come here. With
 * no purger configured this does nothing, unless --cdn-only asked for it.
 * Waits until the purge is delivered or has failed; what is not delivered
 * stays in the outbox (see `donut outbox`). */
static int via_cdn(const dn_cli_command *cmd, const purge_plan *plan,
                   json_t *done) {
  dn_error err;
  memset(&err, 0, sizeof err);
  dn_cdn_config *cfg = NULL;
  dn_purger *pg = NULL;
  int rc = dn_cdn_config_load(NULL, &cfg, &err);
  if (rc)
    return dn_cli_fail(cmd, "CDN configuration: %s", err.text);
  rc = dn_purger_new_from_config(cfg, NULL, &pg, &err);
  if (rc == DN_ENOTFOUND) {
    dn_cdn_config_free(cfg);
    return plan->cdn_only
               ? dn_cli_fail(cmd, "--cdn-only: no CDN purger is configured "
                                  "(DONUT_CDN, DONUT_PURGE_URLS, DONUT_CONFIG)")
               : 0;
  }
  if (rc) {
    dn_cdn_config_free(cfg);
    return dn_cli_fail(cmd, "purger: %s", err.text);
  }
  dn_slice tags[PLAN_MAX], uris[PLAN_MAX];
  for (size_t i = 0; i < plan->ntags; i++)
    tags[i] = dn_slice_from_cstr(plan->tags[i]);
  for (size_t i = 0; i < plan->nuris; i++)
    uris[i] = dn_slice_from_cstr(plan->uris[i]);
  if (plan->ntags)
    rc = dn_purger_purge_tags(pg, tags, plan->ntags, &err);
  if (rc == 0 && plan->nuris)
    rc = dn_purger_purge_uris(pg, uris, plan->nuris, &err);
  int drained = rc == 0 ? dn_purger_drain(pg, 120000) : rc;
  dn_purger_stats st;
  dn_purger_stats_get(pg, &st);
  json_t *cdn =
      json_pack("{s:s,s:I,s:I,s:I}", "purger", dn_purger_name(pg), "requests",
                (json_int_t)st.requests, "delivered", (json_int_t)st.delivered,
                "failed", (json_int_t)st.failed);
  json_object_set_new(done, "cdn", cdn);
  if (plan->cdn_only) {
    json_object_set_new(done, "tags", json_array());
    json_object_set_new(done, "uris", json_array());
    json_object_set_new(done, "via", json_string("the CDN only"));
  }
  int kept = dn_cdn_config_outbox(cfg) != NULL;
  dn_purger_free(pg);
  dn_cdn_config_free(cfg);
  if (rc)
    return dn_cli_fail(cmd, "CDN purge: %s", err.text);
  if (drained || st.failed || st.delivered == 0)
    return dn_cli_fail(cmd, "the CDN purge was not delivered (%llu failed); %s",
                       (unsigned long long)st.failed,
                       kept ? "it stays in the outbox: see `donut outbox`"
                            : "with no outbox (DONUT_OUTBOX=none) it is lost");
  return 0;
}

/* Checks everything before the target runs, so a bad argument purges
 * nothing. */
static int plan_check(const dn_cli_command *cmd, const purge_plan *plan) {
  dn_error err;
  for (size_t i = 0; i < plan->ntags; i++)
    if (dn_tag_validate(plan->tags[i], strlen(plan->tags[i]), &err))
      return dn_cli_fail(cmd, "--tag '%s': %s", plan->tags[i], err.text);
  for (size_t i = 0; i < plan->nuris; i++) {
    char *norm = NULL;
    int rc = dn_uri_normalize(plan->uris[i], strlen(plan->uris[i]), &norm, NULL,
                              &err);
    dn_free(norm);
    if (rc)
      return dn_cli_fail(cmd, "--uri '%s': at byte %zu: %s", plan->uris[i],
                         err.position, err.text);
  }
  return 0;
}

static void print_done(const purge_plan *plan, json_t *done) {
  if (plan->json) {
    char *text = json_dumps(done, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
      printf("%s\n", text);
    free(text);
    return;
  }
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(done, "tags"), i, v)
      printf("invalidated tag %s\n", json_string_value(v));
  json_array_foreach(json_object_get(done, "uris"), i, v)
      printf("purged %s\n", json_string_value(v));
  printf("via %s\n", json_string_value(json_object_get(done, "via")));
  json_t *cdn = json_object_get(done, "cdn");
  if (cdn)
    printf("CDN purge delivered by %s (%lld request%s)\n",
           json_string_value(json_object_get(cdn, "purger")),
           (long long)json_integer_value(json_object_get(cdn, "requests")),
           json_integer_value(json_object_get(cdn, "requests")) == 1 ? ""
                                                                     : "s");
}

static int parse_args(const dn_cli_command *cmd, int argc, char **argv,
                      purge_plan *plan) {
  for (int i = 1; i < argc; i++) {
    const char *v;
    int m;
    if ((m = dn_cli_option(argc, argv, &i, "--tag", &v)) != 0) {
      if (m < 0 || plan->ntags == PLAN_MAX)
        return dn_cli_usage_error(cmd, "--tag needs a value (at most %d)",
                                  PLAN_MAX);
      plan->tags[plan->ntags++] = v;
    } else if ((m = dn_cli_option(argc, argv, &i, "--uri", &v)) != 0) {
      if (m < 0 || plan->nuris == PLAN_MAX ||
          dn_cli_resource_uri(v, plan->uris[plan->nuris], DN_URI_MAX + 1))
        return dn_cli_usage_error(cmd, "--uri needs a URI (at most %d)",
                                  PLAN_MAX);
      plan->nuris++;
    } else if ((m = dn_cli_option(argc, argv, &i, "--server", &v)) != 0) {
      if (m < 0)
        return dn_cli_usage_error(cmd, "--server needs a URL");
      plan->server = v;
    } else if (strcmp(argv[i], "--json") == 0) {
      plan->json = 1;
    } else if (strcmp(argv[i], "--cdn-only") == 0) {
      plan->cdn_only = 1;
    } else {
      return dn_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
    }
  }
  if (plan->ntags + plan->nuris == 0)
    return dn_cli_usage_error(cmd, "give at least one --tag or --uri");
  return 0;
}

static int run_purge(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_purge;
  purge_plan *plan = calloc(1, sizeof *plan);
  if (!plan)
    return dn_cli_fail(cmd, "out of memory");
  int rc = parse_args(cmd, argc, argv, plan);
  if (rc == 0)
    rc = plan_check(cmd, plan);
  if (rc == 0) {
    purge_target_fn target =
        dn_cli_use_store(plan->server) ? via_store : via_server;
    json_t *done = json_object();
    rc = plan->cdn_only ? 0 : target(cmd, plan, done);
    /* A server purges its CDN itself; purging directly in a store (or
     * only the CDN) leaves that to this process. */
    if (rc == 0 && (plan->cdn_only || target == via_store))
      rc = via_cdn(cmd, plan, done);
    if (rc == 0)
      print_done(plan, done);
    json_decref(done);
  }
  free(plan);
  return rc;
}

const dn_cli_command dn_cli_cmd_purge = {
    "purge", "invalidate tags and purge URIs (server or shared store)",
    "usage: donut purge [--tag TAG]... [--uri URI]... [--server URL]\n"
    "                   [--cdn-only] [--json]\n"
    "\n"
    "Invalidates each TAG and purges each URI: every cached page whose\n"
    "closure contains one of them is rebuilt on its next request, and only\n"
    "the pieces that changed are rendered again. A URI may be a resource\n"
    "URI (app://self/weather?city=tokyo) or a request path of the demo site\n"
    "(/weather?city=tokyo).\n"
    "\n"
    "Where it purges:\n"
    "  - a running server's control API: --server URL, else $DONUT_SERVER,\n"
    "    else http://127.0.0.1:8081 (the token is $DONUT_CONTROL_TOKEN or\n"
    "    the file `donut serve` wrote);\n"
    "  - the shared store itself, when MEMCACHED_ADDR or REDIS_URL is set\n"
    "    and --server is not given (every server on that store sees it);\n"
    "    then the configured CDN is purged from here too (DONUT_CDN,\n"
    "    DONUT_PURGE_URLS, the CDN's credentials or DONUT_CONFIG; see\n"
    "    docs/cdn-purge.md). A running server purges its CDN itself.\n"
    "A CDN purge that cannot be delivered stays in the outbox and the exit\n"
    "status is 1; `donut outbox` lists and resends it.\n"
    "\n"
    "Options:\n"
    "  --tag TAG     a tag (surrogate key) to invalidate; repeatable\n"
    "  --uri URI     a resource URI or request path to purge; repeatable\n"
    "  --server URL  the control API of a running server\n"
    "  --cdn-only    purge only the configured CDN, not donut's own cache\n"
    "  --json        print what was done as JSON\n"
    "\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage, 3 server\n"
    "unreachable, 4 token rejected.\n"
    "\n"
    "Example:\n"
    "  $ donut purge --tag weather\n"
    "  invalidated tag weather\n"
    "  via http://127.0.0.1:8081\n",
    run_purge};
