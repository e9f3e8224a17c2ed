/* store.c - the store wrapper, optional-method fallbacks, and the null
 * store, which keeps nothing (for development, like Rails' NullStore). */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "store.h"

int dn_store_new(const dn_store_ops *ops, void *self, dn_store **out) {
  if (!ops || !out || ops->version < 1 || !ops->name || !ops->get_multi ||
      !ops->set || !ops->del || !ops->seq_get || !ops->seq_bump ||
      !ops->destroy)
    return DN_EINVAL;
  dn_store *s = dn__malloc(sizeof *s);
  if (!s)
    return DN_ENOMEM;
  s->ops = ops;
  s->self = self;
  *out = s;
  return 0;
}

void dn_store_free(dn_store *store) {
  if (!store)
    return;
  store->ops->destroy(store->self);
  dn__free(store);
}

const char *dn_store_name(const dn_store *store) { return store->ops->name; }

int dn_store_stats_get(dn_store *store, dn_store_stats *out) {
  memset(out, 0, sizeof *out);
  if (!store->ops->stats)
    return DN_ENOTSUP;
  return store->ops->stats(store->self, out);
}

int dn__store_set_multi(dn_store *s, const dn_slice *keys,
                        dn_blob *const *values, size_t n, uint64_t ttl_ms) {
  if (s->ops->set_multi)
    return s->ops->set_multi(s->self, keys, values, n, ttl_ms);
  for (size_t i = 0; i < n; i++) {
    int rc = s->ops->set(s->self, keys[i], values[i], ttl_ms, DN_STORE_SET);
    if (rc)
      return rc;
  }
  return 0;
}

int dn__store_index_add(dn_store *s, dn_slice key, dn_slice member,
                        uint64_t ttl_ms) {
  if (!s->ops->index_add)
    return DN_ENOTSUP;
  return s->ops->index_add(s->self, key, member, ttl_ms);
}

int dn__store_index_members(dn_store *s, dn_slice key, dn_strings *out) {
  if (!s->ops->index_members)
    return DN_ENOTSUP;
  return s->ops->index_members(s->self, key, out);
}

uint64_t dn__random_u64(void) {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
    return v;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
      (uint64_t)(uintptr_t)&v;
  return v;
}

/* ---- the null store ------------------------------------------------------
 */
typedef struct null_store {
  uint64_t seq;
} null_store;

static int null_get_multi(void *self, const dn_slice *keys, size_t n,
                          dn_blob **out, uint64_t *seq) {
  (void)keys;
  for (size_t i = 0; i < n; i++)
    out[i] = NULL;
  if (seq)
    *seq = __atomic_load_n(&((null_store *)self)->seq, __ATOMIC_ACQUIRE);
  return 0;
}

static int null_set(void *self, dn_slice key, dn_blob *v, uint64_t ttl_ms,
                    int mode) {
  (void)self, (void)key, (void)v, (void)ttl_ms, (void)mode;
  return 0;
}

static int null_del(void *self, dn_slice key) {
  (void)self, (void)key;
  return 0;
}

static int null_seq_get(void *self, uint64_t *out) {
  *out = __atomic_load_n(&((null_store *)self)->seq, __ATOMIC_ACQUIRE);
  return 0;
}

static int null_seq_bump(void *self, uint64_t *out) {
  *out = __atomic_add_fetch(&((null_store *)self)->seq, 1, __ATOMIC_ACQ_REL);
  return 0;
}

static void null_destroy(void *self) { dn__free(self); }

static const dn_store_ops null_ops = {
    .version = DN_STORE_OPS_VERSION,
    .name = "null",
    .get_multi = null_get_multi,
    .set = null_set,
    .del = null_del,
    .seq_get = null_seq_get,
    .seq_bump = null_seq_bump,
    .destroy = null_destroy,
    .flags = DN_STORE_F_LOCAL | DN_STORE_F_KEEPS_NOTHING,
};

int dn_store_null_new(dn_store **out) {
  null_store *ns = dn__malloc(sizeof *ns);
  if (!ns)
    return DN_ENOMEM;
  ns->seq = dn__random_u64() >> 2;
  int rc = dn_store_new(&null_ops, ns, out);
  if (rc)
    dn__free(ns);
  return rc;
}
