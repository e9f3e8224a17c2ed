/* curl_loop.h - libcurl's multi interface driven by a libuv loop.
 *
 * One dn__curl_loop is one CURLM on one uv_loop_t: libcurl says which
 * sockets to watch and when to time out, the loop watches them, and every
 * finished transfer is reported through the callback given when it was
 * started, the way libuv reports a uv_write. Connections stay in the
 * multi's pool between transfers, so callers that send many requests to
 * the same hosts should share one curl loop and may reuse their easy
 * handles. Nothing here knows what the transfers are for.
 *
 * Every call is made on the loop's thread (dn__curl_loop_init also before
 * the loop runs), never from inside a libcurl callback such as a write or
 * header function.
 */
#ifndef DN_CURL_LOOP_H
#define DN_CURL_LOOP_H

#include <curl/curl.h>
#include <stddef.h>
#include <uv.h>

typedef struct dn__curl_sock dn__curl_sock;
typedef struct dn__curl_xfer dn__curl_xfer;

/* Called on the loop thread when a transfer started with
 * dn__curl_loop_start ends: result is CURLE_OK when the response was
 * received (whatever its status: ask easy for CURLINFO_RESPONSE_CODE), a
 * libcurl error, or CURLE_ABORTED_BY_CALLBACK when dn__curl_loop_close
 * cancelled it. easy has been removed from the multi and is the caller's
 * again: it may be freed, or set up and started again. */
typedef void (*dn__curl_done_fn)(void *ud, CURL *easy, CURLcode result);

/* Embedded in its owner; the fields are private to curl_loop.c. */
typedef struct dn__curl_loop {
  uv_loop_t *loop;
  CURLM *multi;     /* made by the first call that needs it */
  uv_timer_t timer; /* libcurl's one timeout */
  dn__curl_sock *socks;
  dn__curl_xfer *xfers; /* started and not reported */
  size_t active;
  int handles; /* uv handles not yet closed */
  int closing;
  void (*closed)(void *ud);
  void *closed_ud;
} dn__curl_loop;

/* Initialises libcurl for the process (curl_global_init), once; later
 * calls return the first one's result. 0 or DN_ESTATE. Thread-safe. */
int dn__curl_global_init(void);

/* Initialises cl on loop. Cannot fail: the multi handle, which can, is
 * made by the first dn__curl_loop_start or dn__curl_loop_set_long, so a
 * caller can create its other handles afterwards and still fail without
 * anything to undo. From here on cl holds a uv handle: it must be closed
 * with dn__curl_loop_close before loop is closed. */
void dn__curl_loop_init(dn__curl_loop *cl, uv_loop_t *loop);

/* Sets a long-valued option of the multi handle, for example
 * CURLMOPT_MAX_HOST_CONNECTIONS, CURLMOPT_MAX_TOTAL_CONNECTIONS or
 * CURLMOPT_MAXCONNECTS (the size of the connection pool). Returns 0,
 * DN_EINVAL (libcurl refused the option or the value), DN_ENOMEM or
 * DN_ESTATE (closing, or libcurl could not be initialised). A failed call
 * changes no option. */
int dn__curl_loop_set_long(dn__curl_loop *cl, CURLMoption opt, long value);

/* Starts the transfer easy, which the caller has set up (URL, headers,
 * write and header functions, timeouts). done(ud, easy, result) runs on
 * the loop thread when it ends, never from within this call. Until then
 * easy belongs to the loop: the caller must not free or change it, and
 * CURLOPT_PRIVATE is the loop's (it is NULL again when done runs; pass
 * state through ud instead). Returns 0, DN_ENOMEM, DN_EINVAL (libcurl
 * refused the handle, for example one already started) or DN_ESTATE
 * (closing, or libcurl could not be initialised). A failed call changes
 * nothing and its callback never runs. */
int dn__curl_loop_start(dn__curl_loop *cl, CURL *easy, dn__curl_done_fn done,
                        void *ud);

/* Stops the transfer easy, started on cl and not yet reported: it is
 * removed from the multi, its callback never runs, and easy is the
 * caller's again when this returns. Returns 0, or DN_ENOTFOUND when easy
 * is not such a transfer (nothing is changed then). */
int dn__curl_loop_cancel(dn__curl_loop *cl, CURL *easy);

/* The number of transfers started and not yet reported or cancelled. */
size_t dn__curl_loop_active(const dn__curl_loop *cl);

/* Closes cl: the transfers in flight are removed from the multi at once
 * (the caller must not free their easy handles before their callbacks),
 * the multi and its pooled connections are freed, and the uv handles are
 * closed. Then, from the loop and never from within this call, each
 * cancelled transfer's callback runs with CURLE_ABORTED_BY_CALLBACK (a
 * callback may still cancel another one, whose callback then does not
 * run), and last closed(ud) (closed may be NULL). After closed, cl's
 * memory may be reused. Calling it again does nothing. */
void dn__curl_loop_close(dn__curl_loop *cl, void (*closed)(void *ud), void *ud);

#endif
