/* upstream.h - one HTTP exchange with the upstream application, for origin
 * mode (see origin.c).
 *
 * An exchange is a blocking libcurl transfer on the calling thread: the
 * engine's renderers are synchronous and run on the server's thread pool,
 * so a transfer that waits there holds no loop. Connections (and DNS
 * answers) are shared by every thread through one libcurl share object, so
 * they are kept alive and reused across renders. Redirects are never
 * followed: a 3xx is the upstream's answer, passed to the client. The
 * environment's proxy settings are ignored, a request that is not
 * idempotent goes on a fresh connection (so it can never be resent), and
 * the bodies of all exchanges in flight share one budget of 256 MiB.
 */
#ifndef DN_ORIGIN_UPSTREAM_H
#define DN_ORIGIN_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "donut/common.h"
#include "donut/http.h"

typedef struct dn__upstream dn__upstream;

typedef struct dn__upstream_limits {
  uint32_t connect_timeout_ms;
  uint32_t first_byte_timeout_ms; /* until the status line arrives */
  uint32_t total_timeout_ms;
  size_t max_body_bytes; /* beyond it the body is kept but marked too big */
} dn__upstream_limits;

/* What came back. Owned by the caller; free with dn__upstream_result_free. */
typedef struct dn__upstream_result {
  int status;
  dn_http_headers *fields; /* the final response's fields, in order */
  dn__buf body;
  int too_big;         /* the body exceeded max_body_bytes */
  dn__upstream *owner; /* whose budget the body counts against */
  size_t accounted;    /* body bytes counted against it */
} dn__upstream_result;

/* Parses "http://HOST[:PORT][/PREFIX]" (https too). Returns 0, DN_ECONFIG
 * with the reason in err, or DN_ENOMEM. */
int dn__upstream_new(const char *url, const dn__upstream_limits *lim,
                     dn__upstream **out, dn_error *err);
void dn__upstream_free(dn__upstream *u);

/* "HOST:PORT" of the upstream, for same-origin checks (borrowed). */
const char *dn__upstream_authority(const dn__upstream *u);
/* The upstream's path prefix ("" or "/app", no trailing '/'; borrowed). */
const char *dn__upstream_prefix(const dn__upstream *u);

/* Sends `method` for `target` (an origin-form "/path?query", appended to the
 * upstream's prefix) with the header lines `fields` ("Name: value", NULL-
 * terminated array; may be NULL) and `body` (sent when body.ptr is not
 * NULL). Returns 0 with the response in *res, DN_ETIMEDOUT (connect,
 * first-byte or total timeout), DN_EUPSTREAM (connection refused or reset,
 * a malformed response, a body far beyond the limit) with the reason in err,
 * or DN_ENOMEM. On failure *res owns nothing. Thread-safe. */
int dn__upstream_exchange(dn__upstream *u, const char *method,
                          const char *target, const char *const *fields,
                          dn_slice body, dn__upstream_result *res,
                          dn_error *err);
void dn__upstream_result_free(dn__upstream_result *res);

#endif
