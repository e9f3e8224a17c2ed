/* server_parse.c - request parsing over libhttp-parser (see server_parse.h).
 *
 * libhttp-parser calls back with pieces of the request line, fields and
 * body as they arrive, possibly split across reads. The callbacks copy
 * them into two bounded buffers: `head` (target, names, values; limited to
 * max_header bytes) and `body` (max_body bytes). Offsets, not pointers,
 * are kept while parsing because the buffers may move; slices are made
 * once the request is whole. The parser is paused at the end of every
 * message so that pipelined requests are handed out one by one.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "server_parse.h"

static dn__reqparser *rp_of(http_parser *p) { return p->data; }

static int fail(dn__reqparser *rp, int status, const char *text) {
  if (!rp->error_status) {
    rp->error_status = status;
    rp->error_text = text;
  }
  return -1;
}

static int on_message_begin(http_parser *p) {
  rp_of(p)->started = 1;
  return 0;
}

static int head_append(dn__reqparser *rp, const char *at, size_t len,
                       int status, const char *text) {
  int rc = dn__buf_append(&rp->head, at, len);
  if (rc == DN_ETOOBIG)
    return fail(rp, status, text);
  if (rc)
    return fail(rp, 503, "out of memory");
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  dn__reqparser *rp = rp_of(p);
  rp->started = 1;
  if (head_append(rp, at, len, 414, "request-target too long"))
    return -1;
  rp->target_len += len;
  return 0;
}

/* RFC 9110 §5.6.2: a field name is a token. libhttp-parser, built in its
 * lenient mode, lets a space through before the colon; RFC 9112 §5.1 says
 * such a request MUST be answered 400, because a proxy in front may frame
 * it differently ("Content-Length : 5" is a classic desync). */
static int is_tchar(unsigned char c) {
  return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  dn__reqparser *rp = rp_of(p);
  /* RFC 9110 §6.5.1: trailer fields are not request header fields; they
   * are discarded (libhttp-parser reports them through the same
   * callbacks, after the head is complete). */
  if (rp->headers_done)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)at[i]))
      return fail(rp, 400, "invalid byte in a header field name");
  if (rp->in_value || rp->nfields == 0) {
    if (rp->nfields == DN__REQ_MAX_FIELDS)
      return fail(rp, 431, "too many header fields");
    dn__field_off *f = &rp->off[rp->nfields++];
    memset(f, 0, sizeof *f);
    f->name = rp->head.len;
    f->value = rp->head.len;
    rp->in_value = 0;
  }
  if (head_append(rp, at, len, 431, "header fields too large"))
    return -1;
  rp->off[rp->nfields - 1].name_len += len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  dn__reqparser *rp = rp_of(p);
  if (rp->headers_done)
    return 0; /* a trailer field: discarded */
  if (rp->nfields == 0)
    return fail(rp, 400, "header value without a name");
  dn__field_off *f = &rp->off[rp->nfields - 1];
  if (!rp->in_value) {
    f->value = rp->head.len;
    rp->in_value = 1;
  }
  if (head_append(rp, at, len, 431, "header fields too large"))
    return -1;
  f->value_len += len;
  return 0;
}

/* RFC 9112 §6.1: chunked is applied once, and last. A request that says
 * otherwise (for example two Transfer-Encoding: chunked fields, which
 * libhttp-parser reads as one) could be framed differently by a proxy in
 * front, so it is refused. Returns 0 or -1 (fail called). */
static int check_transfer_encoding(dn__reqparser *rp, const dn__req *q) {
  int chunked = 0, any = 0, last_chunked = 0;
  for (size_t i = 0; i < q->nfields; i++) {
    dn_slice n = q->fields[i].name, v = q->fields[i].value;
    if (n.len != 17 || strncasecmp(n.ptr, "Transfer-Encoding", 17) != 0)
      continue;
    size_t a = 0;
    while (a <= v.len) {
      size_t b = a;
      while (b < v.len && v.ptr[b] != ',')
        b++;
      size_t s = a, e = b;
      while (s < e && (v.ptr[s] == ' ' || v.ptr[s] == '\t'))
        s++;
      while (e > s && (v.ptr[e - 1] == ' ' || v.ptr[e - 1] == '\t'))
        e--;
      if (e > s) {
        any = 1;
        last_chunked = e - s == 7 && strncasecmp(v.ptr + s, "chunked", 7) == 0;
        chunked += last_chunked;
      }
      a = b + 1;
    }
  }
  if (chunked > 1)
    return fail(rp, 400, "chunked applied more than once");
  if (any && !last_chunked)
    return fail(rp, 400, "a transfer coding after chunked, or no chunked");
  return 0;
}

/* Makes the request's slices from the offsets (the buffers are final). */
static void make_slices(dn__reqparser *rp) {
  dn__req *q = &rp->req;
  const char *h = rp->head.data ? rp->head.data : "";
  q->target = (dn_slice){h, rp->target_len};
  for (size_t i = 0; i < rp->nfields; i++) {
    q->fields[i].name = (dn_slice){h + rp->off[i].name, rp->off[i].name_len};
    q->fields[i].value = (dn_slice){h + rp->off[i].value, rp->off[i].value_len};
  }
  q->nfields = rp->nfields;
  q->body = (dn_slice){rp->body.data ? rp->body.data : "", rp->body.len};
}

static int is_continue(dn_slice v) {
  return v.len == 12 && strncasecmp(v.ptr, "100-continue", 12) == 0;
}

static int on_headers_complete(http_parser *p) {
  dn__reqparser *rp = rp_of(p);
  dn__req *q = &rp->req;
  rp->headers_done = 1;
  if (p->method == HTTP_CONNECT)
    return fail(rp, 501, "CONNECT is not supported");
  /* RFC 9110 §15.6.6: only HTTP/1.x is served here. */
  if (p->http_major != 1)
    return fail(rp, 505, "HTTP version not supported");
  q->method = http_method_str((enum http_method)p->method);
  q->http_major = p->http_major;
  q->http_minor = p->http_minor;
  /* RFC 9112 §6.3: a Content-Length over the limit is refused before the
   * body is read. */
  if (p->content_length != ULLONG_MAX && p->content_length > rp->max_body)
    return fail(rp, 413, "request body too large");
  if (p->content_length != ULLONG_MAX && p->content_length > 0 && rp->admit &&
      !rp->admit(rp->admit_ud, (size_t)p->content_length))
    return fail(rp, 503, "the server's request buffers are full");
  make_slices(rp);
  q->expect_continue = 0;
  int hosts = 0;
  for (size_t i = 0; i < q->nfields; i++) {
    dn_slice n = q->fields[i].name;
    if (n.len == 6 && strncasecmp(n.ptr, "Expect", 6) == 0 &&
        is_continue(q->fields[i].value))
      q->expect_continue = 1;
    hosts += n.len == 4 && strncasecmp(n.ptr, "Host", 4) == 0;
  }
  /* RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request
   * without a Host field or with more than one. */
  if (p->http_major == 1 && p->http_minor >= 1 && hosts != 1)
    return fail(rp, 400, "an HTTP/1.1 request needs exactly one Host");
  if (check_transfer_encoding(rp, q))
    return -1;
  rp->chunked = (p->flags & F_CHUNKED) != 0;
  /* RFC 9110 §10.1.1: 100-continue only matters for HTTP/1.1. */
  if (q->expect_continue && p->http_minor >= 1)
    http_parser_pause(p, 1);
  return 0;
}

/* How much the body buffer's capacity grows to take len more bytes (the
 * buffer doubles, as dn__buf_reserve does). */
static size_t body_growth(const dn__buf *b, size_t len) {
  size_t need = b->len + len + 1, cap = b->cap ? b->cap : 64;
  if (need <= b->cap)
    return 0;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  return cap - b->cap;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  dn__reqparser *rp = rp_of(p);
  size_t more = body_growth(&rp->body, len);
  if (more && rp->admit && rp->body.len + len <= rp->max_body &&
      !rp->admit(rp->admit_ud, more))
    return fail(rp, 503, "the server's request buffers are full");
  int rc = dn__buf_append(&rp->body, at, len);
  if (rc == DN_ETOOBIG)
    return fail(rp, 413, "request body too large");
  return rc ? fail(rp, 503, "out of memory") : 0;
}

static int on_message_complete(http_parser *p) {
  dn__reqparser *rp = rp_of(p);
  rp->complete = 1;
  rp->req.keep_alive = http_should_keep_alive(p);
  make_slices(rp);
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void dn__reqparser_init(dn__reqparser *rp, size_t max_header, size_t max_body) {
  memset(rp, 0, sizeof *rp);
  rp->max_header = max_header;
  rp->max_body = max_body;
  http_parser_init(&rp->p, HTTP_REQUEST);
  rp->p.data = rp;
  dn__buf_init(&rp->head, max_header);
  dn__buf_init(&rp->body, max_body);
}

void dn__reqparser_free(dn__reqparser *rp) {
  dn__buf_free(&rp->head);
  dn__buf_free(&rp->body);
}

/* ---- the framing check --------------------------------------------------
 *
 * libhttp-parser as distributions build it accepts a bare LF as a line
 * end, obs-fold continuation lines, and anything after a chunk size up to
 * the CR (a bare LF included). A proxy in front may frame such a request
 * differently, so each is refused with 400. The check runs over exactly
 * the bytes the parser consumed, which never go past the end of the
 * current message. */
enum {
  F_HEAD,
  F_SIZE,
  F_BWS,
  F_EXT,
  F_SIZE_LF,
  F_DATA,
  F_DATA_CR,
  F_DATA_LF,
  F_TRAILER,
  F_DONE
};

/* One byte of the head or of the trailer section. RFC 9112 §2.2: lines
 * end with CRLF, and a recipient may ignore empty lines before the
 * request line; §5.2: a line that starts with whitespace (obs-fold) is
 * refused with 400. Returns 1 at the empty line that ends the section, 0
 * to go on, -1 on an error. */
static int scan_line(dn__reqparser *rp, unsigned char ch) {
  int prev = rp->fr_prev;
  rp->fr_prev = ch;
  if (prev == '\r' && ch != '\n')
    return fail(rp, 400, "a CR not followed by LF");
  if (ch == '\n') {
    if (prev != '\r')
      return fail(rp, 400, "a bare LF as a line ending");
    if (rp->fr_line == 0)
      return rp->fr_lines ? 1 : 0;
    rp->fr_lines++;
    rp->fr_line = 0;
    return 0;
  }
  if (ch == '\r')
    return 0;
  if (rp->fr_line == 0 && rp->fr_lines && (ch == ' ' || ch == '\t'))
    return fail(rp, 400, "obsolete line folding");
  rp->fr_line++;
  return 0;
}

static int hex_digit(unsigned char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF;
 * chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ). */
static int scan_chunk_line(dn__reqparser *rp, unsigned char ch) {
  int v = hex_digit(ch);
  switch (rp->fr_state) {
  case F_SIZE:
    if (v >= 0) {
      if (rp->fr_size > (UINT64_MAX >> 4))
        return fail(rp, 400, "chunk size too large");
      rp->fr_size = rp->fr_size * 16 + (uint64_t)v;
      rp->fr_digits = 1;
    } else if (!rp->fr_digits) {
      return fail(rp, 400, "a chunk without a size");
    } else if (ch == ';') {
      rp->fr_state = F_EXT;
    } else if (ch == ' ' || ch == '\t') {
      rp->fr_state = F_BWS;
    } else if (ch == '\r') {
      rp->fr_state = F_SIZE_LF;
    } else {
      return fail(rp, 400, "junk after a chunk size");
    }
    return 0;
  case F_BWS:
    if (ch == ';')
      rp->fr_state = F_EXT;
    else if (ch != ' ' && ch != '\t')
      return fail(rp, 400, "junk after a chunk size");
    return 0;
  case F_EXT:
    if (ch == '\r')
      rp->fr_state = F_SIZE_LF;
    else if (ch == '\n')
      return fail(rp, 400, "a bare LF in a chunk extension");
    else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return fail(rp, 400, "a control byte in a chunk extension");
    return 0;
  default: /* F_SIZE_LF */
    if (ch != '\n')
      return fail(rp, 400, "a chunk size line not ended by CRLF");
    if (rp->fr_size == 0) {
      rp->fr_state = F_TRAILER;
      rp->fr_prev = '\n';
      rp->fr_line = 0;
      rp->fr_lines = 1;
    } else {
      rp->fr_left = rp->fr_size;
      rp->fr_state = F_DATA;
    }
    return 0;
  }
}

static int scan(dn__reqparser *rp, const char *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data;
  for (size_t i = 0; i < len && rp->fr_state != F_DONE; i++) {
    int r = 0;
    switch (rp->fr_state) {
    case F_HEAD:
    case F_TRAILER:
      r = scan_line(rp, p[i]);
      if (r == 1)
        rp->fr_state = rp->fr_state == F_HEAD && rp->chunked ? F_SIZE : F_DONE;
      break;
    case F_DATA: {
      size_t k = len - i < rp->fr_left ? len - i : (size_t)rp->fr_left;
      rp->fr_left -= k;
      i += k - 1;
      if (rp->fr_left == 0)
        rp->fr_state = F_DATA_CR;
      break;
    }
    case F_DATA_CR:
    case F_DATA_LF:
      if (p[i] != (rp->fr_state == F_DATA_CR ? '\r' : '\n'))
        return fail(rp, 400, "chunk data not followed by CRLF");
      rp->fr_state = rp->fr_state == F_DATA_CR ? F_DATA_LF : F_SIZE;
      rp->fr_size = 0;
      rp->fr_digits = 0;
      break;
    default:
      r = scan_chunk_line(rp, p[i]);
      break;
    }
    if (r < 0)
      return -1;
  }
  return 0;
}

static int map_error(dn__reqparser *rp) {
  enum http_errno e = HTTP_PARSER_ERRNO(&rp->p);
  if (rp->error_status)
    return DN__PARSE_ERROR;
  if (e == HPE_HEADER_OVERFLOW)
    fail(rp, 431, "header fields too large");
  else
    fail(rp, 400, http_errno_description(e));
  return DN__PARSE_ERROR;
}

int dn__reqparser_feed(dn__reqparser *rp, const char *data, size_t len,
                       size_t *used) {
  *used = 0;
  if (rp->error_status)
    return DN__PARSE_ERROR;
  if (len == 0)
    return DN__PARSE_MORE;
  size_t n = http_parser_execute(&rp->p, &settings, data, len);
  *used = n;
  enum http_errno e = HTTP_PARSER_ERRNO(&rp->p);
  if ((e == HPE_OK || e == HPE_PAUSED) && scan(rp, data, n) < 0)
    return DN__PARSE_ERROR;
  if (HTTP_PARSER_ERRNO(&rp->p) == HPE_PAUSED) {
    http_parser_pause(&rp->p, 0);
    return rp->complete ? DN__PARSE_REQUEST : DN__PARSE_CONTINUE;
  }
  if (HTTP_PARSER_ERRNO(&rp->p) != HPE_OK)
    return map_error(rp);
  if (n != len) /* stopped without an error: an upgrade */
    return fail(rp, 400, "protocol upgrade is not supported"), DN__PARSE_ERROR;
  return DN__PARSE_MORE;
}

const dn__req *dn__reqparser_req(dn__reqparser *rp) { return &rp->req; }

/* Empties b, and frees its memory when it grew past DN__REQ_KEEP_BYTES. */
static void buf_release(dn__buf *b) {
  if (b->cap > DN__REQ_KEEP_BYTES) {
    size_t limit = b->limit;
    dn__buf_free(b);
    dn__buf_init(b, limit);
  } else {
    dn__buf_truncate(b, 0);
  }
}

void dn__reqparser_next(dn__reqparser *rp) {
  buf_release(&rp->head);
  buf_release(&rp->body);
  rp->nfields = 0;
  rp->target_len = 0;
  rp->in_value = 0;
  rp->started = 0;
  rp->headers_done = 0;
  rp->complete = 0;
  rp->chunked = 0;
  rp->fr_state = F_HEAD;
  rp->fr_prev = rp->fr_digits = 0;
  rp->fr_line = rp->fr_lines = 0;
  rp->fr_size = rp->fr_left = 0;
  /* The field array is rewritten before it is read again. */
  dn__req *q = &rp->req;
  q->method = NULL;
  q->http_major = q->http_minor = q->keep_alive = q->expect_continue = 0;
  q->target = q->body = (dn_slice){NULL, 0};
  q->nfields = 0;
}

int dn__reqparser_partial(const dn__reqparser *rp) {
  return rp->started && !rp->complete;
}

size_t dn__reqparser_held(const dn__reqparser *rp) {
  return rp->head.cap + rp->body.cap;
}

const char *dn__status_reason(int status) {
  const char *s = http_status_str((enum http_status)status);
  return s[0] == '<' ? "Unknown" : s;
}
