/* control.c - the control token, the control API client (libcurl) and
 * direct access to a shared store, for purge, inspect, deps and stats. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "donut/store_shared.h"

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int dn_cli_token_path(char *out, size_t cap) {
  const char *run = env("XDG_RUNTIME_DIR"), *home = env("HOME");
  int n;
  if (run)
    n = snprintf(out, cap, "%s/donut/control-token", run);
  else if (home)
    n = snprintf(out, cap, "%s/.donut/control-token", home);
  else
    return -1;
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
    s[--n] = '\0';
}

/* Reads a token file that only this user could have written: no symlink
 * (O_NOFOLLOW), a regular file owned by the effective user, with no group
 * or other permissions. Returns 0, or -1 with the reason in why. */
static int read_token_file(const char *path, char *out, size_t cap, char *why,
                           size_t why_cap) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, why_cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    close(fd);
    snprintf(why, why_cap,
             "%s is not a private file of this user (it must be mode 0600 "
             "and owned by you)",
             path);
    return -1;
  }
  /* One byte more than a token and its line end, to see a longer one. */
  char tok[DN_CLI_TOKEN_MAX + 3];
  ssize_t n = read(fd, tok, sizeof tok - 1);
  close(fd);
  if (n <= 0) {
    snprintf(why, why_cap, "%s is empty", path);
    return -1;
  }
  tok[n] = '\0';
  trim(tok);
  size_t len = strlen(tok);
  int visible = 1;
  for (size_t i = 0; i < len; i++)
    visible &= tok[i] > 0x20 && tok[i] < 0x7f;
  if (len < DN_SERVER_TOKEN_MIN || len > DN_CLI_TOKEN_MAX || !visible ||
      len + 1 > cap) {
    snprintf(why, why_cap,
             "%s holds no valid token (it must be %d to %d visible ASCII "
             "characters)",
             path, DN_SERVER_TOKEN_MIN, DN_CLI_TOKEN_MAX);
    OPENSSL_cleanse(tok, sizeof tok);
    return -1;
  }
  memcpy(out, tok, len + 1);
  OPENSSL_cleanse(tok, sizeof tok);
  return 0;
}

int dn_cli_token_load(char *out, size_t cap, char *why, size_t why_cap) {
  const char *t = env("DONUT_CONTROL_TOKEN");
  if (t) {
    if (strlen(t) > DN_CLI_TOKEN_MAX || strlen(t) + 1 > cap) {
      snprintf(why, why_cap,
               "DONUT_CONTROL_TOKEN is %zu characters long; a control token "
               "has at most %d",
               strlen(t), DN_CLI_TOKEN_MAX);
      return -1;
    }
    snprintf(out, cap, "%s", t);
    return 0;
  }
  char path[1024];
  if (dn_cli_token_path(path, sizeof path)) {
    snprintf(why, why_cap,
             "DONUT_CONTROL_TOKEN is not set and neither is "
             "XDG_RUNTIME_DIR or HOME");
    return -1;
  }
  char reason[1200];
  if (read_token_file(path, out, cap, reason, sizeof reason) != 0) {
    snprintf(why, why_cap,
             "no control token: DONUT_CONTROL_TOKEN is not set and %s "
             "(is `donut serve` running as this user?)",
             reason);
    return -1;
  }
  return 0;
}

/* mkdir -p for the token's directory, mode 0700; the directory that holds
 * the token must then be this user's and writable by nobody else, or
 * another user could replace the file. */
static int make_dirs(char *path) {
  char *last = NULL;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int rc = mkdir(path, 0700);
    *p = '/';
    if (rc != 0 && errno != EEXIST)
      return -1;
    last = p;
  }
  if (!last)
    return 0;
  *last = '\0';
  struct stat st;
  int ok = lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_uid == geteuid() && (st.st_mode & 022) == 0;
  *last = '/';
  return ok ? 0 : -1;
}

int dn_cli_token_create(char *out, size_t cap, char *path, size_t path_cap,
                        char *why, size_t why_cap) {
  unsigned char raw[32];
  if (cap < 2 * sizeof raw + 1 || RAND_bytes(raw, sizeof raw) != 1) {
    snprintf(why, why_cap, "cannot generate a random token");
    return -1;
  }
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
  if (dn_cli_token_path(path, path_cap) || make_dirs(path)) {
    snprintf(why, why_cap,
             "cannot use the directory of the token file: it must be yours "
             "and writable by nobody else (set XDG_RUNTIME_DIR or HOME)");
    return -1;
  }
  /* Another server of this user already wrote a token: share it, so the
   * command line can reach every one of them. */
  char reason[1200];
  if (read_token_file(path, out, cap, reason, sizeof reason) == 0)
    return 0;
  /* Replace anything else (a token too short, a file of another user): a
   * new file is created 0600 from the start, and the operator is told. */
  if (access(path, F_OK) == 0)
    fprintf(stderr,
            "donut serve: %s; replacing it with a new random token (clients "
            "that used the old one need the new one)\n",
            reason);
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(why, why_cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  size_t n = strlen(out);
  int ok = write(fd, out, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
  close(fd);
  if (!ok) {
    snprintf(why, why_cap, "%s: write failed", path);
    return -1;
  }
  return 0;
}

const char *dn_cli_server_url(const char *opt) {
  if (opt && *opt)
    return opt;
  const char *e = env("DONUT_SERVER");
  return e ? e : DN_CLI_DEFAULT_CONTROL;
}

int dn_cli_use_store(const char *server_opt) {
  if (server_opt && *server_opt)
    return 0;
  return env("MEMCACHED_ADDR") != NULL || env("REDIS_URL") != NULL;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  dn_cli_reply *r = ud;
  size_t add = size * n;
  char *nb = realloc(r->body, r->len + add + 1);
  if (!nb)
    return 0;
  memcpy(nb + r->len, p, add);
  r->body = nb;
  r->len += add;
  r->body[r->len] = '\0';
  return add;
}

static int unreachable(CURLcode c) {
  return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
         c == CURLE_OPERATION_TIMEDOUT || c == CURLE_GOT_NOTHING ||
         c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR;
}

int dn_cli_control_call(const dn_cli_command *cmd, const char *base,
                        const char *method, const char *path,
                        const char *json_body, dn_cli_reply *reply) {
  char token[DN_CLI_TOKEN_MAX + 1], why[1200], auth[DN_CLI_TOKEN_MAX + 32];
  char url[4096];
  memset(reply, 0, sizeof *reply);
  if (dn_cli_token_load(token, sizeof token, why, sizeof why))
    return dn_cli_fail(cmd, "%s", why);
  size_t bl = strlen(base);
  while (bl && base[bl - 1] == '/')
    bl--;
  if (snprintf(url, sizeof url, "%.*s%s", (int)bl, base, path) >=
      (int)sizeof url)
    return dn_cli_fail(cmd, "URL too long");
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  CURL *h = curl_easy_init();
  if (!h)
    return dn_cli_fail(cmd, "cannot initialise libcurl");
  struct curl_slist *hs = curl_slist_append(NULL, auth);
  if (json_body)
    hs = curl_slist_append(hs, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "donut/" DN_VERSION_STRING);
  if (json_body)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
  CURLcode c = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->status);
  curl_slist_free_all(hs);
  curl_easy_cleanup(h);
  if (c == CURLE_OK && !reply->body)
    reply->body = calloc(1, 1);
  if (c == CURLE_OK && reply->body)
    return DN_CLI_EXIT_OK;
  free(reply->body);
  reply->body = NULL;
  dn_cli_fail(cmd, "%s: %s", url, curl_easy_strerror(c));
  return unreachable(c) ? DN_CLI_EXIT_UNREACHABLE : DN_CLI_EXIT_FAIL;
}

int dn_cli_reply_error(const dn_cli_command *cmd, const dn_cli_reply *r) {
  json_t *o = json_loads(r->body ? r->body : "", 0, NULL);
  const char *msg = json_string_value(json_object_get(o, "error"));
  dn_cli_fail(cmd, "the server answered %ld: %s", r->status,
              msg ? msg : (r->body && *r->body ? r->body : "(no body)"));
  json_decref(o);
  return r->status == 401 ? DN_CLI_EXIT_DENIED : DN_CLI_EXIT_FAIL;
}

int dn_cli_query_escape(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                (ch >= '0' && ch <= '9') || strchr("-._~/:", ch);
    if (o + 4 > cap)
      return -1;
    if (plain) {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
  return 0;
}

int dn_cli_direct_open(const dn_cli_command *cmd, dn_cli_direct *d) {
  memset(d, 0, sizeof *d);
  dn_error err;
  memset(&err, 0, sizeof err);
  int rc = dn_store_from_env(NULL, &d->store, d->desc, sizeof d->desc, &err);
  if (rc)
    return dn_cli_fail(cmd, "store: %s",
                       err.text[0] ? err.text : dn_strerror(rc));
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.store = d->store;
  rc = dn_engine_new(&o, &d->engine);
  if (rc) {
    dn_store_free(d->store);
    d->store = NULL;
    return dn_cli_fail(cmd, "engine: %s", dn_strerror(rc));
  }
  return DN_CLI_EXIT_OK;
}

void dn_cli_direct_close(dn_cli_direct *d) {
  dn_engine_free(d->engine);
  dn_store_free(d->store);
  memset(d, 0, sizeof *d);
}

int dn_cli_resource_uri(const char *arg, char *out, size_t cap) {
  int n = arg[0] == '/' ? snprintf(out, cap, "%s%s", DN_CLI_DEFAULT_BASE, arg)
                        : snprintf(out, cap, "%s", arg);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}
