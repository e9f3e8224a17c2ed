/* http_headers.h - internals of the owned header list (see donut/http.h). */
#ifndef DN_HTTP_HEADERS_H
#define DN_HTTP_HEADERS_H

#include "donut/http.h"

/* Appends without validating (the caller built name and value from
 * checked parts). 0 or DN_ENOMEM; unchanged on failure. */
int dn__http_headers_push(dn_http_headers *h, dn_slice name, dn_slice value);

/* Appends every field of src to dst; on failure dst is unchanged. */
int dn__http_headers_append_all(dn_http_headers *dst,
                                const dn_http_headers *src);

#endif
