/* text.h - small text helpers every layer shares: hex digits, and the
 * one copy of each so that a fix reaches every caller.
 *
 * Where callers used to differ (upper- or lower-case hex, which digits
 * count), the difference is a flag, so each keeps its behaviour. None of
 * these allocate.
 */
#ifndef DN_TEXT_H
#define DN_TEXT_H

#include <stddef.h>

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

#endif
