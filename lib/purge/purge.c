/* purge.c - the purger's public calls: creating and freeing it, queueing
 * tags and URIs from any thread, draining, statistics.
 *
 * Queueing takes the purger's mutex, copies the tags into the queue
 * (purge_queue.c) and wakes the loop with uv_async_send; nothing here
 * touches the network. The loop thread (purge_loop.c) forms batches out of
 * the queue, and frees a purger on a caller's loop through the callback
 * given to dn__purge_loop_init once its handles are closed. Two locks
 * exist, the purger's and the ledger's, and no code holds both: the
 * ledger's is taken only with the purger's released.
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"

#define DEF_WINDOW_MS 50
#define DEF_ATTEMPTS 8
#define DEF_BACKOFF_MS 500
#define DEF_MAX_BACKOFF_MS 60000
#define DEF_MAX_RETRY_AFTER_MS 3600000
#define DEF_TIMEOUT_MS 10000
#define DEF_CONNECT_MS 5000
#define DEF_INFLIGHT 16

void dn_purger_options_init_size(dn_purger_options *o, size_t size) {
  dn_purger_options d;
  memset(&d, 0, sizeof d);
  d.profile = DN_CDN_NONE;
  d.durability = DN_PURGE_SYNC_BEFORE_SEND;
  dn__options_init(o, size, &d, sizeof d);
}

int dn__purger_options_read(const dn_purger_options *opts,
                            dn_purger_options *out, dn_error *err) {
  dn_purger_options_init(out);
  /* Options from an older header end before the fields it did not have;
   * adopt_any is the last field this library knows. */
  return opts ? DN__OPTIONS_READ(dn_purger_options, profile, adopt_any, out,
                                 opts, err)
              : 0;
}

static void apply_defaults(dn_purger_options *o) {
  if (!o->window_ms)
    o->window_ms = DEF_WINDOW_MS;
  if (!o->max_attempts)
    o->max_attempts = DEF_ATTEMPTS;
  if (!o->backoff_ms)
    o->backoff_ms = DEF_BACKOFF_MS;
  if (!o->max_backoff_ms)
    o->max_backoff_ms = DEF_MAX_BACKOFF_MS;
  if (!o->max_retry_after_ms)
    o->max_retry_after_ms = DEF_MAX_RETRY_AFTER_MS;
  if (!o->timeout_ms)
    o->timeout_ms = DEF_TIMEOUT_MS;
  if (!o->connect_timeout_ms)
    o->connect_timeout_ms = DEF_CONNECT_MS;
  if (!o->max_inflight)
    o->max_inflight = DEF_INFLIGHT;
}

void dn_purge_backend_free(dn_purge_backend *b) {
  if (b && b->ops && b->ops->destroy)
    b->ops->destroy(b->self);
  if (b) {
    b->ops = NULL;
    b->self = NULL;
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void destroy(dn_purger *p) {
  dn__ledger_close(p->ledger);
  dn__queue_free(&p->queue);
  dn_purge_backend_free(&p->backend);
  uv_cond_destroy(&p->idle_cond);
  uv_mutex_destroy(&p->lock);
  dn__free(p->outbox_dir);
  dn__free(p);
}

static void thread_main(void *arg) {
  dn_purger *p = arg;
  uv_run(p->loop, UV_RUN_DEFAULT);
}

static int check_backend(const dn_purge_backend *b, dn_error *err) {
  const dn_purger_ops *o = b->ops;
  if (!o || o->version < 1 || !o->name || !o->targets || !o->build)
    return dn__error_set(err, DN_EINVAL, 0, "incomplete purger ops table");
  if (o->targets(b->self) < 1)
    return dn__error_set(err, DN_EINVAL, 0, "purger %s has no target", o->name);
  return 0;
}

/* "backend=NAME profile=NAME targets=HEX16": what the purger's outbox
 * file is stamped with. The destinations are hashed; they never hold a
 * credential anyway. */
static void identity_of(const dn_purge_backend *b, dn_cdn_profile profile,
                        char *out, size_t cap) {
  char dest[4096] = "";
  if (b->ops->version >= 2 && b->ops->destinations)
    b->ops->destinations(b->self, dest, sizeof dest);
  dest[sizeof dest - 1] = '\0';
  snprintf(out, cap, "backend=%.64s profile=%s targets=%016llx", b->ops->name,
           dn_cdn_profile_name(profile),
           (unsigned long long)XXH64(dest, strlen(dest), 0));
  for (char *c = out; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
      *c = '?';
}

static int start(dn_purger *p, size_t adopted, dn_error *err) {
  int rc = dn__purge_requeue(p, DN_OUTBOX_PENDING);
  if (rc == 0 && p->o.retry_failed)
    rc = dn__purge_requeue(p, DN_OUTBOX_FAILED);
  if (rc)
    return dn__error_set(err, rc, 0, "out of memory");
  p->stats.replayed = adopted;
  if (p->owns_loop) {
    if (uv_loop_init(&p->own_loop))
      return dn__error_set(err, DN_ESTATE, 0, "cannot create an event loop");
    p->loop = &p->own_loop;
  } else {
    p->loop_thread = uv_thread_self();
  }
  rc = dn__purge_loop_init(p, destroy);
  if (rc) {
    if (p->owns_loop)
      uv_loop_close(&p->own_loop);
    return dn__error_set(err, rc, 0, "cannot start the purger's loop");
  }
  return 0;
}

int dn_purger_new(dn_purge_backend backend, const dn_purger_options *opts,
                  dn_purger **out, dn_error *err) {
  if (!out)
    return dn__error_set(err, DN_EINVAL, 0, "no output");
  int rc = check_backend(&backend, err);
  if (rc)
    return rc;
  if (dn__curl_global_init())
    return dn__error_set(err, DN_ESTATE, 0, "libcurl failed to initialise");
  dn_purger_options o;
  if ((rc = dn__purger_options_read(opts, &o, err)) != 0)
    return rc;
  dn_purger *p = dn__calloc(1, sizeof *p);
  if (!p)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  p->o = o;
  apply_defaults(&p->o);
  p->owns_loop = o.loop == NULL;
  p->loop = o.loop;
  dn__queue_init(&p->queue);
  if (uv_mutex_init(&p->lock)) {
    dn__free(p);
    return dn__error_set(err, DN_ENOMEM, 0, "cannot create a mutex");
  }
  if (uv_cond_init(&p->idle_cond)) {
    uv_mutex_destroy(&p->lock);
    dn__free(p);
    return dn__error_set(err, DN_ENOMEM, 0, "cannot create a condition");
  }
  size_t adopted = 0;
  if (p->o.outbox_dir && dn__purge_strdup(p->o.outbox_dir, &p->outbox_dir))
    rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  p->o.outbox_dir = p->outbox_dir;
  char identity[DN__IDENTITY_MAX];
  identity_of(&backend, p->o.profile, identity, sizeof identity);
  if (rc == 0)
    rc = dn__ledger_open_as(p->outbox_dir, identity, p->o.adopt_any, &p->ledger,
                            &adopted, err);
  if (rc == 0)
    rc = start(p, adopted, err);
  if (rc == 0 && p->owns_loop &&
      uv_thread_create(&p->thread, thread_main, p) != 0) {
    /* The handles are initialised: close them on our loop. */
    dn__purge_loop_close(p);
    uv_run(p->loop, UV_RUN_DEFAULT);
    uv_loop_close(p->loop);
    rc = dn__error_set(err, DN_ESTATE, 0, "cannot start the purger thread");
  }
  if (rc) {
    destroy(p); /* the backend is still the caller's: */
    return rc;
  }
  if (p->owns_loop)
    p->loop_thread = p->thread;
  p->backend = backend;
  if (adopted)
    dn__purge_log(p, DN_LOG_INFO, "purge: %zu entries adopted from %s", adopted,
                  p->outbox_dir);
  uv_mutex_lock(&p->lock);
  uv_async_send(&p->wake);
  uv_mutex_unlock(&p->lock);
  *out = p;
  return 0;
}

void dn_purger_free(dn_purger *p) {
  if (!p)
    return;
  if (!p->owns_loop) {
    dn__purge_loop_close(p); /* frees p once every handle is closed */
    return;
  }
  uv_mutex_lock(&p->lock);
  p->stop = 1;
  uv_async_send(&p->wake);
  uv_mutex_unlock(&p->lock);
  uv_thread_join(&p->thread);
  uv_loop_close(&p->own_loop);
  destroy(p);
}

const char *dn_purger_name(const dn_purger *p) {
  return p ? p->backend.ops->name : "";
}

/* ---- queueing ------------------------------------------------------------ */

static int validate_tags(const dn_slice *tags, size_t n, dn_error *err) {
  for (size_t i = 0; i < n; i++) {
    int rc = dn_tag_validate(tags[i].ptr, tags[i].len, err);
    if (rc) {
      if (err)
        err->line = (int)i;
      return rc;
    }
  }
  return 0;
}

/* Queues one invalidation. `fallback`: when the outbox write fails, queue
 * it in memory anyway (the engine's listener cannot report an error). */
static int enqueue(dn_purger *p, dn__queue *one, int fallback, dn_error *err) {
  uint64_t id;
  int rc = 0, have_id = 0;
  if (p->o.durability == DN_PURGE_SYNC_BEFORE_RETURN &&
      dn__ledger_durable(p->ledger)) {
    rc = dn__ledger_put(p->ledger, &one->tags, &one->uris, dn__purge_now(p),
                        NULL, 0, &id);
    if (rc == DN_EIO)
      dn__ledger_ack(p->ledger, &id, 1);
    if (rc == DN_ENOMEM || (rc == DN_EIO && !fallback))
      return dn__error_set(err, rc, 0,
                           rc == DN_EIO ? "cannot write the outbox"
                                        : "out of memory");
    have_id = rc == 0;
  }
  if (have_id) {
    uint64_t *slot = dn__vec_push(&one->ids);
    if (!slot) {
      dn__ledger_ack(p->ledger, &id, 1);
      return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
    }
    *slot = id;
  } else {
    one->fresh = 1;
  }
  uv_mutex_lock(&p->lock);
  rc = p->stop ? DN_ESTATE : dn__queue_merge(&p->queue, one);
  if (rc == 0) {
    p->stats.invalidations++;
    p->stats.tags += dn__strlist_count(&one->tags);
    p->stats.queued_tags += dn__strlist_count(&one->tags);
    if (rc == 0 && fallback && dn__ledger_durable(p->ledger) && !have_id &&
        p->o.durability == DN_PURGE_SYNC_BEFORE_RETURN)
      p->stats.outbox_errors++;
    uv_async_send(&p->wake);
  }
  uv_mutex_unlock(&p->lock);
  if (rc && have_id)
    dn__ledger_ack(p->ledger, &id, 1);
  if (rc)
    return dn__error_set(
        err, rc, 0, rc == DN_ESTATE ? "purger is stopping" : "out of memory");
  return 0;
}

static int purge_tags(dn_purger *p, const dn_slice *tags, size_t n,
                      int fallback, dn_error *err) {
  if (!p || (!tags && n))
    return dn__error_set(err, DN_EINVAL, 0, "no purger or tags");
  int rc = validate_tags(tags, n, err);
  if (rc || n == 0)
    return rc;
  dn__queue one;
  dn__queue_init(&one);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = dn__strlist_add(&one.tags, tags[i].ptr, tags[i].len);
  if (rc)
    rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  else
    rc = enqueue(p, &one, fallback, err);
  dn__queue_free(&one);
  return rc;
}

int dn_purger_purge_tags(dn_purger *p, const dn_slice *tags, size_t n,
                         dn_error *err) {
  return purge_tags(p, tags, n, 0, err);
}

int dn_purger_purge_uris(dn_purger *p, const dn_slice *uris, size_t n,
                         dn_error *err) {
  if (!p || (!uris && n))
    return dn__error_set(err, DN_EINVAL, 0, "no purger or URIs");
  dn__queue one;
  dn__queue_init(&one);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *norm = NULL, tag[DN_URI_TAG_MAX + 1];
    size_t len = 0, tlen = 0;
    rc = dn_uri_normalize(uris[i].ptr, uris[i].len, &norm, &len, err);
    if (rc == 0)
      rc = dn_uri_tag_normalized(norm, len, tag, &tlen);
    if (rc == 0 && (dn__strlist_add(&one.tags, tag, tlen) ||
                    dn__strlist_add(&one.uris, norm, len)))
      rc = dn__error_set(err, DN_ENOMEM, 0, "out of memory");
    if (rc && err)
      err->line = (int)i;
    dn_free(norm);
  }
  if (rc == 0 && n)
    rc = enqueue(p, &one, 0, err);
  dn__queue_free(&one);
  return rc;
}

void dn_purger_on_invalidate(void *ud, const dn_slice *tags, size_t n) {
  dn_purger *p = ud;
  dn_error err;
  if (purge_tags(p, tags, n, 1, &err) == 0)
    return;
  uv_mutex_lock(&p->lock);
  p->stats.dropped++;
  uv_mutex_unlock(&p->lock);
  dn__purge_log(p, DN_LOG_ERROR, "purge: invalidation of %zu tags lost: %s", n,
                err.text);
}

int dn_purger_listen(dn_purger *p, dn_engine *engine) {
  if (!p || !engine)
    return DN_EINVAL;
  return dn_engine_on_invalidate(engine, dn_purger_on_invalidate, p);
}

/* ---- control ---------------------------------------------------------- */

void dn_purger_flush(dn_purger *p) {
  if (!p)
    return;
  uv_mutex_lock(&p->lock);
  if (!p->stop) {
    p->flush_now = 1;
    uv_async_send(&p->wake);
  }
  uv_mutex_unlock(&p->lock);
}

void dn_purger_retry_failed(dn_purger *p) {
  if (!p)
    return;
  uv_mutex_lock(&p->lock);
  if (!p->stop) {
    p->retry_failed = 1;
    uv_async_send(&p->wake);
  }
  uv_mutex_unlock(&p->lock);
}

int dn_purger_drain(dn_purger *p, uint64_t timeout_ms) {
  if (!p)
    return DN_EINVAL;
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &p->loop_thread))
    return DN_ESTATE;
  dn_purger_flush(p);
  uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
  int rc = 0;
  uv_mutex_lock(&p->lock);
  while (rc == 0 && !p->stop && (p->active || !dn__queue_empty(&p->queue))) {
    if (timeout_ms == 0) {
      uv_cond_wait(&p->idle_cond, &p->lock);
      continue;
    }
    uint64_t now = uv_hrtime();
    if (now >= deadline ||
        uv_cond_timedwait(&p->idle_cond, &p->lock, deadline - now) != 0)
      rc = p->active || !dn__queue_empty(&p->queue) ? DN_ETIMEDOUT : 0;
  }
  uv_mutex_unlock(&p->lock);
  return rc;
}

void dn_purger_stats_get(dn_purger *p, dn_purger_stats *out) {
  memset(out, 0, sizeof *out);
  if (!p)
    return;
  size_t failed = dn__ledger_count(p->ledger, DN_OUTBOX_FAILED);
  uv_mutex_lock(&p->lock);
  *out = p->stats;
  out->queued_tags = dn__strlist_count(&p->queue.tags);
  out->pending = p->active;
  uv_mutex_unlock(&p->lock);
  out->failed_entries = failed;
}
