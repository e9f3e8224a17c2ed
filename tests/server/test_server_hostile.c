/* test_server_hostile.c - the server against hostile clients, over real
 * TCP: request bodies do not stay in memory after their request, the
 * server-wide buffer budget answers 503 instead of growing, silent
 * connections give their slot back after the request timeout, idle
 * keep-alive connections make room for new ones, a client that pipelines
 * without reading does not hold up the others, and the request framing
 * RFC 9112 forbids (obs-fold, bare LF, malformed chunk lines, a doubled
 * chunked) is refused with 400. Each test runs with the engine on the
 * loop thread and on the thread pool.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <time.h>

/* The fixture's helpers are shared with test_server.c; not every one is
 * used here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "server_fixture.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t buffer_bytes(fixture *f) {
  dn_server_stats st;
  dn_server_stats_get(f->srv, &st);
  return st.buffer_bytes;
}

/* Waits up to `ms` for buffer_bytes to be at most `most`; returns it. */
static uint64_t wait_buffer_bytes_at_most(fixture *f, uint64_t most, int ms) {
  uint64_t b = buffer_bytes(f);
  for (int i = 0; i < ms / 10 && b > most; i++) {
    usleep(10000);
    b = buffer_bytes(f);
  }
  return b;
}

/* ---- fixtures ------------------------------------------------------------
 */
#define BUDGET ((size_t)768 << 10)
#define BODY_MAX ((size_t)256 << 10)

static void tweak_budget(dn_server_options *o) {
  o->max_body_bytes = BODY_MAX;
  o->max_buffer_bytes = BUDGET;
  o->max_connections = 16;
}

static int setup_budget(void **state, int offload) {
  fx_tweak = tweak_budget;
  *state = fx_start_ex(offload, 10000, 10000);
  fx_tweak = NULL;
  return *state ? 0 : -1;
}
static int setup_budget_inline(void **state) { return setup_budget(state, 0); }
static int setup_budget_offload(void **state) { return setup_budget(state, 1); }

static void tweak_slots(dn_server_options *o) { o->max_connections = 8; }

/* Eight slots, 300 ms for a request to arrive, 10 s of keep-alive. */
static int setup_slots(void **state, int offload) {
  fx_tweak = tweak_slots;
  *state = fx_start_ex(offload, 300, 10000);
  fx_tweak = NULL;
  return *state ? 0 : -1;
}
static int setup_slots_inline(void **state) { return setup_slots(state, 0); }
static int setup_slots_offload(void **state) { return setup_slots(state, 1); }

static void tweak_flood(dn_server_options *o) { o->max_connections = 16; }

static int setup_flood(void **state, int offload) {
  fx_tweak = tweak_flood;
  *state = fx_start_ex(offload, 10000, 10000);
  fx_tweak = NULL;
  return *state ? 0 : -1;
}
static int setup_flood_inline(void **state) { return setup_flood(state, 0); }
static int setup_flood_offload(void **state) { return setup_flood(state, 1); }

#define HOSTILE(fn, setup)                                                     \
  cmocka_unit_test_setup_teardown(fn, setup##_inline, fx_teardown),            \
      cmocka_unit_test_setup_teardown(fn, setup##_offload, fx_teardown)

/* ---- request buffers -----------------------------------------------------
 */
static void send_post_head(conn *c, size_t len) {
  char head[256];
  snprintf(head, sizeof head,
           "POST /news?id=1 HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
           len);
  send_str(c->fd, head);
}

static void send_bytes(conn *c, size_t n) {
  static char x[65536];
  memset(x, 'x', sizeof x);
  while (n) {
    size_t k = n < sizeof x ? n : sizeof x;
    send_all(c->fd, x, k);
    n -= k;
  }
}

/* Eight keep-alive connections send a 200 kB body one after the other:
 * each body's buffer goes when its request is answered, so all of them
 * fit in a budget that holds only three, and what the idle connections
 * keep is a few KiB each. */
static void test_body_buffers_released_after_request(void **state) {
  fixture *f = *state;
  conn *cs[8];
  resp r;
  for (int i = 0; i < 8; i++) {
    cs[i] = conn_open(f->port);
    send_post_head(cs[i], 200000);
    send_bytes(cs[i], 200000);
    assert_int_equal(read_resp(cs[i], &r, 0), 0);
    assert_int_equal(r.status, 405); /* read whole, then refused */
  }
  uint64_t held = wait_buffer_bytes_at_most(f, 8 * (24 << 10), 2000);
  print_message("buffer bytes with 8 idle connections: %llu\n",
                (unsigned long long)held);
  assert_true(held <= 8 * (24 << 10));
  for (int i = 0; i < 8; i++)
    conn_close_fd(cs[i]);
  assert_int_equal(wait_buffer_bytes_at_most(f, 0, 2000), 0);
}

/* Two requests hold most of the budget with bodies in progress; a third
 * whose body would pass it gets 503 and is closed, and the first two are
 * answered normally afterwards. */
static void test_budget_refuses_with_503(void **state) {
  fixture *f = *state;
  conn *a = conn_open(f->port), *b = conn_open(f->port);
  send_post_head(a, 200000);
  send_bytes(a, 150000);
  send_post_head(b, 200000);
  send_bytes(b, 150000);
  uint64_t held = 0;
  for (int i = 0; i < 300 && held < 2 * 150000; i++) {
    usleep(10000);
    held = buffer_bytes(f);
  }
  assert_true(held >= 2 * 150000);
  conn *c = conn_open(f->port);
  send_post_head(c, 240000);
  resp r;
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 503);
  char v[64];
  assert_string_equal(hdr(&r, "Retry-After", v, sizeof v), "1");
  assert_true(closed_by_peer(c));
  conn_close_fd(c);
  assert_true(buffer_bytes(f) <= BUDGET);
  send_bytes(a, 50000);
  send_bytes(b, 50000);
  assert_int_equal(read_resp(a, &r, 0), 0);
  assert_int_equal(r.status, 405);
  assert_int_equal(read_resp(b, &r, 0), 0);
  assert_int_equal(r.status, 405);
  conn_close_fd(a);
  conn_close_fd(b);
  assert_int_equal(wait_buffer_bytes_at_most(f, 0, 2000), 0);
}

/* ---- connection slots ----------------------------------------------------
 */
static const char comment1[] = "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n";

/* Eight sockets that never send a byte take every slot, but only for the
 * request timeout (300 ms), not the idle timeout (10 s); then a real
 * request is served. */
static void test_silent_connections_time_out(void **state) {
  fixture *f = *state;
  conn *cs[8];
  uint64_t t0 = now_ms();
  for (int i = 0; i < 8; i++)
    cs[i] = conn_open(f->port);
  resp r;
  conn *extra = conn_open(f->port);
  assert_int_equal(read_resp(extra, &r, 0), 0);
  assert_int_equal(r.status, 503); /* nobody idle to make room */
  conn_close_fd(extra);
  for (int i = 0; i < 8; i++) {
    assert_true(closed_by_peer(cs[i]));
    conn_close_fd(cs[i]);
  }
  /* No clock is asserted: the 503 above shows the silent sockets still
   * held every slot, and closed_by_peer waits at most IO_TIMEOUT_MS (5 s),
   * half the idle timeout, so they were closed by the request timeout. */
  print_message("8 silent connections closed after %llu ms\n",
                (unsigned long long)(now_ms() - t0));
  conn *c = conn_open(f->port);
  send_str(c->fd, comment1);
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  conn_close_fd(c);
}

/* Eight keep-alive connections idle after a request; a ninth client is
 * served, and the connection that has idled longest is the one closed. */
static void test_idle_keep_alive_makes_room(void **state) {
  fixture *f = *state;
  conn *cs[8];
  resp r;
  for (int i = 0; i < 8; i++) {
    cs[i] = conn_open(f->port);
    send_str(cs[i]->fd, comment1);
    assert_int_equal(read_resp(cs[i], &r, 0), 0);
    assert_int_equal(r.status, 200);
  }
  conn *c = conn_open(f->port);
  send_str(c->fd, comment1);
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_true(closed_by_peer(cs[0]));
  /* The others are still open and served. */
  for (int i = 1; i < 8; i++) {
    send_str(cs[i]->fd, comment1);
    assert_int_equal(read_resp(cs[i], &r, 0), 0);
    assert_int_equal(r.status, 200);
  }
  dn_server_stats st;
  dn_server_stats_get(f->srv, &st);
  assert_int_equal(st.connections_rejected, 0);
  for (int i = 0; i < 8; i++)
    conn_close_fd(cs[i]);
  conn_close_fd(c);
}

/* ---- pipelining floods ---------------------------------------------------
 */
typedef struct flooder {
  pthread_t thread;
  int fd;
  volatile int stop;
} flooder;

/* Sends pipelined requests until told to stop, never reading. */
static void *flood_main(void *ud) {
  flooder *fl = ud;
  static const char one[] = "GET /news?id=1 HTTP/1.1\r\nHost: t\r\n\r\n";
  enum { N = 1000 };
  char *many = malloc(N * (sizeof one - 1));
  for (int i = 0; i < N; i++)
    memcpy(many + (size_t)i * (sizeof one - 1), one, sizeof one - 1);
  struct timeval tv = {0, 50000};
  setsockopt(fl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t off = 0, len = N * (sizeof one - 1);
  while (!fl->stop) {
    ssize_t w = send(fl->fd, many + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      break;
    if (w > 0)
      off = (off + (size_t)w) % len;
  }
  free(many);
  return NULL;
}

/* Four clients pipeline requests without reading; another client's
 * requests are still answered promptly, and what the flooders held is
 * given back when they close. */
static void test_pipelining_flood_does_not_stall_others(void **state) {
  fixture *f = *state;
  flooder fl[4];
  for (int i = 0; i < 4; i++) {
    fl[i].fd = tcp_connect(f->port);
    fl[i].stop = 0;
    int small = 4096;
    setsockopt(fl[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    pthread_create(&fl[i].thread, NULL, flood_main, &fl[i]);
  }
  usleep(100000);
  uint64_t worst = 0, total = 0;
  resp r;
  for (int i = 0; i < 20; i++) {
    uint64_t t0 = now_ms();
    conn *c = conn_open(f->port);
    send_str(c->fd, comment1);
    assert_int_equal(read_resp(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    conn_close_fd(c);
    uint64_t took = now_ms() - t0;
    worst = took > worst ? took : worst;
    total += took;
    usleep(20000);
  }
  print_message("another client's request during the flood: mean %llu ms, "
                "worst %llu ms\n",
                (unsigned long long)(total / 20), (unsigned long long)worst);
  /* Every request above was answered while the flood went on; how long
   * they waited is a figure for a benchmark, not an assertion. */
  uint64_t held = buffer_bytes(f);
  print_message("buffer bytes during the flood: %llu\n",
                (unsigned long long)held);
  assert_true(held > 0);
  assert_true(held <= 4 * ((1 << 20) + (64 << 10)) + (256 << 10));
  for (int i = 0; i < 4; i++) {
    fl[i].stop = 1;
    pthread_join(fl[i].thread, NULL);
    close(fl[i].fd);
  }
  assert_int_equal(wait_buffer_bytes_at_most(f, 0, 3000), 0);
}

/* ---- framing RFC 9112 forbids --------------------------------------------
 */
#define CHUNKED_POST                                                           \
  "POST /news?id=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"

static const struct {
  const char *what, *req;
} refused[] = {
    {"obs-fold",
     "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n"},
    {"obs-fold on Transfer-Encoding",
     "POST /news?id=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n"
     "\r\n3\r\nabc\r\n0\r\n\r\n"},
    {"obs-fold with a tab",
     "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\tx\r\n\r\n"},
    {"bare LF line endings", "GET /comment?id=1 HTTP/1.1\nHost: t\n\n"},
    {"one bare LF", "GET /comment?id=1 HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n"},
    {"bare LF ending the head", "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\n"},
    {"bare LF in a chunk extension", CHUNKED_POST "3;a\nb\r\nabc\r\n0\r\n\r\n"},
    {"junk after a chunk size", CHUNKED_POST "3 junk\r\nabc\r\n0\r\n\r\n"},
    {"junk glued to a chunk size", CHUNKED_POST "3x\r\nabc\r\n0\r\n\r\n"},
    {"bare LF after a chunk size", CHUNKED_POST "3\nabc\r\n0\r\n\r\n"},
    {"chunk data not followed by CRLF", CHUNKED_POST "3\r\nabcd\r\n0\r\n\r\n"},
    {"bare LF in the trailer", CHUNKED_POST "3\r\nabc\r\n0\r\nX: y\n\r\n"},
    {"Transfer-Encoding: chunked twice",
     "POST /news?id=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
};

static void test_framing_refused_with_400(void **state) {
  fixture *f = *state;
  resp r;
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    conn *c = conn_open(f->port);
    send_str(c->fd, refused[i].req);
    if (read_resp(c, &r, 0) != 0 || r.status != 400 ||
        !strstr(r.head, "Connection: close"))
      fail_msg("%s: status %d", refused[i].what, r.status);
    if (!closed_by_peer(c))
      fail_msg("%s: the connection stayed open", refused[i].what);
    conn_close_fd(c);
  }
  /* What is allowed still works: an empty line before the request line,
   * chunk extensions, a trailer field. */
  conn *c = conn_open(f->port);
  send_str(c->fd, "\r\n" CHUNKED_POST "3 ; a=1;b=\"x y\"\r\nabc\r\n"
                  "0\r\nX-T: 1\r\n\r\n" CHUNKED_POST "0\r\n\r\n");
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 405);
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 405);
  conn_close_fd(c);
}

int main(void) {
  /* The server in this process writes to flooders that closed with
   * answers unread; like donut serve, the process ignores SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      HOSTILE(test_body_buffers_released_after_request, setup_budget),
      HOSTILE(test_budget_refuses_with_503, setup_budget),
      HOSTILE(test_silent_connections_time_out, setup_slots),
      HOSTILE(test_idle_keep_alive_makes_room, setup_slots),
      HOSTILE(test_pipelining_flood_does_not_stall_others, setup_flood),
      HOSTILE(test_framing_refused_with_400, setup_flood),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
