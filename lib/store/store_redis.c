/* store_redis.c - the redis store, over hiredis.
 *
 * hiredis contexts are not thread-safe and hiredis 0.14 has no pool, so
 * the store keeps its own: a stack of idle contexts under a mutex, grown up
 * to pool_size and waited on with a condition variable. A context that
 * fails (I/O error, timeout, half-written pipeline) is closed rather than
 * returned, and the next call connects afresh; after a failure the server
 * is left alone for retry_ms so callers fail fast instead of each waiting
 * for a timeout.
 *
 * A connection the server closed while it sat idle (redis `timeout`), or
 * that died with a restarted server, fails only when it is next used. So
 * when a pooled connection fails at the connection level (a send error,
 * EOF or a reset while reading; not a timeout, not an error reply), the
 * same request is sent once more, at once, on a fresh connection, without
 * counting an error or starting the retry window; only when that fails too
 * does the usual failure handling run. See rd_exec for why resending is
 * safe for every command this file sends.
 *
 * Every call is one round trip: commands are appended to the context's
 * buffer, written at once, and the replies read back. hiredis 0.14 writes
 * with write(2), which raises SIGPIPE when the server has gone away and
 * kills a process that did not ignore it; the library must not touch
 * signal dispositions, so this file writes the buffer itself with
 * send(MSG_NOSIGNAL) and leaves only reading to hiredis.
 *
 * Nothing here blocks Redis for long: reads are MGET of the keys asked
 * for, bulk writes go in bounded batches, deletes use UNLINK, and index
 * sets are read with ZSCAN. Index members carry their own deadline as the
 * score of a sorted set, expired members are trimmed on every add, and the
 * key itself expires with its last member.
 *
 * The redis:// URL is parsed with libcurl's URL API; the checks it lacks
 * are at the end of this file, with the constructor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "alloc.h"
#include "blob.h"
#include "error.h"
#include "store.h"
#include "store_codec.h"
#include "text.h"

/* A set_multi batch: at most this many commands or buffered bytes. */
#define RD_BATCH_CMDS 256
#define RD_BATCH_BYTES ((size_t)1 << 20)
/* Keys per MGET; longer reads are split into several pipelined MGETs. */
#define RD_MGET_KEYS 512
/* Longer ttls are cut to 100 years: Redis refuses expiry times that
 * overflow its millisecond clock. */
#define RD_TTL_MAX ((uint64_t)100 * 365 * 24 * 3600 * 1000)
/* The port when the URL names none. */
#define RD_DEFAULT_PORT 6379
/* ZSCAN page size. */
#define RD_SCAN_COUNT "512"

typedef struct rd_store {
  dn__shared_conf conf;
  dn__shared_counters ctr;
  dn__zcache zc;
  dn__redis_url url;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  redisContext **idle;
  unsigned nidle, open;
  uint64_t down_until; /* monotonic ms; no connects before it */
  char seq_key[DN__SKEY_MAX + 1];
  size_t seq_len;
} rd_store;

/* A borrowed connection; `broken` closes it on release. `fresh`: opened
 * during this call (a failure then is not a stale connection); `retried`:
 * this call already reconnected once; `resent`: a request may have been
 * applied by the server before the connection was lost and sent again. */
typedef struct rd_link {
  redisContext *c;
  int broken, fresh, retried, resent;
} rd_link;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(uint32_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

/* Counts a transport failure and, for the retry window, stops new
 * connects. */
static int rd_fail(rd_store *s, rd_link *l, int rc) {
  DN__COUNT(&s->ctr, errors, 1);
  if (l)
    l->broken = 1;
  if (rc != DN_ESTORE && rc != DN_ETIMEDOUT)
    return rc;
  /* The idle connections most likely died with this one (a restarted
   * server): drop them, or each would fail once after the server is back
   * and start another retry window. */
  pthread_mutex_lock(&s->mu);
  s->down_until = mono_ms() + s->conf.retry_ms;
  for (; s->nidle; s->open--)
    redisFree(s->idle[--s->nidle]); /* close(2) only, no network wait */
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int rd_io_error(const redisContext *c, int saved_errno) {
  if (c->err == REDIS_ERR_OOM)
    return DN_ENOMEM;
  if (c->err == REDIS_ERR_IO &&
      (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
       saved_errno == ETIMEDOUT || saved_errno == EINPROGRESS))
    return DN_ETIMEDOUT;
  return DN_ESTORE;
}

/* Writes buf with MSG_NOSIGNAL (see the top). The socket has SO_SNDTIMEO
 * from redisSetTimeout, so a stuck server gives EAGAIN after
 * io_timeout_ms. */
static int rd_flush(redisContext *c, const char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? DN_ETIMEDOUT : DN_ESTORE;
    off += (size_t)w;
  }
  return 0;
}

static void rd_free_replies(redisReply **rep, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (rep[i]) {
      freeReplyObject(rep[i]);
      rep[i] = NULL;
    }
}

/* One round trip of the request in buf. *lost says whether it failed at
 * the connection level: a send error other than a timeout, or EOF or a
 * reset while reading. *sent: the whole request went out. */
static int rd_round_trip(rd_store *s, rd_link *l, const char *buf, size_t len,
                         redisReply **rep, size_t n, int *lost, int *sent) {
  DN__COUNT(&s->ctr, round_trips, 1);
  errno = 0;
  int rc = rd_flush(l->c, buf, len);
  *lost = rc == DN_ESTORE;
  *sent = rc == 0;
  for (size_t i = 0; !rc && i < n; i++) {
    void *r = NULL;
    errno = 0;
    if (redisGetReply(l->c, &r) != REDIS_OK || !r) {
      rc = rd_io_error(l->c, errno);
      *lost = l->c->err == REDIS_ERR_EOF ||
              (l->c->err == REDIS_ERR_IO && rc == DN_ESTORE);
    } else {
      rep[i] = r;
    }
  }
  return rc;
}

static int rd_connect(rd_store *s, rd_link *l);

/* Sends what was appended and reads n replies (freed by the caller with
 * rd_free_replies, also on failure). One round trip, or two when a pooled
 * connection turns out to be dead: the request is then sent again on a
 * fresh connection (once per call, never on a connection this call just
 * opened, never after a timeout, when a slow server may still apply it).
 *
 * Resending is safe for every request in this file. GET, MGET, ZSCAN,
 * SET, UNLINK, ZADD GT, ZREMRANGEBYSCORE and PEXPIREAT NX/GT give the same
 * result when applied twice. INCR of the sequence (inside MULTI/EXEC) may
 * be applied twice when the reply, not the request, was lost: the
 * sequence then moves on by 2, which the engine cannot tell from two bumps
 * (it only needs the sequence to move forward). SET NX (leases, first tag
 * versions) may then find its own value and answer DN_EEXIST: `resent`
 * tells rd_set to read the value back and count its own as stored. */
static int rd_exec(rd_store *s, rd_link *l, redisReply **rep, size_t n) {
  for (size_t i = 0; i < n; i++)
    rep[i] = NULL;
  /* Keep the request: a resend needs it after the context is gone. */
  sds req = l->c->obuf;
  l->c->obuf = sdsempty();
  if (!l->c->obuf) {
    l->c->obuf = req;
    l->broken = 1;
    return DN_ENOMEM;
  }
  int lost = 0, sent = 0;
  int rc = rd_round_trip(s, l, req, sdslen(req), rep, n, &lost, &sent);
  if (rc && lost && !l->fresh && !l->retried) {
    rd_free_replies(rep, n);
    l->retried = 1;
    l->resent = sent;
    DN__COUNT(&s->ctr, reconnects, 1);
    redisFree(l->c);
    rc = rd_connect(s, l); /* counts its own failure */
    if (rc) {
      sdsfree(req);
      return rc;
    }
    rc = rd_round_trip(s, l, req, sdslen(req), rep, n, &lost, &sent);
  }
  sdsfree(req);
  return rc ? rd_fail(s, l, rc) : 0;
}

static int rd_append(rd_link *l, int argc, const char **argv,
                     const size_t *lens) {
  if (redisAppendCommandArgv(l->c, argc, argv, lens) != REDIS_OK) {
    l->broken = 1;
    return DN_ENOMEM;
  }
  return 0;
}

static int is_status(const redisReply *r, const char *text) {
  return r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, text) == 0;
}

/* ---- the pool
 * -----------------------------------------------------------------
 */
/* AUTH and SELECT in one round trip on a fresh connection. */
static int rd_handshake(rd_store *s, rd_link *l) {
  const dn__redis_url *u = &s->url;
  char db[24];
  size_t n = 0;
  int rc = 0;
  if (u->has_password) {
    const char *argv[3] = {"AUTH", u->user, u->password};
    size_t lens[3] = {4, strlen(u->user), strlen(u->password)};
    if (!u->user[0]) { /* no user: AUTH <password> */
      argv[1] = argv[2];
      lens[1] = lens[2];
    }
    rc = rd_append(l, u->user[0] ? 3 : 2, argv, lens);
    n++;
  }
  if (!rc && u->db) {
    int dl = snprintf(db, sizeof db, "%ld", u->db);
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, (size_t)dl};
    rc = rd_append(l, 2, argv, lens);
    n++;
  }
  if (rc || n == 0)
    return rc;
  redisReply *rep[2];
  rc = rd_exec(s, l, rep, n);
  for (size_t i = 0; !rc && i < n; i++)
    if (!is_status(rep[i], "OK"))
      rc = rd_fail(s, l, DN_ESTORE); /* wrong password or db */
  rd_free_replies(rep, n);
  return rc;
}

static int rd_connect(rd_store *s, rd_link *l) {
  errno = 0;
  l->c = redisConnectWithTimeout(s->url.hp.host, (int)s->url.hp.port,
                                 ms_tv(s->conf.connect_timeout_ms));
  l->broken = 0;
  l->fresh = 1;
  if (!l->c)
    return DN_ENOMEM;
  if (l->c->err) {
    int rc = rd_io_error(l->c, errno);
    l->broken = 1;
    return rd_fail(s, l, rc);
  }
  if (redisSetTimeout(l->c, ms_tv(s->conf.io_timeout_ms)) != REDIS_OK) {
    l->broken = 1;
    return rd_fail(s, l, DN_ESTORE);
  }
  redisEnableKeepAlive(l->c);
  return rd_handshake(s, l);
}

static void rd_release(rd_store *s, rd_link *l) {
  redisContext *drop = NULL;
  pthread_mutex_lock(&s->mu);
  if (l->broken || !l->c || l->c->err || s->nidle == s->conf.pool_size) {
    drop = l->c;
    s->open--;
  } else {
    s->idle[s->nidle++] = l->c;
  }
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (drop)
    redisFree(drop);
  l->c = NULL;
}

/* Waits for a free slot. Returns 1 (take an idle context), 2 (open a new
 * one) or a negative error; called and returns with the mutex held. */
static int rd_wait_slot(rd_store *s) {
  uint64_t wait =
      2 * ((uint64_t)s->conf.connect_timeout_ms + s->conf.io_timeout_ms);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)(wait / 1000);
  until.tv_nsec += (long)(wait % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  for (;;) {
    if (s->down_until && mono_ms() < s->down_until)
      return DN_ESTORE;
    if (s->nidle)
      return 1;
    if (s->open < s->conf.pool_size)
      return 2;
    if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
      return DN_ETIMEDOUT;
  }
}

static int rd_acquire(rd_store *s, rd_link *l) {
  l->c = NULL;
  l->broken = l->fresh = l->retried = l->resent = 0;
  pthread_mutex_lock(&s->mu);
  int slot = rd_wait_slot(s);
  if (slot == 1)
    l->c = s->idle[--s->nidle];
  else if (slot == 2)
    s->open++;
  pthread_mutex_unlock(&s->mu);
  if (slot < 0) {
    DN__COUNT(&s->ctr, errors, 1);
    return slot;
  }
  if (slot == 1)
    return 0;
  int rc = rd_connect(s, l);
  if (rc) {
    l->broken = 1;
    rd_release(s, l);
  }
  return rc;
}

/* ---- get_multi
 * ----------------------------------------------------------------
 */
static int rd_seq_get(void *self, uint64_t *out);

/* Decodes MGET's reply; returns 0, DN_ENOMEM or DN_ESTORE (wrong shape).
 * *seq_state: 0 found, 1 missing, 2 not a number. */
static int rd_take(rd_store *s, const redisReply *r, const dn_slice *keys,
                   size_t n, dn_blob **out, uint64_t *seq, int *seq_state) {
  size_t want = n + (seq ? 1 : 0);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != want)
    return DN_ESTORE;
  for (size_t i = 0; i < n; i++) {
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_NIL)
      continue;
    int rc = e->type == REDIS_REPLY_STRING
                 ? dn__codec_decode(&s->zc, e->str, e->len, keys[i],
                                    DN__CODEC_MAX_PAYLOAD, &out[i])
                 : DN_ECORRUPT;
    if (rc == DN_ENOMEM)
      return rc;
    if (rc)
      DN__COUNT(&s->ctr, corrupt, 1);
  }
  if (!seq)
    return 0;
  const redisReply *e = r->element[n];
  *seq_state = 1;
  if (e->type == REDIS_REPLY_STRING)
    *seq_state = dn__parse_seq(e->str, e->len, seq) ? 2 : 0;
  if (*seq_state == 2)
    DN__COUNT(&s->ctr, corrupt, 1);
  return 0;
}

/* Builds MGET commands of at most RD_MGET_KEYS keys each, back to back in
 * one argument array (the sequence key ends the last one), and appends
 * them: one round trip, but Redis serves other clients between them. */
static int rd_append_mgets(rd_store *s, rd_link *l, const dn_slice *keys,
                           size_t n, int with_seq, size_t chunks) {
  size_t m = n + chunks + 1;
  size_t each = sizeof(char *) + sizeof(size_t);
  if (m > SIZE_MAX / (each + DN__SKEY_MAX + 1))
    return DN_ENOMEM;
  char *blk = dn__malloc(m * each + n * (DN__SKEY_MAX + 1));
  if (!blk)
    return DN_ENOMEM;
  const char **argv = (const char **)blk;
  size_t *lens = (size_t *)(argv + m);
  char *kbuf = (char *)(lens + m);
  int rc = 0;
  for (size_t c = 0, i = 0, pos = 0; !rc && c < chunks; c++) {
    size_t start = pos;
    argv[pos] = "MGET";
    lens[pos++] = 4;
    for (size_t end = i + RD_MGET_KEYS; !rc && i < n && i < end; i++, pos++) {
      char *k = kbuf + i * (DN__SKEY_MAX + 1);
      rc = dn__skey(k, &lens[pos], s->conf.ns, DN__SKEY_VALUE, keys[i], 1);
      argv[pos] = k;
    }
    if (with_seq && c + 1 == chunks) {
      argv[pos] = s->seq_key;
      lens[pos++] = s->seq_len;
    }
    if (!rc)
      rc = rd_append(l, (int)(pos - start), argv + start, lens + start);
  }
  dn__free(blk);
  return rc;
}

static int rd_mget(rd_store *s, const dn_slice *keys, size_t n, dn_blob **out,
                   uint64_t *seq, int *seq_state) {
  size_t chunks = (n + RD_MGET_KEYS - 1) / RD_MGET_KEYS;
  redisReply **rep = dn__calloc(chunks, sizeof *rep);
  if (!rep)
    return DN_ENOMEM;
  rd_link l;
  int rc = rd_acquire(s, &l), held = rc == 0;
  if (!rc)
    rc = rd_append_mgets(s, &l, keys, n, seq != NULL, chunks);
  if (!rc)
    rc = rd_exec(s, &l, rep, chunks);
  for (size_t c = 0; !rc && c < chunks; c++) {
    size_t start = c * RD_MGET_KEYS;
    size_t cnt = n - start < RD_MGET_KEYS ? n - start : RD_MGET_KEYS;
    rc = rd_take(s, rep[c], keys + start, cnt, out + start,
                 c + 1 == chunks ? seq : NULL, seq_state);
    if (rc == DN_ESTORE)
      rd_fail(s, &l, rc); /* a reply of the wrong shape */
  }
  rd_free_replies(rep, chunks);
  dn__free(rep);
  if (held)
    rd_release(s, &l);
  return rc;
}

static int rd_get_multi(void *self, const dn_slice *keys, size_t n,
                        dn_blob **out, uint64_t *seq) {
  rd_store *s = self;
  for (size_t i = 0; i < n; i++)
    out[i] = NULL;
  if (!dn__keys_ok(keys, n))
    return DN_EINVAL;
  if (n == 0)
    return seq ? rd_seq_get(s, seq) : 0;
  int seq_state = 0;
  int rc = rd_mget(s, keys, n, out, seq, &seq_state);
  if (!rc && seq && seq_state)
    rc = rd_seq_get(s, seq);
  size_t hits = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc) {
      dn_blob_unref(out[i]);
      out[i] = NULL;
    }
    hits += out[i] != NULL;
  }
  if (!rc) {
    DN__COUNT(&s->ctr, hits, hits);
    DN__COUNT(&s->ctr, misses, n - hits);
  }
  return rc;
}

/* ---- writes
 * ---------------------------------------------------------------------
 */
/* Appends "SET key value [PX ttl] [NX]". `num` holds the ttl's digits. */
static int rd_append_set(rd_link *l, const char *k, size_t kl,
                         const dn__buf *enc, uint64_t ttl_ms, int nx,
                         char num[24]) {
  const char *argv[6] = {"SET", k, enc->data};
  size_t lens[6] = {3, kl, enc->len};
  int argc = 3;
  if (ttl_ms) {
    if (ttl_ms > RD_TTL_MAX)
      ttl_ms = RD_TTL_MAX;
    int nl = snprintf(num, 24, "%llu", (unsigned long long)ttl_ms);
    argv[argc] = "PX";
    lens[argc++] = 2;
    argv[argc] = num;
    lens[argc++] = (size_t)nl;
  }
  if (nx) {
    argv[argc] = "NX";
    lens[argc++] = 2;
  }
  return rd_append(l, argc, argv, lens);
}

static int rd_set_reply(rd_store *s, const redisReply *r, int nx) {
  if (is_status(r, "OK"))
    return 0;
  if (nx && r->type == REDIS_REPLY_NIL)
    return DN_EEXIST;
  DN__COUNT(&s->ctr, errors, 1); /* OOM under maxmemory, READONLY, ... */
  return DN_ESTORE;
}

/* After a resent SET NX answered DN_EEXIST: the first send may have
 * stored the value before its reply was lost. Our own value counts as
 * stored (a lease token is random, so an equal value is ours; a value
 * anyone would write, such as "1", may be another caller's, and then two
 * callers go ahead, which a lease only makes unlikely, never impossible). */
static int rd_add_is_ours(rd_store *s, rd_link *l, const char *k, size_t kl,
                          const dn__buf *enc) {
  const char *argv[2] = {"GET", k};
  size_t lens[2] = {3, kl};
  redisReply *rep = NULL;
  int rc = rd_append(l, 2, argv, lens);
  if (!rc)
    rc = rd_exec(s, l, &rep, 1);
  int ours = !rc && rep->type == REDIS_REPLY_STRING &&
             (size_t)rep->len == enc->len &&
             memcmp(rep->str, enc->data, enc->len) == 0;
  rd_free_replies(&rep, 1);
  return ours;
}

static int rd_set(void *self, dn_slice key, dn_blob *value, uint64_t ttl_ms,
                  int mode) {
  rd_store *s = self;
  if (!dn__keys_ok(&key, 1) || !value)
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1], num[24];
  size_t kl;
  dn__buf enc;
  dn__buf_init(&enc, 0);
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, key, 1);
  if (!rc)
    rc = dn__codec_encode(&s->zc, key, dn_blob_data(value), dn_blob_len(value),
                          s->conf.compress_threshold, s->conf.item_limit, &enc);
  if (rc)
    goto out;
  rd_link l;
  redisReply *rep = NULL;
  rc = rd_acquire(s, &l);
  if (rc)
    goto out;
  int nx = mode == DN_STORE_ADD;
  rc = rd_append_set(&l, k, kl, &enc, ttl_ms, nx, num);
  if (!rc)
    rc = rd_exec(s, &l, &rep, 1);
  if (!rc)
    rc = rd_set_reply(s, rep, nx);
  rd_free_replies(&rep, 1);
  if (rc == DN_EEXIST && l.resent && rd_add_is_ours(s, &l, k, kl, &enc))
    rc = 0;
  rd_release(s, &l);
out:
  dn__buf_free(&enc);
  return rc;
}

/* Sends one batch of SETs starting at keys[*next]; advances *next past
 * what was sent. */
static int rd_set_batch(rd_store *s, rd_link *l, const dn_slice *keys,
                        dn_blob *const *values, size_t n, size_t *next,
                        uint64_t ttl_ms, dn__buf *enc) {
  char k[DN__SKEY_MAX + 1], num[24];
  size_t kl, sent = 0, bytes = 0;
  int rc = 0;
  while (*next < n && sent < RD_BATCH_CMDS && bytes < RD_BATCH_BYTES) {
    size_t i = *next;
    rc = dn__keys_ok(&keys[i], 1) && values[i] ? 0 : DN_EINVAL;
    if (!rc)
      rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, keys[i], 1);
    if (!rc)
      rc = dn__codec_encode(&s->zc, keys[i], dn_blob_data(values[i]),
                            dn_blob_len(values[i]), s->conf.compress_threshold,
                            s->conf.item_limit, enc);
    if (!rc)
      rc = rd_append_set(l, k, kl, enc, ttl_ms, 0, num);
    if (rc)
      break;
    bytes += enc->len;
    sent++;
    (*next)++;
  }
  if (sent == 0 || l->broken)
    return rc;
  redisReply **rep = dn__malloc(sent * sizeof *rep);
  if (!rep) {
    l->broken = 1; /* the batch is appended but will never be read */
    return DN_ENOMEM;
  }
  int xrc = rd_exec(s, l, rep, sent);
  for (size_t i = 0; !xrc && i < sent; i++)
    if (rd_set_reply(s, rep[i], 0))
      xrc = DN_ESTORE;
  rd_free_replies(rep, sent);
  dn__free(rep);
  return rc ? rc : xrc;
}

static int rd_set_multi(void *self, const dn_slice *keys,
                        dn_blob *const *values, size_t n, uint64_t ttl_ms) {
  rd_store *s = self;
  if (n == 0)
    return 0;
  rd_link l;
  int rc = rd_acquire(s, &l);
  if (rc)
    return rc;
  dn__buf enc;
  dn__buf_init(&enc, 0);
  size_t next = 0;
  while (!rc && next < n)
    rc = rd_set_batch(s, &l, keys, values, n, &next, ttl_ms, &enc);
  dn__buf_free(&enc);
  rd_release(s, &l);
  return rc;
}

static int rd_del(void *self, dn_slice key) {
  rd_store *s = self;
  if (!dn__keys_ok(&key, 1))
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1];
  size_t kl;
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_VALUE, key, 1);
  if (rc)
    return rc;
  /* UNLINK frees a large value in the background, not in Redis's loop. */
  const char *argv[2] = {"UNLINK", k};
  size_t lens[2] = {6, kl};
  rd_link l;
  redisReply *rep = NULL;
  rc = rd_acquire(s, &l);
  if (rc)
    return rc;
  rc = rd_append(&l, 2, argv, lens);
  if (!rc)
    rc = rd_exec(s, &l, &rep, 1);
  if (!rc && rep->type != REDIS_REPLY_INTEGER) {
    DN__COUNT(&s->ctr, errors, 1);
    rc = DN_ESTORE;
  }
  rd_free_replies(&rep, 1);
  rd_release(s, &l);
  return rc;
}

/* ---- the invalidation sequence
 * ------------------------------------------------
 */
/* Runs MULTI; SET seq <random> NX; <cmd> seq; EXEC in one round trip, so a
 * lost sequence is recreated at a random value atomically with the read
 * or increment (INCR alone would restart it at 1). Returns the EXEC
 * reply's second element through *res (owned by *exec). */
static int rd_seq_tx(rd_store *s, rd_link *l, const char *cmd,
                     redisReply **exec, const redisReply **res) {
  char num[24];
  int nl =
      snprintf(num, sizeof num, "%llu", (unsigned long long)dn__seq_start());
  const char *multi[1] = {"MULTI"}, *exe[1] = {"EXEC"};
  size_t multi_l[1] = {5}, exe_l[1] = {4};
  const char *set[4] = {"SET", s->seq_key, num, "NX"};
  size_t set_l[4] = {3, s->seq_len, (size_t)nl, 2};
  const char *op[2] = {cmd, s->seq_key};
  size_t op_l[2] = {strlen(cmd), s->seq_len};
  redisReply *rep[4] = {NULL, NULL, NULL, NULL};
  int rc = rd_append(l, 1, multi, multi_l);
  if (!rc)
    rc = rd_append(l, 4, set, set_l);
  if (!rc)
    rc = rd_append(l, 2, op, op_l);
  if (!rc)
    rc = rd_append(l, 1, exe, exe_l);
  if (!rc)
    rc = rd_exec(s, l, rep, 4);
  if (!rc && (rep[3]->type != REDIS_REPLY_ARRAY || rep[3]->elements != 2)) {
    DN__COUNT(&s->ctr, errors, 1);
    rc = DN_ESTORE;
  }
  if (!rc) {
    *exec = rep[3];
    *res = rep[3]->element[1];
    rep[3] = NULL;
  }
  rd_free_replies(rep, 4);
  return rc;
}

/* Replaces a sequence that is not a number (written by someone else). */
static int rd_seq_replace(rd_store *s, rd_link *l, uint64_t *out) {
  char num[24];
  uint64_t start = dn__seq_start();
  int nl = snprintf(num, sizeof num, "%llu", (unsigned long long)start);
  const char *set[3] = {"SET", s->seq_key, num};
  size_t set_l[3] = {3, s->seq_len, (size_t)nl};
  redisReply *rep = NULL;
  DN__COUNT(&s->ctr, corrupt, 1);
  int rc = rd_append(l, 3, set, set_l);
  if (!rc)
    rc = rd_exec(s, l, &rep, 1);
  if (!rc)
    rc = rd_set_reply(s, rep, 0);
  rd_free_replies(&rep, 1);
  if (!rc)
    *out = start;
  return rc;
}

static int rd_seq_op(rd_store *s, const char *cmd, uint64_t *out) {
  rd_link l;
  int rc = rd_acquire(s, &l);
  if (rc)
    return rc;
  redisReply *exec = NULL;
  const redisReply *r = NULL;
  rc = rd_seq_tx(s, &l, cmd, &exec, &r);
  if (!rc) {
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
      *out = (uint64_t)r->integer;
    else if (r->type != REDIS_REPLY_STRING ||
             dn__parse_seq(r->str, r->len, out))
      rc = rd_seq_replace(s, &l, out);
  }
  if (exec)
    freeReplyObject(exec);
  rd_release(s, &l);
  return rc;
}

static int rd_seq_get(void *self, uint64_t *out) {
  return rd_seq_op(self, "GET", out);
}

static int rd_seq_bump(void *self, uint64_t *out) {
  return rd_seq_op(self, "INCR", out);
}

/* ---- the index
 * --------------------------------------------------------------------
 */
/* ZADD GT keeps each member's latest deadline, ZREMRANGEBYSCORE trims the
 * expired ones, and PEXPIREAT NX then GT makes the key live exactly as
 * long as its longest-lived member (NX and GT need Redis 7.0). */
static int rd_index_add(void *self, dn_slice key, dn_slice member,
                        uint64_t ttl_ms) {
  rd_store *s = self;
  if ((!key.ptr && key.len) || (!member.ptr && member.len))
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1], now_s[24], dl_s[24];
  size_t kl;
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_INDEX, key, 1);
  if (rc)
    return rc;
  uint64_t now = wall_ms();
  uint64_t ttl = ttl_ms ? ttl_ms : s->conf.index_ttl_ms;
  uint64_t deadline = now + (ttl > RD_TTL_MAX ? RD_TTL_MAX : ttl);
  size_t nl =
      (size_t)snprintf(now_s, sizeof now_s, "%llu", (unsigned long long)now);
  size_t dl =
      (size_t)snprintf(dl_s, sizeof dl_s, "%llu", (unsigned long long)deadline);
  const char *zadd[5] = {"ZADD", k, "GT", dl_s, member.ptr ? member.ptr : ""};
  size_t zadd_l[5] = {4, kl, 2, dl, member.len};
  const char *trim[4] = {"ZREMRANGEBYSCORE", k, "-inf", now_s};
  size_t trim_l[4] = {16, kl, 4, nl};
  const char *exp_nx[4] = {"PEXPIREAT", k, dl_s, "NX"};
  const char *exp_gt[4] = {"PEXPIREAT", k, dl_s, "GT"};
  size_t exp_l[4] = {9, kl, dl, 2};
  rd_link l;
  redisReply *rep[4] = {NULL, NULL, NULL, NULL};
  rc = rd_acquire(s, &l);
  if (rc)
    return rc;
  rc = rd_append(&l, 5, zadd, zadd_l);
  if (!rc)
    rc = rd_append(&l, 4, trim, trim_l);
  if (!rc)
    rc = rd_append(&l, 4, exp_nx, exp_l);
  if (!rc)
    rc = rd_append(&l, 4, exp_gt, exp_l);
  if (!rc)
    rc = rd_exec(s, &l, rep, 4);
  for (int i = 0; !rc && i < 4; i++)
    if (rep[i]->type != REDIS_REPLY_INTEGER) {
      DN__COUNT(&s->ctr, errors, 1);
      rc = DN_ESTORE;
    }
  rd_free_replies(rep, 4);
  rd_release(s, &l);
  return rc;
}

/* Members collected from ZSCAN pages, before sorting and de-duplication
 * (SCAN may return a member twice). */
typedef struct rd_member {
  char *p;
  size_t len;
} rd_member;

typedef struct rd_members {
  rd_member *v;
  size_t count, cap;
} rd_members;

static void rd_members_free(rd_members *m) {
  for (size_t i = 0; i < m->count; i++)
    dn__free(m->v[i].p);
  dn__free(m->v);
  m->v = NULL;
  m->count = m->cap = 0;
}

static int rd_members_push(rd_members *m, const char *p, size_t len) {
  if (m->count == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    rd_member *v = dn__realloc(m->v, cap * sizeof *v);
    if (!v)
      return DN_ENOMEM;
    m->v = v;
    m->cap = cap;
  }
  char *copy = dn__strndup(p, len);
  if (!copy)
    return DN_ENOMEM;
  m->v[m->count++] = (rd_member){copy, len};
  return 0;
}

static int rd_member_cmp(const void *a, const void *b) {
  const rd_member *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->p, y->p, n) : 0;
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Sorts bytewise, drops duplicates, and moves the members into the layout
 * dn_strings_free releases. On failure m is unchanged. */
static int rd_members_finish(rd_members *m, dn_strings *out) {
  if (m->count)
    qsort(m->v, m->count, sizeof *m->v, rd_member_cmp);
  size_t n = 0;
  for (size_t i = 0; i < m->count; i++)
    n += i == 0 || rd_member_cmp(&m->v[i - 1], &m->v[i]) != 0;
  dn_strings r = {0};
  r.items = dn__calloc(n ? n : 1, sizeof *r.items);
  r.lens = dn__calloc(n ? n : 1, sizeof *r.lens);
  if (!r.items || !r.lens) {
    dn__free(r.items);
    dn__free(r.lens);
    return DN_ENOMEM;
  }
  for (size_t i = 0; i < m->count; i++) {
    if (i && rd_member_cmp(&m->v[i - 1], &m->v[i]) == 0) {
      dn__free(m->v[i].p);
      continue;
    }
    r.items[r.count] = m->v[i].p;
    r.lens[r.count++] = m->v[i].len;
  }
  dn__free(m->v);
  m->v = NULL;
  m->count = m->cap = 0;
  *out = r;
  return 0;
}

/* Takes the live members of one ZSCAN page and the next cursor. */
static int rd_scan_page(const redisReply *r, uint64_t now, rd_members *m,
                        char cursor[32]) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= 32 ||
      r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2)
    return DN_ESTORE;
  memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
  const redisReply *items = r->element[1];
  for (size_t i = 0; i < items->elements; i += 2) {
    const redisReply *mem = items->element[i], *score = items->element[i + 1];
    if (mem->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
      return DN_ESTORE;
    if (strtod(score->str, NULL) <= (double)now)
      continue; /* expired, not trimmed yet */
    int rc = rd_members_push(m, mem->str, mem->len);
    if (rc)
      return rc;
  }
  return 0;
}

/* Walks the sorted set with ZSCAN, one bounded page per round trip. */
static int rd_scan(rd_store *s, rd_link *l, const char *k, size_t kl,
                   rd_members *m) {
  char cursor[32] = "0";
  uint64_t now = wall_ms();
  int rc = 0;
  do {
    const char *argv[5] = {"ZSCAN", k, cursor, "COUNT", RD_SCAN_COUNT};
    size_t lens[5] = {5, kl, strlen(cursor), 5, strlen(RD_SCAN_COUNT)};
    redisReply *rep = NULL;
    rc = rd_append(l, 5, argv, lens);
    if (!rc)
      rc = rd_exec(s, l, &rep, 1);
    if (!rc)
      rc = rd_scan_page(rep, now, m, cursor);
    if (rc == DN_ESTORE && rep) /* WRONGTYPE or a malformed reply */
      DN__COUNT(&s->ctr, errors, 1);
    rd_free_replies(&rep, 1);
  } while (!rc && strcmp(cursor, "0") != 0);
  return rc;
}

static int rd_index_members(void *self, dn_slice key, dn_strings *out) {
  rd_store *s = self;
  if (!out || (!key.ptr && key.len))
    return DN_EINVAL;
  char k[DN__SKEY_MAX + 1];
  size_t kl;
  int rc = dn__skey(k, &kl, s->conf.ns, DN__SKEY_INDEX, key, 1);
  if (rc)
    return rc;
  rd_link l;
  rc = rd_acquire(s, &l);
  if (rc)
    return rc;
  rd_members m = {NULL, 0, 0};
  rc = rd_scan(s, &l, k, kl, &m);
  rd_release(s, &l);
  if (!rc)
    rc = rd_members_finish(&m, out);
  rd_members_free(&m);
  return rc;
}

/* ---- life cycle
 * -------------------------------------------------------------------
 */
static int rd_stats(void *self, dn_store_stats *out) {
  dn__shared_counters_get(&((rd_store *)self)->ctr, out);
  return 0;
}

static void rd_destroy(void *self) {
  rd_store *s = self;
  for (unsigned i = 0; i < s->nidle; i++)
    redisFree(s->idle[i]);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  dn__zcache_free(&s->zc);
  dn__wipe(s->url.password, sizeof s->url.password);
  dn__free(s->idle);
  dn__free(s);
}

static const dn_store_ops rd_ops = {
    .version = DN_STORE_OPS_VERSION,
    .name = "redis",
    .get_multi = rd_get_multi,
    .set = rd_set,
    .set_multi = rd_set_multi,
    .del = rd_del,
    .seq_get = rd_seq_get,
    .seq_bump = rd_seq_bump,
    .index_add = rd_index_add,
    .index_members = rd_index_members,
    .stats = rd_stats,
    .destroy = rd_destroy,
};

static int rd_init_sync(rd_store *s) {
  if (pthread_mutex_init(&s->mu, NULL))
    return DN_ENOMEM;
  if (pthread_cond_init(&s->cv, NULL)) {
    pthread_mutex_destroy(&s->mu);
    return DN_ENOMEM;
  }
  if (dn__zcache_init(&s->zc)) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    return DN_ENOMEM;
  }
  return 0;
}

/* ---- the URL ----------------------------------------------------------------
 * libcurl's URL API parses the URL (RFC 3986): the userinfo and its
 * percent-decoding, the host (IPv6 in brackets), the port and the path.
 * Checked here is only what it lets through that a redis URL must not have
 * (curl 7.88):
 *  - it also takes "redis:/h" and "redis:///h", and an unparsable URL
 *    gives no scheme to read, so the prefix is checked first (and rediss://
 *    always gets its own message);
 *  - it drops an empty fragment ("redis://h/1#"); '?' and '#' can only
 *    start a query or a fragment (RFC 3986 §3), so the text is searched;
 *  - it keeps a '%' that starts no escape ("%zz", a final "%3") as it is;
 *  - it takes "host:" as no port and accepts port 0;
 *  - it moves an IPv6 zone id ("%25eth0") out of the host, where it would
 *    be lost;
 *  - a user without a password, and a db, are ours to refuse.
 */
#define RD_URL_AT 8 /* where the authority starts, after "redis://" */

/* `at` is where the host starts; userinfo faults are reported before it. */
static int rd_url_fail(CURLUcode uc, size_t at, const char *what,
                       dn_error *err) {
  const char *why = NULL;
  switch (uc) {
  case CURLUE_OUT_OF_MEMORY:
    return dn__error_set(err, DN_ENOMEM, 0, "%s: out of memory", what);
  case CURLUE_BAD_PORT_NUMBER:
    why = "port must be 1 to 65535";
    break;
  case CURLUE_NO_HOST:
    why = "empty host";
    break;
  case CURLUE_BAD_HOSTNAME:
    why = "bad host name";
    break;
  case CURLUE_BAD_IPV6:
    why = "bad IPv6 address";
    break;
  case CURLUE_BAD_USER:
  case CURLUE_BAD_PASSWORD:
  case CURLUE_BAD_LOGIN:
    why = "bad byte in user or password";
    at = RD_URL_AT;
    break;
  case CURLUE_URLDECODE:
    why = "user or password has a control byte";
    at = RD_URL_AT;
    break;
  default:
    return dn__error_set(err, DN_ECONFIG, 0, "%s: bad URL (%s)", what,
                         curl_url_strerror(uc));
  }
  return dn__error_set(err, DN_ECONFIG, at, "%s: %s", what, why);
}

/* One part of the URL; *out is NULL when the URL has none. */
static CURLUcode rd_url_get(CURLU *u, CURLUPart part, unsigned flags,
                            char **out) {
  *out = NULL;
  CURLUcode uc = curl_url_get(u, part, out, flags);
  if (uc == CURLUE_NO_USER || uc == CURLUE_NO_PASSWORD ||
      uc == CURLUE_NO_PORT || uc == CURLUE_NO_ZONEID) {
    *out = NULL;
    return CURLUE_OK;
  }
  return uc;
}

static void rd_url_free(char *s) {
  if (s)
    dn__wipe(s, strlen(s));
  curl_free(s);
}

/* RFC 3986 §2.1: a '%' starts two hex digits. */
static int rd_check_escapes(const char *s, size_t at, const char *what,
                            dn_error *err) {
  for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%'))
    if (dn__hex_value(p[1], 0) < 0 || dn__hex_value(p[2], 0) < 0)
      return dn__error_set(err, DN_ECONFIG, at + (size_t)(p - s),
                           "%s: bad percent-encoding", what);
  return 0;
}

/* Percent-decodes one userinfo part into out[cap]. */
static int rd_url_decoded(CURLU *u, CURLUPart part, const char *what, char *out,
                          size_t cap, dn_error *err) {
  char *v;
  CURLUcode uc = rd_url_get(u, part, CURLU_URLDECODE, &v);
  if (uc)
    return rd_url_fail(uc, RD_URL_AT, what, err);
  size_t len = v ? strlen(v) : 0;
  int rc = 0;
  if (len >= cap)
    rc = dn__error_set(err, DN_ECONFIG, RD_URL_AT,
                       "%s: user or password too long", what);
  else
    memcpy(out, v ? v : "", len + 1);
  rd_url_free(v);
  return rc;
}

static int rd_url_userinfo(CURLU *u, const char *what, dn__redis_url *out,
                           dn_error *err) {
  char *user, *pw = NULL;
  CURLUcode uc = rd_url_get(u, CURLUPART_USER, 0, &user);
  if (!uc)
    uc = rd_url_get(u, CURLUPART_PASSWORD, 0, &pw);
  int rc = uc ? rd_url_fail(uc, RD_URL_AT, what, err) : 0;
  if (!rc && user && !pw)
    rc = dn__error_set(err, DN_ECONFIG, RD_URL_AT,
                       "%s: expected [user]:password@ before the host", what);
  if (!rc && pw) {
    const char *raw_user = user ? user : "";
    rc = rd_check_escapes(raw_user, RD_URL_AT, what, err);
    if (!rc)
      rc = rd_check_escapes(pw, RD_URL_AT + strlen(raw_user) + 1, what, err);
    if (!rc)
      rc = rd_url_decoded(u, CURLUPART_USER, what, out->user, sizeof out->user,
                          err);
    if (!rc)
      rc = rd_url_decoded(u, CURLUPART_PASSWORD, what, out->password,
                          sizeof out->password, err);
    out->has_password = rc == 0;
  }
  rd_url_free(user);
  rd_url_free(pw);
  return rc;
}

/* The host starts at `at` and the authority ends at `end` (the path). */
static int rd_url_hostport(CURLU *u, const char *s, size_t at, size_t end,
                           const char *what, dn__hostport *hp, dn_error *err) {
  char *host = NULL, *zone = NULL, *port = NULL;
  CURLUcode uc = rd_url_get(u, CURLUPART_HOST, 0, &host);
  if (!uc)
    uc = rd_url_get(u, CURLUPART_ZONEID, 0, &zone);
  if (!uc)
    uc = rd_url_get(u, CURLUPART_PORT, 0, &port);
  int rc = uc ? rd_url_fail(uc, at, what, err) : 0;
  size_t from = host && host[0] == '[', hl = host ? strlen(host) - 2 * from : 0;
  if (!rc && zone)
    rc = dn__error_set(err, DN_ECONFIG, at,
                       "%s: IPv6 zone ids are not supported", what);
  else if (!rc && hl == 0)
    rc = dn__error_set(err, DN_ECONFIG, at, "%s: empty host", what);
  else if (!rc && hl >= DN__HOST_MAX)
    rc = dn__error_set(err, DN_ECONFIG, at, "%s: host name too long", what);
  hp->port = port ? (unsigned)strtoul(port, NULL, 10) : RD_DEFAULT_PORT;
  if (!rc && (hp->port == 0 || (!port && s[end - 1] == ':')))
    rc =
        dn__error_set(err, DN_ECONFIG, at, "%s: port must be 1 to 65535", what);
  if (!rc) {
    memcpy(hp->host, host + from, hl);
    hp->host[hl] = '\0';
  }
  curl_free(host);
  curl_free(zone);
  curl_free(port);
  return rc;
}

/* The path: "/" and a db number, or nothing. */
static int rd_url_db(CURLU *u, size_t at, const char *what, long *db,
                     dn_error *err) {
  char *path;
  CURLUcode uc = rd_url_get(u, CURLUPART_PATH, 0, &path);
  if (uc)
    return rd_url_fail(uc, at, what, err);
  const char *d = path && path[0] == '/' ? path + 1 : "";
  size_t len = strlen(d);
  long v = 0;
  int rc = len > 9 ? dn__error_set(err, DN_ECONFIG, at + 1,
                                   "%s: db number too large", what)
                   : 0;
  for (size_t i = 0; !rc && i < len; i++)
    if (d[i] >= '0' && d[i] <= '9')
      v = v * 10 + (d[i] - '0');
    else
      rc = dn__error_set(err, DN_ECONFIG, at + 1 + i,
                         "%s: db must be a decimal number", what);
  *db = rc ? 0 : v;
  curl_free(path);
  return rc;
}

int dn__parse_redis_url(const char *s, const char *what, dn__redis_url *out,
                        dn_error *err) {
  memset(out, 0, sizeof *out);
  if (strncasecmp(s, "rediss://", 9) == 0)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "%s: TLS (rediss://) is not supported", what);
  if (strncasecmp(s, "redis://", 8) != 0)
    return dn__error_set(err, DN_ECONFIG, 0, "%s: must start with redis://",
                         what);
  size_t q = strcspn(s, "?#"), end = RD_URL_AT + strcspn(s + RD_URL_AT, "/");
  if (s[q])
    return dn__error_set(err, DN_ECONFIG, q,
                         "%s: query and fragment are not supported", what);
  size_t host_at = RD_URL_AT;
  for (size_t i = RD_URL_AT; i < end; i++)
    if (s[i] == '@')
      host_at = i + 1;
  if (host_at == end)
    return dn__error_set(err, DN_ECONFIG, host_at, "%s: empty host", what);
  CURLU *u = curl_url();
  if (!u)
    return DN_ENOMEM;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, s,
                              CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
  int rc = uc ? rd_url_fail(uc, host_at, what, err) : 0;
  if (!rc)
    rc = rd_url_userinfo(u, what, out, err);
  if (!rc)
    rc = rd_url_hostport(u, s, host_at, end, what, &out->hp, err);
  if (!rc)
    rc = rd_url_db(u, end, what, &out->db, err);
  curl_url_cleanup(u);
  if (rc)
    dn__wipe(out->password, sizeof out->password);
  return rc;
}

int dn__store_redis_describe(const char *url, char *out, size_t size) {
  dn__redis_url u;
  int rc = dn__parse_redis_url(url, "", &u, NULL);
  if (rc)
    return rc;
  snprintf(out, size, "redis, db %ld%s: ", u.db,
           u.has_password ? ", with password" : "");
  dn__hostport_describe(&u.hp, out, size);
  dn__wipe(u.password, sizeof u.password);
  return 0;
}

/* ---- creating ---------------------------------------------------------------
 */
int dn_store_redis_new(const char *url, const dn_store_shared_options *opts,
                       dn_store **out, dn_error *err) {
  if (!url || !out)
    return dn__error_set(err, DN_EINVAL, 0, "url and out are required");
  rd_store *s = dn__calloc(1, sizeof *s);
  if (!s)
    return DN_ENOMEM;
  int rc = dn__shared_conf_init(&s->conf, opts, err);
  if (!rc)
    rc = dn__parse_redis_url(url, "url", &s->url, err);
  if (!rc) {
    s->idle = dn__calloc(s->conf.pool_size, sizeof *s->idle);
    rc = s->idle ? rd_init_sync(s) : DN_ENOMEM;
  }
  if (rc) {
    dn__wipe(s->url.password, sizeof s->url.password);
    dn__free(s->idle);
    dn__free(s);
    return rc;
  }
  dn__shared_counters_init(&s->ctr);
  s->seq_len = dn__skey_seq(s->seq_key, s->conf.ns);
  rc = dn_store_new(&rd_ops, s, out);
  if (rc)
    rd_destroy(s);
  return rc;
}
