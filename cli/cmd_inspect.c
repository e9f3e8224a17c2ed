/* cmd_inspect.c - `donut inspect URI` and `donut deps URI`: what the cache
 * holds for a resource, and the tree of what it embeds (or, with
 * --reverse, of what embeds it).
 *
 * Both read dn_engine_inspect_json's description of each resource, from a
 * running server's control API (GET /inspect) or from the shared store
 * directly; deps walks the holes (or dependents) one resource at a time,
 * marking resources it has already shown.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"

typedef struct source {
  const dn_cli_command *cmd;
  const char *server;
  int direct;
  dn_cli_direct d;
} source;

static int source_open(source *s) {
  s->direct = dn_cli_use_store(s->server);
  return s->direct ? dn_cli_direct_open(s->cmd, &s->d) : DN_CLI_EXIT_OK;
}

static void source_close(source *s) {
  if (s->direct)
    dn_cli_direct_close(&s->d);
}

/* The description of uri (a resource URI or a request path). */
static int describe(source *s, const char *arg, json_t **out) {
  char uri[DN_URI_MAX + 1];
  if (dn_cli_resource_uri(arg, uri, sizeof uri))
    return dn_cli_fail(s->cmd, "URI too long");
  char *text = NULL;
  if (s->direct) {
    dn_error err;
    memset(&err, 0, sizeof err);
    int rc = dn_engine_inspect_json(s->d.engine, uri, strlen(uri), &text, &err);
    if (rc)
      return dn_cli_fail(s->cmd, "'%s': %s", uri, err.text);
    *out = json_loads(text, 0, NULL);
    dn_free(text);
    return *out ? DN_CLI_EXIT_OK : dn_cli_fail(s->cmd, "bad JSON");
  }
  char path[3 * DN_URI_MAX + 32] = "/inspect?uri=";
  size_t pl = strlen(path);
  if (dn_cli_query_escape(uri, path + pl, sizeof path - pl))
    return dn_cli_fail(s->cmd, "URI too long");
  dn_cli_reply r;
  int rc = dn_cli_control_call(s->cmd, dn_cli_server_url(s->server), "GET",
                               path, NULL, &r);
  if (rc)
    return rc;
  if (r.status != 200)
    rc = dn_cli_reply_error(s->cmd, &r);
  else if (!(*out = json_loads(r.body, 0, NULL)))
    rc = dn_cli_fail(s->cmd, "the server's answer is not JSON");
  free(r.body);
  return rc;
}

static void print_json(json_t *o) {
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (text)
    printf("%s\n", text);
  free(text);
}

static void print_list(const char *label, json_t *a, const char *key) {
  size_t i, n = json_array_size(a);
  json_t *v;
  printf("%s\n", label);
  if (json_is_null(a)) {
    printf("└── (the store keeps no reverse index)\n");
    return;
  }
  if (n == 0)
    printf("└── (none)\n");
  json_array_foreach(a, i, v) {
    json_t *s = key ? json_object_get(v, key) : v;
    json_t *c = key ? json_object_get(v, "cacheable") : NULL;
    printf("%s %s%s\n", i + 1 == n ? "└──" : "├──", json_string_value(s),
           c ? (json_is_true(c) ? "  (cacheable)" : "  (uncacheable)") : "");
  }
}

static void print_inspect(json_t *o) {
  json_t *v;
  printf("%s\n", json_string_value(json_object_get(o, "uri")));
  printf("  uri tag    %s\n", json_string_value(json_object_get(o, "uri_tag")));
  printf("  cached     %s\n",
         json_is_true(json_object_get(o, "cached")) ? "yes" : "no");
  if ((v = json_object_get(o, "etag")) && json_is_string(v))
    printf("  etag       %s\n", json_string_value(v));
  if ((v = json_object_get(o, "ttl")) && json_is_integer(v))
    printf("  ttl        %lld s\n", (long long)json_integer_value(v));
  if ((v = json_object_get(o, "age")) && json_is_integer(v))
    printf("  age        %lld s\n", (long long)json_integer_value(v));
  json_t *tags = json_object_get(o, "tags");
  if (json_is_array(tags)) {
    size_t i;
    printf("  tags      ");
    json_array_foreach(tags, i, v) printf(" %s", json_string_value(v));
    printf("\n");
  }
  print_list("holes", json_object_get(o, "holes"), "uri");
  print_list("dependents", json_object_get(o, "dependents"), NULL);
}

static int common_args(source *s, int argc, char **argv, int *i, int *json,
                       const char **uri) {
  const char *v;
  int m = dn_cli_option(argc, argv, i, "--server", &v);
  if (m < 0)
    return dn_cli_usage_error(s->cmd, "--server needs a URL");
  if (m > 0)
    s->server = v;
  else if (strcmp(argv[*i], "--json") == 0)
    *json = 1;
  else if (argv[*i][0] == '-' && argv[*i][1] == '-')
    return -1;
  else if (*uri)
    return dn_cli_usage_error(s->cmd, "one URI only");
  else
    *uri = argv[*i];
  return 0;
}

static int run_inspect(int argc, char **argv) {
  source s = {&dn_cli_cmd_inspect, NULL, 0, {0}};
  const char *uri = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    int rc = common_args(&s, argc, argv, &i, &json, &uri);
    if (rc < 0)
      return dn_cli_usage_error(s.cmd, "unknown option '%s'", argv[i]);
    if (rc)
      return rc;
  }
  if (!uri)
    return dn_cli_usage_error(s.cmd, "expected a URI");
  int rc = source_open(&s);
  json_t *o = NULL;
  if (rc == 0 && (rc = describe(&s, uri, &o)) == 0) {
    json ? print_json(o) : print_inspect(o);
    json_decref(o);
  }
  source_close(&s);
  return rc;
}

const dn_cli_command dn_cli_cmd_inspect = {
    "inspect", "show what the cache holds for a URI",
    "usage: donut inspect URI [--server URL] [--json]\n"
    "\n"
    "Shows what the cache holds for URI (a resource URI or a request path\n"
    "of the demo site): whether its page is cached, its ETag, lifetime,\n"
    "age and closure tags, the holes its shell embeds and the resources\n"
    "that embed it. Reads a running server's control API, or the shared\n"
    "store when MEMCACHED_ADDR or REDIS_URL is set and --server is not\n"
    "given (see `donut purge --help`).\n"
    "\n"
    "Exit status: 0 shown, 1 failed, 2 usage, 3 server unreachable,\n"
    "4 token rejected.\n"
    "\n"
    "Example:\n"
    "  $ donut inspect /news?id=1\n",
    run_inspect};

/* ---- deps ---------------------------------------------------------------- */
typedef struct walk {
  source *s;
  int reverse;
  long max_depth;
  json_t *seen; /* object used as a set of URIs */
} walk;

/* Builds {"uri", "cached", "cacheable"?, "children"|"repeated"|"more"}. */
static int walk_node(walk *w, const char *uri, json_t *cacheable, long depth,
                     json_t **out) {
  json_t *n = json_pack("{s:s}", "uri", uri);
  *out = n;
  if (cacheable)
    json_object_set(n, "cacheable", cacheable);
  if (json_object_get(w->seen, uri)) {
    json_object_set_new(n, "repeated", json_true());
    return 0;
  }
  json_object_set_new(w->seen, uri, json_true());
  json_t *d = NULL;
  int rc = describe(w->s, uri, &d);
  if (rc)
    return rc;
  json_object_set(n, "cached", json_object_get(d, "cached"));
  json_t *kids = json_object_get(d, w->reverse ? "dependents" : "holes");
  json_t *arr = json_array();
  json_object_set_new(n, "children", arr);
  if (json_is_null(kids))
    json_object_set_new(n, "unknown", json_true());
  size_t i;
  json_t *k;
  if (depth >= w->max_depth && json_array_size(kids)) {
    json_object_set_new(n, "more",
                        json_integer((json_int_t)json_array_size(kids)));
    json_array_clear(arr);
  } else {
    json_array_foreach(kids, i, k) {
      json_t *child = NULL;
      const char *cu =
          json_string_value(w->reverse ? k : json_object_get(k, "uri"));
      rc = cu ? walk_node(w, cu,
                          w->reverse ? NULL : json_object_get(k, "cacheable"),
                          depth + 1, &child)
              : 0;
      if (child)
        json_array_append_new(arr, child);
      if (rc)
        break;
    }
  }
  json_decref(d);
  return rc;
}

static void print_node(json_t *n, const char *prefix, int last, int root) {
  json_t *c = json_object_get(n, "cacheable");
  char notes[96] = "";
  snprintf(notes, sizeof notes, "%s%s%s%s",
           c ? (json_is_true(c) ? "cacheable, " : "uncacheable, ") : "",
           json_is_true(json_object_get(n, "cached")) ? "cached" : "not cached",
           json_is_true(json_object_get(n, "repeated")) ? ", shown above" : "",
           json_is_true(json_object_get(n, "unknown"))
               ? ", the store keeps no reverse index"
               : "");
  if (json_is_true(json_object_get(n, "repeated")))
    snprintf(notes, sizeof notes, "shown above");
  printf("%s%s%s  (%s)\n", prefix,
         root   ? ""
         : last ? "└── "
                : "├── ",
         json_string_value(json_object_get(n, "uri")), notes);
  char next[512];
  snprintf(next, sizeof next, "%s%s", prefix,
           root   ? ""
           : last ? "    "
                  : "│   ");
  json_t *kids = json_object_get(n, "children");
  size_t i, count = json_array_size(kids);
  json_t *k;
  json_array_foreach(kids, i, k) print_node(k, next, i + 1 == count, 0);
  json_t *more = json_object_get(n, "more");
  if (more)
    printf("%s└── ... %lld more below --depth\n", next,
           (long long)json_integer_value(more));
}

static int run_deps(int argc, char **argv) {
  source s = {&dn_cli_cmd_deps, NULL, 0, {0}};
  walk w = {&s, 0, 8, NULL};
  const char *uri = NULL, *v;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    int m = dn_cli_option(argc, argv, &i, "--depth", &v);
    if (m < 0)
      return dn_cli_usage_error(s.cmd, "--depth needs a number");
    if (m > 0) {
      char *end;
      errno = 0;
      w.max_depth = strtol(v, &end, 10);
      if (*end || errno || w.max_depth < 0 || w.max_depth > 64)
        return dn_cli_usage_error(s.cmd, "--depth expects 0 to 64");
      continue;
    }
    if (strcmp(argv[i], "--reverse") == 0) {
      w.reverse = 1;
      continue;
    }
    int rc = common_args(&s, argc, argv, &i, &json, &uri);
    if (rc < 0)
      return dn_cli_usage_error(s.cmd, "unknown option '%s'", argv[i]);
    if (rc)
      return rc;
  }
  if (!uri)
    return dn_cli_usage_error(s.cmd, "expected a URI");
  char full[DN_URI_MAX + 1];
  if (dn_cli_resource_uri(uri, full, sizeof full))
    return dn_cli_fail(s.cmd, "URI too long");
  int rc = source_open(&s);
  json_t *root = NULL;
  w.seen = json_object();
  if (rc == 0)
    rc = walk_node(&w, full, NULL, 0, &root);
  if (rc == 0)
    json ? print_json(root) : print_node(root, "", 1, 1);
  json_decref(root);
  json_decref(w.seen);
  source_close(&s);
  return rc;
}

const dn_cli_command dn_cli_cmd_deps = {
    "deps", "show the tree of resources a URI embeds (or that embed it)",
    "usage: donut deps URI [--reverse] [--depth N] [--server URL] [--json]\n"
    "\n"
    "Prints the tree of holes under URI: the resources its cached shell\n"
    "embeds, theirs, and so on. With --reverse, the tree of resources whose\n"
    "shells embed URI: what a purge of URI rebuilds. Only what is cached\n"
    "shows; a resource that appears twice is shown once.\n"
    "\n"
    "Options:\n"
    "  --reverse     follow dependents instead of holes\n"
    "  --depth N     stop N levels below URI (default 8)\n"
    "  --server URL  the control API of a running server (see `donut purge\n"
    "                --help` for when the shared store is read instead)\n"
    "  --json        print the tree as JSON\n"
    "\n"
    "Exit status: 0 shown, 1 failed, 2 usage, 3 server unreachable,\n"
    "4 token rejected.\n"
    "\n"
    "Example:\n"
    "  $ donut deps /home\n",
    run_deps};
