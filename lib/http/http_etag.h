/* http_etag.h - entity-tag list matching over request fields (internal). */
#ifndef DN_HTTP_ETAG_H
#define DN_HTTP_ETAG_H

#include "donut/http.h"

/* Results of dn__http_etag_fields_match. */
#define DN__ETAG_ABSENT 0 /* no such field */
#define DN__ETAG_NOMATCH 1
#define DN__ETAG_MATCH 2
#define DN__ETAG_STAR 3
#define DN__ETAG_MALFORMED 4

/* Evaluates every field named `name` (If-Match or If-None-Match) of req as
 * one list (RFC 9110 §5.3: lines combine with commas) against `current`
 * (NULL: the representation has no entity-tag), with strong or weak
 * comparison. "*" must stand alone. A malformed line makes the whole field
 * DN__ETAG_MALFORMED, which callers treat as "does not match". */
int dn__http_etag_fields_match(const dn_http_request *req, const char *name,
                               const dn_http_etag *current, int strong);

/* 1 when every byte of s is etagc (RFC 9110 §8.8.3). */
int dn__http_etagc_valid(const char *s, size_t len, size_t *bad);

#endif
