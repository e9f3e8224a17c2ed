/* demo_site.c - the built-in demo site of `donut serve`: a small news site over
 * in-memory data that shows donut-hole caching (/news embeds cacheable
 * weather and comments), donut caching (/home embeds an uncacheable
 * greeting) and purging a piece (PUT /weather, PUT /comment).
 *
 * Its renderers run on whichever thread calls dn_engine_get, so the data
 * sits behind a mutex, and every renderer copies what it needs before it
 * writes. Text from requests (cookie, city, new text) is HTML-escaped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_site.h"

#define BASE "app://self"
#define TEXT_MAX 240
#define CITIES_MAX 32
#define HTML_TYPE "text/html; charset=utf-8"

typedef struct city {
  char name[32];
  char text[TEXT_MAX];
  unsigned reports; /* renders so far: each one "fetches" a new report */
} city;

typedef struct comment {
  int id, post;
  char text[TEXT_MAX];
} comment;

struct demo_site {
  dn_engine *e;
  pthread_mutex_t mu;
  city cities[CITIES_MAX];
  size_t ncities;
  comment comments[3];
};

static const struct {
  const char *title, *body;
} news[] = {
    {"Donut caching explained",
     "A page is a shell with holes. The shell is cached once; each hole is "
     "cached on its own, or rendered for every visitor."},
    {"Purge by tag",
     "Every page remembers what it is made of, so purging one piece makes "
     "every page that contains it fresh again."},
    {"ETags from content",
     "The same bytes give the same ETag on every machine, so a browser "
     "revalidates with a 304 until something really changed."},
};
#define NEWS_COUNT (int)(sizeof news / sizeof news[0])

/* ---- helpers -------------------------------------------------------------
 */
static int write_escaped(dn_render *r, const char *s, size_t n) {
  char out[TEXT_MAX * 6 + 1];
  size_t o = 0;
  for (size_t i = 0; i < n && o + 7 < sizeof out; i++) {
    const char *rep = s[i] == '<'    ? "&lt;"
                      : s[i] == '>'  ? "&gt;"
                      : s[i] == '&'  ? "&amp;"
                      : s[i] == '"'  ? "&quot;"
                      : s[i] == '\'' ? "&#39;"
                                     : NULL;
    if (rep) {
      memcpy(out + o, rep, strlen(rep));
      o += strlen(rep);
    } else {
      out[o++] = s[i];
    }
  }
  return dn_render_write(r, out, o);
}

/* A small positive decimal parameter, or 0. */
static int int_param(dn_render *r, const char *name) {
  const char *v = dn_render_param(r, name);
  if (!v || !*v || strlen(v) > 6)
    return 0;
  for (const char *p = v; *p; p++)
    if (*p < '0' || *p > '9')
      return 0;
  return (int)strtol(v, NULL, 10);
}

static int city_ok(const char *c, size_t n) {
  if (n == 0 || n >= sizeof((city *)0)->name)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((c[i] >= 'a' && c[i] <= 'z') || c[i] == '-'))
      return 0;
  return 1;
}

static int not_found(dn_render *r, const char *what) {
  dn_render_set_status(r, 404);
  dn_render_set_uncacheable(r);
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  dn_render_write_str(r, "<p class=\"missing\">No such ");
  dn_render_write_str(r, what);
  return dn_render_write_str(r, ".</p>\n");
}

/* ---- renderers -----------------------------------------------------------
 */
static int r_news(dn_render *r, void *ud) {
  (void)ud;
  int id = int_param(r, "id");
  if (id < 1 || id > NEWS_COUNT)
    return not_found(r, "news");
  char buf[512];
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  snprintf(buf, sizeof buf,
           "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
           "<title>%s</title></head>\n<body>\n<article>\n<h1>%s</h1>\n"
           "<p>%s</p>\n</article>\n<aside>\n",
           news[id - 1].title, news[id - 1].title, news[id - 1].body);
  dn_render_write_str(r, buf);
  dn_render_embed(r, BASE "/weather?city=tokyo", DN_EMBED_CACHEABLE);
  dn_render_write_str(r, "</aside>\n<section>\n<h2>Comments</h2>\n");
  snprintf(buf, sizeof buf, BASE "/comments?post=%d", id);
  dn_render_embed(r, buf, DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, "</section>\n</body></html>\n");
}

static int r_weather(dn_render *r, void *ud) {
  demo_site *d = ud;
  const char *c = dn_render_param(r, "city");
  if (!c || !city_ok(c, strlen(c)))
    return not_found(r, "city");
  char text[TEXT_MAX] = "", report[48];
  unsigned found = 0;
  pthread_mutex_lock(&d->mu);
  for (size_t i = 0; i < d->ncities && !found; i++)
    if (strcmp(d->cities[i].name, c) == 0) {
      memcpy(text, d->cities[i].text, sizeof text);
      found = ++d->cities[i].reports;
    }
  pthread_mutex_unlock(&d->mu);
  if (!found)
    return not_found(r, "city");
  /* A live feed: every render fetches a new, numbered report, so a
   * re-render shows (and the page's ETag changes). */
  snprintf(report, sizeof report, " <small>(report %u)</small>", found);
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  dn_render_set_ttl(r, 3600);
  dn_render_add_tag(r, "weather");
  dn_render_write_str(r, "<div class=\"weather\">Weather in ");
  write_escaped(r, c, strlen(c));
  dn_render_write_str(r, ": ");
  write_escaped(r, text, strlen(text));
  dn_render_write_str(r, report);
  return dn_render_write_str(r, "</div>\n");
}

static int r_comments(dn_render *r, void *ud) {
  demo_site *d = ud;
  int post = int_param(r, "post");
  if (post < 1 || post > NEWS_COUNT)
    return not_found(r, "post");
  comment rows[3];
  size_t n = 0;
  pthread_mutex_lock(&d->mu);
  for (size_t i = 0; i < 3; i++)
    if (d->comments[i].post == post)
      rows[n++] = d->comments[i];
  pthread_mutex_unlock(&d->mu);
  /* The page depends on each row it shows: their URI tags come from the
   * template over the rows (BEAR.Sunday's fromAssoc). */
  char json[128];
  size_t l = 0;
  json[l++] = '[';
  for (size_t i = 0; i < n; i++)
    l += (size_t)snprintf(json + l, sizeof json - l, "%s{\"id\":%d}",
                          i ? "," : "", rows[i].id);
  snprintf(json + l, sizeof json - l, "]");
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  dn_render_add_tags_from_rows(r, BASE "/comment{?id}", json, strlen(json));
  dn_render_write_str(r, "<ul class=\"comments\">\n");
  for (size_t i = 0; i < n; i++) {
    char li[48];
    snprintf(li, sizeof li, "<li id=\"comment-%d\">", rows[i].id);
    dn_render_write_str(r, li);
    write_escaped(r, rows[i].text, strlen(rows[i].text));
    dn_render_write_str(r, "</li>\n");
  }
  return dn_render_write_str(r, "</ul>\n");
}

static int r_comment(dn_render *r, void *ud) {
  demo_site *d = ud;
  int id = int_param(r, "id");
  char text[TEXT_MAX] = "";
  int found = 0;
  pthread_mutex_lock(&d->mu);
  for (size_t i = 0; i < 3; i++)
    if (d->comments[i].id == id) {
      memcpy(text, d->comments[i].text, sizeof text);
      found = 1;
    }
  pthread_mutex_unlock(&d->mu);
  if (!found)
    return not_found(r, "comment");
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  dn_render_write_str(r, "<p class=\"comment\">");
  write_escaped(r, text, strlen(text));
  return dn_render_write_str(r, "</p>\n");
}

static int r_home(dn_render *r, void *ud) {
  (void)ud;
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  dn_render_write_str(r, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                         "<title>Home</title></head>\n<body>\n<header>");
  dn_render_embed(r, BASE "/greeting", DN_EMBED_UNCACHEABLE);
  dn_render_write_str(r, "</header>\n<main>\n");
  dn_render_embed(r, BASE "/news?id=1", DN_EMBED_CACHEABLE);
  return dn_render_write_str(r, "</main>\n</body></html>\n");
}

static int r_greeting(dn_render *r, void *ud) {
  (void)ud;
  dn_slice name = {"guest", 5};
  dn_render_set_uncacheable(r);
  dn_render_set_header(r, "Content-Type", HTML_TYPE);
  if (dn_render_cookie(r, "name", &name) != 0 || name.len == 0 || name.len > 64)
    name = (dn_slice){"guest", 5};
  dn_render_write_str(r, "<p class=\"greeting\">Welcome to ");
  write_escaped(r, name.ptr, name.len);
  return dn_render_write_str(r, "</p>\n");
}

static const struct {
  const char *pattern, *name;
  dn_render_fn fn;
} routes[] = {
    {BASE "/news{?id}", "news", r_news},
    {BASE "/weather{?city}", "weather", r_weather},
    {BASE "/comments{?post}", "comments", r_comments},
    {BASE "/comment{?id}", "comment", r_comment},
    {BASE "/home", "home", r_home},
    {BASE "/greeting", "greeting", r_greeting},
};

/* ---- lifecycle and writes -----------------------------------------------
 */
int demo_site_new(dn_engine *engine, demo_site **out) {
  if (!engine || !out)
    return DN_EINVAL;
  demo_site *d = calloc(1, sizeof *d);
  if (!d)
    return DN_ENOMEM;
  d->e = engine;
  static const char *const cities[][2] = {{"tokyo", "Sunny, 21 \xc2\xb0"
                                                    "C"},
                                          {"paris", "Cloudy, 14 \xc2\xb0"
                                                    "C"},
                                          {"london", "Rain, 11 \xc2\xb0"
                                                     "C"}};
  for (size_t i = 0; i < 3; i++) {
    snprintf(d->cities[i].name, sizeof d->cities[i].name, "%s", cities[i][0]);
    snprintf(d->cities[i].text, TEXT_MAX, "%s", cities[i][1]);
  }
  d->ncities = 3;
  static const comment comments[] = {
      {1, 1, "First! Does the shell really stay cached?"},
      {2, 1, "Yes: only the hole that changed is rendered again."},
      {3, 2, "Purging one tag beats flushing the whole cache."}};
  memcpy(d->comments, comments, sizeof comments);
  if (pthread_mutex_init(&d->mu, NULL) != 0) {
    free(d);
    return DN_ENOMEM;
  }
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc = dn_engine_register(engine, routes[i].pattern, routes[i].name,
                                routes[i].fn, d);
    if (rc) {
      demo_site_free(d);
      return rc;
    }
  }
  *out = d;
  return 0;
}

void demo_site_free(demo_site *d) {
  if (!d)
    return;
  pthread_mutex_destroy(&d->mu);
  free(d);
}

static int reply_text(dn_server_reply *reply, int status, const char *text) {
  int rc = dn_server_reply_set(reply, status, "text/plain; charset=utf-8", text,
                               strlen(text));
  return rc ? rc : 1;
}

/* Stores the new text of a city (added when new) or a comment. Returns 1,
 * 0 when there is no such comment, or -1 when the city table is full. */
static int demo_update(demo_site *d, const char *city_name, int comment_id,
                       dn_slice text) {
  int rc = 0;
  size_t n = text.len < TEXT_MAX - 1 ? text.len : TEXT_MAX - 1;
  pthread_mutex_lock(&d->mu);
  char *dst = NULL;
  for (size_t i = 0; city_name && i < d->ncities && !dst; i++)
    if (strcmp(d->cities[i].name, city_name) == 0)
      dst = d->cities[i].text;
  if (city_name && !dst && d->ncities < CITIES_MAX) {
    snprintf(d->cities[d->ncities].name, sizeof d->cities[0].name, "%s",
             city_name);
    dst = d->cities[d->ncities++].text;
  }
  for (size_t i = 0; !city_name && i < 3; i++)
    if (d->comments[i].id == comment_id)
      dst = d->comments[i].text;
  if (dst) {
    memcpy(dst, text.ptr, n);
    dst[n] = '\0';
    rc = 1;
  } else {
    rc = city_name ? -1 : 0;
  }
  pthread_mutex_unlock(&d->mu);
  return rc;
}

static int slice_is(dn_slice s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* PUT /weather?city=C and PUT /comment?id=M: new text, then purge. */
int demo_site_handler(void *ud, const dn_server_request *req,
                      dn_server_reply *reply) {
  demo_site *d = ud;
  int weather = slice_is(req->path, "/weather");
  if (!slice_is(req->method, "PUT") ||
      (!weather && !slice_is(req->path, "/comment")))
    return 0;
  char key[40] = "", uri[96];
  if (dn_server_request_param(req, weather ? "city" : "id", key, sizeof key,
                              NULL) != 0)
    key[0] = '\0';
  int id = 0;
  if (!weather && key[0] && strspn(key, "0123456789") == strlen(key) &&
      strlen(key) < 6)
    id = (int)strtol(key, NULL, 10);
  if (weather ? !city_ok(key, strlen(key)) : id == 0)
    return reply_text(reply, 400,
                      weather ? "expected ?city=NAME (a-z and -)\n"
                              : "expected ?id=NUMBER\n");
  for (size_t i = 0; i < req->body.len; i++)
    if ((unsigned char)req->body.ptr[i] < 0x20 && req->body.ptr[i] != '\n')
      return reply_text(reply, 400, "the text has control characters\n");
  int rc = demo_update(d, weather ? key : NULL, id, req->body);
  if (rc == 0)
    return reply_text(reply, 404, "no such comment\n");
  if (rc < 0)
    return reply_text(reply, 507, "too many cities\n");
  snprintf(uri, sizeof uri, BASE "/%s?%s=%s", weather ? "weather" : "comment",
           weather ? "city" : "id", key);
  dn_error err;
  rc = dn_engine_purge(d->e, uri, strlen(uri), &err);
  if (rc)
    return rc;
  char text[160];
  snprintf(text, sizeof text, "updated and purged %s\n", uri);
  return reply_text(reply, 200, text);
}
