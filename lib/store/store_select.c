/* store_select.c - choosing a store from options and the environment.
 *
 * MEMCACHED_ADDR is a comma-separated list of servers, REDIS_URL a
 * redis:// URL, DONUT_STORE names a kind outright and DONUT_NAMESPACE sets
 * the key prefix. This file only decides which store is meant and calls
 * that store's public constructor with the address as it was given; each
 * backend parses and checks its own address, strictly: anything unexpected
 * is DN_ECONFIG with the variable, the byte offset and the reason, because
 * a typo in a cache address should fail at start-up, not quietly run
 * without a shared cache. The one-line description never includes a
 * password.
 *
 * A store left out of the build (DONUT_WITH_MEMCACHED or DONUT_WITH_REDIS
 * off, see donut/config.h) is DN_ENOTSUP when it is selected, and its
 * constructor is defined here so that it still exists and says why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donut/config.h"
#include "donut/store_shared.h"
#include "error.h"
#include "options.h"
#include "store.h"
#include "store_codec.h"

enum { KIND_MEMORY, KIND_MEMCACHED, KIND_REDIS, KIND_NULL };

/* Reads the caller's options and the ones they point to, each by its own
 * size; memory is the last field of dn_store_env_options this library
 * knows. */
static int read_options(const dn_store_env_options *opts,
                        dn_store_env_options *o, dn_store_shared_options *sh,
                        dn_store_memory_options *mem, dn_error *err) {
  dn_store_env_options_init(o);
  dn_store_shared_options_init(sh);
  dn_store_memory_options_init(mem);
  int rc =
      opts ? DN__OPTIONS_READ(dn_store_env_options, store, memory, o, opts, err)
           : 0;
  if (rc == 0 && o->shared)
    rc = DN__SHARED_OPTIONS_READ(sh, o->shared, err);
  if (rc == 0 && o->memory)
    rc = DN__STORE_MEMORY_OPTIONS_READ(mem, o->memory, err);
  o->shared = sh;
  o->memory = mem;
  return rc;
}

/* ---- stores left out of the build -------------------------------------------
 */
static int kind_built(int kind) {
  return (kind != KIND_MEMCACHED || DONUT_WITH_MEMCACHED) &&
         (kind != KIND_REDIS || DONUT_WITH_REDIS);
}

/* `what` names what selected the store; NULL for a constructor call. */
static int not_built(const char *what, int kind, dn_error *err) {
  int mc = kind == KIND_MEMCACHED;
  return dn__error_set(
      err, DN_ENOTSUP, 0,
      "%s%s%s support is not built into this libdonut (DONUT_WITH_%s=OFF)",
      what ? what : "", what ? ": " : "", mc ? "memcached" : "redis",
      mc ? "MEMCACHED" : "REDIS");
}

#if !DONUT_WITH_MEMCACHED
int dn_store_memcached_new(const char *servers,
                           const dn_store_shared_options *opts, dn_store **out,
                           dn_error *err) {
  return not_built(NULL, KIND_MEMCACHED, err);
}
#endif

#if !DONUT_WITH_REDIS
int dn_store_redis_new(const char *url, const dn_store_shared_options *opts,
                       dn_store **out, dn_error *err) {
  return not_built(NULL, KIND_REDIS, err);
}
#endif

/* ---- choosing ---------------------------------------------------------------
 */
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
  const char *what = o->store ? "store option" : "DONUT_STORE";
  int rc = kind ? kind_from_name(kind, what, &c->kind, err)
                : choose_by_address(o, c, err);
  if (rc)
    return rc;
  if (!kind)
    what = c->kind == KIND_REDIS ? c->rd_what : c->mc_what;
  if (!kind_built(c->kind))
    return not_built(what, c->kind, err);
  if (c->kind == KIND_MEMCACHED && !c->mc)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s selects memcached but MEMCACHED_ADDR is not set",
                         what);
  if (c->kind == KIND_REDIS && !c->rd)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s selects redis but REDIS_URL is not set", what);
  return 0;
}

/* ---- opening ----------------------------------------------------------------
 */
typedef int (*shared_new_fn)(const char *addr,
                             const dn_store_shared_options *opts,
                             dn_store **out, dn_error *err);

/* Opens a shared store with its public constructor. The constructor names
 * its argument in messages ("servers: ...", "url: "); the address came
 * from `what`, so the message names that instead. */
static int open_shared(shared_new_fn open, const char *arg, const char *addr,
                       const char *what, const dn_store_shared_options *opts,
                       dn_store **out, dn_error *err) {
  dn_error e = {0};
  int rc = open(addr, opts, out, &e);
  size_t n = strlen(arg);
  if (!rc || !e.code)
    return rc;
  if (strncmp(e.text, arg, n) == 0 && e.text[n] == ':')
    return dn__error_set(err, rc, e.position, "%s%s", what, e.text + n);
  if (err)
    *err = e;
  return rc;
}

static int open_chosen(const env_choice *c, dn_store_env_options *o,
                       dn_store **out, dn_error *err) {
  switch (c->kind) {
  case KIND_NULL:
    return dn_store_null_new(out);
  case KIND_MEMCACHED:
    return open_shared(dn_store_memcached_new, "servers", c->mc, c->mc_what,
                       o->shared, out, err);
  case KIND_REDIS:
    return open_shared(dn_store_redis_new, "url", c->rd, c->rd_what, o->shared,
                       out, err);
  default:
    return dn_store_memory_new(o->memory, out);
  }
}

/* The one-line description; each shared store describes its own address. */
static int describe(const env_choice *c, const dn_store_env_options *o,
                    char *desc, size_t size) {
  size_t budget = o->memory->max_bytes ? o->memory->max_bytes
                                       : DN_STORE_MEMORY_DEFAULT_BYTES;
  switch (c->kind) {
  case KIND_MEMORY:
    snprintf(desc, size, "memory, %zu MiB budget", budget >> 20);
    return 0;
  case KIND_NULL:
    snprintf(desc, size, "null (caches nothing)");
    return 0;
#if DONUT_WITH_MEMCACHED
  case KIND_MEMCACHED:
    return dn__store_memcached_describe(c->mc, desc, size);
#endif
#if DONUT_WITH_REDIS
  case KIND_REDIS:
    return dn__store_redis_describe(c->rd, desc, size);
#endif
  default: /* a store left out of the build is never opened */
    return 0;
  }
}

int dn_store_from_env(const dn_store_env_options *opts, dn_store **out,
                      char *desc, size_t desc_size, dn_error *err) {
  if (!out)
    return dn__error_set(err, DN_EINVAL, 0, "out is NULL");
  if (desc && desc_size)
    desc[0] = '\0';
  dn_store_env_options o;
  dn_store_shared_options shared;
  dn_store_memory_options memory;
  int rc = read_options(opts, &o, &shared, &memory, err);
  if (rc)
    return rc;
  if (!shared.key_namespace)
    shared.key_namespace = env_get("DONUT_NAMESPACE");
  env_choice c = {KIND_MEMORY, NULL, NULL, NULL, NULL};
  dn_store *st = NULL;
  rc = env_choose(&o, &c, err);
  if (!rc)
    rc = open_chosen(&c, &o, &st, err);
  if (!rc && desc && desc_size && (rc = describe(&c, &o, desc, desc_size)))
    dn_store_free(st);
  if (rc && desc && desc_size)
    desc[0] = '\0';
  if (!rc)
    *out = st;
  return rc;
}
