/* buf.c - growable, bounded byte buffers (see buf.h). */
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "donut/common.h"

void dn__buf_init(dn__buf *b, size_t limit) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->limit = limit ? limit : (SIZE_MAX / 2);
  b->borrowed = 0;
}

void dn__buf_init_with(dn__buf *b, char *mem, size_t cap, size_t limit) {
  dn__buf_init(b, limit);
  if (cap) {
    b->data = mem;
    b->cap = cap;
    b->borrowed = 1;
    mem[0] = '\0';
  }
}

void dn__buf_free(dn__buf *b) {
  if (!b->borrowed)
    dn__free(b->data);
  b->borrowed = 0;
  b->data = NULL;
  b->len = b->cap = 0;
}

int dn__buf_reserve(dn__buf *b, size_t n) {
  if (n > b->limit || b->len > b->limit - n)
    return DN_ETOOBIG;
  size_t need = b->len + n + 1; /* room for the NUL */
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = b->borrowed ? dn__malloc(cap) : dn__realloc(b->data, cap);
  if (!p)
    return DN_ENOMEM;
  if (b->borrowed) {
    memcpy(p, b->data, b->len + 1);
    b->borrowed = 0;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int dn__buf_append(dn__buf *b, const void *p, size_t n) {
  int rc = dn__buf_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int dn__buf_append_cstr(dn__buf *b, const char *s) {
  return dn__buf_append(b, s, strlen(s));
}

int dn__buf_append_byte(dn__buf *b, char c) { return dn__buf_append(b, &c, 1); }

int dn__buf_append_u64(dn__buf *b, uint64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return dn__buf_append(b, tmp + i, sizeof tmp - i);
}

char *dn__buf_steal(dn__buf *b, size_t *len_out) {
  char *p;
  if (!b->data || b->borrowed) {
    p = dn__strndup(b->data ? b->data : "", b->len);
    if (!p)
      return NULL;
    b->borrowed = 0;
  } else {
    p = b->data;
  }
  if (len_out)
    *len_out = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

void dn__buf_truncate(dn__buf *b, size_t len) {
  if (len < b->len) {
    b->len = len;
    b->data[len] = '\0';
  }
}
