/* vec.h - a growable array of fixed-size elements.
 *
 * dn__vec_push returns a pointer to a new zeroed slot or NULL when out of
 * memory (the vector is then unchanged).
 */
#ifndef DN_VEC_H
#define DN_VEC_H

#include <stddef.h>

typedef struct dn__vec {
  void *items;
  size_t len;
  size_t cap;
  size_t size; /* bytes per element */
} dn__vec;

void dn__vec_init(dn__vec *v, size_t elem_size);
void *dn__vec_push(dn__vec *v);
/* Makes room for n elements in total. */
int dn__vec_reserve(dn__vec *v, size_t n);
void dn__vec_free(dn__vec *v);
#define DN__VEC_AT(v, type, i) (((type *)(v)->items)[i])

#endif
