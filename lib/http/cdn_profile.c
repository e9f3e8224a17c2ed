/* cdn_profile.c - CDN profiles: tag fields, their limits, compaction and purge
 * keys.
 *
 * Each profile names the field that carries a page's closure tags and the
 * limits the CDN documents for it (docs/cdn.md lists the sources). A
 * closure that fits is sent as it is, except that a tag the CDN could not
 * take (too long, or with a character it forbids) is replaced by its
 * hashed form "dh-<16 hex>". A closure that does not fit is never
 * truncated: it is replaced by hash buckets. Level L of a fixed ladder
 * (16384, 4096, 1024, 512, 128, 32 buckets) maps tag t to the key
 * "dk<L>-<hex of XXH64(t) mod buckets[L]>", and the page carries the keys
 * of the finest level whose keys fit. A purge of t sends t's emitted form
 * and its bucket key at every level, so it reaches the page whichever
 * level the page used; it may also reach pages that share a bucket with t
 * (over-purging), never fewer. The coarsest level has 32 buckets, which
 * every profile's field can hold, so compaction always succeeds. Hashing
 * is XXH64 with seed 0, identical on every machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "cdn_profile.h"
#include "donut/uri.h"
#include "error.h"
#include "http_headers.h"
#include "http_util.h"

const unsigned dn__cdn_buckets[DN__CDN_LEVELS] = {16384, 4096, 1024,
                                                  512,   128,  32};

#define HASHED_LEN 19     /* "dh-" + 16 hex digits */
#define BUCKET_KEY_MAX 16 /* "dk<L>-<hex>" */

typedef struct profile {
  const char *name;
  dn_cdn_limits limits;
  int purges_by_tag;
  int akamai_chars; /* only RFC 7230 tchar without '*' (Akamai) */
} profile;

/* Limits: see docs/cdn.md for where each number comes from. */
static const profile profiles[] = {
    {"none", {NULL, NULL, ' ', 0, 0, 0, 0}, 0, 0},
    {"generic",
     {"Surrogate-Key", "CDN-Cache-Control", ' ', 0, 0, 1024, 4096},
     0,
     0},
    {"fastly",
     {"Surrogate-Key", "Surrogate-Control", ' ', 0, 0, 1024, 16384},
     1,
     0},
    {"akamai",
     {"Edge-Cache-Tag", "Akamai-Cache-Control", ',', 0, 128, 128, 4096},
     1,
     1},
    {"cloudflare",
     {"Cache-Tag", "Cloudflare-CDN-Cache-Control", ',', 0, 1000, 1024, 16000},
     1,
     0},
    {"varnish", {"xkey", NULL, ' ', 0, 0, 1024, 8000}, 1, 0},
    {"bunny", {"CDN-Tag", NULL, ',', 0, 0, 1024, 1024}, 1, 0},
    {"rfc9875",
     {"Cache-Groups", "CDN-Cache-Control", ',', 1, 32, 32, 4096},
     0,
     0},
};
#define NPROFILES (sizeof profiles / sizeof profiles[0])

static const profile *get(dn_cdn_profile p) {
  return (unsigned)p < NPROFILES ? &profiles[p] : NULL;
}

int dn_cdn_profile_parse(const char *name, size_t len, dn_cdn_profile *out) {
  dn_slice s = {name ? name : "", name ? len : 0};
  for (size_t i = 0; i < NPROFILES; i++) {
    if (dn__http_ci_eq(s, profiles[i].name)) {
      *out = (dn_cdn_profile)i;
      return 0;
    }
  }
  return DN_EINVAL;
}

const char *dn_cdn_profile_name(dn_cdn_profile p) {
  const profile *pr = get(p);
  return pr ? pr->name : "unknown";
}

int dn_cdn_purges_by_tag(dn_cdn_profile p) {
  const profile *pr = get(p);
  return pr ? pr->purges_by_tag : 0;
}

int64_t dn_cdn_default_ttl(dn_cdn_profile p) {
  return dn_cdn_purges_by_tag(p) ? DN_CDN_TTL_PURGEABLE : DN_CDN_TTL_DEFAULT;
}

int dn_cdn_limits_get(dn_cdn_profile p, dn_cdn_limits *out) {
  const profile *pr = get(p);
  if (!pr)
    return DN_EINVAL;
  *out = pr->limits;
  return 0;
}

int dn_cdn_tag_validate(const char *tag, size_t len, dn_error *err) {
  /* One rule for every tag, owned by the uri layer. */
  if (!tag)
    return dn__error_set(err, DN_ETAG, 0, "empty tag");
  return dn_tag_validate(tag, len, err);
}

int dn__cdn_validate_tags(const dn_slice *tags, size_t n, dn_error *err) {
  for (size_t i = 0; i < n; i++) {
    dn_error e;
    if (dn_cdn_tag_validate(tags[i].ptr, tags[i].len, &e))
      return dn__error_set(err, DN_ETAG, e.position, "tag %zu: %s", i, e.text);
  }
  return 0;
}

/* ---- mapping one tag ------------------------------------------------- */

static uint64_t tag_hash(dn_slice t) { return XXH64(t.ptr, t.len, 0); }

static int akamai_ok(dn_slice t) {
  for (size_t i = 0; i < t.len; i++)
    if (!dn__http_is_tchar((unsigned char)t.ptr[i]) || t.ptr[i] == '*')
      return 0;
  return 1;
}

/* A closure tag as the CDN will see it. */
typedef struct key {
  const char *ptr;
  size_t len;
  size_t idx; /* position in the closure, for stable de-duplication */
  char hashed[HASHED_LEN + 1];
} key;

/* Sets k to t itself when the profile can take it, else to its hashed
 * form. k->ptr may point into k->hashed, so k must not move afterwards. */
static void map_tag(const profile *pr, dn_slice t, key *k) {
  int direct =
      t.len <= pr->limits.max_tag_len && (!pr->akamai_chars || akamai_ok(t));
  if (direct) {
    k->ptr = t.ptr;
    k->len = t.len;
    return;
  }
  snprintf(k->hashed, sizeof k->hashed, "dh-%016llx",
           (unsigned long long)tag_hash(t));
  k->ptr = k->hashed;
  k->len = HASHED_LEN;
}

static size_t bucket_key(unsigned level, uint64_t bucket,
                         char out[BUCKET_KEY_MAX]) {
  int n = snprintf(out, BUCKET_KEY_MAX, "dk%u-%llx", level,
                   (unsigned long long)bucket);
  return (size_t)n;
}

/* ---- fitting and writing a field value ------------------------------- */

/* The length of a field value holding `count` keys of `bytes` bytes. */
static size_t value_len(const dn_cdn_limits *l, size_t count, size_t bytes) {
  if (count == 0)
    return 0;
  if (l->sf_strings) /* "a", "b" */
    return bytes + 2 * count + 2 * (count - 1);
  return bytes + (count - 1);
}

static int fits(const dn_cdn_limits *l, size_t count, size_t bytes) {
  if (l->max_tags && count > l->max_tags)
    return 0;
  return value_len(l, count, bytes) <= l->max_value_len;
}

/* Appends one key to the value being built (buf has room). */
static size_t put_key(const dn_cdn_limits *l, char *buf, size_t n,
                      const char *k, size_t len) {
  if (n) {
    buf[n++] = l->sf_strings ? ',' : l->separator;
    if (l->sf_strings)
      buf[n++] = ' ';
  }
  if (l->sf_strings)
    buf[n++] = '"';
  memcpy(buf + n, k, len);
  n += len;
  if (l->sf_strings)
    buf[n++] = '"';
  return n;
}

static int cmp_key(const void *a, const void *b) {
  const key *x = *(const key *const *)a, *y = *(const key *const *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->ptr, y->ptr, n);
  if (c)
    return c;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Maps every tag and marks duplicates (keep[i] = 0 for all but the first
 * occurrence). Returns the number kept and their total bytes. */
static int map_all(const profile *pr, const dn_slice *tags, size_t n, key *keys,
                   unsigned char *keep, size_t *kept, size_t *bytes) {
  key **order = dn__malloc(n * sizeof *order);
  if (!order)
    return DN_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    map_tag(pr, tags[i], &keys[i]);
    keys[i].idx = i;
    order[i] = &keys[i];
  }
  qsort(order, n, sizeof *order, cmp_key);
  *kept = *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    int dup = i > 0 && order[i]->len == order[i - 1]->len &&
              memcmp(order[i]->ptr, order[i - 1]->ptr, order[i]->len) == 0;
    keep[order[i]->idx] = (unsigned char)!dup;
    if (!dup) {
      (*kept)++;
      *bytes += order[i]->len;
    }
  }
  dn__free(order);
  return 0;
}

/* Marks the buckets of level L used by the closure. Returns the count and
 * the total bytes of their keys. */
static size_t level_usage(unsigned level, const uint64_t *hashes, size_t n,
                          unsigned char *used, size_t *bytes) {
  unsigned nb = dn__cdn_buckets[level];
  size_t count = 0;
  char tmp[BUCKET_KEY_MAX];
  memset(used, 0, nb);
  *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t b = hashes[i] & (nb - 1);
    if (used[b])
      continue;
    used[b] = 1;
    count++;
    *bytes += bucket_key(level, b, tmp);
  }
  return count;
}

/* ---- the tag field of one page ---------------------------------------- */

typedef struct work {
  key *keys;
  unsigned char *keep;
  uint64_t *hashes;
  unsigned char *used; /* one flag per bucket, all levels back to back */
} work;

static void work_free(work *w) {
  dn__free(w->keys);
  dn__free(w->keep);
  dn__free(w->hashes);
  dn__free(w->used);
}

static size_t used_offset(unsigned level) {
  size_t off = 0;
  for (unsigned l = 0; l < level; l++)
    off += dn__cdn_buckets[l];
  return off;
}

static int work_init(work *w, const profile *pr, const dn_slice *tags, size_t n,
                     size_t *kept, size_t *bytes) {
  memset(w, 0, sizeof *w);
  w->keys = dn__malloc(n * sizeof *w->keys);
  w->keep = dn__malloc(n);
  w->hashes = dn__malloc(n * sizeof *w->hashes);
  w->used = dn__malloc(used_offset(DN__CDN_LEVELS));
  int rc = DN_ENOMEM;
  if (w->keys && w->keep && w->hashes && w->used)
    rc = map_all(pr, tags, n, w->keys, w->keep, kept, bytes);
  if (rc) {
    work_free(w);
    return rc;
  }
  for (size_t i = 0; i < n; i++)
    w->hashes[i] = tag_hash(tags[i]);
  return 0;
}

/* Builds the field value from the kept direct keys, or from the buckets
 * of `level` (flags in w->used at that level's offset). */
static char *build_value(const dn_cdn_limits *l, const work *w, size_t n,
                         int level, size_t total, size_t *len) {
  char *buf = dn__malloc(total + 1);
  if (!buf)
    return NULL;
  size_t k = 0;
  if (level < 0) {
    for (size_t i = 0; i < n; i++)
      if (w->keep[i])
        k = put_key(l, buf, k, w->keys[i].ptr, w->keys[i].len);
  } else {
    const unsigned char *used = w->used + used_offset((unsigned)level);
    char tmp[BUCKET_KEY_MAX];
    for (unsigned b = 0; b < dn__cdn_buckets[level]; b++)
      if (used[b])
        k = put_key(l, buf, k, tmp, bucket_key((unsigned)level, b, tmp));
  }
  buf[k] = '\0';
  *len = k;
  return buf;
}

/* Picks the direct keys when they fit, else the finest level that fits.
 * Returns the level (-1 for direct) and the value's length in *total. */
static int choose_level(const dn_cdn_limits *l, work *w, size_t n, size_t kept,
                        size_t bytes, size_t *total) {
  if (fits(l, kept, bytes)) {
    *total = value_len(l, kept, bytes);
    return -1;
  }
  for (unsigned lv = 0; lv < DN__CDN_LEVELS; lv++) {
    size_t kb,
        kc = level_usage(lv, w->hashes, n, w->used + used_offset(lv), &kb);
    if (fits(l, kc, kb)) {
      *total = value_len(l, kc, kb);
      return (int)lv;
    }
  }
  return -2; /* no level fits: the profile's limits are too small */
}

int dn_cdn_tag_fields(dn_cdn_profile p, const dn_slice *tags, size_t n,
                      dn_http_headers *out, dn_error *err) {
  const profile *pr = get(p);
  if (!pr || !out)
    return dn__error_set(err, DN_EINVAL, 0, "unknown CDN profile");
  int rc = dn__cdn_validate_tags(tags, n, err);
  if (rc || n == 0 || !pr->limits.tag_field)
    return rc;
  work w;
  size_t kept, bytes, total, len;
  rc = work_init(&w, pr, tags, n, &kept, &bytes);
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  int level = choose_level(&pr->limits, &w, n, kept, bytes, &total);
  char *value = NULL;
  if (level < -1) {
    work_free(&w);
    return dn__error_set(err, DN_ETOOBIG, 0, "tags do not fit the %s field",
                         pr->limits.tag_field);
  }
  value = build_value(&pr->limits, &w, n, level, total, &len);
  rc = value ? 0 : DN_ENOMEM;
  if (!rc)
    rc = dn__http_headers_push(out, dn_slice_from_cstr(pr->limits.tag_field),
                               (dn_slice){value, len});
  dn__free(value);
  work_free(&w);
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  return 0;
}

/* ---- purge keys --------------------------------------------------------- */

/* Counts every level's distinct buckets (flags left in w->used). */
static size_t all_levels(work *w, size_t n, size_t *bytes) {
  size_t count = 0;
  *bytes = 0;
  for (unsigned lv = 0; lv < DN__CDN_LEVELS; lv++) {
    size_t kb;
    count += level_usage(lv, w->hashes, n, w->used + used_offset(lv), &kb);
    *bytes += kb;
  }
  return count;
}

static void fill_keys(dn_slice *slots, char *bytes, const work *w, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!w->keep[i])
      continue;
    memcpy(bytes, w->keys[i].ptr, w->keys[i].len);
    slots[k].ptr = bytes;
    slots[k++].len = w->keys[i].len;
    bytes += w->keys[i].len;
  }
  for (unsigned lv = 0; lv < DN__CDN_LEVELS; lv++) {
    const unsigned char *used = w->used + used_offset(lv);
    for (unsigned b = 0; b < dn__cdn_buckets[lv]; b++) {
      if (!used[b])
        continue;
      char tmp[BUCKET_KEY_MAX];
      size_t len = bucket_key(lv, b, tmp);
      memcpy(bytes, tmp, len);
      slots[k].ptr = bytes;
      slots[k++].len = len;
      bytes += len;
    }
  }
}

int dn_cdn_purge_keys(dn_cdn_profile p, const dn_slice *tags, size_t n,
                      dn_slice **keys, size_t *count, dn_error *err) {
  const profile *pr = get(p);
  if (!pr || !keys || !count)
    return dn__error_set(err, DN_EINVAL, 0, "unknown CDN profile");
  int rc = dn__cdn_validate_tags(tags, n, err);
  if (rc)
    return rc;
  if (n == 0 || !pr->limits.tag_field) {
    *keys = NULL;
    *count = 0;
    return 0;
  }
  work w;
  size_t kept, bytes, lbytes;
  rc = work_init(&w, pr, tags, n, &kept, &bytes);
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  size_t total = kept + all_levels(&w, n, &lbytes);
  dn_slice *block = dn__malloc(total * sizeof *block + bytes + lbytes);
  if (block) {
    fill_keys(block, (char *)(block + total), &w, n);
    *keys = block;
    *count = total;
  }
  work_free(&w);
  if (!block)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  return 0;
}
