/* recorder.c - starting recorder.py and using its control paths (see
 * recorder.h). The control requests are plain blocking libcurl calls. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recorder.h"

#ifndef DN_TEST_DATA_DIR
#define DN_TEST_DATA_DIR "tests/data"
#endif

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static int read_port(const char *path) {
  FILE *f = fopen(path, "r");
  int port = 0;
  if (!f)
    return 0;
  if (fscanf(f, "%d", &port) != 1)
    port = 0;
  fclose(f);
  return port;
}

int dn_test_recorder_start(dn_test_recorder *r) {
  char script[1024], portfile[128];
  memset(r, 0, sizeof *r);
  const char *src = getenv("DONUT_SOURCE_DIR");
  if (src && *src)
    snprintf(script, sizeof script, "%s/tests/support/recorder.py", src);
  else
    snprintf(script, sizeof script, "%s/../support/recorder.py",
             DN_TEST_DATA_DIR);
  snprintf(r->dir, sizeof r->dir, "/tmp/dn-recorder-XXXXXX");
  if (!mkdtemp(r->dir)) {
    snprintf(r->error, sizeof r->error, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  snprintf(portfile, sizeof portfile, "%s/port", r->dir);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execlp("python3", "python3", script, "--port-file", portfile, (char *)NULL);
    fprintf(stderr, "recorder: cannot run python3 %s: %s\n", script,
            strerror(errno));
    _exit(127);
  }
  r->pid = pid;
  for (int i = 0; i < 1000 && !r->port; i++) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      r->pid = 0;
      snprintf(r->error, sizeof r->error,
               "recorder exited at start (is python3 installed? "
               "scripts/install-deps.sh): %s",
               script);
      return -1;
    }
    r->port = read_port(portfile);
    if (!r->port)
      sleep_ms(10);
  }
  if (!r->port) {
    dn_test_recorder_stop(r);
    snprintf(r->error, sizeof r->error, "recorder did not start");
    return -1;
  }
  snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->port);
  return 0;
}

void dn_test_recorder_stop(dn_test_recorder *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
  }
  if (r->dir[0]) {
    char path[128];
    snprintf(path, sizeof path, "%s/port", r->dir);
    unlink(path);
    rmdir(r->dir);
    r->dir[0] = '\0';
  }
}

typedef struct sink {
  char *data;
  size_t len;
} sink;

static size_t collect(char *p, size_t size, size_t n, void *ud) {
  sink *s = ud;
  char *d = realloc(s->data, s->len + size * n + 1);
  if (!d)
    return 0;
  memcpy(d + s->len, p, size * n);
  s->len += size * n;
  d[s->len] = '\0';
  s->data = d;
  return size * n;
}

/* One control request; *out (may be NULL) gets the body. */
static int control(dn_test_recorder *r, const char *path, const char *body,
                   char **out) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", r->url, path);
  CURL *c = curl_easy_init();
  sink s = {NULL, 0};
  long status = 0;
  if (!c)
    return -1;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  if (body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || status >= 300) {
    snprintf(r->error, sizeof r->error, "control %s: %s (HTTP %ld)", path,
             curl_easy_strerror(rc), status);
    free(s.data);
    return -1;
  }
  if (out)
    *out = s.data;
  else
    free(s.data);
  return 0;
}

int dn_test_recorder_script(dn_test_recorder *r, const char *json) {
  return control(r, "/__recorder/script", json, NULL);
}

int dn_test_recorder_default(dn_test_recorder *r, const char *json) {
  return control(r, "/__recorder/default", json, NULL);
}

int dn_test_recorder_reset(dn_test_recorder *r) {
  return control(r, "/__recorder/reset", "", NULL);
}

int dn_test_recorder_requests(dn_test_recorder *r, size_t want, int timeout_ms,
                              char ***raw) {
  char path[128], *body = NULL;
  snprintf(path, sizeof path, "/__recorder/requests?wait=%zu&timeout_ms=%d",
           want, timeout_ms);
  if (control(r, path, NULL, &body))
    return -1;
  json_t *o = json_loads(body ? body : "", 0, NULL);
  free(body);
  json_t *a = json_object_get(o, "requests");
  size_t n = json_array_size(a);
  char **out = calloc(n + 1, sizeof *out);
  for (size_t i = 0; out && i < n; i++) {
    const char *s =
        json_string_value(json_object_get(json_array_get(a, i), "raw"));
    out[i] = strdup(s ? s : "");
  }
  json_decref(o);
  if (!out)
    return -1;
  *raw = out;
  return (int)n;
}

void dn_test_recorder_free(char **raw, int count) {
  for (int i = 0; raw && i < count; i++)
    free(raw[i]);
  free(raw);
}
