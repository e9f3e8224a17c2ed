/* donut.h - umbrella header for libdonut.
 *
 * Include this one header to get the whole public API. Each module's
 * declarations live in include/donut/<module>.h and are self-contained.
 * donut/config.h says which optional parts this build has; the headers of
 * parts that were not built are not installed.
 */
#ifndef DONUT_H
#define DONUT_H

#include "donut/config.h"
#include "donut/common.h"
#include "donut/uri.h"
#include "donut/uritpl.h"
#include "donut/store.h"
#include "donut/engine.h"
#include "donut/http.h"
#include "donut/respond.h"
#include "donut/store_shared.h"
#if DONUT_WITH_SERVER
#include "donut/server.h"
#endif
#if DONUT_WITH_PURGE
#include "donut/purge.h"
#endif
#if DONUT_WITH_ORIGIN
#include "donut/origin.h"
#endif

#endif /* DONUT_H */
