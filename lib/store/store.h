/* store.h - the engine's view of a store: the ops table and its state,
 * with dispatchers that fill in DN_ENOTSUP for optional methods. */
#ifndef DN_STORE_INTERNAL_H
#define DN_STORE_INTERNAL_H

#include "donut/store.h"
#include "options.h"

struct dn_store {
  const dn_store_ops *ops;
  void *self;
};

static inline int dn__store_get_multi(dn_store *s, const dn_slice *keys,
                                      size_t n, dn_blob **out, uint64_t *seq) {
  return s->ops->get_multi(s->self, keys, n, out, seq);
}
static inline int dn__store_set(dn_store *s, dn_slice key, dn_blob *v,
                                uint64_t ttl_ms, int mode) {
  return s->ops->set(s->self, key, v, ttl_ms, mode);
}
int dn__store_set_multi(dn_store *s, const dn_slice *keys,
                        dn_blob *const *values, size_t n, uint64_t ttl_ms);
static inline int dn__store_del(dn_store *s, dn_slice key) {
  return s->ops->del(s->self, key);
}
static inline int dn__store_seq_get(dn_store *s, uint64_t *out) {
  return s->ops->seq_get(s->self, out);
}
static inline int dn__store_seq_bump(dn_store *s, uint64_t *out) {
  return s->ops->seq_bump(s->self, out);
}
int dn__store_index_add(dn_store *s, dn_slice key, dn_slice member,
                        uint64_t ttl_ms);
int dn__store_index_members(dn_store *s, dn_slice key, dn_strings *out);

/* Reads the caller's memory store options over the defaults in *dst (see
 * options.h); clock_ud is the last field this library knows. */
#define DN__STORE_MEMORY_OPTIONS_READ(dst, src, err)                           \
  DN__OPTIONS_READ(dn_store_memory_options, max_bytes, clock_ud, dst, src, err)

/* A random 64-bit number from the operating system's generator (falls back
 * to a mix of time and address when it is unavailable). */
uint64_t dn__random_u64(void);

#endif
