/* donut.h - umbrella header for libdonut.
 *
 * Include this one header to get the whole public API. Each module's
 * declarations live in include/donut/<module>.h and are self-contained.
 */
#ifndef DONUT_H
#define DONUT_H

#include "donut/common.h"
#include "donut/uri.h"
#include "donut/uritpl.h"
#include "donut/store.h"
#include "donut/engine.h"
#include "donut/http.h"
#include "donut/respond.h"
#include "donut/store_shared.h"
#include "donut/server.h"
#include "donut/purge.h"

#endif /* DONUT_H */
