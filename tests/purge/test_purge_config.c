/* test_purge_config.c - the CDN configuration from the environment and a
 * JSON file, .edgerc files, and the rule that no credential ever appears
 * in an error text or a description; plus purgers built from a
 * configuration purging into a local recorder.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "purge_fixture.h"
#include "purge_internal.h"

static const char *const env_vars[] = {"DONUT_CONFIG",
                                       "DONUT_CDN",
                                       "DONUT_PURGER",
                                       "DONUT_OUTBOX",
                                       "DONUT_PURGE_URLS",
                                       "DONUT_PURGE_SOFT",
                                       "DONUT_PURGE_WINDOW_MS",
                                       "DONUT_PURGE_MAX_ATTEMPTS",
                                       "DONUT_PURGE_BACKOFF_MS",
                                       "DONUT_PURGE_MAX_BACKOFF_MS",
                                       "DONUT_PURGE_TIMEOUT_MS",
                                       "DONUT_FASTLY_TOKEN",
                                       "DONUT_FASTLY_SERVICE",
                                       "DONUT_FASTLY_API_URL",
                                       "DONUT_FASTLY_MAX_KEYS",
                                       "DONUT_CLOUDFLARE_TOKEN",
                                       "DONUT_CLOUDFLARE_ZONE",
                                       "DONUT_CLOUDFLARE_API_URL",
                                       "DONUT_CLOUDFLARE_MAX_TAGS",
                                       "DONUT_AKAMAI_EDGERC",
                                       "DONUT_AKAMAI_SECTION",
                                       "DONUT_AKAMAI_NETWORK",
                                       "DONUT_AKAMAI_ACTION",
                                       "DONUT_AKAMAI_API_URL",
                                       "XDG_STATE_HOME"};

static int clear_env(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
    unsetenv(env_vars[i]);
  return 0;
}

static char g_dir[64];

static void tmpdir(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/dn-config-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
}

static void write_text(const char *name, const char *text, char *path,
                       size_t cap) {
  snprintf(path, cap, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void rm(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  unlink(path);
}

static const char *const EDGERC =
    "; Akamai credentials\n"
    "[default]\n"
    "client_secret = dflt-secret-AAAA=\n"
    "host = akab-default.luna.akamaiapis.net\n"
    "access_token = akab-access-default\n"
    "client_token = akab-client-default\n"
    "\n"
    "[ccu]\r\n"
    "client_secret=ccu-SECRET-value-0123456789==\r\n"
    "host = https://akab-ccu.luna.akamaiapis.net/\r\n"
    "access_token = akab-access-ccu\r\n"
    "client_token = akab-client-ccu\r\n"
    "max-body = 4096\r\n"
    "# done\n";

/* ---- the environment -------------------------------------------------- */

static void from_environment(void **state) {
  (void)state;
  fx f;
  fx_init(&f);
  setenv("DONUT_CDN", "fastly", 1);
  setenv("DONUT_FASTLY_TOKEN", "env-fastly-SECRET-42", 1);
  setenv("DONUT_FASTLY_SERVICE", "SVCenv", 1);
  setenv("DONUT_FASTLY_API_URL", f.rec.url, 1);
  setenv("DONUT_PURGE_SOFT", "1", 1);
  setenv("DONUT_PURGE_WINDOW_MS", "30", 1);
  setenv("DONUT_OUTBOX", "none", 1);
  dn_cdn_config *c = NULL;
  dn_error err = {0};
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), 0);
  assert_int_equal(dn_cdn_config_profile(c), DN_CDN_FASTLY);
  assert_string_equal(dn_cdn_config_purger(c), "fastly");
  assert_null(dn_cdn_config_outbox(c));
  char desc[1024];
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_non_null(strstr(desc, "cdn=fastly purger=fastly"));
  assert_non_null(strstr(desc, "fastly.token=(set)"));
  assert_non_null(strstr(desc, "fastly.service=SVCenv"));
  assert_non_null(strstr(desc, "window_ms=30"));
  assert_null(strstr(desc, "SECRET"));
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_NONE); /* the configuration's profile applies */
  o.window_ms = 0;
  o.size = 0; /* not initialised: refused, nothing created */
  assert_int_equal(dn_purger_new_from_config(c, &o, &f.p, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_purger_options_init"));
  o.size = sizeof o;
  assert_int_equal(dn_purger_new_from_config(c, &o, &f.p, &err), 0);
  assert_string_equal(dn_purger_name(f.p), "fastly");
  const char *t[] = {"weather"};
  fx_purge(&f, t, 1);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  assert_non_null(strstr(raw[0], "POST /service/SVCenv/purge HTTP/1.1\r\n"));
  assert_non_null(strstr(raw[0], "Fastly-Key: env-fastly-SECRET-42\r\n"));
  assert_non_null(strstr(raw[0], "Fastly-Soft-Purge: 1\r\n"));
  /* Fastly keys for the fastly profile. */
  char *keys = fx_keys_json(DN_CDN_FASTLY, t, 1, 0, 100);
  assert_non_null(strstr(raw[0], keys));
  free(keys);
  dn_test_recorder_free(raw, 1);
  fx_done(&f);
  dn_cdn_config_free(c);
}

/* Varnish servers as a comma-separated list; a generic profile with URLs
 * gets the webhook; DONUT_PURGER overrides. */
static void purger_choice(void **state) {
  (void)state;
  dn_cdn_config *c;
  setenv("DONUT_OUTBOX", "none", 1);
  setenv("DONUT_CDN", "varnish", 1);
  setenv("DONUT_PURGE_URLS", " http://127.0.0.1:6081/ ,http://[::1]:6082 ,", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_string_equal(dn_cdn_config_purger(c), "varnish");
  char desc[512];
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_non_null(
      strstr(desc, "url=http://127.0.0.1:6081 url=http://[::1]:6082"));
  dn_cdn_config_free(c);
  setenv("DONUT_CDN", "generic", 1);
  setenv("DONUT_PURGE_URLS", "https://user:hook-PASSWORD@hooks.example/purge",
         1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_string_equal(dn_cdn_config_purger(c), "webhook");
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_null(strstr(desc, "PASSWORD"));
  assert_non_null(strstr(desc, "url=https://hooks.example"));
  dn_cdn_config_free(c);
  /* An API base URL through a proxy with credentials shows no password. */
  setenv("DONUT_FASTLY_API_URL", "https://user:proxy-PASSWORD@proxy.example/x",
         1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_null(strstr(desc, "PASSWORD"));
  assert_non_null(strstr(desc, "fastly.api_url=https://proxy.example"));
  dn_cdn_config_free(c);
  unsetenv("DONUT_FASTLY_API_URL");
  /* Found by fuzzing: a value cannot forge a key or a log line. */
  setenv("DONUT_OUTBOX", "/x\nfake line fastly.token=SECRET", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_non_null(strstr(desc, "outbox=/x?fake?line?fastly.token=SECRET"));
  assert_null(strchr(desc, '\n'));
  dn_cdn_config_free(c);
  setenv("DONUT_OUTBOX", "none", 1);
  unsetenv("DONUT_PURGE_URLS");
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_null(dn_cdn_config_purger(c));
  dn_purger *p = NULL;
  assert_int_equal(dn_purger_new_from_config(c, NULL, &p, NULL), DN_ENOTFOUND);
  dn_cdn_config_free(c);
  setenv("DONUT_CDN", "bunny", 1);
  setenv("DONUT_PURGER", "none", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_int_equal(dn_cdn_config_profile(c), DN_CDN_BUNNY);
  assert_null(dn_cdn_config_purger(c));
  dn_cdn_config_free(c);
  setenv("DONUT_PURGER", "carrier-pigeon", 1);
  dn_error err;
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), DN_ECONFIG);
  clear_env(NULL);
}

static void outbox_defaults(void **state) {
  (void)state;
  dn_cdn_config *c;
  setenv("XDG_STATE_HOME", "/var/tmp/xdg", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_string_equal(dn_cdn_config_outbox(c), "/var/tmp/xdg/donut/outbox");
  dn_cdn_config_free(c);
  unsetenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (home && *home == '/') {
    char want[512];
    snprintf(want, sizeof want, "%s/.local/state/donut/outbox", home);
    assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
    assert_string_equal(dn_cdn_config_outbox(c), want);
    dn_cdn_config_free(c);
  }
  setenv("DONUT_OUTBOX", "/srv/outbox", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, NULL), 0);
  assert_string_equal(dn_cdn_config_outbox(c), "/srv/outbox");
  dn_cdn_config_free(c);
  /* A parsed configuration reads no environment. */
  assert_int_equal(dn_cdn_config_parse("{}", 2, NULL, &c, NULL), 0);
  assert_null(dn_cdn_config_outbox(c));
  assert_int_equal(dn_cdn_config_profile(c), DN_CDN_NONE);
  dn_cdn_config_free(c);
  clear_env(NULL);
}

/* ---- the JSON file --------------------------------------------------- */

static void json_file_and_overrides(void **state) {
  (void)state;
  tmpdir();
  char rc_path[256], cfg_path[256];
  write_text("edgerc", EDGERC, rc_path, sizeof rc_path);
  write_text(
      "donut.json",
      "{\"cdn\":\"akamai\",\"outbox\":\"none\","
      "\"purge\":{\"window_ms\":25,\"max_attempts\":4,"
      "\"backoff_ms\":10,\"max_backoff_ms\":20,\"timeout_ms\":900,"
      "\"soft\":false},"
      "\"akamai\":{\"edgerc\":\"edgerc\",\"section\":\"ccu\","
      "\"network\":\"staging\",\"action\":\"delete\"},"
      "\"fastly\":{\"token\":\"json-fastly-SECRET\",\"service\":\"S1\"}}",
      cfg_path, sizeof cfg_path);
  dn_cdn_config *c;
  dn_error err = {0};
  setenv("DONUT_CONFIG", cfg_path, 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), 0);
  assert_int_equal(dn_cdn_config_profile(c), DN_CDN_AKAMAI);
  assert_string_equal(dn_cdn_config_purger(c), "akamai");
  char desc[1024];
  dn_cdn_config_describe(c, desc, sizeof desc);
  assert_non_null(strstr(desc, "akamai.credentials=(set)"));
  assert_non_null(strstr(desc, "fastly.token=(set)"));
  assert_null(strstr(desc, "SECRET"));
  assert_null(strstr(desc, "akab-"));
  dn_cdn_config_free(c);
  /* The environment overrides the file, key by key. */
  fx f;
  fx_init(&f);
  setenv("DONUT_AKAMAI_API_URL", f.rec.url, 1);
  setenv("DONUT_AKAMAI_NETWORK", "production", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), 0);
  f.now = 1700000000000ull;
  f.rand_byte = 7;
  dn_purger_options o;
  fx_options(&f, &o, DN_CDN_NONE);
  o.window_ms = o.backoff_ms = o.max_backoff_ms = o.timeout_ms = 0;
  assert_int_equal(dn_purger_new_from_config(c, &o, &f.p, &err), 0);
  const char *t[] = {"from-json"};
  fx_purge(&f, t, 1);
  assert_int_equal(dn_purger_drain(f.p, 30000), 0);
  char **raw = fx_requests(&f, 1);
  assert_non_null(strstr(raw[0], "POST /ccu/v3/delete/tag/production HTTP"));
  assert_non_null(strstr(raw[0], "client_token=akab-client-ccu;"));
  assert_non_null(strstr(raw[0], "access_token=akab-access-ccu;"));
  dn_test_recorder_free(raw, 1);
  fx_done(&f);
  dn_cdn_config_free(c);
  rm("edgerc");
  rm("donut.json");
  rmdir(g_dir);
  clear_env(NULL);
}

static void expect_config_error(const char *json, int code,
                                const char *needle) {
  dn_cdn_config *c = NULL;
  dn_error err = {0};
  int rc = dn_cdn_config_parse(json, strlen(json), g_dir, &c, &err);
  if (rc != code)
    fail_msg("%s: got %s (%s)", json, dn_strerror(rc), err.text);
  assert_null(c);
  if (needle && !strstr(err.text, needle))
    fail_msg("%s: message '%s' lacks '%s'", json, err.text, needle);
  assert_null(strstr(err.text, "SECRET"));
}

static void config_errors(void **state) {
  (void)state;
  tmpdir();
  expect_config_error("{\"cdn\":\"fastly\",\"fastly\":{\"service\":\"S\"}}",
                      DN_ECONFIG, "DONUT_FASTLY_TOKEN");
  expect_config_error(
      "{\"cdn\":\"fastly\",\"fastly\":{\"token\":\"SECRET-1\"}}", DN_ECONFIG,
      "DONUT_FASTLY_SERVICE");
  expect_config_error("{\"cdn\":\"cloudflare\",\"cloudflare\":{\"token\":"
                      "\"SECRET-2\",\"zone\":\"z/../x\"}}",
                      DN_ECONFIG, "zone");
  expect_config_error("{\"cdn\":\"varnish\"}", DN_ECONFIG, "DONUT_PURGE_URLS");
  expect_config_error(
      "{\"cdn\":\"varnish\",\"purge\":{\"urls\":[\"ftp://x\"]}}", DN_ECONFIG,
      "http");
  expect_config_error("{\"cdn\":\"mystery\"}", DN_ECONFIG, "cdn");
  expect_config_error("{\"cdn\":\"fastly\",\"fastly\":{\"tokn\":\"SECRET\"}}",
                      DN_ECONFIG, "fastly.tokn");
  expect_config_error("{\"purge\":{\"window_ms\":-5}}", DN_ECONFIG,
                      "purge.window_ms");
  expect_config_error("{\"purge\":{\"soft\":\"yes\"}}", DN_ECONFIG,
                      "purge.soft");
  expect_config_error("{\"purge\":[]}", DN_ECONFIG, "purge");
  expect_config_error("[1]", DN_ECONFIG, "object");
  expect_config_error("{\"fastly\":{\"token\":\"SECRET\"} ", DN_EJSON, NULL);
  expect_config_error("{\"cdn\":\"akamai\",\"akamai\":{\"edgerc\":"
                      "\"missing-edgerc\"}}",
                      DN_EIO, "missing-edgerc");
  /* Found by fuzzing: URLs are checked even when the purger ignores them,
   * and a description never cuts a pair in half. */
  expect_config_error("{\"purge\":{\"urls\":[\"p//a/\"]}}", DN_ECONFIG,
                      "purge.urls");
  dn_cdn_config *cut;
  const char *fastly = "{\"cdn\":\"fastly\",\"fastly\":{\"token\":\"t\","
                       "\"service\":\"s\"}}";
  assert_int_equal(
      dn_cdn_config_parse(fastly, strlen(fastly), NULL, &cut, NULL), 0);
  char small[48];
  dn_cdn_config_describe(cut, small, sizeof small);
  assert_string_equal(small, "cdn=fastly purger=fastly fastly.service=s");
  dn_cdn_config_free(cut);
  expect_config_error("{\"akamai\":{\"action\":\"nuke\"}}", DN_ECONFIG,
                      "akamai.action");
  expect_config_error("{\"webhook\":{\"headers\":{\"X\":1}}}", DN_ECONFIG,
                      "webhook.headers");
  dn_cdn_config *c;
  dn_error err;
  const char *bad = "{\n  \"cdn\": fastly\n}";
  assert_int_equal(dn_cdn_config_parse(bad, strlen(bad), NULL, &c, &err),
                   DN_EJSON);
  assert_int_equal(err.line, 2);
  /* Environment values are checked too, and named by their variable. */
  setenv("DONUT_PURGE_WINDOW_MS", "soon", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), DN_ECONFIG);
  assert_non_null(strstr(err.text, "DONUT_PURGE_WINDOW_MS"));
  clear_env(NULL);
  setenv("DONUT_CDN", "cloudflare", 1);
  setenv("DONUT_CLOUDFLARE_TOKEN", "cf-SECRET-token", 1);
  assert_int_equal(dn_cdn_config_load(NULL, &c, &err), DN_ECONFIG);
  assert_non_null(strstr(err.text, "DONUT_CLOUDFLARE_ZONE"));
  assert_null(strstr(err.text, "SECRET"));
  clear_env(NULL);
  assert_int_equal(dn_cdn_config_load("/no/such/donut.json", &c, &err), DN_EIO);
  rmdir(g_dir);
}

/* ---- .edgerc ------------------------------------------------------------ */

static void edgerc_files(void **state) {
  (void)state;
  dn_purge_akamai_options o;
  char *buf = NULL;
  dn_error err;
  dn_purge_akamai_options_init(&o);
  assert_int_equal(
      dn__edgerc_parse(EDGERC, strlen(EDGERC), NULL, &o, &buf, &err), 0);
  assert_string_equal(o.host, "akab-default.luna.akamaiapis.net");
  assert_string_equal(o.client_secret, "dflt-secret-AAAA=");
  assert_int_equal(o.max_body, 0);
  dn_free(buf);
  assert_int_equal(
      dn__edgerc_parse(EDGERC, strlen(EDGERC), "ccu", &o, &buf, &err), 0);
  assert_string_equal(o.host, "akab-ccu.luna.akamaiapis.net");
  assert_string_equal(o.client_secret, "ccu-SECRET-value-0123456789==");
  assert_string_equal(o.access_token, "akab-access-ccu");
  assert_string_equal(o.client_token, "akab-client-ccu");
  assert_int_equal(o.max_body, 4096);
  dn_free(buf);
  assert_int_equal(
      dn__edgerc_parse(EDGERC, strlen(EDGERC), "papi", &o, &buf, &err),
      DN_ECONFIG);
  assert_non_null(strstr(err.text, "[papi]"));
  const char *missing = "[default]\nhost = h\nclient_token = c\n"
                        "client_secret = SECRET-x\n";
  assert_int_equal(
      dn__edgerc_parse(missing, strlen(missing), NULL, &o, &buf, &err),
      DN_ECONFIG);
  assert_non_null(strstr(err.text, "access_token"));
  assert_null(strstr(err.text, "SECRET"));
  const char *junk = "[default]\nhost = h\nclient_secret SECRET-no-equals\n";
  assert_int_equal(dn__edgerc_parse(junk, strlen(junk), NULL, &o, &buf, &err),
                   DN_ECONFIG);
  assert_int_equal(err.line, 3);
  assert_null(strstr(err.text, "SECRET"));
  const char *unclosed = "[default\n";
  assert_int_equal(
      dn__edgerc_parse(unclosed, strlen(unclosed), NULL, &o, &buf, &err),
      DN_ECONFIG);
  /* Found by fuzzing: a CR inside a value must not reach a header. */
  const char *cr = "[default]\nclient_secret=s\r a\nhost = h\n"
                   "access_token = a\nclient_token = c\n";
  assert_int_equal(dn__edgerc_parse(cr, strlen(cr), NULL, &o, &buf, &err),
                   DN_ECONFIG);
  assert_int_equal(err.line, 2);
  /* Found by fuzzing: nothing but a scheme and spaces is no host. */
  const char *nohost = "[default]\nclient_secret=s\nhost = https:// /\n"
                       "access_token = a\nclient_token = c\n";
  assert_int_equal(
      dn__edgerc_parse(nohost, strlen(nohost), NULL, &o, &buf, &err),
      DN_ECONFIG);
  assert_non_null(strstr(err.text, "no host"));
  const char *badmax = "[default]\nmax-body = lots\n";
  assert_int_equal(
      dn__edgerc_parse(badmax, strlen(badmax), NULL, &o, &buf, &err),
      DN_ECONFIG);
  /* The public reader: a file, a missing file. */
  tmpdir();
  char path[256];
  write_text("edgerc", EDGERC, path, sizeof path);
  dn_purge_akamai_options_init(&o);
  assert_int_equal(dn_purge_akamai_edgerc(path, "ccu", &o, &buf, &err), 0);
  assert_string_equal(o.client_token, "akab-client-ccu");
  dn_free(buf);
  rm("edgerc");
  assert_int_equal(dn_purge_akamai_edgerc(path, NULL, &o, &buf, &err), DN_EIO);
  rmdir(g_dir);
}

/* ---- allocation failures ------------------------------------------- */

static int parse_config(void *ud) {
  const char *json = ud;
  dn_cdn_config *c = NULL;
  int rc = dn_cdn_config_parse(json, strlen(json), NULL, &c, NULL);
  if (rc)
    return rc;
  char desc[512];
  dn_cdn_config_describe(c, desc, sizeof desc);
  dn_cdn_config_free(c);
  return 0;
}

static void config_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(
      parse_config,
      "{\"cdn\":\"varnish\",\"purge\":{\"urls\":[\"http://a/\",\"http://b/\"],"
      "\"soft\":true},\"fastly\":{\"token\":\"t\",\"service\":\"s\"},"
      "\"webhook\":{\"headers\":{\"A\":\"b\",\"C\":\"d\"}}}");
  dn_test_every_alloc_failure(
      parse_config, "{\"cdn\":\"cloudflare\",\"cloudflare\":{\"token\":\"t\","
                    "\"zone\":\"z\",\"max_tags\":30}}");
}

static int parse_edgerc(void *ud) {
  (void)ud;
  dn_purge_akamai_options o;
  char *buf = NULL;
  int rc = dn__edgerc_parse(EDGERC, strlen(EDGERC), "ccu", &o, &buf, NULL);
  dn_free(buf);
  return rc;
}

static void edgerc_out_of_memory(void **state) {
  (void)state;
  dn_test_every_alloc_failure(parse_edgerc, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(from_environment, clear_env),
      cmocka_unit_test_setup(purger_choice, clear_env),
      cmocka_unit_test_setup(outbox_defaults, clear_env),
      cmocka_unit_test_setup(json_file_and_overrides, clear_env),
      cmocka_unit_test_setup(config_errors, clear_env),
      cmocka_unit_test_setup(edgerc_files, clear_env),
      cmocka_unit_test_setup(config_out_of_memory, clear_env),
      cmocka_unit_test_setup(edgerc_out_of_memory, clear_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
