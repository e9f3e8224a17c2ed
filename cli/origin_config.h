/* origin_config.h - the settings of origin mode for `donut serve`, from
 * the command line, the environment and the DONUT_CONFIG file. */
#ifndef DN_CLI_ORIGIN_CONFIG_H
#define DN_CLI_ORIGIN_CONFIG_H

#include <stddef.h>

#include "donut/origin.h"

typedef struct dn_cli_origin_config {
  char upstream[1024]; /* empty: no origin mode */
  dn_origin_options opts;
} dn_cli_origin_config;

/* Fills cfg: the upstream from `flag` (--upstream), else DONUT_UPSTREAM,
 * else the "upstream" key of the DONUT_CONFIG file; the other settings from
 * the environment, else that file's "origin" object, else the defaults.
 * Returns 0, or -1 with the reason in why. */
int dn_cli_origin_config_load(const char *flag, dn_cli_origin_config *cfg,
                              char *why, size_t cap);

/* Copies the settings into opts (opts->upstream points into cfg). */
void dn_cli_origin_config_apply(const dn_cli_origin_config *cfg,
                                dn_origin_options *opts);

#endif
