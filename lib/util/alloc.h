/* alloc.h - the library's one allocator, replaceable through
 * dn_replace_allocator(). Every allocation in lib/ goes through these. */
#ifndef DN_ALLOC_H
#define DN_ALLOC_H

#include <stddef.h>

void *dn__malloc(size_t n);
void *dn__calloc(size_t count, size_t size);
void *dn__realloc(void *p, size_t n);
void dn__free(void *p);
/* Copies len bytes and appends a NUL; NULL when out of memory. */
char *dn__strndup(const char *s, size_t len);

/* Overwrites n bytes at p with zeros in a way the compiler may not drop
 * (explicit_bzero), for secrets: tokens, passwords, keys and anything
 * that held them. The one way lib/ clears a secret. */
void dn__wipe(void *p, size_t n);
/* Wipes the string s (up to its NUL) and frees it; NULL is a no-op. */
void dn__wipe_free(char *s);

#endif
