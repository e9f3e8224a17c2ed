/* server_parse.h - HTTP/1.1 request parsing for the server, over
 * libhttp-parser, with the server's size limits.
 *
 * A dn__reqparser turns the bytes of one connection into requests, one at a
 * time: feed it what arrived, and it stops right after the end of a
 * request (so pipelined requests are answered in order) or when it needs
 * more bytes. It copies the request line, header fields and body into
 * bounded buffers and maps every failure to the status to answer (400,
 * 413, 414, 431, 501). It does no I/O, so it can be fuzzed on its own.
 */
#ifndef DN_SERVER_PARSE_H
#define DN_SERVER_PARSE_H

#include <http_parser.h>
#include <stddef.h>

#include "buf.h"
#include "donut/http.h"

#define DN__REQ_MAX_FIELDS 100
/* Buffers larger than this are released after each request, so an idle
 * keep-alive connection holds no more than a few KiB. */
#define DN__REQ_KEEP_BYTES ((size_t)4 << 10)

typedef struct dn__field_off {
  size_t name, name_len, value, value_len;
} dn__field_off;

/* A parsed request. Slices point into the parser's buffers and stay valid
 * until dn__reqparser_next or dn__reqparser_free. */
typedef struct dn__req {
  const char *method;
  int http_major, http_minor;
  int keep_alive;
  int expect_continue;
  dn_slice target;
  dn_http_field fields[DN__REQ_MAX_FIELDS];
  size_t nfields;
  dn_slice body;
} dn__req;

typedef struct dn__reqparser {
  http_parser p;
  size_t max_header, max_body;
  dn__buf head; /* target, then each field's name and value */
  dn__buf body;
  dn__field_off off[DN__REQ_MAX_FIELDS];
  size_t nfields;
  size_t target_len;
  int in_value; /* the last header callback was a value */
  int started;  /* bytes of a request have arrived */
  int headers_done;
  int complete;
  int chunked; /* the body is chunked (known after the head) */
  /* The framing check, over the bytes libhttp-parser consumed: line ends,
   * obs-fold and chunk lines, which its lenient build lets through. */
  int fr_state, fr_prev, fr_digits;
  size_t fr_line;    /* bytes in the current line */
  unsigned fr_lines; /* lines seen in the current section */
  uint64_t fr_size, fr_left;
  int error_status; /* 0, or the status to answer before closing */
  const char *error_text;
  /* Optional memory budget: asked before the body buffer grows by `more`
   * bytes (and with the declared Content-Length); 0 refuses, and the
   * request is answered 503. */
  int (*admit)(void *ud, size_t more);
  void *admit_ud;
  dn__req req;
} dn__reqparser;

/* Feed results. */
#define DN__PARSE_MORE 0     /* every byte consumed; send more */
#define DN__PARSE_REQUEST 1  /* a whole request is ready (dn__reqparser_req) */
#define DN__PARSE_CONTINUE 2 /* headers ask for 100-continue; feed again */
#define DN__PARSE_ERROR 3    /* answer error_status and close */

void dn__reqparser_init(dn__reqparser *rp, size_t max_header, size_t max_body);
void dn__reqparser_free(dn__reqparser *rp);
/* Parses up to len bytes; *used receives how many were consumed. */
int dn__reqparser_feed(dn__reqparser *rp, const char *data, size_t len,
                       size_t *used);
/* The request after DN__PARSE_REQUEST (borrowed). */
const dn__req *dn__reqparser_req(dn__reqparser *rp);
/* Forgets the current request and gets ready for the next one; buffers
 * over DN__REQ_KEEP_BYTES are freed. */
void dn__reqparser_next(dn__reqparser *rp);
/* 1 when part of a request has arrived but not all of it. */
int dn__reqparser_partial(const dn__reqparser *rp);
/* The bytes the parser's buffers hold (their capacity). */
size_t dn__reqparser_held(const dn__reqparser *rp);

/* The reason phrase of a status code (RFC 9110 §15), from libhttp-parser's
 * table; "Unknown" for a code it does not name. */
const char *dn__status_reason(int status);

#endif
