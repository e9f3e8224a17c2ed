/* cdn_profile.h - CDN profiles inside the library (see donut/http.h,
 * docs/cdn.md). */
#ifndef DN_CDN_H
#define DN_CDN_H

#include "donut/http.h"

/* The bucket ladder: level L hashes tags into dn__cdn_buckets[L] buckets
 * (powers of two, finest first). Its keys are "dk<L>-<hex>". */
#define DN__CDN_LEVELS 6
extern const unsigned dn__cdn_buckets[DN__CDN_LEVELS];

/* Validates n tags (dn_cdn_tag_validate); err names the failing index. */
int dn__cdn_validate_tags(const dn_slice *tags, size_t n, dn_error *err);

#endif
