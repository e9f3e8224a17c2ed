/* blob.h - internals of dn_blob: the layout, and a slot where the engine
 * attaches the decoded form of a value so that repeated hits on the same
 * in-memory blob decode it once. */
#ifndef DN_BLOB_H
#define DN_BLOB_H

#include <stdatomic.h>

#include "donut/store.h"

/* Something decoded from a blob's bytes; freed with the blob. */
typedef struct dn__attached {
  void (*free)(struct dn__attached *self);
} dn__attached;

struct dn_blob {
  atomic_size_t refs;
  _Atomic(dn__attached *) attached;
  size_t len;
  char data[]; /* len bytes, then a NUL */
};

/* Creates a blob with room for len bytes, uninitialised (the NUL is set). */
int dn__blob_alloc(size_t len, dn_blob **out);
/* The decoded form attached to b, or NULL. */
dn__attached *dn__blob_attached(const dn_blob *b);
/* Attaches `a` unless another thread attached first. Returns the attached
 * object that wins; when it is not `a`, the caller frees `a`. */
dn__attached *dn__blob_attach(dn_blob *b, dn__attached *a);

#endif
