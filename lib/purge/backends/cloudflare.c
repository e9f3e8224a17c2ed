/* cloudflare.c - the Cloudflare backend: purge by cache tag.
 *
 * Cloudflare purges cache tags with
 *   POST /client/v4/zones/{zone_id}/purge_cache
 *   Authorization: Bearer {token}
 *   Content-Type: application/json
 *   {"tags":["a","b"]}
 * Cloudflare's "Purge cache" page lists 100 as the most operations (tags)
 * per request on every plan; older accounts were limited to 30 and some
 * Enterprise accounts allow 500, so the number is configurable (max_tags,
 * DONUT_CLOUDFLARE_MAX_TAGS). The base URL is https://api.cloudflare.com
 * unless the configuration points it elsewhere.
 */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define MAX_TAGS 100
#define MAX_TAGS_LIMIT 1000

typedef struct cloudflare {
  char *url;
  char *auth; /* "Bearer {token}" */
  size_t max_tags;
} cloudflare;

static void destroy(void *self) {
  cloudflare *c = self;
  if (!c)
    return;
  dn__free(c->url);
  dn__wipe_free(c->auth);
  dn__free(c);
}

static size_t targets(void *self) {
  (void)self;
  return 1;
}

static int build(void *self, const dn_purge_batch *b, dn_purge_req *req,
                 size_t *used) {
  cloudflare *c = self;
  int rc = dn_purge_req_set_method(req, "POST");
  if (rc == 0)
    rc = dn_purge_req_set_url(req, c->url);
  if (rc == 0)
    rc = dn_purge_req_add_secret_header(req, "Authorization", c->auth);
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Accept", "application/json");
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Content-Type", "application/json");
  if (rc == 0)
    rc = dn__purge_json_keys(req, "tags", b->keys, b->nkeys, c->max_tags, 0,
                             used);
  return rc;
}

static void destinations(void *self, char *out, size_t cap) {
  if (cap)
    out[0] = '\0';
  dn__purge_url_destination(((cloudflare *)self)->url, out, cap);
}

static const dn_purger_ops cloudflare_ops = {
    DN_PURGER_OPS_VERSION, "cloudflare", 0, targets, build, destroy,
    destinations};

static int id_ok(const char *s) {
  if (!s || !*s)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

void dn_purge_cloudflare_options_init_size(dn_purge_cloudflare_options *o,
                                           size_t size) {
  dn_purge_cloudflare_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_purge_backend_cloudflare(const dn_purge_cloudflare_options *opts,
                                dn_purge_backend *out, dn_error *err) {
  if (!opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  /* Options from an older header end before the fields it did not have;
   * max_tags is the last field this library knows. */
  dn_purge_cloudflare_options oo;
  dn_purge_cloudflare_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_purge_cloudflare_options, token, max_tags, &oo,
                             opts, err);
  if (orc)
    return orc;
  const dn_purge_cloudflare_options *o = &oo;
  if (!o->token || !*o->token)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "cloudflare: no API token (DONUT_CLOUDFLARE_TOKEN)");
  if (!id_ok(o->zone))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "cloudflare: missing or malformed zone ID "
                         "(DONUT_CLOUDFLARE_ZONE)");
  if (o->max_tags > MAX_TAGS_LIMIT)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "cloudflare: max_tags must be 1 to %d",
                         MAX_TAGS_LIMIT);
  const char *api = o->api_url ? o->api_url : "https://api.cloudflare.com";
  int rc = dn__purge_check_url("cloudflare api_url", api, err);
  if (rc)
    return rc;
  cloudflare *c = dn__calloc(1, sizeof *c);
  dn__buf path, auth;
  dn__buf_init(&path, 0);
  dn__buf_init(&auth, 0);
  rc = c ? 0 : DN_ENOMEM;
  if (rc == 0 && (dn__buf_append_cstr(&path, "/client/v4/zones/") ||
                  dn__buf_append_cstr(&path, o->zone) ||
                  dn__buf_append_cstr(&path, "/purge_cache") ||
                  dn__buf_append_cstr(&auth, "Bearer ") ||
                  dn__buf_append_cstr(&auth, o->token)))
    rc = DN_ENOMEM;
  if (rc == 0 && dn_http_field_value_validate(auth.data, auth.len, NULL))
    rc = dn__error_set(err, DN_ECONFIG, 0,
                       "cloudflare: the API token has a byte a header "
                       "cannot carry");
  if (rc == 0 && (!(c->url = dn__purge_join(api, path.data)) ||
                  !(c->auth = dn__buf_steal(&auth, NULL))))
    rc = DN_ENOMEM;
  dn__wipe(auth.data, auth.len);
  dn__buf_free(&path);
  dn__buf_free(&auth);
  if (rc) {
    destroy(c);
    return rc == DN_ENOMEM ? dn__error_set(err, rc, 0, "out of memory") : rc;
  }
  c->max_tags = o->max_tags ? o->max_tags : MAX_TAGS;
  out->ops = &cloudflare_ops;
  out->self = c;
  return 0;
}
