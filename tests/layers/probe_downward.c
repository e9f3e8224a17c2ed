/* probe_downward.c - the control for probe_upward.c: the same build setup
 * including a header of a lower layer (uri) must compile. */
#include "uri.h"

int dn__probe_downward(void);
int dn__probe_downward(void) { return 0; }
