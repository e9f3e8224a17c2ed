/* alloc.c - the replaceable allocator, and wiping secrets.
 *
 * The three function pointers start as the C library's. Tests swap them
 * for an allocator that fails the Nth call, to prove that every path
 * returns DN_ENOMEM and leaves no partial state behind.
 *
 * Secrets are wiped with explicit_bzero (glibc, with _DEFAULT_SOURCE), which
 * the compiler may not remove as a dead store the way it may a memset before
 * free. It keeps this layer free of OpenSSL; OPENSSL_cleanse is not used.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "donut/common.h"

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

int dn_replace_allocator(void *(*malloc_fn)(size_t),
                         void *(*realloc_fn)(void *, size_t),
                         void (*free_fn)(void *)) {
  if (!malloc_fn && !realloc_fn && !free_fn) {
    alloc_malloc = malloc;
    alloc_realloc = realloc;
    alloc_free = free;
    return 0;
  }
  if (!malloc_fn || !realloc_fn || !free_fn)
    return DN_EINVAL;
  alloc_malloc = malloc_fn;
  alloc_realloc = realloc_fn;
  alloc_free = free_fn;
  return 0;
}

void *dn__malloc(size_t n) { return alloc_malloc(n ? n : 1); }

void *dn__calloc(size_t count, size_t size) {
  if (size && count > (size_t)-1 / size)
    return NULL;
  void *p = dn__malloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void *dn__realloc(void *p, size_t n) { return alloc_realloc(p, n ? n : 1); }

void dn__free(void *p) {
  if (p)
    alloc_free(p);
}

void dn_free(void *p) { dn__free(p); }

void dn__wipe(void *p, size_t n) {
  if (p && n)
    explicit_bzero(p, n);
}

void dn__wipe_free(char *s) {
  if (s)
    dn__wipe(s, strlen(s));
  dn__free(s);
}

char *dn__strndup(const char *s, size_t len) {
  char *d = dn__malloc(len + 1);
  if (!d)
    return NULL;
  if (len)
    memcpy(d, s, len);
  d[len] = '\0';
  return d;
}
