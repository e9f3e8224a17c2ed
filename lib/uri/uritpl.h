/* uritpl.h - internal entry points of the RFC 6570 URI template module.
 *
 * The public API (include/donut/uritpl.h) takes variables and rows as JSON
 * text. The engine already holds them as jansson values, so these entry
 * points expand against a json_t directly and append to a dn__buf, which
 * saves a round trip through JSON text on every cache fill.
 */
#ifndef DN_URITPL_H
#define DN_URITPL_H

#include <stdbool.h>

#include <jansson.h>

#include "buf.h"
#include "donut/uritpl.h"

/* The longest expansion the public functions produce, in bytes. Longer
 * results fail with DN_ETOOBIG. */
#define DN__URITPL_OUT_MAX ((size_t)1 << 20)

/* Room needed by dn__uritpl_number_text, including the NUL. */
#define DN__URITPL_NUM_MAX 40

/* Expands `tpl` with the members of `vars` and appends the result to `out`.
 * `vars` must be a JSON object, or NULL when every variable is undefined;
 * null members are undefined. The buffer's own limit applies.
 * Returns 0, DN_EINVAL (vars is not an object), DN_ETEMPLATE (an invalid
 * use of a modifier or a value that cannot be expanded, with the byte
 * position of the variable in the template), DN_ETOOBIG or DN_ENOMEM. On
 * failure `out` keeps its previous length. `vars` is only read (no
 * reference is taken); the template may be shared between threads. */
int dn__uritpl_expand_json(const dn_uritpl *tpl, json_t *vars, dn__buf *out,
                           dn_error *err);

/* For each object of the JSON array `rows`, expands `tpl` and computes the
 * URI tag of the result with dn_uri_tag; the tags are returned in row order
 * with duplicates removed (the first occurrence is kept). Errors: DN_EJSON
 * (rows is not an array, or row N is not an object; N is in the message),
 * DN_ETEMPLATE, DN_ETOOBIG (row N's expansion), whatever dn_uri_tag
 * returns (prefixed with the row index in err), DN_ENOMEM. On failure *out
 * is untouched. On success free *out with dn_strings_free. */
int dn__uritpl_tags_from_json(const dn_uritpl *tpl, json_t *rows,
                              dn_strings *out, dn_error *err);

/* Writes the text a JSON number expands to: an integer exactly, a real as
 * the fewest significant digits that read back as the same double, laid
 * out as JSON.stringify does ("37.76", "100", "0.000025", "1e-7",
 * "1e+21"), always with '.' as the decimal point whatever the locale.
 * `num` must be a JSON number. Returns the length written to `out`
 * (NUL-terminated). Thread-safe. */
size_t dn__uritpl_number_text(const json_t *num, char out[DN__URITPL_NUM_MAX]);

/* Shared by uritpl.c and uritpl_rows.c. */

/* Parses JSON text that must be an object (want_array false) or an array
 * (true). Errors: DN_EJSON with jansson's byte position, line and column
 * in err, DN_ENOMEM. On success *out is a new reference. */
int dn__uritpl_load_json(const char *text, size_t len, bool want_array,
                         json_t **out, dn_error *err);

/* Fills err for a failed dn__buf append (DN_ENOMEM or DN_ETOOBIG) at byte
 * `pos`; returns rc. */
int dn__uritpl_buf_fail(dn_error *err, int rc, size_t pos);

#endif /* DN_URITPL_H */
