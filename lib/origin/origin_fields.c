/* origin_fields.c - the request fields origin mode sends to the upstream:
 * what every request carries, which of the client's fields are passed on
 * (RFC 9110 §7.6.1: never the hop-by-hop ones), and the origin's log line.
 * Shared by the renderer (origin.c) and unsafe methods (origin_proxy.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "origin_internal.h"
#include "text.h"

void dn__origin_log(dn_origin *o, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dn__log_emit(o->log, o->log_ud, level, 512, fmt, ap);
  va_end(ap);
}

/* ---- request fields --------------------------------------------------------
 */
/* Fields a proxy never forwards (RFC 9110 §7.6.1), those the transfer sets
 * itself, and conditionals: a render needs the whole representation, and
 * the engine answers conditionals from its own validators. */
static int not_forwarded(dn_slice name, int for_render) {
  static const char *const never[] = {
      "connection", "keep-alive", "proxy-connection", "proxy-authorization",
      "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
      "expect", "accept-encoding", "via",
      /* The client's claims about where it
       * comes from are not passed on: an
       * application that trusts them could
       * be told any address or host. */
      "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
      "x-real-ip", NULL};
  static const char *const conditional[] = {"if-match",
                                            "if-none-match",
                                            "if-modified-since",
                                            "if-unmodified-since",
                                            "if-range",
                                            "range",
                                            NULL};
  for (size_t i = 0; never[i]; i++)
    if (name.len == strlen(never[i]) &&
        strncasecmp(name.ptr, never[i], name.len) == 0)
      return 1;
  for (size_t i = 0; for_render && conditional[i]; i++)
    if (name.len == strlen(conditional[i]) &&
        strncasecmp(name.ptr, conditional[i], name.len) == 0)
      return 1;
  return 0;
}

int dn__origin_fields_add(dn__origin_fields *f, dn_slice name, dn_slice value) {
  if (f->n + 1 >= DN__ORIGIN_MAX_FIELDS)
    return DN_ETOOBIG;
  size_t need = name.len + value.len + 3;
  char *line = dn__malloc(need);
  if (!line)
    return DN_ENOMEM;
  snprintf(line, need, "%.*s: %.*s", (int)name.len, name.ptr, (int)value.len,
           value.ptr);
  f->lines[f->n++] = line;
  f->lines[f->n] = NULL;
  return 0;
}

int dn__origin_fields_common(dn__origin_fields *f) {
  int rc = dn__origin_fields_add(f, dn_slice_from_cstr("Via"),
                                 dn_slice_from_cstr("1.1 donut"));
  rc = rc ? rc
          : dn__origin_fields_add(f, dn_slice_from_cstr("X-Forwarded-Proto"),
                                  dn_slice_from_cstr("http"));
  /* The ESI specification's way for a surrogate to say it processes ESI. */
  return rc ? rc
            : dn__origin_fields_add(
                  f, dn_slice_from_cstr("Surrogate-Capability"),
                  dn_slice_from_cstr("donut=\"Surrogate/1.0 ESI/1.0\""));
}

/* Adds `name: value`, or X-Forwarded-Host for Host, unless it is one that
 * is never forwarded. */
int dn__origin_fields_forward(dn__origin_fields *f, dn_slice name,
                              dn_slice value, int for_render) {
  if (name.len == 4 && strncasecmp(name.ptr, "host", 4) == 0)
    return dn__origin_fields_add(f, dn_slice_from_cstr("X-Forwarded-Host"),
                                 value);
  if (not_forwarded(name, for_render))
    return 0;
  return dn__origin_fields_add(f, name, value);
}

void dn__origin_fields_free(dn__origin_fields *f) {
  for (size_t i = 0; i < f->n; i++)
    dn__free(f->lines[i]);
  f->n = 0;
  f->lines[0] = NULL;
}
