/* test_server.c - the HTTP server over real TCP: the demo site through the
 * engine (ETag, 304, 412, Cache-Status, donut pages, PUT and purge),
 * keep-alive and pipelining, the limits (431, 413, 400 and close,
 * connection limit, slow clients), the control API and graceful shutdown.
 * Every test runs twice: engine calls on the loop thread, and on libuv's
 * thread pool (offload). The request parser is also tested on its own,
 * including every split point of a pipelined input.
 */
#define _GNU_SOURCE
#include "server_fixture.h"
#include "server_parse.h"

/* ---- the site -------------------------------------------------------------
 */
static void test_news_etag_304_412(void **state) {
  fixture *f = *state;
  resp r;
  char v[256], etag[128];
  get(f, "/news?id=1", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(hdr(&r, "Cache-Status", v, sizeof v),
                      "donut; fwd=miss; stored");
  hdr(&r, "ETag", etag, sizeof etag);
  assert_true(etag[0] == '"');
  assert_non_null(strstr(r.body, "Weather in tokyo"));
  assert_non_null(strstr(r.body, "comment-2"));
  assert_int_equal(r.body_len,
                   strtoul(hdr(&r, "Content-Length", v, sizeof v), NULL, 10));
  assert_non_null(strstr(hdr(&r, "Cache-Control", v, sizeof v), "max-age=0"));

  get(f, "/news?id=1", &r);
  assert_int_equal(r.status, 200);
  /* RFC 9211 §2.5: ttl is the freshness left (the weather's 3600 s). */
  hdr(&r, "Cache-Status", v, sizeof v);
  assert_int_equal(strncmp(v, "donut; hit; ttl=3", 17), 0);
  hdr(&r, "ETag", v, sizeof v);
  assert_string_equal(v, etag);

  char req[512];
  snprintf(req, sizeof req,
           "GET /news?id=1 HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n",
           etag);
  fetch(f->port, req, &r);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.body_len, 0);
  assert_string_equal(hdr(&r, "ETag", v, sizeof v), etag);
  assert_null(strcasestr(r.head, "Content-Length"));

  fetch(f->port,
        "GET /news?id=1 HTTP/1.1\r\nHost: t\r\nIf-Match: \"other\"\r\n\r\n",
        &r);
  assert_int_equal(r.status, 412);

  fetch(f->port, "HEAD /news?id=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_true(strtoul(hdr(&r, "Content-Length", v, sizeof v), NULL, 10) > 0);
  assert_int_equal(renders_of(f, "news"), 1);
}

static void test_purge_tag_renders_only_weather(void **state) {
  fixture *f = *state;
  resp r;
  char e1[128], e2[128], v[256];
  get(f, "/news?id=1", &r);
  hdr(&r, "ETag", e1, sizeof e1);
  control(f, "POST", "/purge", "{\"tags\":[\"weather\"]}", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"tags\":[\"weather\"]"));
  get(f, "/news?id=1", &r);
  assert_int_equal(r.status, 200);
  hdr(&r, "ETag", e2, sizeof e2);
  assert_string_not_equal(e1, e2); /* a new weather report */
  assert_string_equal(hdr(&r, "Cache-Status", v, sizeof v),
                      "donut; fwd=stale; detail=recomposed; stored");
  assert_int_equal(renders_of(f, "weather"), 2);
  assert_int_equal(renders_of(f, "news"), 1);
  assert_int_equal(renders_of(f, "comments"), 1);
}

static void test_put_updates_and_purges(void **state) {
  fixture *f = *state;
  resp r;
  get(f, "/news?id=1", &r);
  fetch(f->port,
        "PUT /comment?id=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"
        "<b>new</b",
        &r);
  assert_int_equal(r.status, 200);
  get(f, "/news?id=1", &r);
  assert_non_null(strstr(r.body, "&lt;b&gt;new&lt;/b"));
  assert_int_equal(renders_of(f, "comments"), 2);
  assert_int_equal(renders_of(f, "weather"), 1);
  assert_int_equal(renders_of(f, "news"), 1);
  get(f, "/comment?id=2", &r);
  assert_non_null(strstr(r.body, "&lt;b&gt;new"));

  fetch(f->port,
        "PUT /weather?city=tokyo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
        "\r\nSnow",
        &r);
  assert_int_equal(r.status, 200);
  get(f, "/weather?city=tokyo", &r);
  assert_non_null(strstr(r.body, "Snow"));
  fetch(f->port,
        "PUT /comment?id=99 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
        &r);
  assert_int_equal(r.status, 404);
  fetch(f->port,
        "PUT /weather?city=T%C3%B6 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
        "\r\nx",
        &r);
  assert_int_equal(r.status, 400);
  fetch(f->port,
        "POST /news?id=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
  assert_int_equal(r.status, 405);
}

static void test_donut_home(void **state) {
  fixture *f = *state;
  resp r;
  char v[256];
  fetch(f->port, "GET /home HTTP/1.1\r\nHost: t\r\nCookie: name=alice\r\n\r\n",
        &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "Welcome to alice"));
  assert_string_equal(hdr(&r, "ETag", v, sizeof v), "");
  assert_non_null(strstr(hdr(&r, "Cache-Control", v, sizeof v), "private"));
  fetch(f->port, "GET /home HTTP/1.1\r\nHost: t\r\nCookie: name=<bob>\r\n\r\n",
        &r);
  assert_non_null(strstr(r.body, "Welcome to &lt;bob&gt;"));
  assert_string_equal(hdr(&r, "Cache-Status", v, sizeof v),
                      "donut; fwd=stale; detail=recomposed");
  get(f, "/home", &r);
  assert_non_null(strstr(r.body, "Welcome to guest"));
  assert_int_equal(renders_of(f, "home"), 1); /* one shell for everyone */
  assert_int_equal(renders_of(f, "greeting"), 3);
  assert_int_equal(renders_of(f, "news"), 1);
}

static void test_not_found_and_bad_target(void **state) {
  fixture *f = *state;
  resp r;
  get(f, "/nothing", &r);
  assert_int_equal(r.status, 404);
  get(f, "/news?id=9", &r);
  assert_int_equal(r.status, 404);
  fetch(f->port,
        "GET http://example.test/comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "First!"));
  /* The authority ends at '?': this is the root with a query, not
   * /comment (RFC 3986 §3.2); an empty path is "/" (RFC 9112 §3.2.2). */
  fetch(f->port,
        "GET http://example.test?x=/comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        &r);
  assert_int_equal(r.status, 404);
  assert_null(strstr(r.body, "First!"));
  fetch(f->port, "GET http://example.test HTTP/1.1\r\nHost: t\r\n\r\n", &r);
  assert_int_equal(r.status, 404);
}

/* ---- connections ----------------------------------------------------------
 */
static void test_keep_alive_and_pipelining(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f->port);
  resp r;
  send_str(c->fd, "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_non_null(strstr(r.body, "First!"));
  send_str(
      c->fd,
      "GET /comment?id=2 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /comment?id=3 HTTP/1.1\r\nHost: t\r\n\r\n"
      "HEAD /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_non_null(strstr(r.body, "only the hole"));
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_non_null(strstr(r.body, "Purging one tag"));
  assert_int_equal(read_resp(c, &r, 1), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_non_null(strstr(r.body, "First!"));
  assert_non_null(strstr(r.head, "Connection: close"));
  assert_true(closed_by_peer(c));
  conn_close_fd(c);
}

static void test_http10_and_expect_continue(void **state) {
  fixture *f = *state;
  resp r;
  fetch(f->port, "GET /comment?id=1 HTTP/1.0\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Connection: close"));
  conn *c = conn_open(f->port);
  send_str(c->fd, "PUT /weather?city=oslo HTTP/1.1\r\nHost: t\r\n"
                  "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  assert_int_equal(read_resp(c, &r, 1), 0);
  assert_int_equal(r.status, 100);
  send_str(c->fd, "Fog 3");
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  conn_close_fd(c);
  get(f, "/weather?city=oslo", &r);
  assert_non_null(strstr(r.body, "Fog 3"));
}

static void expect_error_then_close(int port, const char *req, size_t len,
                                    int status) {
  conn *c = conn_open(port);
  send_all(c->fd, req, len);
  resp r;
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, status);
  assert_non_null(strstr(r.head, "Connection: close"));
  assert_true(closed_by_peer(c));
  conn_close_fd(c);
}

static void test_limits_431_413_400(void **state) {
  fixture *f = *state;
  char big[4096];
  int n = snprintf(big, sizeof big, "GET /news?id=1 HTTP/1.1\r\nX-Big: ");
  memset(big + n, 'a', 3000);
  n += 3000;
  n += snprintf(big + n, sizeof big - (size_t)n, "\r\n\r\n");
  expect_error_then_close(f->port, big, (size_t)n, 431);

  const char *cl = "PUT /weather?city=x HTTP/1.1\r\nHost: t\r\n"
                   "Content-Length: 100000\r\n\r\nabc";
  expect_error_then_close(f->port, cl, strlen(cl), 413);

  char chunked[8192];
  n = snprintf(chunked, sizeof chunked,
               "PUT /weather?city=x HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n1388\r\n");
  memset(chunked + n, 'b', 5000);
  n += 5000;
  expect_error_then_close(f->port, chunked, (size_t)n, 413);

  const char *junk = "HELLO THERE\r\n\r\n";
  expect_error_then_close(f->port, junk, strlen(junk), 400);
  const char *bad = "GET / HTTP/1.1\r\nBad Header\r\n\r\n";
  expect_error_then_close(f->port, bad, strlen(bad), 400);
  /* RFC 9112 §3.2: HTTP/1.1 needs exactly one Host. */
  const char *nohost = "GET /comment?id=1 HTTP/1.1\r\n\r\n";
  expect_error_then_close(f->port, nohost, strlen(nohost), 400);
  const char *twohosts =
      "GET /comment?id=1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
  expect_error_then_close(f->port, twohosts, strlen(twohosts), 400);
  /* A good request still works afterwards. */
  resp r;
  get(f, "/comment?id=1", &r);
  assert_int_equal(r.status, 200);
}

/* Trailer fields are not request headers (RFC 9110 §6.5.1); a space
 * before the colon is refused (RFC 9112 §5.1); only HTTP/1.x is served; a
 * HEAD that fails its precondition announces no body. */
static void test_trailers_framing_and_versions(void **state) {
  fixture *f = *state;
  const char *trailer = "GET /greeting HTTP/1.1\r\nHost: t\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"
                        "0\r\nCookie: name=from-trailer\r\n\r\n";
  conn *c = conn_open(f->port);
  send_all(c->fd, trailer, strlen(trailer));
  resp r;
  assert_int_equal(read_resp(c, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "Welcome to guest"));
  assert_null(strstr(r.body, "from-trailer"));
  conn_close_fd(c);

  char bad_trailers[8192];
  int n = snprintf(bad_trailers, sizeof bad_trailers,
                   "POST /x HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n");
  for (int i = 0; i < 20; i++) {
    n += snprintf(bad_trailers + n, sizeof bad_trailers - (size_t)n,
                  "X-T%d: ", i);
    memset(bad_trailers + n, 'v', 200);
    n += 200;
    n += snprintf(bad_trailers + n, sizeof bad_trailers - (size_t)n, "\r\n");
  }
  n += snprintf(bad_trailers + n, sizeof bad_trailers - (size_t)n,
                "Bad Trailer\r\n\r\n");
  expect_error_then_close(f->port, bad_trailers, (size_t)n, 400);

  const char *smuggle = "POST /x HTTP/1.1\r\nHost: t\r\n"
                        "Content-Length : 24\r\n\r\n"
                        "GET /news?id=3 HTTP/1.1\r\n";
  expect_error_then_close(f->port, smuggle, strlen(smuggle), 400);
  const char *http2 = "GET /news?id=1 HTTP/2.0\r\nHost: t\r\n\r\n";
  expect_error_then_close(f->port, http2, strlen(http2), 505);

  const char *head = "HEAD /news?id=1 HTTP/1.1\r\nHost: t\r\n"
                     "If-Match: \"nope\"\r\n\r\n";
  c = conn_open(f->port);
  send_all(c->fd, head, strlen(head));
  assert_int_equal(read_resp(c, &r, 1), 0);
  assert_int_equal(r.status, 412);
  assert_non_null(strstr(r.head, "Content-Length: 0\r\n"));
  conn_close_fd(c);
}

/* Requests in progress hold their slots: with all four taken, a
 * newcomer gets 503 (idle keep-alive connections would make room, see
 * test_server_hostile.c). */
static void test_connection_limit(void **state) {
  fixture *f = *state;
  conn *cs[4];
  resp r;
  for (int i = 0; i < 4; i++) {
    cs[i] = conn_open(f->port);
    send_str(cs[i]->fd, "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n");
  }
  conn *extra = conn_open(f->port);
  assert_int_equal(read_resp(extra, &r, 0), 0);
  assert_int_equal(r.status, 503);
  assert_true(closed_by_peer(extra));
  conn_close_fd(extra);
  /* The limit is per listener: the control API still answers. */
  control(f, "GET", "/healthz", NULL, &r);
  assert_int_equal(r.status, 200);
  conn_close_fd(cs[0]);
  /* Once one closes, a new connection is served again. */
  for (int tries = 0; tries < 500; tries++) {
    conn *c = conn_open(f->port);
    send_str(c->fd, "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    int rc = read_resp(c, &r, 0);
    conn_close_fd(c);
    if (rc == 0 && r.status == 200)
      break;
    usleep(10000);
  }
  assert_int_equal(r.status, 200);
  for (int i = 1; i < 4; i++)
    conn_close_fd(cs[i]);
}

static void test_slow_client_times_out(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f->port);
  send_str(c->fd, "GET /news?id=1 HTTP/1.1\r\nHost: t\r\n");
  resp r;
  assert_int_equal(read_resp(c, &r, 0), 0); /* within IO_TIMEOUT_MS */
  assert_int_equal(r.status, 408);
  assert_true(closed_by_peer(c));
  conn_close_fd(c);
}

/* A peer that pipelines requests but never reads the answers: the server
 * stops answering once a megabyte is queued and drops the peer after the
 * idle timeout instead of holding the connection for ever. */
static void test_peer_that_never_reads_is_dropped(void **state) {
  fixture *f = *state;
  int fd = tcp_connect(f->port);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  static const char one[] = "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n";
  char *many = malloc(20000 * (sizeof one - 1));
  for (int i = 0; i < 20000; i++)
    memcpy(many + (size_t)i * (sizeof one - 1), one, sizeof one - 1);
  send_all(fd, many, 20000 * (sizeof one - 1));
  free(many);
  usleep(1500 * 1000);
  /* Now read: the queued answers, then the end of the connection. */
  char buf[65536];
  ssize_t n;
  size_t total = 0;
  while ((n = recv_some(fd, buf, sizeof buf)) > 0)
    total += (size_t)n;
  assert_true(n == 0 || errno == ECONNRESET);
  assert_true(total < 20000 * 600); /* it did not answer everything */
  close(fd);
}

static void test_graceful_shutdown(void **state) {
  fixture *f = *state;
  conn *idle = conn_open(f->port);
  resp r;
  send_str(idle->fd, "GET /comment?id=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_int_equal(read_resp(idle, &r, 0), 0);
  conn *mid = conn_open(f->port);
  send_str(mid->fd, "GET /comment?id=3 HTTP/1.1\r\nHost: t\r\n");
  usleep(50000);
  f->stopped = 1;
  uv_async_send(&f->stop);
  /* The idle connection is closed; the request in progress is answered. */
  assert_true(closed_by_peer(idle));
  send_str(mid->fd, "\r\n");
  assert_int_equal(read_resp(mid, &r, 0), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Connection: close"));
  assert_true(closed_by_peer(mid));
  conn_close_fd(idle);
  conn_close_fd(mid);
  pthread_join(f->thread, NULL);
  assert_true(f->done);
  assert_int_equal(tcp_connect(f->port), -1);
}

/* ---- the control API ------------------------------------------------------
 */
static void test_control_auth(void **state) {
  fixture *f = *state;
  resp r;
  fetch(f->ctl_port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &r);
  assert_int_equal(r.status, 401);
  assert_non_null(strcasestr(r.head, "WWW-Authenticate: Bearer"));
  fetch(f->ctl_port,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        "wrong-token-0123456789"
        "abcdef\r\n\r\n",
        &r);
  assert_int_equal(r.status, 401);
  fetch(f->ctl_port,
        "POST /purge HTTP/1.1\r\nHost: t\r\nAuthorization: Basic " TOKEN
        "\r\nContent-Length: 2\r\n\r\n{}",
        &r);
  assert_int_equal(r.status, 401);
  /* The site listener has no control endpoints. */
  get(f, "/metrics", &r);
  assert_int_equal(r.status, 404);
}

static void test_control_purge_inspect_metrics(void **state) {
  fixture *f = *state;
  resp r;
  get(f, "/news?id=2", &r);
  control(f, "POST", "/purge",
          "{\"uris\":[\"/comment?id=3\",\"app://self/weather?city=tokyo\"]}",
          &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"uris\":[\"app://self/comment?id=3\","
                                 "\"app://self/weather?city=tokyo\"]"));
  control(f, "POST", "/purge", "{\"tags\":[\"bad tag\"],\"uris\":[]}", &r);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "DN_ETAG"));
  control(f, "POST", "/purge", "{\"tags\":[\"weather\"],\"uris\":[\"::\"]}",
          &r);
  assert_int_equal(r.status, 400);
  control(f, "POST", "/purge", "not json", &r);
  assert_int_equal(r.status, 400);
  control(f, "POST", "/purge", "{}", &r);
  assert_int_equal(r.status, 400);
  control(f, "GET", "/purge", NULL, &r);
  assert_int_equal(r.status, 405);

  get(f, "/news?id=2", &r);
  assert_int_equal(renders_of(f, "comments"), 2);
  assert_int_equal(renders_of(f, "weather"), 2);
  assert_int_equal(renders_of(f, "news"), 1);

  control(f, "GET", "/inspect?uri=%2Fnews%3Fid%3D2", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"uri\":\"app://self/news?id=2\""));
  assert_non_null(strstr(r.body, "\"cached\":true"));
  assert_non_null(strstr(r.body, "app://self/comments?post=2"));
  control(f, "GET", "/inspect", NULL, &r);
  assert_int_equal(r.status, 400);
  control(f, "GET", "/inspect?uri=%zz", NULL, &r);
  assert_int_equal(r.status, 400);

  control(f, "GET", "/metrics", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(
      strstr(r.body, "donut_renders_total{renderer=\"weather\"} 2\n"));
  assert_non_null(strstr(r.body, "donut_renders_total{renderer=\"news\"} 1\n"));
  assert_non_null(strstr(r.body, "donut_cache_hits_total "));
  assert_non_null(strstr(r.body, "donut_store_errors_total 0\n"));
  assert_non_null(strstr(r.body, "donut_http_request_duration_seconds_bucket"
                                 "{cache=\"miss\",le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(r.body, "donut_http_request_duration_seconds_count"
                                 "{cache=\"recomposed\"} 1\n"));
  control(f, "GET", "/stats", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"renderers\":{"));
  control(f, "GET", "/healthz", NULL, &r);
  assert_string_equal(r.body, "{\"status\":\"ok\"}\n");
  control(f, "GET", "/nope", NULL, &r);
  assert_int_equal(r.status, 404);
}

/* ---- the parser on its own ------------------------------------------------
 */
static const char pipelined[] =
    "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Long: abc\r\n\r\n"
    "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
    "chunked\r\n\r\n3\r\nabc\r\n"
    "0\r\n\r\n";

/* Feeds `in` in two pieces split at `at` and returns the requests seen as
 * "METHOD target body|" strings. */
static void parse_split(size_t at, char *out, size_t cap) {
  dn__reqparser rp;
  dn__reqparser_init(&rp, 1024, 1024);
  size_t len = sizeof pipelined - 1, pos = 0, end = at;
  out[0] = '\0';
  while (pos < len) {
    size_t used;
    int r = dn__reqparser_feed(&rp, pipelined + pos, end - pos, &used);
    pos += used;
    if (r == DN__PARSE_REQUEST) {
      const dn__req *q = dn__reqparser_req(&rp);
      size_t o = strlen(out);
      snprintf(out + o, cap - o, "%s %.*s %.*s|", q->method, (int)q->target.len,
               q->target.ptr, (int)q->body.len, q->body.ptr);
      dn__reqparser_next(&rp);
    } else if (r == DN__PARSE_ERROR) {
      snprintf(out, cap, "error %d", rp.error_status);
      break;
    } else if (pos == end) {
      end = len;
    }
  }
  dn__reqparser_free(&rp);
}

static void test_parser_every_split(void **state) {
  (void)state;
  char want[256], got[256];
  parse_split(sizeof pipelined - 1, want, sizeof want);
  assert_string_equal(want, "GET /a?x=1 |PUT /b hello|POST /c abc|");
  for (size_t at = 0; at < sizeof pipelined - 1; at++) {
    parse_split(at, got, sizeof got);
    assert_string_equal(got, want);
  }
}

static int parse_with_alloc_failures(void *ud) {
  (void)ud;
  char got[256];
  parse_split(17, got, sizeof got);
  if (strncmp(got, "error 503", 9) == 0)
    return DN_ENOMEM;
  return strcmp(got, "GET /a?x=1 |PUT /b hello|POST /c abc|") == 0 ? 0 : -99;
}

static void test_parser_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(parse_with_alloc_failures, NULL);
}

static int server_with_alloc_failures(void *ud) {
  (void)ud;
  uv_loop_t loop;
  uv_loop_init(&loop);
  dn_engine *e = NULL;
  demo_site *d = NULL;
  dn_server *s = NULL;
  int rc = dn_engine_new(NULL, &e);
  if (rc == 0)
    rc = demo_site_new(e, &d);
  dn_server_options o;
  dn_server_options_init(&o);
  o.engine = e;
  o.listen = "127.0.0.1:0";
  o.control = "127.0.0.1:0";
  o.control_token = TOKEN;
  if (rc == 0)
    rc = dn_server_new(&loop, &o, &s, NULL);
  dn_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  demo_site_free(d);
  dn_engine_free(e);
  return rc;
}

static void test_server_new_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(server_with_alloc_failures, NULL);
}

static void test_server_new_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  dn_engine *e;
  assert_int_equal(dn_engine_new(NULL, &e), 0);
  dn_server_options o;
  dn_server_options_init(&o);
  dn_server *s = NULL;
  dn_error err;
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_EINVAL);
  o.engine = e;
  o.listen = "127.0.0.1";
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_ECONFIG);
  o.listen = "example.com:80";
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_ECONFIG);
  o.listen = "127.0.0.1:70000";
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_ECONFIG);
  o.listen = "127.0.0.1:0";
  o.control = "127.0.0.1:0";
  o.control_token = "short";
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_EINVAL);
  o.control_token = TOKEN;
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), 0);
  char addr[64];
  assert_int_equal(dn_server_address(s, 1, addr, sizeof addr), 0);
  /* The same port twice: bind fails and nothing is left open. */
  dn_server *s2 = NULL;
  o.control = addr;
  assert_int_equal(dn_server_new(&loop, &o, &s2, &err), DN_EIO);
  assert_null(s2);
  o.control = NULL;
  o.listen = "[::1]:0";
  dn_server *s6 = NULL;
  if (dn_server_new(&loop, &o, &s6, &err) == 0) { /* IPv6 may be off */
    assert_int_equal(dn_server_address(s6, 0, addr, sizeof addr), 0);
    assert_int_equal(strncmp(addr, "[::1]:", 6), 0);
    assert_int_equal(dn_server_address(s6, 1, addr, sizeof addr), DN_ENOTFOUND);
    dn_server_free(s6);
  }
  dn_server_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  dn_engine_free(e);
}

#define BOTH(fn)                                                               \
  cmocka_unit_test_setup_teardown(fn, fx_setup_inline, fx_teardown),           \
      cmocka_unit_test_setup_teardown(fn, fx_setup_offload, fx_teardown)

static void test_server_options_from_older_and_newer_programs(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  dn_engine *e;
  assert_int_equal(dn_engine_new(NULL, &e), 0);
  dn_server_options o;
  dn_server_options_init(&o);
  assert_int_equal(o.size, sizeof o);
  o.engine = e;
  o.listen = "127.0.0.1:0";
  o.control = "127.0.0.1:0";
  o.control_token = "short"; /* refused when read */
  dn_server *s = NULL;
  dn_error err;
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_EINVAL);
  /* A program that knew only engine and listen: what lies past its size
   * is not read, and the fields it lacks take their defaults (no control
   * listener). */
  o.size = offsetof(dn_server_options, control);
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), 0);
  char addr[64];
  assert_int_equal(dn_server_address(s, 0, addr, sizeof addr), 0);
  assert_int_equal(dn_server_address(s, 1, addr, sizeof addr), DN_ENOTFOUND);
  dn_server_free(s);
  s = NULL;
  /* Not initialised with dn_server_options_init. */
  o.size = 0;
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_server_options_init"));
  o.size = offsetof(dn_server_options, engine);
  assert_int_equal(dn_server_new(&loop, &o, &s, &err), DN_EINVAL);
  assert_null(s);
  /* A newer program: accepted while the fields this library does not know
   * are zero. */
  union {
    dn_server_options o;
    unsigned char b[sizeof(dn_server_options) + 16];
  } newer;
  dn_server_options_init_size(&newer.o, sizeof newer);
  newer.o.engine = e;
  newer.o.listen = "127.0.0.1:0";
  assert_int_equal(dn_server_new(&loop, &newer.o, &s, &err), 0);
  dn_server_free(s);
  s = NULL;
  newer.b[sizeof(dn_server_options)] = 1;
  assert_int_equal(dn_server_new(&loop, &newer.o, &s, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "newer libdonut"));
  assert_null(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  dn_engine_free(e);
}

/* A handler reads its query through the public API: the first value,
 * percent-decoded with '+' as a space; absent, too long or malformed
 * values are told apart and leave out untouched. */
static void test_request_param(void **state) {
  (void)state;
  static const char q[] = "city=new+york&x=%41%42&city=paris&bad=%4&e=";
  dn_server_request r;
  memset(&r, 0, sizeof r);
  r.query = (dn_slice){q, sizeof q - 1};
  char out[16];
  size_t len = 99;
  assert_int_equal(dn_server_request_param(&r, "city", out, sizeof out, &len),
                   0);
  assert_string_equal(out, "new york");
  assert_int_equal(len, 8);
  assert_int_equal(dn_server_request_param(&r, "x", out, sizeof out, NULL), 0);
  assert_string_equal(out, "AB");
  assert_int_equal(dn_server_request_param(&r, "e", out, sizeof out, &len), 0);
  assert_string_equal(out, "");
  assert_int_equal(len, 0);
  strcpy(out, "kept");
  assert_int_equal(dn_server_request_param(&r, "none", out, sizeof out, NULL),
                   DN_ENOTFOUND);
  assert_int_equal(dn_server_request_param(&r, "bad", out, sizeof out, NULL),
                   DN_EURI);
  assert_int_equal(dn_server_request_param(&r, "city", out, 8, NULL),
                   DN_ETOOBIG); /* "new york" and its NUL need 9 */
  assert_string_equal(out, "kept");
  assert_int_equal(dn_server_request_param(NULL, "city", out, 8, NULL),
                   DN_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_param),
      BOTH(test_news_etag_304_412),
      BOTH(test_purge_tag_renders_only_weather),
      BOTH(test_put_updates_and_purges),
      BOTH(test_donut_home),
      BOTH(test_not_found_and_bad_target),
      BOTH(test_keep_alive_and_pipelining),
      BOTH(test_http10_and_expect_continue),
      BOTH(test_limits_431_413_400),
      BOTH(test_trailers_framing_and_versions),
      cmocka_unit_test_setup_teardown(test_connection_limit,
                                      fx_setup_inline_patient, fx_teardown),
      cmocka_unit_test_setup_teardown(test_connection_limit,
                                      fx_setup_offload_patient, fx_teardown),
      BOTH(test_slow_client_times_out),
      cmocka_unit_test_setup_teardown(test_peer_that_never_reads_is_dropped,
                                      fx_setup_inline_idle, fx_teardown),
      cmocka_unit_test_setup_teardown(test_peer_that_never_reads_is_dropped,
                                      fx_setup_offload_idle, fx_teardown),
      cmocka_unit_test_setup_teardown(test_graceful_shutdown,
                                      fx_setup_inline_patient, fx_teardown),
      cmocka_unit_test_setup_teardown(test_graceful_shutdown,
                                      fx_setup_offload_patient, fx_teardown),
      BOTH(test_control_auth),
      BOTH(test_control_purge_inspect_metrics),
      cmocka_unit_test(test_parser_every_split),
      cmocka_unit_test(test_parser_out_of_memory),
      cmocka_unit_test(test_server_new_out_of_memory),
      cmocka_unit_test(test_server_new_errors),
      cmocka_unit_test(test_server_options_from_older_and_newer_programs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
