/* prefetch_hints.c - a bounded, thread-safe table of key -> tag list (see
 * prefetch_hints.h).
 *
 * Direct-mapped by the key's hash over DN__HINT_SLOTS slots, with striped
 * locks. Each slot owns one allocation holding the key and the tags.
 */
#include <pthread.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "alloc.h"
#include "prefetch_hints.h"

#define DN__HINT_SLOTS 4096
#define DN__HINT_LOCKS 16
#define DN__HINT_MAX_TAGS 256

typedef struct hint {
  uint64_t hash;
  uint64_t seq;
  size_t key_len;
  size_t ntags;
  size_t tags_len; /* bytes of the NUL-separated tag list */
  char data[];     /* key, then the tag list */
} hint;

struct dn__hints {
  pthread_mutex_t locks[DN__HINT_LOCKS];
  hint *slots[DN__HINT_SLOTS];
};

int dn__hints_new(dn__hints **out) {
  dn__hints *h = dn__calloc(1, sizeof *h);
  if (!h)
    return DN_ENOMEM;
  for (int i = 0; i < DN__HINT_LOCKS; i++)
    pthread_mutex_init(&h->locks[i], NULL);
  *out = h;
  return 0;
}

void dn__hints_free(dn__hints *h) {
  if (!h)
    return;
  for (int i = 0; i < DN__HINT_SLOTS; i++)
    dn__free(h->slots[i]);
  for (int i = 0; i < DN__HINT_LOCKS; i++)
    pthread_mutex_destroy(&h->locks[i]);
  dn__free(h);
}

size_t dn__hints_get(dn__hints *h, dn_slice key, dn__buf *tags, uint64_t *seq) {
  uint64_t hash = XXH3_64bits(key.ptr, key.len);
  size_t slot = hash % DN__HINT_SLOTS, n = 0;
  pthread_mutex_t *mu = &h->locks[slot % DN__HINT_LOCKS];
  pthread_mutex_lock(mu);
  hint *e = h->slots[slot];
  if (e && e->hash == hash && e->key_len == key.len &&
      memcmp(e->data, key.ptr, key.len) == 0 &&
      dn__buf_append(tags, e->data + e->key_len, e->tags_len) == 0) {
    n = e->ntags;
    if (seq)
      *seq = e->seq;
  }
  pthread_mutex_unlock(mu);
  return n;
}

void dn__hints_put(dn__hints *h, dn_slice key, const dn__tagver *tags, size_t n,
                   uint64_t seq) {
  if (n > DN__HINT_MAX_TAGS)
    return;
  size_t tags_len = 0;
  for (size_t i = 0; i < n; i++)
    tags_len += tags[i].tag.len + 1;
  hint *e = dn__malloc(sizeof *e + key.len + tags_len);
  if (!e)
    return;
  e->hash = XXH3_64bits(key.ptr, key.len);
  e->seq = seq;
  e->key_len = key.len;
  e->ntags = n;
  e->tags_len = tags_len;
  memcpy(e->data, key.ptr, key.len);
  char *p = e->data + key.len;
  for (size_t i = 0; i < n; i++) {
    memcpy(p, tags[i].tag.ptr, tags[i].tag.len);
    p += tags[i].tag.len;
    *p++ = '\0';
  }
  size_t slot = e->hash % DN__HINT_SLOTS;
  pthread_mutex_t *mu = &h->locks[slot % DN__HINT_LOCKS];
  pthread_mutex_lock(mu);
  hint *old = h->slots[slot];
  h->slots[slot] = e;
  pthread_mutex_unlock(mu);
  dn__free(old);
}
