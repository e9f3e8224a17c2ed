/* main.c - entry point of the `donut` command: dispatches subcommands.
 *
 * Every subcommand is a thin layer over the public API in include/donut.h;
 * this file only finds the command and prints the top-level help.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const dn_cli_command *const commands[] = {
    &dn_cli_cmd_expand, &dn_cli_cmd_normalize, &dn_cli_cmd_uri_tag,
    &dn_cli_cmd_tags,   &dn_cli_cmd_headers,   &dn_cli_cmd_serve,
    &dn_cli_cmd_purge,  &dn_cli_cmd_inspect,   &dn_cli_cmd_deps,
    &dn_cli_cmd_stats,  &dn_cli_cmd_outbox,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out) {
  fprintf(out,
          "usage: donut [--version] [--help] COMMAND [ARGS...]\n"
          "\n"
          "donut is a tag-based, dependency-tracking cache engine for web\n"
          "resources. This command exposes its library to operators.\n"
          "\n"
          "Commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "\n"
          "Run 'donut COMMAND --help' for the options of one command.\n"
          "\n"
          "Exit status:\n"
          "  0  success\n"
          "  1  the input was invalid or the operation failed (the reason is\n"
          "     printed on standard error)\n"
          "  2  usage error: unknown command or option, missing argument\n"
          "  3  the server could not be reached (purge, inspect, deps, stats)\n"
          "  4  the server rejected the control token\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return DN_CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (dn_cli_is_help(name)) {
    print_help(stdout);
    return DN_CLI_EXIT_OK;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("donut %s\n", dn_version());
    return DN_CLI_EXIT_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++) {
    if (strcmp(commands[i]->name, name) != 0)
      continue;
    for (int a = 2; a < argc; a++) {
      if (strcmp(argv[a], "--") == 0)
        break;
      if (dn_cli_is_help(argv[a])) {
        fputs(commands[i]->usage, stdout);
        return DN_CLI_EXIT_OK;
      }
    }
    return commands[i]->run(argc - 1, argv + 1);
  }
  fprintf(stderr, "donut: unknown command '%s'\n\n", name);
  print_help(stderr);
  return DN_CLI_EXIT_USAGE;
}
