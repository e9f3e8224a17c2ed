/* purge_outbox.c - the outbox's record format, its replay, and the
 * read-only and cleanup calls on an outbox directory.
 *
 * An outbox file is append-only. Each line is one record: the XXH64 of the
 * JSON text in 16 hex digits, a space, the JSON text and a newline.
 *   {"op":"put","id":7,"at":1700000000000,"tags":["a"],"uris":[]}
 *   {"op":"fail","ids":[7],"attempts":8,"error":"..."}
 *   {"op":"retry","ids":[7]}
 *   {"op":"ack","ids":[7]}
 * A file starts with {"op":"hello","identity":"backend=... profile=...
 * targets=..."}, naming the purger that writes it (files written before
 * identities have none).
 * Replaying applies the records in order; the entries left are the purges
 * still pending or failed. A line whose checksum, JSON or fields do not
 * hold is skipped: a crash in the middle of a write leaves at most a torn
 * last line, and skipping it loses nothing that was acknowledged, because
 * a put is fsynced before its purge is acknowledged or sent. Files are
 * named outbox-<pid>-<hex>.log and locked (flock) by the process that
 * writes them, so a file whose lock can be taken belongs to a dead process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"
#include "text.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)
#define BAD 1 /* a malformed record (distinct from every DN_E* code) */

/* ---- entries ------------------------------------------------------------ */

dn__entry *dn__entry_new(uint64_t id, uint64_t created_ms) {
  dn__entry *e = dn__calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->id = id;
  e->state = DN_OUTBOX_PENDING;
  e->created_ms = created_ms;
  dn__strlist_init(&e->tags);
  dn__strlist_init(&e->uris);
  return e;
}

void dn__entry_free(dn__entry *e) {
  if (!e)
    return;
  dn__strlist_free(&e->tags);
  dn__strlist_free(&e->uris);
  dn__free(e);
}

int dn__entries_find(const dn__vec *v, uint64_t id, size_t *pos) {
  size_t lo = 0, hi = v->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t m = DN__VEC_AT(v, dn__entry *, mid)->id;
    if (m == id) {
      *pos = mid;
      return 1;
    }
    if (m < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  *pos = lo;
  return 0;
}

int dn__entries_insert(dn__vec *v, dn__entry *e) {
  size_t pos;
  dn__entries_find(v, e->id, &pos);
  if (!dn__vec_push(v))
    return DN_ENOMEM;
  dn__entry **items = v->items;
  memmove(items + pos + 1, items + pos, (v->len - 1 - pos) * sizeof *items);
  items[pos] = e;
  return 0;
}

void dn__entries_free(dn__vec *v) {
  for (size_t i = 0; i < v->len; i++)
    dn__entry_free(DN__VEC_AT(v, dn__entry *, i));
  dn__vec_free(v);
}

/* ---- encoding ------------------------------------------------------------ */

static int append_line(dn__buf *out, json_t *obj) {
  char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(obj);
  if (!text)
    return DN_ENOMEM;
  size_t len = strlen(text);
  XXH64_canonical_t h; /* big-endian: the digits read as the number */
  XXH64_canonicalFromHash(&h, XXH64(text, len, 0));
  char sum[17];
  sum[dn__hex_encode(sum, h.digest, sizeof h.digest, 0)] = ' ';
  size_t mark = out->len;
  int rc = dn__buf_append(out, sum, 17);
  if (rc == 0)
    rc = dn__buf_append(out, text, len);
  if (rc == 0)
    rc = dn__buf_append_byte(out, '\n');
  if (rc)
    dn__buf_truncate(out, mark);
  free(text);
  return rc ? DN_ENOMEM : 0;
}

static json_t *strings_json(const dn__strlist *l) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < dn__strlist_count(l); i++) {
    dn_slice s = dn__strlist_at(l, i);
    if (json_array_append_new(a, json_stringn(s.ptr, s.len))) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static json_t *ids_json(const uint64_t *ids, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) {
    if (json_array_append_new(a, json_integer((json_int_t)ids[i]))) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

int dn__outbox_encode_entry(dn__buf *out, const dn__entry *e) {
  json_t *tags = strings_json(&e->tags), *uris = strings_json(&e->uris);
  json_t *o = tags && uris ? json_pack("{s:s,s:I,s:I,s:o,s:o}", "op", "put",
                                       "id", (json_int_t)e->id, "at",
                                       (json_int_t)e->created_ms, "tags", tags,
                                       "uris", uris)
                           : NULL;
  if (!o) {
    json_decref(tags);
    json_decref(uris);
    return DN_ENOMEM;
  }
  size_t mark = out->len;
  int rc = append_line(out, o);
  if (rc == 0 && e->state == DN_OUTBOX_FAILED)
    rc = dn__outbox_encode_ids(out, "fail", &e->id, 1, e->attempts, e->error);
  if (rc)
    dn__buf_truncate(out, mark);
  return rc;
}

int dn__outbox_encode_ids(dn__buf *out, const char *op, const uint64_t *ids,
                          size_t n, unsigned attempts, const char *error) {
  json_t *a = ids_json(ids, n);
  json_t *o = a ? json_pack("{s:s,s:o}", "op", op, "ids", a) : NULL;
  if (!o)
    return DN_ENOMEM;
  if (strcmp(op, "fail") == 0 &&
      (json_object_set_new(o, "attempts", json_integer(attempts)) ||
       json_object_set_new(o, "error", json_string(error ? error : "")))) {
    json_decref(o);
    return DN_ENOMEM;
  }
  return append_line(out, o);
}

int dn__outbox_encode_hello(dn__buf *out, const char *identity) {
  return append_line(
      out, json_pack("{s:s,s:s}", "op", "hello", "identity", identity));
}

/* ---- decoding ------------------------------------------------------------ */

/* Checks a line's checksum (16 lower-case hex digits, as written);
 * *json gets the JSON part. */
static int line_ok(const char *line, size_t len, dn_slice *json) {
  XXH64_canonical_t h;
  if (len < 18 || line[16] != ' ' ||
      dn__hex_decode(h.digest, line, 16, DN__HEX_LOWER_ONLY))
    return 0;
  json->ptr = line + 17;
  json->len = len - 17;
  return XXH64(json->ptr, json->len, 0) == XXH64_hashFromCanonical(&h);
}

static int printable(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  return len > 0;
}

/* Reads a JSON array of strings into l; BAD when malformed. */
static int read_strings(json_t *a, dn__strlist *l, int tags) {
  size_t i;
  json_t *v;
  if (!json_is_array(a))
    return BAD;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!s || (tags ? dn_tag_validate(s, len, NULL) != 0 : !printable(s, len)))
      return BAD;
    if (dn__strlist_add(l, s, len))
      return DN_ENOMEM;
  }
  return 0;
}

static int apply_put(dn__vec *v, json_t *o) {
  json_t *id = json_object_get(o, "id"), *at = json_object_get(o, "at");
  size_t pos;
  if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
      !json_is_integer(at) || json_integer_value(at) < 0 ||
      dn__entries_find(v, (uint64_t)json_integer_value(id), &pos))
    return BAD;
  dn__entry *e = dn__entry_new((uint64_t)json_integer_value(id),
                               (uint64_t)json_integer_value(at));
  if (!e)
    return DN_ENOMEM;
  int rc = read_strings(json_object_get(o, "tags"), &e->tags, 1);
  if (rc == 0)
    rc = read_strings(json_object_get(o, "uris"), &e->uris, 0);
  if (rc == 0 && dn__strlist_count(&e->tags) == 0)
    rc = BAD;
  if (rc == 0)
    rc = dn__entries_insert(v, e);
  if (rc)
    dn__entry_free(e);
  return rc;
}

static void apply_op(dn__vec *v, const char *op, json_t *o, uint64_t id) {
  size_t pos;
  if (!dn__entries_find(v, id, &pos))
    return;
  dn__entry *e = DN__VEC_AT(v, dn__entry *, pos);
  if (strcmp(op, "ack") == 0) {
    dn__entry_free(e);
    memmove((dn__entry **)v->items + pos, (dn__entry **)v->items + pos + 1,
            (v->len - pos - 1) * sizeof e);
    v->len--;
  } else if (strcmp(op, "fail") == 0) {
    json_t *at = json_object_get(o, "attempts");
    const char *err = json_string_value(json_object_get(o, "error"));
    e->state = DN_OUTBOX_FAILED;
    e->attempts = json_is_integer(at) && json_integer_value(at) >= 0
                      ? (unsigned)json_integer_value(at)
                      : 0;
    snprintf(e->error, sizeof e->error, "%s", err ? err : "");
  } else {
    e->state = DN_OUTBOX_PENDING;
  }
}

/* Applies one record; BAD when it is malformed. */
static int apply_record(dn__vec *v, dn_slice text) {
  json_t *o = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES, NULL);
  const char *op = json_string_value(json_object_get(o, "op"));
  int rc = BAD;
  if (op && strcmp(op, "hello") == 0) {
    rc = json_is_string(json_object_get(o, "identity")) ? 0 : BAD;
  } else if (op && strcmp(op, "put") == 0) {
    rc = apply_put(v, o);
  } else if (op && (strcmp(op, "ack") == 0 || strcmp(op, "fail") == 0 ||
                    strcmp(op, "retry") == 0)) {
    json_t *ids = json_object_get(o, "ids"), *x;
    size_t i;
    rc = json_is_array(ids) ? 0 : BAD;
    json_array_foreach(ids, i, x) {
      if (rc == 0 && json_is_integer(x) && json_integer_value(x) > 0)
        apply_op(v, op, o, (uint64_t)json_integer_value(x));
    }
  }
  json_decref(o);
  return rc;
}

int dn__outbox_apply(dn__vec *v, const char *data, size_t len,
                     size_t *corrupt) {
  size_t bad = 0, at = 0;
  while (at < len) {
    const char *nl = memchr(data + at, '\n', len - at);
    if (!nl) {
      bad++; /* a torn last record */
      break;
    }
    size_t n = (size_t)(nl - (data + at));
    dn_slice json;
    int rc = line_ok(data + at, n, &json) ? apply_record(v, json) : BAD;
    if (rc == DN_ENOMEM)
      return DN_ENOMEM;
    if (rc)
      bad++;
    at += n + 1;
  }
  if (corrupt)
    *corrupt += bad;
  return 0;
}

size_t dn__outbox_identity(const char *data, size_t len, char *out,
                           size_t cap) {
  const char *nl = memchr(data, '\n', len);
  dn_slice text;
  size_t n = nl ? (size_t)(nl - data) : 0;
  if (cap)
    out[0] = '\0';
  if (!nl || !line_ok(data, n, &text))
    return 0;
  json_t *o = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES, NULL);
  const char *op = json_string_value(json_object_get(o, "op"));
  const char *id = json_string_value(json_object_get(o, "identity"));
  size_t idlen =
      id ? json_string_length(o == NULL ? NULL : json_object_get(o, "identity"))
         : 0;
  int ok = op && id && strcmp(op, "hello") == 0 && idlen < cap;
  for (size_t i = 0; ok && i < idlen; i++)
    ok = (unsigned char)id[i] >= 0x20 && (unsigned char)id[i] <= 0x7e;
  if (ok)
    snprintf(out, cap, "%s", id);
  json_decref(o);
  return ok ? n + 1 : 0;
}

int dn__outbox_replay_buf(const char *data, size_t len, size_t *entries,
                          size_t *corrupt) {
  dn__vec v;
  dn__vec_init(&v, sizeof(dn__entry *));
  int rc = dn__outbox_apply(&v, data, len, corrupt);
  if (entries)
    *entries = v.len;
  dn__entries_free(&v);
  return rc;
}

/* ---- files --------------------------------------------------------------- */

int dn__outbox_read_fd(int fd, char **data, size_t *len) {
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size > MAX_FILE_BYTES)
    return DN_EIO;
  size_t cap = (size_t)st.st_size, n = 0;
  char *buf = dn__malloc(cap + 1);
  if (!buf)
    return DN_ENOMEM;
  while (n < cap) {
    ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  *data = buf;
  *len = n;
  return 0;
}

int dn__outbox_write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return DN_EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

void dn__outbox_sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

int dn__outbox_file_name(const char *name, long *pid) {
  size_t len = strlen(name);
  if (strncmp(name, "outbox-", 7) != 0 || len < 12 ||
      strcmp(name + len - 4, ".log") != 0)
    return 0;
  long v = 0;
  size_t i = 7;
  for (; i < len && name[i] >= '0' && name[i] <= '9'; i++)
    v = v < 100000000 ? v * 10 + (name[i] - '0') : v;
  if (i == 7 || name[i] != '-')
    return 0;
  for (i++; i < len - 4; i++)
    if (dn__hex_value(name[i], DN__HEX_LOWER_ONLY) < 0)
      return 0;
  *pid = v;
  return 1;
}

static char *path_join(const char *dir, const char *name) {
  size_t dl = strlen(dir), nl = strlen(name);
  char *p = dn__malloc(dl + nl + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, dl);
  p[dl] = '/';
  memcpy(p + dl + 1, name, nl + 1);
  return p;
}

/* ---- scanning and dropping --------------------------------------------- */

typedef struct scan_ctx {
  int (*fn)(void *ud, const dn_outbox_entry *e);
  void *ud;
  size_t corrupt;
  int stop;
} scan_ctx;

static int report_entries(scan_ctx *c, const char *name, long pid, int alive,
                          const char *identity, const dn__vec *v) {
  for (size_t i = 0; i < v->len && !c->stop; i++) {
    const dn__entry *e = DN__VEC_AT(v, dn__entry *, i);
    dn_slice *tags = NULL, *uris = NULL;
    if (dn__strlist_slices(&e->tags, &tags) ||
        dn__strlist_slices(&e->uris, &uris)) {
      dn__free(tags);
      return DN_ENOMEM;
    }
    dn_outbox_entry out = {name,        pid,
                           alive,       e->id,
                           e->state,    e->created_ms,
                           e->attempts, e->error,
                           tags,        dn__strlist_count(&e->tags),
                           uris,        dn__strlist_count(&e->uris),
                           identity};
    c->stop = c->fn(c->ud, &out);
    dn__free(tags);
    dn__free(uris);
  }
  return 0;
}

static int scan_file(scan_ctx *c, const char *dir, const char *name, long pid) {
  char *path = path_join(dir, name), *data = NULL;
  if (!path)
    return DN_ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  dn__free(path);
  if (fd < 0)
    return 0; /* removed meanwhile (adopted by another process) */
  int alive = flock(fd, LOCK_SH | LOCK_NB) != 0;
  size_t len = 0;
  int rc = dn__outbox_read_fd(fd, &data, &len);
  close(fd);
  if (rc == DN_EIO)
    return 0;
  dn__vec v;
  dn__vec_init(&v, sizeof(dn__entry *));
  char identity[DN__IDENTITY_MAX];
  if (rc == 0) {
    dn__outbox_identity(data, len, identity, sizeof identity);
    rc = dn__outbox_apply(&v, data, len, &c->corrupt);
  }
  dn__free(data);
  if (rc == 0)
    rc = report_entries(c, name, pid, alive, identity, &v);
  dn__entries_free(&v);
  return rc;
}

int dn_outbox_scan(const char *dir,
                   int (*fn)(void *ud, const dn_outbox_entry *e), void *ud,
                   size_t *corrupt, dn_error *err) {
  if (!dir || !fn)
    return dn__error_set(err, DN_EINVAL, 0, "no directory or callback");
  DIR *d = opendir(dir);
  if (!d && errno == ENOENT)
    return 0;
  if (!d)
    return dn__error_set(err, DN_EIO, 0, "cannot read outbox directory %s: %s",
                         dir, strerror(errno));
  scan_ctx c = {fn, ud, 0, 0};
  struct dirent *de;
  int rc = 0;
  long pid;
  while (rc == 0 && !c.stop && (de = readdir(d)) != NULL)
    if (dn__outbox_file_name(de->d_name, &pid))
      rc = scan_file(&c, dir, de->d_name, pid);
  closedir(d);
  if (corrupt)
    *corrupt = c.corrupt;
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  return c.stop;
}

/* Rewrites a locked orphan file keeping only the pending entries. */
static int keep_pending(const char *dir, const char *path, dn__vec *v,
                        const char *data, size_t len, size_t *dropped) {
  dn__buf out;
  dn__buf_init(&out, 0);
  char identity[DN__IDENTITY_MAX];
  size_t hello = dn__outbox_identity(data, len, identity, sizeof identity);
  int rc = dn__buf_append(&out, data, hello) ? DN_ENOMEM : 0;
  for (size_t i = 0; rc == 0 && i < v->len; i++) {
    dn__entry *e = DN__VEC_AT(v, dn__entry *, i);
    if (e->state == DN_OUTBOX_FAILED)
      (*dropped)++;
    else
      rc = dn__outbox_encode_entry(&out, e);
  }
  char tmpname[48];
  snprintf(tmpname, sizeof tmpname, ".outbox-drop-%ld.tmp", (long)getpid());
  char *tmp = rc ? NULL : path_join(dir, tmpname);
  int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  if (rc == 0 && fd < 0)
    rc = tmp ? DN_EIO : DN_ENOMEM;
  if (rc == 0 &&
      (flock(fd, LOCK_EX) != 0 || dn__outbox_write_all(fd, out.data, out.len) ||
       fdatasync(fd) != 0 || rename(tmp, path) != 0))
    rc = DN_EIO;
  if (fd >= 0)
    close(fd);
  dn__free(tmp);
  dn__buf_free(&out);
  return rc;
}

static int drop_file(const char *dir, const char *name, int what,
                     size_t *dropped) {
  char *path = path_join(dir, name), *data = NULL;
  if (!path)
    return DN_ENOMEM;
  int fd = open(path, O_RDWR | O_CLOEXEC), rc = 0;
  struct stat st;
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
      st.st_nlink == 0)
    goto out; /* gone, or held by a live process */
  size_t len;
  dn__vec v;
  dn__vec_init(&v, sizeof(dn__entry *));
  rc = dn__outbox_read_fd(fd, &data, &len);
  if (rc == 0)
    rc = dn__outbox_apply(&v, data, len, NULL);
  if (rc == 0 && what == DN_OUTBOX_DROP_ALL) {
    *dropped += v.len;
    rc = unlink(path) == 0 ? 0 : DN_EIO;
  } else if (rc == 0) {
    rc = keep_pending(dir, path, &v, data, len, dropped);
  }
  dn__entries_free(&v);
out:
  if (fd >= 0)
    close(fd);
  dn__free(data);
  dn__free(path);
  return rc;
}

int dn_outbox_drop(const char *dir, int what, size_t *dropped, dn_error *err) {
  size_t count = 0;
  if (!dir || (what != DN_OUTBOX_DROP_FAILED && what != DN_OUTBOX_DROP_ALL))
    return dn__error_set(err, DN_EINVAL, 0, "bad directory or mode");
  DIR *d = opendir(dir);
  if (!d && errno == ENOENT)
    goto done;
  if (!d)
    return dn__error_set(err, DN_EIO, 0, "cannot read outbox directory %s: %s",
                         dir, strerror(errno));
  struct dirent *de;
  int rc = 0;
  long pid;
  while (rc == 0 && (de = readdir(d)) != NULL)
    if (dn__outbox_file_name(de->d_name, &pid))
      rc = drop_file(dir, de->d_name, what, &count);
  closedir(d);
  if (rc)
    return dn__error_set(err, rc, 0, "cannot rewrite an outbox file in %s",
                         dir);
  dn__outbox_sync_dir(dir);
done:
  if (dropped)
    *dropped = count;
  return 0;
}
