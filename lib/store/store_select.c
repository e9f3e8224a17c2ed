/* store_select.c - choosing a store from options and the environment, and
 * parsing the addresses of the shared stores.
 *
 * MEMCACHED_ADDR is a comma-separated list of servers, REDIS_URL a
 * redis:// URL, DONUT_STORE names a kind outright and DONUT_NAMESPACE sets
 * the key prefix. Parsing is strict: anything unexpected is DN_ECONFIG
 * with the variable, the byte offset and the reason, because a typo in a
 * cache address should fail at start-up, not quietly run without a shared
 * cache. The one-line description never includes a password.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "store_codec.h"

#define MEMCACHED_PORT 11211
#define REDIS_PORT 6379

static int is_host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int is_v6_byte(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

static int parse_port(const char *s, size_t len, size_t at, const char *what,
                      unsigned *port, dn_error *err) {
  unsigned v = 0;
  if (len == 0 || len > 5)
    return dn__error_set(err, DN_ECONFIG, at, "%s: port must be 1 to 65535",
                         what);
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return dn__error_set(err, DN_ECONFIG, at + i,
                           "%s: port must be decimal digits", what);
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return dn__error_set(err, DN_ECONFIG, at, "%s: port must be 1 to 65535",
                         what);
  *port = v;
  return 0;
}

/* Splits "[v6]:port", "[v6]", "host:port" or "host" at offset `at` of the
 * whole setting. */
static int parse_hostport(const char *s, size_t len, size_t at,
                          const char *what, unsigned defport, dn__hostport *hp,
                          dn_error *err) {
  size_t hlen, i = 0;
  const char *host = s;
  if (len && s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close)
      return dn__error_set(err, DN_ECONFIG, at, "%s: missing ']'", what);
    host = s + 1;
    hlen = (size_t)(close - host);
    for (i = 0; i < hlen; i++)
      if (!is_v6_byte(host[i]))
        return dn__error_set(err, DN_ECONFIG, at + 1 + i,
                             "%s: bad byte in IPv6 address", what);
    i = hlen + 2;
  } else {
    while (i < len && s[i] != ':') {
      if (!is_host_byte(s[i]))
        return dn__error_set(err, DN_ECONFIG, at + i,
                             "%s: bad byte in host name", what);
      i++;
    }
    hlen = i;
  }
  if (hlen == 0)
    return dn__error_set(err, DN_ECONFIG, at, "%s: empty host", what);
  if (hlen >= DN__HOST_MAX)
    return dn__error_set(err, DN_ECONFIG, at, "%s: host name too long", what);
  memcpy(hp->host, host, hlen);
  hp->host[hlen] = '\0';
  hp->port = defport;
  if (i == len)
    return 0;
  if (s[i] != ':')
    return dn__error_set(err, DN_ECONFIG, at + i, "%s: expected ':port'", what);
  if (memchr(s + i + 1, ':', len - i - 1))
    return dn__error_set(err, DN_ECONFIG, at + i,
                         "%s: too many ':' (write IPv6 addresses as [addr])",
                         what);
  return parse_port(s + i + 1, len - i - 1, at + i + 1, what, &hp->port, err);
}

static int parse_server(const char *s, size_t len, size_t at, const char *what,
                        dn__hostport *hp, dn_error *err) {
  if (len && s[0] == '/') {
    if (len >= DN__HOST_MAX)
      return dn__error_set(err, DN_ECONFIG, at, "%s: socket path too long",
                           what);
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
        return dn__error_set(err, DN_ECONFIG, at + i,
                             "%s: bad byte in socket path", what);
    memcpy(hp->host, s, len);
    hp->host[len] = '\0';
    hp->port = 0;
    return 0;
  }
  return parse_hostport(s, len, at, what, MEMCACHED_PORT, hp, err);
}

static int same_server(const dn__hostport *a, const dn__hostport *b) {
  return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int dn__parse_servers(const char *s, const char *what, dn__hostport *out,
                      size_t *count, dn_error *err) {
  size_t n = 0, len = strlen(s), at = 0;
  for (;;) {
    size_t end = at;
    while (end < len && s[end] != ',')
      end++;
    size_t b = at, e = end;
    while (b < e && s[b] == ' ')
      b++;
    while (e > b && s[e - 1] == ' ')
      e--;
    if (b == e)
      return dn__error_set(err, DN_ECONFIG, b, "%s: empty server entry", what);
    if (n == DN__MAX_SERVERS)
      return dn__error_set(err, DN_ECONFIG, b, "%s: more than %d servers", what,
                           DN__MAX_SERVERS);
    int rc = parse_server(s + b, e - b, b, what, &out[n], err);
    if (rc)
      return rc;
    for (size_t j = 0; j < n; j++)
      if (same_server(&out[j], &out[n]))
        return dn__error_set(err, DN_ECONFIG, b, "%s: server listed twice",
                             what);
    n++;
    if (end == len)
      break;
    at = end + 1;
  }
  *count = n;
  return 0;
}

/* ---- redis URLs -------------------------------------------------------------
 */
static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* RFC 3986 §2.1: percent-decodes userinfo into a NUL-terminated buffer. */
static int pct_decode(const char *s, size_t len, size_t at, const char *what,
                      char *out, size_t cap, dn_error *err) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return dn__error_set(err, DN_ECONFIG, at + i,
                             "%s: bad percent-encoding", what);
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0' || o + 1 >= cap)
      return dn__error_set(err, DN_ECONFIG, at + i,
                           "%s: user or password too long or has a NUL", what);
    out[o++] = c;
  }
  out[o] = '\0';
  return 0;
}

static int parse_db(const char *s, size_t len, size_t at, const char *what,
                    long *db, dn_error *err) {
  long v = 0;
  if (len > 9)
    return dn__error_set(err, DN_ECONFIG, at, "%s: db number too large", what);
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return dn__error_set(err, DN_ECONFIG, at + i,
                           "%s: db must be a decimal number", what);
    v = v * 10 + (s[i] - '0');
  }
  *db = v;
  return 0;
}

static int parse_userinfo(const char *s, size_t len, size_t at,
                          const char *what, dn__redis_url *out, dn_error *err) {
  const char *colon = memchr(s, ':', len);
  if (!colon)
    return dn__error_set(err, DN_ECONFIG, at,
                         "%s: expected [user]:password@ before the host", what);
  size_t ul = (size_t)(colon - s);
  int rc = pct_decode(s, ul, at, what, out->user, sizeof out->user, err);
  if (rc)
    return rc;
  rc = pct_decode(colon + 1, len - ul - 1, at + ul + 1, what, out->password,
                  sizeof out->password, err);
  if (rc)
    return rc;
  out->has_password = 1;
  return 0;
}

int dn__parse_redis_url(const char *s, const char *what, dn__redis_url *out,
                        dn_error *err) {
  memset(out, 0, sizeof *out);
  size_t len = strlen(s), a = 8;
  if (len >= 9 && strncasecmp(s, "rediss://", 9) == 0)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s: TLS (rediss://) is not supported", what);
  if (len < 8 || strncasecmp(s, "redis://", 8) != 0)
    return dn__error_set(err, DN_ECONFIG, 0, "%s: must start with redis://",
                         what);
  size_t e = a;
  while (e < len && s[e] != '/' && s[e] != '?' && s[e] != '#')
    e++;
  const char *at = NULL;
  for (size_t i = a; i < e; i++)
    if (s[i] == '@')
      at = s + i;
  if (at) {
    int rc = parse_userinfo(s + a, (size_t)(at - s) - a, a, what, out, err);
    if (rc)
      return rc;
    a = (size_t)(at - s) + 1;
  }
  int rc = parse_hostport(s + a, e - a, a, what, REDIS_PORT, &out->hp, err);
  if (rc || e == len)
    return rc;
  if (s[e] != '/')
    return dn__error_set(err, DN_ECONFIG, e,
                         "%s: query and fragment are not supported", what);
  return parse_db(s + e + 1, len - e - 1, e + 1, what, &out->db, err);
}

/* ---- descriptions -----------------------------------------------------------
 */
typedef struct desc_buf {
  char *p;
  size_t cap, len;
} desc_buf;

static void desc_add(desc_buf *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void desc_add(desc_buf *d, const char *fmt, ...) {
  if (!d->p || d->len + 1 >= d->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(d->p + d->len, d->cap - d->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    d->len += (size_t)n < d->cap - d->len ? (size_t)n : d->cap - d->len - 1;
}

static void desc_server(desc_buf *d, const dn__hostport *hp) {
  if (hp->port == 0)
    desc_add(d, "%s", hp->host);
  else if (strchr(hp->host, ':'))
    desc_add(d, "[%s]:%u", hp->host, hp->port);
  else
    desc_add(d, "%s:%u", hp->host, hp->port);
}

static void describe_memcached(desc_buf *d, const char *servers) {
  dn__hostport hp[DN__MAX_SERVERS];
  size_t n = 0;
  if (dn__parse_servers(servers, "", hp, &n, NULL))
    return;
  if (n == 1)
    desc_add(d, "memcached, 1 server: ");
  else
    desc_add(d, "memcached, %zu servers, ketama: ", n);
  for (size_t i = 0; i < n; i++) {
    desc_add(d, "%s", i ? "," : "");
    desc_server(d, &hp[i]);
  }
}

static void describe_redis(desc_buf *d, const char *url) {
  dn__redis_url u;
  if (dn__parse_redis_url(url, "", &u, NULL))
    return;
  desc_add(d, "redis, db %ld%s: ", u.db,
           u.has_password ? ", with password" : "");
  desc_server(d, &u.hp);
  memset(u.password, 0, sizeof u.password);
}

/* ---- choosing ---------------------------------------------------------------
 */
enum { KIND_MEMORY, KIND_MEMCACHED, KIND_REDIS, KIND_NULL };

static const char *env_get(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static int kind_from_name(const char *name, const char *what, int *kind,
                          dn_error *err) {
  static const char *const names[] = {"memory", "memcached", "redis", "null"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      *kind = i;
      return 0;
    }
  return dn__error_set(err, DN_ECONFIG, 0,
                       "%s: unknown store \"%.40s\" (expected memory, "
                       "memcached, redis or null)",
                       what, name);
}

/* Where each setting comes from: the option, else the environment. */
typedef struct env_choice {
  int kind;
  const char *mc, *mc_what, *rd, *rd_what;
} env_choice;

static int choose_by_address(const dn_store_env_options *o, env_choice *c,
                             dn_error *err) {
  if (o->memcached_addr && o->redis_url)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "both memcached_addr and redis_url options are set; "
                         "set the store option to choose");
  if (!o->memcached_addr && !o->redis_url && c->mc && c->rd)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "both MEMCACHED_ADDR and REDIS_URL are set; set "
                         "DONUT_STORE to choose");
  if (o->memcached_addr || (!o->redis_url && c->mc))
    c->kind = KIND_MEMCACHED;
  else if (c->rd)
    c->kind = KIND_REDIS;
  else
    c->kind = KIND_MEMORY;
  return 0;
}

static int env_choose(const dn_store_env_options *o, env_choice *c,
                      dn_error *err) {
  c->mc = o->memcached_addr ? o->memcached_addr : env_get("MEMCACHED_ADDR");
  c->mc_what = o->memcached_addr ? "memcached_addr" : "MEMCACHED_ADDR";
  c->rd = o->redis_url ? o->redis_url : env_get("REDIS_URL");
  c->rd_what = o->redis_url ? "redis_url" : "REDIS_URL";
  const char *kind = o->store ? o->store : env_get("DONUT_STORE");
  if (!kind)
    return choose_by_address(o, c, err);
  const char *what = o->store ? "store option" : "DONUT_STORE";
  int rc = kind_from_name(kind, what, &c->kind, err);
  if (rc)
    return rc;
  if (c->kind == KIND_MEMCACHED && !c->mc)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s selects memcached but MEMCACHED_ADDR is not set",
                         what);
  if (c->kind == KIND_REDIS && !c->rd)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s selects redis but REDIS_URL is not set", what);
  return 0;
}

static int open_chosen(const env_choice *c, dn_store_env_options *o,
                       dn_store **out, desc_buf *d, dn_error *err) {
  int rc;
  switch (c->kind) {
  case KIND_NULL:
    rc = dn_store_null_new(out);
    if (!rc)
      desc_add(d, "null (caches nothing)");
    return rc;
  case KIND_MEMCACHED:
    rc = dn__store_memcached_open(c->mc, c->mc_what, &o->shared, out, err);
    if (!rc)
      describe_memcached(d, c->mc);
    return rc;
  case KIND_REDIS:
    rc = dn__store_redis_open(c->rd, c->rd_what, &o->shared, out, err);
    if (!rc)
      describe_redis(d, c->rd);
    return rc;
  default:
    rc = dn_store_memory_new(&o->memory, out);
    if (!rc)
      desc_add(d, "memory, %zu MiB budget",
               (o->memory.max_bytes ? o->memory.max_bytes
                                    : DN_STORE_MEMORY_DEFAULT_BYTES) >>
                   20);
    return rc;
  }
}

int dn_store_from_env(const dn_store_env_options *opts, dn_store **out,
                      char *desc, size_t desc_size, dn_error *err) {
  if (!out)
    return dn__error_set(err, DN_EINVAL, 0, "out is NULL");
  dn_store_env_options o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!o.shared.key_namespace)
    o.shared.key_namespace = env_get("DONUT_NAMESPACE");
  desc_buf d = {desc, desc_size, 0};
  if (desc && desc_size)
    desc[0] = '\0';
  env_choice c = {KIND_MEMORY, NULL, NULL, NULL, NULL};
  int rc = env_choose(&o, &c, err);
  if (!rc)
    rc = open_chosen(&c, &o, out, &d, err);
  if (rc && desc && desc_size)
    desc[0] = '\0';
  return rc;
}
