/* donut/http.h - HTTP semantics: conditional requests, cache headers, CDNs.
 *
 * This is the library's http layer. From a description of a representation
 * (dn_http_repr) and of a request (dn_http_request) it computes the
 * response status (200, 304, 412 or the representation's own), the complete
 * response header list and whether to send the body (dn_http_respond).
 * The pieces are public too: HTTP dates (RFC 9110 §5.6.7), entity-tags and
 * their comparison (§8.8.3), Cache-Control (RFC 9111 §5.2), precondition
 * evaluation (RFC 9110 §13.2.2), header-field validation, the "never store"
 * predicate, and the CDN profiles that turn a closure of tags into the
 * headers a CDN accepts, compacting it when it would not fit (see
 * docs/http.md and docs/cdn.md).
 *
 * Nothing here allocates except where a function says it returns owned
 * memory. Every function is thread-safe: none keeps state between calls.
 */
#ifndef DONUT_HTTP_H
#define DONUT_HTTP_H

#include <stdint.h>

#include "donut/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "No value": an unset time (Last-Modified, expiry) or duration (max-age,
 * s-maxage, ...). Every int64_t field of the structs below uses it. */
#define DN_HTTP_UNSET INT64_MIN

/* ---- header fields --------------------------------------------------- */

/* One header field line: name and value, borrowed. Several fields may have
 * the same name (for example If-None-Match over two lines). */
typedef dn_header dn_http_field; /* the same pair as everywhere else */

/* The longest header name and value the library accepts or emits. */
#define DN_HTTP_NAME_MAX 256
#define DN_HTTP_VALUE_MAX 65536

/* Checks that `name` is a field name: 1 to DN_HTTP_NAME_MAX bytes of RFC
 * 9110 §5.6.2 token characters. Returns 0 or DN_EHEADER with the position
 * of the first bad byte in err (may be NULL). Never allocates. */
DN_EXTERN int dn_http_field_name_validate(const char *name, size_t len,
                                          dn_error *err);

/* Checks that `value` is a field value (RFC 9110 §5.5): at most
 * DN_HTTP_VALUE_MAX bytes of visible ASCII, SP, HTAB or bytes >= 0x80, with
 * no leading or trailing whitespace. CR, LF, NUL and every other control
 * byte are rejected, so a value that passes can never inject a header.
 * Returns 0 or DN_EHEADER (position in err). Never allocates. */
DN_EXTERN int dn_http_field_value_validate(const char *value, size_t len,
                                           dn_error *err);

/* An owned list of header fields, in order. Created empty by
 * dn_http_headers_new(), filled by dn_http_headers_add() (or by
 * dn_http_respond), destroyed by dn_http_headers_free(). Not thread-safe:
 * one list must not be used by two threads at once. */
typedef struct dn_http_headers dn_http_headers;

/* Returns a new empty list, or NULL when out of memory. */
DN_EXTERN dn_http_headers *dn_http_headers_new(void);

/* Frees the list and every field in it. NULL is a no-op. */
DN_EXTERN void dn_http_headers_free(dn_http_headers *h);

/* Appends a copy of `name: value` after validating both (see the two
 * validators above). Returns 0, DN_EHEADER (err says which byte) or
 * DN_ENOMEM; on failure the list is unchanged. */
DN_EXTERN int dn_http_headers_add(dn_http_headers *h, dn_slice name,
                                  dn_slice value, dn_error *err);

/* The number of fields in the list (0 for NULL). */
DN_EXTERN size_t dn_http_headers_count(const dn_http_headers *h);

/* Field i (0-based; i < count). The slices are borrowed from the list and
 * stay valid until the list is modified or freed. Their bytes are not
 * NUL-terminated. An index out of range gives two empty slices. */
DN_EXTERN dn_http_field dn_http_headers_at(const dn_http_headers *h, size_t i);

/* Finds the first field named `name` (compared case-insensitively) and
 * sets *value to its value (borrowed, as above). Returns 0 or
 * DN_ENOTFOUND. */
DN_EXTERN int dn_http_headers_get(const dn_http_headers *h, const char *name,
                                  dn_slice *value);

/* ---- HTTP dates (RFC 9110 §5.6.7) --------------------------------------- */

/* Length of an IMF-fixdate such as "Sun, 06 Nov 1994 08:49:37 GMT". */
#define DN_HTTP_DATE_LEN 29

/* Parses an HTTP-date in any of the three formats: IMF-fixdate, the
 * obsolete RFC 850 format ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
 * ("Sun Nov  6 08:49:37 1994"). The date is case-sensitive; surrounding
 * spaces and tabs are ignored. A two-digit RFC 850 year that would be more
 * than 50 years after `now` (unix seconds) is taken as the most recent past
 * year with those digits (§5.6.7). The day name is checked for spelling,
 * not against the date. On success *out is the time in unix seconds.
 * Returns 0 or DN_EHEADER (position and reason in err); *out is untouched
 * on failure. Never allocates. */
DN_EXTERN int dn_http_date_parse(const char *s, size_t len, int64_t now,
                                 int64_t *out, dn_error *err);

/* Formats unix time `t` as an IMF-fixdate into out (DN_HTTP_DATE_LEN bytes
 * plus a NUL). Returns 0, or DN_ERANGE when the year is outside 0-9999. */
DN_EXTERN int dn_http_date_format(int64_t t, char out[DN_HTTP_DATE_LEN + 1]);

/* ---- entity-tags (RFC 9110 §8.8.3) ----------------------------------- */

/* An entity-tag: its opaque-tag without the double quotes, and whether it
 * is weak (W/ prefix). `opaque` is borrowed from the parsed input. */
typedef struct dn_http_etag {
  dn_slice opaque;
  int weak;
} dn_http_etag;

/* Parses one entity-tag (`"xyzzy"`, `W/"xyzzy"`, `""`), ignoring
 * surrounding whitespace. Returns 0 or DN_EHEADER. Never allocates. */
DN_EXTERN int dn_http_etag_parse(const char *s, size_t len, dn_http_etag *out,
                                 dn_error *err);

/* Parses a field value of If-Match / If-None-Match: either "*" or a
 * comma-separated list of entity-tags, with optional whitespace and empty
 * elements (RFC 9110 §5.6.1). On success *star says whether it was "*",
 * *count is the number of tags in the list (which may exceed cap) and the
 * first min(count, cap) are stored in tags (may be NULL when cap is 0).
 * Returns 0 or DN_EHEADER (nothing useful is stored then). Never
 * allocates. */
DN_EXTERN int dn_http_etag_list_parse(const char *s, size_t len,
                                      dn_http_etag *tags, size_t cap,
                                      size_t *count, int *star, dn_error *err);

/* Compares two entity-tags (RFC 9110 §8.8.3.2). Strong comparison (strong
 * != 0) matches only when neither is weak and the opaque-tags are equal;
 * weak comparison matches when the opaque-tags are equal. Returns 1 or 0. */
DN_EXTERN int dn_http_etag_match(dn_http_etag a, dn_http_etag b, int strong);

/* The longest opaque-tag dn_http_respond accepts, in bytes. */
#define DN_HTTP_ETAG_MAX 1024

/* Formats `tag` as it appears in an ETag field (`"x"` or `W/"x"`) into out
 * (cap bytes, NUL-terminated); *len (may be NULL) gets its length. Returns
 * 0, DN_EHEADER when the opaque-tag has a byte etagc does not allow, or
 * DN_ETOOBIG when out is too small. */
DN_EXTERN int dn_http_etag_format(dn_http_etag tag, char *out, size_t cap,
                                  size_t *len);

/* ---- Cache-Control (RFC 9111 §5.2) --------------------------------------- */

/* Flags of dn_http_cc. */
#define DN_HTTP_CC_NO_STORE 0x0001u
#define DN_HTTP_CC_NO_CACHE 0x0002u /* also no-cache="field" */
#define DN_HTTP_CC_PRIVATE 0x0004u  /* also private="field" */
#define DN_HTTP_CC_PUBLIC 0x0008u
#define DN_HTTP_CC_MUST_REVALIDATE 0x0010u
#define DN_HTTP_CC_PROXY_REVALIDATE 0x0020u
#define DN_HTTP_CC_NO_TRANSFORM 0x0040u
#define DN_HTTP_CC_IMMUTABLE 0x0080u
#define DN_HTTP_CC_MUST_UNDERSTAND 0x0100u

/* The response directives donut understands. Durations are seconds or
 * DN_HTTP_UNSET. Unknown directives are ignored (RFC 9111 §5.2.3): they are
 * checked for syntax by the parser and not kept. */
typedef struct dn_http_cc {
  unsigned flags;
  int64_t max_age;
  int64_t s_maxage;
  int64_t stale_while_revalidate;
  int64_t stale_if_error;
} dn_http_cc;

/* Sets every duration of cc to DN_HTTP_UNSET and clears the flags. */
DN_EXTERN void dn_http_cc_init(dn_http_cc *cc);

/* Parses a Cache-Control field value into cc, which the caller has
 * initialised (call it once per field line to merge several lines). Names
 * are case-insensitive; both `max-age=5` and `max-age="5"` are accepted;
 * values beyond 2^31 are taken as 2^31 (RFC 9111 §1.2.2); a repeated
 * duration keeps the smaller value; a known duration with a missing or
 * non-numeric value counts as 0. Returns 0 or DN_EHEADER for a value that
 * is not a list of `token [ "=" ( token / quoted-string ) ]`, with the
 * position in err; cc is unchanged on failure. Never allocates. */
DN_EXTERN int dn_http_cc_parse(const char *s, size_t len, dn_http_cc *cc,
                               dn_error *err);

/* The longest output of dn_http_cc_format, NUL excluded. */
#define DN_HTTP_CC_MAX 240

/* Formats cc as a Cache-Control field value, directives separated by ", "
 * in a fixed order. The output is also a valid RFC 8941 dictionary, so it
 * serves the CDN-Cache-Control family of fields (RFC 9213). Negative
 * durations are written as 0 and durations above 2^31 as 2^31. An empty cc
 * gives "". out must have DN_HTTP_CC_MAX + 1 bytes; *len may be NULL.
 * Never fails. */
DN_EXTERN void dn_http_cc_format(const dn_http_cc *cc,
                                 char out[DN_HTTP_CC_MAX + 1], size_t *len);

/* ---- requests and preconditions (RFC 9110 §13) ----------------------- */

/* A request as far as this layer cares: its method (case-sensitive, as in
 * RFC 9110 §9.1) and its header fields (names may repeat). Borrowed. */
typedef struct dn_http_request {
  dn_slice method;
  const dn_http_field *fields;
  size_t field_count;
} dn_http_request;

/* Evaluates the request's preconditions against the selected
 * representation in the order of RFC 9110 §13.2.2: If-Match (strong
 * comparison), If-Unmodified-Since, If-None-Match (weak comparison),
 * If-Modified-Since (GET and HEAD only, ignored when If-None-Match is
 * present). `etag` is the current entity-tag or NULL when the
 * representation has none; `last_modified` is unix seconds or
 * DN_HTTP_UNSET; `now` serves the two-digit-year rule of RFC 850 dates.
 * A malformed list never matches; an invalid date is ignored. Range and
 * If-Range are not evaluated (donut never sends 206). Returns 200 (perform
 * the method), 304 (Not Modified, GET/HEAD only) or 412 (Precondition
 * Failed). The caller applies §13.2.1: preconditions only count when the
 * response would otherwise be 2xx, and never for CONNECT, OPTIONS or
 * TRACE (dn_http_respond does both). Never allocates. */
DN_EXTERN int dn_http_preconditions(const dn_http_request *req,
                                    const dn_http_etag *etag,
                                    int64_t last_modified, int64_t now);

/* Evaluates an If-Range field value (RFC 9110 §13.1.5) against the current
 * validators: an entity-tag must match strongly, a date must equal
 * last_modified exactly. Returns 1 when a Range request may be honoured,
 * 0 otherwise (including malformed values and weak tags). */
DN_EXTERN int dn_http_if_range(const char *value, size_t len,
                               const dn_http_etag *etag, int64_t last_modified,
                               int64_t now);

/* ---- CDN profiles (see docs/cdn.md) ---------------------------------- */

/* Which CDN receives the responses; decides the CDN header fields, their
 * limits and the default CDN lifetime. */
typedef enum dn_cdn_profile {
  DN_CDN_NONE = 0,   /* no CDN headers; s-maxage in Cache-Control */
  DN_CDN_GENERIC,    /* CDN-Cache-Control (RFC 9213) + Surrogate-Key */
  DN_CDN_FASTLY,     /* Surrogate-Control + Surrogate-Key */
  DN_CDN_AKAMAI,     /* Akamai-Cache-Control + Edge-Cache-Tag */
  DN_CDN_CLOUDFLARE, /* Cloudflare-CDN-Cache-Control + Cache-Tag */
  DN_CDN_VARNISH,    /* xkey; s-maxage in Cache-Control */
  DN_CDN_BUNNY,      /* CDN-Tag; s-maxage in Cache-Control */
  DN_CDN_RFC9875     /* CDN-Cache-Control + Cache-Groups (RFC 9875) */
} dn_cdn_profile;

/* The default CDN lifetimes: one year when the CDN purges by tag, ten
 * seconds otherwise (the reference behaviour of BEAR.Sunday). */
#define DN_CDN_TTL_PURGEABLE 31536000
#define DN_CDN_TTL_DEFAULT 10

/* Parses a profile name ("none", "generic", "fastly", "akamai",
 * "cloudflare", "varnish", "bunny", "rfc9875"; case-insensitive). Returns
 * 0 or DN_EINVAL (out untouched). */
DN_EXTERN int dn_cdn_profile_parse(const char *name, size_t len,
                                   dn_cdn_profile *out);

/* The lower-case name of a profile ("unknown" for a bad value). */
DN_EXTERN const char *dn_cdn_profile_name(dn_cdn_profile p);

/* 1 when the profile's CDN purges by tag (fastly, akamai, cloudflare,
 * varnish with xkey, bunny), else 0. */
DN_EXTERN int dn_cdn_purges_by_tag(dn_cdn_profile p);

/* The CDN lifetime used when a resource gives neither s-maxage nor an
 * absolute expiry: DN_CDN_TTL_PURGEABLE or DN_CDN_TTL_DEFAULT. */
DN_EXTERN int64_t dn_cdn_default_ttl(dn_cdn_profile p);

/* What a profile emits and the limits it keeps (see docs/cdn.md for the
 * sources). Names are static strings; NULL when the profile has no such
 * field. */
typedef struct dn_cdn_limits {
  const char *tag_field; /* e.g. "Surrogate-Key" */
  const char *ttl_field; /* e.g. "Surrogate-Control"; NULL: s-maxage */
  char separator;        /* ' ' or ',' between tags */
  int sf_strings;        /* 1: tags are RFC 8941 Strings ("a", "b") */
  size_t max_tags;       /* most keys in the field; 0 = no count limit */
  size_t max_tag_len;    /* longest key in bytes */
  size_t max_value_len;  /* longest field value in bytes */
} dn_cdn_limits;

/* Fills *out with the profile's fields and limits. Returns 0 or DN_EINVAL
 * for an unknown profile. */
DN_EXTERN int dn_cdn_limits_get(dn_cdn_profile p, dn_cdn_limits *out);

/* Checks that `tag` may be used as a surrogate key; the same rule as
 * dn_tag_validate (donut/uri.h): 1 to DN_TAG_MAX (1024) bytes of printable
 * ASCII (0x21-0x7E) other than '"', ',', '=' and '\\'. Returns 0 or DN_ETAG
 * with the position in err. */
DN_EXTERN int dn_cdn_tag_validate(const char *tag, size_t len, dn_error *err);

/* Appends to `out` the profile's tag field for the closure `tags` (n
 * slices; duplicates are dropped). When the tags fit the profile's limits
 * they are emitted as they are, except that a tag too long for the profile
 * or using a character it forbids is replaced by its hashed form
 * "dh-<16 hex>". When they do not fit, the field carries the bucket keys
 * "dk<L>-<hex>" of the finest level L that fits; dn_cdn_purge_keys always
 * reaches such a page. Appends nothing when n is 0 or the profile has no
 * tag field. Returns 0, DN_ETAG (a tag fails dn_cdn_tag_validate; err's
 * text starts "tag <index>:" and `position` is the bad byte in that tag),
 * DN_EINVAL (unknown profile) or DN_ENOMEM; `out` is unchanged on
 * failure. Thread-safe; `out` must not be used by another thread. */
DN_EXTERN int dn_cdn_tag_fields(dn_cdn_profile p, const dn_slice *tags,
                                size_t n, dn_http_headers *out, dn_error *err);

/* The keys a purger must send to the profile's CDN to purge `tags`: for
 * each tag its emitted form (the tag or its hashed form) and its bucket key
 * at every level, duplicates removed. Every page whose closure contains one
 * of the tags carries at least one of these keys, whatever level its
 * header used (a purge may reach a few more pages, never fewer). On
 * success *keys is one owned block holding the *count slices and their
 * bytes (free it with dn_free); *keys is NULL when *count is 0. Returns 0,
 * DN_ETAG, DN_EINVAL or DN_ENOMEM (outputs untouched). */
DN_EXTERN int dn_cdn_purge_keys(dn_cdn_profile p, const dn_slice *tags,
                                size_t n, dn_slice **keys, size_t *count,
                                dn_error *err);

/* ---- responses --------------------------------------------------------- */

/* Flags of dn_http_repr. */
#define DN_HTTP_NO_STORE 0x01u  /* no cache may store it */
#define DN_HTTP_PRIVATE 0x02u   /* only the client's own cache may */
#define DN_HTTP_NO_CACHE 0x04u  /* clients revalidate on every use */
#define DN_HTTP_WEAK_ETAG 0x08u /* the ETag is weak (W/) */
/* The application accepts that a response carrying Set-Cookie is cached.
 * Without it such a response is treated as private. */
#define DN_HTTP_ALLOW_SET_COOKIE 0x10u

/* A representation, as the engine describes it to the http layer. Fill it
 * with dn_http_repr_init() first: every time and duration then reads
 * DN_HTTP_UNSET. Every pointer is borrowed for the duration of the call. */
typedef struct dn_http_repr {
  int status;                  /* the representation's status; 200 */
  const dn_http_field *fields; /* the renderer's own header fields */
  size_t field_count;
  dn_slice etag;         /* opaque-tag without quotes; len 0 = none;
                            at most DN_HTTP_ETAG_MAX bytes of etagc */
  int64_t last_modified; /* unix seconds */
  int64_t stored_at;     /* when it was stored, for Age */
  int64_t now;           /* the injected clock; required */
  const dn_slice *tags;  /* closure tags (surrogate keys) */
  size_t tag_count;
  int64_t max_age;  /* client lifetime; unset means 0 */
  int64_t s_maxage; /* CDN lifetime; unset: see expires_at */
  int64_t stale_while_revalidate;
  int64_t stale_if_error;
  int64_t expires_at;   /* absolute expiry (adaptive TTL), unix s */
  unsigned flags;       /* DN_HTTP_NO_STORE, ... */
  const dn_slice *vary; /* Vary field names */
  size_t vary_count;
  /* Optional: the profile's tag fields for `tags`, computed earlier with
   * dn_cdn_tag_fields for the same profile (a view's closure never changes,
   * so they can be computed once). When set they are copied as they are and
   * the tags are not checked again. NULL computes them. */
  const dn_http_headers *cdn_tag_fields;
} dn_http_repr;

/* Zeroes r, sets status 200 and every time and duration to DN_HTTP_UNSET.
 * `now` still has to be set. */
DN_EXTERN void dn_http_repr_init(dn_http_repr *r);

/* What to send. `headers` is owned: free the whole result with
 * dn_http_result_free. */
typedef struct dn_http_result {
  int status;
  int send_body; /* 0 for HEAD, 304, 412, 204 and 1xx */
  dn_http_headers *headers;
} dn_http_result;

/* Computes the response to `req` for `repr` under CDN profile `cdn`:
 *  - the status: the representation's own, unless it is 2xx and the
 *    request's preconditions give 304 or 412 (dn_http_preconditions);
 *  - the headers: the renderer's fields, then Date, Age (when stored_at is
 *    set), ETag, Last-Modified (never later than now), Cache-Control,
 *    Expires (when expires_at is set), Vary and the profile's CDN fields
 *    (dn_cdn_tag_fields). A 304 keeps only the fields RFC 9110 §15.4.5
 *    lists (ETag, Cache-Control, Vary, Date, Expires, Content-Location,
 *    Last-Modified when there is no ETag) plus Age and the CDN fields; a
 *    412 carries only Date.
 * Lifetimes: the client gets max-age (or the time left until expires_at,
 * else 0); the CDN gets s_maxage, else the time left until expires_at, else
 * dn_cdn_default_ttl(cdn). private and no-store responses (including those
 * with Set-Cookie, unless DN_HTTP_ALLOW_SET_COOKIE) get no CDN fields. A
 * Cache-Control field among the renderer's fields is merged (flags add up,
 * the shorter lifetime wins); its Vary is merged; its Date, Age, ETag,
 * Last-Modified, Expires and CDN fields are replaced.
 * Returns 0, DN_EHEADER (a renderer field, the ETag or a Vary name is
 * invalid), DN_ETAG (a closure tag), DN_EINVAL (no now, bad status or
 * profile) or DN_ENOMEM, with the reason in err; *out is untouched on
 * failure. */
DN_EXTERN int dn_http_respond(const dn_http_repr *repr,
                              const dn_http_request *req, dn_cdn_profile cdn,
                              dn_http_result *out, dn_error *err);

/* Appends only the caching fields a 200 response to `repr` would carry
 * under `cdn`: Cache-Control, Expires and the CDN fields (what `donut
 * headers` prints). Same errors as dn_http_respond; `out` is unchanged on
 * failure. */
DN_EXTERN int dn_http_cache_fields(const dn_http_repr *repr, dn_cdn_profile cdn,
                                   dn_http_headers *out, dn_error *err);

/* Frees the result's headers and zeroes it. NULL is a no-op. */
DN_EXTERN void dn_http_result_free(dn_http_result *r);

/* Says whether a response with these header fields may be stored by the
 * engine: 0 when a Cache-Control field says no-store or private (also in
 * their qualified forms) or cannot be parsed, when Vary is "*", or when a
 * Set-Cookie field is present and `flags` lacks DN_HTTP_ALLOW_SET_COOKIE;
 * otherwise 1. `flags` may also carry DN_HTTP_NO_STORE or
 * DN_HTTP_PRIVATE, which give 0. Never allocates. */
DN_EXTERN int dn_http_storable(const dn_http_field *fields, size_t n,
                               unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* DONUT_HTTP_H */
