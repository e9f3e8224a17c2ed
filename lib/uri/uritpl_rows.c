/* uritpl_rows.c - URI tags from a template over rows (BEAR.Sunday's
 * fromAssoc).
 *
 * A resource that renders a list of rows depends on the resource behind
 * each row. Given a template such as "app://self/item{?id}" and the rows
 * as a JSON array of objects, each row is used as the variables of one
 * expansion, and the URI tag of the resulting URI (dn_uri_tag) is
 * collected. Tags keep the order of their first row; an open-addressing
 * index over the tags found so far drops duplicates in constant time, so
 * a large result set costs one pass.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "uritpl.h"

/* The tags found so far, in order, with an open-addressing index over
 * them (slot = item index + 1, 0 = empty) to drop duplicates in O(1). */
typedef struct tagset {
  char **items;
  size_t *lens;
  size_t count;
  size_t *slots;
  size_t mask;
} tagset;

static int tagset_init(tagset *ts, size_t rows) {
  memset(ts, 0, sizeof *ts);
  if (rows == 0)
    return 0;
  size_t cap = 8;
  while (cap / 2 < rows && cap < SIZE_MAX / 4)
    cap *= 2;
  ts->items = dn__calloc(rows, sizeof *ts->items);
  ts->lens = dn__calloc(rows, sizeof *ts->lens);
  ts->slots = cap / 2 >= rows ? dn__calloc(cap, sizeof *ts->slots) : NULL;
  ts->mask = cap - 1;
  if (ts->items && ts->lens && ts->slots)
    return 0;
  dn__free(ts->items);
  dn__free(ts->lens);
  dn__free(ts->slots);
  return DN_ENOMEM;
}

static void tagset_free(tagset *ts) {
  for (size_t i = 0; i < ts->count; i++)
    dn__free(ts->items[i]);
  dn__free(ts->items);
  dn__free(ts->lens);
  dn__free(ts->slots);
}

static int tagset_add(tagset *ts, const char *tag, size_t len) {
  size_t h = (size_t)XXH3_64bits(tag, len) & ts->mask;
  for (; ts->slots[h]; h = (h + 1) & ts->mask) {
    size_t k = ts->slots[h] - 1;
    if (ts->lens[k] == len && memcmp(ts->items[k], tag, len) == 0)
      return 0;
  }
  char *copy = dn__strndup(tag, len);
  if (!copy)
    return DN_ENOMEM;
  ts->items[ts->count] = copy;
  ts->lens[ts->count] = len;
  ts->slots[h] = ++ts->count;
  return 0;
}

/* Expands the template over one row and adds the row's URI tag. */
static int row_tag(const dn_uritpl *t, json_t *row, size_t i, dn__buf *uri,
                   tagset *ts, dn_error *err) {
  char tag[DN_URI_TAG_MAX + 1];
  size_t tlen = 0;
  dn_error e;
  if (!json_is_object(row))
    return dn__error_set(err, DN_EJSON, 0, "rows[%zu] is not a JSON object", i);
  dn__error_clear(&e);
  dn__buf_truncate(uri, 0);
  int rc = dn__uritpl_expand_json(t, row, uri, &e);
  if (rc)
    return dn__error_set(err, rc, e.position, "rows[%zu]: %s", i, e.text);
  rc = dn_uri_tag(uri->data ? uri->data : "", uri->len, tag, &tlen, &e);
  if (rc)
    return dn__error_set(err, rc, e.position,
                         "rows[%zu]: its URI, at byte %zu: %s", i, e.position,
                         e.text[0] ? e.text : dn_strerror(rc));
  rc = tagset_add(ts, tag, tlen);
  return rc ? dn__uritpl_buf_fail(err, rc, 0) : 0;
}

int dn__uritpl_tags_from_json(const dn_uritpl *tpl, json_t *rows,
                              dn_strings *out, dn_error *err) {
  if (!tpl || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no template or no output");
  if (!json_is_array(rows))
    return dn__error_set(err, DN_EJSON, 0, "the rows must be a JSON array");
  tagset ts;
  dn__buf uri;
  dn__buf_init(&uri, DN__URITPL_OUT_MAX);
  int rc = tagset_init(&ts, json_array_size(rows));
  if (rc)
    return dn__uritpl_buf_fail(err, rc, 0);
  for (size_t i = 0; rc == 0 && i < json_array_size(rows); i++)
    rc = row_tag(tpl, json_array_get(rows, i), i, &uri, &ts, err);
  dn__buf_free(&uri);
  if (rc) {
    tagset_free(&ts);
    return rc;
  }
  dn__free(ts.slots);
  out->items = ts.items;
  out->lens = ts.lens;
  out->count = ts.count;
  return 0;
}

int dn_uri_tags_from_rows(const char *tpl, size_t tpl_len,
                          const char *rows_json, size_t rows_len,
                          dn_strings *out, dn_error *err) {
  if (!rows_json || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no rows or no output");
  dn_uritpl *t = NULL;
  json_t *rows = NULL;
  int rc = dn_uritpl_parse(tpl, tpl_len, &t, err);
  if (rc == 0)
    rc = dn__uritpl_load_json(rows_json, rows_len, true, &rows, err);
  if (rc == 0)
    rc = dn__uritpl_tags_from_json(t, rows, out, err);
  json_decref(rows);
  dn_uritpl_free(t);
  return rc;
}
