/* cmd_stats.c - `donut stats`: the counters of a running server (engine,
 * renderers, store, connections), or of the shared store alone when the
 * command reads the store directly. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"

static long long num(json_t *o, const char *a, const char *b) {
  return (long long)json_integer_value(
      json_object_get(json_object_get(o, a), b));
}

static void print_store(json_t *o) {
  json_t *st = json_object_get(o, "store");
  printf("store      %s", json_string_value(json_object_get(st, "name")));
  if (json_object_get(st, "items"))
    printf(": %lld items, %lld bytes, %lld evictions, %lld errors",
           num(o, "store", "items"), num(o, "store", "bytes"),
           num(o, "store", "evictions"), num(o, "store", "errors"));
  printf("\n");
}

static void print_stats(json_t *o) {
  printf("engine     gets %lld, hits %lld, misses %lld, recomposes %lld, "
         "renders %lld\n",
         num(o, "engine", "gets"), num(o, "engine", "hits"),
         num(o, "engine", "misses"), num(o, "engine", "recomposes"),
         num(o, "engine", "renders"));
  printf("           purges %lld, invalidations %lld, store errors %lld\n",
         num(o, "engine", "purges"), num(o, "engine", "invalidations"),
         num(o, "engine", "store_errors"));
  json_t *r = json_object_get(o, "renderers");
  const char *k;
  json_t *v;
  printf("renders   ");
  json_object_foreach(r, k, v)
      printf(" %s %lld", k, (long long)json_integer_value(v));
  printf("\n");
  print_store(o);
  if (!json_object_get(o, "server"))
    return;
  printf("server     %lld requests; connections %lld open, %lld total, "
         "%lld rejected; %lld timeouts, %lld bad requests\n",
         num(o, "server", "requests"), num(o, "server", "connections_open"),
         num(o, "server", "connections_total"),
         num(o, "server", "connections_rejected"), num(o, "server", "timeouts"),
         num(o, "server", "bad_requests"));
}

/* Direct mode: only the store has counters worth showing. */
static int store_stats(const dn_cli_command *cmd, json_t **out) {
  dn_cli_direct d;
  int rc = dn_cli_direct_open(cmd, &d);
  if (rc)
    return rc;
  dn_store_stats st;
  json_t *s = json_pack("{s:s}", "name", d.desc);
  if (dn_store_stats_get(d.store, &st) == 0)
    json_object_update_new(
        s,
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "items", (json_int_t)st.items,
                  "bytes", (json_int_t)st.bytes, "hits", (json_int_t)st.hits,
                  "misses", (json_int_t)st.misses, "evictions",
                  (json_int_t)st.evictions, "errors", (json_int_t)st.errors));
  *out = json_pack("{s:o}", "store", s);
  dn_cli_direct_close(&d);
  return DN_CLI_EXIT_OK;
}

static int server_stats(const dn_cli_command *cmd, const char *server,
                        json_t **out) {
  dn_cli_reply r;
  int rc = dn_cli_control_call(cmd, dn_cli_server_url(server), "GET", "/stats",
                               NULL, &r);
  if (rc)
    return rc;
  if (r.status != 200)
    rc = dn_cli_reply_error(cmd, &r);
  else if (!(*out = json_loads(r.body, 0, NULL)))
    rc = dn_cli_fail(cmd, "the server's answer is not JSON");
  free(r.body);
  return rc;
}

static int run_stats(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_stats;
  const char *server = NULL, *v;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    int m = dn_cli_option(argc, argv, &i, "--server", &v);
    if (m < 0)
      return dn_cli_usage_error(cmd, "--server needs a URL");
    if (m > 0)
      server = v;
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      return dn_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
  }
  json_t *o = NULL;
  int rc = dn_cli_use_store(server) ? store_stats(cmd, &o)
                                    : server_stats(cmd, server, &o);
  if (rc)
    return rc;
  if (json) {
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
      printf("%s\n", text);
    free(text);
  } else {
    if (json_object_get(o, "engine"))
      print_stats(o);
    else
      printf("store      %s\n", json_string_value(json_object_get(
                                    json_object_get(o, "store"), "name")));
  }
  json_decref(o);
  return DN_CLI_EXIT_OK;
}

const dn_cli_command dn_cli_cmd_stats = {
    "stats", "show the counters of a running server or a shared store",
    "usage: donut stats [--server URL] [--json]\n"
    "\n"
    "Shows a running server's counters: gets, hits, misses, recomposes,\n"
    "renders per renderer, purges, store errors and connections (GET\n"
    "/stats of the control API; GET /metrics has the same in Prometheus\n"
    "text format, with latency histograms). When MEMCACHED_ADDR or\n"
    "REDIS_URL is set and --server is not given, shows the shared store's\n"
    "own counters instead.\n"
    "\n"
    "Exit status: 0 shown, 1 failed, 2 usage, 3 server unreachable,\n"
    "4 token rejected.\n",
    run_stats};
