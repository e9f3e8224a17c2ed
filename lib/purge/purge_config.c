/* purge_config.c - the CDN configuration: profile, purger, credentials and
 * tunables, from a JSON file and the environment.
 *
 * Every setting has a JSON key (top level or inside a section such as
 * "fastly") and most an environment variable; one table lists them all.
 * The file is read first (an explicit path, else DONUT_CONFIG), then every
 * variable that is set and not empty overrides its key. Loading is strict:
 * an unknown key, a wrong type or a purger without its credentials is
 * DN_ECONFIG naming the setting, so a typo fails at start-up instead of
 * leaving a CDN unpurged. The chosen backend is built once while loading
 * to check everything it checks. No error text and no description ever
 * contains a credential's value.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define CONFIG_MAX (1 << 20)

struct dn_cdn_config {
  dn_cdn_profile profile;
  char *purger, *outbox, *base_dir;
  int soft, edgerc_from_json, outbox_set;
  uint64_t window_ms, max_attempts, backoff_ms, max_backoff_ms, timeout_ms;
  dn__strlist urls;
  char *fastly_token, *fastly_service, *fastly_api;
  uint64_t fastly_max_keys;
  char *cf_token, *cf_zone, *cf_api;
  uint64_t cf_max_tags;
  char *ak_edgerc, *ak_section, *ak_network, *ak_action, *ak_api;
  char *ak_buf; /* the .edgerc values */
  dn_purge_akamai_options ak;
  dn__strlist hook_headers; /* "Name: value" */
};

enum { T_PROFILE, T_NAME, T_STR, T_SECRET, T_URLS, T_BOOL, T_U64, T_HEADERS };

typedef struct setting {
  const char *section; /* NULL: top level */
  const char *key;
  const char *env;
  int type;
  size_t off;
} setting;

#define OFF(f) offsetof(struct dn_cdn_config, f)
static const setting settings[] = {
    {NULL, "cdn", "DONUT_CDN", T_PROFILE, OFF(profile)},
    {NULL, "purger", "DONUT_PURGER", T_NAME, OFF(purger)},
    {NULL, "outbox", "DONUT_OUTBOX", T_STR, OFF(outbox)},
    {"purge", "urls", "DONUT_PURGE_URLS", T_URLS, OFF(urls)},
    {"purge", "soft", "DONUT_PURGE_SOFT", T_BOOL, OFF(soft)},
    {"purge", "window_ms", "DONUT_PURGE_WINDOW_MS", T_U64, OFF(window_ms)},
    {"purge", "max_attempts", "DONUT_PURGE_MAX_ATTEMPTS", T_U64,
     OFF(max_attempts)},
    {"purge", "backoff_ms", "DONUT_PURGE_BACKOFF_MS", T_U64, OFF(backoff_ms)},
    {"purge", "max_backoff_ms", "DONUT_PURGE_MAX_BACKOFF_MS", T_U64,
     OFF(max_backoff_ms)},
    {"purge", "timeout_ms", "DONUT_PURGE_TIMEOUT_MS", T_U64, OFF(timeout_ms)},
    {"fastly", "token", "DONUT_FASTLY_TOKEN", T_SECRET, OFF(fastly_token)},
    {"fastly", "service", "DONUT_FASTLY_SERVICE", T_STR, OFF(fastly_service)},
    {"fastly", "api_url", "DONUT_FASTLY_API_URL", T_STR, OFF(fastly_api)},
    {"fastly", "max_keys", "DONUT_FASTLY_MAX_KEYS", T_U64,
     OFF(fastly_max_keys)},
    {"cloudflare", "token", "DONUT_CLOUDFLARE_TOKEN", T_SECRET, OFF(cf_token)},
    {"cloudflare", "zone", "DONUT_CLOUDFLARE_ZONE", T_STR, OFF(cf_zone)},
    {"cloudflare", "api_url", "DONUT_CLOUDFLARE_API_URL", T_STR, OFF(cf_api)},
    {"cloudflare", "max_tags", "DONUT_CLOUDFLARE_MAX_TAGS", T_U64,
     OFF(cf_max_tags)},
    {"akamai", "edgerc", "DONUT_AKAMAI_EDGERC", T_STR, OFF(ak_edgerc)},
    {"akamai", "section", "DONUT_AKAMAI_SECTION", T_STR, OFF(ak_section)},
    {"akamai", "network", "DONUT_AKAMAI_NETWORK", T_STR, OFF(ak_network)},
    {"akamai", "action", "DONUT_AKAMAI_ACTION", T_STR, OFF(ak_action)},
    {"akamai", "api_url", "DONUT_AKAMAI_API_URL", T_STR, OFF(ak_api)},
    {"webhook", "headers", NULL, T_HEADERS, OFF(hook_headers)},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static const char *const purgers[] = {"varnish", "fastly",  "cloudflare",
                                      "akamai",  "webhook", "none"};

void dn_cdn_config_free(dn_cdn_config *c) {
  if (!c)
    return;
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    void *f = (char *)c + s->off;
    if (s->type == T_NAME || s->type == T_STR || s->type == T_SECRET)
      dn__wipe_free(*(char **)f);
    else if (s->type == T_URLS || s->type == T_HEADERS)
      dn__strlist_free(f);
  }
  if (c->ak_buf) /* host, tokens and secret, NUL-separated, in order */
    dn__wipe(c->ak_buf, (size_t)(c->ak.access_token - c->ak_buf) +
                            strlen(c->ak.access_token));
  dn__free(c->ak_buf);
  dn__free(c->base_dir);
  dn__free(c);
}

/* ---- setting values ------------------------------------------------------ */

static int set_error(const setting *s, int from_env, dn_error *err,
                     const char *what) {
  if (from_env)
    return dn__error_set(err, DN_ECONFIG, 0, "%s %s", s->env, what);
  return dn__error_set(err, DN_ECONFIG, 0, "%s%s%s %s",
                       s->section ? s->section : "", s->section ? "." : "",
                       s->key, what);
}

static int set_string(char **field, const char *v, size_t len) {
  char *copy = dn__strndup(v, len);
  if (!copy)
    return DN_ENOMEM;
  dn__wipe_free(*field);
  *field = copy;
  return 0;
}

/* A comma-separated list (environment) into a string list. */
static int set_list(dn__strlist *l, const char *v) {
  dn__strlist out;
  dn__strlist_init(&out);
  int rc = 0;
  while (rc == 0 && *v) {
    const char *end = strchr(v, ',');
    size_t n = end ? (size_t)(end - v) : strlen(v);
    const char *s = v;
    while (n && (*s == ' ' || *s == '\t')) {
      s++;
      n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
      n--;
    if (n)
      rc = dn__strlist_add_z(&out, s, n);
    v = end ? end + 1 : v + strlen(v);
  }
  if (rc) {
    dn__strlist_free(&out);
    return rc;
  }
  dn__strlist_free(l);
  *l = out;
  return 0;
}

static int parse_u64(const char *v, uint64_t *out) {
  uint64_t n = 0;
  if (!*v || strlen(v) > 12)
    return -1;
  for (; *v; v++) {
    if (*v < '0' || *v > '9')
      return -1;
    n = n * 10 + (uint64_t)(*v - '0');
  }
  *out = n;
  return 0;
}

/* A string value, from the environment (from_env) or the file. */
static int set_text(dn_cdn_config *c, const setting *s, const char *v,
                    int from_env, dn_error *err) {
  void *f = (char *)c + s->off;
  int rc = 0;
  switch (s->type) {
  case T_PROFILE:
    if (dn_cdn_profile_parse(v, strlen(v), f))
      return set_error(s, from_env, err, "is not a known CDN profile");
    return 0;
  case T_BOOL:
    if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") &&
        strcmp(v, "false"))
      return set_error(s, from_env, err, "must be 0, 1, true or false");
    *(int *)f = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    return 0;
  case T_U64:
    if (parse_u64(v, f))
      return set_error(s, from_env, err, "must be a non-negative number");
    return 0;
  case T_URLS:
    rc = set_list(f, v);
    break;
  default:
    rc = set_string(f, v, strlen(v));
  }
  return rc ? dn__error_set(err, rc, 0, "out of memory") : 0;
}

static int set_json_list(const setting *s, dn__strlist *l, json_t *v,
                         dn_error *err) {
  size_t i;
  json_t *x;
  if (!json_is_array(v))
    return set_error(s, 0, err, "must be an array of strings");
  dn__strlist out;
  dn__strlist_init(&out);
  json_array_foreach(v, i, x) {
    if (!json_is_string(x)) {
      dn__strlist_free(&out);
      return set_error(s, 0, err, "must be an array of strings");
    }
    if (dn__strlist_add_z(&out, json_string_value(x), json_string_length(x))) {
      dn__strlist_free(&out);
      return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
    }
  }
  dn__strlist_free(l);
  *l = out;
  return 0;
}

static int set_json_headers(const setting *s, dn__strlist *l, json_t *v,
                            dn_error *err) {
  const char *name;
  json_t *x;
  if (!json_is_object(v))
    return set_error(s, 0, err, "must be an object of strings");
  dn__strlist_free(l);
  json_object_foreach(v, name, x) {
    if (!json_is_string(x))
      return set_error(s, 0, err, "must be an object of strings");
    dn__buf b;
    dn__buf_init(&b, 0);
    int rc = dn__buf_append_cstr(&b, name) || dn__buf_append(&b, ": ", 2) ||
                     dn__buf_append_cstr(&b, json_string_value(x)) ||
                     dn__strlist_add_z(l, b.data, b.len)
                 ? DN_ENOMEM
                 : 0;
    dn__wipe(b.data, b.len);
    dn__buf_free(&b);
    if (rc)
      return dn__error_set(err, rc, 0, "out of memory");
  }
  return 0;
}

/* A value from the JSON file. */
static int set_json(dn_cdn_config *c, const setting *s, json_t *v,
                    dn_error *err) {
  void *f = (char *)c + s->off;
  switch (s->type) {
  case T_URLS:
    return set_json_list(s, f, v, err);
  case T_HEADERS:
    return set_json_headers(s, f, v, err);
  case T_BOOL:
    if (!json_is_boolean(v))
      return set_error(s, 0, err, "must be true or false");
    *(int *)f = json_is_true(v);
    return 0;
  case T_U64:
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return set_error(s, 0, err, "must be a non-negative integer");
    *(uint64_t *)f = (uint64_t)json_integer_value(v);
    return 0;
  default:
    if (!json_is_string(v))
      return set_error(s, 0, err, "must be a string");
    return set_text(c, s, json_string_value(v), 0, err);
  }
}

/* ---- the JSON file ------------------------------------------------------- */

static const setting *find(const char *section, const char *key) {
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    if (((!section && !s->section) ||
         (section && s->section && strcmp(section, s->section) == 0)) &&
        strcmp(key, s->key) == 0)
      return s;
  }
  return NULL;
}

static int is_section(const char *key) {
  for (size_t i = 0; i < NSETTINGS; i++)
    if (settings[i].section && strcmp(settings[i].section, key) == 0)
      return 1;
  return 0;
}

static int apply_object(dn_cdn_config *c, const char *section, json_t *o,
                        dn_error *err) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int rc;
    if (!section && is_section(key)) {
      if (!json_is_object(v))
        return dn__error_set(err, DN_ECONFIG, 0, "%.64s must be an object",
                             key);
      rc = apply_object(c, key, v, err);
    } else {
      const setting *s = find(section, key);
      if (!s)
        return dn__error_set(err, DN_ECONFIG, 0, "unknown setting %s%s%.64s",
                             section ? section : "", section ? "." : "", key);
      rc = set_json(c, s, v, err);
      if (rc == 0 && s->off == OFF(ak_edgerc))
        c->edgerc_from_json = 1;
      if (rc == 0 && s->off == OFF(outbox))
        c->outbox_set = 1;
    }
    if (rc)
      return rc;
  }
  return 0;
}

static int apply_json(dn_cdn_config *c, const char *text, size_t len,
                      dn_error *err) {
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    int rc = dn__error_set(err, DN_EJSON, (size_t)je.position,
                           "configuration: %.100s", je.text);
    if (err) {
      err->line = je.line;
      err->column = je.column;
    }
    return rc;
  }
  int rc = json_is_object(root)
               ? apply_object(c, NULL, root, err)
               : dn__error_set(err, DN_ECONFIG, 0,
                               "configuration must be a JSON object");
  json_decref(root);
  return rc;
}

static int apply_env(dn_cdn_config *c, dn_error *err) {
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    const char *v = s->env ? getenv(s->env) : NULL;
    if (!v || !*v)
      continue;
    int rc = set_text(c, s, v, 1, err);
    if (rc)
      return rc;
    if (s->off == OFF(ak_edgerc))
      c->edgerc_from_json = 0;
    if (s->off == OFF(outbox))
      c->outbox_set = 1;
  }
  return 0;
}

/* ---- completing and checking -------------------------------------------- */

static const char *default_purger(const dn_cdn_config *c) {
  switch (c->profile) {
  case DN_CDN_VARNISH:
    return "varnish";
  case DN_CDN_FASTLY:
    return "fastly";
  case DN_CDN_CLOUDFLARE:
    return "cloudflare";
  case DN_CDN_AKAMAI:
    return "akamai";
  default:
    return dn__strlist_count(&c->urls) ? "webhook" : NULL;
  }
}

static int resolve_purger(dn_cdn_config *c, dn_error *err) {
  if (c->purger) {
    for (size_t i = 0; i < sizeof purgers / sizeof purgers[0]; i++)
      if (strcmp(c->purger, purgers[i]) == 0)
        goto known;
    return dn__error_set(err, DN_ECONFIG, 0,
                         "purger must be varnish, fastly, cloudflare, akamai, "
                         "webhook or none");
  known:
    if (strcmp(c->purger, "none") == 0) {
      dn__free(c->purger);
      c->purger = NULL;
    }
    return 0;
  }
  const char *d = default_purger(c);
  if (d && set_string(&c->purger, d, strlen(d)))
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  return 0;
}

/* $XDG_STATE_HOME/donut/outbox, else ~/.local/state/donut/outbox. */
static int default_outbox(dn_cdn_config *c) {
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char path[4096];
  if (xdg && *xdg == '/')
    snprintf(path, sizeof path, "%s/donut/outbox", xdg);
  else if (home && *home == '/')
    snprintf(path, sizeof path, "%s/.local/state/donut/outbox", home);
  else
    return 0;
  return set_string(&c->outbox, path, strlen(path));
}

static int resolve_outbox(dn_cdn_config *c, int use_env, dn_error *err) {
  int rc = 0;
  if (c->outbox && strcmp(c->outbox, "none") == 0) {
    dn__free(c->outbox);
    c->outbox = NULL;
  } else if (!c->outbox_set && use_env) {
    rc = default_outbox(c);
  }
  return rc ? dn__error_set(err, DN_ENOMEM, 0, "out of memory") : 0;
}

/* Reads the .edgerc named by the configuration (relative to the JSON
 * file's directory when the file named it). */
static int load_edgerc(dn_cdn_config *c, dn_error *err) {
  char path[4096];
  const char *p = c->ak_edgerc;
  if (p && p[0] == '~' && p[1] == '/' && getenv("HOME")) {
    snprintf(path, sizeof path, "%s%s", getenv("HOME"), p + 1);
    p = path;
  } else if (p && p[0] != '/' && c->edgerc_from_json && c->base_dir) {
    snprintf(path, sizeof path, "%s/%s", c->base_dir, p);
    p = path;
  }
  return dn_purge_akamai_edgerc(p, c->ak_section, &c->ak, &c->ak_buf, err);
}

static int make_backend(const dn_cdn_config *c, dn_purge_backend *b,
                        dn_error *err) {
  const char *name = c->purger;
  size_t n = dn__strlist_count(&c->urls);
  const char **urls = n ? dn__calloc(n, sizeof *urls) : NULL;
  size_t nh = dn__strlist_count(&c->hook_headers);
  const char **hdrs = nh ? dn__calloc(nh, sizeof *hdrs) : NULL;
  if ((n && !urls) || (nh && !hdrs)) {
    dn__free(urls);
    dn__free(hdrs);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    urls[i] = dn__strlist_at(&c->urls, i).ptr; /* NUL follows each */
  for (size_t i = 0; i < nh; i++)
    hdrs[i] = dn__strlist_at(&c->hook_headers, i).ptr;
  int rc;
  if (strcmp(name, "varnish") == 0) {
    dn_purge_varnish_options o;
    dn_purge_varnish_options_init(&o);
    o.urls = urls;
    o.nurls = n;
    o.soft = c->soft;
    rc = dn_purge_backend_varnish(&o, b, err);
  } else if (strcmp(name, "fastly") == 0) {
    dn_purge_fastly_options o;
    dn_purge_fastly_options_init(&o);
    o.token = c->fastly_token;
    o.service = c->fastly_service;
    o.api_url = c->fastly_api;
    o.soft = c->soft;
    o.max_keys = (size_t)c->fastly_max_keys;
    rc = dn_purge_backend_fastly(&o, b, err);
  } else if (strcmp(name, "cloudflare") == 0) {
    dn_purge_cloudflare_options o;
    dn_purge_cloudflare_options_init(&o);
    o.token = c->cf_token;
    o.zone = c->cf_zone;
    o.api_url = c->cf_api;
    o.max_tags = (size_t)c->cf_max_tags;
    rc = dn_purge_backend_cloudflare(&o, b, err);
  } else if (strcmp(name, "akamai") == 0) {
    dn_purge_akamai_options o = c->ak;
    o.network = c->ak_network;
    o.delete_objects = c->ak_action && strcmp(c->ak_action, "delete") == 0;
    o.api_url = c->ak_api;
    rc = dn_purge_backend_akamai(&o, b, err);
  } else {
    dn_purge_webhook_options o;
    dn_purge_webhook_options_init(&o);
    o.urls = urls;
    o.nurls = n;
    o.headers = hdrs;
    o.nheaders = nh;
    rc = dn_purge_backend_webhook(&o, b, err);
  }
  dn__free(urls);
  dn__free(hdrs);
  return rc;
}

static int finalize(dn_cdn_config *c, int use_env, dn_error *err) {
  int rc = resolve_purger(c, err);
  /* Checked even when unused: a typo should not wait for the day the
   * purger changes. */
  for (size_t i = 0; rc == 0 && i < dn__strlist_count(&c->urls); i++)
    rc = dn__purge_check_url("purge.urls (DONUT_PURGE_URLS)",
                             dn__strlist_at(&c->urls, i).ptr, err);
  if (rc == 0)
    rc = resolve_outbox(c, use_env, err);
  if (rc == 0 && c->ak_action && strcmp(c->ak_action, "invalidate") != 0 &&
      strcmp(c->ak_action, "delete") != 0)
    rc = dn__error_set(err, DN_ECONFIG, 0,
                       "akamai.action must be invalidate or delete");
  if (rc == 0 && c->purger && strcmp(c->purger, "akamai") == 0)
    rc = load_edgerc(c, err);
  if (rc == 0 && c->purger) {
    dn_purge_backend b;
    rc = make_backend(c, &b, err);
    if (rc == 0)
      dn_purge_backend_free(&b);
  }
  return rc;
}

static dn_cdn_config *config_new(const char *base_dir) {
  dn_cdn_config *c = dn__calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->profile = DN_CDN_NONE;
  dn_purge_akamai_options_init(&c->ak);
  dn__strlist_init(&c->urls);
  dn__strlist_init(&c->hook_headers);
  if (base_dir && !(c->base_dir = dn__strndup(base_dir, strlen(base_dir)))) {
    dn__free(c);
    return NULL;
  }
  return c;
}

int dn_cdn_config_parse(const char *json, size_t len, const char *base_dir,
                        dn_cdn_config **out, dn_error *err) {
  if (!out || (!json && len))
    return dn__error_set(err, DN_EINVAL, 0, "no input or output");
  dn_cdn_config *c = config_new(base_dir);
  if (!c)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  int rc = apply_json(c, json ? json : "", len, err);
  if (rc == 0)
    rc = finalize(c, 0, err);
  if (rc) {
    dn_cdn_config_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

static char *read_file(const char *path, size_t *len, dn_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    dn__error_set(err, DN_EIO, 0, "cannot read %.200s: %s", path,
                  strerror(errno));
    return NULL;
  }
  dn__buf b;
  dn__buf_init(&b, CONFIG_MAX);
  char chunk[4096];
  size_t n;
  int rc = 0;
  while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = dn__buf_append(&b, chunk, n);
  if (rc == 0 && ferror(f))
    rc = DN_EIO;
  fclose(f);
  char *text = rc ? NULL : dn__buf_steal(&b, len);
  if (!text)
    dn__error_set(err,
                  rc == DN_ETOOBIG ? DN_ECONFIG
                  : rc             ? rc
                                   : DN_ENOMEM,
                  0, "cannot read %.200s: %s", path,
                  rc == DN_ETOOBIG ? "larger than 1 MiB" : "read error");
  dn__wipe(chunk, sizeof chunk);
  dn__buf_free(&b);
  return text;
}

int dn_cdn_config_load(const char *path, dn_cdn_config **out, dn_error *err) {
  if (!out)
    return dn__error_set(err, DN_EINVAL, 0, "no output");
  if (!path || !*path)
    path = getenv("DONUT_CONFIG");
  char dir[4096] = ".";
  if (path && *path) {
    const char *slash = strrchr(path, '/');
    if (slash)
      snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + (slash == path)),
               path);
  }
  dn_cdn_config *c = config_new(dir);
  if (!c)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  int rc = 0;
  if (path && *path) {
    size_t len = 0;
    char *text = read_file(path, &len, err);
    rc = text ? apply_json(c, text, len, err) : err ? err->code : DN_EIO;
    dn__wipe(text, len);
    dn__free(text);
  }
  if (rc == 0)
    rc = apply_env(c, err);
  if (rc == 0)
    rc = finalize(c, 1, err);
  if (rc) {
    dn_cdn_config_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* ---- reading it ---------------------------------------------------------- */

dn_cdn_profile dn_cdn_config_profile(const dn_cdn_config *c) {
  return c ? c->profile : DN_CDN_NONE;
}

const char *dn_cdn_config_purger(const dn_cdn_config *c) {
  return c ? c->purger : NULL;
}

const char *dn_cdn_config_outbox(const dn_cdn_config *c) {
  return c ? c->outbox : NULL;
}

typedef struct line {
  char *out;
  size_t cap, len;
  int full; /* a pair did not fit: nothing more is added */
} line;

/* Appends " key=value", whole or not at all; bytes of the value that are
 * not visible ASCII become '?', so a value cannot forge another key or a
 * log line. */
static void put(line *l, const char *k, const char *v) {
  if (!v || l->full)
    return;
  int n = snprintf(NULL, 0, "%s%s=%s", l->len ? " " : "", k, v);
  if (n < 0 || l->len + (size_t)n >= l->cap) {
    l->full = 1;
    return;
  }
  size_t at = l->len + (l->len ? 1 : 0) + strlen(k) + 1;
  snprintf(l->out + l->len, l->cap - l->len, "%s%s=%s", l->len ? " " : "", k,
           v);
  l->len += (size_t)n;
  for (size_t i = at; i < l->len; i++)
    if ((unsigned char)l->out[i] <= 0x20 || (unsigned char)l->out[i] >= 0x7f)
      l->out[i] = '?';
}

void dn_cdn_config_describe(const dn_cdn_config *c, char *out, size_t cap) {
  char num[32], label[160];
  if (!out || cap == 0)
    return;
  out[0] = '\0';
  if (!c)
    return;
  line l = {out, cap, 0, 0};
  put(&l, "cdn", dn_cdn_profile_name(c->profile));
  put(&l, "purger", c->purger ? c->purger : "none");
  for (size_t i = 0; i < dn__strlist_count(&c->urls); i++) {
    dn__purge_url_label(dn__strlist_at(&c->urls, i).ptr, label, sizeof label);
    put(&l, "url", label);
  }
  put(&l, "fastly.service", c->fastly_service);
  put(&l, "fastly.token", c->fastly_token ? "(set)" : NULL);
  if (c->fastly_api) { /* without user info or query, like the purge URLs */
    dn__purge_url_label(c->fastly_api, label, sizeof label);
    put(&l, "fastly.api_url", label);
  }
  put(&l, "cloudflare.zone", c->cf_zone);
  put(&l, "cloudflare.token", c->cf_token ? "(set)" : NULL);
  if (c->cf_api) { /* without user info or query, like the purge URLs */
    dn__purge_url_label(c->cf_api, label, sizeof label);
    put(&l, "cloudflare.api_url", label);
  }
  put(&l, "akamai.edgerc", c->ak_edgerc);
  put(&l, "akamai.section", c->ak_section);
  put(&l, "akamai.credentials", c->ak_buf ? "(set)" : NULL);
  if (c->ak_api) { /* without user info or query, like the purge URLs */
    dn__purge_url_label(c->ak_api, label, sizeof label);
    put(&l, "akamai.api_url", label);
  }
  put(&l, "webhook.headers",
      dn__strlist_count(&c->hook_headers) ? "(set)" : NULL);
  put(&l, "soft", c->soft ? "1" : "0");
  if (c->window_ms) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)c->window_ms);
    put(&l, "window_ms", num);
  }
  put(&l, "outbox", c->outbox ? c->outbox : "none");
}

int dn_purger_new_from_config(const dn_cdn_config *c,
                              const dn_purger_options *opts, dn_purger **out,
                              dn_error *err) {
  if (!c || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no configuration or output");
  if (!c->purger)
    return dn__error_set(err, DN_ENOTFOUND, 0, "no purger is configured");
  dn_purger_options o;
  int rc = dn__purger_options_read(opts, &o, err);
  if (rc)
    return rc;
  if (o.profile == DN_CDN_NONE)
    o.profile = c->profile;
  if (!o.outbox_dir)
    o.outbox_dir = c->outbox;
  if (!o.window_ms)
    o.window_ms = c->window_ms;
  if (!o.max_attempts)
    o.max_attempts = (unsigned)c->max_attempts;
  if (!o.backoff_ms)
    o.backoff_ms = c->backoff_ms;
  if (!o.max_backoff_ms)
    o.max_backoff_ms = c->max_backoff_ms;
  if (!o.timeout_ms)
    o.timeout_ms = c->timeout_ms;
  dn_purge_backend b;
  rc = make_backend(c, &b, err);
  if (rc)
    return rc;
  rc = dn_purger_new(b, &o, out, err);
  if (rc)
    dn_purge_backend_free(&b);
  return rc;
}
