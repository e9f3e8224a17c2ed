/* varnish.c - the Varnish backend: xkey purges (varnish-modules).
 *
 * Each batch goes to every configured Varnish server as `PURGE /` requests
 * whose `xkey` field (hard purge) or `xkey-softpurge` field (soft purge)
 * carries the purge keys separated by spaces, as many per request as fit
 * in max_field_bytes (Varnish refuses request header fields longer than
 * its http_req_hdr_len parameter, 8 KiB by default). The VCL that answers
 * them, by calling xkey.purge() or xkey.softpurge() on the field, is in
 * examples/varnish/donut.vcl.
 */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define DEFAULT_FIELD_BYTES 8000

typedef struct varnish {
  char **urls;
  size_t n;
  int soft;
  size_t max_field;
} varnish;

static void destroy(void *self) {
  varnish *v = self;
  for (size_t i = 0; v && i < v->n; i++)
    dn__free(v->urls[i]);
  if (v)
    dn__free(v->urls);
  dn__free(v);
}

static size_t targets(void *self) { return ((varnish *)self)->n; }

static int build(void *self, const dn_purge_batch *b, dn_purge_req *req,
                 size_t *used) {
  varnish *v = self;
  dn__buf field;
  dn__buf_init(&field, 0);
  size_t take = 0;
  int rc = 0;
  while (rc == 0 && take < b->nkeys) {
    size_t add = b->keys[take].len + (take ? 1 : 0);
    if (field.len + add > v->max_field)
      break;
    if (take)
      rc = dn__buf_append_byte(&field, ' ');
    if (rc == 0)
      rc = dn__buf_append(&field, b->keys[take].ptr, b->keys[take].len);
    take++;
  }
  if (rc == 0 && take == 0)
    rc = DN_ETOOBIG;
  if (rc == 0)
    rc = dn_purge_req_set_method(req, "PURGE");
  if (rc == 0)
    rc = dn_purge_req_set_url(req, v->urls[b->target]);
  if (rc == 0)
    rc = dn_purge_req_add_header(req, v->soft ? "xkey-softpurge" : "xkey",
                                 field.data);
  dn__buf_free(&field);
  if (rc == 0)
    *used = take;
  return rc;
}

static void destinations(void *self, char *out, size_t cap) {
  varnish *v = self;
  if (cap)
    out[0] = '\0';
  for (size_t i = 0; i < v->n; i++)
    dn__purge_url_destination(v->urls[i], out, cap);
}

static const dn_purger_ops varnish_ops = {
    DN_PURGER_OPS_VERSION, "varnish", 0, targets, build, destroy, destinations};

void dn_purge_varnish_options_init_size(dn_purge_varnish_options *o,
                                        size_t size) {
  dn_purge_varnish_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_purge_backend_varnish(const dn_purge_varnish_options *opts,
                             dn_purge_backend *out, dn_error *err) {
  if (!opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  /* Options from an older header end before the fields it did not have;
   * max_field_bytes is the last field this library knows. */
  dn_purge_varnish_options oo;
  dn_purge_varnish_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_purge_varnish_options, urls, max_field_bytes,
                             &oo, opts, err);
  if (orc)
    return orc;
  const dn_purge_varnish_options *o = &oo;
  if (o->nurls == 0 || !o->urls)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "varnish: no server (DONUT_PURGE_URLS)");
  for (size_t i = 0; i < o->nurls; i++) {
    int rc = dn__purge_check_url("varnish", o->urls[i], err);
    if (rc)
      return rc;
  }
  varnish *v = dn__calloc(1, sizeof *v);
  if (!v || !(v->urls = dn__calloc(o->nurls, sizeof *v->urls))) {
    dn__free(v);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  v->soft = o->soft;
  v->max_field = o->max_field_bytes ? o->max_field_bytes : DEFAULT_FIELD_BYTES;
  for (; v->n < o->nurls; v->n++) {
    if (dn__purge_strdup(o->urls[v->n], &v->urls[v->n])) {
      destroy(v);
      return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
    }
  }
  out->ops = &varnish_ops;
  out->self = v;
  return 0;
}
