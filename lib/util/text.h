/* text.h - small text helpers every layer shares: hex digits,
 * percent-decoding and log lines, one copy of each so that a fix reaches
 * every caller.
 *
 * Where callers used to differ (upper- or lower-case hex, which digits
 * count, what '+' means, whether a stray '%' is an error), the difference
 * is a flag, so each keeps its behaviour. Only dn__percent_decode
 * allocates, and only through its dn__buf.
 */
#ifndef DN_TEXT_H
#define DN_TEXT_H

#include <stdarg.h>
#include <stddef.h>

#include "buf.h"

/* ---- hex ------------------------------------------------------------------
 * Flags for the hex helpers. */
#define DN__HEX_UPPER 1u      /* encode with A-F rather than a-f */
#define DN__HEX_LOWER_ONLY 2u /* decode: A-F is not a digit */

/* Writes the 2 * n hex digits of in[0, n) at out, the high nibble of each
 * byte first, in lower case unless flags has DN__HEX_UPPER. Writes no NUL.
 * Returns 2 * n, so callers can write `o += dn__hex_encode(...)`. */
size_t dn__hex_encode(char *out, const void *in, size_t n, unsigned flags);

/* The value (0 to 15) of the hex digit c, or -1 when c is none: '0'-'9',
 * 'a'-'f' and 'A'-'F', without 'A'-'F' when flags has DN__HEX_LOWER_ONLY.
 * c is a char or an unsigned char; anything outside ASCII is no digit. */
int dn__hex_value(int c, unsigned flags);

/* Decodes the n hex digits at s into n / 2 bytes at out (flags as for
 * dn__hex_value). Returns 0, or DN_EINVAL when n is odd or a byte is not
 * a digit; out is then untouched. */
int dn__hex_decode(void *out, const char *s, size_t n, unsigned flags);

/* Shows byte c in an error message: "'c'" when it is printable ASCII, else
 * "0xXX" in upper-case hex. Writes buf and returns it. */
const char *dn__byte_show(char c, char buf[8]);

/* ---- percent-decoding -----------------------------------------------------
 * Flags for dn__percent_decode. */
#define DN__PCT_PLUS_SPACE 1u /* '+' is a space (HTML forms), else itself */
#define DN__PCT_KEEP_BAD 2u   /* a '%' that starts no escape is itself */

/* RFC 3986 §2.1: appends the decoding of s[0, n) to out. Each "%XX" (hex
 * digits of either case) becomes the byte XX, "%00" included, so out may
 * hold NUL bytes. A '%' not followed by two hex digits is malformed:
 * DN_EURI, or with DN__PCT_KEEP_BAD it stands for itself and decoding goes
 * on at the byte after it. Returns 0, DN_EURI, or DN_ENOMEM / DN_ETOOBIG
 * when out cannot take n more bytes (the decoding is never longer than s).
 * On failure out is unchanged. */
int dn__percent_decode(const char *s, size_t n, unsigned flags, dn__buf *out);

/* ---- formatting and log lines --------------------------------------------
 * Formats into out[cap] (cap > 0) what vsnprintf would, cut to cap - 1
 * bytes and always NUL-terminated (on an encoding error, what came before
 * it). Returns the length of out. Never allocates. */
size_t dn__vformat(char *out, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The log callback of the options structs (DN_LOG_* levels). */
typedef void (*dn__log_fn)(void *ud, int level, const char *msg);

#define DN__LOG_LINE_MAX 1024 /* the largest cap of dn__log_emit */

/* Formats a line of at most cap - 1 bytes (cap is at most DN__LOG_LINE_MAX;
 * longer lines are cut) on the stack and passes it to cb with ud and level.
 * Does nothing when cb is NULL. Never allocates. */
void dn__log_emit(dn__log_fn cb, void *ud, int level, size_t cap,
                  const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

#endif
