/* record.h - the byte formats of what the engine stores: shells, views,
 * vary stubs and tag versions.
 *
 * Records are encoded once when stored and decoded into structs whose
 * slices point into the blob's bytes. The decoded form is attached to the
 * blob (blob.h), so an in-memory store that hands out the same blob again
 * costs no decoding on the next hit. Decoding checks every length against
 * the bytes present: a truncated or foreign value is DN_ECORRUPT, never a
 * crash.
 */
#ifndef DN_RECORD_H
#define DN_RECORD_H

#include <stdatomic.h>

#include "blob.h"
#include "donut/engine.h"
#include "donut/http.h"

#define DN__REC_SHELL 'S'
#define DN__REC_VIEW 'V'
#define DN__REC_VERSION 2

/* Record flags. */
#define DN__REC_STUB 1u        /* only a vary list: look up the variant key */
#define DN__REC_CACHEABLE 2u   /* view: stored composed, has an ETag */
#define DN__REC_UNCACHEABLE 4u /* shell: the resource marked itself so */

#define DN__CDN_PROFILES 8 /* DN_CDN_NONE .. DN_CDN_RFC9875 */

typedef struct dn__tagver {
  dn_slice tag;
  uint64_t version;
} dn__tagver;

typedef struct dn__hole {
  dn_slice uri;    /* normalised */
  dn_slice alt;    /* normalised fallback when uri cannot be got; len 0: none */
  uint64_t offset; /* position in the shell's body */
  int flags;       /* DN_EMBED_* */
} dn__hole;

/* A resource's own output with holes, its own tags and lifetimes. */
typedef struct dn__shell {
  dn__attached base;
  unsigned flags;
  int status;
  uint64_t created_ms;
  uint64_t expires_ms; /* 0 = none */
  int64_t ttl_s;       /* -1 = unset */
  int64_t smaxage_s;   /* -1 = unset */
  uint32_t swr_s;      /* stale-while-revalidate window after expiry */
  uint32_t sie_s;      /* stale-if-error window after expiry */
  size_t nheaders;
  dn_header *headers;
  size_t ntags;
  dn__tagver *tags; /* own URI tag and explicit tags, versions snapshotted */
  size_t nvary;
  dn_slice *vary;
  dn_slice body;
  size_t nholes;
  dn__hole *holes;
} dn__shell;

/* A composed page: what dn_engine_get returns. Its reference count is the
 * blob's; `blob` points back to the owner. */
struct dn_rep {
  dn__attached base;
  dn_blob *blob;
  unsigned flags;
  int status;
  uint64_t valid_seq;           /* invalidation sequence when composing began */
  _Atomic uint64_t checked_seq; /* last sequence at which tags were verified */
  uint64_t created_ms;
  uint64_t last_modified_ms;
  uint64_t expires_ms;
  int64_t ttl_s;
  int64_t smaxage_s;
  uint32_t swr_s, sie_s; /* the smallest stale windows of the closure */
  dn_slice uri;          /* normalised */
  dn_slice etag;
  dn_slice body;
  size_t nheaders;
  dn_header *headers;
  size_t ntags;
  dn__tagver *tags; /* the closure */
  size_t nvary;
  dn_slice *vary;
  /* The CDN tag fields of the closure, per profile, computed on first use
   * by dn_rep_respond and freed with the view. */
  _Atomic(dn_http_headers *) cdn_fields[DN__CDN_PROFILES];
};

/* Encodes into a new blob (one reference, owned by the caller). The
 * `base`, `blob` and `checked_seq` fields are ignored. */
int dn__shell_encode(const dn__shell *s, dn_blob **out);
int dn__view_encode(const dn_rep *v, dn_blob **out);

/* Returns the decoded record attached to b, decoding and attaching it on
 * first use. The result lives as long as the blob. DN_ECORRUPT when the
 * bytes are not a record of that kind. */
int dn__shell_decode(dn_blob *b, const dn__shell **out);
int dn__view_decode(dn_blob *b, dn_rep **out);

/* Tag version records: 32 bytes: the version; the invalidation sequence
 * at which it was set (0 when created by a first render); and for a soft
 * invalidation the time (ms since the epoch) until which what carried the
 * previous version may still be served while it is regenerated, and that
 * previous version (both 0 for a hard one). Only what recorded exactly the
 * version a soft invalidation replaced may be served stale: anything older
 * predates a hard invalidation. */
#define DN__TAGREC_LEN 32
typedef struct dn__tagrec {
  uint64_t version;
  uint64_t seq;
  uint64_t soft_until;
  uint64_t prev_version;
} dn__tagrec;
void dn__tagrec_encode(const dn__tagrec *t, char out[DN__TAGREC_LEN]);
int dn__tagrec_decode(const dn_blob *b, dn__tagrec *out);

#endif
