/* vec.c - growable arrays (see vec.h). */
#include <string.h>

#include "alloc.h"
#include "donut/common.h"
#include "vec.h"

void dn__vec_init(dn__vec *v, size_t elem_size) {
  v->items = NULL;
  v->len = v->cap = 0;
  v->size = elem_size;
}

int dn__vec_reserve(dn__vec *v, size_t n) {
  if (n <= v->cap)
    return 0;
  size_t cap = v->cap ? v->cap : 4;
  while (cap < n)
    cap *= 2;
  if (cap > SIZE_MAX / v->size)
    return DN_ENOMEM;
  void *p = dn__realloc(v->items, cap * v->size);
  if (!p)
    return DN_ENOMEM;
  v->items = p;
  v->cap = cap;
  return 0;
}

void *dn__vec_push(dn__vec *v) {
  if (dn__vec_reserve(v, v->len + 1))
    return NULL;
  char *slot = (char *)v->items + v->len * v->size;
  memset(slot, 0, v->size);
  v->len++;
  return slot;
}

void dn__vec_free(dn__vec *v) {
  dn__free(v->items);
  v->items = NULL;
  v->len = v->cap = 0;
}
