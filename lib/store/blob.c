/* blob.c - immutable, reference-counted byte values (see blob.h). */
#include <string.h>

#include "alloc.h"
#include "blob.h"

int dn__blob_alloc(size_t len, dn_blob **out) {
  if (len > SIZE_MAX - sizeof(dn_blob) - 1)
    return DN_ETOOBIG;
  dn_blob *b = dn__malloc(sizeof *b + len + 1);
  if (!b)
    return DN_ENOMEM;
  atomic_init(&b->refs, 1);
  atomic_init(&b->attached, NULL);
  b->len = len;
  b->data[len] = '\0';
  *out = b;
  return 0;
}

int dn_blob_new(const void *data, size_t len, dn_blob **out) {
  if (!out || (!data && len))
    return DN_EINVAL;
  dn_blob *b;
  int rc = dn__blob_alloc(len, &b);
  if (rc)
    return rc;
  if (len)
    memcpy(b->data, data, len);
  *out = b;
  return 0;
}

dn_blob *dn_blob_ref(dn_blob *b) {
  if (b)
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return b;
}

void dn_blob_unref(dn_blob *b) {
  if (!b)
    return;
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
    return;
  dn__attached *a = atomic_load_explicit(&b->attached, memory_order_acquire);
  if (a)
    a->free(a);
  dn__free(b);
}

const char *dn_blob_data(const dn_blob *b) { return b->data; }

size_t dn_blob_len(const dn_blob *b) { return b->len; }

dn__attached *dn__blob_attached(const dn_blob *b) {
  return atomic_load_explicit(&((dn_blob *)b)->attached, memory_order_acquire);
}

dn__attached *dn__blob_attach(dn_blob *b, dn__attached *a) {
  dn__attached *expected = NULL;
  if (atomic_compare_exchange_strong_explicit(&b->attached, &expected, a,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
    return a;
  return expected;
}
