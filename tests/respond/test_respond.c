/* test_respond.c - from an engine representation to a response: 200 with
 * validators and CDN fields, 304 on a matching If-None-Match, private and
 * tag-less for a donut page, and the per-view cache of CDN tag fields
 * giving exactly what a fresh computation gives. */
#include <stdio.h>
#include <string.h>

#include "test_support.h"

static int r_page(dn_render *r, void *ud) {
  (void)ud;
  dn_render_set_header(r, "Content-Type", "text/html");
  dn_render_add_tag(r, "news");
  dn_render_set_s_maxage(r, 600);
  return dn_render_write_str(r, "<p>news</p>");
}

static int r_donut(dn_render *r, void *ud) {
  (void)ud;
  dn_render_write_str(r, "hi ");
  return dn_render_embed(r, "app://self/page", DN_EMBED_UNCACHEABLE);
}

static dn_engine *engine(void) {
  dn_engine *e;
  assert_int_equal(dn_engine_new(NULL, &e), 0);
  assert_int_equal(dn_engine_register(e, "app://self/page", NULL, r_page, NULL),
                   0);
  assert_int_equal(
      dn_engine_register(e, "app://self/donut", NULL, r_donut, NULL), 0);
  return e;
}

static const char *field(const dn_http_result *res, const char *name, char *buf,
                         size_t n) {
  dn_slice v;
  if (dn_http_headers_get(res->headers, name, &v) != 0)
    return NULL;
  snprintf(buf, n, "%.*s", (int)v.len, v.ptr);
  return buf;
}

static dn_http_result respond(dn_rep *rep, const dn_header *h, size_t nh,
                              dn_cdn_profile cdn) {
  dn_http_request req = {dn_slice_from_cstr("GET"), h, nh};
  dn_respond_options o;
  dn_respond_options_init(&o);
  o.cdn = cdn;
  o.now_ms = 1700000000000ull;
  dn_http_result res;
  dn_error err;
  int rc = dn_rep_respond(rep, &req, &o, &res, &err);
  if (rc)
    fail_msg("respond: %s", err.text);
  return res;
}

static void test_200_then_304(void **state) {
  (void)state;
  dn_engine *e = engine();
  dn_rep *rep;
  assert_int_equal(
      dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL), 0);
  char buf[512];
  dn_http_result res = respond(rep, NULL, 0, DN_CDN_FASTLY);
  assert_int_equal(res.status, 200);
  assert_true(res.send_body);
  assert_string_equal(
      field(&res, "ETag", buf, sizeof buf),
      (snprintf(buf + 256, 256, "%.*s", (int)dn_rep_etag(rep).len,
                dn_rep_etag(rep).ptr),
       buf + 256));
  assert_non_null(field(&res, "Last-Modified", buf, sizeof buf));
  assert_string_equal(field(&res, "Surrogate-Control", buf, sizeof buf),
                      "max-age=600");
  assert_non_null(
      strstr(field(&res, "Surrogate-Key", buf, sizeof buf), "news"));
  dn_http_result_free(&res);
  dn_header inm = {dn_slice_from_cstr("If-None-Match"), dn_rep_etag(rep)};
  res = respond(rep, &inm, 1, DN_CDN_FASTLY);
  assert_int_equal(res.status, 304);
  assert_false(res.send_body);
  assert_non_null(field(&res, "ETag", buf, sizeof buf));
  assert_null(field(&res, "Content-Type", buf, sizeof buf));
  dn_http_result_free(&res);
  dn_rep_unref(rep);
  dn_engine_free(e);
}

static void test_cached_tag_fields_equal_fresh_ones(void **state) {
  (void)state;
  dn_engine *e = engine();
  dn_rep *rep;
  assert_int_equal(
      dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL), 0);
  for (int p = DN_CDN_GENERIC; p <= DN_CDN_RFC9875; p++) {
    dn_http_result first = respond(rep, NULL, 0, (dn_cdn_profile)p);
    dn_http_result again = respond(rep, NULL, 0, (dn_cdn_profile)p);
    /* A fresh computation, bypassing the view's cache. */
    dn_http_headers *fresh = dn_http_headers_new();
    dn_slice tags[16];
    size_t n = dn_rep_tag_count(rep);
    for (size_t i = 0; i < n; i++)
      tags[i] = dn_rep_tag(rep, i);
    assert_int_equal(dn_cdn_tag_fields((dn_cdn_profile)p, tags, n, fresh, NULL),
                     0);
    for (size_t i = 0; i < dn_http_headers_count(fresh); i++) {
      dn_http_field f = dn_http_headers_at(fresh, i);
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)f.name.len, f.name.ptr);
      dn_slice a, b;
      assert_int_equal(dn_http_headers_get(first.headers, name, &a), 0);
      assert_int_equal(dn_http_headers_get(again.headers, name, &b), 0);
      assert_int_equal(a.len, f.value.len);
      assert_memory_equal(a.ptr, f.value.ptr, a.len);
      assert_int_equal(b.len, f.value.len);
      assert_memory_equal(b.ptr, f.value.ptr, b.len);
    }
    assert_true(dn_http_headers_count(fresh) > 0);
    dn_http_headers_free(fresh);
    dn_http_result_free(&first);
    dn_http_result_free(&again);
  }
  dn_rep_unref(rep);
  dn_engine_free(e);
}

static void test_donut_page_is_private_without_tags(void **state) {
  (void)state;
  dn_engine *e = engine();
  dn_rep *rep;
  assert_int_equal(
      dn_engine_get(e, "app://self/donut", 16, NULL, 0, &rep, NULL, NULL), 0);
  char buf[256];
  dn_http_result res = respond(rep, NULL, 0, DN_CDN_FASTLY);
  assert_int_equal(res.status, 200);
  assert_null(field(&res, "ETag", buf, sizeof buf));
  assert_null(field(&res, "Surrogate-Key", buf, sizeof buf));
  assert_non_null(
      strstr(field(&res, "Cache-Control", buf, sizeof buf), "private"));
  dn_http_result_free(&res);
  dn_rep_unref(rep);
  dn_engine_free(e);
}

/* Options cut before max_age (an older program) leave it at its default;
 * size 0 and a newer program's unknown field are refused. */
static void test_options_from_older_and_newer_programs(void **state) {
  (void)state;
  dn_engine *e = engine();
  dn_rep *rep;
  assert_int_equal(
      dn_engine_get(e, "app://self/page", 15, NULL, 0, &rep, NULL, NULL), 0);
  dn_http_request req = {dn_slice_from_cstr("GET"), NULL, 0};
  dn_respond_options o;
  dn_respond_options_init(&o);
  assert_int_equal(o.size, sizeof o);
  o.now_ms = 1700000000000ull;
  o.max_age = 3600;
  dn_http_result res;
  dn_error err;
  char buf[256];
  assert_int_equal(dn_rep_respond(rep, &req, &o, &res, &err), 0);
  assert_non_null(
      strstr(field(&res, "Cache-Control", buf, sizeof buf), "max-age=3600"));
  dn_http_result_free(&res);
  o.size = offsetof(dn_respond_options, max_age);
  assert_int_equal(dn_rep_respond(rep, &req, &o, &res, &err), 0);
  assert_null(strstr(field(&res, "Cache-Control", buf, sizeof buf), "3600"));
  dn_http_result_free(&res);
  o.size = 0;
  assert_int_equal(dn_rep_respond(rep, &req, &o, &res, &err), DN_EINVAL);
  assert_non_null(strstr(err.text, "dn_respond_options_init"));
  union {
    dn_respond_options o;
    unsigned char b[sizeof(dn_respond_options) + 8];
  } newer;
  dn_respond_options_init_size(&newer.o, sizeof newer);
  assert_int_equal(dn_rep_respond(rep, &req, &newer.o, &res, &err), 0);
  dn_http_result_free(&res);
  newer.b[sizeof(dn_respond_options)] = 1;
  assert_int_equal(dn_rep_respond(rep, &req, &newer.o, &res, &err), DN_EINVAL);
  dn_rep_unref(rep);
  dn_engine_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_200_then_304),
      cmocka_unit_test(test_cached_tag_fields_equal_fresh_ones),
      cmocka_unit_test(test_donut_page_is_private_without_tags),
      cmocka_unit_test(test_options_from_older_and_newer_programs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
