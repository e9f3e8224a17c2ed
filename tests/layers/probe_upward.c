/* probe_upward.c - compiled with the engine layer's include path by
 * test_layers.sh, which expects the build to fail: the engine may not
 * include the server's private header. Never part of a normal build. */
#include "server_internal.h"

int dn__probe_upward(void);
int dn__probe_upward(void) { return 0; }
