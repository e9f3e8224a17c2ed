/* test_purge_outbox.c - purges that survive: the outbox file format, its
 * checksums and torn records, adoption of a dead process's file, a purger
 * killed with SIGKILL in the middle of a request whose purge a restarted
 * purger delivers, durability before return, compaction and dropping.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "purge_fixture.h"
#include "purge_internal.h"

static void make_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "/tmp/dn-outbox-XXXXXX");
  assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char path[512];
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

/* Files in dir (not counting dot files). */
static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

typedef struct seen {
  int n, pending, failed, alive;
  char tags[1024];
  char error[256];
  unsigned attempts;
  long pid;
  char identity[200];
} seen;

static int on_entry(void *ud, const dn_outbox_entry *e) {
  seen *s = ud;
  s->n++;
  s->pending += e->state == DN_OUTBOX_PENDING;
  s->failed += e->state == DN_OUTBOX_FAILED;
  s->alive += e->owner_alive;
  s->pid = e->owner_pid;
  snprintf(s->identity, sizeof s->identity, "%s", e->identity);
  if (e->state == DN_OUTBOX_FAILED) {
    snprintf(s->error, sizeof s->error, "%s", e->error);
    s->attempts = e->attempts;
  }
  for (size_t i = 0; i < e->ntags; i++) {
    size_t len = strlen(s->tags);
    snprintf(s->tags + len, sizeof s->tags - len, "%.*s ", (int)e->tags[i].len,
             e->tags[i].ptr);
  }
  return 0;
}

static seen scan(const char *dir, size_t *corrupt) {
  seen s;
  memset(&s, 0, sizeof s);
  assert_int_equal(dn_outbox_scan(dir, on_entry, &s, corrupt, NULL), 0);
  return s;
}

static dn__strlist list_of(const char *const *items, size_t n) {
  dn__strlist l;
  dn__strlist_init(&l);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(dn__strlist_add(&l, items[i], strlen(items[i])), 0);
  return l;
}

/* ---- the ledger and its file ----------------------------------------- */

static void ledger_states(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  dn__ledger *l;
  size_t adopted;
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  assert_int_equal(adopted, 0);
  const char *t1[] = {"a", "b"}, *t2[] = {"c"}, *t3[] = {"d"};
  const char *u1[] = {"app://self/x"};
  dn__strlist a = list_of(t1, 2), b = list_of(t2, 1), c = list_of(t3, 1);
  dn__strlist ua = list_of(u1, 1), none = list_of(NULL, 0);
  uint64_t i1, i2, i3;
  assert_int_equal(dn__ledger_put(l, &a, &ua, 1000, NULL, 0, &i1), 0);
  assert_int_equal(dn__ledger_put(l, &b, &none, 2000, NULL, 0, &i2), 0);
  assert_int_equal(dn__ledger_put(l, &c, &none, 3000, &i2, 1, &i3), 0);
  assert_true(i1 < i2 && i2 < i3);
  assert_int_equal(dn__ledger_count(l, DN_OUTBOX_PENDING), 2);
  assert_int_equal(dn__ledger_fail(l, &i1, 1, 8, "fastly: HTTP 503"), 0);
  assert_int_equal(dn__ledger_count(l, DN_OUTBOX_FAILED), 1);
  /* While the ledger is open, its owner is alive. */
  seen s = scan(dir, NULL);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.alive, 2);
  assert_int_equal(s.pid, (long)getpid());
  dn__ledger_close(l);
  size_t corrupt = 0;
  s = scan(dir, &corrupt);
  assert_int_equal(corrupt, 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.pending, 1);
  assert_int_equal(s.failed, 1);
  assert_int_equal(s.alive, 0);
  assert_string_equal(s.error, "fastly: HTTP 503");
  assert_int_equal(s.attempts, 8);
  assert_non_null(strstr(s.tags, "a b "));
  assert_non_null(strstr(s.tags, "d "));
  assert_null(strstr(s.tags, "c "));
  /* A new ledger adopts both: the failed one stays failed. */
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  assert_int_equal(adopted, 2);
  assert_int_equal(dn__ledger_count(l, DN_OUTBOX_PENDING), 1);
  assert_int_equal(dn__ledger_count(l, DN_OUTBOX_FAILED), 1);
  assert_int_equal(count_files(dir), 1); /* the old file is gone */
  dn__ledger_close(l);
  dn__strlist_free(&a);
  dn__strlist_free(&b);
  dn__strlist_free(&c);
  dn__strlist_free(&ua);
  dn__strlist_free(&none);
  remove_dir(dir);
}

/* A write that fails part-way (here: the file size limit, as a full disk
 * would) is cut off again, so the next synced put is whole on replay. */
static void failed_write_leaves_no_fragment(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  dn__ledger *l;
  size_t adopted;
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  const char *ta[] = {"tag-a"}, *tc[] = {"tag-c"};
  const char *tb[] = {"tag-b-with-a-long-name-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
  dn__strlist a = list_of(ta, 1), b = list_of(tb, 1), c = list_of(tc, 1);
  dn__strlist none = list_of(NULL, 0);
  uint64_t id;
  assert_int_equal(dn__ledger_put(l, &a, &none, 1000, NULL, 0, &id), 0);
  DIR *d = opendir(dir);
  struct dirent *de;
  char path[512] = "";
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
  closedir(d);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
  small.rlim_cur = (rlim_t)st.st_size + 40;
  small.rlim_max = rl.rlim_max;
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  int rc = dn__ledger_put(l, &b, &none, 2000, NULL, 0, &id);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
  signal(SIGXFSZ, old);
  assert_int_equal(rc, DN_EIO);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(dn__ledger_put(l, &c, &none, 3000, NULL, 0, &id), 0);
  size_t corrupt = 0;
  seen s = scan(dir, &corrupt);
  assert_int_equal(corrupt, 0);
  assert_non_null(strstr(s.tags, "tag-a "));
  assert_non_null(strstr(s.tags, "tag-c "));
  assert_int_equal(s.n, 2);
  dn__ledger_close(l);
  dn__strlist_free(&a);
  dn__strlist_free(&b);
  dn__strlist_free(&c);
  dn__strlist_free(&none);
  remove_dir(dir);
}

/* Every line is "<XXH64 of the JSON, 16 hex> <JSON>\n". */
static void record_format(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  dn__ledger *l;
  size_t adopted;
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  const char *t[] = {"weather"};
  dn__strlist tags = list_of(t, 1), none = list_of(NULL, 0);
  uint64_t id;
  assert_int_equal(
      dn__ledger_put(l, &tags, &none, 1700000000000ull, NULL, 0, &id), 0);
  DIR *d = opendir(dir);
  struct dirent *de;
  char path[512] = "";
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
  closedir(d);
  FILE *f = fopen(path, "r");
  char line[512];
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  const char *json = "{\"op\":\"put\",\"id\":1,\"at\":1700000000000,"
                     "\"tags\":[\"weather\"],\"uris\":[]}";
  char want[512];
  snprintf(want, sizeof want, "%016llx %s\n",
           (unsigned long long)XXH64(json, strlen(json), 0), json);
  assert_string_equal(line, want);
  dn__ledger_close(l);
  dn__strlist_free(&tags);
  dn__strlist_free(&none);
  remove_dir(dir);
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void line_for(char *out, size_t cap, const char *json) {
  snprintf(out, cap, "%016llx %s\n",
           (unsigned long long)XXH64(json, strlen(json), 0), json);
}

/* A torn last record (the crash hit in the middle of a write) and a
 * damaged one are skipped; everything intact survives. */
static void torn_and_corrupt_records(void **state) {
  (void)state;
  char dir[64], path[256], a[256], b[256], c[256], data[1024];
  make_dir(dir, sizeof dir);
  line_for(a, sizeof a,
           "{\"op\":\"put\",\"id\":1,\"at\":5,\"tags\":[\"one\"],\"uris\":[]}");
  line_for(b, sizeof b,
           "{\"op\":\"put\",\"id\":2,\"at\":6,\"tags\":[\"two\"],\"uris\":[]}");
  line_for(c, sizeof c,
           "{\"op\":\"put\",\"id\":3,\"at\":7,\"tags\":[\"three\"],"
           "\"uris\":[]}");
  snprintf(data, sizeof data, "%s%s%.*s", a, b, (int)strlen(c) - 9, c);
  snprintf(path, sizeof path, "%s/outbox-999999-00ff.log", dir);
  write_file(path, data, strlen(data));
  size_t corrupt = 0;
  seen s = scan(dir, &corrupt);
  assert_int_equal(s.n, 2);
  assert_int_equal(corrupt, 1);
  assert_int_equal(s.pid, 999999);
  /* Flip one byte of the first record: its checksum no longer holds. */
  data[30] ^= 0x01;
  write_file(path, data, strlen(data));
  corrupt = 0;
  s = scan(dir, &corrupt);
  assert_int_equal(s.n, 1);
  assert_int_equal(corrupt, 2);
  assert_non_null(strstr(s.tags, "two"));
  /* Garbage, bad fields and bad tags never crash the replay. */
  const char *bad[] = {
      "not a record\n",
      "0000000000000000 {}\n",
      "{\"op\":\"put\"}\n",
      "ffffffffffffffff\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t entries = 9, cor = 0;
    assert_int_equal(
        dn__outbox_replay_buf(bad[i], strlen(bad[i]), &entries, &cor), 0);
    assert_int_equal(entries, 0);
    assert_int_equal(cor, 1);
  }
  const char *fields[] = {
      "{\"op\":\"put\",\"id\":0,\"at\":1,\"tags\":[\"x\"],\"uris\":[]}",
      "{\"op\":\"put\",\"id\":1,\"at\":1,\"tags\":[],\"uris\":[]}",
      "{\"op\":\"put\",\"id\":1,\"at\":1,\"tags\":[\"a b\"],\"uris\":[]}",
      "{\"op\":\"put\",\"id\":1,\"at\":-1,\"tags\":[\"x\"],\"uris\":[]}",
      "{\"op\":\"put\",\"id\":1,\"at\":1,\"tags\":[\"x\"],\"uris\":[3]}",
      "{\"op\":\"eat\",\"ids\":[1]}",
      "{\"op\":\"ack\",\"ids\":3}",
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char l[256];
    line_for(l, sizeof l, fields[i]);
    size_t entries = 9, cor = 0;
    assert_int_equal(dn__outbox_replay_buf(l, strlen(l), &entries, &cor), 0);
    assert_int_equal(entries, 0);
    assert_int_equal(cor, 1);
  }
  remove_dir(dir);
}

/* ---- purgers and the outbox ------------------------------------------- */

static dn_purge_backend webhook_at(const char *url) {
  const char *urls[] = {url};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, NULL, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, NULL), 0);
  return b;
}

/* A purger freed with a request in flight leaves its batch pending; the
 * next purger adopts it and delivers it, and the outbox empties. */
static void adopts_after_restart(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_script(&f.rec, "[{\"delay_ms\":4000}]"), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  fx_start(&f, webhook_at(f.rec.url), &o);
  const char *t[] = {"restart-tag"};
  fx_purge(&f, t, 1);
  char **raw = fx_requests(&f, 1); /* the request is out, unanswered */
  dn_test_recorder_free(raw, 1);
  dn_purger_free(f.p);
  f.p = NULL;
  seen s = scan(dir, NULL);
  assert_int_equal(s.pending, 1);
  assert_int_equal(s.alive, 0);
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 1);
  assert_int_equal(st.delivered, 1);
  raw = fx_requests(&f, 2);
  assert_non_null(strstr(raw[1], "\"restart-tag\""));
  dn_test_recorder_free(raw, 2);
  s = scan(dir, NULL);
  assert_int_equal(s.n, 0);
  fx_done(&f);
  assert_int_equal(count_files(dir), 0); /* a clean exit leaves nothing */
  remove_dir(dir);
}

/* A purge still waiting for its window when the purger is freed (the
 * default durability writes the outbox only when the batch forms) is
 * written to the outbox on the way out, and the next purger sends it. */
static void queued_kept_on_free(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.window_ms = 60000; /* nothing is sent before the free */
  fx_start(&f, webhook_at(f.rec.url), &o);
  const char *t1[] = {"queued-one"}, *t2[] = {"queued-two"};
  fx_purge(&f, t1, 1);
  fx_purge(&f, t2, 1);
  dn_purger_free(f.p);
  f.p = NULL;
  seen s = scan(dir, NULL);
  assert_int_equal(s.pending, 1);
  assert_non_null(strstr(s.tags, "queued-one "));
  assert_non_null(strstr(s.tags, "queued-two "));
  o.window_ms = 20;
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  assert_non_null(strstr(raw[0], "\"queued-one\""));
  assert_non_null(strstr(raw[0], "\"queued-two\""));
  dn_test_recorder_free(raw, 1);
  assert_int_equal(scan(dir, NULL).n, 0);
  fx_done(&f);
  remove_dir(dir);
}

/* An outbox file names the purger that wrote it (backend, profile, a hash
 * of the destinations); a purger adopts only files of its own identity,
 * or any file with adopt_any. Files without a name are "unknown". */
static void adopts_only_its_own(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.window_ms = 60000;
  fx_start(&f, webhook_at("http://user:pw@127.0.0.1:9/hook?k=v"), &o);
  const char *t[] = {"elsewhere"};
  fx_purge(&f, t, 1);
  dn_purger_free(f.p);
  f.p = NULL;
  seen s = scan(dir, NULL);
  assert_int_equal(s.pending, 1);
  assert_non_null(strstr(s.identity, "backend=webhook profile="));
  assert_non_null(strstr(s.identity, " targets="));
  assert_null(strstr(s.identity, "pw"));
  /* Another destination, or another profile: left alone. */
  o.window_ms = 20;
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 0);
  dn_purger_free(f.p);
  fx_options(&f, &o, DN_CDN_FASTLY);
  o.outbox_dir = dir;
  fx_start(&f, webhook_at("http://user:pw@127.0.0.1:9/hook?k=v"), &o);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 0);
  dn_purger_free(f.p);
  assert_int_equal(scan(dir, NULL).pending, 1);
  /* The same purger (other credentials, query) takes it over. */
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.max_attempts = 1;
  fx_start(&f, webhook_at("http://127.0.0.1:9/hook?k=other"), &o);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 1);
  dn_purger_free(f.p);
  /* A file without identity is adopted only with adopt_any. */
  remove_dir(dir);
  make_dir(dir, sizeof dir);
  dn__ledger *l;
  size_t adopted;
  const char *u[] = {"unnamed"};
  dn__strlist tags = list_of(u, 1), none = list_of(NULL, 0);
  uint64_t id;
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  assert_int_equal(dn__ledger_put(l, &tags, &none, 1000, NULL, 0, &id), 0);
  dn__ledger_close(l);
  assert_string_equal(scan(dir, NULL).identity, "");
  o.max_attempts = 0;
  fx_start(&f, webhook_at(f.rec.url), &o);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 0);
  dn_purger_free(f.p);
  o.adopt_any = 1;
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.replayed, 1);
  assert_int_equal(st.delivered, 1);
  char **raw = fx_requests(&f, 1);
  assert_non_null(strstr(raw[0], "\"unnamed\""));
  dn_test_recorder_free(raw, 1);
  fx_done(&f);
  dn__strlist_free(&tags);
  dn__strlist_free(&none);
  remove_dir(dir);
}

/* The child purges into a recorder that never answers and is killed with
 * SIGKILL; a new purger on the same outbox delivers the purge. */
static void survives_kill_9(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  dn_test_recorder rec;
  assert_int_equal(dn_test_recorder_start(&rec), 0);
  assert_int_equal(dn_test_recorder_script(&rec, "[{\"delay_ms\":60000}]"), 0);
  fflush(NULL);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    dn_purger_options o;
    dn_purger_options_init(&o);
    o.profile = DN_CDN_GENERIC;
    o.outbox_dir = dir;
    o.window_ms = 5;
    dn_purger *p;
    if (dn_purger_new(webhook_at(rec.url), &o, &p, NULL))
      _exit(2);
    dn_slice t[] = {dn_slice_from_cstr("killed-mid-flight")};
    if (dn_purger_purge_tags(p, t, 1, NULL))
      _exit(3);
    for (;;)
      pause();
  }
  char **raw;
  int n = dn_test_recorder_requests(&rec, 1, 30000, &raw);
  assert_int_equal(n, 1);
  assert_non_null(strstr(raw[0], "killed-mid-flight"));
  dn_test_recorder_free(raw, n);
  kill(child, SIGKILL);
  int status;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFSIGNALED(status));
  seen s = scan(dir, NULL);
  assert_int_equal(s.pending, 1);
  assert_int_equal(s.alive, 0);
  assert_int_equal(s.pid, (long)child);
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.adopt_any = 1; /* the child's recorder is another destination */
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_true(f.reports[0].delivered);
  raw = fx_requests(&f, 1);
  assert_non_null(strstr(raw[0], "\"killed-mid-flight\""));
  dn_test_recorder_free(raw, 1);
  s = scan(dir, NULL);
  assert_int_equal(s.n, 0);
  fx_done(&f);
  dn_test_recorder_stop(&rec);
  remove_dir(dir);
}

/* With DN_PURGE_SYNC_BEFORE_RETURN the entry is on disk when the call
 * returns, before any request. */
static void durable_before_return(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.durability = DN_PURGE_SYNC_BEFORE_RETURN;
  o.window_ms = 60000; /* nothing is sent until a flush */
  fx_start(&f, webhook_at(f.rec.url), &o);
  const char *t1[] = {"first"}, *t2[] = {"second"};
  fx_purge(&f, t1, 1);
  fx_purge(&f, t2, 1);
  seen s = scan(dir, NULL);
  assert_int_equal(s.pending, 2);
  assert_int_equal(s.alive, 2);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.batches, 1);
  s = scan(dir, NULL);
  assert_int_equal(s.n, 0);
  fx_done(&f);
  remove_dir(dir);
}

/* Once everything is acknowledged the file is emptied. */
static void compacts_when_acknowledged(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  fx_start(&f, webhook_at(f.rec.url), &o);
  for (int i = 0; i < 5; i++) {
    const char *t[] = {"compact-me"};
    fx_purge(&f, t, 1);
    assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  }
  DIR *d = opendir(dir);
  struct dirent *de;
  struct stat st;
  char path[512];
  int files = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    assert_int_equal(stat(path, &st), 0);
    /* Only the hello record naming the purger is left. */
    FILE *fp = fopen(path, "r");
    char line[512];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_non_null(strstr(line, "{\"op\":\"hello\",\"identity\":"));
    assert_int_equal(st.st_size, (off_t)strlen(line));
    fclose(fp);
    files++;
  }
  closedir(d);
  assert_int_equal(files, 1);
  fx_done(&f);
  remove_dir(dir);
}

/* Failed entries stay in the outbox; a purger started with retry_failed
 * sends them again. dn_outbox_drop removes entries of dead processes. */
static void failed_entries_and_drop(void **state) {
  (void)state;
  char dir[64];
  make_dir(dir, sizeof dir);
  fx f;
  fx_init(&f);
  assert_int_equal(dn_test_recorder_default(&f.rec, "{\"status\":500}"), 0);
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_GENERIC);
  o.outbox_dir = dir;
  o.max_attempts = 2;
  fx_start(&f, webhook_at(f.rec.url), &o);
  const char *t[] = {"will-fail"};
  fx_purge(&f, t, 1);
  assert_int_equal(fx_wait_reports(&f, 1), 1);
  assert_false(f.reports[0].delivered);
  dn_purger_free(f.p);
  f.p = NULL;
  seen s = scan(dir, NULL);
  assert_int_equal(s.failed, 1);
  assert_int_equal(s.attempts, 2);
  assert_non_null(strstr(s.error, "HTTP 500"));
  /* Restarted without retry_failed, the entry just stays failed. */
  fx_start(&f, webhook_at(f.rec.url), &o);
  dn_purger_stats st;
  dn_purger_stats_get(f.p, &st);
  assert_int_equal(st.failed_entries, 1);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  dn_purger_free(f.p);
  f.p = NULL;
  /* With retry_failed it is sent again and delivered. */
  assert_int_equal(dn_test_recorder_default(&f.rec, "{\"status\":200}"), 0);
  o.retry_failed = 1;
  fx_start(&f, webhook_at(f.rec.url), &o);
  assert_int_equal(fx_wait_reports(&f, 2), 2);
  assert_true(f.reports[1].delivered);
  dn_purger_free(f.p);
  f.p = NULL;
  assert_int_equal(scan(dir, NULL).n, 0);
  /* Drop: fail one again, add a pending one, then drop. */
  assert_int_equal(dn_test_recorder_default(&f.rec, "{\"status\":500}"), 0);
  o.retry_failed = 0;
  fx_start(&f, webhook_at(f.rec.url), &o);
  fx_purge(&f, t, 1);
  assert_int_equal(fx_wait_reports(&f, 3), 3);
  dn_purger_free(f.p);
  f.p = NULL;
  dn__ledger *l;
  size_t adopted, dropped = 0;
  const char *pt[] = {"still-pending"};
  dn__strlist tags = list_of(pt, 1), none = list_of(NULL, 0);
  uint64_t id;
  assert_int_equal(dn__ledger_open(dir, &l, &adopted, NULL), 0);
  assert_int_equal(dn__ledger_put(l, &tags, &none, 1, NULL, 0, &id), 0);
  /* A live owner's file is left alone. */
  assert_int_equal(dn_outbox_drop(dir, DN_OUTBOX_DROP_ALL, &dropped, NULL), 0);
  assert_int_equal(dropped, 0);
  dn__ledger_close(l);
  s = scan(dir, NULL);
  assert_int_equal(s.failed, 1);
  assert_int_equal(s.pending, 1);
  assert_int_equal(dn_outbox_drop(dir, DN_OUTBOX_DROP_FAILED, &dropped, NULL),
                   0);
  assert_int_equal(dropped, 1);
  s = scan(dir, NULL);
  assert_int_equal(s.failed, 0);
  assert_int_equal(s.pending, 1);
  assert_int_equal(dn_outbox_drop(dir, DN_OUTBOX_DROP_ALL, &dropped, NULL), 0);
  assert_int_equal(dropped, 1);
  assert_int_equal(scan(dir, NULL).n, 0);
  assert_int_equal(dn_outbox_drop(dir, 7, &dropped, NULL), DN_EINVAL);
  dn__strlist_free(&tags);
  dn__strlist_free(&none);
  fx_done(&f);
  remove_dir(dir);
}

static void unusable_outbox(void **state) {
  (void)state;
  dn_purger_options o;
  dn_purger_options_init(&o);
  o.outbox_dir = "/proc/no-such-dir/outbox";
  dn_purger *p = NULL;
  dn_error err = {0};
  const char *urls[] = {"http://127.0.0.1:9/"};
  dn_purge_webhook_options wo = fx_webhook(urls, 1, NULL, 0);
  dn_purge_backend b;
  assert_int_equal(dn_purge_backend_webhook(&wo, &b, NULL), 0);
  assert_int_equal(dn_purger_new(b, &o, &p, &err), DN_EIO);
  assert_null(p);
  assert_non_null(strstr(err.text, "outbox"));
  dn_purge_backend_free(&b);
  /* A missing directory has no entries. */
  seen s = scan("/tmp/dn-no-such-outbox-dir", NULL);
  assert_int_equal(s.n, 0);
}

/* ---- allocation failures --------------------------------------------- */

static int ledger_ops(void *ud) {
  const char *dir = ud;
  dn__ledger *l;
  size_t adopted;
  if (dir) { /* every run starts from an empty directory */
    remove_dir(dir);
    mkdir(dir, 0700);
  }
  int rc = dn__ledger_open(dir, &l, &adopted, NULL);
  if (rc)
    return rc;
  dn__strlist tags, none;
  dn__strlist_init(&tags);
  dn__strlist_init(&none);
  uint64_t id = 0, id2 = 0;
  rc = dn__strlist_add(&tags, "t", 1);
  if (rc == 0)
    rc = dn__ledger_put(l, &tags, &none, 1, NULL, 0, &id);
  if (rc == 0)
    rc = dn__ledger_put(l, &tags, &none, 1, &id, 1, &id2);
  if (rc == 0)
    rc = dn__ledger_fail(l, &id2, 1, 1, "x");
  if (rc == 0)
    rc = dn__ledger_ack(l, &id2, 1);
  dn__strlist_free(&tags);
  dn__ledger_close(l);
  return rc == DN_EIO ? DN_ENOMEM : rc;
}

static void ledger_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(ledger_ops, NULL); /* memory only */
  char dir[64];
  make_dir(dir, sizeof dir);
  dn_test_every_alloc_failure(ledger_ops, dir);
  remove_dir(dir);
}

static int replay_ops(void *ud) {
  (void)ud;
  char a[256], b[256], data[600];
  line_for(a, sizeof a,
           "{\"op\":\"put\",\"id\":1,\"at\":5,\"tags\":[\"one\",\"two\"],"
           "\"uris\":[\"app://self/u\"]}");
  line_for(b, sizeof b,
           "{\"op\":\"fail\",\"ids\":[1],\"attempts\":2,"
           "\"error\":\"e\"}");
  snprintf(data, sizeof data, "%s%s", a, b);
  size_t entries = 0, corrupt = 0;
  int rc = dn__outbox_replay_buf(data, strlen(data), &entries, &corrupt);
  if (rc)
    return rc;
  return entries == 1 && corrupt == 0 ? 0 : -1;
}

static void replay_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(replay_ops, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ledger_states),
      cmocka_unit_test(record_format),
      cmocka_unit_test(failed_write_leaves_no_fragment),
      cmocka_unit_test(torn_and_corrupt_records),
      cmocka_unit_test(adopts_after_restart),
      cmocka_unit_test(queued_kept_on_free),
      cmocka_unit_test(adopts_only_its_own),
      cmocka_unit_test(survives_kill_9),
      cmocka_unit_test(durable_before_return),
      cmocka_unit_test(compacts_when_acknowledged),
      cmocka_unit_test(failed_entries_and_drop),
      cmocka_unit_test(unusable_outbox),
      cmocka_unit_test(ledger_out_of_memory),
      cmocka_unit_test(replay_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
