/* cmd_template.c - `donut expand` (RFC 6570 expansion) and `donut tags`
 * (URI tags from a template over JSON rows). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reports a failed call. JSON syntax errors carry a line and column;
 * well-formed JSON of the wrong shape (line 0) and URI errors of one row
 * (whose text names the row and its own position) get no byte position. */
static int report(const dn_cli_command *cmd, const char *what, int rc,
                  const dn_error *err) {
  if (rc == DN_EJSON && err->line > 0)
    return dn_cli_fail(cmd, "%s: at byte %zu, line %d, column %d: %s", what,
                       err->position, err->line, err->column, err->text);
  if (rc == DN_ETEMPLATE || rc == DN_ETOOBIG)
    return dn_cli_fail(cmd, "%s: at byte %zu: %s", what, err->position,
                       err->text);
  return dn_cli_fail(cmd, "%s: %s", what, err->text);
}

static int run_expand(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_expand;
  const char *tpl = NULL, *vars_path = NULL;
  for (int i = 1; i < argc; i++) {
    int m = dn_cli_option(argc, argv, &i, "--vars", &vars_path);
    if (m < 0)
      return dn_cli_usage_error(cmd, "--vars needs a file name or '-'");
    if (m > 0)
      continue;
    if (argv[i][0] == '-' && argv[i][1] == '-')
      return dn_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
    if (tpl)
      return dn_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
    tpl = argv[i];
  }
  if (!tpl)
    return dn_cli_usage_error(cmd, "expected a TEMPLATE");
  char *vars = NULL;
  size_t vars_len = 2;
  if (vars_path) {
    vars = dn_cli_read_file(vars_path, &vars_len);
    if (!vars)
      return dn_cli_fail(cmd, "cannot read '%s'", vars_path);
  }
  dn_error err;
  char *out = NULL;
  int rc = dn_uritpl_expand_str(tpl, strlen(tpl), vars ? vars : "{}", vars_len,
                                &out, NULL, &err);
  int status = DN_CLI_EXIT_OK;
  if (rc == 0)
    printf("%s\n", out);
  else
    status = report(cmd,
                    rc == DN_EJSON       ? "invalid variables JSON"
                    : rc == DN_ETEMPLATE ? "invalid template"
                                         : "cannot expand",
                    rc, &err);
  dn_free(out);
  free(vars);
  return status;
}

static int run_tags(int argc, char **argv) {
  const dn_cli_command *cmd = &dn_cli_cmd_tags;
  const char *tpl = NULL, *rows_path = NULL;
  for (int i = 1; i < argc; i++) {
    int m = dn_cli_option(argc, argv, &i, "--template", &tpl);
    if (m == 0)
      m = dn_cli_option(argc, argv, &i, "--rows", &rows_path);
    if (m < 0)
      return dn_cli_usage_error(cmd, "'%s' needs a value", argv[i]);
    if (m == 0)
      return dn_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
  }
  if (!tpl || !rows_path)
    return dn_cli_usage_error(cmd, "both --template and --rows are required");
  size_t rows_len;
  char *rows = dn_cli_read_file(rows_path, &rows_len);
  if (!rows)
    return dn_cli_fail(cmd, "cannot read '%s'", rows_path);
  dn_error err;
  dn_strings tags = {0};
  int rc = dn_uri_tags_from_rows(tpl, strlen(tpl), rows, rows_len, &tags, &err);
  int status = DN_CLI_EXIT_OK;
  if (rc == 0) {
    for (size_t i = 0; i < tags.count; i++)
      printf("%s%s", i ? " " : "", tags.items[i]);
    printf("\n");
  } else {
    status = report(cmd,
                    rc == DN_EJSON       ? "invalid rows JSON"
                    : rc == DN_ETEMPLATE ? "invalid template"
                                         : "cannot derive tags",
                    rc, &err);
  }
  dn_strings_free(&tags);
  free(rows);
  return status;
}

const dn_cli_command dn_cli_cmd_expand = {
    "expand", "expand an RFC 6570 URI template",
    "usage: donut expand TEMPLATE [--vars FILE|-]\n"
    "\n"
    "Expands TEMPLATE (RFC 6570, level 4) with the variables in FILE, a\n"
    "JSON object ('-' reads standard input), and prints the result\n"
    "followed by a newline. Without --vars every variable is undefined.\n"
    "An invalid template or invalid JSON is reported on standard error\n"
    "with its byte position, and the exit status is 1.\n"
    "\n"
    "Example:\n"
    "  $ echo '{\"id\": 42, \"q\": \"a b\"}' | donut expand "
    "'app://self/item{?id,q}' --vars -\n"
    "  app://self/item?id=42&q=a%20b\n",
    run_expand};

const dn_cli_command dn_cli_cmd_tags = {
    "tags", "print the URI tags of a template applied to JSON rows",
    "usage: donut tags --template TEMPLATE --rows FILE|-\n"
    "\n"
    "FILE holds a JSON array of objects ('-' reads standard input). Each\n"
    "object is used as the variables of TEMPLATE; the URI tag of each\n"
    "expansion is printed, duplicates removed, on one line separated by\n"
    "spaces. A resource that renders these rows depends on every one of\n"
    "those URIs.\n"
    "\n"
    "Example:\n"
    "  $ echo '[{\"id\":1},{\"id\":2}]' | donut tags "
    "--template 'app://self/item{?id}' --rows -\n",
    run_tags};
