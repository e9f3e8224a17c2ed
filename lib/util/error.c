/* error.c - error codes, their messages, and the parser error struct.
 *
 * The codes and messages come from the single DN_ERRNO_MAP X-macro in
 * donut/common.h, so a code can never lack a message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "donut/common.h"
#include "error.h"

const char *dn_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define DN__ERR_MSG(name, value, msg)                                          \
  case value:                                                                  \
    return msg;
    DN_ERRNO_MAP(DN__ERR_MSG)
#undef DN__ERR_MSG
  default:
    return "unknown error";
  }
}

const char *dn_err_name(int code) {
  switch (code) {
  case 0:
    return "DN_OK";
#define DN__ERR_NAME(name, value, msg)                                         \
  case value:                                                                  \
    return "DN_" #name;
    DN_ERRNO_MAP(DN__ERR_NAME)
#undef DN__ERR_NAME
  default:
    return "DN_EUNKNOWN";
  }
}

int dn__error_set(dn_error *err, int code, size_t position, const char *fmt,
                  ...) {
  if (!err)
    return code;
  err->code = code;
  err->position = position;
  err->line = 0;
  err->column = 0;
  va_list ap;
  va_start(ap, fmt);
  /* vsnprintf into a fixed buffer: bounded, never allocates. */
  vsnprintf(err->text, sizeof err->text, fmt, ap);
  va_end(ap);
  return code;
}

void dn__error_clear(dn_error *err) {
  if (!err)
    return;
  memset(err, 0, sizeof *err);
}

dn_slice dn_slice_from_cstr(const char *s) {
  dn_slice sl = {s ? s : "", s ? strlen(s) : 0};
  return sl;
}

const char *dn_version(void) { return DN_VERSION_STRING; }
