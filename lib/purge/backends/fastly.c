/* fastly.c - the Fastly backend: batch purge by surrogate key.
 *
 * Fastly's API purges up to 256 surrogate keys per call with
 *   POST /service/{service_id}/purge
 *   Fastly-Key: {token}
 *   Content-Type: application/json
 *   {"surrogate_keys":["key_1","key_2"]}
 * and marks the objects stale instead of removing them when the request
 * carries Fastly-Soft-Purge: 1 (Fastly API reference, "Purge multiple
 * surrogate key tags"). The base URL is https://api.fastly.com unless the
 * configuration points it elsewhere (the tests use a local recorder).
 */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define MAX_KEYS 256

typedef struct fastly {
  char *url; /* {api}/service/{id}/purge */
  char *token;
  int soft;
  size_t max_keys;
} fastly;

static void destroy(void *self) {
  fastly *f = self;
  if (!f)
    return;
  dn__free(f->url);
  dn__wipe_free(f->token);
  dn__free(f);
}

static size_t targets(void *self) {
  (void)self;
  return 1;
}

static int build(void *self, const dn_purge_batch *b, dn_purge_req *req,
                 size_t *used) {
  fastly *f = self;
  int rc = dn_purge_req_set_method(req, "POST");
  if (rc == 0)
    rc = dn_purge_req_set_url(req, f->url);
  if (rc == 0)
    rc = dn_purge_req_add_secret_header(req, "Fastly-Key", f->token);
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Accept", "application/json");
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Content-Type", "application/json");
  if (rc == 0 && f->soft)
    rc = dn_purge_req_add_header(req, "Fastly-Soft-Purge", "1");
  if (rc == 0)
    rc = dn__purge_json_keys(req, "surrogate_keys", b->keys, b->nkeys,
                             f->max_keys, 0, used);
  return rc;
}

static void destinations(void *self, char *out, size_t cap) {
  if (cap)
    out[0] = '\0';
  dn__purge_url_destination(((fastly *)self)->url, out, cap);
}

static const dn_purger_ops fastly_ops = {
    DN_PURGER_OPS_VERSION, "fastly", 0, targets, build, destroy, destinations};

/* Service IDs are alphanumeric; anything else would change the path. */
static int id_ok(const char *s) {
  if (!s || !*s)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return 0;
  return 1;
}

void dn_purge_fastly_options_init_size(dn_purge_fastly_options *o,
                                       size_t size) {
  dn_purge_fastly_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_purge_backend_fastly(const dn_purge_fastly_options *opts,
                            dn_purge_backend *out, dn_error *err) {
  if (!opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  /* Options from an older header end before the fields it did not have;
   * max_keys is the last field this library knows. */
  dn_purge_fastly_options oo;
  dn_purge_fastly_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_purge_fastly_options, token, max_keys, &oo,
                             opts, err);
  if (orc)
    return orc;
  const dn_purge_fastly_options *o = &oo;
  if (!o->token || !*o->token)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "fastly: no API token (DONUT_FASTLY_TOKEN)");
  if (dn_http_field_value_validate(o->token, strlen(o->token), NULL))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "fastly: the API token has a byte a header cannot "
                         "carry");
  if (!id_ok(o->service))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "fastly: missing or malformed service ID "
                         "(DONUT_FASTLY_SERVICE)");
  const char *api = o->api_url ? o->api_url : "https://api.fastly.com";
  int rc = dn__purge_check_url("fastly api_url", api, err);
  if (rc)
    return rc;
  fastly *f = dn__calloc(1, sizeof *f);
  dn__buf path;
  dn__buf_init(&path, 0);
  rc = f ? 0 : DN_ENOMEM;
  if (rc == 0 && (dn__buf_append_cstr(&path, "/service/") ||
                  dn__buf_append_cstr(&path, o->service) ||
                  dn__buf_append_cstr(&path, "/purge")))
    rc = DN_ENOMEM;
  if (rc == 0 && (!(f->url = dn__purge_join(api, path.data)) ||
                  dn__purge_strdup(o->token, &f->token)))
    rc = DN_ENOMEM;
  dn__buf_free(&path);
  if (rc) {
    destroy(f);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  f->soft = o->soft;
  f->max_keys = o->max_keys && o->max_keys < MAX_KEYS ? o->max_keys : MAX_KEYS;
  out->ops = &fastly_ops;
  out->self = f;
  return 0;
}
