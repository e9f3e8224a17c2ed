/* cmd_serve.c - `donut serve`: the demo site and the control API over the
 * store the environment selects, until SIGTERM or SIGINT.
 *
 * This file only wires the library together: the store from
 * dn_store_from_env, an engine, the demo site, a dn_server on a libuv
 * loop, signal handlers that start a graceful shutdown, the log and the
 * access log. It prints one line at startup that says which store it
 * uses and how it reaches it, which CDN profile it applies and where it
 * listens.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cli.h"
#include "control.h"
#include "demo_site.h"
#include "origin_config.h"
#include "donut/origin.h"
#include "donut/server.h"
#include "donut/store_shared.h"

typedef struct serve_opts {
  const char *listen, *control, *cdn, *access_log, *offload, *upstream;
  long max_conns, request_timeout, idle_timeout, max_header, max_body;
  long threads;
} serve_opts;

#define THREADS_MAX 64

/* A further loop thread with its own server on the same port
 * (SO_REUSEPORT); the main loop tells it to stop through `stop`. */
typedef struct worker {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  dn_server *srv;
  int hard;
} worker;

typedef struct serve_state {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  dn_server *srv;
  FILE *access;
  int signals;
  worker *workers;
  int nworkers;
} serve_state;

static void log_line(void *ud, int level, const char *msg) {
  (void)ud;
  static const char *const names[] = {"error", "warning", "info", "debug"};
  fprintf(stderr, "donut serve: %s: %s\n",
          names[level >= 0 && level <= 3 ? level : 0], msg);
}

/* Copies s into out with '"', '\\' and control bytes escaped. */
static void log_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 5 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7f) {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o] = '\0';
}

/* One line per request, in the combined format plus the cache outcome
 * and the time taken in seconds. */
static void access_line(void *ud, const dn_server_access *a) {
  serve_state *s = ud;
  char when[64], target[2048], ua[512], ref[512];
  time_t t = (time_t)(a->time_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  log_escape(a->target, target, sizeof target);
  log_escape(a->user_agent, ua, sizeof ua);
  log_escape(a->referer, ref, sizeof ref);
  fprintf(s->access,
          "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu \"%s\" \"%s\" "
          "cache=%s %.6f%s\n",
          a->remote, when, a->method, target, a->http_minor, a->status,
          (unsigned long long)a->body_bytes, ref, ua, a->cache,
          (double)a->duration_us / 1e6, a->control ? " control" : "");
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void on_stopped(void *ud) {
  serve_state *s = ud;
  uv_close((uv_handle_t *)&s->sigterm, on_closed);
  uv_close((uv_handle_t *)&s->sigint, on_closed);
}

static void worker_done(void *ud) {
  worker *w = ud;
  uv_close((uv_handle_t *)&w->stop, on_closed);
}

static void worker_on_stop(uv_async_t *a) {
  worker *w = a->data;
  if (!w->hard) {
    dn_server_shutdown(w->srv, worker_done, w);
    return;
  }
  dn_server_free(w->srv);
  w->srv = NULL;
  if (!uv_is_closing((uv_handle_t *)&w->stop))
    worker_done(w);
}

static void *worker_main(void *ud) {
  worker *w = ud;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void stop_workers(serve_state *s, int hard) {
  for (int i = 0; i < s->nworkers; i++) {
    s->workers[i].hard = hard;
    uv_async_send(&s->workers[i].stop);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  serve_state *s = h->data;
  if (s->signals++ == 0) {
    fprintf(stderr, "donut serve: %s: finishing requests in progress\n",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stop_workers(s, 0);
    dn_server_shutdown(s->srv, on_stopped, s);
    return;
  }
  fprintf(stderr, "donut serve: second signal: closing every connection\n");
  stop_workers(s, 1);
  dn_server_free(s->srv);
  s->srv = NULL;
  on_stopped(s);
}

static int parse_long(const dn_cli_command *cmd, const char *name,
                      const char *v, long *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (*v == '\0' || *end || errno || n <= 0)
    return dn_cli_usage_error(cmd, "%s expects a positive number", name);
  *out = n;
  return 0;
}

static int parse_args(const dn_cli_command *cmd, int argc, char **argv,
                      serve_opts *o) {
  static const char *const names[] = {
      "--listen",          "--control",      "--cdn",
      "--access-log",      "--offload",      "--max-connections",
      "--request-timeout", "--idle-timeout", "--max-header-bytes",
      "--max-body-bytes",  "--threads",      "--upstream"};
  const char **strs[] = {&o->listen, &o->control, &o->cdn, &o->access_log,
                         &o->offload};
  long *nums[] = {&o->max_conns,  &o->request_timeout, &o->idle_timeout,
                  &o->max_header, &o->max_body,        &o->threads};
  for (int i = 1; i < argc; i++) {
    int matched = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !matched; k++) {
      const char *v;
      int m = dn_cli_option(argc, argv, &i, names[k], &v);
      if (m < 0)
        return dn_cli_usage_error(cmd, "%s needs a value", names[k]);
      if (m == 0)
        continue;
      matched = 1;
      if (k == 11)
        o->upstream = v;
      else if (k < 5)
        *strs[k] = v;
      else if (parse_long(cmd, names[k], v, nums[k - 5]))
        return DN_CLI_EXIT_USAGE;
    }
    if (!matched)
      return dn_cli_usage_error(cmd, "unknown argument '%s'", argv[i]);
  }
  if (o->threads > THREADS_MAX)
    return dn_cli_usage_error(cmd, "--threads expects 1 to %d", THREADS_MAX);
  return 0;
}

static int control_token(const dn_cli_command *cmd, char *token, size_t cap,
                         char *where, size_t wcap) {
  const char *t = getenv("DONUT_CONTROL_TOKEN");
  if (t && *t) {
    /* Never cut a token short: clients would send the whole one. */
    if (strlen(t) + 1 > cap)
      return dn_cli_fail(cmd,
                         "DONUT_CONTROL_TOKEN is %zu characters long; a "
                         "control token has at most %zu",
                         strlen(t), cap - 1);
    snprintf(token, cap, "%s", t);
    snprintf(where, wcap, "token from DONUT_CONTROL_TOKEN");
    return 0;
  }
  char path[1024], why[1200];
  if (dn_cli_token_create(token, cap, path, sizeof path, why, sizeof why))
    return dn_cli_fail(cmd, "control token: %s", why);
  snprintf(where, wcap, "token in %s", path);
  return 0;
}

typedef struct serve_parts {
  dn_store *store;
  dn_engine *engine;
  demo_site *demo;   /* the demo, or */
  dn_origin *origin; /* origin mode (--upstream) */
  char site_desc[1100];
  dn_cdn_config *cdn_cfg;
  dn_purger *purger; /* NULL when no CDN purger is configured */
  char store_desc[256];
  char purge_desc[320];
  dn_cdn_profile cdn;
} serve_parts;

static void parts_free(serve_parts *p) {
  demo_site_free(p->demo);
#if DONUT_WITH_ORIGIN
  dn_origin_free(p->origin);
#endif
  p->origin = NULL;
  /* The engine has no way to unsubscribe its listeners: free it before the
   * purger, then give queued purges a moment to go out (what does not is
   * kept in the outbox for the next start). */
  dn_engine_free(p->engine);
  if (p->purger)
    dn_purger_drain(p->purger, 5000);
  dn_purger_free(p->purger);
  dn_cdn_config_free(p->cdn_cfg);
  dn_store_free(p->store);
  p->demo = NULL;
  p->engine = NULL;
  p->purger = NULL;
  p->cdn_cfg = NULL;
  p->store = NULL;
}

/* Subscribes the configured CDN purger (DONUT_CDN, DONUT_PURGE_URLS, the
 * CDN's credentials or DONUT_CONFIG) to the engine's invalidations. */
static int purger_open(const dn_cli_command *cmd, serve_parts *p,
                       int explicit_cdn) {
  dn_error err;
  memset(&err, 0, sizeof err);
  /* --cdn overrides DONUT_CDN and the configuration file's "cdn", for the
   * purger as for the headers. */
  if (explicit_cdn && setenv("DONUT_CDN", dn_cdn_profile_name(p->cdn), 1))
    return dn_cli_fail(cmd, "cannot set DONUT_CDN");
  int rc = dn_cdn_config_load(NULL, &p->cdn_cfg, &err);
  if (rc == 0 && !explicit_cdn)
    p->cdn = dn_cdn_config_profile(p->cdn_cfg);
  if (rc && !getenv("DONUT_CONFIG")) {
    /* The profile still shapes the headers; purging is left to others,
     * and the startup line says why donut does not purge. */
    snprintf(p->purge_desc, sizeof p->purge_desc, "not purging: %s",
             err.text[0] ? err.text : dn_strerror(rc));
    return 0;
  }
  if (rc)
    return dn_cli_fail(cmd, "CDN configuration: %s",
                       err.text[0] ? err.text : dn_strerror(rc));
  dn_purger_options po;
  dn_purger_options_init(&po);
  po.profile = p->cdn;
  po.log = log_line;
  rc = dn_purger_new_from_config(p->cdn_cfg, &po, &p->purger, &err);
  if (rc == 0)
    rc = dn_purger_listen(p->purger, p->engine);
  if (rc == DN_ENOTFOUND) {
    snprintf(p->purge_desc, sizeof p->purge_desc, "no CDN purger");
    return 0;
  }
  if (rc)
    return dn_cli_fail(cmd, "purger: %s",
                       err.text[0] ? err.text : dn_strerror(rc));
  char desc[256];
  dn_cdn_config_describe(p->cdn_cfg, desc, sizeof desc);
  snprintf(p->purge_desc, sizeof p->purge_desc, "purging %s", desc);
  return 0;
}

/* The site: the demo, or origin mode in front of --upstream (else
 * DONUT_UPSTREAM, else "upstream" in the DONUT_CONFIG file). */
static int site_open(const dn_cli_command *cmd, const serve_opts *o,
                     serve_parts *p) {
#if !DONUT_WITH_ORIGIN
  const char *up = o->upstream ? o->upstream : getenv("DONUT_UPSTREAM");
  if (up && *up)
    return dn_cli_fail(cmd, "origin mode is not built into this donut "
                            "(DONUT_WITH_ORIGIN=OFF)");
  snprintf(p->site_desc, sizeof p->site_desc, "the demo site");
  int rc = demo_site_new(p->engine, &p->demo);
  return rc ? dn_cli_fail(cmd, "demo: %s", dn_strerror(rc)) : 0;
#else
  dn_origin_options oo;
  dn_origin_options_init(&oo);
  dn_cli_origin_config cfg;
  char why[300];
  if (dn_cli_origin_config_load(o->upstream, &cfg, why, sizeof why))
    return dn_cli_fail(cmd, "%s", why);
  if (!cfg.upstream[0]) {
    snprintf(p->site_desc, sizeof p->site_desc, "the demo site");
    int rc = demo_site_new(p->engine, &p->demo);
    return rc ? dn_cli_fail(cmd, "demo: %s", dn_strerror(rc)) : 0;
  }
  dn_cli_origin_config_apply(&cfg, &oo);
  oo.log = log_line;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_origin_new(p->engine, &oo, &p->origin, &err);
  if (rc)
    return dn_cli_fail(cmd, "upstream: %s",
                       err.text[0] ? err.text : dn_strerror(rc));
  snprintf(p->site_desc, sizeof p->site_desc, "origin mode in front of %s",
           cfg.upstream);
  /* Renders wait on the upstream on libuv's thread pool (hits are answered
   * on the loop): give it room for many slow upstream requests at once. */
  setenv("UV_THREADPOOL_SIZE", "128", 0);
  return 0;
#endif
}

static int parts_open(const dn_cli_command *cmd, const serve_opts *o,
                      serve_parts *p) {
  const char *cdn = o->cdn ? o->cdn : getenv("DONUT_CDN");
  if (!cdn || !*cdn)
    cdn = "none";
  if (dn_cdn_profile_parse(cdn, strlen(cdn), &p->cdn))
    return o->cdn
               ? dn_cli_usage_error(cmd, "unknown CDN profile '%s'", cdn)
               : dn_cli_fail(cmd, "DONUT_CDN: unknown CDN profile '%s'", cdn);
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_store_from_env(NULL, &p->store, p->store_desc,
                             sizeof p->store_desc, &err);
  if (rc)
    return dn_cli_fail(cmd, "store: %s",
                       err.text[0] ? err.text : dn_strerror(rc));
  dn_engine_options eo;
  dn_engine_options_init(&eo);
  eo.store = p->store;
  eo.log = log_line;
  if ((rc = dn_engine_new(&eo, &p->engine)) != 0) {
    parts_free(p);
    return dn_cli_fail(cmd, "engine: %s", dn_strerror(rc));
  }
  if ((rc = site_open(cmd, o, p)) != 0) {
    parts_free(p);
    return rc;
  }
  if ((rc = purger_open(cmd, p, o->cdn != NULL)) != 0)
    parts_free(p);
  return rc;
}

static int offload_of(const dn_cli_command *cmd, const char *v,
                      const dn_store *store, int *out) {
  if (!v || strcmp(v, "auto") == 0) {
    /* In-process stores never block; shared stores wait on the network. */
    const char *n = dn_store_name(store);
    *out = strcmp(n, "memory") != 0 && strcmp(n, "null") != 0;
  } else if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
    *out = v[1] == 'n';
  } else {
    return dn_cli_usage_error(cmd, "--offload expects auto, on or off");
  }
  return 0;
}

static void server_options(const serve_opts *o, serve_parts *p, serve_state *s,
                           dn_server_options *so) {
  dn_server_options_init(so);
  so->engine = p->engine;
  so->cdn = p->cdn;
  if (o->listen)
    so->listen = o->listen;
  so->handler = demo_site_handler;
  so->handler_ud = p->demo;
#if DONUT_WITH_ORIGIN
  if (p->origin) {
    so->handler = dn_origin_handler;
    so->handler_ud = p->origin;
  }
#endif
  so->log = log_line;
  if (s->access) {
    so->access = access_line;
    so->access_ud = s;
  }
#define NUM(f, v)                                                              \
  if (v)                                                                       \
    so->f = v;
  NUM(max_connections, (unsigned)o->max_conns)
  NUM(request_timeout_ms, (uint32_t)o->request_timeout)
  NUM(idle_timeout_ms, (uint32_t)o->idle_timeout)
  NUM(max_header_bytes, (size_t)o->max_header)
  NUM(max_body_bytes, (size_t)o->max_body)
#undef NUM
}

static void startup_line(serve_state *s, serve_parts *p, const char *where,
                         int offload, const char *threads) {
  char site[80] = "", ctl[80] = "";
  dn_server_address(s->srv, 0, site, sizeof site);
  int has_ctl = dn_server_address(s->srv, 1, ctl, sizeof ctl) == 0;
  fprintf(stderr,
          "donut serve: %s; store %s; cdn %s (%s); listening on http://%s; "
          "control API %s%s%s%s%s; engine calls %s%s\n",
          p->site_desc, p->store_desc, dn_cdn_profile_name(p->cdn),
          p->purge_desc, site, has_ctl ? "on http://" : "off",
          has_ctl ? ctl : "", has_ctl ? " (" : "", has_ctl ? where : "",
          has_ctl ? ")" : "",
          offload == DN_SERVER_OFFLOAD_MISSES
              ? "on the loop thread for hits, on the thread pool for misses"
          : offload ? "on the thread pool"
                    : "on the loop thread",
          threads);
}

/* Starts threads - 1 further loops serving the same port. */
static int start_workers(const dn_cli_command *cmd, serve_state *s,
                         const dn_server_options *base, int n) {
  char addr[80];
  dn_server_address(s->srv, 0, addr, sizeof addr);
  s->workers = calloc((size_t)n, sizeof *s->workers);
  if (!s->workers)
    return dn_cli_fail(cmd, "out of memory");
  for (int i = 0; i < n; i++) {
    worker *w = &s->workers[i];
    dn_server_options so = *base;
    so.listen = addr;
    so.control = NULL;
    so.control_token = NULL;
    so.share_counters_with = s->srv;
    dn_error err;
    memset(&err, 0, sizeof err);
    if (uv_loop_init(&w->loop) != 0)
      return dn_cli_fail(cmd, "loop thread %d: no event loop", i + 2);
    int rc = dn_server_new(&w->loop, &so, &w->srv, &err);
    if (rc) {
      uv_loop_close(&w->loop);
      return dn_cli_fail(cmd, "loop thread %d: %s", i + 2,
                         err.text[0] ? err.text : dn_strerror(rc));
    }
    uv_async_init(&w->loop, &w->stop, worker_on_stop);
    w->stop.data = w;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      dn_server_free(w->srv);
      uv_close((uv_handle_t *)&w->stop, on_closed);
      uv_run(&w->loop, UV_RUN_DEFAULT);
      uv_loop_close(&w->loop);
      return dn_cli_fail(cmd, "cannot start loop thread %d", i + 2);
    }
    s->nworkers++;
  }
  return 0;
}

static void join_workers(serve_state *s) {
  for (int i = 0; i < s->nworkers; i++) {
    worker *w = &s->workers[i];
    pthread_join(w->thread, NULL);
    dn_server_free(w->srv);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
  }
  free(s->workers);
  s->workers = NULL;
  s->nworkers = 0;
}

static int serve_loop(const dn_cli_command *cmd, const serve_opts *o,
                      serve_parts *p, serve_state *s) {
  char token[DN_CLI_TOKEN_MAX + 1] = "", where[1200] = "";
  const char *control = o->control ? o->control : "127.0.0.1:8081";
  int no_control = strcmp(control, "none") == 0 || strcmp(control, "off") == 0;
  int offload = 0;
  if (offload_of(cmd, o->offload, p->store, &offload))
    return DN_CLI_EXIT_USAGE;
  /* Origin mode: renders wait on the upstream, so they never run on the
   * loop; hits still do, even on a shared store (a round trip to it is far
   * shorter than a wait behind slow renders in the thread pool), unless
   * --offload on asks for everything on the pool. */
  if (p->origin && !(o->offload && strcmp(o->offload, "on") == 0))
    offload = DN_SERVER_OFFLOAD_MISSES;
  if (!no_control &&
      control_token(cmd, token, sizeof token, where, sizeof where))
    return DN_CLI_EXIT_FAIL;
  dn_server_options so;
  server_options(o, p, s, &so);
  so.offload = offload;
  so.reuse_port = o->threads > 1;
  dn_server_options worker_opts = so;
  so.control = no_control ? NULL : control;
  so.control_token = no_control ? NULL : token;
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_server_new(&s->loop, &so, &s->srv, &err);
  if (rc)
    return dn_cli_fail(cmd, "%s", err.text[0] ? err.text : dn_strerror(rc));
  char threads[48] = "";
  if (o->threads > 1) {
    snprintf(threads, sizeof threads, "; %ld loop threads", o->threads);
    if ((rc = start_workers(cmd, s, &worker_opts, (int)o->threads - 1))) {
      stop_workers(s, 1);
      join_workers(s);
      dn_server_free(s->srv);
      uv_run(&s->loop, UV_RUN_DEFAULT);
      return rc;
    }
  }
  startup_line(s, p, where, offload, threads);
  uv_signal_init(&s->loop, &s->sigterm);
  uv_signal_init(&s->loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  join_workers(s);
  dn_server_free(s->srv);
  uv_run(&s->loop, UV_RUN_DEFAULT); /* close callbacks of a hard stop */
  fprintf(stderr, "donut serve: stopped\n");
  return DN_CLI_EXIT_OK;
}

static int run_serve(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_serve;
  serve_opts o;
  memset(&o, 0, sizeof o);
  int rc = parse_args(cmd, argc, argv, &o);
  if (rc)
    return rc;
  serve_state s;
  memset(&s, 0, sizeof s);
  if (o.access_log && !(s.access = fopen(o.access_log, "a")))
    return dn_cli_fail(cmd, "--access-log %s: %s", o.access_log,
                       strerror(errno));
  if (s.access)
    setvbuf(s.access, NULL, _IOLBF, 0);
  /* A peer that closes early must not kill the process with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  serve_parts p;
  memset(&p, 0, sizeof p);
  rc = parts_open(cmd, &o, &p);
  if (rc == 0 && uv_loop_init(&s.loop) != 0)
    rc = dn_cli_fail(cmd, "cannot create the event loop");
  else if (rc == 0) {
    rc = serve_loop(cmd, &o, &p, &s);
    uv_loop_close(&s.loop);
  }
  parts_free(&p);
  if (s.access)
    fclose(s.access);
  return rc;
}

const dn_cli_command dn_cli_cmd_serve = {
    "serve", "run the demo site and the control API (HTTP/1.1, libuv)",
    "usage: donut serve [--upstream URL] [--listen ADDR] [--control "
    "ADDR|none]\n"
    "                   [--cdn PROFILE]\n"
    "                   [--access-log FILE] [--offload auto|on|off]\n"
    "                   [--max-connections N] [--request-timeout MS]\n"
    "                   [--idle-timeout MS] [--max-header-bytes N]\n"
    "                   [--max-body-bytes N] [--threads N]\n"
    "\n"
    "Serves the demo site, or with --upstream the site of any HTTP\n"
    "application (origin mode, docs/origin.md), through the cache engine\n"
    "(resources app://self + the request path), and the control API on a\n"
    "second, loopback listener.\n"
    "Stops gracefully on SIGTERM or SIGINT: requests in progress finish,\n"
    "then it exits with status 0.\n"
    "\n"
    "Options:\n"
    "  --upstream URL       origin mode: fetch every resource from the HTTP\n"
    "                       application at URL (http://HOST:PORT[/PREFIX]),\n"
    "                       with ESI includes as holes and Surrogate-Key tags\n"
    "  --listen ADDR        site address, HOST:PORT (default 127.0.0.1:8080;\n"
    "                       port 0 picks a free port)\n"
    "  --control ADDR       control API address (default 127.0.0.1:8081);\n"
    "                       'none' turns it off\n"
    "  --cdn PROFILE        CDN header profile: none, generic, fastly, "
    "akamai,\n"
    "                       cloudflare, varnish, bunny, rfc9875 (default\n"
    "                       $DONUT_CDN, else none)\n"
    "  --access-log FILE    append one line per request to FILE\n"
    "  --offload MODE       run engine calls on libuv's thread pool: auto\n"
    "                       (for shared stores), on or off\n"
    "  --max-connections N  per listener (default 1024); over it: 503\n"
    "  --request-timeout MS a request must arrive whole within MS (10000)\n"
    "  --idle-timeout MS    keep-alive connections idle longer close (30000)\n"
    "  --max-header-bytes N request line and fields (16384); over it: 431\n"
    "  --max-body-bytes N   request body (1048576); over it: 413\n"
    "  --threads N          N event loops share the site port (SO_REUSEPORT)\n"
    "                       and one engine (default 1)\n"
    "\n"
    "Environment:\n"
    "  MEMCACHED_ADDR, REDIS_URL, DONUT_STORE  the store (default: memory)\n"
    "  DONUT_CDN            the CDN profile when --cdn is not given\n"
    "  DONUT_UPSTREAM       the upstream when --upstream is not given\n"
    "  DONUT_CONFIG         JSON file; its \"upstream\" and \"origin\" keys\n"
    "                       configure origin mode (docs/origin.md)\n"
    "  DONUT_CONTROL_TOKEN  the control API's bearer token; when unset a\n"
    "                       random one is written to\n"
    "                       $XDG_RUNTIME_DIR/donut/control-token (else\n"
    "                       ~/.donut/control-token), mode 0600\n"
    "\n"
    "Example:\n"
    "  $ donut serve\n"
    "  $ curl -i http://127.0.0.1:8080/news?id=1\n",
    run_serve};
