/* purge_queue.c - what waits for a purger's window: the queue of tags,
 * URIs and ledger ids, merged all or nothing; the ledger's entries queued
 * again (at start, and on a retry of failed ones); and the signal that
 * wakes dn_purger_drain when nothing is left.
 *
 * The queue is shared by the threads that purge and the loop thread, under
 * the purger's lock; the ledger's lock is never taken while holding it.
 */
#include "purge_internal.h"

void dn__queue_init(dn__queue *q) {
  dn__strlist_init(&q->tags);
  dn__strlist_init(&q->uris);
  dn__vec_init(&q->ids, sizeof(uint64_t));
  q->fresh = 0;
}

void dn__queue_free(dn__queue *q) {
  dn__strlist_free(&q->tags);
  dn__strlist_free(&q->uris);
  dn__vec_free(&q->ids);
  dn__queue_init(q);
}

int dn__queue_empty(const dn__queue *q) {
  return dn__strlist_count(&q->tags) == 0 && dn__strlist_count(&q->uris) == 0 &&
         q->ids.len == 0;
}

static void strlist_truncate(dn__strlist *l, size_t count, size_t bytes) {
  l->spans.len = count;
  dn__buf_truncate(&l->bytes, bytes);
}

int dn__queue_merge(dn__queue *dst, const dn__queue *src) {
  size_t tc = dst->tags.spans.len, tb = dst->tags.bytes.len;
  int rc = dn__strlist_add_all(&dst->tags, &src->tags);
  if (rc == 0 && (rc = dn__strlist_add_all(&dst->uris, &src->uris)) != 0)
    strlist_truncate(&dst->tags, tc, tb);
  if (rc == 0 && src->ids.len &&
      dn__vec_reserve(&dst->ids, dst->ids.len + src->ids.len)) {
    strlist_truncate(&dst->tags, tc, tb);
    strlist_truncate(&dst->uris, dst->uris.spans.len - src->uris.spans.len,
                     dst->uris.bytes.len - src->uris.bytes.len);
    rc = DN_ENOMEM;
  }
  if (rc)
    return DN_ENOMEM;
  for (size_t i = 0; i < src->ids.len; i++)
    *(uint64_t *)dn__vec_push(&dst->ids) = DN__VEC_AT(&src->ids, uint64_t, i);
  dst->fresh += src->fresh;
  return 0;
}

/* ---- requeueing and draining ------------------------------------------ */

void dn__purge_check_idle(dn_purger *p) {
  if (p->active == 0 && dn__queue_empty(&p->queue))
    uv_cond_broadcast(&p->idle_cond);
}

typedef struct requeue_ctx {
  dn__queue q;
  int rc;
} requeue_ctx;

static void requeue_one(void *ud, const dn__entry *e) {
  requeue_ctx *c = ud;
  dn__queue one;
  if (c->rc)
    return;
  one.tags = e->tags;
  one.uris = e->uris;
  dn__vec_init(&one.ids, sizeof(uint64_t));
  one.fresh = 0;
  uint64_t *id = dn__vec_push(&one.ids);
  if (!id) {
    c->rc = DN_ENOMEM;
    return;
  }
  *id = e->id;
  c->rc = dn__queue_merge(&c->q, &one);
  dn__vec_free(&one.ids);
}

int dn__purge_requeue(dn_purger *p, int state) {
  requeue_ctx c;
  dn__queue_init(&c.q);
  c.rc = 0;
  dn__ledger_each(p->ledger, state, requeue_one, &c);
  if (c.rc == 0 && state == DN_OUTBOX_FAILED && c.q.ids.len &&
      dn__ledger_retry(p->ledger, c.q.ids.items, c.q.ids.len) == DN_EIO) {
    uv_mutex_lock(&p->lock);
    p->stats.outbox_errors++;
    uv_mutex_unlock(&p->lock);
  }
  if (c.rc == 0 && !dn__queue_empty(&c.q)) {
    uv_mutex_lock(&p->lock);
    c.rc = dn__queue_merge(&p->queue, &c.q);
    if (c.rc == 0)
      p->stats.queued_tags += dn__strlist_count(&c.q.tags);
    uv_mutex_unlock(&p->lock);
  }
  dn__queue_free(&c.q);
  return c.rc;
}
