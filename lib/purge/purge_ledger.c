/* purge_ledger.c - the purges a purger has not settled, in memory and in
 * this process's outbox file.
 *
 * Every batch that goes out is an entry: pending until its requests
 * succeed (then acknowledged and forgotten), or failed when its retries
 * ran out (then kept until it is retried). The entries live in memory,
 * sorted by id, and, when there is an outbox directory, in an append-only
 * file that only this process writes: "put" records are fdatasync'ed
 * before the purge is sent; "ack", "fail" and "retry" records are only
 * written, since losing one at worst repeats a purge. When no entry is
 * left the file is truncated; when it has grown to more than twice what
 * its live entries need, it is rewritten (to a locked temporary file,
 * fdatasync'ed, renamed over it). At start the ledger adopts the files of
 * dead processes: it copies their live entries into its own file, syncs,
 * and only then removes them. A file opens with a "hello" record naming
 * the purger that writes it (backend, profile, a hash of the
 * destinations); only files of the same identity are adopted, so a purge
 * never goes to another configuration's CDN. One mutex guards all of it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"
#include "text.h"

#define COMPACT_MIN ((size_t)1 << 20)

struct dn__ledger {
  uv_mutex_t lock;
  char *dir;
  char base[64]; /* "outbox-<pid>-<hex>" */
  int fd;        /* -1: memory only */
  uint64_t next_id;
  dn__vec entries; /* dn__entry *, by id */
  size_t file_bytes;
  size_t compact_at;
  int any;       /* adopt files of any identity */
  int torn;      /* a failed write left a fragment: start with a newline */
  dn__buf hello; /* the record that opens the file; empty: none */
  char identity[DN__IDENTITY_MAX];
};

static char *join(const char *dir, const char *name, const char *suffix) {
  size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
  char *p = dn__malloc(dl + nl + sl + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, dl);
  p[dl] = '/';
  memcpy(p + dl + 1, name, nl);
  memcpy(p + dl + 1 + nl, suffix, sl + 1);
  return p;
}

static int mkdir_p(char *path) {
  for (char *s = path + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char c = *s;
    *s = '\0';
    int rc = mkdir(path, 0700);
    *s = c;
    if (rc != 0 && errno != EEXIST)
      return -1;
    if (c == '\0')
      return 0;
  }
}

/* Opens "<base>.tmp" locked, for writing. */
static int open_locked_tmp(dn__ledger *l, char **tmp) {
  char *t = join(l->dir, l->base, ".tmp"); /* scanners skip *.tmp */
  *tmp = t;
  if (!t)
    return -1;
  int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    unlink(t);
    fd = -1;
  }
  return fd;
}

/* Creates this process's file: written and locked under a name no scanner
 * looks at, then renamed into place, so nobody adopts it half-made. */
static int create_own(dn__ledger *l, dn_error *err) {
  unsigned char r[8] = {0};
  if (RAND_bytes(r, sizeof r) != 1) {
    uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    memcpy(r, &t, sizeof r);
  }
  char hex[2 * sizeof r + 1];
  hex[dn__hex_encode(hex, r, sizeof r, 0)] = '\0';
  snprintf(l->base, sizeof l->base, "outbox-%ld-%s", (long)getpid(), hex);
  char *tmp = NULL, *path = join(l->dir, l->base, ".log");
  int fd = path ? open_locked_tmp(l, &tmp) : -1;
  if (fd >= 0 && (dn__outbox_write_all(fd, l->hello.data, l->hello.len) ||
                  rename(tmp, path) != 0)) {
    close(fd);
    unlink(tmp);
    fd = -1;
  }
  int e = errno, oom = !path || !tmp;
  dn__free(tmp);
  dn__free(path);
  if (fd < 0 && oom)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  if (fd < 0)
    return dn__error_set(err, DN_EIO, 0,
                         "cannot create an outbox file in %s: %s", l->dir,
                         strerror(e));
  l->fd = fd;
  l->file_bytes = l->hello.len;
  dn__outbox_sync_dir(l->dir);
  return 0;
}

/* Appends b. A write that fails part-way is cut off again, so its
 * fragment cannot glue onto the next record; when even that fails, the
 * next append starts with a newline, which ends the fragment as one bad
 * line. */
static int append(dn__ledger *l, const dn__buf *b, int sync) {
  if (l->fd < 0 || b->len == 0)
    return 0;
  if (l->torn && dn__outbox_write_all(l->fd, "\n", 1) == 0) {
    l->torn = 0;
    l->file_bytes++;
  }
  if (l->torn || dn__outbox_write_all(l->fd, b->data, b->len)) {
    if (l->torn || ftruncate(l->fd, (off_t)l->file_bytes) != 0)
      l->torn = 1;
    return DN_EIO;
  }
  l->file_bytes += b->len;
  if (sync && fdatasync(l->fd) != 0)
    return DN_EIO;
  return 0;
}

/* Moves the live entries of one dead process's file into ours. */
static int adopt_file(dn__ledger *l, const char *name, size_t *adopted) {
  char *path = join(l->dir, name, ""), *data = NULL;
  if (!path)
    return DN_ENOMEM;
  int fd = open(path, O_RDWR | O_CLOEXEC), rc = 0;
  struct stat st;
  dn__vec v;
  dn__vec_init(&v, sizeof(dn__entry *));
  dn__buf out;
  dn__buf_init(&out, 0);
  size_t len = 0;
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
      st.st_nlink == 0)
    goto out; /* alive, or adopted by someone else meanwhile */
  rc = dn__outbox_read_fd(fd, &data, &len);
  char identity[DN__IDENTITY_MAX];
  if (rc == 0 && !l->any) {
    dn__outbox_identity(data, len, identity, sizeof identity);
    if (strcmp(identity, l->identity) != 0)
      goto out; /* another purger's: not ours to send */
  }
  if (rc == 0)
    rc = dn__outbox_apply(&v, data, len, NULL);
  for (size_t i = 0; rc == 0 && i < v.len; i++) {
    dn__entry *e = DN__VEC_AT(&v, dn__entry *, i);
    e->id = l->next_id + i;
    rc = dn__outbox_encode_entry(&out, e);
  }
  if (rc == 0 && dn__vec_reserve(&l->entries, l->entries.len + v.len))
    rc = DN_ENOMEM;
  if (rc == 0)
    rc = append(l, &out, 1);
  if (rc == 0) {
    for (size_t i = 0; i < v.len; i++)
      dn__entries_insert(&l->entries, DN__VEC_AT(&v, dn__entry *, i));
    l->next_id += v.len;
    *adopted += v.len;
    v.len = 0;
    unlink(path);
  }
out:
  dn__entries_free(&v);
  dn__buf_free(&out);
  dn__free(data);
  dn__free(path);
  if (fd >= 0)
    close(fd);
  return rc == DN_EIO && data == NULL ? 0 : rc;
}

static int adopt_all(dn__ledger *l, size_t *adopted, dn_error *err) {
  DIR *d = opendir(l->dir);
  if (!d)
    return dn__error_set(err, DN_EIO, 0, "cannot read outbox directory %s: %s",
                         l->dir, strerror(errno));
  struct dirent *de;
  long pid;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    size_t bl = strlen(l->base);
    if (!dn__outbox_file_name(de->d_name, &pid) ||
        (strncmp(de->d_name, l->base, bl) == 0 &&
         strcmp(de->d_name + bl, ".log") == 0))
      continue;
    rc = adopt_file(l, de->d_name, adopted);
  }
  closedir(d);
  if (rc == DN_ENOMEM)
    return dn__error_set(err, rc, 0, "out of memory");
  if (rc)
    return dn__error_set(err, rc, 0, "cannot write the outbox file in %s",
                         l->dir);
  dn__outbox_sync_dir(l->dir);
  return 0;
}

int dn__ledger_open(const char *dir, dn__ledger **out, size_t *adopted,
                    dn_error *err) {
  return dn__ledger_open_as(dir, NULL, 1, out, adopted, err);
}

int dn__ledger_open_as(const char *dir, const char *identity, int any,
                       dn__ledger **out, size_t *adopted, dn_error *err) {
  dn__ledger *l = dn__calloc(1, sizeof *l);
  if (!l)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  dn__buf_init(&l->hello, 0);
  l->any = any || !identity;
  snprintf(l->identity, sizeof l->identity, "%s", identity ? identity : "");
  if (identity && dir && dn__outbox_encode_hello(&l->hello, l->identity)) {
    dn__buf_free(&l->hello);
    dn__free(l);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  l->fd = -1;
  l->next_id = 1;
  l->compact_at = COMPACT_MIN;
  dn__vec_init(&l->entries, sizeof(dn__entry *));
  *adopted = 0;
  int rc = uv_mutex_init(&l->lock) ? DN_ENOMEM : 0;
  if (rc) {
    dn__buf_free(&l->hello);
    dn__free(l);
    return dn__error_set(err, rc, 0, "cannot create a mutex");
  }
  if (dir && !(l->dir = dn__strndup(dir, strlen(dir))))
    rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  if (rc == 0 && dir && mkdir_p(l->dir) != 0)
    rc = dn__error_set(err, DN_EIO, 0, "cannot create outbox directory %s: %s",
                       dir, strerror(errno));
  if (rc == 0 && dir)
    rc = create_own(l, err);
  if (rc == 0 && dir)
    rc = adopt_all(l, adopted, err);
  if (rc) {
    dn__ledger_close(l);
    return rc;
  }
  *out = l;
  return 0;
}

void dn__ledger_close(dn__ledger *l) {
  if (!l)
    return;
  if (l->fd >= 0) {
    if (l->entries.len == 0) {
      char *path = join(l->dir, l->base, ".log");
      if (path)
        unlink(path);
      dn__free(path);
    }
    close(l->fd);
  }
  dn__entries_free(&l->entries);
  dn__buf_free(&l->hello);
  dn__free(l->dir);
  uv_mutex_destroy(&l->lock);
  dn__free(l);
}

int dn__ledger_durable(const dn__ledger *l) { return l->fd >= 0; }

static void forget(dn__ledger *l, uint64_t id) {
  size_t pos;
  if (!dn__entries_find(&l->entries, id, &pos))
    return;
  dn__entry **items = l->entries.items;
  dn__entry_free(items[pos]);
  memmove(items + pos, items + pos + 1,
          (l->entries.len - pos - 1) * sizeof *items);
  l->entries.len--;
}

int dn__ledger_put(dn__ledger *l, const dn__strlist *tags,
                   const dn__strlist *uris, uint64_t now_ms,
                   const uint64_t *supersede, size_t nsupersede, uint64_t *id) {
  dn__buf b;
  dn__buf_init(&b, 0);
  uv_mutex_lock(&l->lock);
  dn__entry *e = dn__entry_new(l->next_id, now_ms);
  int rc = e ? 0 : DN_ENOMEM;
  if (rc == 0 && (dn__strlist_add_all(&e->tags, tags) ||
                  dn__strlist_add_all(&e->uris, uris)))
    rc = DN_ENOMEM;
  if (rc == 0 && l->fd >= 0)
    rc = dn__outbox_encode_entry(&b, e);
  if (rc == 0 && nsupersede && l->fd >= 0)
    rc = dn__outbox_encode_ids(&b, "ack", supersede, nsupersede, 0, NULL);
  if (rc == 0)
    rc = dn__entries_insert(&l->entries, e);
  if (rc) {
    dn__entry_free(e);
    goto out;
  }
  *id = l->next_id++;
  for (size_t i = 0; i < nsupersede; i++)
    forget(l, supersede[i]);
  rc = append(l, &b, 1);
out:
  uv_mutex_unlock(&l->lock);
  dn__buf_free(&b);
  return rc;
}

/* Rewrites the file with only the live entries, when that halves it. */
static void compact(dn__ledger *l) {
  dn__buf b;
  dn__buf_init(&b, 0);
  char *tmp = NULL, *path = NULL;
  int fd = -1;
  if (dn__buf_append(&b, l->hello.data, l->hello.len))
    goto out;
  for (size_t i = 0; i < l->entries.len; i++)
    if (dn__outbox_encode_entry(&b, DN__VEC_AT(&l->entries, dn__entry *, i)))
      goto out;
  if (b.len * 2 > l->file_bytes)
    goto out;
  path = join(l->dir, l->base, ".log");
  fd = path ? open_locked_tmp(l, &tmp) : -1;
  if (fd < 0)
    goto out;
  if (dn__outbox_write_all(fd, b.data, b.len) || fdatasync(fd) != 0 ||
      rename(tmp, path) != 0) {
    unlink(tmp);
    goto out;
  }
  dn__outbox_sync_dir(l->dir);
  close(l->fd);
  l->fd = fd;
  fd = -1;
  l->file_bytes = b.len;
  l->torn = 0;
out:
  l->compact_at = (b.len * 2 > COMPACT_MIN ? b.len * 2 : COMPACT_MIN);
  if (l->compact_at <= l->file_bytes)
    l->compact_at = l->file_bytes * 2;
  if (fd >= 0)
    close(fd);
  dn__free(tmp);
  dn__free(path);
  dn__buf_free(&b);
}

static int record_ids(dn__ledger *l, const char *op, const uint64_t *ids,
                      size_t n, unsigned attempts, const char *error) {
  dn__buf b;
  dn__buf_init(&b, 0);
  int rc =
      l->fd >= 0 ? dn__outbox_encode_ids(&b, op, ids, n, attempts, error) : 0;
  if (rc == 0)
    rc = append(l, &b, 0);
  dn__buf_free(&b);
  return rc;
}

int dn__ledger_ack(dn__ledger *l, const uint64_t *ids, size_t n) {
  uv_mutex_lock(&l->lock);
  for (size_t i = 0; i < n; i++)
    forget(l, ids[i]);
  int rc = 0;
  if (l->fd >= 0 && l->entries.len == 0) {
    /* Nothing is pending: all but the hello record is garbage. */
    rc = ftruncate(l->fd, (off_t)l->hello.len) == 0 ? 0 : DN_EIO;
    l->file_bytes = l->hello.len;
    l->torn = rc != 0;
    l->compact_at = COMPACT_MIN;
  } else {
    rc = record_ids(l, "ack", ids, n, 0, NULL);
    if (l->fd >= 0 && l->file_bytes >= l->compact_at)
      compact(l);
  }
  uv_mutex_unlock(&l->lock);
  return rc;
}

static void set_state(dn__ledger *l, const uint64_t *ids, size_t n, int state,
                      unsigned attempts, const char *error) {
  for (size_t i = 0; i < n; i++) {
    size_t pos;
    if (!dn__entries_find(&l->entries, ids[i], &pos))
      continue;
    dn__entry *e = DN__VEC_AT(&l->entries, dn__entry *, pos);
    e->state = state;
    if (state == DN_OUTBOX_FAILED) {
      e->attempts += attempts;
      snprintf(e->error, sizeof e->error, "%s", error ? error : "");
    }
  }
}

int dn__ledger_fail(dn__ledger *l, const uint64_t *ids, size_t n,
                    unsigned attempts, const char *error) {
  uv_mutex_lock(&l->lock);
  set_state(l, ids, n, DN_OUTBOX_FAILED, attempts, error);
  int rc = record_ids(l, "fail", ids, n, attempts, error);
  uv_mutex_unlock(&l->lock);
  return rc;
}

int dn__ledger_retry(dn__ledger *l, const uint64_t *ids, size_t n) {
  uv_mutex_lock(&l->lock);
  set_state(l, ids, n, DN_OUTBOX_PENDING, 0, NULL);
  int rc = record_ids(l, "retry", ids, n, 0, NULL);
  uv_mutex_unlock(&l->lock);
  return rc;
}

void dn__ledger_each(dn__ledger *l, int state,
                     void (*fn)(void *ud, const dn__entry *e), void *ud) {
  uv_mutex_lock(&l->lock);
  for (size_t i = 0; i < l->entries.len; i++) {
    const dn__entry *e = DN__VEC_AT(&l->entries, dn__entry *, i);
    if (e->state == state)
      fn(ud, e);
  }
  uv_mutex_unlock(&l->lock);
}

size_t dn__ledger_count(dn__ledger *l, int state) {
  size_t n = 0;
  uv_mutex_lock(&l->lock);
  for (size_t i = 0; i < l->entries.len; i++)
    n += DN__VEC_AT(&l->entries, dn__entry *, i)->state == state;
  uv_mutex_unlock(&l->lock);
  return n;
}
