/* cmd_outbox.c - `donut outbox`: the CDN purges that were not delivered.
 *
 * Every purger with an outbox directory writes its batches there before
 * sending them. What is left in the directory is either pending (its
 * process died, or is still trying) or failed (the retries ran out). This
 * command lists those entries, sends them again through the configured
 * purger (`retry`; only the entries that purger wrote, unless --any), or
 * drops them (`drop`). Files that belong to a running
 * process are listed but never touched: that process owns them.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "donut/purge.h"

typedef struct options {
  const char *action; /* "list", "retry" or "drop" */
  const char *dir;
  const char *config;
  int json, failed, all, any;
  long timeout_s;
} options;

static int parse(const dn_cli_command *cmd, int argc, char **argv, options *o) {
  const char *timeout = NULL;
  for (int i = 1; i < argc; i++) {
    int m = dn_cli_option(argc, argv, &i, "--outbox", &o->dir);
    if (m == 0)
      m = dn_cli_option(argc, argv, &i, "--config", &o->config);
    if (m == 0)
      m = dn_cli_option(argc, argv, &i, "--timeout", &timeout);
    if (m < 0)
      return dn_cli_usage_error(cmd, "'%s' needs a value", argv[i]);
    if (m > 0)
      continue;
    if (strcmp(argv[i], "--json") == 0)
      o->json = 1;
    else if (strcmp(argv[i], "--failed") == 0)
      o->failed = 1;
    else if (strcmp(argv[i], "--all") == 0)
      o->all = 1;
    else if (strcmp(argv[i], "--any") == 0)
      o->any = 1;
    else if (argv[i][0] == '-')
      return dn_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    else if (o->action)
      return dn_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
    else
      o->action = argv[i];
  }
  if (!o->action)
    o->action = "list";
  if (strcmp(o->action, "list") && strcmp(o->action, "retry") &&
      strcmp(o->action, "drop"))
    return dn_cli_usage_error(cmd, "unknown action '%s'", o->action);
  if (strcmp(o->action, "drop") == 0 && o->failed == o->all)
    return dn_cli_usage_error(cmd, "drop needs --failed or --all");
  if (timeout) {
    char *end;
    o->timeout_s = strtol(timeout, &end, 10);
    if (*end || o->timeout_s < 1 || o->timeout_s > 86400)
      return dn_cli_usage_error(cmd, "--timeout expects 1 to 86400 seconds");
  }
  return DN_CLI_EXIT_OK;
}

/* The configuration (needed by retry, and for the default directory). */
static int load(const dn_cli_command *cmd, const options *o,
                dn_cdn_config **cfg) {
  dn_error err;
  memset(&err, 0, sizeof err);
  if (dn_cdn_config_load(o->config, cfg, &err) != 0)
    return dn_cli_fail(cmd, "configuration: %s", err.text);
  return DN_CLI_EXIT_OK;
}

/* ---- list -------------------------------------------------------------- */

typedef struct lister {
  int json;
  json_t *entries;
  size_t pending, failed, foreign;
  uint64_t now_ms;
} lister;

static json_t *strings(const dn_slice *s, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_stringn(s[i].ptr, s[i].len));
  return a;
}

static int on_entry(void *ud, const dn_outbox_entry *e) {
  lister *l = ud;
  int failed = e->state == DN_OUTBOX_FAILED;
  l->failed += failed;
  l->pending += !failed;
  l->foreign += e->owner_alive;
  if (l->json) {
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:s,s:I,s:i,s:s,s:I,s:b,s:o,s:o}", "file", e->file,
        "identity", *e->identity ? e->identity : "unknown", "id",
        (json_int_t)e->id, "state", failed ? "failed" : "pending", "created_ms",
        (json_int_t)e->created_ms, "attempts", (int)e->attempts, "error",
        e->error, "owner_pid", (json_int_t)e->owner_pid, "owner_running",
        e->owner_alive, "tags", strings(e->tags, e->ntags), "uris",
        strings(e->uris, e->nuris));
    json_array_append_new(l->entries, o);
    return 0;
  }
  uint64_t age = l->now_ms > e->created_ms ? l->now_ms - e->created_ms : 0;
  printf("%s:%llu %s age=%llus attempts=%u owner=%ld%s\n", e->file,
         (unsigned long long)e->id, failed ? "failed" : "pending",
         (unsigned long long)(age / 1000), e->attempts, e->owner_pid,
         e->owner_alive ? " (running)" : " (gone)");
  printf("  purger: %s\n", *e->identity ? e->identity : "unknown");
  printf("  tags:");
  for (size_t i = 0; i < e->ntags; i++)
    printf(" %.*s", (int)e->tags[i].len, e->tags[i].ptr);
  printf("\n");
  for (size_t i = 0; i < e->nuris; i++)
    printf("  uri: %.*s\n", (int)e->uris[i].len, e->uris[i].ptr);
  if (*e->error)
    printf("  error: %s\n", e->error);
  return 0;
}

static int list(const dn_cli_command *cmd, const options *o, const char *dir) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lister l = {
      o->json, json_array(),
      0,       0,
      0,       (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000};
  size_t corrupt = 0;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_outbox_scan(dir, on_entry, &l, &corrupt, &err);
  if (rc) {
    json_decref(l.entries);
    return dn_cli_fail(cmd, "%s", err.text);
  }
  if (o->json) {
    json_t *out =
        json_pack("{s:s,s:o,s:I,s:I,s:I}", "outbox", dir, "entries", l.entries,
                  "pending", (json_int_t)l.pending, "failed",
                  (json_int_t)l.failed, "corrupt", (json_int_t)corrupt);
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(out);
    return DN_CLI_EXIT_OK;
  }
  json_decref(l.entries);
  if (l.pending + l.failed == 0)
    printf("outbox %s: empty\n", dir);
  else
    printf("outbox %s: %zu pending, %zu failed%s\n", dir, l.pending, l.failed,
           l.foreign ? " (some belong to running processes)" : "");
  if (corrupt)
    printf("outbox %s: %zu damaged records skipped\n", dir, corrupt);
  return DN_CLI_EXIT_OK;
}

/* ---- retry --------------------------------------------------------------- */

typedef struct tally {
  unsigned delivered, failed;
} tally;

static void on_report(void *ud, const dn_purge_report *r) {
  tally *t = ud;
  if (r->delivered) {
    t->delivered++;
    return;
  }
  t->failed++;
  fprintf(stderr, "donut outbox: batch %llu (%zu tags) failed: %s\n",
          (unsigned long long)r->id, r->ntags, r->error);
}

static int retry(const dn_cli_command *cmd, const options *o,
                 const dn_cdn_config *cfg, const char *dir) {
  tally t = {0, 0};
  dn_purger_options po;
  dn_purger_options_init(&po);
  po.outbox_dir = dir;
  po.retry_failed = 1;
  po.adopt_any = o->any;
  po.report = on_report;
  po.report_ud = &t;
  dn_purger *p = NULL;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_purger_new_from_config(cfg, &po, &p, &err);
  if (rc == DN_ENOTFOUND)
    return dn_cli_fail(cmd, "no purger is configured (set DONUT_CDN and its "
                            "credentials, see docs/cdn-purge.md)");
  if (rc)
    return dn_cli_fail(cmd, "%s", err.text);
  dn_purger_stats st;
  dn_purger_stats_get(p, &st);
  rc = dn_purger_drain(p, (uint64_t)(o->timeout_s ? o->timeout_s : 120) * 1000);
  dn_purger_free(p); /* what is still pending stays in the outbox */
  printf("%s: %llu entries taken over, %u batches delivered, %u failed\n",
         dn_cdn_config_purger(cfg), (unsigned long long)st.replayed,
         t.delivered, t.failed);
  if (rc == DN_ETIMEDOUT)
    return dn_cli_fail(cmd, "timed out; what is left stays in %s", dir);
  return t.failed ? DN_CLI_EXIT_FAIL : DN_CLI_EXIT_OK;
}

/* ---- drop ---------------------------------------------------------------- */

static int drop(const dn_cli_command *cmd, const options *o, const char *dir) {
  size_t n = 0;
  dn_error err;
  memset(&err, 0, sizeof err);
  if (dn_outbox_drop(dir, o->all ? DN_OUTBOX_DROP_ALL : DN_OUTBOX_DROP_FAILED,
                     &n, &err))
    return dn_cli_fail(cmd, "%s", err.text);
  printf("dropped %zu %sentries from %s\n", n, o->all ? "" : "failed ", dir);
  return DN_CLI_EXIT_OK;
}

static int run_outbox(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_outbox;
  options o;
  memset(&o, 0, sizeof o);
  int rc = parse(cmd, argc, argv, &o);
  if (rc)
    return rc;
  dn_cdn_config *cfg = NULL;
  if (!o.dir || strcmp(o.action, "retry") == 0) {
    if ((rc = load(cmd, &o, &cfg)) != 0)
      return rc;
  }
  const char *dir = o.dir ? o.dir : dn_cdn_config_outbox(cfg);
  if (!dir) {
    dn_cdn_config_free(cfg);
    return dn_cli_fail(cmd, "no outbox directory (DONUT_OUTBOX is 'none' "
                            "and no --outbox was given)");
  }
  if (strcmp(o.action, "list") == 0)
    rc = list(cmd, &o, dir);
  else if (strcmp(o.action, "retry") == 0)
    rc = retry(cmd, &o, cfg, dir);
  else
    rc = drop(cmd, &o, dir);
  dn_cdn_config_free(cfg);
  return rc;
}

const dn_cli_command dn_cli_cmd_outbox = {
    "outbox", "list, resend or drop CDN purges that were not delivered",
    "usage: donut outbox [list] [--outbox DIR] [--config FILE] [--json]\n"
    "       donut outbox retry [--outbox DIR] [--config FILE] "
    "[--timeout SECONDS] [--any]\n"
    "       donut outbox drop (--failed|--all) [--outbox DIR] "
    "[--config FILE]\n"
    "\n"
    "A purger writes each batch of CDN purges to its outbox before sending\n"
    "it, and removes it once the CDN accepted it. Entries left behind are\n"
    "pending (their process died before delivering them) or failed (the\n"
    "CDN kept refusing them until the retries ran out).\n"
    "\n"
    "  list   prints every entry: file:id, state, age, attempts, owner\n"
    "         process (running or gone), the purger that wrote it, tags,\n"
    "         URIs and the last error;\n"
    "         --json prints one JSON object instead\n"
    "  retry  sends the entries of processes that are gone, failed ones\n"
    "         included, through the configured purger, and waits (at most\n"
    "         --timeout seconds, default 120); exit status 1 if any batch\n"
    "         failed again (it stays in the outbox). Only entries written\n"
    "         by a purger of the same backend, profile and destinations\n"
    "         are taken over; --any takes every one (also those of files\n"
    "         that name no purger, \"unknown\")\n"
    "  drop   forgets the failed entries (--failed) or every entry (--all)\n"
    "         of processes that are gone\n"
    "\n"
    "Entries of running processes (a donut serve, say) are listed but\n"
    "never resent or dropped here: their process owns them.\n"
    "\n"
    "The outbox directory is --outbox, else DONUT_OUTBOX or the \"outbox\"\n"
    "key of the configuration file (--config, else DONUT_CONFIG), else\n"
    "$XDG_STATE_HOME/donut/outbox or ~/.local/state/donut/outbox. The\n"
    "purger is configured as for donut serve: DONUT_CDN, DONUT_PURGE_URLS\n"
    "and the CDN's credentials (docs/cdn-purge.md).\n"
    "\n"
    "Example:\n"
    "  $ donut outbox\n"
    "  outbox-4242-9f1c2a7b3d4e5f60.log:3 failed age=120s attempts=8 "
    "owner=4242 (gone)\n"
    "    purger: backend=fastly profile=fastly targets=3f9a0c1d2e4b5a69\n"
    "    tags: weather\n"
    "    error: fastly https://api.fastly.com: HTTP 503\n"
    "  $ DONUT_CDN=fastly DONUT_FASTLY_TOKEN=... DONUT_FASTLY_SERVICE=... \\\n"
    "      donut outbox retry\n",
    run_outbox};
