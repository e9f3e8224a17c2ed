/* donut/uritpl.h - RFC 6570 URI templates, level 4, and tags from rows.
 *
 * A template such as "app://self/item{?id}" is parsed once into a
 * dn_uritpl and can then be expanded many times against variables given as
 * a JSON object. dn_uri_tags_from_rows applies a template to each object of
 * a JSON array and returns the URI tags of the expansions (BEAR.Sunday's
 * fromAssoc).
 */
#ifndef DONUT_URITPL_H
#define DONUT_URITPL_H

#include "donut/common.h"
#include "donut/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest template accepted, in bytes. */
#define DN_URITPL_MAX 8192

typedef struct dn_uritpl dn_uritpl;

/* Parses a template. On success *out is an owned template (free with
 * dn_uritpl_free). Invalid templates return DN_ETEMPLATE with the byte
 * position and reason in err; *out is left untouched. Thread-safe. */
DN_EXTERN int dn_uritpl_parse(const char *tpl, size_t len, dn_uritpl **out,
                              dn_error *err);

/* Frees a template; NULL is a no-op. */
DN_EXTERN void dn_uritpl_free(dn_uritpl *tpl);

/* Expands a parsed template with variables given as the text of a JSON
 * object; vars_json may be NULL, and then every variable is undefined.
 * Strings, numbers, booleans, arrays (lists) and objects (associative
 * arrays) are supported; null and missing variables are undefined. Numbers
 * are expanded from their shortest round-trip text laid out as JavaScript's
 * JSON.stringify does, so 37.76 stays "37.76" and 100.0 becomes "100".
 * On success *out is an owned NUL-terminated string (free with dn_free).
 * Errors: DN_EJSON (bad JSON, position in err), DN_ETEMPLATE (an invalid
 * use of a modifier, such as a prefix on a list), DN_ETOOBIG (an expansion
 * over 1 MiB), DN_EINVAL (NULL arguments), DN_ENOMEM. No partial output on
 * failure. A template may be shared by threads. */
DN_EXTERN int dn_uritpl_expand(const dn_uritpl *tpl, const char *vars_json,
                               size_t vars_len, char **out, size_t *out_len,
                               dn_error *err);

/* Parses and expands in one call. */
DN_EXTERN int dn_uritpl_expand_str(const char *tpl, size_t tpl_len,
                                   const char *vars_json, size_t vars_len,
                                   char **out, size_t *out_len, dn_error *err);

/* For each object in the JSON array `rows_json`, expands `tpl` with the
 * object's members as variables and computes the URI tag of the result.
 * The tags are returned in row order with duplicates removed (the first
 * occurrence is kept). rows_json must be an array of objects. On success
 * *out is filled (free with dn_strings_free); on failure it is untouched
 * and err names the failing row or position: DN_EJSON for text that is not
 * JSON or rows that are not objects ("rows[N] ..."), DN_ETEMPLATE, or the
 * error of dn_uri_tag prefixed with the row. */
DN_EXTERN int dn_uri_tags_from_rows(const char *tpl, size_t tpl_len,
                                    const char *rows_json, size_t rows_len,
                                    dn_strings *out, dn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_URITPL_H */
