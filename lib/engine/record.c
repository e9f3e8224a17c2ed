/* record.c - encoding and bounds-checked decoding of stored records.
 *
 * Layout (little-endian): u8 kind, u8 version, u32 flags, then the fields
 * of the kind in a fixed order. Strings are a u32 length and the bytes.
 * Encoding runs the same writer twice: once to measure, once to fill a
 * blob of exactly that size, so there is a single copy.
 */
#include <string.h>

#include "alloc.h"
#include "record.h"

typedef struct writer {
  char *p; /* NULL while measuring */
  size_t n;
} writer;

static void put(writer *w, const void *src, size_t len) {
  if (w->p && len)
    memcpy(w->p + w->n, src, len);
  w->n += len;
}

static void put_u64(writer *w, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  put(w, b, 8);
}

static void put_u32(writer *w, uint32_t v) {
  unsigned char b[4];
  for (int i = 0; i < 4; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  put(w, b, 4);
}

static void put_str(writer *w, dn_slice s) {
  put_u32(w, (uint32_t)s.len);
  put(w, s.ptr, s.len);
}

static void put_headers(writer *w, const dn_header *h, size_t n) {
  put_u32(w, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    put_str(w, h[i].name);
    put_str(w, h[i].value);
  }
}

static void put_tags(writer *w, const dn__tagver *t, size_t n) {
  put_u32(w, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    put_str(w, t[i].tag);
    put_u64(w, t[i].version);
  }
}

static void put_slices(writer *w, const dn_slice *s, size_t n) {
  put_u32(w, (uint32_t)n);
  for (size_t i = 0; i < n; i++)
    put_str(w, s[i]);
}

static void write_shell(writer *w, const dn__shell *s) {
  unsigned char head[2] = {DN__REC_SHELL, DN__REC_VERSION};
  put(w, head, 2);
  put_u32(w, s->flags);
  put_u32(w, (uint32_t)s->status);
  put_u64(w, s->created_ms);
  put_u64(w, s->expires_ms);
  put_u64(w, (uint64_t)s->ttl_s);
  put_u64(w, (uint64_t)s->smaxage_s);
  put_u32(w, s->swr_s);
  put_u32(w, s->sie_s);
  put_headers(w, s->headers, s->nheaders);
  put_tags(w, s->tags, s->ntags);
  put_slices(w, s->vary, s->nvary);
  put_str(w, s->body);
  put_u32(w, (uint32_t)s->nholes);
  for (size_t i = 0; i < s->nholes; i++) {
    put_u64(w, s->holes[i].offset);
    put_u32(w, (uint32_t)s->holes[i].flags);
    put_str(w, s->holes[i].uri);
    put_str(w, s->holes[i].alt);
  }
}

static void write_view(writer *w, const dn_rep *v) {
  unsigned char head[2] = {DN__REC_VIEW, DN__REC_VERSION};
  put(w, head, 2);
  put_u32(w, v->flags);
  put_u32(w, (uint32_t)v->status);
  put_u64(w, v->valid_seq);
  put_u64(w, v->created_ms);
  put_u64(w, v->last_modified_ms);
  put_u64(w, v->expires_ms);
  put_u64(w, (uint64_t)v->ttl_s);
  put_u64(w, (uint64_t)v->smaxage_s);
  put_u32(w, v->swr_s);
  put_u32(w, v->sie_s);
  put_str(w, v->uri);
  put_str(w, v->etag);
  put_headers(w, v->headers, v->nheaders);
  put_tags(w, v->tags, v->ntags);
  put_slices(w, v->vary, v->nvary);
  put_str(w, v->body);
}

#define ENCODE(fn, rec, out)                                                   \
  do {                                                                         \
    writer w = {NULL, 0};                                                      \
    fn(&w, rec);                                                               \
    dn_blob *b;                                                                \
    int rc = dn__blob_alloc(w.n, &b);                                          \
    if (rc)                                                                    \
      return rc;                                                               \
    w.p = b->data;                                                             \
    w.n = 0;                                                                   \
    fn(&w, rec);                                                               \
    *(out) = b;                                                                \
    return 0;                                                                  \
  } while (0)

int dn__shell_encode(const dn__shell *s, dn_blob **out) {
  ENCODE(write_shell, s, out);
}

int dn__view_encode(const dn_rep *v, dn_blob **out) {
  ENCODE(write_view, v, out);
}

/* ---- decoding -------------------------------------------------------------
 */
typedef struct reader {
  const char *p;
  size_t n, off;
  int bad;
} reader;

static const char *take(reader *r, size_t len) {
  if (r->bad || len > r->n - r->off) {
    r->bad = 1;
    return NULL;
  }
  const char *p = r->p + r->off;
  r->off += len;
  return p;
}

static uint64_t get_u64(reader *r) {
  const unsigned char *b = (const unsigned char *)take(r, 8);
  uint64_t v = 0;
  for (int i = 0; b && i < 8; i++)
    v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static uint32_t get_u32(reader *r) {
  const unsigned char *b = (const unsigned char *)take(r, 4);
  uint32_t v = 0;
  for (int i = 0; b && i < 4; i++)
    v |= (uint32_t)b[i] << (8 * i);
  return v;
}

static dn_slice get_str(reader *r) {
  uint32_t len = get_u32(r);
  dn_slice s = {take(r, len), len};
  if (!s.ptr)
    s.len = 0;
  return s;
}

/* Reads a count and checks that at least `min_each` bytes per element
 * remain, so a forged count cannot make us allocate gigabytes. */
static size_t get_count(reader *r, size_t min_each) {
  uint32_t n = get_u32(r);
  if (r->bad || (size_t)n > (r->n - r->off) / min_each) {
    r->bad = 1;
    return 0;
  }
  return n;
}

/* One allocation holds the struct and its arrays; `arena` hands out the
 * arrays from behind the struct. */
typedef struct arena {
  char *p;
  size_t off;
} arena;

static void *carve(arena *a, size_t size) {
  a->off = (a->off + 15) & ~(size_t)15;
  void *p = a->p + a->off;
  a->off += size;
  return p;
}

static void free_attached(dn__attached *a) { dn__free(a); }

static void free_view(dn__attached *a) {
  dn_rep *v = (dn_rep *)a;
  for (int i = 0; i < DN__CDN_PROFILES; i++)
    dn_http_headers_free(
        atomic_load_explicit(&v->cdn_fields[i], memory_order_acquire));
  dn__free(v);
}

static int read_header(reader *r, char kind, unsigned *flags) {
  const char *h = take(r, 2);
  if (!h || h[0] != kind || h[1] != DN__REC_VERSION)
    return DN_ECORRUPT;
  *flags = get_u32(r);
  return 0;
}

/* Counts of the variable arrays, peeked before allocating. */
typedef struct counts {
  size_t headers, tags, vary, holes;
} counts;

/* The readers below consume their elements; with a NULL destination
 * (the measuring pass) they only check the bytes. */
static void read_headers(reader *r, dn_header *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dn_slice name = get_str(r), value = get_str(r);
    if (h)
      h[i] = (dn_header){name, value};
  }
}

static void read_tags(reader *r, dn__tagver *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dn_slice tag = get_str(r);
    uint64_t version = get_u64(r);
    if (t)
      t[i] = (dn__tagver){tag, version};
  }
}

static void read_slices(reader *r, dn_slice *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dn_slice v = get_str(r);
    if (s)
      s[i] = v;
  }
}

/* Decodes a shell in two passes: the first (a == NULL) checks the bytes
 * and finds the array sizes, the second fills one allocation. */
static int shell_pass(reader *r, dn__shell *s, counts *c, arena *a) {
  unsigned flags;
  if (read_header(r, DN__REC_SHELL, &flags))
    return DN_ECORRUPT;
  s->flags = flags;
  s->status = (int)get_u32(r);
  s->created_ms = get_u64(r);
  s->expires_ms = get_u64(r);
  s->ttl_s = (int64_t)get_u64(r);
  s->smaxage_s = (int64_t)get_u64(r);
  s->swr_s = get_u32(r);
  s->sie_s = get_u32(r);
  s->nheaders = c->headers = get_count(r, 8);
  s->headers = a ? carve(a, c->headers * sizeof(dn_header)) : NULL;
  read_headers(r, s->headers, c->headers);
  s->ntags = c->tags = get_count(r, 12);
  s->tags = a ? carve(a, c->tags * sizeof(dn__tagver)) : NULL;
  read_tags(r, s->tags, c->tags);
  s->nvary = c->vary = get_count(r, 4);
  s->vary = a ? carve(a, c->vary * sizeof(dn_slice)) : NULL;
  read_slices(r, s->vary, c->vary);
  s->body = get_str(r);
  s->nholes = c->holes = get_count(r, 16);
  s->holes = a ? carve(a, c->holes * sizeof(dn__hole)) : NULL;
  uint64_t prev = 0;
  for (size_t i = 0; i < c->holes; i++) {
    dn__hole h;
    h.offset = get_u64(r);
    h.flags = (int)get_u32(r);
    h.uri = get_str(r);
    h.alt = get_str(r);
    if (h.offset > s->body.len ||
        (h.flags & ~(DN_EMBED_UNCACHEABLE | DN_EMBED_OPTIONAL)) ||
        h.offset < prev)
      r->bad = 1;
    prev = h.offset;
    if (a)
      s->holes[i] = h;
  }
  return r->bad || r->off != r->n ? DN_ECORRUPT : 0;
}

int dn__shell_decode(dn_blob *b, const dn__shell **out) {
  dn__attached *att = dn__blob_attached(b);
  if (att) {
    *out = (const dn__shell *)att;
    return 0;
  }
  reader r = {b->data, b->len, 0, 0};
  dn__shell probe;
  counts c;
  if (shell_pass(&r, &probe, &c, NULL))
    return DN_ECORRUPT;
  size_t size = sizeof(dn__shell) + 64 + c.headers * sizeof(dn_header) +
                c.tags * sizeof(dn__tagver) + c.vary * sizeof(dn_slice) +
                c.holes * sizeof(dn__hole);
  dn__shell *s = dn__malloc(size);
  if (!s)
    return DN_ENOMEM;
  arena a = {(char *)s, sizeof *s};
  r = (reader){b->data, b->len, 0, 0};
  shell_pass(&r, s, &c, &a);
  s->base.free = free_attached;
  att = dn__blob_attach(b, &s->base);
  if (att != &s->base)
    dn__free(s);
  *out = (const dn__shell *)att;
  return 0;
}

static int view_pass(reader *r, dn_rep *v, counts *c, arena *a) {
  unsigned flags;
  if (read_header(r, DN__REC_VIEW, &flags))
    return DN_ECORRUPT;
  v->flags = flags;
  v->status = (int)get_u32(r);
  v->valid_seq = get_u64(r);
  v->created_ms = get_u64(r);
  v->last_modified_ms = get_u64(r);
  v->expires_ms = get_u64(r);
  v->ttl_s = (int64_t)get_u64(r);
  v->smaxage_s = (int64_t)get_u64(r);
  v->swr_s = get_u32(r);
  v->sie_s = get_u32(r);
  v->uri = get_str(r);
  v->etag = get_str(r);
  v->nheaders = c->headers = get_count(r, 8);
  v->headers = a ? carve(a, c->headers * sizeof(dn_header)) : NULL;
  read_headers(r, v->headers, c->headers);
  v->ntags = c->tags = get_count(r, 12);
  v->tags = a ? carve(a, c->tags * sizeof(dn__tagver)) : NULL;
  read_tags(r, v->tags, c->tags);
  v->nvary = c->vary = get_count(r, 4);
  v->vary = a ? carve(a, c->vary * sizeof(dn_slice)) : NULL;
  read_slices(r, v->vary, c->vary);
  v->body = get_str(r);
  return r->bad || r->off != r->n ? DN_ECORRUPT : 0;
}

int dn__view_decode(dn_blob *b, dn_rep **out) {
  dn__attached *att = dn__blob_attached(b);
  if (att) {
    *out = (dn_rep *)att;
    return 0;
  }
  reader r = {b->data, b->len, 0, 0};
  dn_rep probe;
  counts c;
  if (view_pass(&r, &probe, &c, NULL))
    return DN_ECORRUPT;
  size_t size = sizeof(dn_rep) + 48 + c.headers * sizeof(dn_header) +
                c.tags * sizeof(dn__tagver) + c.vary * sizeof(dn_slice);
  /* The URI is copied next to the struct: the per-thread view cache
   * compares it on every hit, and this keeps that compare off the blob. */
  size += probe.uri.len + 1;
  dn_rep *v = dn__malloc(size);
  if (!v)
    return DN_ENOMEM;
  char *uri_copy = (char *)(v + 1);
  memcpy(uri_copy, probe.uri.ptr, probe.uri.len);
  uri_copy[probe.uri.len] = '\0';
  arena a = {(char *)v, sizeof *v + probe.uri.len + 1};
  r = (reader){b->data, b->len, 0, 0};
  view_pass(&r, v, &c, &a);
  v->uri.ptr = uri_copy;
  v->base.free = free_view;
  v->blob = b;
  for (int i = 0; i < DN__CDN_PROFILES; i++)
    atomic_init(&v->cdn_fields[i], NULL);
  atomic_init(&v->checked_seq, v->valid_seq);
  att = dn__blob_attach(b, &v->base);
  if (att != &v->base)
    dn__free(v);
  *out = (dn_rep *)att;
  return 0;
}

static void put_le64(char *out, uint64_t v) {
  for (int i = 0; i < 8; i++)
    out[i] = (char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

void dn__tagrec_encode(const dn__tagrec *t, char out[DN__TAGREC_LEN]) {
  put_le64(out, t->version);
  put_le64(out + 8, t->seq);
  put_le64(out + 16, t->soft_until);
  put_le64(out + 24, t->prev_version);
}

int dn__tagrec_decode(const dn_blob *b, dn__tagrec *out) {
  if (b->len != DN__TAGREC_LEN)
    return DN_ECORRUPT;
  const unsigned char *p = (const unsigned char *)b->data;
  out->version = get_le64(p);
  out->seq = get_le64(p + 8);
  out->soft_until = get_le64(p + 16);
  out->prev_version = get_le64(p + 24);
  return 0;
}

/* ---- representations: the public accessors of struct dn_rep (record.h) -----
 */
dn_rep *dn_rep_ref(dn_rep *rep) {
  if (rep)
    dn_blob_ref(rep->blob);
  return rep;
}

void dn_rep_unref(dn_rep *rep) {
  if (rep)
    dn_blob_unref(rep->blob);
}

int dn_rep_status(const dn_rep *rep) { return rep->status; }
dn_slice dn_rep_body(const dn_rep *rep) { return rep->body; }
dn_slice dn_rep_etag(const dn_rep *rep) { return rep->etag; }
uint64_t dn_rep_last_modified(const dn_rep *rep) {
  return rep->last_modified_ms;
}
uint64_t dn_rep_created(const dn_rep *rep) { return rep->created_ms; }
int dn_rep_cacheable(const dn_rep *rep) {
  return (rep->flags & DN__REC_CACHEABLE) != 0;
}
size_t dn_rep_header_count(const dn_rep *rep) { return rep->nheaders; }
dn_header dn_rep_header(const dn_rep *rep, size_t i) { return rep->headers[i]; }
size_t dn_rep_tag_count(const dn_rep *rep) { return rep->ntags; }
dn_slice dn_rep_tag(const dn_rep *rep, size_t i) { return rep->tags[i].tag; }
size_t dn_rep_vary_count(const dn_rep *rep) { return rep->nvary; }
dn_slice dn_rep_vary(const dn_rep *rep, size_t i) { return rep->vary[i]; }
int64_t dn_rep_ttl(const dn_rep *rep) { return rep->ttl_s; }
int64_t dn_rep_s_maxage(const dn_rep *rep) { return rep->smaxage_s; }
uint64_t dn_rep_expires_at(const dn_rep *rep) { return rep->expires_ms; }
