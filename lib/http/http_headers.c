/* http_headers.c - owned header lists, field validation and the "never
 * store" predicate.
 *
 * A list keeps every name and value in one byte buffer and an array of
 * offsets into it, so a list of n fields costs two allocations however
 * large n is, and borrowed slices stay cheap. Validation follows RFC 9110
 * §5.1 (field names are tokens) and §5.5 (field values are visible
 * characters, SP and HTAB, with no leading or trailing whitespace); in
 * particular CR, LF and NUL can never reach the wire through this module.
 */
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "http_headers.h"
#include "http_util.h"

typedef struct entry {
  size_t name_off, name_len;
  size_t value_off, value_len;
} entry;

struct dn_http_headers {
  dn__buf bytes;
  entry *items;
  size_t count, cap;
};

int dn_http_field_name_validate(const char *name, size_t len, dn_error *err) {
  /* RFC 9110 §5.1: field-name = token */
  if (!name || len == 0)
    return dn__error_set(err, DN_EHEADER, 0, "empty field name");
  if (len > DN_HTTP_NAME_MAX)
    return dn__error_set(err, DN_EHEADER, DN_HTTP_NAME_MAX,
                         "field name longer than %d bytes", DN_HTTP_NAME_MAX);
  for (size_t i = 0; i < len; i++)
    if (!dn__http_is_tchar((unsigned char)name[i]))
      return dn__error_set(err, DN_EHEADER, i,
                           "byte 0x%02x is not allowed in a field name",
                           (unsigned char)name[i]);
  return 0;
}

int dn_http_field_value_validate(const char *value, size_t len, dn_error *err) {
  /* RFC 9110 §5.5: field-value = *field-content;
   * field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
   * field-vchar ]; field-vchar = VCHAR / obs-text. */
  if (len > DN_HTTP_VALUE_MAX)
    return dn__error_set(err, DN_EHEADER, DN_HTTP_VALUE_MAX,
                         "field value longer than %d bytes", DN_HTTP_VALUE_MAX);
  if (len && !value)
    return dn__error_set(err, DN_EHEADER, 0, "NULL field value");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return dn__error_set(err, DN_EHEADER, i,
                           "control byte 0x%02x in a field value", c);
  }
  if (len && (dn__http_is_ows((unsigned char)value[0]) ||
              dn__http_is_ows((unsigned char)value[len - 1])))
    return dn__error_set(err, DN_EHEADER,
                         dn__http_is_ows((unsigned char)value[0]) ? 0 : len - 1,
                         "leading or trailing whitespace in a field value");
  return 0;
}

dn_http_headers *dn_http_headers_new(void) {
  dn_http_headers *h = dn__calloc(1, sizeof *h);
  if (!h)
    return NULL;
  dn__buf_init(&h->bytes, 0);
  return h;
}

void dn_http_headers_free(dn_http_headers *h) {
  if (!h)
    return;
  dn__buf_free(&h->bytes);
  dn__free(h->items);
  dn__free(h);
}

static int reserve_entry(dn_http_headers *h) {
  if (h->count < h->cap)
    return 0;
  size_t cap = h->cap ? h->cap * 2 : 16;
  entry *p = dn__realloc(h->items, cap * sizeof *p);
  if (!p)
    return DN_ENOMEM;
  h->items = p;
  h->cap = cap;
  return 0;
}

int dn__http_headers_push(dn_http_headers *h, dn_slice name, dn_slice value) {
  int rc = reserve_entry(h);
  if (rc)
    return rc;
  size_t mark = h->bytes.len;
  rc = dn__buf_append(&h->bytes, name.ptr, name.len);
  if (!rc)
    rc = dn__buf_append(&h->bytes, value.ptr, value.len);
  if (rc) {
    dn__buf_truncate(&h->bytes, mark);
    return rc == DN_ETOOBIG ? DN_ENOMEM : rc;
  }
  entry *e = &h->items[h->count++];
  e->name_off = mark;
  e->name_len = name.len;
  e->value_off = mark + name.len;
  e->value_len = value.len;
  return 0;
}

int dn_http_headers_add(dn_http_headers *h, dn_slice name, dn_slice value,
                        dn_error *err) {
  if (!h)
    return dn__error_set(err, DN_EINVAL, 0, "no header list");
  int rc = dn_http_field_name_validate(name.ptr, name.len, err);
  if (!rc)
    rc = dn_http_field_value_validate(value.ptr, value.len, err);
  if (rc)
    return rc;
  rc = dn__http_headers_push(h, name, value);
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  return 0;
}

int dn__http_headers_append_all(dn_http_headers *dst,
                                const dn_http_headers *src) {
  size_t count = dst->count, len = dst->bytes.len;
  for (size_t i = 0; i < src->count; i++) {
    dn_http_field f = dn_http_headers_at(src, i);
    int rc = dn__http_headers_push(dst, f.name, f.value);
    if (rc) {
      dst->count = count;
      dn__buf_truncate(&dst->bytes, len);
      return rc;
    }
  }
  return 0;
}

size_t dn_http_headers_count(const dn_http_headers *h) {
  return h ? h->count : 0;
}

dn_http_field dn_http_headers_at(const dn_http_headers *h, size_t i) {
  dn_http_field f = {{"", 0}, {"", 0}};
  if (!h || i >= h->count)
    return f;
  const entry *e = &h->items[i];
  const char *base = h->bytes.data ? h->bytes.data : "";
  f.name.ptr = base + e->name_off;
  f.name.len = e->name_len;
  f.value.ptr = base + e->value_off;
  f.value.len = e->value_len;
  return f;
}

int dn_http_headers_get(const dn_http_headers *h, const char *name,
                        dn_slice *value) {
  for (size_t i = 0; i < dn_http_headers_count(h); i++) {
    dn_http_field f = dn_http_headers_at(h, i);
    if (dn__http_ci_eq(f.name, name)) {
      *value = f.value;
      return 0;
    }
  }
  return DN_ENOTFOUND;
}

/* 1 when a Vary field value lists "*". */
static int vary_star(dn_slice v) {
  size_t i = 0;
  while (i < v.len) {
    size_t start = i;
    while (i < v.len && v.ptr[i] != ',')
      i++;
    dn_slice m = dn__http_trim(v.ptr + start, i - start);
    if (m.len == 1 && m.ptr[0] == '*')
      return 1;
    i++;
  }
  return 0;
}

int dn_http_storable(const dn_http_field *fields, size_t n, unsigned flags) {
  if (flags & (DN_HTTP_NO_STORE | DN_HTTP_PRIVATE))
    return 0;
  dn_http_cc cc;
  dn_http_cc_init(&cc);
  for (size_t i = 0; i < n; i++) {
    const dn_http_field *f = &fields[i];
    if (dn__http_ci_eq(f->name, "Cache-Control")) {
      /* A value we cannot read might say no-store: do not store. */
      if (dn_http_cc_parse(f->value.ptr, f->value.len, &cc, NULL))
        return 0;
    } else if (dn__http_ci_eq(f->name, "Set-Cookie")) {
      if (!(flags & DN_HTTP_ALLOW_SET_COOKIE))
        return 0;
    } else if (dn__http_ci_eq(f->name, "Vary") && vary_star(f->value)) {
      return 0;
    }
  }
  return !(cc.flags & (DN_HTTP_CC_NO_STORE | DN_HTTP_CC_PRIVATE));
}
