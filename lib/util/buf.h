/* buf.h - a growable byte buffer with a hard size limit.
 *
 * Appends either succeed completely or leave the buffer unchanged, so a
 * failed build never leaves half-written output behind. The contents are
 * always NUL-terminated for convenience; the NUL is not counted in len.
 */
#ifndef DN_BUF_H
#define DN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct dn__buf {
  char *data;
  size_t len;
  size_t cap;
  size_t limit; /* 0 = no limit beyond SIZE_MAX/2 */
  int borrowed; /* data is caller storage, not ours to free */
} dn__buf;

void dn__buf_init(dn__buf *b, size_t limit);
/* Starts the buffer in caller storage (for example an array on the stack),
 * so short contents never allocate; growing past it moves to the heap.
 * dn__buf_free is still required. */
void dn__buf_init_with(dn__buf *b, char *mem, size_t cap, size_t limit);
void dn__buf_free(dn__buf *b);
/* Makes room for n more bytes: 0, DN_ENOMEM or DN_ETOOBIG. */
int dn__buf_reserve(dn__buf *b, size_t n);
int dn__buf_append(dn__buf *b, const void *p, size_t n);
int dn__buf_append_cstr(dn__buf *b, const char *s);
int dn__buf_append_byte(dn__buf *b, char c);
int dn__buf_append_u64(dn__buf *b, uint64_t v);
/* Gives up ownership of the bytes (NUL-terminated); the buffer is reset.
 * An empty buffer still returns an allocated "" (or NULL when OOM). */
char *dn__buf_steal(dn__buf *b, size_t *len_out);
/* Shrinks len back to a previous mark (used to undo partial appends). */
void dn__buf_truncate(dn__buf *b, size_t len);

#endif
