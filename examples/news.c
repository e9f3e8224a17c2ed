/* news.c - donut in one page: a news page embeds a weather hole
 * (cacheable, ttl 3600) and a greeting hole (uncacheable). The program
 * prints the page and its ETag, purges the weather, and shows that only the
 * weather renderer ran again and that the ETag changed.
 *
 * Build and run: cmake --build build && build/examples/example_news
 */
#include <stdio.h>
#include <string.h>

#include <donut.h>

static const char *forecast = "sunny";
static int weather_renders, news_renders, greeting_renders;

static int render_news(dn_render *r, void *ud) {
  (void)ud;
  news_renders++;
  dn_render_set_header(r, "Content-Type", "text/plain");
  dn_render_write_str(r, "Today's news. ");
  dn_render_embed(r, "app://self/greeting", DN_EMBED_UNCACHEABLE);
  dn_render_write_str(r, " Weather: ");
  return dn_render_embed(r, "app://self/weather?city=tokyo",
                         DN_EMBED_CACHEABLE);
}

static int render_weather(dn_render *r, void *ud) {
  (void)ud;
  weather_renders++;
  dn_render_add_tag(r, "weather");
  dn_render_set_ttl(r, 3600);
  return dn_render_write_str(r, forecast);
}

static int render_greeting(dn_render *r, void *ud) {
  (void)ud;
  greeting_renders++;
  dn_slice name;
  if (dn_render_cookie(r, "name", &name) != 0)
    name = dn_slice_from_cstr("guest");
  dn_render_write_str(r, "Welcome to ");
  return dn_render_write(r, name.ptr, name.len);
}

static int show(dn_engine *e, const char *label) {
  dn_header cookie = {dn_slice_from_cstr("Cookie"),
                      dn_slice_from_cstr("name=alice")};
  dn_request req = {dn_slice_from_cstr("GET"), &cookie, 1};
  dn_rep *page;
  dn_get_info info;
  dn_error err;
  int rc = dn_engine_get(e, "app://self/news", 15, &req, 0, &page, &info, &err);
  if (rc) {
    fprintf(stderr, "get failed: %s\n", err.text);
    return rc;
  }
  dn_slice body = dn_rep_body(page), page_etag = dn_rep_etag(page);
  printf("%s\n  page:    %.*s\n", label, (int)body.len, body.ptr);
  if (page_etag.len)
    printf("  page ETag: %.*s\n", (int)page_etag.len, page_etag.ptr);
  else
    printf("  page ETag: none (a donut page: its greeting hole is "
           "uncacheable)\n");
  /* The page has an uncacheable hole, so it has no ETag as a whole; its
   * cacheable part, the weather, has one. */
  dn_rep *weather;
  rc = dn_engine_get(e, "app://self/weather?city=tokyo", 29, NULL, 0, &weather,
                     NULL, &err);
  if (rc == 0) {
    dn_slice etag = dn_rep_etag(weather);
    printf("  weather ETag: %.*s\n", (int)etag.len, etag.ptr);
    dn_rep_unref(weather);
  }
  printf("  renders so far: news=%d weather=%d greeting=%d\n", news_renders,
         weather_renders, greeting_renders);
  dn_rep_unref(page);
  return 0;
}

int main(void) {
  dn_engine *e;
  if (dn_engine_new(NULL, &e) != 0)
    return 1;
  dn_engine_register(e, "app://self/news", "news", render_news, NULL);
  dn_engine_register(e, "app://self/weather{?city}", "weather", render_weather,
                     NULL);
  dn_engine_register(e, "app://self/greeting", "greeting", render_greeting,
                     NULL);
  int rc = show(e, "1. first request (everything renders)");
  if (rc == 0)
    rc = show(e, "2. second request (only the greeting renders)");
  forecast = "rainy";
  dn_error err;
  if (rc == 0 &&
      (rc = dn_engine_purge(e, "app://self/weather?city=tokyo", 29, &err)))
    fprintf(stderr, "purge failed: %s\n", err.text);
  if (rc == 0)
    rc = show(e, "3. after purging the weather (weather renders again)");
  dn_engine_free(e);
  return rc ? 1 : 0;
}
