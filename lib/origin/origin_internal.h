/* origin_internal.h - the origin's structure, shared by origin.c (the
 * renderer), origin_proxy.c (unsafe methods, same-origin URIs) and
 * origin_fields.c (request fields, the log). Calls go one way: origin.c
 * uses origin_proxy.c and origin_fields.c, origin_proxy.c uses
 * origin_fields.c, which uses neither. */
#ifndef DN_ORIGIN_INTERNAL_H
#define DN_ORIGIN_INTERNAL_H

#include <pthread.h>

#include "buf.h"
#include "donut/origin.h"
#include "origin_policy.h"
#include "upstream.h"

struct hint;

struct dn_origin {
  dn_engine *e;
  dn__upstream *up;
  char *base; /* resource_base without a trailing '/' */
  size_t base_len;
  dn__origin_opts policy;
  size_t max_includes, max_body;
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
  pthread_mutex_t mu; /* guards hints */
  struct hint *hints;
  dn_origin_stats st; /* updated with relaxed atomics */
};

void dn__origin_log(dn_origin *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Request fields for libcurl: "Name: value" lines, NULL-terminated. */
#define DN__ORIGIN_MAX_FIELDS 128
typedef struct dn__origin_fields {
  char *lines[DN__ORIGIN_MAX_FIELDS];
  size_t n;
} dn__origin_fields;

int dn__origin_fields_add(dn__origin_fields *f, dn_slice name, dn_slice value);
/* Via and Surrogate-Capability, sent with every request. */
int dn__origin_fields_common(dn__origin_fields *f);
/* Adds a field of the client's request unless a proxy must not forward it
 * (hop-by-hop fields, Host, which becomes X-Forwarded-Host, and, for a
 * render, conditionals). */
int dn__origin_fields_forward(dn__origin_fields *f, dn_slice name,
                              dn_slice value, int for_render);
void dn__origin_fields_free(dn__origin_fields *f);

/* origin_proxy.c: the resource URI of an ESI include's src in page_uri
 * ("<base>/path"): an absolute path, a relative reference, or an absolute
 * URL of the upstream's own authority. Another host, another scheme or a
 * malformed src is DN_EURI with the reason in err. */
int dn__origin_include_uri(dn_origin *o, const char *page_uri, dn_slice src,
                           dn__buf *out, dn_error *err);

#endif
