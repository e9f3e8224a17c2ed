/* server_listen.c - creating, binding, shutting down and freeing a server.
 *
 * Listening sockets are created, bound and put to listen with plain POSIX
 * calls first and handed to libuv only once both succeeded, so a server
 * that cannot start leaves nothing open behind. Shutdown closes the
 * listeners and the idle connections and lets requests in progress finish;
 * the memory goes when the last libuv handle has closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "options.h"
#include "server_internal.h"

void dn_server_options_init_size(dn_server_options *o, size_t size) {
  dn_server_options d;
  memset(&d, 0, sizeof d);
  d.listen = "127.0.0.1:8080";
  d.resource_base = "app://self";
  d.cdn = DN_CDN_NONE;
  d.max_age = 0;
  d.max_header_bytes = DN_SERVER_MAX_HEADER_BYTES;
  d.max_body_bytes = DN_SERVER_MAX_BODY_BYTES;
  d.max_connections = DN_SERVER_MAX_CONNECTIONS;
  d.request_timeout_ms = DN_SERVER_REQUEST_TIMEOUT_MS;
  d.idle_timeout_ms = DN_SERVER_IDLE_TIMEOUT_MS;
  d.max_buffer_bytes = DN_SERVER_MAX_BUFFER_BYTES;
  dn__options_init(o, size, &d, sizeof d);
}

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (numeric hosts and
 * "localhost" only: a server binds, it does not resolve). */
static int parse_addr(const char *what, const char *s,
                      struct sockaddr_storage *ss, dn_error *err) {
  const char *colon = strrchr(s, ':');
  char host[64];
  if (!colon || colon[1] == '\0')
    return dn__error_set(err, DN_ECONFIG, 0, "%s '%s': expected HOST:PORT",
                         what, s);
  size_t hl = (size_t)(colon - s);
  if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
    s++;
    hl -= 2;
  }
  if (hl >= sizeof host)
    return dn__error_set(err, DN_ECONFIG, 0, "%s: host too long", what);
  memcpy(host, s, hl);
  host[hl] = '\0';
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (*end || errno || port < 0 || port > 65535)
    return dn__error_set(err, DN_ECONFIG, (size_t)(colon + 1 - s),
                         "%s: bad port '%s'", what, colon + 1);
  if (hl == 0)
    snprintf(host, sizeof host, "0.0.0.0");
  else if (strcmp(host, "localhost") == 0)
    snprintf(host, sizeof host, "127.0.0.1");
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return dn__error_set(err, DN_ECONFIG, 0,
                       "%s: '%s' is not a numeric IPv4 or IPv6 address", what,
                       host);
}

static void addr_name(int fd, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[64] = "?";
  int port = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static int bind_fd(const char *what, const char *addr, int reuse_port,
                   int *fd_out, dn_error *err) {
  struct sockaddr_storage ss;
  int rc = parse_addr(what, addr, &ss, err);
  if (rc)
    return rc;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return dn__error_set(err, DN_EIO, 0, "%s %s: socket: %s", what, addr,
                         strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return dn__error_set(err, DN_EIO, 0, "%s %s: SO_REUSEPORT: %s", what, addr,
                         strerror(e));
  }
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                         : sizeof(struct sockaddr_in6);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 511) != 0) {
    int e = errno;
    close(fd);
    return dn__error_set(err, DN_EIO, 0, "%s %s: %s", what, addr, strerror(e));
  }
  *fd_out = fd;
  return 0;
}

static int token_ok(const char *t) {
  size_t n = strlen(t);
  if (n < DN_SERVER_TOKEN_MIN || n > 512)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (t[i] <= 0x20 || t[i] >= 0x7f)
      return 0;
  return 1;
}

static int copy_options(dn_server *srv, const dn_server_options *o,
                        dn_error *err) {
  dn_server_options d;
  dn_server_options_init(&d);
  srv->o = *o;
  const char *listen = o->listen ? o->listen : d.listen;
  const char *base = o->resource_base ? o->resource_base : d.resource_base;
  srv->listen_addr = dn__strndup(listen, strlen(listen));
  srv->base = dn__strndup(base, strlen(base));
  srv->base_len = strlen(base);
  if (o->control) {
    srv->control_addr = dn__strndup(o->control, strlen(o->control));
    srv->token = dn__strndup(o->control_token, strlen(o->control_token));
    srv->token_len = strlen(o->control_token);
    if (!srv->control_addr || !srv->token)
      return DN_ENOMEM;
  }
  if (!srv->listen_addr || !srv->base)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
#define DEF(f)                                                                 \
  do {                                                                         \
    if (!srv->o.f)                                                             \
      srv->o.f = d.f;                                                          \
  } while (0)
  DEF(max_header_bytes);
  DEF(max_body_bytes);
  DEF(max_connections);
  DEF(request_timeout_ms);
  DEF(idle_timeout_ms);
  DEF(max_buffer_bytes);
#undef DEF
  return 0;
}

/* 1 when fd is bound to a loopback address (127.0.0.0/8, ::1 or
 * ::ffff:127.0.0.0/104). */
static int bound_to_loopback(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(a) ||
         (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static int start_listener(dn_server *srv, dn__listener *ls, int fd,
                          int control) {
  /* RFC 6750 §5.3: a bearer token must only travel over TLS; this listener
   * speaks plain HTTP, so anyone on the path can read it. */
  if (control && !bound_to_loopback(fd))
    dn__server_log(srv, DN_LOG_WARN,
                   "the control API listens on %s, which is not a loopback "
                   "address: its bearer token travels in clear text; bind it "
                   "to 127.0.0.1 or put a TLS proxy in front",
                   srv->control_addr);
  ls->srv = srv;
  ls->control = control;
  addr_name(fd, ls->addr, sizeof ls->addr);
  uv_tcp_init(srv->loop, &ls->tcp);
  ls->tcp.data = ls;
  ls->active = 1;
  int rc = uv_tcp_open(&ls->tcp, fd);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&ls->tcp, 511, dn__server_on_connection);
  return rc;
}

static void on_listener_closed(uv_handle_t *h) {
  dn__listener *ls = h->data;
  ls->active = 0;
  dn__server_check_done(ls->srv);
}

static void close_listener(dn__listener *ls) {
  if (ls->active && !uv_is_closing((uv_handle_t *)&ls->tcp))
    uv_close((uv_handle_t *)&ls->tcp, on_listener_closed);
}

int dn_server_new(struct uv_loop_s *loop, const dn_server_options *opts,
                  dn_server **out, dn_error *err) {
  if (!loop || !opts || !out)
    return dn__error_set(err, DN_EINVAL, 0,
                         "loop, options and engine are "
                         "required");
  /* Options from an older header end before the fields it did not have;
   * max_buffer_bytes is the last field this library knows. */
  dn_server_options oo;
  dn_server_options_init(&oo);
  int orc = DN__OPTIONS_READ(dn_server_options, engine, max_buffer_bytes, &oo,
                             opts, err);
  if (orc)
    return orc;
  const dn_server_options *o = &oo;
  if (!o->engine)
    return dn__error_set(err, DN_EINVAL, 0,
                         "loop, options and engine are "
                         "required");
  if (o->control && (!o->control_token || !token_ok(o->control_token)))
    return dn__error_set(err, DN_EINVAL, 0,
                         "the control token must be %d to 512 visible "
                         "ASCII characters",
                         DN_SERVER_TOKEN_MIN);
  dn_server *srv = dn__calloc(1, sizeof *srv);
  if (!srv)
    return dn__error_set(err, DN_ENOMEM, 0, "out of memory");
  srv->loop = loop;
  int fd = -1, cfd = -1;
  int rc = copy_options(srv, o, err);
  if (rc == 0 && o->share_counters_with) {
    srv->c = o->share_counters_with->c;
    __atomic_add_fetch(&srv->c->refs, 1, __ATOMIC_ACQ_REL);
  } else if (rc == 0 && (srv->c = dn__calloc(1, sizeof *srv->c)) != NULL) {
    srv->c->refs = 1;
  } else if (rc == 0) {
    rc = DN_ENOMEM;
  }
  if (rc == DN_ENOMEM)
    dn__error_set(err, rc, 0, "out of memory");
  if (rc == 0)
    rc = bind_fd("listen", srv->listen_addr, o->reuse_port, &fd, err);
  if (rc == 0 && srv->control_addr)
    rc = bind_fd("control", srv->control_addr, 0, &cfd, err);
  if (rc) {
    if (fd >= 0)
      close(fd);
    dn__server_free_memory(srv);
    return rc;
  }
  int urc = start_listener(srv, &srv->site, fd, 0);
  if (urc == 0 && cfd >= 0)
    urc = start_listener(srv, &srv->ctl, cfd, 1);
  if (urc) {
    /* Practically unreachable (the sockets are already listening); the
     * handles close on the loop and take the memory with them. */
    if (!srv->ctl.active && cfd >= 0)
      close(cfd);
    srv->shutting_down = srv->done_called = srv->free_pending = 1;
    close_listener(&srv->site);
    close_listener(&srv->ctl);
    return dn__error_set(err, DN_EIO, 0, "listen: %s", uv_strerror(urc));
  }
  *out = srv;
  return 0;
}

int dn_server_address(const dn_server *srv, int control, char *out,
                      size_t cap) {
  const dn__listener *ls = control ? &srv->ctl : &srv->site;
  if (!ls->srv)
    return DN_ENOTFOUND;
  size_t n = strlen(ls->addr);
  if (n >= cap)
    return DN_ETOOBIG;
  memcpy(out, ls->addr, n + 1);
  return 0;
}

static void shutdown_begin(dn_server *srv, int hard) {
  srv->shutting_down = 1;
  close_listener(&srv->site);
  close_listener(&srv->ctl);
  dn__conn *c = srv->conns, *next;
  for (; c; c = next) {
    next = c->next;
    if (hard || dn__conn_idle(c) || c->draining)
      dn__conn_close(c);
  }
}

void dn_server_shutdown(dn_server *srv, void (*done)(void *ud), void *ud) {
  if (!srv || srv->shutting_down)
    return;
  srv->done = done;
  srv->done_ud = ud;
  shutdown_begin(srv, 0);
  dn__server_check_done(srv);
}

void dn_server_free(dn_server *srv) {
  if (!srv)
    return;
  if (srv->free_pending)
    return;
  if (srv->done_called && !srv->alive && !srv->jobs) {
    dn__server_free_memory(srv);
    return;
  }
  srv->free_pending = 1;
  srv->done = NULL;
  shutdown_begin(srv, 1);
  dn__server_check_done(srv);
}

void dn_server_stats_get(const dn_server *srv, dn_server_stats *out) {
  dn__counters_read(srv, out, NULL);
}
