/* akamai.c - the Akamai backend: Fast Purge v3 by cache tag, signed
 * with EdgeGrid.
 *
 * Fast Purge takes
 *   POST /ccu/v3/invalidate/tag/{network}   (or /ccu/v3/delete/tag/...)
 *   {"objects":["tag1","tag2"]}
 * with a body of at most 50,000 bytes (a bigger one gets 413), so a batch
 * is split into as many requests as that allows. {network} is
 * "production" or "staging".
 *
 * EdgeGrid v1 (Akamai's "Authenticate with EdgeGrid" specification) signs
 * every request in an Authorization field:
 *   EG1-HMAC-SHA256 client_token=...;access_token=...;timestamp=T;nonce=N;
 *   signature=S
 * where T is the UTC time as yyyyMMddTHH:mm:ss+0000 and N a fresh random
 * string. The signing key is base64(HMAC-SHA256(client_secret, T)); S is
 * base64(HMAC-SHA256(signing key, data)) over the tab-joined data
 *   METHOD \t scheme \t host \t path?query \t headers \t content hash \t
 *   the Authorization value up to and including "nonce=N;"
 * where headers are the canonical forms of the fields the client chose to
 * sign (none here), and the content hash is base64(SHA-256(body)) of at
 * most max_body bytes of a POST body (empty for other methods or an empty
 * body). HMAC and SHA-256 are OpenSSL's.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "purge_internal.h"
#include "text.h"

#define MAX_REQUEST_BYTES 50000
#define DEFAULT_MAX_BODY 131072
#define AUTH_MAX 1024

/* ---- EdgeGrid signing ------------------------------------------------- */

void dn__edgegrid_timestamp(uint64_t now_ms, char out[24]) {
  time_t t = (time_t)(now_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  if (strftime(out, 24, "%Y%m%dT%H:%M:%S+0000", &tm) == 0)
    out[0] = '\0';
}

/* base64 of n bytes into out (at least 4 * ((n + 2) / 3) + 1 bytes). */
static void b64(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int hmac_b64(const char *key, size_t klen, const char *data, size_t dlen,
                    char out[48]) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen,
            mac, &mlen))
    return DN_EINVAL;
  b64(mac, mlen, out);
  dn__wipe(mac, sizeof mac);
  return 0;
}

int dn__edgegrid_sign(const char *client_token, const char *client_secret,
                      const char *access_token, size_t max_body,
                      const char *method, const char *scheme, const char *host,
                      const char *path, const char *body, size_t body_len,
                      const char *timestamp, const char *nonce, char *out,
                      size_t cap) {
  char key[48], sig[48], hash[48] = "";
  int n = snprintf(out, cap,
                   "EG1-HMAC-SHA256 client_token=%s;access_token=%s;"
                   "timestamp=%s;nonce=%s;",
                   client_token, access_token, timestamp, nonce);
  if (n < 0 || (size_t)n >= cap)
    return DN_ETOOBIG;
  size_t auth_len = (size_t)n;
  if (strcmp(method, "POST") == 0 && body_len > 0) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    size_t len = body_len < max_body ? body_len : max_body;
    SHA256((const unsigned char *)body, len, digest);
    b64(digest, sizeof digest, hash);
  }
  int rc = hmac_b64(client_secret, strlen(client_secret), timestamp,
                    strlen(timestamp), key);
  dn__buf data;
  dn__buf_init(&data, 0);
  const char *parts[] = {method, scheme, host, path, "", hash};
  for (size_t i = 0; rc == 0 && i < 6; i++)
    if (dn__buf_append_cstr(&data, parts[i]) ||
        dn__buf_append_byte(&data, '\t'))
      rc = DN_ENOMEM;
  if (rc == 0 && dn__buf_append(&data, out, auth_len))
    rc = DN_ENOMEM;
  if (rc == 0)
    rc = hmac_b64(key, strlen(key), data.data, data.len, sig);
  dn__wipe(key, sizeof key);
  dn__buf_free(&data);
  if (rc)
    return rc;
  n = snprintf(out + auth_len, cap - auth_len, "signature=%s", sig);
  return n < 0 || (size_t)n >= cap - auth_len ? DN_ETOOBIG : 0;
}

/* ---- the backend ----------------------------------------------------- */

typedef struct akamai {
  char *url;
  char *client_token, *client_secret, *access_token;
  size_t max_body, max_request;
} akamai;

static void destroy(void *self) {
  akamai *a = self;
  if (!a)
    return;
  dn__free(a->url);
  dn__wipe_free(a->client_token);
  dn__wipe_free(a->client_secret);
  dn__wipe_free(a->access_token);
  dn__free(a);
}

static size_t targets(void *self) {
  (void)self;
  return 1;
}

/* The scheme, host[:port] and path?query of the URL as sent. */
static int url_parts(const char *url, char **scheme, char **host, char **path,
                     char **query, char **port) {
  CURLU *u = curl_url();
  int rc = u ? 0 : DN_ENOMEM;
  if (rc == 0 && (curl_url_set(u, CURLUPART_URL, url, 0) ||
                  curl_url_get(u, CURLUPART_SCHEME, scheme, 0) ||
                  curl_url_get(u, CURLUPART_HOST, host, 0) ||
                  curl_url_get(u, CURLUPART_PATH, path, 0)))
    rc = DN_EINVAL;
  if (rc == 0 && curl_url_get(u, CURLUPART_QUERY, query, 0) != CURLUE_OK)
    *query = NULL;
  if (rc == 0 && curl_url_get(u, CURLUPART_PORT, port, 0) != CURLUE_OK)
    *port = NULL;
  curl_url_cleanup(u);
  return rc;
}

static void nonce_of(const unsigned char r[16], char out[37]) {
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    o += dn__hex_encode(out + o, r + i, 1, 0);
  }
  out[o] = '\0';
}

static int sign(akamai *a, const dn_purge_batch *b, dn_purge_req *req,
                char *auth) {
  char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *port = NULL;
  char ts[24], nonce[37], hostport[300], pq[2048];
  int rc = url_parts(a->url, &scheme, &host, &path, &query, &port);
  if (rc == 0) {
    for (char *c = host; *c; c++)
      *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    snprintf(hostport, sizeof hostport, "%s%s%s", host, port ? ":" : "",
             port ? port : "");
    snprintf(pq, sizeof pq, "%s%s%s", path, query ? "?" : "",
             query ? query : "");
    dn__edgegrid_timestamp(b->now_ms, ts);
    nonce_of(b->random, nonce);
    rc = dn__edgegrid_sign(a->client_token, a->client_secret, a->access_token,
                           a->max_body, "POST", scheme, hostport, pq, req->body,
                           req->body_len, ts, nonce, auth, AUTH_MAX);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(path);
  curl_free(query);
  curl_free(port);
  return rc;
}

static int build(void *self, const dn_purge_batch *b, dn_purge_req *req,
                 size_t *used) {
  akamai *a = self;
  char auth[AUTH_MAX];
  int rc = dn__purge_json_keys(req, "objects", b->keys, b->nkeys, 0,
                               a->max_request, used);
  if (rc == 0)
    rc = dn_purge_req_set_method(req, "POST");
  if (rc == 0)
    rc = dn_purge_req_set_url(req, a->url);
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Accept", "application/json");
  if (rc == 0)
    rc = dn_purge_req_add_header(req, "Content-Type", "application/json");
  if (rc == 0)
    rc = sign(a, b, req, auth);
  if (rc == 0)
    rc = dn_purge_req_add_secret_header(req, "Authorization", auth);
  if (rc == 0)
    rc = dn_purge_req_add_secret(req, a->client_token);
  if (rc == 0)
    rc = dn_purge_req_add_secret(req, a->access_token);
  if (rc == 0)
    rc = dn_purge_req_add_secret(req, a->client_secret);
  dn__wipe(auth, sizeof auth);
  return rc;
}

static void destinations(void *self, char *out, size_t cap) {
  if (cap)
    out[0] = '\0';
  dn__purge_url_destination(((akamai *)self)->url, out, cap);
}

static const dn_purger_ops akamai_ops = {
    DN_PURGER_OPS_VERSION, "akamai", 0, targets, build, destroy, destinations};

static int credential_ok(const char *s) {
  if (!s || !*s || strlen(s) > 256)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == ';')
      return 0;
  return 1;
}

static int check(const dn_purge_akamai_options *o, const char **network,
                 dn_error *err) {
  if (!credential_ok(o->host) || strchr(o->host, '/'))
    return dn__error_set(err, DN_ECONFIG, 0, "akamai: missing or bad host");
  if (!credential_ok(o->client_token) || !credential_ok(o->client_secret) ||
      !credential_ok(o->access_token))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "akamai: client_token, client_secret and "
                         "access_token must all be set (.edgerc)");
  *network = o->network ? o->network : "production";
  if (strcmp(*network, "production") != 0 && strcmp(*network, "staging"))
    return dn__error_set(err, DN_ECONFIG, 0,
                         "akamai: network must be production or staging");
  if (o->max_request_bytes && o->max_request_bytes > MAX_REQUEST_BYTES)
    return dn__error_set(err, DN_ECONFIG, 0,
                         "akamai: Fast Purge bodies are at most %d bytes",
                         MAX_REQUEST_BYTES);
  return 0;
}

void dn_purge_akamai_options_init_size(dn_purge_akamai_options *o,
                                       size_t size) {
  dn_purge_akamai_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

int dn_purge_backend_akamai(const dn_purge_akamai_options *opts,
                            dn_purge_backend *out, dn_error *err) {
  const char *network = "production";
  if (!opts || !out)
    return dn__error_set(err, DN_EINVAL, 0, "no options");
  /* Options from an older header end before the fields it did not have;
   * max_request_bytes is the last field this library knows. */
  dn_purge_akamai_options oo;
  dn_purge_akamai_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_purge_akamai_options, host, max_request_bytes,
                             &oo, opts, err);
  if (orc)
    return orc;
  const dn_purge_akamai_options *o = &oo;
  int rc = check(o, &network, err);
  char base[320];
  snprintf(base, sizeof base, "https://%s", o->host ? o->host : "");
  const char *api = o->api_url ? o->api_url : base;
  if (rc == 0)
    rc = dn__purge_check_url("akamai api_url", api, err);
  if (rc)
    return rc;
  char path[64];
  snprintf(path, sizeof path, "/ccu/v3/%s/tag/%s",
           o->delete_objects ? "delete" : "invalidate", network);
  akamai *a = dn__calloc(1, sizeof *a);
  if (!a || !(a->url = dn__purge_join(api, path)) ||
      dn__purge_strdup(o->client_token, &a->client_token) ||
      dn__purge_strdup(o->client_secret, &a->client_secret) ||
      dn__purge_strdup(o->access_token, &a->access_token)) {
    destroy(a);
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  }
  a->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
  a->max_request =
      o->max_request_bytes ? o->max_request_bytes : MAX_REQUEST_BYTES;
  out->ops = &akamai_ops;
  out->self = a;
  return 0;
}
