/* util.c - helpers shared by the `donut` subcommands: errors, usage,
 * option matching and reading input files. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

__attribute__((format(printf, 3, 0))) static void
vreport(const dn_cli_command *cmd, const char *prefix, const char *fmt,
        va_list ap) {
  fprintf(stderr, "donut %s: %s", cmd->name, prefix);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int dn_cli_usage_error(const dn_cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(cmd, "usage error: ", fmt, ap);
  va_end(ap);
  /* The first line of the usage text is the synopsis. */
  const char *nl = strchr(cmd->usage, '\n');
  int n = nl ? (int)(nl - cmd->usage) : (int)strlen(cmd->usage);
  fprintf(stderr, "%.*s\nTry 'donut %s --help'.\n", n, cmd->usage, cmd->name);
  return DN_CLI_EXIT_USAGE;
}

int dn_cli_fail(const dn_cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(cmd, "", fmt, ap);
  va_end(ap);
  return DN_CLI_EXIT_FAIL;
}

int dn_cli_is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int dn_cli_option(int argc, char **argv, int *i, const char *name,
                  const char **value) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0)
    return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != '\0')
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *value = argv[++*i];
  return 1;
}

char *dn_cli_read_file(const char *path, size_t *len_out) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + len, 1, cap - len - 1, f);
    len += got;
    if (got == 0)
      break;
    if (cap - len - 1 == 0) {
      char *nb = cap > (64u << 20) ? NULL : realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        errno = EFBIG;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  int failed = buf && ferror(f);
  if (f != stdin)
    fclose(f);
  if (failed) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  if (!buf)
    return NULL;
  buf[len] = '\0';
  *len_out = len;
  return buf;
}
