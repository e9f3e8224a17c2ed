/* test_varnish.c - end to end with a real Varnish: `donut serve --cdn
 * varnish` renders the demo site with xkey fields, varnishd (with the xkey
 * vmod from varnish-modules and examples/varnish/donut.vcl) caches it on
 * loopback, and a purger purges tag `weather` through Varnish.
 *
 * Checked: pages are cached (second request is a HIT); after the weather
 * text changes, Varnish still serves the old copies until the purge; the
 * purge of `weather` drops /weather?city=tokyo and every page that embeds
 * it, whose next request shows the new text, while an unrelated page stays
 * cached; a soft purge (xkey-softpurge) brings the new text too.
 *
 * varnishd runs as this test's own child process, never as a service. A
 * missing varnishd fails the test: install varnish and varnish-modules
 * (scripts/install-deps.sh).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "donut/purge.h"
#include "test_support.h"

typedef struct proc {
  pid_t pid;
  int port;
} proc;

static char g_dir[64];
static proc g_serve, g_varnish;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

static pid_t spawn(char *const argv[], const char *log) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE *f = fopen(log, "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

/* Waits for the port to accept connections (60 s: varnishd compiles its
 * VCL with the C compiler first). */
static int wait_ready(proc *p, const char *what, const char *log) {
  for (int i = 0; i < 600; i++) {
    int status;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      char cmd[256];
      snprintf(cmd, sizeof cmd, "cat %s >&2", log);
      if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
      fail_msg("%s exited at start (log above)", what);
    }
    if (port_open(p->port))
      return 0;
    sleep_ms(100);
  }
  fail_msg("%s did not start listening on port %d", what, p->port);
  return -1;
}

static void stop(proc *p) {
  if (p->pid > 0) {
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
      if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
        p->pid = 0;
        return;
      }
      sleep_ms(50);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
  }
}

static const char *find_varnishd(void) {
  static char path[512];
  const char *env = getenv("DONUT_VARNISHD_BIN");
  if (env && *env)
    return access(env, X_OK) == 0 ? env : NULL;
  const char *dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin",
                        "/usr/local/bin"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(path, sizeof path, "%s/varnishd", dirs[i]);
    if (access(path, X_OK) == 0)
      return path;
  }
  return NULL;
}

/* Writes examples/varnish/donut.vcl with the backend port replaced. */
static void write_vcl(const char *out, int backend_port) {
  char src[512], line[1024];
  snprintf(src, sizeof src, "%s/../../examples/varnish/donut.vcl",
           DN_TEST_DATA_DIR);
  FILE *in = fopen(src, "r"), *o = fopen(out, "w");
  if (!in || !o)
    fail_msg("cannot read %s or write %s", src, out);
  while (fgets(line, sizeof line, in)) {
    if (strstr(line, ".port = \"8080\";"))
      fprintf(o, "    .port = \"%d\";\n", backend_port);
    else
      fputs(line, o);
  }
  fclose(in);
  fclose(o);
}

static int setup(void **state) {
  (void)state;
  const char *varnishd = find_varnishd();
  if (!varnishd)
    fail_msg("varnishd is not installed: install the Debian packages "
             "varnish and varnish-modules (scripts/install-deps.sh) or set "
             "DONUT_VARNISHD_BIN");
  snprintf(g_dir, sizeof g_dir, "/tmp/dn-varnish-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  chmod(g_dir, 0755); /* the varnish child drops to its own user */
  char listen[64], log[128], vcl[128], work[128], addr[64];
  /* The backend: the real `donut serve`. */
  g_serve.port = free_port();
  snprintf(listen, sizeof listen, "127.0.0.1:%d", g_serve.port);
  snprintf(log, sizeof log, "%s/serve.log", g_dir);
  char *serve_argv[] = {(char *)DN_CLI_PATH, "serve",    "--cdn",
                        "varnish",           "--listen", listen,
                        "--control",         "none",     NULL};
  unsetenv("DONUT_CDN");
  g_serve.pid = spawn(serve_argv, log);
  wait_ready(&g_serve, "donut serve", log);
  /* Varnish in front of it. */
  snprintf(vcl, sizeof vcl, "%s/donut.vcl", g_dir);
  write_vcl(vcl, g_serve.port);
  snprintf(work, sizeof work, "%s/varnish", g_dir);
  snprintf(log, sizeof log, "%s/varnishd.log", g_dir);
  g_varnish.port = free_port();
  snprintf(addr, sizeof addr, "127.0.0.1:%d", g_varnish.port);
  char *v_argv[] = {
      (char *)varnishd, "-F", "-a", addr, "-f", vcl, "-n", work, "-s",
      "malloc,64m",     NULL};
  g_varnish.pid = spawn(v_argv, log);
  wait_ready(&g_varnish, "varnishd", log);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  stop(&g_varnish);
  stop(&g_serve);
  if (g_dir[0]) { /* varnishd leaves a tree of its own files behind */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", g_dir);
  }
  return 0;
}

/* ---- HTTP through Varnish ------------------------------------------------ */

typedef struct resp {
  long status;
  char body[8192];
  size_t len;
  char cache[16];
  char xkey[2048];
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  resp *r = ud;
  size_t len = size * n, room = sizeof r->body - 1 - r->len;
  size_t take = len < room ? len : room;
  memcpy(r->body + r->len, p, take);
  r->len += take;
  r->body[r->len] = '\0';
  return len;
}

static void header_value(const char *line, size_t len, const char *name,
                         char *out, size_t cap) {
  size_t nl = strlen(name);
  if (len > nl && strncasecmp(line, name, nl) == 0) {
    const char *v = line + nl;
    size_t vl = len - nl;
    while (vl && (*v == ' '))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
      vl--;
    snprintf(out, cap, "%.*s", (int)vl, v);
  }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  resp *r = ud;
  header_value(p, size * n, "X-Cache:", r->cache, sizeof r->cache);
  header_value(p, size * n, "xkey:", r->xkey, sizeof r->xkey);
  return size * n;
}

static resp request(int port, const char *method, const char *target,
                    const char *body) {
  resp r;
  memset(&r, 0, sizeof r);
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, target);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  if (strcmp(method, "GET") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  return r;
}

static resp via_varnish(const char *target) {
  return request(g_varnish.port, "GET", target, NULL);
}

/* Fetches through Varnish and checks where it came from. */
static resp expect(const char *target, const char *cache, const char *text) {
  resp r = via_varnish(target);
  if (r.status != 200)
    fail_msg("GET %s: status %ld", target, r.status);
  if (strcmp(r.cache, cache) != 0)
    fail_msg("GET %s: X-Cache %s, expected %s", target, r.cache, cache);
  if (text && !strstr(r.body, text))
    fail_msg("GET %s: body lacks '%s':\n%s", target, text, r.body);
  return r;
}

static void change_weather(const char *text) {
  resp r = request(g_serve.port, "PUT", "/weather?city=tokyo", text);
  if (r.status != 200)
    fail_msg("PUT /weather: %ld %s", r.status, r.body);
}

/* ---- the purger ------------------------------------------------------- */

typedef struct outcome {
  pthread_mutex_t mu;
  int reports, delivered;
  char error[256];
} outcome;

static void on_report(void *ud, const dn_purge_report *r) {
  outcome *o = ud;
  pthread_mutex_lock(&o->mu);
  o->reports++;
  o->delivered += r->delivered;
  snprintf(o->error, sizeof o->error, "%s", r->error);
  pthread_mutex_unlock(&o->mu);
}

/* Purges tag `weather` through Varnish and waits for the outcome. */
static void purge_weather(int soft) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", g_varnish.port);
  const char *urls[] = {url};
  dn_purge_varnish_options vo;
  dn_purge_varnish_options_init(&vo);
  vo.urls = urls;
  vo.nurls = 1;
  vo.soft = soft;
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_varnish(&vo, &b, NULL), 0);
  outcome o = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};
  dn_purger_options opts;
  dn_purger_options_init(&opts);
  opts.profile = DN_CDN_VARNISH;
  opts.report = on_report;
  opts.report_ud = &o;
  dn_purger *p;
  dn_error err = {0};
  assert_int_equal(dn_purger_new(b, &opts, &p, &err), 0);
  dn_slice tag = dn_slice_from_cstr("weather");
  assert_int_equal(dn_purger_purge_tags(p, &tag, 1, &err), 0);
  assert_int_equal(dn_purger_drain(p, 60000), 0);
  dn_purger_free(p);
  if (o.delivered != 1)
    fail_msg("purge not delivered: %s", o.error);
}

static void purge_by_tag_through_varnish(void **state) {
  (void)state;
  /* The backend tags its pages for xkey. */
  resp direct = request(g_serve.port, "GET", "/weather?city=tokyo", NULL);
  assert_int_equal(direct.status, 200);
  assert_non_null(strstr(direct.xkey, "weather"));
  /* Cached by Varnish: the second request is a hit. */
  const char *pages[] = {"/weather?city=tokyo", "/news?id=1", "/news?id=2",
                         "/comments?post=1"};
  for (size_t i = 0; i < 4; i++) {
    expect(pages[i], "MISS", NULL);
    expect(pages[i], "HIT", NULL);
  }
  resp unrelated = via_varnish("/comments?post=1");
  /* The weather changes: donut knows at once, Varnish does not yet. */
  change_weather("typhoon warning");
  resp stale = expect("/weather?city=tokyo", "HIT", NULL);
  assert_null(strstr(stale.body, "typhoon"));
  resp fresh = request(g_serve.port, "GET", "/weather?city=tokyo", NULL);
  assert_non_null(strstr(fresh.body, "typhoon warning"));
  /* Purge tag `weather`: the weather page and every page embedding it
   * are dropped; the next request shows the new text. */
  purge_weather(0);
  expect("/weather?city=tokyo", "MISS", "typhoon warning");
  expect("/news?id=1", "MISS", "typhoon warning");
  expect("/news?id=2", "MISS", "typhoon warning");
  expect("/weather?city=tokyo", "HIT", "typhoon warning");
  /* The unrelated page stayed cached, byte for byte. */
  resp still = expect("/comments?post=1", "HIT", NULL);
  assert_string_equal(still.body, unrelated.body);
}

/* A soft purge marks the objects stale: Varnish may answer once more from
 * the old copy while it refetches, then serves the new text. */
static void soft_purge_through_varnish(void **state) {
  (void)state;
  expect("/news?id=3", "MISS", NULL);
  expect("/news?id=3", "HIT", NULL);
  change_weather("clear skies");
  purge_weather(1);
  int fresh = 0;
  for (int i = 0; i < 100 && !fresh; i++) {
    resp r = via_varnish("/news?id=3");
    assert_int_equal(r.status, 200);
    fresh = strstr(r.body, "clear skies") != NULL;
    if (!fresh)
      sleep_ms(100);
  }
  assert_true(fresh);
  expect("/comments?post=1", "HIT", NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(purge_by_tag_through_varnish),
      cmocka_unit_test(soft_purge_through_varnish),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
