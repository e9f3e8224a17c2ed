/* upstream.c - one HTTP exchange with the upstream application (see
 * upstream.h).
 *
 * libcurl does the HTTP: the URL is parsed with its URL API, each exchange
 * is an easy handle, and a share object (CURL_LOCK_DATA_CONNECT and _DNS,
 * guarded by one mutex per data kind) keeps the connection pool common to
 * every thread. What libcurl lacks is a first-byte timeout; the progress
 * callback supplies it by aborting a transfer whose status line has not
 * arrived in time.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "upstream.h"

/* A body this many times over the limit is not worth keeping at all. */
#define HARD_BODY_FACTOR 2
/* Bodies of every exchange in flight together stay within this many
 * bytes: a few dozen concurrent requests for a large download must not
 * take the process's memory. An exchange that would go over it fails. */
#define INFLIGHT_BUDGET ((size_t)256 << 20)

struct dn__upstream {
  char *base;      /* "http://host:port" + prefix, no trailing '/' */
  char *authority; /* "host:port" */
  dn__upstream_limits lim;
  CURLSH *share;
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
  size_t inflight; /* body bytes held by exchanges (atomic) */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a,
                       void *ud) {
  (void)h;
  (void)a;
  dn__upstream *u = ud;
  pthread_mutex_lock(&u->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud) {
  (void)h;
  dn__upstream *u = ud;
  pthread_mutex_unlock(&u->locks[data]);
}

static char *url_part(CURLU *cu, CURLUPart part) {
  char *v = NULL;
  if (curl_url_get(cu, part, &v, 0) != CURLUE_OK)
    return NULL;
  char *copy = dn__strndup(v, strlen(v));
  curl_free(v);
  return copy;
}

/* Splits the URL into the base and the authority with libcurl's parser. */
static int parse_url(dn__upstream *u, const char *url, dn_error *err) {
  CURLU *cu = curl_url();
  if (!cu)
    return DN_ENOMEM;
  int rc = 0;
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
  CURLUcode uc = curl_url_set(cu, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    rc = dn__error_set(err, DN_ECONFIG, 0, "upstream %s: %s", url,
                       curl_url_strerror(uc));
    goto out;
  }
  scheme = url_part(cu, CURLUPART_SCHEME);
  host = url_part(cu, CURLUPART_HOST);
  path = url_part(cu, CURLUPART_PATH);
  char *user = NULL, *query = NULL, *frag = NULL;
  curl_url_get(cu, CURLUPART_USER, &user, 0);
  curl_url_get(cu, CURLUPART_QUERY, &query, 0);
  curl_url_get(cu, CURLUPART_FRAGMENT, &frag, 0);
  int extra = user || query || frag;
  curl_free(user);
  curl_free(query);
  curl_free(frag);
  if (!scheme || !host || !path) {
    rc = DN_ENOMEM;
    goto out;
  }
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
    rc = dn__error_set(err, DN_ECONFIG, 0,
                       "upstream %s: the scheme must be http or https", url);
    goto out;
  }
  if (extra) {
    rc = dn__error_set(err, DN_ECONFIG, 0,
                       "upstream %s: only a scheme, a host, a port and a path "
                       "prefix are allowed (no user, query or fragment)",
                       url);
    goto out;
  }
  if (curl_url_get(cu, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
      CURLUE_OK) {
    rc = DN_ENOMEM;
    goto out;
  }
  size_t pl = strlen(path);
  while (pl && path[pl - 1] == '/')
    path[--pl] = '\0';
  size_t need = strlen(scheme) + strlen(host) + strlen(port) + pl + 8;
  u->base = dn__malloc(need);
  u->authority = dn__malloc(strlen(host) + strlen(port) + 2);
  if (!u->base || !u->authority) {
    rc = DN_ENOMEM;
    goto out;
  }
  snprintf(u->base, need, "%s://%s:%s%s", scheme, host, port, path);
  snprintf(u->authority, strlen(host) + strlen(port) + 2, "%s:%s", host, port);
out:
  curl_free(port);
  dn__free(scheme);
  dn__free(host);
  dn__free(path);
  curl_url_cleanup(cu);
  return rc;
}

int dn__upstream_new(const char *url, const dn__upstream_limits *lim,
                     dn__upstream **out, dn_error *err) {
  if (!url || !lim || !out)
    return DN_EINVAL;
  dn__upstream *u = dn__calloc(1, sizeof *u);
  if (!u)
    return DN_ENOMEM;
  u->lim = *lim;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&u->locks[i], NULL);
  int rc = parse_url(u, url, err);
  if (rc == 0 && !(u->share = curl_share_init()))
    rc = DN_ENOMEM;
  if (rc == 0 &&
      (curl_share_setopt(u->share, CURLSHOPT_LOCKFUNC, share_lock) ||
       curl_share_setopt(u->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
       curl_share_setopt(u->share, CURLSHOPT_USERDATA, u) ||
       curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) ||
       curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)))
    rc = dn__error_set(err, DN_ECONFIG, 0,
                       "this libcurl cannot share connections between threads");
  if (rc) {
    dn__upstream_free(u);
    return rc;
  }
  *out = u;
  return 0;
}

void dn__upstream_free(dn__upstream *u) {
  if (!u)
    return;
  if (u->share)
    curl_share_cleanup(u->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&u->locks[i]);
  dn__free(u->base);
  dn__free(u->authority);
  dn__free(u);
}

const char *dn__upstream_authority(const dn__upstream *u) {
  return u->authority;
}

const char *dn__upstream_prefix(const dn__upstream *u) {
  const char *p = strstr(u->base, "://");
  p = p ? strchr(p + 3, '/') : NULL;
  return p ? p : "";
}

/* ---- one exchange ---------------------------------------------------------
 */
typedef struct xfer {
  dn__upstream *u;
  dn__upstream_result *res;
  uint64_t started_ms;
  int got_status; /* the final status line has arrived */
  int first_byte_timeout;
  int overflow; /* the body went past the hard limit */
  int bad_field;
  int over_budget; /* the process-wide budget of body bytes ran out */
} xfer;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Header lines one at a time: a status line starts a new response (an
 * interim 1xx, or nothing else since redirects are not followed), a field
 * line adds to it, and an empty line ends it. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n, l = len;
  while (l && (p[l - 1] == '\n' || p[l - 1] == '\r'))
    l--;
  if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    dn_http_headers_free(x->res->fields);
    x->res->fields = dn_http_headers_new();
    if (!x->res->fields)
      return 0;
    const char *sp = memchr(p, ' ', l);
    int st = 0;
    for (size_t i = sp ? (size_t)(sp - p) + 1 : l; i < l && st < 1000; i++) {
      if (p[i] < '0' || p[i] > '9')
        break;
      st = st * 10 + (p[i] - '0');
    }
    x->res->status = st;
    x->got_status = st >= 200;
    return len;
  }
  if (l == 0 || !x->res->fields)
    return len;
  if (p[0] == ' ' || p[0] == '\t') { /* obsolete line folding: RFC 9112 §5.2 */
    x->bad_field = 1;
    return 0;
  }
  const char *colon = memchr(p, ':', l);
  if (!colon) {
    x->bad_field = 1;
    return 0;
  }
  dn_slice name = {p, (size_t)(colon - p)};
  const char *v = colon + 1, *end = p + l;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  dn_slice value = {v, (size_t)(end - v)};
  if (dn_http_headers_add(x->res->fields, name, value, NULL) != 0) {
    x->bad_field = 1;
    return 0;
  }
  return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  dn__buf *b = &x->res->body;
  size_t max = x->u->lim.max_body_bytes;
  if (max && b->len + len > max) {
    x->res->too_big = 1;
    if (b->len + len > max * HARD_BODY_FACTOR) {
      x->overflow = 1;
      return 0;
    }
  }
  size_t was = __atomic_fetch_add(&x->u->inflight, len, __ATOMIC_RELAXED);
  if (was + len > INFLIGHT_BUDGET) {
    __atomic_fetch_sub(&x->u->inflight, len, __ATOMIC_RELAXED);
    x->over_budget = 1;
    return 0;
  }
  if (dn__buf_append(b, p, len) != 0) {
    __atomic_fetch_sub(&x->u->inflight, len, __ATOMIC_RELAXED);
    return 0;
  }
  x->res->accounted += len;
  return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  xfer *x = ud;
  uint32_t fb = x->u->lim.first_byte_timeout_ms;
  if (!x->got_status && fb && mono_ms() - x->started_ms > fb) {
    x->first_byte_timeout = 1;
    return 1;
  }
  return 0;
}

static int setup(CURL *h, xfer *x, const char *method, const char *url,
                 struct curl_slist *hl, dn_slice body) {
  dn__upstream *u = x->u;
  int bad =
      curl_easy_setopt(h, CURLOPT_URL, url) ||
      curl_easy_setopt(h, CURLOPT_SHARE, u->share) ||
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
      curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) ||
      curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl) ||
      curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) ||
      curl_easy_setopt(h, CURLOPT_HEADERDATA, x) ||
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
      curl_easy_setopt(h, CURLOPT_WRITEDATA, x) ||
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) ||
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, x) ||
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) ||
      /* The upstream is reached directly, whatever http_proxy says: the
       * visitors' cookies must not travel through a proxy the environment
       * happens to name. */
      curl_easy_setopt(h, CURLOPT_PROXY, "") ||
      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                       (long)u->lim.connect_timeout_ms) ||
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)u->lim.total_timeout_ms);
  /* RFC 9110 §9.2.2: a request that is not idempotent is never sent twice.
   * libcurl resends a request whose reused connection turned out closed;
   * a fresh connection that is not kept makes that impossible. */
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
      strcmp(method, "OPTIONS") != 0)
    bad = bad || curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L) ||
          curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  if (strcmp(method, "HEAD") == 0)
    bad = bad || curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0)
    bad = bad || curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (body.ptr)
    bad =
        bad || curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.ptr) ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
  return bad ? DN_ENOMEM : 0;
}

int dn__upstream_exchange(dn__upstream *u, const char *method,
                          const char *target, const char *const *fields,
                          dn_slice body, dn__upstream_result *res,
                          dn_error *err) {
  if (!u || !method || !target || target[0] != '/' || !res)
    return DN_EINVAL;
  memset(res, 0, sizeof *res);
  dn__buf_init(&res->body, 0);
  res->owner = u;
  xfer x = {u, res, mono_ms(), 0, 0, 0, 0, 0};
  dn__buf url;
  dn__buf_init(&url, 0);
  struct curl_slist *hl = NULL;
  CURL *h = NULL;
  int rc = dn__buf_append_cstr(&url, u->base);
  rc = rc ? rc : dn__buf_append_cstr(&url, target);
  /* libcurl adds these unless told not to; the upstream gets none of them
   * (a body without a type keeps having none). */
  int typed = 0;
  for (size_t i = 0; fields && fields[i]; i++)
    typed |= strncasecmp(fields[i], "content-type:", 13) == 0;
  static const char *const unset[] = {
      "Expect:", "Accept:", "Content-Type:", NULL};
  static const char *const unset_typed[] = {"Expect:", "Accept:", NULL};
  const char *const *un = typed || !body.ptr ? unset_typed : unset;
  for (size_t i = 0; rc == 0 && un[i]; i++) {
    struct curl_slist *t = curl_slist_append(hl, un[i]);
    rc = t ? 0 : DN_ENOMEM;
    hl = t ? t : hl;
  }
  for (size_t i = 0; rc == 0 && fields && fields[i]; i++) {
    struct curl_slist *t = curl_slist_append(hl, fields[i]);
    rc = t ? 0 : DN_ENOMEM;
    hl = t ? t : hl;
  }
  if (rc == 0 && !(h = curl_easy_init()))
    rc = DN_ENOMEM;
  if (rc == 0)
    rc = setup(h, &x, method, url.data, hl, body);
  if (rc == 0) {
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK && x.bad_field)
      cc = CURLE_WEIRD_SERVER_REPLY;
    if (x.first_byte_timeout || cc == CURLE_OPERATION_TIMEDOUT)
      rc = dn__error_set(err, DN_ETIMEDOUT, 0, "upstream %s %s: %s", method,
                         url.data,
                         x.first_byte_timeout ? "no response in time"
                                              : curl_easy_strerror(cc));
    else if (x.overflow)
      rc = dn__error_set(err, DN_EUPSTREAM, 0,
                         "upstream %s %s: the body is far over %zu bytes",
                         method, url.data, u->lim.max_body_bytes);
    else if (x.over_budget)
      rc = dn__error_set(err, DN_EUPSTREAM, 0,
                         "upstream %s %s: responses in flight already hold "
                         "%zu bytes",
                         method, url.data, (size_t)INFLIGHT_BUDGET);
    else if (x.bad_field)
      rc = dn__error_set(err, DN_EUPSTREAM, 0,
                         "upstream %s %s: a malformed header field", method,
                         url.data);
    else if (cc == CURLE_OUT_OF_MEMORY)
      rc = dn__error_set(err, DN_EUPSTREAM, 0,
                         "upstream %s %s: libcurl ran out of memory (an "
                         "oversized response header?)",
                         method, url.data);
    else if (cc != CURLE_OK)
      rc = dn__error_set(err, DN_EUPSTREAM, 0, "upstream %s %s: %s", method,
                         url.data, curl_easy_strerror(cc));
    else if (!res->fields || res->status < 100 || res->status > 599)
      rc = dn__error_set(err, DN_EUPSTREAM, 0,
                         "upstream %s %s: no valid status line", method,
                         url.data);
  }
  if (h)
    curl_easy_cleanup(h);
  curl_slist_free_all(hl);
  dn__buf_free(&url);
  if (rc)
    dn__upstream_result_free(res);
  return rc;
}

void dn__upstream_result_free(dn__upstream_result *res) {
  if (!res)
    return;
  if (res->owner && res->accounted)
    __atomic_fetch_sub(&res->owner->inflight, res->accounted, __ATOMIC_RELAXED);
  dn_http_headers_free(res->fields);
  dn__buf_free(&res->body);
  memset(res, 0, sizeof *res);
}
