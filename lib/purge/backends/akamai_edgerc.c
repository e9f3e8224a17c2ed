/* akamai_edgerc.c - reading Akamai credentials from an .edgerc file.
 *
 * An .edgerc file is what Akamai Control Center hands out for an API
 * client: INI sections such as [default] with the keys host, client_token,
 * client_secret, access_token and optionally max-body. Lines starting with
 * '#' or ';' are comments; keys and values are separated by the first '='
 * (a client secret often ends in '=') and trimmed. A control byte
 * anywhere is an error: the values end up in a header field. Errors name
 * the line and the key, never a value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define EDGERC_MAX (1 << 20)

enum { K_HOST, K_CLIENT_TOKEN, K_CLIENT_SECRET, K_ACCESS_TOKEN, K_COUNT };
static const char *const key_names[K_COUNT] = {"host", "client_token",
                                               "client_secret", "access_token"};

static dn_slice trim(const char *s, size_t len) {
  while (len && (*s == ' ' || *s == '\t')) {
    s++;
    len--;
  }
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
    len--;
  dn_slice out = {s, len};
  return out;
}

static int slice_is(dn_slice s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

typedef struct found {
  dn_slice v[K_COUNT];
  int have[K_COUNT];
  size_t max_body;
  int in_section, seen_section;
} found;

static int parse_max_body(dn_slice v, size_t *out) {
  size_t n = 0;
  if (v.len == 0 || v.len > 9)
    return -1;
  for (size_t i = 0; i < v.len; i++) {
    if (v.ptr[i] < '0' || v.ptr[i] > '9')
      return -1;
    n = n * 10 + (size_t)(v.ptr[i] - '0');
  }
  *out = n;
  return n ? 0 : -1;
}

/* One non-empty, non-comment line. */
static int line(found *f, dn_slice l, const char *section, int lineno,
                size_t at, dn_error *err) {
  if (l.ptr[0] == '[') {
    if (l.ptr[l.len - 1] != ']')
      return dn__error_set(err, DN_ECONFIG, at,
                           ".edgerc line %d: unclosed section header", lineno);
    f->in_section = slice_is(trim(l.ptr + 1, l.len - 2), section);
    f->seen_section |= f->in_section;
    return 0;
  }
  const char *eq = memchr(l.ptr, '=', l.len);
  if (!eq)
    return dn__error_set(err, DN_ECONFIG, at,
                         ".edgerc line %d: expected key = value", lineno);
  if (!f->in_section)
    return 0;
  dn_slice k = trim(l.ptr, (size_t)(eq - l.ptr));
  dn_slice v = trim(eq + 1, l.len - (size_t)(eq - l.ptr) - 1);
  if (slice_is(k, "max-body") || slice_is(k, "max_body")) {
    if (parse_max_body(v, &f->max_body))
      return dn__error_set(err, DN_ECONFIG, at,
                           ".edgerc line %d: max-body must be a positive "
                           "number",
                           lineno);
    return 0;
  }
  for (int i = 0; i < K_COUNT; i++) {
    if (slice_is(k, key_names[i])) {
      f->v[i] = v;
      f->have[i] = v.len > 0;
    }
  }
  return 0;
}

static int scan(const char *text, size_t len, const char *section, found *f,
                dn_error *err) {
  int lineno = 0;
  for (size_t at = 0; at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
    lineno++;
    dn_slice l = trim(text + at, n);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.len; i++) {
      unsigned char c = (unsigned char)l.ptr[i];
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        rc = dn__error_set(err, DN_ECONFIG, (size_t)(l.ptr - text) + i,
                           ".edgerc line %d: control byte", lineno);
    }
    if (rc == 0 && l.len && l.ptr[0] != '#' && l.ptr[0] != ';')
      rc = line(f, l, section, lineno, at, err);
    if (rc) {
      if (err)
        err->line = lineno;
      return rc;
    }
    at += n + 1;
  }
  return 0;
}

/* Copies what was found into one block; host loses "https://" and '/'.
 * Returns 0, DN_ECONFIG (nothing left of host) or DN_ENOMEM. */
static int store(found *f, dn_purge_akamai_options *out, char **buf) {
  dn_slice *h = &f->v[K_HOST];
  if (h->len > 8 && memcmp(h->ptr, "https://", 8) == 0)
    *h = trim(h->ptr + 8, h->len - 8);
  while (h->len && h->ptr[h->len - 1] == '/')
    h->len--;
  *h = trim(h->ptr, h->len);
  if (h->len == 0)
    return DN_ECONFIG;
  size_t total = 0;
  for (int i = 0; i < K_COUNT; i++)
    total += f->v[i].len + 1;
  char *b = dn__malloc(total), *p = b;
  if (!b)
    return DN_ENOMEM;
  const char **dst[K_COUNT] = {&out->host, &out->client_token,
                               &out->client_secret, &out->access_token};
  for (int i = 0; i < K_COUNT; i++) {
    memcpy(p, f->v[i].ptr, f->v[i].len);
    p[f->v[i].len] = '\0';
    *dst[i] = p;
    p += f->v[i].len + 1;
  }
  out->max_body = f->max_body;
  *buf = b;
  return 0;
}

int dn__edgerc_parse(const char *text, size_t len, const char *section,
                     dn_purge_akamai_options *out, char **buf, dn_error *err) {
  found f;
  memset(&f, 0, sizeof f);
  section = section && *section ? section : "default";
  int rc = scan(text, len, section, &f, err);
  if (rc)
    return rc;
  if (!f.seen_section)
    return dn__error_set(err, DN_ECONFIG, 0, ".edgerc has no section [%.64s]",
                         section);
  for (int i = 0; i < K_COUNT; i++)
    if (!f.have[i])
      return dn__error_set(err, DN_ECONFIG, 0,
                           ".edgerc section [%.64s] has no %s", section,
                           key_names[i]);
  rc = store(&f, out, buf);
  if (rc == DN_ECONFIG)
    return dn__error_set(err, rc, 0, ".edgerc section [%.64s] has no host",
                         section);
  if (rc)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  return 0;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *data = dn__malloc(EDGERC_MAX + 1);
  size_t n = data ? fread(data, 1, EDGERC_MAX + 1, f) : 0;
  int bad = ferror(f) || n > EDGERC_MAX;
  fclose(f);
  if (!data || bad) {
    dn__wipe(data, n); /* a part of a file of credentials */
    dn__free(data);
    errno = data ? EFBIG : ENOMEM;
    return NULL;
  }
  *len = n;
  return data;
}

int dn_purge_akamai_edgerc(const char *path, const char *section,
                           dn_purge_akamai_options *out, char **buf,
                           dn_error *err) {
  char home_path[4096];
  if (!out || !buf)
    return dn__error_set(err, DN_EINVAL, 0, "no output");
  if (!path || !*path) {
    const char *home = getenv("HOME");
    if (!home || !*home)
      return dn__error_set(err, DN_ECONFIG, 0,
                           "no .edgerc path and HOME is not set");
    snprintf(home_path, sizeof home_path, "%s/.edgerc", home);
    path = home_path;
  }
  size_t len = 0;
  char *text = read_all(path, &len);
  if (!text)
    return dn__error_set(err, errno == ENOMEM ? DN_ENOMEM : DN_EIO, 0,
                         "cannot read %.200s: %s", path, strerror(errno));
  /* Only the fields .edgerc sets are written: *out may come from an
   * older header, shorter than this library's struct. */
  dn_purge_akamai_options tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = dn__edgerc_parse(text, len, section, &tmp, buf, err);
  dn__wipe(text, len);
  dn__free(text);
  if (rc == 0) {
    out->host = tmp.host;
    out->client_token = tmp.client_token;
    out->client_secret = tmp.client_secret;
    out->access_token = tmp.access_token;
    out->max_body = tmp.max_body;
  }
  return rc;
}
