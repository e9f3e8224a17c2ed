/* fuzz_server_parse.c - libFuzzer target for the server's request parsing:
 * the bytes of one connection are fed to dn__reqparser in pieces (the
 * first byte picks the piece size), every request it hands out is checked
 * for consistency, and its query is decoded with dn__query_param.
 *
 * Small limits make the 413/414/431 paths reachable. The parser must never
 * read outside its input, never hand out a request whose slices leave its
 * buffers, and must stop at the first error.
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h>, through server_internal.h */
#include <stdint.h>
#include <string.h>

#include "server_internal.h"
#include "server_parse.h"

static void check_request(const dn__req *q) {
  volatile size_t sum = 0;
  for (size_t i = 0; i < q->target.len; i++)
    sum += (unsigned char)q->target.ptr[i];
  for (size_t i = 0; i < q->nfields; i++) {
    sum += q->fields[i].name.len + q->fields[i].value.len;
    if (q->fields[i].value.len)
      sum += (unsigned char)q->fields[i].value.ptr[q->fields[i].value.len - 1];
  }
  if (q->body.len)
    sum += (unsigned char)q->body.ptr[q->body.len - 1];
  const char *qm = memchr(q->target.ptr, '?', q->target.len);
  if (qm) {
    dn_slice query = {qm + 1, q->target.len - (size_t)(qm + 1 - q->target.ptr)};
    dn__buf out;
    dn__buf_init(&out, 256);
    dn__query_param(query, "uri", &out);
    dn__query_param(query, "id", &out);
    dn__buf_free(&out);
  }
  (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t step = (size_t)data[0] % 64 + 1;
  const char *in = (const char *)data + 1;
  size_t len = size - 1, pos = 0;
  dn__reqparser rp;
  dn__reqparser_init(&rp, 512, 256);
  while (pos < len) {
    size_t end = pos + step < len ? pos + step : len, used = 0;
    int r = dn__reqparser_feed(&rp, in + pos, end - pos, &used);
    if (used > end - pos || (r == DN__PARSE_MORE && used != end - pos))
      __builtin_trap();
    pos += used;
    if (r == DN__PARSE_ERROR) {
      if (rp.error_status < 400 || rp.error_status > 599)
        __builtin_trap();
      break;
    }
    if (r == DN__PARSE_REQUEST) {
      check_request(dn__reqparser_req(&rp));
      dn__reqparser_next(&rp);
    }
  }
  dn__reqparser_free(&rp);
  return 0;
}
