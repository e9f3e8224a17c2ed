/* store_codec.h - what the memcached and redis stores share: the value
 * format, the mapping of keys to server keys, option defaults and
 * counters; and the address helpers of each backend, which store_select.c
 * uses to describe the store it opened.
 *
 * A value on the server is
 *
 *   magic "DNUT" | version u8 | flags u8 | reserved u16 | key length u32 |
 *   payload length u64 | key | stored payload | XXH3-64 of all before it
 *
 * with integers little-endian. Flag 1 means the stored payload is a zstd
 * frame whose content is the payload. The original key is inside, so a
 * value read under the wrong key (a hash collision, a foreign writer) is
 * rejected like a corrupt one.
 */
#ifndef DN_STORE_CODEC_H
#define DN_STORE_CODEC_H

#include <pthread.h>
#include <stdatomic.h>

#include "buf.h"
#include "donut/store_shared.h"
#include "options.h"

#define DN__CODEC_VERSION 1
#define DN__CODEC_HEADER 20
#define DN__CODEC_TRAILER 8
#define DN__CODEC_OVERHEAD (DN__CODEC_HEADER + DN__CODEC_TRAILER)
#define DN__CODEC_FLAG_ZSTD 0x01
/* Largest payload the codec accepts or inflates (1 GiB). */
#define DN__CODEC_MAX_PAYLOAD ((size_t)1 << 30)

/* zstd contexts kept for reuse: creating one per value costs more than
 * compressing 4 KiB. Each store owns one cache; NULL means "make a context
 * for this call". */
#define DN__ZCACHE_SLOTS 8
typedef struct dn__zcache {
  pthread_mutex_t mu;
  void *cctx[DN__ZCACHE_SLOTS], *dctx[DN__ZCACHE_SLOTS];
  unsigned ncctx, ndctx;
} dn__zcache;

/* Returns 0 or DN_ENOMEM. */
int dn__zcache_init(dn__zcache *z);
void dn__zcache_free(dn__zcache *z);

/* Encodes (key, payload) into `out`, which the caller initialised; the
 * encoding replaces its contents. Payloads of at least `threshold` bytes
 * are compressed when that makes them smaller. Returns 0, DN_ETOOBIG
 * (encoding longer than `limit`, or payload over DN__CODEC_MAX_PAYLOAD) or
 * DN_ENOMEM; on failure `out` is empty. */
int dn__codec_encode(dn__zcache *zc, dn_slice key, const char *payload,
                     size_t len, size_t threshold, size_t limit, dn__buf *out);

/* Decodes a value read under `key`. On success *out is an owned blob with
 * the payload. Returns DN_ECORRUPT (bad magic, version, flags, lengths,
 * checksum or zstd frame, or a payload over max_payload), DN_ENOTFOUND (a
 * sound value that belongs to another key) or DN_ENOMEM. Never reads
 * outside [data, data + len). */
int dn__codec_decode(dn__zcache *zc, const char *data, size_t len, dn_slice key,
                     size_t max_payload, dn_blob **out);

/* ---- server keys ----------------------------------------------------------
 */
/* Room for the longest server key and a NUL. */
#define DN__SKEY_MAX 250
#define DN__SKEY_VALUE 'v'
#define DN__SKEY_INDEX 'i'

/* Builds the server key for `key`: "<ns>:<kind>:<key>" when that fits in
 * DN__SKEY_MAX bytes and (unless binary_ok) every byte is printable ASCII
 * other than space; otherwise "<ns>:<KIND>:<sha256 of key in hex>". `out`
 * needs DN__SKEY_MAX + 1 bytes; *out_len gets the length. Returns 0 or
 * DN_ENOMEM (libcrypto failed). */
int dn__skey(char *out, size_t *out_len, const char *ns, char kind,
             dn_slice key, int binary_ok);
/* 1 when every key is a valid slice (no NULL pointer with a length). */
int dn__keys_ok(const dn_slice *keys, size_t n);
/* The server key of the invalidation sequence, "<ns>:seq". */
size_t dn__skey_seq(char *out, const char *ns);

/* ---- options and counters -------------------------------------------------
 */
typedef struct dn__shared_conf {
  char ns[DN_STORE_SHARED_NAMESPACE_MAX + 1];
  uint32_t connect_timeout_ms;
  uint32_t io_timeout_ms;
  uint32_t retry_ms;
  size_t item_limit;
  size_t compress_threshold;
  unsigned pool_size;
  uint64_t index_ttl_ms;
} dn__shared_conf;

/* Reads the caller's shared store options over the defaults in *dst (see
 * options.h); index_ttl_ms is the last field this library knows. */
#define DN__SHARED_OPTIONS_READ(dst, src, err)                                 \
  DN__OPTIONS_READ(dn_store_shared_options, key_namespace, index_ttl_ms, dst,  \
                   src, err)

/* Fills conf from opts (NULL = all defaults). Returns 0, DN_EINVAL (opts
 * not initialised, or setting fields this library does not know) or
 * DN_ECONFIG with the reason in err. */
int dn__shared_conf_init(dn__shared_conf *conf,
                         const dn_store_shared_options *opts, dn_error *err);

typedef struct dn__shared_counters {
  atomic_uint_fast64_t hits, misses, errors, corrupt, round_trips, reconnects;
} dn__shared_counters;

void dn__shared_counters_init(dn__shared_counters *c);
void dn__shared_counters_get(dn__shared_counters *c, dn_store_stats *out);
#define DN__COUNT(c, field, n)                                                 \
  atomic_fetch_add_explicit(&(c)->field, (n), memory_order_relaxed)

/* A decimal sequence value as stored on the server: digits only, no sign,
 * at most 20 digits, no overflow. Returns 0 or DN_ECORRUPT. */
int dn__parse_seq(const char *s, size_t len, uint64_t *out);
/* A fresh sequence start: random and below 2^62. */
uint64_t dn__seq_start(void);

/* ---- addresses ------------------------------------------------------------
 * Each backend parses its own address: dn__parse_servers and
 * dn__store_memcached_describe live in store_memcached.c,
 * dn__parse_redis_url and dn__store_redis_describe in store_redis.c. Only
 * the ones of the backends built (donut/config.h) exist.
 */
#define DN__HOST_MAX 256
#define DN__MAX_SERVERS 64

typedef struct dn__hostport {
  char host[DN__HOST_MAX]; /* brackets removed from IPv6; a path for unix */
  unsigned port;           /* 0 for a unix socket */
} dn__hostport;

/* Appends "host:port", "[v6]:port" or a socket path to the NUL-terminated
 * string in out[size], truncating. */
void dn__hostport_describe(const dn__hostport *hp, char *out, size_t size);

/* Parses "host:port[,host:port...]" (see dn_store_memcached_new). `what`
 * names the setting in messages. Fills up to DN__MAX_SERVERS entries.
 * Returns 0, DN_ECONFIG with position and reason in err, or DN_ENOMEM. */
int dn__parse_servers(const char *s, const char *what, dn__hostport *out,
                      size_t *count, dn_error *err);

/* Writes "memcached, 1 server: h:p" or "memcached, N servers, ketama:
 * h:p,..." for a server list that dn_store_memcached_new accepted, into
 * out[size] (NUL-terminated, truncated). Returns 0 or DN_ENOMEM. */
int dn__store_memcached_describe(const char *servers, char *out, size_t size);

typedef struct dn__redis_url {
  dn__hostport hp;
  char user[128];
  char password[256];
  int has_password;
  long db;
} dn__redis_url;

/* Parses "redis://[[user]:password@]host[:port][/db]". Returns 0,
 * DN_ECONFIG with position and reason in err, or DN_ENOMEM. On failure
 * out->password is zeroed. */
int dn__parse_redis_url(const char *s, const char *what, dn__redis_url *out,
                        dn_error *err);

/* Writes "redis, db N[, with password]: host:port" for a URL that
 * dn_store_redis_new accepted, into out[size] (NUL-terminated, truncated);
 * never the password. Returns 0 or DN_ENOMEM. */
int dn__store_redis_describe(const char *url, char *out, size_t size);

#endif
