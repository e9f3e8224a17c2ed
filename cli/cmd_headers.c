/* cmd_headers.c - `donut headers`: the caching header fields a response
 * with given tags and lifetimes carries under a CDN profile.
 *
 * A thin layer over dn_http_cache_fields() and dn_cdn_purge_keys(): it
 * parses the options, builds a dn_http_repr and prints each field as
 * "Name: value", so an operator can see exactly what their CDN will
 * receive, including how a large closure is compacted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "donut/http.h"

typedef struct options {
  const char *tags;
  const char *tags_file;
  dn_cdn_profile cdn;
  int64_t max_age, s_maxage, swr, sie;
  int purge_keys;
} options;

/* Parses a number of seconds: 0 to 2^31 (RFC 9111 §1.2.2). */
static int seconds(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < 0 || v > 2147483648LL)
    return -1;
  *out = v;
  return 0;
}

/* Matches the lifetime options; 1 matched, 0 other, -1 usage error. */
static int lifetime_option(const dn_cli_command *cmd, int argc, char **argv,
                           int *i, options *o) {
  static const char *const names[] = {"--max-age", "--s-maxage", "--swr",
                                      "--sie"};
  int64_t *fields[] = {&o->max_age, &o->s_maxage, &o->swr, &o->sie};
  for (size_t k = 0; k < 4; k++) {
    const char *v;
    int m = dn_cli_option(argc, argv, i, names[k], &v);
    if (m == 0)
      continue;
    if (m < 0 || seconds(v, fields[k]) < 0) {
      dn_cli_usage_error(cmd, "%s needs a number of seconds (0-2147483648)",
                         names[k]);
      return -1;
    }
    return 1;
  }
  return 0;
}

static int parse_args(const dn_cli_command *cmd, int argc, char **argv,
                      options *o) {
  for (int i = 1; i < argc; i++) {
    const char *v;
    int m = lifetime_option(cmd, argc, argv, &i, o);
    if (m < 0)
      return DN_CLI_EXIT_USAGE;
    if (m > 0)
      continue;
    if ((m = dn_cli_option(argc, argv, &i, "--tags", &o->tags)) != 0) {
      if (m < 0)
        return dn_cli_usage_error(cmd, "--tags needs a list of tags");
      continue;
    }
    if ((m = dn_cli_option(argc, argv, &i, "--tags-file", &o->tags_file))) {
      if (m < 0)
        return dn_cli_usage_error(cmd, "--tags-file needs a file name or '-'");
      continue;
    }
    if ((m = dn_cli_option(argc, argv, &i, "--cdn", &v)) != 0) {
      if (m < 0 || dn_cdn_profile_parse(v, strlen(v), &o->cdn))
        return dn_cli_usage_error(cmd, "--cdn needs one of none, generic, "
                                       "fastly, akamai, cloudflare, "
                                       "varnish, bunny, rfc9875");
      continue;
    }
    if (strcmp(argv[i], "--purge-keys") == 0) {
      o->purge_keys = 1;
      continue;
    }
    return dn_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
  }
  if (!o->tags == !o->tags_file)
    return dn_cli_usage_error(cmd, "give one of --tags and --tags-file");
  return DN_CLI_EXIT_OK;
}

/* Splits the tag list on whitespace into slices over it. */
static dn_slice *split_tags(const char *s, size_t *n) {
  size_t cap = strlen(s) / 2 + 1, k = 0;
  dn_slice *out = malloc(cap * sizeof *out);
  if (!out)
    return NULL;
  while (*s) {
    s += strspn(s, " \t\r\n");
    size_t len = strcspn(s, " \t\r\n");
    if (len) {
      out[k].ptr = s;
      out[k++].len = len;
    }
    s += len;
  }
  *n = k;
  return out;
}

static int print_fields(const options *o, const dn_slice *tags, size_t n,
                        dn_error *err) {
  dn_http_repr r;
  dn_http_repr_init(&r);
  r.now = (int64_t)time(NULL);
  r.tags = tags;
  r.tag_count = n;
  r.max_age = o->max_age;
  r.s_maxage = o->s_maxage;
  r.stale_while_revalidate = o->swr;
  r.stale_if_error = o->sie;
  dn_http_headers *h = dn_http_headers_new();
  if (!h)
    return DN_ENOMEM;
  int rc = dn_http_cache_fields(&r, o->cdn, h, err);
  for (size_t i = 0; !rc && i < dn_http_headers_count(h); i++) {
    dn_http_field f = dn_http_headers_at(h, i);
    printf("%.*s: %.*s\n", (int)f.name.len, f.name.ptr, (int)f.value.len,
           f.value.ptr);
  }
  dn_http_headers_free(h);
  return rc;
}

static int print_purge_keys(const options *o, const dn_slice *tags, size_t n,
                            dn_error *err) {
  dn_slice *keys = NULL;
  size_t count = 0;
  int rc = dn_cdn_purge_keys(o->cdn, tags, n, &keys, &count, err);
  for (size_t i = 0; !rc && i < count; i++)
    printf("%.*s\n", (int)keys[i].len, keys[i].ptr);
  dn_free(keys);
  return rc;
}

static int run_headers(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_headers;
  options o = {NULL,          NULL,          DN_CDN_GENERIC, DN_HTTP_UNSET,
               DN_HTTP_UNSET, DN_HTTP_UNSET, DN_HTTP_UNSET,  0};
  int status = parse_args(cmd, argc, argv, &o);
  if (status != DN_CLI_EXIT_OK)
    return status;
  char *file = NULL;
  size_t n = 0, file_len;
  if (o.tags_file) {
    file = dn_cli_read_file(o.tags_file, &file_len);
    if (!file)
      return dn_cli_fail(cmd, "cannot read '%s'", o.tags_file);
    if (strlen(file) != file_len) {
      free(file);
      return dn_cli_fail(cmd, "invalid tag: NUL byte in '%s'", o.tags_file);
    }
  }
  dn_slice *tags = split_tags(file ? file : o.tags, &n);
  if (!tags) {
    free(file);
    return dn_cli_fail(cmd, "out of memory");
  }
  dn_error err;
  int rc = o.purge_keys ? print_purge_keys(&o, tags, n, &err)
                        : print_fields(&o, tags, n, &err);
  free(tags);
  free(file);
  if (rc == DN_ETAG)
    return dn_cli_fail(cmd, "invalid tag: %s", err.text);
  if (rc)
    return dn_cli_fail(cmd, "%s", dn_strerror(rc));
  return DN_CLI_EXIT_OK;
}

const dn_cli_command dn_cli_cmd_headers = {
    "headers", "print the caching header fields a CDN would receive",
    "usage: donut headers (--tags \"TAG...\" | --tags-file FILE|-)\n"
    "                     [--cdn PROFILE] [--max-age N] [--s-maxage N]\n"
    "                     [--swr N] [--sie N] [--purge-keys]\n"
    "\n"
    "Prints, one 'Name: value' per line, the Cache-Control field and the\n"
    "CDN fields of a response whose closure holds the given tags\n"
    "(separated by whitespace; --tags-file reads them from FILE, '-' for\n"
    "standard input, for closures too long for one argument). PROFILE is one "
    "of none, generic (the\n"
    "default), fastly, akamai, cloudflare, varnish, bunny and rfc9875.\n"
    "--max-age sets the client lifetime (default 0), --s-maxage the CDN\n"
    "lifetime (default: one year when the CDN purges by tag, else 10 s),\n"
    "--swr stale-while-revalidate and --sie stale-if-error, in seconds.\n"
    "A closure too large for the CDN is shown compacted into hash bucket\n"
    "keys. With --purge-keys, prints instead the keys a purge of these\n"
    "tags sends to the CDN, one per line.\n"
    "\n"
    "A tag may not contain spaces, control bytes, '\"', ',', '=' or '\\';\n"
    "an invalid tag exits with status 1.\n"
    "\n"
    "Example:\n"
    "  $ donut headers --tags \"app:/self/news weather\" --cdn fastly\n"
    "  Cache-Control: max-age=0\n"
    "  Surrogate-Control: max-age=31536000\n"
    "  Surrogate-Key: app:/self/news weather\n",
    run_headers};
