/* curl_loop.c - libcurl's multi interface driven by a libuv loop.
 *
 * curl_multi_socket_action is the engine. libcurl's socket callback starts
 * and stops one uv_poll_t per socket it wants watched, and its timer
 * callback arms the one uv_timer_t. When either fires, libcurl is told
 * which socket is ready (or that its timeout passed), and then the
 * finished transfers are collected from curl_multi_info_read: each is
 * removed from the multi and reported to the callback it was started with.
 *
 * A transfer is a small record (callback, its argument) found through the
 * easy handle's CURLOPT_PRIVATE. The multi handle is made on first use, so
 * that initialising a curl loop cannot fail. Closing cancels what is in
 * flight, frees the multi with its pool of connections, and closes the
 * handles; the cancelled transfers are reported from the timer's close
 * callback, and the caller's `closed` runs when the last handle is closed.
 */
#include "curl_loop.h"

#include "alloc.h"
#include "donut/common.h"

struct dn__curl_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  dn__curl_loop *cl;
  int closing;
  dn__curl_sock *next, *prev;
};

struct dn__curl_xfer {
  dn__curl_loop *cl;
  CURL *easy;
  dn__curl_done_fn done;
  void *ud;
  dn__curl_xfer *next, *prev;
};

/* ---- libcurl, once per process ------------------------------------------ */

static uv_once_t global_once = UV_ONCE_INIT;
static int global_rc;

static void global_init(void) {
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : DN_ESTATE;
}

int dn__curl_global_init(void) {
  uv_once(&global_once, global_init);
  return global_rc;
}

/* ---- transfers ---------------------------------------------------------- */

static dn__curl_xfer *xfer_of(CURL *easy) {
  char *priv = NULL;
  if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK)
    return NULL;
  return (dn__curl_xfer *)priv;
}

/* Takes x's handle out of the multi (while there is one) and forgets x. */
static void xfer_end(dn__curl_loop *cl, dn__curl_xfer *x) {
  if (cl->multi)
    curl_multi_remove_handle(cl->multi, x->easy);
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)NULL);
  if (x->prev)
    x->prev->next = x->next;
  else
    cl->xfers = x->next;
  if (x->next)
    x->next->prev = x->prev;
  cl->active--;
  dn__free(x);
}

/* Reports every finished transfer. A callback may start, cancel or close;
 * after a close the multi is gone and nothing more is read. */
static void check_multi(dn__curl_loop *cl) {
  CURLMsg *m;
  int left;
  while (!cl->closing && (m = curl_multi_info_read(cl->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle; /* m is invalid once the handle is gone */
    CURLcode res = m->data.result;
    dn__curl_xfer *x = xfer_of(easy);
    if (!x) {
      curl_multi_remove_handle(cl->multi, easy);
      continue;
    }
    dn__curl_done_fn done = x->done;
    void *ud = x->ud;
    xfer_end(cl, x);
    done(ud, easy, res);
  }
}

/* ---- libcurl <-> libuv ------------------------------------------------- */

static void handle_closed(dn__curl_loop *cl) {
  if (--cl->handles == 0 && cl->closed)
    cl->closed(cl->closed_ud); /* may free cl */
}

static void on_sock_closed(uv_handle_t *h) {
  dn__curl_sock *k = h->data;
  dn__curl_loop *cl = k->cl;
  if (k->prev)
    k->prev->next = k->next;
  else
    cl->socks = k->next;
  if (k->next)
    k->next->prev = k->prev;
  dn__free(k);
  handle_closed(cl);
}

static void sock_close(dn__curl_sock *k) {
  if (k->closing)
    return;
  k->closing = 1;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  dn__curl_sock *k = h->data;
  dn__curl_loop *cl = k->cl;
  int flags = 0, running;
  if (cl->closing || k->closing)
    return;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(cl->multi, k->fd, flags, &running);
  check_multi(cl);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp,
                          void *socketp) {
  dn__curl_loop *cl = userp;
  dn__curl_sock *k = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (k)
      sock_close(k);
    if (!cl->closing)
      curl_multi_assign(cl->multi, s, NULL);
    return 0;
  }
  if (cl->closing)
    return 0;
  if (!k) {
    k = dn__calloc(1, sizeof *k);
    if (!k || uv_poll_init_socket(cl->loop, &k->poll, s) != 0) {
      dn__free(k);
      return -1;
    }
    k->poll.data = k;
    k->cl = cl;
    k->fd = s;
    k->next = cl->socks;
    if (cl->socks)
      cl->socks->prev = k;
    cl->socks = k;
    cl->handles++;
    curl_multi_assign(cl->multi, s, k);
  }
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) |
           (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  uv_poll_start(&k->poll, ev, on_poll);
  return 0;
}

static void on_timeout(uv_timer_t *t) {
  dn__curl_loop *cl = t->data;
  int running;
  if (cl->closing)
    return;
  curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi(cl);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  dn__curl_loop *cl = userp;
  (void)m;
  if (cl->closing)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&cl->timer);
  else
    uv_timer_start(&cl->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* Makes the multi handle on first use. */
static int need_multi(dn__curl_loop *cl) {
  if (cl->closing)
    return DN_ESTATE;
  if (cl->multi)
    return 0;
  if (dn__curl_global_init())
    return DN_ESTATE;
  CURLM *m = curl_multi_init();
  if (!m)
    return DN_ENOMEM;
  if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket) ||
      curl_multi_setopt(m, CURLMOPT_SOCKETDATA, cl) ||
      curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer) ||
      curl_multi_setopt(m, CURLMOPT_TIMERDATA, cl)) {
    curl_multi_cleanup(m);
    return DN_ENOMEM;
  }
  cl->multi = m;
  return 0;
}

/* ---- the calls ----------------------------------------------------------- */

void dn__curl_loop_init(dn__curl_loop *cl, uv_loop_t *loop) {
  *cl = (dn__curl_loop){0};
  cl->loop = loop;
  uv_timer_init(loop, &cl->timer);
  cl->timer.data = cl;
  cl->handles = 1;
}

int dn__curl_loop_set_long(dn__curl_loop *cl, CURLMoption opt, long value) {
  /* Option numbers carry their type: below OBJECTPOINT they take a long.
   * The socket and timer functions, which are the loop's, do not. */
  if ((int)opt <= 0 || (int)opt >= CURLOPTTYPE_OBJECTPOINT)
    return DN_EINVAL;
  int rc = need_multi(cl);
  if (rc)
    return rc;
  CURLMcode mc = curl_multi_setopt(cl->multi, opt, value);
  if (mc == CURLM_OK)
    return 0;
  return mc == CURLM_OUT_OF_MEMORY ? DN_ENOMEM : DN_EINVAL;
}

int dn__curl_loop_start(dn__curl_loop *cl, CURL *easy, dn__curl_done_fn done,
                        void *ud) {
  if (!easy || !done)
    return DN_EINVAL;
  int rc = need_multi(cl);
  if (rc)
    return rc;
  dn__curl_xfer *x = dn__malloc(sizeof *x);
  if (!x)
    return DN_ENOMEM;
  *x = (dn__curl_xfer){cl, easy, done, ud, cl->xfers, NULL};
  /* Restored when the handle is refused: it may be in flight already. */
  char *was = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &was);
  if (curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x) != CURLE_OK) {
    dn__free(x);
    return DN_EINVAL;
  }
  CURLMcode mc = curl_multi_add_handle(cl->multi, easy);
  if (mc != CURLM_OK) {
    curl_easy_setopt(easy, CURLOPT_PRIVATE, was);
    dn__free(x);
    return mc == CURLM_OUT_OF_MEMORY ? DN_ENOMEM : DN_EINVAL;
  }
  if (cl->xfers)
    cl->xfers->prev = x;
  cl->xfers = x;
  cl->active++;
  return 0;
}

int dn__curl_loop_cancel(dn__curl_loop *cl, CURL *easy) {
  dn__curl_xfer *x = easy ? xfer_of(easy) : NULL;
  if (!x || x->cl != cl || x->easy != easy)
    return DN_ENOTFOUND;
  xfer_end(cl, x);
  return 0;
}

size_t dn__curl_loop_active(const dn__curl_loop *cl) { return cl->active; }

/* Reports the transfers close cancelled, then counts the timer closed. */
static void on_timer_closed(uv_handle_t *h) {
  dn__curl_loop *cl = h->data;
  while (cl->xfers) {
    dn__curl_xfer *x = cl->xfers;
    dn__curl_done_fn done = x->done;
    void *ud = x->ud;
    CURL *easy = x->easy;
    xfer_end(cl, x);
    done(ud, easy, CURLE_ABORTED_BY_CALLBACK);
  }
  handle_closed(cl);
}

void dn__curl_loop_close(dn__curl_loop *cl, void (*closed)(void *ud),
                         void *ud) {
  if (cl->closing)
    return;
  cl->closing = 1;
  cl->closed = closed;
  cl->closed_ud = ud;
  if (cl->multi) {
    /* Out of the multi now, so that freeing it leaves them alone; they
     * are reported once the timer has closed. */
    for (dn__curl_xfer *x = cl->xfers; x; x = x->next)
      curl_multi_remove_handle(cl->multi, x->easy);
    curl_multi_cleanup(cl->multi);
    cl->multi = NULL;
  }
  uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
  for (dn__curl_sock *k = cl->socks; k; k = k->next)
    sock_close(k);
}
