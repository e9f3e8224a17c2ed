/* servers.c - starting, stopping and pausing real memcached and redis
 * servers for tests (see servers.h).
 *
 * The port is found by binding 127.0.0.1:0 and reading back what the kernel
 * chose; the server is then started on it, and if another process took the
 * port in between the server exits and we try again with another. The
 * child asks the kernel to kill it when the parent dies, so a crashed test
 * leaves no server behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "servers.h"

#define READY_WAIT_MS 10000
#define STOP_WAIT_MS 5000

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static int find_binary(int kind, char *path, size_t size, char *error,
                       size_t esize) {
  const char *env =
      getenv(kind == DN_TEST_MEMCACHED ? "DONUT_MEMCACHED_BIN"
                                       : "DONUT_REDIS_SERVER_BIN");
  const char *name = kind == DN_TEST_MEMCACHED ? "memcached" : "redis-server";
  if (env && *env) {
    snprintf(path, size, "%s", env);
    if (access(path, X_OK) == 0)
      return 0;
    snprintf(error, esize, "%s is not an executable file (from %s)", env,
             kind == DN_TEST_MEMCACHED ? "DONUT_MEMCACHED_BIN"
                                       : "DONUT_REDIS_SERVER_BIN");
    return -1;
  }
  char dirs[1024];
  const char *p = getenv("PATH");
  snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/usr/local/bin",
           p ? p : "");
  for (char *d = dirs, *end; d && *d; d = end ? end + 1 : NULL) {
    end = strchr(d, ':');
    if (end)
      *end = '\0';
    int w = snprintf(path, size, "%s/%s", *d ? d : ".", name);
    if (w > 0 && (size_t)w < size && access(path, X_OK) == 0)
      return 0;
  }
  snprintf(error, esize,
           "%s is not installed: install the Debian package %s "
           "(scripts/install-deps.sh) or set %s",
           name, name,
           kind == DN_TEST_MEMCACHED ? "DONUT_MEMCACHED_BIN"
                                     : "DONUT_REDIS_SERVER_BIN");
  return -1;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int connect_port(int port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int dn_test_server_send(const dn_test_server *s, const void *cmd, size_t len,
                        char *reply, size_t reply_size) {
  int fd = connect_port(s->port, 2000);
  if (fd < 0)
    return -1;
  ssize_t got = -1;
  if (send(fd, cmd, len, MSG_NOSIGNAL) == (ssize_t)len)
    got = recv(fd, reply, reply_size - 1, 0);
  close(fd);
  if (got < 0)
    return -1;
  reply[got] = '\0';
  return (int)got;
}

static void build_argv(const dn_test_server *s, const char *bin,
                       const char **argv, char *port) {
  int n = 0;
  snprintf(port, 16, "%d", s->port);
  argv[n++] = bin;
  if (s->kind == DN_TEST_MEMCACHED) {
    const char *fixed[] = {"-l", "127.0.0.1", "-p", port, "-U", "0",
                           "-t", "2",         "-m", "64", "-c", "1024"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
      argv[n++] = fixed[i];
    if (geteuid() == 0) { /* memcached refuses root without -u */
      argv[n++] = "-u";
      argv[n++] = "root";
    }
  } else {
    const char *fixed[] = {"--port",      port, "--bind",       "127.0.0.1",
                           "--save",      "",   "--appendonly", "no",
                           "--daemonize", "no", "--dir",        s->dir};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
      argv[n++] = fixed[i];
  }
  for (int i = 0; s->extra[i]; i++)
    argv[n++] = s->extra[i];
  argv[n] = NULL;
}

static pid_t spawn(dn_test_server *s, const char *bin) {
  const char *argv[40];
  char port[16], log[128];
  build_argv(s, bin, argv, port);
  snprintf(log, sizeof log, "%s/server.log", s->dir);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  /* The child: only async-signal-safe calls until exec. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0)
    dup2(null, 0);
  if (chdir(s->dir) != 0)
    _exit(127);
  execv(bin, (char *const *)argv);
  _exit(127);
}

static void log_tail(const dn_test_server *s, char *out, size_t size) {
  char path[128];
  snprintf(path, sizeof path, "%s/server.log", s->dir);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  char line[256];
  while (fgets(line, sizeof line, f))
    snprintf(out, size, "%s", line);
  fclose(f);
  size_t n = strlen(out);
  if (n && out[n - 1] == '\n')
    out[n - 1] = '\0';
}

static int answers(const dn_test_server *s) {
  char reply[256];
  if (s->kind == DN_TEST_MEMCACHED)
    return dn_test_server_send(s, "version\r\n", 9, reply, sizeof reply) > 0 &&
           strncmp(reply, "VERSION", 7) == 0;
  /* Any reply, even -NOAUTH from a server with a password, means ready. */
  return dn_test_server_send(s, "PING\r\n", 6, reply, sizeof reply) > 0 &&
         (reply[0] == '+' || reply[0] == '-');
}

/* Waits until the server answers. Returns 0, or -1 when it exited (the
 * port may be taken) or never answered. */
static int wait_ready(dn_test_server *s) {
  for (int waited = 0; waited < READY_WAIT_MS; waited += 10) {
    int status;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      char tail[256];
      log_tail(s, tail, sizeof tail);
      snprintf(s->error, sizeof s->error, "server exited at start: %s", tail);
      s->pid = 0;
      return -1;
    }
    if (answers(s))
      return 0;
    sleep_ms(10);
  }
  snprintf(s->error, sizeof s->error, "server did not answer within %d ms",
           READY_WAIT_MS);
  dn_test_server_kill(s);
  return -1;
}

static void remove_dir(const char *dir);

/* The directory holds the start-up log only: once the server answers (or
 * has failed and its log was read), it is removed, so that a test that
 * stops half-way leaves nothing behind in /tmp. */
static int launch(dn_test_server *s) {
  char bin[512];
  if (find_binary(s->kind, bin, sizeof bin, s->error, sizeof s->error))
    return -1;
  if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
    snprintf(s->error, sizeof s->error, "mkdir %s: %s", s->dir,
             strerror(errno));
    return -1;
  }
  s->pid = spawn(s, bin);
  int rc = -1;
  if (s->pid < 0) {
    snprintf(s->error, sizeof s->error, "fork: %s", strerror(errno));
    s->pid = 0;
  } else {
    rc = wait_ready(s);
  }
  remove_dir(s->dir);
  return rc;
}

int dn_test_server_start(dn_test_server *s, int kind,
                         const char *const *extra) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  for (int i = 0; extra && extra[i] && i < DN_TEST_SERVER_MAX_ARGS; i++)
    s->extra[i] = extra[i];
  snprintf(s->dir, sizeof s->dir, "/tmp/donut-test-XXXXXX");
  if (!mkdtemp(s->dir)) {
    snprintf(s->error, sizeof s->error, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    s->port = free_port();
    if (s->port <= 0)
      continue;
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
    if (launch(s) == 0)
      return 0;
    if (strstr(s->error, "not installed") || strstr(s->error, "executable"))
      break;
  }
  char why[sizeof s->error];
  memcpy(why, s->error, sizeof why);
  dn_test_server_stop(s);
  memcpy(s->error, why, sizeof why);
  return -1;
}

void dn_test_server_kill(dn_test_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGCONT);
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  s->pid = 0;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    int w = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (w > 0 && (size_t)w < sizeof path)
      unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

void dn_test_server_stop(dn_test_server *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGCONT);
    kill(s->pid, SIGTERM);
    int waited = 0;
    while (waitpid(s->pid, NULL, WNOHANG) == 0 && waited < STOP_WAIT_MS) {
      sleep_ms(10);
      waited += 10;
    }
    if (waited >= STOP_WAIT_MS)
      dn_test_server_kill(s);
    s->pid = 0;
  }
  if (s->dir[0])
    remove_dir(s->dir);
  s->dir[0] = '\0';
}

int dn_test_server_restart(dn_test_server *s) {
  dn_test_server_kill(s);
  /* The same port: the stores under test must find the server again. A
   * listener in TIME_WAIT is no obstacle (both servers set SO_REUSEADDR);
   * retry briefly in case the port is still being released. */
  for (int attempt = 0; attempt < 20; attempt++) {
    if (launch(s) == 0)
      return 0;
    sleep_ms(100);
  }
  return -1;
}

/* The process state letter from /proc/<pid>/stat ('T' when stopped), or
 * 0 when it cannot be read. */
static char proc_state(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')'); /* the name may hold spaces */
  return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* kill() returns before the signal has taken effect: wait until it has,
 * so that a test's next request really meets a stopped (or running)
 * server. */
static void wait_state(pid_t pid, int stopped) {
  for (int waited = 0; waited < STOP_WAIT_MS; waited += 1) {
    char st = proc_state(pid);
    if (st == 0 || (st == 'T') == stopped)
      return;
    sleep_ms(1);
  }
}

void dn_test_server_pause(dn_test_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGSTOP);
  wait_state(s->pid, 1);
}

void dn_test_server_resume(dn_test_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGCONT);
  wait_state(s->pid, 0);
}
