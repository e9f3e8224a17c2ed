/* store_memory.c - the in-process memory store: byte-budgeted, LRU-evicting,
 * sharded.
 *
 * Keys are hashed once with XXH3; the top bits pick one of a power-of-two
 * number of shards, the low bits a slot in that shard's linear-probing
 * table, whose slots keep the full hash beside the entry pointer so that a
 * lookup dereferences only the entry that matches. Each shard has its own
 * mutex, table, LRU list (newest at head) and counters, so threads touching
 * different shards never contend. An entry holds a reference to the
 * caller's dn_blob; a hit takes another reference under the shard lock and
 * copies no bytes. Everything that is freed (replaced, deleted, expired or
 * evicted entries) is unlinked under the lock and released after it.
 *
 * Every entry is charged a number of bytes (see entry_base, value_charge
 * and docs/stores.md); the sum is one atomic counter compared with the
 * budget. A write that takes the store over budget evicts from the tail of
 * its own shard first, then from the other shards. A hit only sets a bit
 * on the entry; eviction gives a marked tail entry a second chance (CLOCK),
 * so eviction is approximately LRU per shard and across shards. Expired
 * entries are removed when a lookup meets them and otherwise age out
 * through the LRU like any other.
 *
 * Index sets (index_add/index_members) share the tables, the LRU and the
 * budget but not the key space: a set and a value may have the same key.
 * A set is a deduplicated member list with an open-addressing table of
 * its own for lookups.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "alloc.h"
#include "blob.h"
#include "store.h"

#define MEM_MAX_SHARDS 1024u /* shard index comes from the top 10 bits */
#define MEM_SHARD_SHIFT 54   /* 64 - log2(MEM_MAX_SHARDS) */
#define MEM_DEFAULT_SHARDS 16u
#define MEM_MIN_SLOTS 16u
#define MEM_CACHELINE 64u
/* A shard's table doubles before its load passes 3/4, so while it grows it
 * has at most 8/3 slots per entry: each entry is charged that much. */
#define MEM_SLOT_CHARGE ((sizeof(slot) * 8 + 2) / 3)
/* A set's first member table has this many slots; it doubles before its
 * load passes 1/2. */
#define MEM_SET_MIN_SLOTS 8u
/* Index keys hash with this seed, values with none. */
#define MEM_INDEX_SEED 0x696e646578ull

typedef struct set_member {
  uint64_t hash;
  size_t len;
  char data[]; /* len bytes, then a NUL */
} set_member;

/* An index set: its members in a linear-probing table. */
typedef struct mset {
  set_member **slots; /* NULL: empty */
  size_t count, nslots;
  size_t bytes; /* charge of the set: struct, table and members */
} mset;

typedef struct entry {
  struct entry *newer, *older; /* LRU neighbours; newer links freed ones */
  uint64_t hash;
  uint64_t expires; /* on the store clock, in ms; 0 = never */
  size_t charge;    /* bytes accounted for this entry */
  dn_blob *value;   /* a value, or ... */
  mset *set;        /* ... an index set: exactly one is not NULL */
  uint32_t klen;
  uint32_t referenced; /* read since it last moved in the LRU list */
  char key[];
} entry;

/* A hash table slot keeps the full hash next to the pointer, so probing
 * compares hashes within the table and dereferences only likely matches. */
typedef struct slot {
  uint64_t hash;
  entry *e; /* NULL: empty */
} slot;

typedef struct shard {
  alignas(MEM_CACHELINE) pthread_mutex_t lock;
  slot *slots; /* linear probing, a power of two of them */
  size_t mask; /* slots - 1 */
  size_t count;
  entry *head, *tail; /* newest and oldest */
  uint64_t hits, misses, evictions;
} shard;

typedef struct mem_store {
  shard *shards;
  void *shards_mem; /* the allocation shards are aligned within */
  size_t shard_mask;
  size_t budget, item_cap;
  uint64_t (*now_ms)(void *ud);
  void *clock_ud;
  clockid_t clock_id;       /* of the default clock */
  char pad0[MEM_CACHELINE]; /* keep the two hot atomics on their own lines */
  atomic_size_t bytes;
  char pad1[MEM_CACHELINE];
  _Atomic uint64_t seq;
} mem_store;

/* What a lookup looks for. Values and index sets live in separate key
 * spaces, as in the shared stores. The clock is read at most once per
 * call, and only when an entry has a deadline. */
typedef struct probe {
  dn_slice key;
  uint64_t hash;
  bool set; /* an index set rather than a value */
  bool have_now;
  uint64_t now;
} probe;

/* Set member preparation: everything index_add allocates before it
 * commits, so that a failure changes nothing. */
typedef struct set_prep {
  set_member *m;
  set_member **slots; /* a bigger table holding the old members, or NULL */
  size_t nslots;
  size_t bytes; /* the set's charge after commit */
} set_prep;

/* ---- accounting -----------------------------------------------------------
 */

/* Bytes one allocation of n really takes, modelled on glibc malloc on
 * 64-bit: an 8-byte chunk header, 16-byte granularity, 32-byte minimum. */
static size_t alloc_charge(size_t n) {
  size_t c = (n + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

/* The entry allocation (struct plus key) and its share of the hash table. */
static size_t entry_base(size_t klen) {
  return alloc_charge(sizeof(entry) + klen) + MEM_SLOT_CHARGE;
}

static int value_charge(const mem_store *ms, size_t klen, size_t vlen,
                        size_t *out) {
  if (klen > ms->item_cap || klen > UINT32_MAX || vlen > ms->item_cap)
    return DN_ETOOBIG;
  size_t c = entry_base(klen) + alloc_charge(sizeof(dn_blob) + vlen + 1);
  if (c > ms->item_cap)
    return DN_ETOOBIG;
  *out = c;
  return 0;
}

static bool over_budget(mem_store *ms) {
  return atomic_load_explicit(&ms->bytes, memory_order_relaxed) > ms->budget;
}

/* ---- time -----------------------------------------------------------------
 */

/* The default clock is the monotonic clock read at scheduler-tick
 * resolution where the system offers it: reading the precise clock costs
 * about 20 ns and, through its serialising counter read, stalls the
 * memory accesses of the lookups around it. Deadlines are then exact to
 * within one tick (1-4 ms on Linux). */
static clockid_t pick_clock(void) {
#ifdef CLOCK_MONOTONIC_COARSE
  struct timespec res;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
      res.tv_nsec <= 10000000)
    return CLOCK_MONOTONIC_COARSE;
#endif
  return CLOCK_MONOTONIC;
}

static uint64_t monotonic_ms(void *ud) {
  struct timespec ts;
  clock_gettime(((mem_store *)ud)->clock_id, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t expiry(const mem_store *ms, uint64_t ttl_ms) {
  if (!ttl_ms)
    return 0;
  uint64_t now = ms->now_ms(ms->clock_ud);
  return now > UINT64_MAX - ttl_ms ? UINT64_MAX : now + ttl_ms;
}

/* ---- entries, LRU and the hash table --------------------------------------
 */

static uint64_t key_hash(dn_slice k) { return XXH3_64bits(k.ptr, k.len); }

/* Aims p at a key; keeps the clock p has read. */
static void probe_set(probe *p, dn_slice key, bool set) {
  p->key = key;
  p->set = set;
  p->hash = set ? XXH3_64bits_withSeed(key.ptr, key.len, MEM_INDEX_SEED)
                : key_hash(key);
}

static bool bad_slice(dn_slice s) { return !s.ptr && s.len; }

static shard *shard_for(mem_store *ms, uint64_t h) {
  return &ms->shards[(size_t)(h >> MEM_SHARD_SHIFT) & ms->shard_mask];
}

static entry *entry_new(uint64_t h, dn_slice key) {
  entry *e = dn__malloc(sizeof *e + key.len);
  if (!e)
    return NULL;
  memset(e, 0, sizeof *e);
  e->hash = h;
  e->klen = (uint32_t)key.len;
  if (key.len)
    memcpy(e->key, key.ptr, key.len);
  return e;
}

static void set_free(mset *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->nslots; i++)
    dn__free(s->slots[i]);
  dn__free(s->slots);
  dn__free(s);
}

static void free_garbage(entry *e) {
  while (e) {
    entry *next = e->newer;
    dn_blob_unref(e->value);
    set_free(e->set);
    dn__free(e);
    e = next;
  }
}

static void lru_unlink(shard *sh, entry *e) {
  if (e->newer)
    e->newer->older = e->older;
  else
    sh->head = e->older;
  if (e->older)
    e->older->newer = e->newer;
  else
    sh->tail = e->newer;
  e->newer = e->older = NULL;
}

static void lru_push(shard *sh, entry *e) {
  e->newer = NULL;
  e->older = sh->head;
  if (sh->head)
    sh->head->newer = e;
  else
    sh->tail = e;
  sh->head = e;
}

static void lru_touch(shard *sh, entry *e) {
  if (sh->head == e)
    return;
  lru_unlink(sh, e);
  lru_push(sh, e);
}

/* Empties slot i and shifts later members of its probe run back into the
 * hole, so lookups never need tombstones. */
static void slot_delete(shard *sh, size_t i) {
  size_t mask = sh->mask;
  for (size_t j = (i + 1) & mask; sh->slots[j].e; j = (j + 1) & mask) {
    size_t home = sh->slots[j].hash & mask;
    /* The member at j may fill the hole when i lies in [home, j). */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      sh->slots[i] = sh->slots[j];
      i = j;
    }
  }
  sh->slots[i].e = NULL;
}

static void slot_put(slot *slots, size_t mask, uint64_t h, entry *e) {
  size_t i = h & mask;
  while (slots[i].e)
    i = (i + 1) & mask;
  slots[i].hash = h;
  slots[i].e = e;
}

/* Unlinks the entry in slot i from the table and the LRU and puts it on
 * *garbage, to be freed once the lock is dropped. */
static void remove_at(mem_store *ms, shard *sh, size_t i, entry **garbage) {
  entry *e = sh->slots[i].e;
  slot_delete(sh, i);
  lru_unlink(sh, e);
  sh->count--;
  atomic_fetch_sub_explicit(&ms->bytes, e->charge, memory_order_relaxed);
  e->newer = *garbage;
  *garbage = e;
}

static void link_entry(mem_store *ms, shard *sh, entry *e) {
  slot_put(sh->slots, sh->mask, e->hash, e);
  lru_push(sh, e);
  sh->count++;
  atomic_fetch_add_explicit(&ms->bytes, e->charge, memory_order_relaxed);
}

static bool expired(const mem_store *ms, const entry *e, probe *p) {
  if (!e->expires)
    return false;
  if (!p->have_now) {
    p->now = ms->now_ms(ms->clock_ud);
    p->have_now = true;
  }
  return p->now >= e->expires;
}

/* Finds the entry p looks for. An expired one is removed (onto *garbage)
 * and reported absent. *where receives its slot index. */
static entry *find_live(mem_store *ms, shard *sh, probe *p, size_t *where,
                        entry **garbage) {
  for (size_t i = p->hash & sh->mask; sh->slots[i].e; i = (i + 1) & sh->mask) {
    entry *e = sh->slots[i].e;
    if (sh->slots[i].hash != p->hash || e->klen != p->key.len ||
        (e->set != NULL) != p->set ||
        (p->key.len && memcmp(e->key, p->key.ptr, p->key.len) != 0))
      continue;
    if (expired(ms, e, p)) {
      remove_at(ms, sh, i, garbage);
      return NULL;
    }
    if (where)
      *where = i;
    return e;
  }
  return NULL;
}

/* Makes sure one more entry fits at load 3/4, doubling the table. The
 * rehash is O(entries in the shard) under its lock. */
static int reserve_slot(shard *sh) {
  size_t n = sh->mask + 1;
  if ((sh->count + 1) * 4 <= n * 3)
    return 0;
  if (n > SIZE_MAX / 2 / sizeof(slot))
    return DN_ENOMEM;
  slot *ns = dn__calloc(n * 2, sizeof *ns);
  if (!ns)
    return DN_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (sh->slots[i].e)
      slot_put(ns, n * 2 - 1, sh->slots[i].hash, sh->slots[i].e);
  dn__free(sh->slots);
  sh->slots = ns;
  sh->mask = n * 2 - 1;
  return 0;
}

/* Evicts from the shard's LRU tail while the store is over budget, never
 * evicting `keep` (the entry the caller just wrote). A tail entry that was
 * read since it last moved gets a second chance: it goes back to the head
 * with its bit cleared (CLOCK), so each hit costs at most one move here
 * instead of one on the hit path. */
static void evict_locked(mem_store *ms, shard *sh, const entry *keep,
                         entry **garbage) {
  while (over_budget(ms)) {
    entry *victim = sh->tail;
    if (!victim || (victim == keep && !victim->newer))
      return;
    if (victim == keep || victim->referenced) {
      victim->referenced = 0;
      lru_touch(sh, victim);
      continue;
    }
    size_t i = victim->hash & sh->mask;
    while (sh->slots[i].e != victim)
      i = (i + 1) & sh->mask;
    remove_at(ms, sh, i, garbage);
    sh->evictions++;
  }
}

/* After a write: when its own shard could not bring the store within
 * budget, evicts from the others in turn, one lock at a time. */
static void evict_others(mem_store *ms, const shard *from) {
  size_t start = (size_t)(from - ms->shards);
  for (size_t i = 1; i <= ms->shard_mask && over_budget(ms); i++) {
    shard *sh = &ms->shards[(start + i) & ms->shard_mask];
    entry *garbage = NULL;
    pthread_mutex_lock(&sh->lock);
    evict_locked(ms, sh, NULL, &garbage);
    pthread_mutex_unlock(&sh->lock);
    free_garbage(garbage);
  }
}

/* ---- values ---------------------------------------------------------------
 */

static dn_blob *lookup_ref(mem_store *ms, probe *p) {
  shard *sh = shard_for(ms, p->hash);
  entry *garbage = NULL;
  dn_blob *b = NULL;
  pthread_mutex_lock(&sh->lock);
  entry *e = find_live(ms, sh, p, NULL, &garbage);
  if (e) {
    /* No list surgery on the hot path (see evict_locked), and no store
     * when the bit is already set, so hot entries stay clean in cache. */
    if (!e->referenced)
      e->referenced = 1;
    b = dn_blob_ref(e->value);
    sh->hits++;
  } else {
    sh->misses++;
  }
  pthread_mutex_unlock(&sh->lock);
  free_garbage(garbage);
  return b;
}

/* Each lookup locks one shard briefly. The sequence is read afterwards with
 * acquire ordering: it is never older than any bump that happened before a
 * write the lookups observed (see docs/stores.md). */
static int mem_get_multi(void *self, const dn_slice *keys, size_t n,
                         dn_blob **out, uint64_t *seq) {
  mem_store *ms = self;
  if (n && (!keys || !out))
    return DN_EINVAL;
  for (size_t i = 0; i < n; i++) {
    out[i] = NULL;
    if (bad_slice(keys[i]))
      return DN_EINVAL;
  }
  probe p = {0};
  for (size_t i = 0; i < n; i++) {
    probe_set(&p, keys[i], false);
    out[i] = lookup_ref(ms, &p);
  }
  if (seq)
    *seq = atomic_load_explicit(&ms->seq, memory_order_acquire);
  return 0;
}

static int insert_value(mem_store *ms, probe *p, entry *ne, int mode) {
  shard *sh = shard_for(ms, p->hash);
  entry *garbage = NULL;
  size_t at = 0;
  int rc = 0;
  pthread_mutex_lock(&sh->lock);
  entry *old = find_live(ms, sh, p, &at, &garbage);
  if (old && mode == DN_STORE_ADD) {
    rc = DN_EEXIST;
    goto out;
  }
  if (old)
    remove_at(ms, sh, at, &garbage);
  else if ((rc = reserve_slot(sh)) != 0)
    goto out;
  link_entry(ms, sh, ne);
  evict_locked(ms, sh, ne, &garbage);
out:
  pthread_mutex_unlock(&sh->lock);
  free_garbage(garbage);
  if (!rc)
    evict_others(ms, sh);
  return rc;
}

static int mem_set(void *self, dn_slice key, dn_blob *value, uint64_t ttl_ms,
                   int mode) {
  mem_store *ms = self;
  if (!value || bad_slice(key) ||
      (mode != DN_STORE_SET && mode != DN_STORE_ADD))
    return DN_EINVAL;
  size_t charge;
  int rc = value_charge(ms, key.len, value->len, &charge);
  if (rc)
    return rc;
  probe p = {0};
  probe_set(&p, key, false);
  entry *e = entry_new(p.hash, key);
  if (!e)
    return DN_ENOMEM;
  e->value = dn_blob_ref(value);
  e->charge = charge;
  e->expires = expiry(ms, ttl_ms);
  rc = insert_value(ms, &p, e, mode);
  if (rc)
    free_garbage(e);
  return rc;
}

static int mem_set_multi(void *self, const dn_slice *keys,
                         dn_blob *const *values, size_t n, uint64_t ttl_ms) {
  if (n && (!keys || !values))
    return DN_EINVAL;
  for (size_t i = 0; i < n; i++) {
    int rc = mem_set(self, keys[i], values[i], ttl_ms, DN_STORE_SET);
    if (rc)
      return rc;
  }
  return 0;
}

static int mem_del(void *self, dn_slice key) {
  mem_store *ms = self;
  if (bad_slice(key))
    return DN_EINVAL;
  probe p = {0};
  probe_set(&p, key, false);
  shard *sh = shard_for(ms, p.hash);
  entry *garbage = NULL;
  size_t at = 0;
  pthread_mutex_lock(&sh->lock);
  if (find_live(ms, sh, &p, &at, &garbage))
    remove_at(ms, sh, at, &garbage);
  pthread_mutex_unlock(&sh->lock);
  free_garbage(garbage);
  return 0;
}

/* ---- the invalidation sequence --------------------------------------------
 */

static int mem_seq_get(void *self, uint64_t *out) {
  mem_store *ms = self;
  if (!out)
    return DN_EINVAL;
  *out = atomic_load_explicit(&ms->seq, memory_order_acquire);
  return 0;
}

static int mem_seq_bump(void *self, uint64_t *out) {
  mem_store *ms = self;
  uint64_t v = atomic_fetch_add_explicit(&ms->seq, 1, memory_order_acq_rel);
  if (out)
    *out = v + 1;
  return 0;
}

/* ---- index sets -----------------------------------------------------------
 */

static bool set_find(const mset *s, uint64_t mh, dn_slice m) {
  size_t mask = s->nslots - 1;
  for (size_t i = mh & mask; s->nslots && s->slots[i]; i = (i + 1) & mask) {
    const set_member *x = s->slots[i];
    if (x->hash == mh && x->len == m.len &&
        (!m.len || memcmp(x->data, m.ptr, m.len) == 0))
      return true;
  }
  return false;
}

static void member_put(set_member **slots, size_t nslots, set_member *m) {
  size_t mask = nslots - 1, i = m->hash & mask;
  while (slots[i])
    i = (i + 1) & mask;
  slots[i] = m;
}

static void set_prep_free(set_prep *p) {
  dn__free(p->m);
  dn__free(p->slots);
  memset(p, 0, sizeof *p);
}

/* Allocates the new member and, when the set would pass load 1/2, a table
 * twice as big with the existing members already placed. */
static int set_prepare(const mset *s, dn_slice m, uint64_t mh, set_prep *p) {
  memset(p, 0, sizeof *p);
  p->m = dn__malloc(sizeof *p->m + m.len + 1);
  if (!p->m)
    return DN_ENOMEM;
  p->m->hash = mh;
  p->m->len = m.len;
  if (m.len)
    memcpy(p->m->data, m.ptr, m.len);
  p->m->data[m.len] = '\0';
  p->bytes = s->bytes + alloc_charge(sizeof *p->m + m.len + 1);
  if ((s->count + 1) * 2 <= s->nslots)
    return 0;
  size_t n = s->nslots ? s->nslots * 2 : MEM_SET_MIN_SLOTS;
  if (n > SIZE_MAX / sizeof *p->slots ||
      !(p->slots = dn__calloc(n, sizeof *p->slots))) {
    set_prep_free(p);
    return DN_ENOMEM;
  }
  p->nslots = n;
  for (size_t i = 0; i < s->nslots; i++)
    if (s->slots[i])
      member_put(p->slots, n, s->slots[i]);
  p->bytes += alloc_charge(n * sizeof *p->slots);
  if (s->nslots)
    p->bytes -= alloc_charge(s->nslots * sizeof *s->slots);
  return 0;
}

static void set_commit(mset *s, set_prep *p) {
  if (p->slots) {
    dn__free(s->slots);
    s->slots = p->slots;
    s->nslots = p->nslots;
  }
  member_put(s->slots, s->nslots, p->m);
  s->count++;
  s->bytes = p->bytes;
  memset(p, 0, sizeof *p);
}

/* Adds m to e's set unless it is there. The charge of a linked entry is
 * moved to the store's count. */
static int set_add(mem_store *ms, entry *e, dn_slice m, bool linked) {
  uint64_t mh = key_hash(m);
  if (set_find(e->set, mh, m))
    return 0;
  set_prep p;
  int rc = set_prepare(e->set, m, mh, &p);
  if (rc)
    return rc;
  size_t charge = entry_base(e->klen) + p.bytes;
  if (charge > ms->item_cap) {
    set_prep_free(&p);
    return DN_ETOOBIG;
  }
  set_commit(e->set, &p);
  if (linked)
    atomic_fetch_add_explicit(&ms->bytes, charge - e->charge,
                              memory_order_relaxed);
  e->charge = charge;
  return 0;
}

/* Adds m to the set p names, creating the set when absent; *out receives
 * the entry. */
static int index_add_locked(mem_store *ms, shard *sh, probe *p, dn_slice m,
                            entry **out, entry **garbage) {
  entry *e = find_live(ms, sh, p, NULL, garbage);
  if (e) {
    *out = e;
    int rc = set_add(ms, e, m, true);
    if (!rc)
      lru_touch(sh, e);
    return rc;
  }
  int rc = reserve_slot(sh);
  if (rc)
    return rc;
  e = entry_new(p->hash, p->key);
  if (!e || !(e->set = dn__calloc(1, sizeof *e->set))) {
    dn__free(e);
    return DN_ENOMEM;
  }
  e->set->bytes = alloc_charge(sizeof *e->set);
  if ((rc = set_add(ms, e, m, false)) != 0) {
    dn__free(e->set);
    dn__free(e);
    return rc;
  }
  link_entry(ms, sh, e);
  *out = e;
  return 0;
}

static int mem_index_add(void *self, dn_slice key, dn_slice member,
                         uint64_t ttl_ms) {
  mem_store *ms = self;
  if (bad_slice(key) || bad_slice(member))
    return DN_EINVAL;
  if (key.len > UINT32_MAX)
    return DN_ETOOBIG;
  uint64_t expires = expiry(ms, ttl_ms);
  probe p = {0};
  probe_set(&p, key, true);
  shard *sh = shard_for(ms, p.hash);
  entry *garbage = NULL, *e = NULL;
  pthread_mutex_lock(&sh->lock);
  int rc = index_add_locked(ms, sh, &p, member, &e, &garbage);
  if (!rc) { /* the ttl is refreshed even when m was already a member */
    e->expires = expires;
    evict_locked(ms, sh, e, &garbage);
  }
  pthread_mutex_unlock(&sh->lock);
  free_garbage(garbage);
  if (!rc)
    evict_others(ms, sh);
  return rc;
}

/* Copies the members into the layout dn_strings_free releases: separately
 * allocated items and lens arrays, each item allocated on its own. */
static int set_copy(const mset *s, dn_strings *out) {
  dn_strings r = {0};
  r.items = dn__calloc(s->count, sizeof *r.items);
  r.lens = dn__calloc(s->count, sizeof *r.lens);
  if (!r.items || !r.lens)
    goto oom;
  for (size_t i = 0; i < s->nslots; i++) {
    const set_member *m = s->slots[i];
    if (!m)
      continue;
    if (!(r.items[r.count] = dn__strndup(m->data, m->len)))
      goto oom;
    r.lens[r.count++] = m->len;
  }
  *out = r;
  return 0;
oom:
  for (size_t i = 0; i < r.count; i++)
    dn__free(r.items[i]);
  dn__free(r.items);
  dn__free(r.lens);
  return DN_ENOMEM;
}

static int mem_index_members(void *self, dn_slice key, dn_strings *out) {
  mem_store *ms = self;
  if (!out || bad_slice(key))
    return DN_EINVAL;
  probe p = {0};
  probe_set(&p, key, true);
  shard *sh = shard_for(ms, p.hash);
  entry *garbage = NULL;
  int rc = 0;
  pthread_mutex_lock(&sh->lock);
  entry *e = find_live(ms, sh, &p, NULL, &garbage);
  if (e) {
    rc = set_copy(e->set, out);
    lru_touch(sh, e);
  } else {
    memset(out, 0, sizeof *out);
  }
  pthread_mutex_unlock(&sh->lock);
  free_garbage(garbage);
  return rc;
}

/* ---- stats, life cycle ----------------------------------------------------
 */

static int mem_stats(void *self, dn_store_stats *out) {
  mem_store *ms = self;
  if (!out)
    return DN_EINVAL;
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i <= ms->shard_mask; i++) {
    shard *sh = &ms->shards[i];
    pthread_mutex_lock(&sh->lock);
    out->items += sh->count;
    out->hits += sh->hits;
    out->misses += sh->misses;
    out->evictions += sh->evictions;
    pthread_mutex_unlock(&sh->lock);
  }
  out->bytes = atomic_load_explicit(&ms->bytes, memory_order_relaxed);
  out->limit_bytes = ms->budget;
  return 0;
}

static void shard_fini(shard *sh) {
  entry *e = sh->head;
  while (e) {
    entry *older = e->older;
    e->newer = NULL;
    free_garbage(e);
    e = older;
  }
  dn__free(sh->slots);
  pthread_mutex_destroy(&sh->lock);
}

/* Tears down the first n shards (all of them once the store is built). */
static void mem_free(mem_store *ms, size_t n) {
  for (size_t i = 0; i < n; i++)
    shard_fini(&ms->shards[i]);
  dn__free(ms->shards_mem);
  dn__free(ms);
}

static void mem_destroy(void *self) {
  mem_store *ms = self;
  mem_free(ms, ms->shard_mask + 1);
}

static const dn_store_ops memory_ops = {
    .version = DN_STORE_OPS_VERSION,
    .name = "memory",
    .get_multi = mem_get_multi,
    .set = mem_set,
    .set_multi = mem_set_multi,
    .del = mem_del,
    .seq_get = mem_seq_get,
    .seq_bump = mem_seq_bump,
    .index_add = mem_index_add,
    .index_members = mem_index_members,
    .stats = mem_stats,
    .destroy = mem_destroy,
    .flags = DN_STORE_F_LOCAL,
};

/* Builds n shards; on failure frees everything, ms included. */
static int shards_init(mem_store *ms, size_t n) {
  ms->shards_mem = dn__malloc(n * sizeof(shard) + MEM_CACHELINE - 1);
  if (!ms->shards_mem) {
    dn__free(ms);
    return DN_ENOMEM;
  }
  uintptr_t at = ((uintptr_t)ms->shards_mem + MEM_CACHELINE - 1) &
                 ~(uintptr_t)(MEM_CACHELINE - 1);
  ms->shards = (shard *)at;
  memset(ms->shards, 0, n * sizeof(shard));
  for (size_t i = 0; i < n; i++) {
    shard *sh = &ms->shards[i];
    sh->slots = dn__calloc(MEM_MIN_SLOTS, sizeof *sh->slots);
    if (!sh->slots || pthread_mutex_init(&sh->lock, NULL) != 0) {
      dn__free(sh->slots);
      mem_free(ms, i);
      return DN_ENOMEM;
    }
    sh->mask = MEM_MIN_SLOTS - 1;
  }
  ms->shard_mask = n - 1;
  return 0;
}

static int shard_count(unsigned want, size_t *out) {
  if (!want)
    want = MEM_DEFAULT_SHARDS;
  if (want > MEM_MAX_SHARDS)
    return DN_EINVAL;
  size_t n = 1;
  while (n < want)
    n *= 2;
  *out = n;
  return 0;
}

void dn_store_memory_options_init_size(dn_store_memory_options *o,
                                       size_t size) {
  dn_store_memory_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_store_memory_new(const dn_store_memory_options *opts, dn_store **out) {
  dn_store_memory_options o;
  size_t n;
  dn_store_memory_options_init(&o);
  /* Options from an older header end before the fields it did not have. */
  if (opts && DN__STORE_MEMORY_OPTIONS_READ(&o, opts, NULL) != 0)
    return DN_EINVAL;
  if (!out || shard_count(o.shards, &n) != 0)
    return DN_EINVAL;
  mem_store *ms = dn__calloc(1, sizeof *ms);
  if (!ms)
    return DN_ENOMEM;
  ms->budget = o.max_bytes ? o.max_bytes : DN_STORE_MEMORY_DEFAULT_BYTES;
  ms->item_cap = ms->budget / 8;
  ms->now_ms = o.now_ms ? o.now_ms : monotonic_ms;
  ms->clock_ud = o.now_ms ? o.clock_ud : ms;
  ms->clock_id = pick_clock();
  atomic_init(&ms->bytes, 0);
  atomic_init(&ms->seq, dn__random_u64() >> 2);
  if (shards_init(ms, n) != 0) /* frees ms */
    return DN_ENOMEM;
  int rc = dn_store_new(&memory_ops, ms, out);
  if (rc)
    mem_destroy(ms);
  return rc;
}
