/* servers.h - real memcached and redis servers for tests and benchmarks.
 *
 * Each server is a child process bound to 127.0.0.1 on a free port chosen
 * at run time; its start-up log goes to a temporary directory that is
 * removed once the server answers (redis keeps nothing on disk: --save ""
 * --appendonly no). Starting waits until the server answers; the child
 * dies with its parent. Servers can be stopped
 * and restarted on the same port, or paused (SIGSTOP) to play a server that
 * accepts connections but never answers. Never touches a system-wide
 * server. Does not depend on cmocka, so benchmarks can use it too.
 */
#ifndef DN_TEST_SERVERS_H
#define DN_TEST_SERVERS_H

#include <sys/types.h>

#define DN_TEST_MEMCACHED 1
#define DN_TEST_REDIS 2
#define DN_TEST_SERVER_MAX_ARGS 8

typedef struct dn_test_server {
  int kind;
  pid_t pid; /* 0 when not running */
  int port;
  char dir[64];  /* start-up log directory; removed once it answers */
  char addr[32]; /* "127.0.0.1:<port>" */
  char url[64];  /* "redis://127.0.0.1:<port>" */
  const char *extra[DN_TEST_SERVER_MAX_ARGS + 1]; /* borrowed, NULL-ended */
  char error[512];                                /* why the last call failed */
} dn_test_server;

/* Starts a server of `kind` (DN_TEST_MEMCACHED or DN_TEST_REDIS) with
 * optional extra arguments (NULL-terminated list, borrowed until stop; may
 * be NULL). The binary is $DONUT_MEMCACHED_BIN / $DONUT_REDIS_SERVER_BIN,
 * else `memcached` / `redis-server` on PATH, /usr/bin, /usr/sbin or
 * /usr/local/bin. Returns 0, or -1 with the reason in s->error (including
 * "not installed" with the package to install). */
int dn_test_server_start(dn_test_server *s, int kind, const char *const *extra);
/* Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its
 * directory. Safe on a stopped server. */
void dn_test_server_stop(dn_test_server *s);
/* Kills the server and starts it again on the same port; the data is
 * gone. Returns 0 or -1 with the reason in s->error. */
int dn_test_server_restart(dn_test_server *s);
/* Kills the process but keeps the port and directory for a later
 * dn_test_server_restart. */
void dn_test_server_kill(dn_test_server *s);
/* SIGSTOP / SIGCONT: a paused server accepts TCP connections (the kernel
 * does) but answers nothing. */
void dn_test_server_pause(dn_test_server *s);
void dn_test_server_resume(dn_test_server *s);
/* Sends a raw command line (such as "flush_all\r\n" or "*1\r\n$8\r\n
 * FLUSHALL\r\n") and reads the first reply chunk into reply (NUL-ended).
 * Returns the reply length or -1. */
int dn_test_server_send(const dn_test_server *s, const void *cmd, size_t len,
                        char *reply, size_t reply_size);

#endif
