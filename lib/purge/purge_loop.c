/* purge_loop.c - what a purger does on its loop thread: batches, jobs,
 * retries and reports. A request goes out through purge_transport.c,
 * which reports its end to job_done through a callback.
 *
 * When the window closes (or dn_purger_flush asks), the queue becomes a
 * batch: tags and URIs deduplicated, purge keys computed with
 * dn_cdn_purge_keys. A batch that holds invalidations not yet in the
 * outbox is first written there and fdatasync'ed on libuv's threadpool, so
 * the loop never waits for the disk. Then, for every target, the backend
 * builds requests that each take as many keys as the API allows; each
 * request is a job, retried on its own.
 *
 * At most max_inflight jobs run at once; the others wait in a FIFO. A job that
 * fails with a 5xx, 429, 408, a timeout or a transport error waits (Retry-After
 * when the response has one, else exponential backoff with jitter) and is
 * rebuilt; every request is built (and signed) right before it is sent, so
 * a signature is always fresh, even after a wait for a request slot. When all
 * of a batch's jobs are settled, its ledger entries are acknowledged or marked
 * failed and the report callback runs.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "purge_internal.h"

#define FLUSH_AT 4096 /* queued tags that send at once */

struct dn__batch {
  dn_purger *p;
  dn__batch *next, *prev;
  dn__vec ids; /* uint64_t */
  dn__strlist tags, uris;
  dn_slice *tagv, *uriv;
  dn_slice *keys;
  size_t nkeys, fresh, outstanding;
  unsigned requests, failed, attempts;
  int last_status, persisting;
  uint64_t now_ms, serial;
  char error[256];
  uv_work_t work;
  int persist_rc;
  uint64_t persist_id;
};

static void dispatch(dn_purger *p);

/* On a caller's loop, the purger is freed once nothing of it is left. */
static void maybe_release(dn_purger *p) {
  if (p->closing && p->handles_open == 0 && p->works == 0 && !p->owns_loop)
    p->released(p);
}

static void on_handle_closed(uv_handle_t *h) {
  dn_purger *p = h->data;
  p->handles_open--;
  maybe_release(p);
}

static void on_curl_closed(void *ud) {
  dn_purger *p = ud;
  p->handles_open--;
  maybe_release(p);
}

/* ---- batches ------------------------------------------------------------- */

static void batch_free(dn__batch *b) {
  dn__vec_free(&b->ids);
  dn__strlist_free(&b->tags);
  dn__strlist_free(&b->uris);
  dn__free(b->tagv);
  dn__free(b->uriv);
  dn_free(b->keys);
  dn__free(b);
}

static void batch_unlink(dn__batch *b) {
  dn_purger *p = b->p;
  if (b->prev)
    b->prev->next = b->next;
  else
    p->batches = b->next;
  if (b->next)
    b->next->prev = b->prev;
  uv_mutex_lock(&p->lock);
  p->active--;
  dn__purge_check_idle(p);
  uv_mutex_unlock(&p->lock);
}

static int batch_new(dn_purger *p, dn__queue *q, dn__batch **out) {
  dn__batch *b = dn__calloc(1, sizeof *b);
  if (!b)
    return DN_ENOMEM;
  b->p = p;
  b->ids = q->ids;
  dn__vec_init(&q->ids, sizeof(uint64_t));
  dn__strlist_move(&b->tags, &q->tags);
  dn__strlist_move(&b->uris, &q->uris);
  b->fresh = q->fresh;
  b->now_ms = dn__purge_now(p);
  b->serial = ++p->serial;
  int rc = dn__strlist_dedup(&b->tags);
  if (rc == 0)
    rc = dn__strlist_dedup(&b->uris);
  if (rc == 0)
    rc = dn__strlist_slices(&b->tags, &b->tagv);
  if (rc == 0)
    rc = dn__strlist_slices(&b->uris, &b->uriv);
  if (rc == 0)
    rc = dn_cdn_purge_keys(p->o.profile, b->tagv, dn__strlist_count(&b->tags),
                           &b->keys, &b->nkeys, NULL);
  if (rc) {
    batch_free(b);
    return rc;
  }
  *out = b;
  return 0;
}

static void settle_batch(dn__batch *b) {
  dn_purger *p = b->p;
  int delivered = b->failed == 0, rc;
  uint64_t id;
  if (!delivered && b->fresh && dn__ledger_durable(p->ledger) &&
      dn__vec_reserve(&b->ids, 1) == 0 &&
      dn__ledger_put(p->ledger, &b->tags, &b->uris, b->now_ms, b->ids.items,
                     b->ids.len, &id) != DN_ENOMEM) {
    /* Sent without an outbox entry (it could not be written then): a
     * failed batch must still be kept. */
    b->ids.len = 0;
    *(uint64_t *)dn__vec_push(&b->ids) = id;
    b->fresh = 0;
  }
  uint64_t *ids = b->ids.items;
  rc = delivered
           ? dn__ledger_ack(p->ledger, ids, b->ids.len)
           : dn__ledger_fail(p->ledger, ids, b->ids.len, b->attempts, b->error);
  dn_purge_report r = {b->ids.len ? ids[0] : b->serial,
                       delivered,
                       b->tagv,
                       dn__strlist_count(&b->tags),
                       b->uriv,
                       dn__strlist_count(&b->uris),
                       b->nkeys,
                       b->requests,
                       b->failed,
                       delivered ? 0 : b->last_status,
                       delivered ? "" : b->error};
  uv_mutex_lock(&p->lock);
  if (rc)
    p->stats.outbox_errors++;
  if (delivered)
    p->stats.delivered++;
  else
    p->stats.failed++;
  uv_mutex_unlock(&p->lock);
  if (delivered)
    dn__purge_log(p, DN_LOG_DEBUG,
                  "purge: batch %llu delivered: %zu tags, %zu keys, %u "
                  "requests",
                  (unsigned long long)r.id, r.ntags, r.keys, r.requests);
  else
    dn__purge_log(p, DN_LOG_ERROR, "purge: batch %llu failed: %s",
                  (unsigned long long)r.id, b->error);
  if (p->o.report)
    p->o.report(p->o.report_ud, &r);
  batch_unlink(b);
  batch_free(b);
}

/* ---- jobs ---------------------------------------------------------------- */

static void job_free(dn__job *j) {
  dn__purge_req_reset(&j->req);
  dn__free(j);
}

static void on_job_timer_closed(uv_handle_t *h) {
  dn__job *j = h->data;
  dn_purger *p = j->p; /* the batch may be gone */
  job_free(j);
  p->handles_open--;
  maybe_release(p);
}

/* Unlinks a job and frees it (after its timer has closed). */
static void job_drop(dn__job *j) {
  dn_purger *p = j->p;
  if (j->aprev)
    j->aprev->anext = j->anext;
  else
    p->jobs = j->anext;
  if (j->anext)
    j->anext->aprev = j->aprev;
  if (j->http.easy) {
    dn__purge_http_abort(&j->http);
    p->inflight--;
  }
  if (j->timer_inited)
    uv_close((uv_handle_t *)&j->timer, on_job_timer_closed);
  else
    job_free(j);
}

static void settle_job(dn__job *j, int ok) {
  dn__batch *b = j->b;
  b->requests += j->attempt;
  if (!ok) {
    b->failed++;
    b->attempts = j->attempt > b->attempts ? j->attempt : b->attempts;
    b->last_status = j->status;
    memcpy(b->error, j->error, sizeof b->error);
  }
  job_drop(j);
  if (--b->outstanding == 0)
    settle_batch(b);
}

/* Builds j's request; on a retry the keys must be exactly the same. */
static int build(dn__job *j) {
  dn__batch *b = j->b;
  dn_purger *p = b->p;
  dn_purge_batch in = {j->target,
                       b->keys + j->first,
                       j->count ? j->count : b->nkeys - j->first,
                       b->tagv,
                       dn__strlist_count(&b->tags),
                       b->uriv,
                       dn__strlist_count(&b->uris),
                       dn__purge_now(p),
                       j->attempt,
                       {0}};
  dn__purge_random(p, in.random, sizeof in.random);
  dn__purge_req_reset(&j->req);
  j->have_req = 0;
  size_t used = 0;
  int rc = p->backend.ops->build(p->backend.self, &in, &j->req, &used);
  if (rc == 0 && (!j->req.url || (in.nkeys > 0 && used == 0) ||
                  used > in.nkeys || (j->count && used != j->count)))
    rc = DN_EINVAL;
  if (rc) {
    snprintf(j->error, sizeof j->error, "%s: cannot build the request: %s",
             p->backend.ops->name, dn_strerror(rc));
    return rc;
  }
  j->count = used;
  j->have_req = 1;
  dn__purge_url_label(j->req.url, j->label, sizeof j->label);
  return 0;
}

static int job_new(dn__batch *b, size_t target, size_t first, dn__job **out) {
  dn_purger *p = b->p;
  dn__job *j = dn__calloc(1, sizeof *j);
  if (!j)
    return DN_ENOMEM;
  j->p = p;
  j->b = b;
  j->target = target;
  j->first = first;
  dn__purge_req_init(&j->req);
  j->anext = p->jobs;
  if (p->jobs)
    p->jobs->aprev = j;
  p->jobs = j;
  b->outstanding++;
  *out = j;
  return 0;
}

static void ready_push(dn_purger *p, dn__job *j) {
  j->next = NULL;
  if (p->ready_tail)
    p->ready_tail->next = j;
  else
    p->ready = j;
  p->ready_tail = j;
}

/* Creates the jobs of target t: each takes the keys its request holds. */
static void plan_target(dn__batch *b, size_t t) {
  size_t pos = 0;
  do {
    dn__job *j;
    if (job_new(b, t, pos, &j)) {
      b->failed++;
      snprintf(b->error, sizeof b->error, "%s: out of memory",
               b->p->backend.ops->name);
      return;
    }
    if (build(j)) {
      j->attempt = 0;
      settle_job(j, 0);
      return;
    }
    /* Built only to size it: start_job builds (and signs) it again right
     * before it goes out, however long it waits in the queue. */
    dn__purge_req_reset(&j->req);
    j->have_req = 0;
    ready_push(b->p, j);
    pos += j->count;
  } while (pos < b->nkeys);
}

static void start_batch(dn__batch *b) {
  dn_purger *p = b->p;
  const dn_purger_ops *ops = p->backend.ops;
  size_t targets = ops->targets(p->backend.self);
  if (b->nkeys > 0 || (ops->flags & DN_PURGER_SEND_WITHOUT_KEYS)) {
    b->outstanding++; /* holds the batch open while planning */
    for (size_t t = 0; t < targets; t++)
      plan_target(b, t);
    b->outstanding--;
  }
  dn__purge_log(p, DN_LOG_DEBUG, "purge: batch %llu: %zu tags, %zu keys",
                (unsigned long long)b->serial, dn__strlist_count(&b->tags),
                b->nkeys);
  if (b->outstanding == 0)
    settle_batch(b);
  else
    dispatch(p);
}

/* ---- persisting on the threadpool ---------------------------------- */

static void persist_work(uv_work_t *w) {
  dn__batch *b = w->data;
  dn_purger *p = b->p;
  b->persist_rc = dn__ledger_put(p->ledger, &b->tags, &b->uris, b->now_ms,
                                 b->ids.items, b->ids.len, &b->persist_id);
}

static void persist_after(uv_work_t *w, int status) {
  dn__batch *b = w->data;
  dn_purger *p = b->p;
  p->works--;
  b->persisting = 0;
  if (p->closing) {
    /* Abandoned: the entry stays pending in the outbox. */
    batch_free(b);
    maybe_release(p);
    return;
  }
  if (status == 0 && b->persist_rc != DN_ENOMEM) {
    /* The new entry supersedes the ones the batch held. */
    b->ids.len = 0;
    *(uint64_t *)dn__vec_push(&b->ids) = b->persist_id;
    b->fresh = 0;
  }
  if (status != 0 || b->persist_rc) {
    uv_mutex_lock(&p->lock);
    p->stats.outbox_errors++;
    uv_mutex_unlock(&p->lock);
    dn__purge_log(p, DN_LOG_ERROR,
                  "purge: batch %llu could not be written to the outbox; "
                  "sending it anyway",
                  (unsigned long long)b->serial);
  }
  start_batch(b);
}

static void persist(dn__batch *b) {
  dn_purger *p = b->p;
  if (b->fresh == 0) {
    start_batch(b);
    return;
  }
  if (!dn__ledger_durable(p->ledger)) {
    uint64_t id;
    if (dn__ledger_put(p->ledger, &b->tags, &b->uris, b->now_ms, b->ids.items,
                       b->ids.len, &id) == 0) {
      b->ids.len = 0;
      *(uint64_t *)dn__vec_push(&b->ids) = id;
      b->fresh = 0;
    }
    start_batch(b);
    return;
  }
  /* Room for the one id persist_after stores. */
  if (dn__vec_reserve(&b->ids, 1)) {
    start_batch(b);
    return;
  }
  b->work.data = b;
  b->persisting = 1;
  if (uv_queue_work(p->loop, &b->work, persist_work, persist_after) != 0) {
    b->persisting = 0;
    start_batch(b);
    return;
  }
  p->works++;
}

static void flush(dn_purger *p) {
  uv_timer_stop(&p->window);
  p->window_running = 0;
  dn__queue q;
  uv_mutex_lock(&p->lock);
  if (dn__queue_empty(&p->queue)) {
    uv_mutex_unlock(&p->lock);
    return;
  }
  q = p->queue;
  dn__queue_init(&p->queue);
  p->active++;
  p->stats.batches++;
  p->stats.queued_tags = 0;
  uv_mutex_unlock(&p->lock);
  dn__batch *b;
  int rc = batch_new(p, &q, &b);
  if (rc) {
    /* What was recorded stays pending in the ledger for the next start. */
    uv_mutex_lock(&p->lock);
    p->stats.dropped++;
    p->active--;
    dn__purge_check_idle(p);
    uv_mutex_unlock(&p->lock);
    dn__purge_log(p, DN_LOG_ERROR, "purge: a batch of %zu tags was lost: %s",
                  dn__strlist_count(&q.tags), dn_strerror(rc));
    dn__queue_free(&q);
    return;
  }
  dn__queue_free(&q);
  b->next = p->batches;
  if (p->batches)
    p->batches->prev = b;
  p->batches = b;
  persist(b);
}

static uint64_t backoff_ms(dn_purger *p, unsigned attempt) {
  uint64_t d = p->o.backoff_ms;
  for (unsigned i = 1; i < attempt && d < p->o.max_backoff_ms; i++)
    d *= 2;
  if (d > p->o.max_backoff_ms)
    d = p->o.max_backoff_ms;
  uint32_t r;
  dn__purge_random(p, &r, sizeof r);
  /* Jitter: anywhere in [d/2, d], so clients that failed together do not
   * come back together. */
  return d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
}

static void on_retry_timer(uv_timer_t *t) {
  dn__job *j = t->data;
  dn_purger *p = j->p;
  ready_push(p, j);
  dispatch(p);
}

static void schedule_retry(dn__job *j) {
  dn_purger *p = j->p;
  uint64_t now = dn__purge_now(p);
  int64_t ra = dn__purge_retry_after_ms(j->http.retry_after, now);
  /* A Retry-After of 0 or in the past would retry at once, again and
   * again: the normal backoff applies then. */
  if (ra >= 0 && ra < 100)
    ra = -1;
  uint64_t delay = ra >= 0 ? (uint64_t)ra : backoff_ms(p, j->attempt);
  if (ra >= 0 && delay > p->o.max_retry_after_ms)
    delay = p->o.max_retry_after_ms;
  uv_mutex_lock(&p->lock);
  p->stats.retries++;
  if (ra >= 0)
    p->stats.retry_after++;
  uv_mutex_unlock(&p->lock);
  dn__purge_log(p, DN_LOG_WARN, "%s; retry %u in %llu ms%s", j->error,
                j->attempt, (unsigned long long)delay,
                ra >= 0 ? " (Retry-After)" : "");
  if (p->o.on_retry) {
    dn_purge_retry r = {j->label, j->attempt, j->status,
                        delay,    ra >= 0,    j->error};
    p->o.on_retry(p->o.retry_ud, &r);
  }
  if (!j->timer_inited) {
    uv_timer_init(p->loop, &j->timer);
    j->timer.data = j;
    j->timer_inited = 1;
    p->handles_open++;
  }
  uv_timer_start(&j->timer, on_retry_timer, delay, 0);
}

/* Copies the start of a response body into msg, printable bytes only. */
static void excerpt(const char *body, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    unsigned char c = (unsigned char)body[i];
    out[n++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
  }
  while (n && out[n - 1] == ' ')
    n--;
  out[n] = '\0';
}

/* Classifies a finished transfer: 1 delivered, 0 retry, -1 give up. */
static int classify(dn_purger *p, dn__job *j, CURLcode res) {
  const char *name = p->backend.ops->name;
  uv_mutex_lock(&p->lock);
  if (res == CURLE_OK && j->status >= 200 && j->status < 300)
    p->stats.status_2xx++;
  else if (res == CURLE_OK && j->status == 429)
    p->stats.status_429++;
  else if (res == CURLE_OK && j->status >= 500)
    p->stats.status_5xx++;
  else if (res == CURLE_OK)
    p->stats.status_other++;
  else if (res == CURLE_OPERATION_TIMEDOUT)
    p->stats.timeouts++;
  else
    p->stats.transport_errors++;
  if (res == CURLE_OK && j->status >= 200 && j->status < 300)
    p->stats.keys += j->count;
  uv_mutex_unlock(&p->lock);
  if (res == CURLE_OK && j->status >= 200 && j->status < 300)
    return 1;
  if (res == CURLE_OK) {
    /* Redacted whole, then cut: a cut secret would no longer match. */
    char ex[DN__BODY_KEEP + 1];
    excerpt(j->http.body, j->http.body_len, ex, sizeof ex);
    dn__purge_req_redact(&j->req, ex, sizeof ex);
    snprintf(j->error, sizeof j->error, "%.32s %.100s: HTTP %d%s%.96s", name,
             j->label, j->status, *ex ? ": " : "", ex);
  } else {
    snprintf(j->error, sizeof j->error, "%.32s %.100s: %.110s", name, j->label,
             *j->http.curl_err ? j->http.curl_err : curl_easy_strerror(res));
  }
  dn__purge_req_redact(&j->req, j->error, sizeof j->error);
  int retryable = res == CURLE_OK
                      ? j->status == 408 || j->status == 429 || j->status >= 500
                      : res != CURLE_URL_MALFORMAT &&
                            res != CURLE_UNSUPPORTED_PROTOCOL &&
                            res != CURLE_BAD_FUNCTION_ARGUMENT;
  return retryable && j->attempt < p->o.max_attempts ? 0 : -1;
}

/* A request ended (status 0 when res is not CURLE_OK). */
static void job_done(void *ud, CURLcode res, int status) {
  dn__job *j = ud;
  dn_purger *p = j->p;
  p->inflight--;
  j->status = status;
  int verdict = classify(p, j, res);
  if (verdict == 0) {
    schedule_retry(j);
    dn__purge_req_reset(&j->req);
    j->have_req = 0;
  } else {
    if (verdict < 0)
      dn__purge_log(p, DN_LOG_WARN, "%s; giving up after %u attempts", j->error,
                    j->attempt);
    settle_job(j, verdict > 0);
  }
  dispatch(p);
}

/* ---- requests ------------------------------------------------------------ */

static void start_job(dn__job *j) {
  dn_purger *p = j->p;
  if (!j->have_req && build(j)) {
    settle_job(j, 0);
    return;
  }
  int rc = dn__purge_http_start(&j->http, &p->curl, &j->req, p->o.timeout_ms,
                                p->o.connect_timeout_ms, job_done, j);
  if (rc) {
    snprintf(j->error, sizeof j->error, "%s: %s", p->backend.ops->name,
             dn_strerror(rc));
    settle_job(j, 0);
    return;
  }
  j->attempt++;
  p->inflight++;
  uv_mutex_lock(&p->lock);
  p->stats.requests++;
  uv_mutex_unlock(&p->lock);
}

static void dispatch(dn_purger *p) {
  while (!p->closing && p->ready && p->inflight < p->o.max_inflight) {
    dn__job *j = p->ready;
    p->ready = j->next;
    if (!p->ready)
      p->ready_tail = NULL;
    j->next = NULL;
    start_job(j);
  }
}

/* ---- waking, the window, closing -------------------------------------- */

static void on_window(uv_timer_t *t) {
  dn_purger *p = t->data;
  p->window_running = 0;
  flush(p);
}

static void on_wake(uv_async_t *h) {
  dn_purger *p = h->data;
  uv_mutex_lock(&p->lock);
  int stop = p->stop, now = p->flush_now, retry = p->retry_failed;
  p->flush_now = p->retry_failed = 0;
  uv_mutex_unlock(&p->lock);
  if (stop) {
    dn__purge_loop_close(p);
    return;
  }
  if (retry && dn__purge_requeue(p, DN_OUTBOX_FAILED) == 0)
    now = 1;
  uv_mutex_lock(&p->lock);
  size_t queued = dn__strlist_count(&p->queue.tags) + p->queue.ids.len;
  int empty = dn__queue_empty(&p->queue);
  dn__purge_check_idle(p);
  uv_mutex_unlock(&p->lock);
  if (empty)
    return;
  if (now || queued >= FLUSH_AT) {
    flush(p);
  } else if (!p->window_running) {
    p->window_running = 1;
    uv_timer_start(&p->window, on_window, p->o.window_ms, 0);
  }
}

int dn__purge_loop_init(dn_purger *p, void (*released)(dn_purger *p)) {
  /* Only the first can fail, so a failure leaves nothing to close. The
   * curl loop makes its multi handle when the first request goes out. */
  if (uv_async_init(p->loop, &p->wake, on_wake) != 0)
    return DN_ESTATE;
  uv_timer_init(p->loop, &p->window);
  p->wake.data = p->window.data = p;
  dn__curl_loop_init(&p->curl, p->loop);
  p->handles_open = 3;
  p->released = released;
  return 0;
}

/* Records invalidations that have no outbox entry yet (still in the
 * window, or sent without one), so that closing keeps them for the next
 * purger. The ids they merged with are superseded by the new entry. */
static void record_unsent(dn_purger *p, const dn__strlist *tags,
                          const dn__strlist *uris, const dn__vec *ids) {
  uint64_t id;
  int rc = dn__ledger_put(p->ledger, tags, uris, dn__purge_now(p), ids->items,
                          ids->len, &id);
  if (rc == 0)
    return;
  uv_mutex_lock(&p->lock);
  p->stats.outbox_errors++;
  uv_mutex_unlock(&p->lock);
  dn__purge_log(p, DN_LOG_ERROR,
                "purge: %zu tags could not be written to the outbox on "
                "close: %s",
                dn__strlist_count(tags), dn_strerror(rc));
}

void dn__purge_loop_close(dn_purger *p) {
  if (p->closing)
    return;
  p->closing = 1;
  dn__queue q;
  uv_mutex_lock(&p->lock);
  p->stop = 1;
  q = p->queue;
  dn__queue_init(&p->queue);
  uv_mutex_unlock(&p->lock);
  if (q.fresh && dn__ledger_durable(p->ledger))
    record_unsent(p, &q.tags, &q.uris, &q.ids);
  dn__queue_free(&q);
  uv_mutex_lock(&p->lock);
  uv_close((uv_handle_t *)&p->wake, on_handle_closed);
  dn__purge_check_idle(p);
  uv_mutex_unlock(&p->lock);
  uv_close((uv_handle_t *)&p->window, on_handle_closed);
  while (p->jobs)
    job_drop(p->jobs);
  p->ready = p->ready_tail = NULL;
  /* Batches in flight stay pending in the ledger for the next purger
   * (those sent without an entry get one now); those being persisted are
   * freed when their work returns. */
  for (dn__batch *b = p->batches, *next; b; b = next) {
    next = b->next;
    b->prev = b->next = NULL;
    if (b->persisting)
      continue;
    if (b->fresh && dn__ledger_durable(p->ledger))
      record_unsent(p, &b->tags, &b->uris, &b->ids);
    batch_free(b);
  }
  p->batches = NULL;
  uv_mutex_lock(&p->lock);
  p->active = 0;
  dn__purge_check_idle(p);
  uv_mutex_unlock(&p->lock);
  dn__curl_loop_close(&p->curl, on_curl_closed, p);
  maybe_release(p);
}
