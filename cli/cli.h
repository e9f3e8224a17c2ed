/* cli.h - shared pieces of the `donut` command-line tool.
 *
 * Each subcommand lives in cli/cmd_<name>.c and exposes one entry point
 * with the signature of dn_cli_cmd_fn. main.c only dispatches. Exit
 * statuses are the same for every command (see DN_CLI_EXIT_*).
 */
#ifndef DN_CLI_H
#define DN_CLI_H

#include <stdio.h>

#include "donut.h"

/* Exit statuses, documented in `donut --help`. */
#define DN_CLI_EXIT_OK 0
#define DN_CLI_EXIT_FAIL 1  /* the input was invalid or the operation failed */
#define DN_CLI_EXIT_USAGE 2 /* unknown command or option, missing argument */
#define DN_CLI_EXIT_UNREACHABLE 3 /* the server could not be reached */
#define DN_CLI_EXIT_DENIED 4      /* the server rejected the control token */

typedef int (*dn_cli_cmd_fn)(int argc, char **argv);

typedef struct dn_cli_command {
  const char *name;
  const char *summary;
  const char *usage; /* full text for `donut NAME --help` */
  dn_cli_cmd_fn run;
} dn_cli_command;

/* Prints "donut NAME: usage error: MSG" and the command's usage line on
 * stderr; returns DN_CLI_EXIT_USAGE. */
int dn_cli_usage_error(const dn_cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "donut NAME: MSG" on stderr; returns DN_CLI_EXIT_FAIL. */
int dn_cli_fail(const dn_cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads a whole file, or standard input when path is "-". On success
 * returns a malloc'ed NUL-terminated buffer and its length; on failure
 * returns NULL with errno set. */
char *dn_cli_read_file(const char *path, size_t *len_out);

/* True when argv[i] is "--help" or "-h". */
int dn_cli_is_help(const char *arg);

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]. Returns 1 and
 * sets *value (advancing *i past a separate value) on a match, 0 when
 * argv[*i] is another argument, -1 when the value is missing. */
int dn_cli_option(int argc, char **argv, int *i, const char *name,
                  const char **value);

/* The subcommands. */
extern const dn_cli_command dn_cli_cmd_expand;
extern const dn_cli_command dn_cli_cmd_normalize;
extern const dn_cli_command dn_cli_cmd_uri_tag;
extern const dn_cli_command dn_cli_cmd_tags;
extern const dn_cli_command dn_cli_cmd_headers;
extern const dn_cli_command dn_cli_cmd_serve;
extern const dn_cli_command dn_cli_cmd_purge;
extern const dn_cli_command dn_cli_cmd_inspect;
extern const dn_cli_command dn_cli_cmd_deps;
extern const dn_cli_command dn_cli_cmd_stats;
extern const dn_cli_command dn_cli_cmd_outbox;

#endif
