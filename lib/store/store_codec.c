/* store_codec.c - the value format and key mapping of the shared stores.
 *
 * Encoding writes a fixed header, the original key, the payload (a zstd
 * frame when compression makes it smaller) and an XXH3-64 checksum of
 * everything before it. Decoding checks every length against the bytes it
 * was given before touching them, then the checksum, then the key, and
 * only then inflates, so corrupted, truncated or foreign bytes are
 * rejected without reading out of bounds. Server keys are the namespace,
 * a kind letter and the key itself, or its SHA-256 when the key is too
 * long or has bytes the server does not allow. The last part writes a
 * server address the way both backends describe it for logs.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>
#include <zstd.h>

#include "alloc.h"
#include "blob.h"
#include "error.h"
#include "store.h"
#include "store_codec.h"
#include "text.h"

static const char codec_magic[4] = {'D', 'N', 'U', 'T'};

/* zstd level 1: the fastest standard level; cache writes are hot. */
#define CODEC_ZSTD_LEVEL 1

static void put_le(char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (char)(unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v |= (uint64_t)(unsigned char)p[i] << (8 * i);
  return v;
}

int dn__zcache_init(dn__zcache *z) {
  memset(z, 0, sizeof *z);
  return pthread_mutex_init(&z->mu, NULL) ? DN_ENOMEM : 0;
}

void dn__zcache_free(dn__zcache *z) {
  for (unsigned i = 0; i < z->ncctx; i++)
    ZSTD_freeCCtx(z->cctx[i]);
  for (unsigned i = 0; i < z->ndctx; i++)
    ZSTD_freeDCtx(z->dctx[i]);
  pthread_mutex_destroy(&z->mu);
}

enum { ZC_C, ZC_D };

/* Takes a cached context of kind ZC_C or ZC_D; NULL when there is none
 * (the caller creates one). */
static void *zc_take(dn__zcache *z, int kind) {
  void *ctx = NULL;
  if (!z)
    return NULL;
  void **slots = kind == ZC_D ? z->dctx : z->cctx;
  unsigned *n = kind == ZC_D ? &z->ndctx : &z->ncctx;
  pthread_mutex_lock(&z->mu);
  if (*n)
    ctx = slots[--*n];
  pthread_mutex_unlock(&z->mu);
  return ctx;
}

/* Keeps a context for later, or frees it when the cache is full. */
static void zc_give(dn__zcache *z, int kind, void *ctx) {
  int kept = 0;
  if (z) {
    void **slots = kind == ZC_D ? z->dctx : z->cctx;
    unsigned *n = kind == ZC_D ? &z->ndctx : &z->ncctx;
    pthread_mutex_lock(&z->mu);
    if (*n < DN__ZCACHE_SLOTS) {
      slots[(*n)++] = ctx;
      kept = 1;
    }
    pthread_mutex_unlock(&z->mu);
  }
  if (!kept && kind == ZC_D)
    ZSTD_freeDCtx(ctx);
  else if (!kept)
    ZSTD_freeCCtx(ctx);
}

static size_t zc_compress(dn__zcache *z, char *dst, size_t cap, const char *src,
                          size_t len) {
  ZSTD_CCtx *c = zc_take(z, ZC_C);
  if (!c && !(c = ZSTD_createCCtx()))
    return (size_t)-1; /* an error for ZSTD_isError(): store it raw */
  size_t r = ZSTD_compressCCtx(c, dst, cap, src, len, CODEC_ZSTD_LEVEL);
  zc_give(z, ZC_C, c);
  return r;
}

static void codec_header(char *h, int flags, size_t klen, size_t len) {
  memcpy(h, codec_magic, 4);
  h[4] = (char)DN__CODEC_VERSION;
  h[5] = (char)flags;
  h[6] = h[7] = 0;
  put_le(h + 8, klen, 4);
  put_le(h + 12, len, 8);
}

/* Writes the stored payload at out->data + out->len: compressed when that
 * is smaller, else raw. Room for the raw payload is already reserved. */
static int codec_body(dn__zcache *zc, const char *payload, size_t len,
                      size_t threshold, dn__buf *out, int *flags) {
  *flags = 0;
  if (len == 0 || len < threshold) {
    memcpy(out->data + out->len, payload, len);
    out->len += len;
    return 0;
  }
  size_t bound = ZSTD_compressBound(len);
  int rc = dn__buf_reserve(out, bound + DN__CODEC_TRAILER);
  if (rc == DN_ENOMEM)
    return rc;
  if (rc == 0) {
    size_t z = zc_compress(zc, out->data + out->len, bound, payload, len);
    if (!ZSTD_isError(z) && z < len) {
      out->len += z;
      *flags = DN__CODEC_FLAG_ZSTD;
      return 0;
    }
  }
  memcpy(out->data + out->len, payload, len);
  out->len += len;
  return 0;
}

int dn__codec_encode(dn__zcache *zc, dn_slice key, const char *payload,
                     size_t len, size_t threshold, size_t limit, dn__buf *out) {
  dn__buf_truncate(out, 0);
  if (len > DN__CODEC_MAX_PAYLOAD || key.len > UINT32_MAX ||
      key.len > DN__CODEC_MAX_PAYLOAD)
    return DN_ETOOBIG;
  size_t raw = DN__CODEC_OVERHEAD + key.len + len;
  int rc = dn__buf_reserve(out, raw);
  if (rc)
    return rc;
  out->len = DN__CODEC_HEADER;
  memcpy(out->data + out->len, key.ptr, key.len);
  out->len += key.len;
  int flags;
  rc = codec_body(zc, payload, len, threshold, out, &flags);
  if (rc)
    goto out;
  if (out->len + DN__CODEC_TRAILER > limit) {
    rc = DN_ETOOBIG;
    goto out;
  }
  codec_header(out->data, flags, key.len, len);
  put_le(out->data + out->len, XXH3_64bits(out->data, out->len), 8);
  out->len += DN__CODEC_TRAILER;
  out->data[out->len] = '\0';
out:
  if (rc)
    dn__buf_truncate(out, 0);
  return rc;
}

static int codec_inflate(dn__zcache *zc, const char *z, size_t zlen, size_t len,
                         dn_blob **out) {
  unsigned long long claimed = ZSTD_getFrameContentSize(z, zlen);
  if (claimed != len || ZSTD_findFrameCompressedSize(z, zlen) != zlen)
    return DN_ECORRUPT;
  dn_blob *b;
  int rc = dn__blob_alloc(len, &b);
  if (rc)
    return rc == DN_ETOOBIG ? DN_ECORRUPT : rc;
  ZSTD_DCtx *d = zc_take(zc, ZC_D);
  if (!d && !(d = ZSTD_createDCtx())) {
    dn_blob_unref(b);
    return DN_ENOMEM;
  }
  size_t got = ZSTD_decompressDCtx(d, b->data, len, z, zlen);
  zc_give(zc, ZC_D, d);
  if (ZSTD_isError(got) || got != len) {
    dn_blob_unref(b);
    return DN_ECORRUPT;
  }
  *out = b;
  return 0;
}

int dn__codec_decode(dn__zcache *zc, const char *data, size_t len, dn_slice key,
                     size_t max_payload, dn_blob **out) {
  if (len < DN__CODEC_OVERHEAD || memcmp(data, codec_magic, 4) != 0 ||
      data[4] != (char)DN__CODEC_VERSION || data[6] || data[7])
    return DN_ECORRUPT;
  int flags = (unsigned char)data[5];
  uint64_t klen = get_le(data + 8, 4);
  uint64_t plen = get_le(data + 12, 8);
  size_t body = len - DN__CODEC_OVERHEAD;
  if ((flags & ~DN__CODEC_FLAG_ZSTD) || klen > body || plen > max_payload)
    return DN_ECORRUPT;
  size_t stored = body - (size_t)klen;
  if (!(flags & DN__CODEC_FLAG_ZSTD) && stored != plen)
    return DN_ECORRUPT;
  if (XXH3_64bits(data, len - DN__CODEC_TRAILER) !=
      get_le(data + len - DN__CODEC_TRAILER, 8))
    return DN_ECORRUPT;
  const char *k = data + DN__CODEC_HEADER;
  if (klen != key.len || (klen && memcmp(k, key.ptr, key.len) != 0))
    return DN_ENOTFOUND;
  const char *p = k + klen;
  if (flags & DN__CODEC_FLAG_ZSTD)
    return codec_inflate(zc, p, stored, (size_t)plen, out);
  return dn_blob_new(p, stored, out);
}

/* ---- server keys ----------------------------------------------------------
 */
static int skey_plain_ok(dn_slice key, int binary_ok) {
  if (binary_ok)
    return 1;
  for (size_t i = 0; i < key.len; i++) {
    unsigned char c = (unsigned char)key.ptr[i];
    /* memcached's text protocol: no space or control bytes in keys, and
     * libmemcached refuses anything that is not isgraph(). */
    if (c <= 0x20 || c >= 0x7f)
      return 0;
  }
  return 1;
}

int dn__skey(char *out, size_t *out_len, const char *ns, char kind,
             dn_slice key, int binary_ok) {
  size_t nl = strlen(ns);
  if (nl + 3 + key.len <= DN__SKEY_MAX && skey_plain_ok(key, binary_ok)) {
    memcpy(out, ns, nl);
    out[nl] = ':';
    out[nl + 1] = kind;
    out[nl + 2] = ':';
    if (key.len)
      memcpy(out + nl + 3, key.ptr, key.len);
    *out_len = nl + 3 + key.len;
    out[*out_len] = '\0';
    return 0;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(key.ptr ? key.ptr : "", key.len, md, &mdlen, EVP_sha256(),
                  NULL) ||
      mdlen != 32)
    return DN_ENOMEM;
  memcpy(out, ns, nl);
  out[nl] = ':';
  out[nl + 1] = (char)(kind - 'a' + 'A');
  out[nl + 2] = ':';
  *out_len = nl + 3 + dn__hex_encode(out + nl + 3, md, mdlen, 0);
  out[*out_len] = '\0';
  return 0;
}

int dn__keys_ok(const dn_slice *keys, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!keys[i].ptr && keys[i].len)
      return 0;
  return 1;
}

size_t dn__skey_seq(char *out, const char *ns) {
  size_t nl = strlen(ns);
  memcpy(out, ns, nl);
  memcpy(out + nl, ":seq", 5);
  return nl + 4;
}

/* ---- options and counters -------------------------------------------------
 */
static int ns_check(const char *ns, dn_error *err) {
  size_t n = strlen(ns);
  if (n == 0 || n > DN_STORE_SHARED_NAMESPACE_MAX)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "namespace must be 1 to %d bytes long",
                         DN_STORE_SHARED_NAMESPACE_MAX);
  for (size_t i = 0; i < n; i++) {
    char c = ns[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return dn__error_set(err, DN_ECONFIG, i,
                           "namespace byte %zu is not one of [A-Za-z0-9._-]",
                           i);
  }
  return 0;
}

int dn__shared_conf_init(dn__shared_conf *conf,
                         const dn_store_shared_options *opts, dn_error *err) {
  dn_store_shared_options o;
  dn_store_shared_options_init(&o);
  /* Options from an older header end before the fields it did not have. */
  int rc = opts ? DN__SHARED_OPTIONS_READ(&o, opts, err) : 0;
  if (rc)
    return rc;
  const char *ns =
      o.key_namespace ? o.key_namespace : DN_STORE_SHARED_NAMESPACE;
  rc = ns_check(ns, err);
  if (rc)
    return rc;
  memset(conf, 0, sizeof *conf);
  memcpy(conf->ns, ns, strlen(ns) + 1);
#define DN__DEF(f, d) conf->f = o.f ? o.f : (d)
  DN__DEF(connect_timeout_ms, DN_STORE_SHARED_CONNECT_TIMEOUT_MS);
  DN__DEF(io_timeout_ms, DN_STORE_SHARED_IO_TIMEOUT_MS);
  DN__DEF(retry_ms, DN_STORE_SHARED_RETRY_MS);
  DN__DEF(item_limit, DN_STORE_SHARED_ITEM_LIMIT);
  DN__DEF(compress_threshold, DN_STORE_SHARED_COMPRESS_THRESHOLD);
  DN__DEF(pool_size, DN_STORE_SHARED_POOL_SIZE);
  DN__DEF(index_ttl_ms, DN_STORE_SHARED_INDEX_TTL_MS);
#undef DN__DEF
  if (conf->item_limit < DN__CODEC_OVERHEAD + DN__SKEY_MAX)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "item_limit %zu is below the minimum of %d bytes",
                         conf->item_limit, DN__CODEC_OVERHEAD + DN__SKEY_MAX);
  if (conf->pool_size > 1024)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "pool_size %u is above the maximum of 1024",
                         conf->pool_size);
  return 0;
}

void dn__shared_counters_init(dn__shared_counters *c) {
  atomic_init(&c->hits, 0);
  atomic_init(&c->misses, 0);
  atomic_init(&c->errors, 0);
  atomic_init(&c->corrupt, 0);
  atomic_init(&c->round_trips, 0);
  atomic_init(&c->reconnects, 0);
}

void dn__shared_counters_get(dn__shared_counters *c, dn_store_stats *out) {
  memset(out, 0, sizeof *out);
  out->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
  out->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
  out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
  out->corrupt = atomic_load_explicit(&c->corrupt, memory_order_relaxed);
  out->round_trips =
      atomic_load_explicit(&c->round_trips, memory_order_relaxed);
  out->reconnects = atomic_load_explicit(&c->reconnects, memory_order_relaxed);
}

int dn__parse_seq(const char *s, size_t len, uint64_t *out) {
  if (len == 0 || len > 20)
    return DN_ECORRUPT;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return DN_ECORRUPT;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return DN_ECORRUPT;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

uint64_t dn__seq_start(void) { return dn__random_u64() >> 2; }

/* ---- addresses --------------------------------------------------------------
 */
void dn__hostport_describe(const dn__hostport *hp, char *out, size_t size) {
  size_t len = strnlen(out, size);
  if (len + 1 >= size)
    return;
  if (hp->port == 0)
    snprintf(out + len, size - len, "%s", hp->host);
  else if (strchr(hp->host, ':'))
    snprintf(out + len, size - len, "[%s]:%u", hp->host, hp->port);
  else
    snprintf(out + len, size - len, "%s:%u", hp->host, hp->port);
}
