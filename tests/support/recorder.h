/* recorder.h - a local HTTP endpoint that records requests, for tests.
 *
 * Starts tests/support/recorder.py (python3, standard library only) as a
 * child process on 127.0.0.1 and a free port, and talks to its control
 * paths: queue canned responses, wait for requests and fetch them exactly
 * as they arrived. It is the only stand-in the purge tests use: the
 * purgers speak real HTTP to it. The child dies with its parent. Does not
 * depend on cmocka.
 */
#ifndef DN_TEST_RECORDER_H
#define DN_TEST_RECORDER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct dn_test_recorder {
  pid_t pid;
  int port;
  char url[64]; /* "http://127.0.0.1:<port>" */
  char dir[64]; /* temporary directory (port file) */
  char error[512];
} dn_test_recorder;

/* Starts a recorder. Returns 0, or -1 with the reason in r->error. */
int dn_test_recorder_start(dn_test_recorder *r);
/* Kills the recorder and removes its directory. Safe when stopped. */
void dn_test_recorder_stop(dn_test_recorder *r);
/* Appends canned responses (a JSON array, see recorder.py). 0 or -1. */
int dn_test_recorder_script(dn_test_recorder *r, const char *json);
/* Sets the response used when the script is empty. 0 or -1. */
int dn_test_recorder_default(dn_test_recorder *r, const char *json);
/* Forgets the requests and the script. 0 or -1. */
int dn_test_recorder_reset(dn_test_recorder *r);
/* Waits up to timeout_ms for at least `want` requests, then returns every
 * request recorded so far: *raw is a malloc'ed array of malloc'ed strings
 * (request line, header lines and body, as received). Returns the count,
 * or -1 on error. */
int dn_test_recorder_requests(dn_test_recorder *r, size_t want, int timeout_ms,
                              char ***raw);
void dn_test_recorder_free(char **raw, int count);

#endif
