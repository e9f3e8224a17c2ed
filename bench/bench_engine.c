/* bench_engine.c - the engine's hot paths, each against its baseline in the
 * same run:
 *
 *   hit        dn_engine_get of a cached three-level page (10 holes, 4 KiB)
 *              vs. the floor: a plain hash-table lookup of the same keys
 *              that returns a pointer;
 *   304        get + dn_rep_respond with a matching If-None-Match;
 *   recompose  after one leaf of a 1 + 10 + 100 tree is purged, the time
 *              and render calls to get the root, vs. re-rendering the whole
 *              tree (renderers spin about 20 us each);
 *   big tag    invalidating a tag carried by N cached resources (default
 *              1,000,000), and the next get of one of them;
 *   memory     bytes of overhead per cached entry beyond key and body.
 *
 * usage: bench_engine [--quick] [--big N] [--only hit|recompose|big|memory]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "donut.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, int rc, const dn_error *err) {
  fprintf(stderr, "bench_engine: %s: %s %s\n", what, dn_strerror(rc),
          err ? err->text : "");
  exit(1);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

/* ---- the page for the hit path: page -> 5 sections -> 1 leaf each ----- */
static int r_page(dn_render *r, void *ud) {
  (void)ud;
  char filler[300];
  memset(filler, 'p', sizeof filler);
  dn_render_write(r, filler, sizeof filler);
  for (int i = 0; i < 5; i++) {
    char uri[64];
    snprintf(uri, sizeof uri, "app://self/section?n=%d", i);
    dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
  }
  return 0;
}

static int r_section(dn_render *r, void *ud) {
  (void)ud;
  char filler[400], uri[64];
  memset(filler, 's', sizeof filler);
  dn_render_write(r, filler, sizeof filler);
  snprintf(uri, sizeof uri, "app://self/leaf?n=%s", dn_render_param(r, "n"));
  dn_render_add_tag(r, "section");
  return dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
}

static int r_leaf(dn_render *r, void *ud) {
  (void)ud;
  char filler[420];
  memset(filler, 'l', sizeof filler);
  dn_render_add_tag(r, "leaf");
  dn_render_set_ttl(r, 3600);
  return dn_render_write(r, filler, sizeof filler);
}

/* The floor: open addressing over XXH3 of the key, returning a pointer. */
typedef struct floor_slot {
  const char *key;
  size_t len;
  void *value;
} floor_slot;

static void *floor_get(floor_slot *t, size_t mask, const char *k, size_t n) {
  for (size_t i = XXH3_64bits(k, n) & mask;; i = (i + 1) & mask) {
    if (!t[i].key)
      return NULL;
    if (t[i].len == n && memcmp(t[i].key, k, n) == 0)
      return t[i].value;
  }
}

static void floor_put(floor_slot *t, size_t mask, const char *k, size_t n,
                      void *v) {
  size_t i = XXH3_64bits(k, n) & mask;
  while (t[i].key)
    i = (i + 1) & mask;
  t[i] = (floor_slot){k, n, v};
}

#define PAGES 1000

static void bench_hit(int quick) {
  dn_engine *e;
  int rc = dn_engine_new(NULL, &e);
  if (rc)
    die("engine", rc, NULL);
  dn_engine_register(e, "app://self/page{?id}", "page", r_page, NULL);
  dn_engine_register(e, "app://self/section{?n}", "section", r_section, NULL);
  dn_engine_register(e, "app://self/leaf{?n}", "leaf", r_leaf, NULL);
  static char uris[PAGES][48];
  static size_t lens[PAGES];
  static floor_slot table[4096];
  for (int i = 0; i < PAGES; i++) {
    lens[i] =
        (size_t)snprintf(uris[i], sizeof uris[i], "app://self/page?id=%d", i);
    dn_rep *rep;
    dn_error err;
    if ((rc = dn_engine_get(e, uris[i], lens[i], NULL, 0, &rep, NULL, &err)))
      die("warm get", rc, &err);
    if (i == 0)
      printf("page: %zu bytes, %zu closure tags\n", dn_rep_body(rep).len,
             dn_rep_tag_count(rep));
    floor_put(table, 4095, uris[i], lens[i], rep);
  }
  long iters = quick ? 200000 : 2000000;
  double hit[5], flo[5], flo_ref[5], cond[5];
  volatile size_t sink = 0;
  dn_header inm = {dn_slice_from_cstr("If-None-Match"), {0}};
  for (int round = 0; round < 5; round++) {
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      dn_rep *rep;
      int p = (int)(i % PAGES);
      dn_engine_get(e, uris[p], lens[p], NULL, 0, &rep, NULL, NULL);
      sink += dn_rep_body(rep).len;
      dn_rep_unref(rep);
    }
    hit[round] = (now_ns() - t0) / (double)iters;
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      int p = (int)(i % PAGES);
      dn_rep *rep = floor_get(table, 4095, uris[p], lens[p]);
      sink += dn_rep_body(rep).len;
    }
    flo[round] = (now_ns() - t0) / (double)iters;
    /* Context, not the baseline: the floor plus the reference count any
     * cache that hands out shared, freeable values must take. */
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      int p = (int)(i % PAGES);
      dn_rep *rep = dn_rep_ref(floor_get(table, 4095, uris[p], lens[p]));
      sink += dn_rep_body(rep).len;
      dn_rep_unref(rep);
    }
    flo_ref[round] = (now_ns() - t0) / (double)iters;
    long citers = iters / 4;
    t0 = now_ns();
    for (long i = 0; i < citers; i++) {
      dn_rep *rep;
      int p = (int)(i % PAGES);
      dn_engine_get(e, uris[p], lens[p], NULL, 0, &rep, NULL, NULL);
      inm.value = dn_rep_etag(rep);
      dn_http_request req = {dn_slice_from_cstr("GET"),
                             (const dn_http_field *)&inm, 1};
      dn_respond_options o;
      dn_respond_options_init(&o);
      o.now_ms = 1700000000000ull;
      dn_http_result res;
      if (dn_rep_respond(rep, &req, &o, &res, NULL) == 0) {
        sink += (size_t)res.status;
        dn_http_result_free(&res);
      }
      dn_rep_unref(rep);
    }
    cond[round] = (now_ns() - t0) / (double)citers;
  }
  double h = median(hit, 5), f = median(flo, 5), c = median(cond, 5);
  double fr = median(flo_ref, 5);
  printf("%-34s %10.0f ns/op %12.0f ops/s\n", "hit: dn_engine_get", h, 1e9 / h);
  printf("%-34s %10.0f ns/op %12.0f ops/s\n", "floor: hash lookup", f, 1e9 / f);
  printf("%-34s %10.2f x floor\n", "hit / floor", h / f);
  printf("%-34s %10.0f ns/op\n", "(context) floor + ref/unref", fr);
  printf("%-34s %10.0f ns/op %12.0f ops/s\n", "304: get + respond (INM)", c,
         1e9 / c);
  for (int i = 0; i < PAGES; i++)
    dn_rep_unref(floor_get(table, 4095, uris[i], lens[i]));
  dn_engine_free(e);
  (void)sink;
}

/* ---- recompose: a 1 + 10 + 100 tree ----------------------------------- */
static unsigned tree_renders;

static void spin_us(double us) {
  double end = now_ns() + us * 1000;
  while (now_ns() < end)
    ;
}

static int r_tree(dn_render *r, void *ud) {
  (void)ud;
  tree_renders++;
  spin_us(20);
  const char *lv = dn_render_param(r, "level");
  const char *ix = dn_render_param(r, "i");
  int level = lv ? atoi(lv) : 0, i = ix ? atoi(ix) : 0;
  dn_render_add_tag(r, "tree");
  char text[64];
  snprintf(text, sizeof text, "[%d.%d]", level, i);
  dn_render_write_str(r, text);
  if (level >= 2)
    return 0;
  for (int c = 0; c < 10; c++) {
    char uri[64];
    snprintf(uri, sizeof uri, "app://self/tree?i=%d&level=%d", i * 10 + c,
             level + 1);
    dn_render_embed(r, uri, DN_EMBED_CACHEABLE);
  }
  return 0;
}

static void bench_recompose(int quick) {
  dn_engine *e;
  dn_engine_new(NULL, &e);
  dn_engine_register(e, "app://self/tree{?i,level}", "tree", r_tree, NULL);
  const char *root = "app://self/tree?i=0&level=0";
  dn_rep *rep;
  dn_engine_get(e, root, strlen(root), NULL, 0, &rep, NULL, NULL);
  dn_rep_unref(rep);
  int rounds = quick ? 20 : 200;
  double *one = malloc(sizeof(double) * (size_t)rounds);
  double *all = malloc(sizeof(double) * (size_t)rounds);
  unsigned one_renders = 0, all_renders = 0;
  for (int k = 0; k < rounds; k++) {
    char leaf[64];
    snprintf(leaf, sizeof leaf, "app://self/tree?i=%d&level=2", k % 100);
    dn_engine_purge(e, leaf, strlen(leaf), NULL);
    tree_renders = 0;
    double t0 = now_ns();
    dn_engine_get(e, root, strlen(root), NULL, 0, &rep, NULL, NULL);
    one[k] = now_ns() - t0;
    one_renders = tree_renders;
    dn_rep_unref(rep);
    dn_slice t = dn_slice_from_cstr("tree");
    dn_engine_invalidate_tags(e, &t, 1, NULL);
    tree_renders = 0;
    t0 = now_ns();
    dn_engine_get(e, root, strlen(root), NULL, 0, &rep, NULL, NULL);
    all[k] = now_ns() - t0;
    all_renders = tree_renders;
    dn_rep_unref(rep);
  }
  double o = median(one, rounds), a = median(all, rounds);
  printf("%-34s %10.1f us   %u render call(s)\n",
         "recompose after one leaf purged", o / 1000, one_renders);
  printf("%-34s %10.1f us   %u render calls\n", "full re-render of the tree",
         a / 1000, all_renders);
  printf("%-34s %10.1f x faster\n", "recompose vs re-render", a / o);
  free(one);
  free(all);
  dn_engine_free(e);
}

/* ---- big tag ----------------------------------------------------------- */
static int r_item(dn_render *r, void *ud) {
  (void)ud;
  dn_render_add_tag(r, "big");
  return dn_render_write_str(r, "item body");
}

static void bench_big_tag(long n) {
  dn_store_memory_options mo;
  dn_store_memory_options_init(&mo);
  mo.max_bytes = (size_t)4 << 30;
  dn_store *store;
  dn_store_memory_new(&mo, &store);
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.store = store;
  dn_engine *e;
  dn_engine_new(&o, &e);
  dn_engine_register(e, "app://self/item{?id}", "item", r_item, NULL);
  double t0 = now_ns();
  char uri[64];
  for (long i = 0; i < n; i++) {
    size_t len = (size_t)snprintf(uri, sizeof uri, "app://self/item?id=%ld", i);
    dn_rep *rep;
    int rc = dn_engine_get(e, uri, len, NULL, 0, &rep, NULL, NULL);
    if (rc)
      die("fill", rc, NULL);
    dn_rep_unref(rep);
  }
  double fill = now_ns() - t0;
  dn_store_stats st;
  dn_store_stats_get(store, &st);
  dn_slice t = dn_slice_from_cstr("big");
  t0 = now_ns();
  int rc = dn_engine_invalidate_tags(e, &t, 1, NULL);
  double inv = now_ns() - t0;
  if (rc)
    die("invalidate", rc, NULL);
  size_t len =
      (size_t)snprintf(uri, sizeof uri, "app://self/item?id=%ld", n / 2);
  dn_rep *rep;
  dn_get_info info;
  t0 = now_ns();
  dn_engine_get(e, uri, len, NULL, 0, &rep, &info, NULL);
  double next = now_ns() - t0;
  dn_rep_unref(rep);
  printf("%-34s %ld resources, filled in %.1f s, %llu store items\n", "big tag",
         n, fill / 1e9, (unsigned long long)st.items);
  printf("%-34s %10.1f us\n", "invalidate(tag on all of them)", inv / 1000);
  printf("%-34s %10.1f us   (%u render)\n", "next get of one of them",
         next / 1000, info.renders);
  dn_engine_free(e);
  dn_store_free(store);
}

/* ---- memory ------------------------------------------------------------ */
static void bench_memory(void) {
  dn_store *store;
  dn_store_memory_new(NULL, &store);
  dn_engine_options o;
  dn_engine_options_init(&o);
  o.store = store;
  dn_engine *e;
  dn_engine_new(&o, &e);
  dn_engine_register(e, "app://self/item{?id}", "item", r_item, NULL);
  dn_store_stats before, after;
  dn_store_stats_get(store, &before);
  long n = 20000;
  size_t key_body = 0;
  char uri[64];
  for (long i = 0; i < n; i++) {
    size_t len = (size_t)snprintf(uri, sizeof uri, "app://self/item?id=%ld", i);
    dn_rep *rep;
    dn_engine_get(e, uri, len, NULL, 0, &rep, NULL, NULL);
    key_body += len + dn_rep_body(rep).len;
    dn_rep_unref(rep);
  }
  dn_store_stats_get(store, &after);
  double per = (double)(after.bytes - before.bytes - key_body) / (double)n;
  printf("%-34s %10.0f bytes per cached resource (shell + view + keys, "
         "store accounting)\n",
         "overhead beyond key and body", per);
  dn_engine_free(e);
  dn_store_free(store);
}

int main(int argc, char **argv) {
  int quick = 0;
  long big = 1000000;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1, big = 100000;
    else if (strcmp(argv[i], "--big") == 0 && i + 1 < argc)
      big = atol(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: bench_engine [--quick] [--big N] "
                      "[--only hit|recompose|big|memory]\n");
      return 2;
    }
  }
#define RUN(name, call)                                                        \
  if (!only || strcmp(only, name) == 0)                                        \
  call
  RUN("hit", bench_hit(quick));
  RUN("recompose", bench_recompose(quick));
  RUN("big", bench_big_tag(big));
  RUN("memory", bench_memory());
#undef RUN
  return 0;
}
