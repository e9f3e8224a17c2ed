/* error.h - helpers that fill a dn_error without allocating. */
#ifndef DN_ERROR_H
#define DN_ERROR_H

#include "donut/common.h"

/* Fills err (when not NULL) with code, position and a formatted message,
 * and returns code so callers can write `return dn__error_set(...)`. */
int dn__error_set(dn_error *err, int code, size_t position, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

/* Clears err to "no error". */
void dn__error_clear(dn_error *err);

#endif
