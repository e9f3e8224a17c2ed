/* webhook.c - the generic backend: a JSON POST to your own URL.
 *
 * For CDNs without a built-in backend, or to fan purges out to your own
 * service: every batch is POSTed to each URL as
 *   {"tags":[...],"keys":[...],"uris":[...]}
 * where tags are the invalidated tags, keys what dn_cdn_purge_keys gives
 * for the configured profile (what the CDN's tag header carried) and uris
 * the URIs purged with dn_purger_purge_uris. Extra header fields (an
 * Authorization token, say) are sent as secrets. A 2xx answer delivers
 * the batch; 5xx, 429 and 408 are retried like any other backend's.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

typedef struct webhook {
  char **urls;
  size_t n;
  char **names, **values;
  size_t nheaders;
} webhook;

static void destroy(void *self) {
  webhook *w = self;
  if (!w)
    return;
  for (size_t i = 0; w->urls && i < w->n; i++)
    dn__free(w->urls[i]);
  for (size_t i = 0; w->names && i < w->nheaders; i++) {
    dn__free(w->names[i]);
    dn__wipe_free(w->values[i]);
  }
  dn__free(w->urls);
  dn__free(w->names);
  dn__free(w->values);
  dn__free(w);
}

static size_t targets(void *self) { return ((webhook *)self)->n; }

static json_t *array_of(const dn_slice *s, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, json_stringn(s[i].ptr, s[i].len))) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static int build(void *self, const dn_purge_batch *b, dn_purge_req *req,
                 size_t *used) {
  webhook *w = self;
  json_t *tags = array_of(b->tags, b->ntags);
  json_t *keys = array_of(b->keys, b->nkeys);
  json_t *uris = array_of(b->uris, b->nuris);
  json_t *o = tags && keys && uris ? json_pack("{s:O,s:O,s:O}", "tags", tags,
                                               "keys", keys, "uris", uris)
                                   : NULL;
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(tags);
  json_decref(keys);
  json_decref(uris);
  json_decref(o);
  int rc = text ? dn_purge_req_set_method(req, "POST") : DN_ENOMEM;
  if (rc == 0)
    rc = dn_purge_req_set_url(req, w->urls[b->target]);
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Content-Type", "application/json");
  for (size_t i = 0; rc == 0 && i < w->nheaders; i++)
    rc = dn_purge_req_add_secret_header(req, w->names[i], w->values[i]);
  if (rc == 0)
    rc = dn_purge_req_set_body(req, text, strlen(text));
  free(text);
  if (rc == 0)
    *used = b->nkeys;
  return rc;
}

static void destinations(void *self, char *out, size_t cap) {
  webhook *w = self;
  if (cap)
    out[0] = '\0';
  for (size_t i = 0; i < w->n; i++)
    dn__purge_url_destination(w->urls[i], out, cap);
}

static const dn_purger_ops webhook_ops = {DN_PURGER_OPS_VERSION,
                                          "webhook",
                                          DN_PURGER_SEND_WITHOUT_KEYS,
                                          targets,
                                          build,
                                          destroy,
                                          destinations};

/* Splits "Name: value" into two owned strings. */
static int split_header(const char *h, char **name, char **value,
                        dn_error *err) {
  const char *colon = strchr(h, ':');
  if (!colon || colon == h)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "webhook: a header must look like 'Name: value'");
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t nl = (size_t)(colon - h), vl = strlen(v);
  if (dn_http_field_name_validate(h, nl, NULL) ||
      dn_http_field_value_validate(v, vl, NULL))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "webhook: header %.*s is not a valid field",
                         (int)(nl < 64 ? nl : 64), h);
  *name = dn__strndup(h, nl);
  *value = dn__strndup(v, vl);
  if (!*name || !*value)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  return 0;
}

void dn_purge_webhook_options_init_size(dn_purge_webhook_options *o,
                                        size_t size) {
  dn_purge_webhook_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_purge_backend_webhook(const dn_purge_webhook_options *opts,
                             dn_purge_backend *out, dn_error *err) {
  if (!opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  /* Options from an older header end before the fields it did not have;
   * nheaders is the last field this library knows. */
  dn_purge_webhook_options oo;
  dn_purge_webhook_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_purge_webhook_options, urls, nheaders, &oo,
                             opts, err);
  if (orc)
    return orc;
  const dn_purge_webhook_options *o = &oo;
  if (o->nheaders && !o->headers)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  if (o->nurls == 0 || !o->urls)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "webhook: no URL (DONUT_PURGE_URLS)");
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < o->nurls; i++)
    rc = dn__purge_check_url("webhook", o->urls[i], err);
  if (rc)
    return rc;
  webhook *w = dn__calloc(1, sizeof *w);
  if (!w || !(w->urls = dn__calloc(o->nurls, sizeof *w->urls)) ||
      (o->nheaders &&
       (!(w->names = dn__calloc(o->nheaders, sizeof *w->names)) ||
        !(w->values = dn__calloc(o->nheaders, sizeof *w->values))))) {
    destroy(w);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  for (; rc == 0 && w->n < o->nurls; w->n++)
    if (dn__purge_strdup(o->urls[w->n], &w->urls[w->n]))
      rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  for (; rc == 0 && w->nheaders < o->nheaders; w->nheaders++)
    rc = split_header(o->headers[w->nheaders], &w->names[w->nheaders],
                      &w->values[w->nheaders], err);
  if (rc) {
    destroy(w);
    return rc;
  }
  out->ops = &webhook_ops;
  out->self = w;
  return 0;
}
