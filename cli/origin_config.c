/* origin_config.c - the settings of origin mode (see origin_config.h).
 *
 * Each setting has an environment variable and a key of the "origin" object
 * in the DONUT_CONFIG file; the environment wins, as for the CDN settings.
 *
 *   DONUT_UPSTREAM                    "upstream"   http://HOST:PORT[/PREFIX]
 *   DONUT_ESI_HTML                    esi_html     1: ESI in every HTML page
 *   DONUT_TAG_FIELDS                  tag_fields   cache-tag, xkey (list)
 *   DONUT_UPSTREAM_CONNECT_TIMEOUT_MS connect_timeout_ms
 *   DONUT_UPSTREAM_FIRST_BYTE_MS      first_byte_timeout_ms
 *   DONUT_UPSTREAM_TIMEOUT_MS         total_timeout_ms
 *   DONUT_UPSTREAM_MAX_BODY_BYTES     max_body_bytes
 *   DONUT_DEFAULT_TTL                 default_ttl_s
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "origin_config.h"

typedef struct num_setting {
  const char *env, *key;
  size_t offset; /* in dn_origin_options */
  int kind;      /* 0: uint32_t, 1: size_t, 2: int64_t */
} num_setting;

static const num_setting nums[] = {
    {"DONUT_UPSTREAM_CONNECT_TIMEOUT_MS", "connect_timeout_ms",
     offsetof(dn_origin_options, connect_timeout_ms), 0},
    {"DONUT_UPSTREAM_FIRST_BYTE_MS", "first_byte_timeout_ms",
     offsetof(dn_origin_options, first_byte_timeout_ms), 0},
    {"DONUT_UPSTREAM_TIMEOUT_MS", "total_timeout_ms",
     offsetof(dn_origin_options, total_timeout_ms), 0},
    {"DONUT_UPSTREAM_MAX_BODY_BYTES", "max_body_bytes",
     offsetof(dn_origin_options, max_body_bytes), 1},
    {"DONUT_DEFAULT_TTL", "default_ttl_s",
     offsetof(dn_origin_options, default_ttl_s), 2},
};

static int fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return -1;
}

static int set_num(dn_origin_options *o, const num_setting *s, long long v) {
  char *p = (char *)o + s->offset;
  if (v < 0 || (s->kind == 0 && v > 0x7fffffffLL))
    return -1;
  if (s->kind == 0)
    *(uint32_t *)(void *)p = (uint32_t)v;
  else if (s->kind == 1)
    *(size_t *)(void *)p = (size_t)v;
  else
    *(int64_t *)(void *)p = (int64_t)v;
  return 0;
}

static int tag_fields(const char *list, unsigned *out) {
  unsigned f = 0;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t;
       t = strtok_r(NULL, ", ", &save)) {
    if (strcmp(t, "cache-tag") == 0)
      f |= DN_ORIGIN_TAGS_CACHE_TAG;
    else if (strcmp(t, "xkey") == 0)
      f |= DN_ORIGIN_TAGS_XKEY;
    else if (strcmp(t, "surrogate-key") != 0)
      return -1;
  }
  *out = f;
  return 0;
}

static int from_file(json_t *root, dn_cli_origin_config *c, char *why,
                     size_t cap) {
  json_t *up = json_object_get(root, "upstream");
  if (up && !json_is_string(up))
    return fail(why, cap, "DONUT_CONFIG: \"upstream\" must be a string%s%s", "",
                "");
  if (up && !c->upstream[0])
    snprintf(c->upstream, sizeof c->upstream, "%s", json_string_value(up));
  json_t *o = json_object_get(root, "origin");
  if (!o)
    return 0;
  if (!json_is_object(o))
    return fail(why, cap, "DONUT_CONFIG: \"origin\" must be an object%s%s", "",
                "");
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    size_t i = 0;
    while (i < sizeof nums / sizeof nums[0] && strcmp(nums[i].key, key) != 0)
      i++;
    if (i < sizeof nums / sizeof nums[0]) {
      if (!json_is_integer(v) ||
          set_num(&c->opts, &nums[i], json_integer_value(v)))
        return fail(why, cap,
                    "DONUT_CONFIG: origin.%s must be a non-negative "
                    "integer%s",
                    key, "");
    } else if (strcmp(key, "esi_html") == 0 && json_is_boolean(v)) {
      c->opts.esi_html = json_is_true(v);
    } else if (strcmp(key, "tag_fields") == 0 && json_is_array(v)) {
      size_t k;
      json_t *e;
      char list[128] = "";
      json_array_foreach(v, k, e) {
        if (!json_is_string(e))
          return fail(why, cap,
                      "DONUT_CONFIG: origin.tag_fields lists "
                      "strings%s%s",
                      "", "");
        strncat(list, json_string_value(e), sizeof list - strlen(list) - 2);
        strcat(list, ",");
      }
      if (tag_fields(list, &c->opts.tag_fields))
        return fail(why, cap,
                    "DONUT_CONFIG: origin.tag_fields takes surrogate-key, "
                    "cache-tag and xkey%s%s",
                    "", "");
    } else {
      return fail(why, cap, "DONUT_CONFIG: unknown or mistyped key origin.%s%s",
                  key, "");
    }
  }
  return 0;
}

int dn_cli_origin_config_load(const char *flag, dn_cli_origin_config *c,
                              char *why, size_t cap) {
  memset(c, 0, sizeof *c);
  dn_origin_options_init(&c->opts);
  const char *env = getenv("DONUT_UPSTREAM");
  const char *up = flag ? flag : env && *env ? env : NULL;
  if (up && strlen(up) >= sizeof c->upstream)
    return fail(why, cap, "upstream URL too long%s%s", "", "");
  if (up)
    snprintf(c->upstream, sizeof c->upstream, "%s", up);
  const char *path = getenv("DONUT_CONFIG");
  if (path && *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
      snprintf(why, cap, "%s:%d: %s", path, je.line, je.text);
      return -1;
    }
    int rc = json_is_object(root) ? from_file(root, c, why, cap) : 0;
    json_decref(root);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    const char *v = getenv(nums[i].env);
    if (!v || !*v)
      continue;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno || set_num(&c->opts, &nums[i], n))
      return fail(why, cap, "%s: expected a non-negative integer, got '%s'",
                  nums[i].env, v);
  }
  const char *esi = getenv("DONUT_ESI_HTML");
  if (esi && *esi) {
    if (strcmp(esi, "0") != 0 && strcmp(esi, "1") != 0)
      return fail(why, cap, "DONUT_ESI_HTML: expected 0 or 1, got '%s'%s", esi,
                  "");
    c->opts.esi_html = esi[0] == '1';
  }
  const char *tf = getenv("DONUT_TAG_FIELDS");
  if (tf && *tf && tag_fields(tf, &c->opts.tag_fields))
    return fail(why, cap,
                "DONUT_TAG_FIELDS: expected surrogate-key, cache-tag or xkey, "
                "got '%s'%s",
                tf, "");
  return 0;
}

void dn_cli_origin_config_apply(const dn_cli_origin_config *c,
                                dn_origin_options *o) {
  *o = c->opts;
  o->upstream = c->upstream;
}
