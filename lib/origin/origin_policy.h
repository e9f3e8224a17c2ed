/* origin_policy.h - how origin mode caches an upstream response.
 *
 * In origin mode (`donut serve --upstream URL`) every request URI is a
 * resource whose renderer fetches it from the upstream application.
 * dn__origin_policy_read looks at the upstream response's status and header
 * fields and decides whether the engine may store it, for how long, with
 * which tags and Vary names, and whether its body is ESI. It is a pure
 * function: the clock is an argument, nothing is kept between calls, and
 * it is thread-safe.
 *
 * The rules, applied in this order; the first that refuses storage names
 * itself in `why`:
 *
 *  1. Status (RFC 9110 §15, RFC 9111 §3). 1xx, 206, 304 and codes outside
 *     100-599 are never stored ("status not storable"): they are not a
 *     complete representation. 5xx is never stored ("status 5xx"), not
 *     even 501: nothing is cached from an error. The statuses RFC 9110
 *     §15.1 calls heuristically cacheable (200, 203, 204, 300, 301, 308,
 *     405, 410, 414) may take opts.default_ttl_s; 404 is left out of that
 *     list on purpose: a missing page that the application creates a
 *     moment later must not stay hidden for a default lifetime, so a 404 is
 *     stored only with explicit freshness (or `public`, see 9). Any other
 *     status (302, 307, 403, ...) is stored only with explicit freshness
 *     or `public` (RFC 9111 §3, §4.2.2).
 *  2. A Cache-Control field that does not parse (dn_http_cc_parse) refuses
 *     storage ("unparseable Cache-Control"): it might have said no-store.
 *     The same holds for Surrogate-Control ("unparseable
 *     Surrogate-Control").
 *  3. Cache-Control no-store (RFC 9111 §5.2.2.5), Surrogate-Control
 *     no-store (Edge Architecture §2.2.1) and Cache-Control private
 *     (RFC 9111 §5.2.2.7, also private="field") refuse storage. Surrogate-
 *     Control cannot lift them: a leaked private page is worse than a miss.
 *  4. Any Set-Cookie field refuses storage ("Set-Cookie"): a stored cookie
 *     would be handed to every visitor.
 *  5. Vary (RFC 9110 §12.5.5): "*" refuses storage ("Vary: *", RFC 9111
 *     §4.1); a member that is not a field name ("unparseable Vary") or more
 *     than DN__ORIGIN_MAX_VARY distinct names ("too many Vary names") too.
 *  6. Credentials (RFC 9111 §3.5). When the request carried Cookie or
 *     Authorization, the response is stored only when it says it may be
 *     shared: Cache-Control public or s-maxage, or a Surrogate-Control
 *     max-age (a directive only surrogates read is as explicit a "store
 *     this" as s-maxage). RFC 9111 §3.5 also accepts must-revalidate for
 *     Authorization; donut does not, because the rule here covers cookies
 *     too and must-revalidate often sits on per-visitor pages.
 *     ("credentials without public or s-maxage")
 *  7. Cache-Control no-cache (RFC 9111 §5.2.2.4, also no-cache="field")
 *     refuses storage, because the engine does not revalidate on every
 *     use, unless Surrogate-Control gives a max-age: "no-cache for
 *     browsers, a long max-age for the CDN" is the documented use of
 *     Surrogate-Control.
 *  8. Lifetime, the first of (RFC 9111 §4.2.1, Fastly's documented order):
 *       Surrogate-Control max-age, Cache-Control s-maxage, Cache-Control
 *       max-age, Expires minus Date (minus now_s when Date is absent or
 *       invalid, RFC 9110 §6.6.1).
 *     An Expires that is not one valid HTTP-date means "already expired"
 *     (RFC 9111 §5.3) ("invalid Expires"). The lifetime minus the Age field
 *     (RFC 9111 §4.2.3; an invalid Age counts as 0) is ttl_s; 0 or less
 *     refuses storage ("expired on arrival"). Clock skew between donut and
 *     the upstream is ignored on purpose: Date is only used as the base of
 *     Expires. ttl_s is at most DN__ORIGIN_TTL_MAX.
 *  9. No lifetime information at all: the response gets opts.default_ttl_s
 *     (minus Age) when its status is heuristically cacheable (rule 1) or it
 *     carries Cache-Control public (RFC 9111 §4.2.2); otherwise it is not
 *     stored ("no explicit freshness for this status" or, when
 *     default_ttl_s is 0, "no lifetime").
 *
 * Surrogate-Control (W3C Note "Edge Architecture Specification 1.0" §2.2):
 * a comma-separated list of directives. A directive followed by
 * ";device-token" targets one surrogate (§2.3); donut never announces a
 * device token (Surrogate-Capability), so it takes the un-targeted
 * directives and ignores targeted ones. `max-age=N+M` is read as max-age=N
 * (the optional freshness extension M is ignored). no-store-remote is
 * ignored: donut sits next to the origin. Fastly's stale-while-revalidate
 * and stale-if-error are read too and win over Cache-Control's. Every
 * other directive goes through dn_http_cc_parse and is ignored when
 * unknown.
 *
 * stale_while_revalidate_s and stale_if_error_s (RFC 5861 §3, §4) come from
 * Surrogate-Control, else Cache-Control; DN_HTTP_UNSET when absent.
 *
 * ESI: an un-targeted Surrogate-Control `content="ESI/1.0"` (Edge
 * Architecture §2.2.4; capabilities separated by spaces or commas,
 * compared case-insensitively) turns it on. Otherwise esi is set when
 * opts.esi_html is and the response has exactly one Content-Type whose
 * media type is text/html (RFC 9110 §8.3.1: case-insensitive, parameters
 * ignored). esi is computed for every response, stored or not.
 *
 * Tags are read only from a response that will be stored (a refused
 * response needs none, and a malformed tag on it must not turn it into an
 * error). The fields, each enabled by a bit of opts.tag_fields:
 *   Surrogate-Key  (Fastly)     separated by spaces; always read
 *   Cache-Tag      (Cloudflare) separated by commas, spaces around trimmed
 *   xkey           (Varnish)    separated by spaces or commas, as the
 *                               vmod's tokenizer does
 * Several lines of a field add up. Each tag must pass dn_tag_validate: a
 * bad tag is an error (DN_ETAG) naming the field and the tag, because
 * dropping it silently would make a purge miss the page. Duplicates are
 * dropped; the order is that of first appearance. At most
 * DN__ORIGIN_MAX_TAGS distinct tags of at most DN__ORIGIN_MAX_TAG_BYTES
 * bytes in total are accepted; more is DN_ETOOBIG.
 *
 * Field names are compared case-insensitively (RFC 9110 §5.1).
 */
#ifndef DN_ORIGIN_POLICY_H
#define DN_ORIGIN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "donut/common.h"
#include "donut/http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of dn__origin_opts.tag_fields. Surrogate-Key is always read. */
#define DN__ORIGIN_TAGS_SURROGATE_KEY 0x1u
#define DN__ORIGIN_TAGS_CACHE_TAG 0x2u
#define DN__ORIGIN_TAGS_XKEY 0x4u

/* Limits on one response. */
#define DN__ORIGIN_MAX_TAGS 1024        /* distinct tags */
#define DN__ORIGIN_MAX_TAG_BYTES 65536  /* sum of their lengths */
#define DN__ORIGIN_MAX_VARY 64          /* distinct Vary names */
#define DN__ORIGIN_TTL_MAX 2147483648LL /* RFC 9111 §1.2.2: 2^31 s */

typedef struct dn__origin_opts {
  unsigned tag_fields;   /* DN__ORIGIN_TAGS_* */
  int esi_html;          /* process ESI in text/html without the opt-in */
  int64_t default_ttl_s; /* lifetime when the response gives none; 0 = do
                            not store such responses (the default) */
} dn__origin_opts;

/* Sets the defaults: Surrogate-Key only, no ESI without the opt-in,
 * default_ttl_s 0. */
void dn__origin_opts_init(dn__origin_opts *o);

typedef struct dn__origin_policy {
  int cacheable;   /* may be stored in a shared cache */
  const char *why; /* when not: a static string naming the rule; NULL when
                      cacheable */
  int64_t ttl_s;   /* shared-cache lifetime; 0 when not cacheable */
  int64_t stale_while_revalidate_s; /* DN_HTTP_UNSET when absent */
  int64_t stale_if_error_s;         /* DN_HTTP_UNSET when absent */
  int esi;                          /* the body must be processed as ESI */
  /* Owned, NUL-terminated, validated, de-duplicated, in order of first
   * appearance; none when not cacheable. */
  char **tags;
  size_t ntags;
  /* Owned field names, lower-cased, de-duplicated, in order; vary_star is
   * 1 when a Vary member is "*". */
  char **vary;
  size_t nvary;
  int vary_star;
} dn__origin_policy;

/* Reads the upstream response (`status` and its `n` header fields `f`,
 * borrowed) and fills *out with how the engine caches it (the rules are
 * above). `now_s` is the injected clock in unix seconds; `with_credentials`
 * says whether the request that fetched it carried Cookie or
 * Authorization; `o` may be NULL for the defaults.
 *
 * Returns 0 with *out filled (free it with dn__origin_policy_free), or:
 * DN_ETAG when a tag fails dn_tag_validate (err's text names the field and
 * the tag; its position is the bad byte's offset in that field value),
 * DN_ETOOBIG when the tags exceed DN__ORIGIN_MAX_TAGS or
 * DN__ORIGIN_MAX_TAG_BYTES, DN_EINVAL for a NULL out, NULL f with n > 0 or
 * a negative default_ttl_s, DN_ENOMEM. On failure *out is zeroed and owns
 * nothing (dn__origin_policy_free on it is harmless). err may be NULL;
 * filling it never allocates. A refused response is not an error: it is
 * 0 with cacheable 0. Thread-safe. */
int dn__origin_policy_read(int status, const dn_http_field *f, size_t n,
                           int64_t now_s, int with_credentials,
                           const dn__origin_opts *o, dn__origin_policy *out,
                           dn_error *err);

/* Frees the tags and Vary names and zeroes *p. NULL is a no-op. */
void dn__origin_policy_free(dn__origin_policy *p);

#ifdef __cplusplus
}
#endif
#endif /* DN_ORIGIN_POLICY_H */
