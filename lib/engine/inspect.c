/* inspect.c - what the cache holds for a URI: its view, its shell's holes
 * and the resources that embed it (the reverse graph). The CLI's inspect
 * and deps commands and the server's control API are built on these. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"
#include "error.h"
#include "uri.h"

static int normalize(const char *uri, size_t len, dn__buf *b, dn_error *err) {
  dn__buf_init(b, DN_URI_MAX + 1);
  if (!uri)
    return dn__error_set(err, DN_EINVAL, 0, "uri is required");
  return dn__uri_normalize_buf(b, uri, len, err);
}

static int strings_push(dn_strings *s, size_t *cap, const char *p, size_t len) {
  if (s->count == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    char **items = dn__realloc(s->items, nc * sizeof *items);
    if (!items)
      return DN_ENOMEM;
    s->items = items;
    size_t *lens = dn__realloc(s->lens, nc * sizeof *lens);
    if (!lens)
      return DN_ENOMEM;
    s->lens = lens;
    *cap = nc;
  }
  char *copy = dn__strndup(p, len);
  if (!copy)
    return DN_ENOMEM;
  s->items[s->count] = copy;
  s->lens[s->count++] = len;
  return 0;
}

/* The holes of a decoded shell as strings. */
static int shell_holes(const dn__shell *sh, dn_strings *out) {
  dn_strings s = {0};
  size_t cap = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sh->nholes; i++)
    rc = strings_push(&s, &cap, sh->holes[i].uri.ptr, sh->holes[i].uri.len);
  if (rc) {
    dn_strings_free(&s);
    return rc;
  }
  *out = s;
  return 0;
}

int dn_engine_holes(dn_engine *e, const char *uri, size_t len, dn_strings *out,
                    dn_error *err) {
  dn__buf b;
  int rc = normalize(uri, len, &b, err);
  dn_blob *blob = NULL;
  int valid;
  if (rc == 0)
    rc = dn__engine_read(e, b.data, b.len, 0, &blob, &valid);
  const dn__shell *sh;
  if (rc == 0 && !blob)
    rc = dn__error_set(err, DN_ENOTFOUND, 0, "no shell of '%s' is cached",
                       b.data);
  else if (rc == 0 && (rc = dn__shell_decode(blob, &sh)) == 0)
    rc = shell_holes(sh, out);
  dn_blob_unref(blob);
  dn__buf_free(&b);
  return rc;
}

/* 1 when the cached shell of `parent` still embeds `uri`. */
static int still_embeds(dn_engine *e, const char *parent, size_t plen,
                        const char *uri, size_t len) {
  dn_blob *blob = NULL;
  int valid, found = 0;
  const dn__shell *sh;
  if (dn__engine_read(e, parent, plen, 0, &blob, &valid) || !blob)
    return 0;
  if (dn__shell_decode(blob, &sh) == 0)
    for (size_t i = 0; !found && i < sh->nholes; i++)
      found = sh->holes[i].uri.len == len &&
              memcmp(sh->holes[i].uri.ptr, uri, len) == 0;
  dn_blob_unref(blob);
  return found;
}

int dn_engine_dependents(dn_engine *e, const char *uri, size_t len,
                         dn_strings *out, dn_error *err) {
  if (!e || !out)
    return dn__error_set(err, DN_EINVAL, 0, "engine and out are required");
  dn__buf b, k;
  int rc = normalize(uri, len, &b, err);
  dn__buf_init(&k, 0);
  dn_strings all = {0}, live = {0};
  size_t cap = 0;
  if (rc == 0)
    rc = dn__engine_key(e, &k, 'r', b.data, b.len);
  if (rc == 0) {
    rc = dn__store_index_members(e->store, (dn_slice){k.data, k.len}, &all);
    if (rc == DN_ENOTSUP)
      dn__error_set(err, rc, 0, "the %s store keeps no reverse index",
                    dn_store_name(e->store));
  }
  /* The index only grows; keep the members whose shells still embed it. */
  for (size_t i = 0; rc == 0 && i < all.count; i++)
    if (still_embeds(e, all.items[i], all.lens[i], b.data, b.len))
      rc = strings_push(&live, &cap, all.items[i], all.lens[i]);
  dn_strings_free(&all);
  if (rc)
    dn_strings_free(&live);
  else
    *out = live;
  dn__buf_free(&k);
  dn__buf_free(&b);
  return rc;
}

static json_t *slices_json(const dn_slice *s, size_t n, size_t stride) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) {
    const dn_slice *x = (const dn_slice *)((const char *)s + i * stride);
    json_array_append_new(a, json_stringn(x->ptr, x->len));
  }
  return a;
}

static void describe_view(dn_engine *e, json_t *o, dn_blob *blob, int valid) {
  dn_rep *v;
  if (dn__view_decode(blob, &v))
    return;
  uint64_t now = dn__engine_now(e);
  json_object_set_new(o, "cached", json_boolean(valid));
  json_object_set_new(o, "etag", json_stringn(v->etag.ptr, v->etag.len));
  json_object_set_new(
      o, "tags", slices_json(&v->tags[0].tag, v->ntags, sizeof(dn__tagver)));
  json_object_set_new(o, "vary",
                      slices_json(v->vary, v->nvary, sizeof(dn_slice)));
  json_object_set_new(o, "ttl",
                      v->ttl_s < 0 ? json_null() : json_integer(v->ttl_s));
  json_object_set_new(o, "s_maxage",
                      v->smaxage_s < 0 ? json_null()
                                       : json_integer(v->smaxage_s));
  json_object_set_new(
      o, "age",
      json_integer(now > v->created_ms
                       ? (json_int_t)((now - v->created_ms) / 1000)
                       : 0));
  json_object_set_new(o, "bytes", json_integer((json_int_t)v->body.len));
}

static json_t *describe_holes(const dn__shell *sh) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < sh->nholes; i++)
    json_array_append_new(
        a, json_pack("{s:s%,s:b}", "uri", sh->holes[i].uri.ptr,
                     sh->holes[i].uri.len, "cacheable",
                     !(sh->holes[i].flags & DN_EMBED_UNCACHEABLE)));
  return a;
}

int dn_engine_inspect_json(dn_engine *e, const char *uri, size_t len,
                           char **json_out, dn_error *err) {
  if (!e || !json_out)
    return dn__error_set(err, DN_EINVAL, 0, "engine and out are required");
  dn__buf b;
  int rc = normalize(uri, len, &b, err);
  json_t *o = rc ? NULL : json_object();
  if (rc == 0 && !o)
    rc = DN_ENOMEM;
  dn_blob *view = NULL, *shell = NULL;
  int vvalid = 0, svalid = 0;
  if (rc == 0)
    rc = dn__engine_read(e, b.data, b.len, 1, &view, &vvalid);
  if (rc == 0)
    rc = dn__engine_read(e, b.data, b.len, 0, &shell, &svalid);
  if (rc)
    goto out;
  char tag[DN_URI_TAG_MAX + 1];
  dn__uri_tag_write(b.data, b.len, tag);
  json_object_set_new(o, "uri", json_stringn(b.data, b.len));
  json_object_set_new(o, "uri_tag", json_string(tag));
  json_object_set_new(o, "cached", json_false());
  if (view)
    describe_view(e, o, view, vvalid);
  const dn__shell *sh;
  json_object_set_new(o, "shell_cached", json_boolean(shell && svalid));
  if (shell && dn__shell_decode(shell, &sh) == 0)
    json_object_set_new(o, "holes", describe_holes(sh));
  else
    json_object_set_new(o, "holes", json_array());
  dn_strings deps = {0};
  int drc = dn_engine_dependents(e, b.data, b.len, &deps, NULL);
  json_t *dj = json_array();
  for (size_t i = 0; drc == 0 && dj && i < deps.count; i++)
    json_array_append_new(dj, json_stringn(deps.items[i], deps.lens[i]));
  json_object_set_new(o, "dependents", drc == 0 ? dj : json_null());
  if (drc)
    json_decref(dj);
  dn_strings_free(&deps);
  char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  *json_out = text ? dn__strndup(text, strlen(text)) : NULL;
  free(text);
  if (!*json_out)
    rc = DN_ENOMEM;
out:
  json_decref(o);
  dn_blob_unref(view);
  dn_blob_unref(shell);
  dn__buf_free(&b);
  return rc;
}
