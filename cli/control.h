/* control.h - what the operator commands (purge, inspect, deps, stats)
 * share: finding the control token, calling a running server's control
 * API over HTTP with libcurl, and opening a shared store directly.
 *
 * A command talks to a running server when --server or DONUT_SERVER is
 * given, or when no shared store is configured; it opens the shared store
 * itself when MEMCACHED_ADDR or REDIS_URL is set and --server is not.
 */
#ifndef DN_CLI_CONTROL_H
#define DN_CLI_CONTROL_H

#include <stddef.h>

#include "cli.h"

#define DN_CLI_DEFAULT_CONTROL "http://127.0.0.1:8081"
#define DN_CLI_DEFAULT_BASE "app://self"
#define DN_CLI_TOKEN_MAX 512

/* Where `serve` writes a generated token and the other commands look for
 * it: $XDG_RUNTIME_DIR/donut/control-token, else
 * $HOME/.donut/control-token. Returns 0 or -1 (no HOME either). */
int dn_cli_token_path(char *out, size_t cap);

/* The control token: $DONUT_CONTROL_TOKEN, else the token file. Returns
 * 0, or -1 with the reason in why. */
int dn_cli_token_load(char *out, size_t cap, char *why, size_t why_cap);

/* Generates a random token (OpenSSL RAND_bytes, 32 bytes as hex) and
 * writes it to the token path with mode 0600 (directory 0700). Returns 0,
 * or -1 with the reason in why. */
int dn_cli_token_create(char *out, size_t cap, char *path, size_t path_cap,
                        char *why, size_t why_cap);

/* The control API base URL: `opt`, else $DONUT_SERVER, else the default. */
const char *dn_cli_server_url(const char *opt);

/* 1 when no --server was given and MEMCACHED_ADDR or REDIS_URL is set. */
int dn_cli_use_store(const char *server_opt);

/* A reply of the control API. `body` is malloc'ed and NUL-terminated. */
typedef struct dn_cli_reply {
  long status;
  char *body;
  size_t len;
} dn_cli_reply;

/* Calls METHOD base+path with the bearer token and an optional JSON body.
 * Returns DN_CLI_EXIT_OK with the reply filled (whatever its status),
 * DN_CLI_EXIT_UNREACHABLE (connection failed) or DN_CLI_EXIT_FAIL, with
 * the reason printed for `cmd`. */
int dn_cli_control_call(const dn_cli_command *cmd, const char *base,
                        const char *method, const char *path,
                        const char *json_body, dn_cli_reply *reply);

/* Maps a non-2xx reply to an exit status after printing the server's
 * error: 401 gives DN_CLI_EXIT_DENIED, others DN_CLI_EXIT_FAIL. */
int dn_cli_reply_error(const dn_cli_command *cmd, const dn_cli_reply *reply);

/* Percent-encodes s for a query value into out (NUL-terminated). Returns
 * 0 or -1 when it does not fit. */
int dn_cli_query_escape(const char *s, char *out, size_t cap);

/* A shared store and an engine over it, for direct commands. */
typedef struct dn_cli_direct {
  dn_store *store;
  dn_engine *engine;
  char desc[256];
} dn_cli_direct;

int dn_cli_direct_open(const dn_cli_command *cmd, dn_cli_direct *d);
void dn_cli_direct_close(dn_cli_direct *d);

/* "/news?id=1" becomes "app://self/news?id=1"; other strings are copied.
 * Returns 0 or -1 when it does not fit. */
int dn_cli_resource_uri(const char *arg, char *out, size_t cap);

#endif
