/* cmd_uri.c - `donut normalize` and `donut uri-tag`: print the normalised
 * form or the URI tag of each URI argument, one per line. */
#include <string.h>

#include "cli.h"

static int run_each(const dn_cli_command *cmd, int argc, char **argv, int tag) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0)
    first++;
  else if (first < argc && argv[first][0] == '-' && argv[first][1] == '-')
    return dn_cli_usage_error(cmd, "unknown option '%s'", argv[first]);
  if (first >= argc)
    return dn_cli_usage_error(cmd, "expected at least one URI");
  int status = DN_CLI_EXIT_OK;
  for (int i = first; i < argc; i++) {
    dn_error err;
    int rc;
    if (tag) {
      char out[DN_URI_TAG_MAX + 1];
      rc = dn_uri_tag(argv[i], strlen(argv[i]), out, NULL, &err);
      if (rc == 0)
        printf("%s\n", out);
    } else {
      char *out = NULL;
      rc = dn_uri_normalize(argv[i], strlen(argv[i]), &out, NULL, &err);
      if (rc == 0)
        printf("%s\n", out);
      dn_free(out);
    }
    if (rc != 0) {
      dn_cli_fail(cmd, "'%s': at byte %zu: %s", argv[i], err.position,
                  err.text);
      status = DN_CLI_EXIT_FAIL;
    }
  }
  return status;
}

static int run_normalize(int argc, char **argv) {
  return run_each(&dn_cli_cmd_normalize, argc, argv, 0);
}

static int run_uri_tag(int argc, char **argv) {
  return run_each(&dn_cli_cmd_uri_tag, argc, argv, 1);
}

const dn_cli_command dn_cli_cmd_normalize = {
    "normalize", "print the normalised form of resource URIs",
    "usage: donut normalize URI...\n"
    "\n"
    "Prints the normalised form of each URI, one per line: scheme and host\n"
    "lower-cased, percent-encoding normalised, dot-segments removed and\n"
    "query parameters sorted by name. Two URIs with the same normalised\n"
    "form are one cache entry.\n"
    "\n"
    "Example:\n"
    "  $ donut normalize 'APP://Self/a/../Item?b=2&a=1'\n"
    "  app://self/Item?a=1&b=2\n",
    run_normalize};

const dn_cli_command dn_cli_cmd_uri_tag = {
    "uri-tag", "print the URI tag (surrogate key) of resource URIs",
    "usage: donut uri-tag URI...\n"
    "\n"
    "Prints the URI tag of each URI, one per line. A URI tag is the\n"
    "surrogate key that stands for one resource in CDN tag headers and\n"
    "purge requests. It is the normalised URI with '/' written as '|' and\n"
    "the bytes CDNs reject as %XX; past 128 bytes it is cut, and '#' and a\n"
    "digest of the whole URI follow. See docs/uri-tags.md for the format.\n"
    "\n"
    "Example:\n"
    "  $ donut uri-tag 'app://self/item?id=1'\n"
    "  app%3A||self|item%3Fid%3D1\n",
    run_uri_tag};
