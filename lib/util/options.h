/* options.h - filling and reading the public options structs, whose first
 * member is their size.
 *
 * Every public *_options struct starts with `size_t size`. Its
 * *_options_init macro passes the sizeof the program was compiled with to
 * a *_options_init_size function of the library, which writes the
 * library's defaults into the bytes the program has (never more) and
 * stores that size. A function that reads the options starts from its own
 * defaults and copies the program's bytes over them:
 *  - an older program's struct is shorter: the fields it lacks keep the
 *    defaults;
 *  - a newer program's struct is longer: it is accepted when every byte
 *    past the fields this library knows is zero (the newer fields are
 *    unset), and refused with DN_EINVAL otherwise, because the library
 *    cannot do what they ask;
 *  - a size of 0, one smaller than the first field's end, one that is not
 *    a multiple of the alignment of size_t or one above
 *    DN__OPTIONS_MAX_SIZE cannot be the sizeof of any version of the
 *    struct: the struct was not initialised with its *_options_init, and
 *    it is refused with DN_EINVAL.
 */
#ifndef DN_OPTIONS_H
#define DN_OPTIONS_H

#include <stddef.h>
#include <string.h>

#include "donut/common.h"
#include "error.h"

/* No options struct will ever be this large; a larger size is garbage. */
#define DN__OPTIONS_MAX_SIZE ((size_t)4096)

/* The offset just past `field` of `type`. */
#define DN__OPTIONS_END(type, field)                                           \
  (offsetof(type, field) + sizeof(((type *)0)->field))

/* Writes the defaults `def` (def_size bytes, the library's struct) into
 * the caller's struct of `size` bytes: the bytes it shares with the
 * library's struct get the defaults, any further bytes zero, and its size
 * member `size`. A size too small to hold the size member does nothing. */
static inline void dn__options_init(void *opts, size_t size, const void *def,
                                    size_t def_size) {
  if (!opts || size < sizeof(size_t) || size > DN__OPTIONS_MAX_SIZE)
    return;
  memcpy(opts, def, size < def_size ? size : def_size);
  if (size > def_size)
    memset((char *)opts + def_size, 0, size - def_size);
  memcpy(opts, &size, sizeof size);
}

/* Copies the caller's options `src` over `dst`, which holds the library's
 * defaults in its def_size bytes. `first_end` is the end of the first
 * field after size and `known_end` the end of the last field this library
 * knows. Returns 0, or DN_EINVAL with err (may be NULL) naming `what` and
 * the reason; dst is then untouched. dst's size becomes def_size. */
static inline int dn__options_read(void *dst, size_t def_size, const void *src,
                                   size_t first_end, size_t known_end,
                                   const char *what, dn_error *err) {
  size_t n;
  memcpy(&n, src, sizeof n);
  if (n == 0)
    return dn__error_set(err, DN_EINVAL, 0,
                         "%s: size is 0 (initialise it with %s_init)", what,
                         what);
  if (n < first_end || n % _Alignof(size_t) || n > DN__OPTIONS_MAX_SIZE)
    return dn__error_set(err, DN_EINVAL, 0,
                         "%s: size %zu is not the size of any version of it "
                         "(initialise it with %s_init)",
                         what, n, what);
  const unsigned char *p = src;
  for (size_t i = known_end; i < n; i++)
    if (p[i])
      return dn__error_set(err, DN_EINVAL, 0,
                           "%s: sets fields this libdonut does not know "
                           "(byte %zu of %zu; it knows %zu): the program "
                           "needs a newer libdonut",
                           what, i, n, known_end);
  memcpy(dst, src, n < def_size ? n : def_size);
  memcpy(dst, &def_size, sizeof def_size);
  return 0;
}

/* Fails to compile unless `last` ends within the trailing padding of
 * `type`: naming a field that is no longer the last one (a field was added
 * after it) is caught, unless the new field fits in that padding (then the
 * reader refuses it as unknown whenever it is set, so its first test
 * fails). */
#define DN__OPTIONS_CHECK_LAST(type, last)                                     \
  ((void)sizeof(struct {                                                       \
    _Static_assert(sizeof(type) - DN__OPTIONS_END(type, last) <                \
                       _Alignof(type),                                         \
                   #type ": " #last " is not its last field");                 \
    int dn__unused;                                                            \
  }))

/* dn__options_read for a struct `type` whose first option is `first` and
 * whose last option is `last`. */
#define DN__OPTIONS_READ(type, first, last, dst, src, err)                     \
  (DN__OPTIONS_CHECK_LAST(type, last),                                         \
   dn__options_read((dst), sizeof(type), (src), DN__OPTIONS_END(type, first),  \
                    DN__OPTIONS_END(type, last), #type, (err)))

#endif
