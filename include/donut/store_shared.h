/* donut/store_shared.h - memcached and redis stores, and choosing a store
 * from the environment.
 *
 * The shared stores let many processes and machines use one cache. Both
 * implement every dn_store_ops method over a pool of connections, so one
 * store may be used by many threads at once. Keys get a namespace prefix;
 * keys that the server cannot hold as they are (too long, or bytes
 * memcached rejects) are replaced by their SHA-256, and every value carries
 * its original key, a format version and an XXH3 checksum, so a collision,
 * a truncated write or a foreign value reads as a miss, never as a wrong
 * value. Large values are compressed with zstd when that makes them
 * smaller. An unreachable or slow server turns reads into misses and
 * writes into errors, and the store reconnects when the server is back.
 *
 * dn_store_from_env() picks the store the way the application's
 * environment says: MEMCACHED_ADDR, REDIS_URL, DONUT_STORE (see
 * docs/stores.md).
 *
 * Both shared stores are optional parts of libdonut (the CMake options
 * DONUT_WITH_MEMCACHED and DONUT_WITH_REDIS; donut/config.h says which
 * this build has). Every function here exists in every build, so that
 * programs and FFI bindings link against any libdonut: the constructor of
 * a store that was left out returns DN_ENOTSUP, with err.text "memcached
 * support is not built into this libdonut (DONUT_WITH_MEMCACHED=OFF)" or
 * its redis counterpart.
 */
#ifndef DONUT_STORE_SHARED_H
#define DONUT_STORE_SHARED_H

#include "donut/common.h"
#include "donut/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of dn_store_shared_options (a zero field takes these). */
#define DN_STORE_SHARED_NAMESPACE "donut"
#define DN_STORE_SHARED_CONNECT_TIMEOUT_MS 250
#define DN_STORE_SHARED_IO_TIMEOUT_MS 250
#define DN_STORE_SHARED_RETRY_MS 1000
#define DN_STORE_SHARED_ITEM_LIMIT ((size_t)1 << 20)
#define DN_STORE_SHARED_COMPRESS_THRESHOLD ((size_t)1024)
#define DN_STORE_SHARED_POOL_SIZE 8
#define DN_STORE_SHARED_INDEX_TTL_MS ((uint64_t)7 * 24 * 3600 * 1000)
/* The longest namespace, in bytes. */
#define DN_STORE_SHARED_NAMESPACE_MAX 64

/* Options of the memcached and redis stores. Initialise with
 * dn_store_shared_options_init, then set what you need; every zero field
 * takes the default above. New fields are only ever added at the end (see
 * "Options structs" in donut/common.h). */
typedef struct dn_store_shared_options {
  /* sizeof(dn_store_shared_options) as the program was compiled, set by
   * dn_store_shared_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  /* Prefix of every key, so that applications can share a server: 1 to
   * DN_STORE_SHARED_NAMESPACE_MAX bytes of [A-Za-z0-9._-]. NULL = "donut". */
  const char *key_namespace;
  /* How long to wait for a TCP connection. */
  uint32_t connect_timeout_ms;
  /* How long to wait for the server while sending or receiving. */
  uint32_t io_timeout_ms;
  /* After a server fails, how long it is left alone before the next
   * attempt (calls fail at once meanwhile). memcached counts whole seconds
   * and rounds up. */
  uint32_t retry_ms;
  /* The largest encoded value (after compression, key and header
   * included) that is sent to the server; larger ones give DN_ETOOBIG.
   * Must not exceed the server's own limit (memcached -I, 1 MiB by
   * default). */
  size_t item_limit;
  /* Values of at least this many bytes are compressed with zstd (kept only
   * when smaller). SIZE_MAX turns compression off. */
  size_t compress_threshold;
  /* Most connections open at once (per server for memcached). */
  unsigned pool_size;
  /* redis: lifetime of index members added with ttl_ms 0, so that indexes
   * never grow without bound. */
  uint64_t index_ttl_ms;
} dn_store_shared_options;

/* Fills the first `size` bytes of opts with the defaults (every field
 * zero) and sets opts->size to `size`; use the macro, which passes
 * sizeof *opts. */
DN_EXTERN void dn_store_shared_options_init_size(dn_store_shared_options *opts,
                                                 size_t size);
#define dn_store_shared_options_init(opts)                                     \
  dn_store_shared_options_init_size((opts), sizeof *(opts))

/* Creates a memcached store over `servers`, "host:port[,host:port...]"
 * (a host may be a name, an IPv4 address, "[IPv6]", or an absolute path to
 * a unix socket; the port defaults to 11211). With several servers, keys
 * are placed by libmemcached's ketama consistent hashing (MD5, weighted
 * like libketama), so other ketama clients find the same keys on the same
 * servers. Connections are made lazily: creating the store never waits for
 * a server. `opts` may be NULL.
 *
 * index_add/index_members are not offered (DN_ENOTSUP): memcached has no
 * sound set type.
 *
 * Returns 0 and an owned store in *out, DN_ECONFIG (bad server list or
 * options; err says which byte and why, naming the list "servers"),
 * DN_EINVAL (NULL arguments, opts not initialised with
 * dn_store_shared_options_init, or from a newer header and setting fields
 * this libdonut does not know; err says which), DN_ENOMEM, DN_ESTORE
 * (libmemcached refused the configuration) or DN_ENOTSUP (this libdonut was
 * built without memcached; checked before the arguments). On failure *out is
 * untouched. `err` may be NULL. The store is thread-safe. */
DN_EXTERN int dn_store_memcached_new(const char *servers,
                                     const dn_store_shared_options *opts,
                                     dn_store **out, dn_error *err);

/* Creates a redis store for `url`,
 * "redis://[[user]:password@]host[:port][/db]" (user and password may be
 * percent-encoded; the port defaults to 6379 and the db to 0). Each new
 * connection authenticates and selects the db. Connections are made
 * lazily. `opts` may be NULL.
 *
 * Returns 0 and an owned store in *out, DN_ECONFIG (bad URL or options,
 * with the reason in err, naming the URL "url"), DN_EINVAL (as for
 * dn_store_memcached_new), DN_ENOMEM or
 * DN_ENOTSUP (this libdonut was built without redis; checked before the
 * arguments). On failure *out is untouched. `err` may be NULL. The store
 * is thread-safe. */
DN_EXTERN int dn_store_redis_new(const char *url,
                                 const dn_store_shared_options *opts,
                                 dn_store **out, dn_error *err);

/* What dn_store_from_env() may be told instead of reading the
 * environment. Initialise with dn_store_env_options_init; every NULL or
 * zero field falls back to the environment and then to the defaults. New
 * fields are only ever added at the end (see "Options structs" in
 * donut/common.h). */
typedef struct dn_store_env_options {
  /* sizeof(dn_store_env_options) as the program was compiled, set by
   * dn_store_env_options_init: a program built against an older header
   * keeps working, the fields it does not have take their defaults. */
  size_t size;
  /* "memory", "memcached", "redis" or "null". NULL = $DONUT_STORE; when
   * that is unset too, the store is chosen by which address is given. */
  const char *store;
  /* Overrides $MEMCACHED_ADDR. */
  const char *memcached_addr;
  /* Overrides $REDIS_URL. */
  const char *redis_url;
  /* The stores' options are pointed to, not embedded, so that each struct
   * can grow on its own. Borrowed for the call. */
  /* Options of the shared stores; NULL = the defaults. When there are none
   * or their key_namespace is NULL, $DONUT_NAMESPACE is used, then
   * "donut". */
  const dn_store_shared_options *shared;
  /* Options of the memory store; NULL = the defaults. */
  const dn_store_memory_options *memory;
} dn_store_env_options;

/* Fills the first `size` bytes of opts with the defaults (every field NULL:
 * all from the environment) and sets opts->size to `size`; use the macro,
 * which passes sizeof *opts. */
DN_EXTERN void dn_store_env_options_init_size(dn_store_env_options *opts,
                                              size_t size);
#define dn_store_env_options_init(opts)                                        \
  dn_store_env_options_init_size((opts), sizeof *(opts))

/* Creates the store that the options and the environment select:
 *  1. the kind named by opts->store, else by $DONUT_STORE: "memory",
 *     "memcached" (needs an address), "redis" (needs a URL) or "null";
 *  2. otherwise a memcached address (opts->memcached_addr, else
 *     $MEMCACHED_ADDR) selects memcached and a redis URL (opts->redis_url,
 *     else $REDIS_URL) selects redis; an explicit option beats the
 *     environment, and two addresses at the same level are ambiguous;
 *  3. otherwise the in-process memory store.
 * Empty environment variables count as unset.
 *
 * When `desc` is not NULL it receives a one-line description for logs,
 * truncated to desc_size bytes and NUL-terminated, for example
 * "memcached, 2 servers, ketama: 127.0.0.1:11211,127.0.0.1:11212". It
 * never contains a password.
 *
 * Returns 0 and an owned store in *out, DN_ECONFIG (unknown store kind,
 * ambiguous or malformed address, bad option; err names the variable and
 * the reason), DN_ENOTSUP (the selected store was left out of this build;
 * err names what selected it), DN_EINVAL (also for options, or the shared
 * or memory options they point to, not initialised with their
 * *_options_init, or from a newer header and setting fields this libdonut
 * does not know; err says which) or DN_ENOMEM. On failure *out
 * is untouched and desc, when given, is the empty string.
 * Reads the environment with getenv(): do not call it while another thread
 * changes the environment. */
DN_EXTERN int dn_store_from_env(const dn_store_env_options *opts,
                                dn_store **out, char *desc, size_t desc_size,
                                dn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_STORE_SHARED_H */
