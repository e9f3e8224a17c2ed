/* store_options.c - the defaults of the shared stores' options and of the
 * options of dn_store_from_env (see donut/store_shared.h). A leaf: the
 * shared stores' code (store_codec.c) and the selection (store_select.c)
 * both start from these defaults, and this file calls neither. */
#include <string.h>

#include "donut/store_shared.h"
#include "options.h"

void dn_store_shared_options_init_size(dn_store_shared_options *o,
                                       size_t size) {
  dn_store_shared_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}

void dn_store_env_options_init_size(dn_store_env_options *o, size_t size) {
  dn_store_env_options d;
  memset(&d, 0, sizeof d);
  dn__options_init(o, size, &d, sizeof d);
}
