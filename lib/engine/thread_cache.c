/* thread_cache.c - the per-thread view cache (see thread_cache.h).
 *
 * Each thread lazily allocates one table, shared by every engine it uses;
 * slots carry the engine's identity. The table is freed when the thread
 * exits (a pthread key destructor) or when the last engine with entries in
 * it is freed on this thread. Entries of an engine freed on another thread
 * stay until they are overwritten or their thread exits: at most
 * DN__HOT_SLOTS references per thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "alloc.h"
#include "thread_cache.h"

#define DN__HOT_SLOTS 4096

/* A slot keeps no copy of the key: a view records its normalised URI, and
 * the request's URI must equal it byte for byte (a URI that is not already
 * normal never hits here, and takes the full path). */
typedef struct hot_slot {
  uint64_t engine_id;
  uint64_t hash;
  dn_rep *rep;
} hot_slot;

typedef struct hot_table {
  size_t used;
  unsigned victim;
  hot_slot slots[DN__HOT_SLOTS];
} hot_table;

static _Thread_local hot_table *tl_table;
static pthread_key_t hot_key;
static pthread_once_t hot_once = PTHREAD_ONCE_INIT;
static int hot_key_ok;
static atomic_uint_fast64_t next_engine_id = 1;

static void table_free(hot_table *t) {
  for (size_t i = 0; i < DN__HOT_SLOTS; i++)
    dn_rep_unref(t->slots[i].rep);
  dn__free(t);
}

static void thread_exit(void *p) {
  table_free(p);
  tl_table = NULL;
}

static void make_key(void) {
  hot_key_ok = pthread_key_create(&hot_key, thread_exit) == 0;
}

uint64_t dn__hot_engine_id(void) {
  return atomic_fetch_add_explicit(&next_engine_id, 1, memory_order_relaxed);
}

/* The table is 2-way set-associative: a URI may sit in either slot of its
 * set, so two hot URIs that hash to one set do not evict each other. */
static hot_slot *find(hot_table *t, uint64_t engine_id, uint64_t h,
                      const char *uri, size_t len) {
  hot_slot *set = &t->slots[(h % (DN__HOT_SLOTS / 2)) * 2];
  for (int w = 0; w < 2; w++) {
    hot_slot *s = &set[w];
    dn_rep *rep = s->rep;
    if (rep && s->hash == h && s->engine_id == engine_id &&
        rep->uri.len == len && memcmp(rep->uri.ptr, uri, len) == 0)
      return s;
  }
  return NULL;
}

dn_rep *dn__hot_get(uint64_t engine_id, const char *uri, size_t len,
                    uint64_t seq) {
  hot_table *t = tl_table;
  if (!t)
    return NULL;
  uint64_t h = XXH3_64bits(uri, len) ^ engine_id;
  hot_slot *s = find(t, engine_id, h, uri, len);
  if (!s ||
      atomic_load_explicit(&s->rep->checked_seq, memory_order_acquire) != seq)
    return NULL;
  return dn_rep_ref(s->rep);
}

void dn__hot_put(uint64_t engine_id, const char *uri, size_t len, dn_rep *rep) {
  if (rep->nvary || !(rep->flags & DN__REC_CACHEABLE) || rep->uri.len != len ||
      memcmp(rep->uri.ptr, uri, len) != 0)
    return;
  hot_table *t = tl_table;
  if (!t) {
    pthread_once(&hot_once, make_key);
    if (!hot_key_ok || !(t = dn__calloc(1, sizeof *t)))
      return;
    if (pthread_setspecific(hot_key, t)) {
      dn__free(t);
      return;
    }
    tl_table = t;
  }
  uint64_t h = XXH3_64bits(uri, len) ^ engine_id;
  hot_slot *s = find(t, engine_id, h, uri, len);
  if (!s) {
    /* Fill an empty way, else replace the way not used last. */
    hot_slot *set = &t->slots[(h % (DN__HOT_SLOTS / 2)) * 2];
    s = !set[0].rep ? &set[0] : !set[1].rep ? &set[1] : &set[t->victim ^= 1];
  }
  if (s->rep)
    dn_rep_unref(s->rep);
  else
    t->used++;
  s->engine_id = engine_id;
  s->hash = h;
  s->rep = dn_rep_ref(rep);
}

void dn__hot_forget(uint64_t engine_id) {
  hot_table *t = tl_table;
  if (!t)
    return;
  for (size_t i = 0; i < DN__HOT_SLOTS; i++) {
    hot_slot *s = &t->slots[i];
    if (s->rep && s->engine_id == engine_id) {
      dn_rep_unref(s->rep);
      s->rep = NULL;
      t->used--;
    }
  }
  if (t->used == 0) {
    pthread_setspecific(hot_key, NULL);
    dn__free(t);
    tl_table = NULL;
  }
}
