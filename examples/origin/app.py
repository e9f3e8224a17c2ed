#!/usr/bin/env python3
"""A small news site to put donut (or Varnish) in front of.

Flask and SQLite, nothing else. Pages are ESI shells: every box on a page is
an <esi:include src="/frag/..."/> that a surrogate fetches and caches on its
own, three levels deep. Responses say how to cache them with the header
fields frameworks already send:

    Surrogate-Control: max-age=N, content="ESI/1.0"    shared-cache lifetime,
                                                        ESI opt-in
    Cache-Control: public, max-age=0, s-maxage=N, stale-if-error=S
    Surrogate-Key: tag1 tag2                            invalidation tags
    Set-Cookie / Cache-Control: private, no-store       uncacheable

and writes answer which tags they changed in `Donut-Invalidate`.

Run it:

    python3 examples/origin/app.py --port 5000 --db /tmp/news.db --log /tmp/news.log

See examples/origin/README.md for the routes, their tags and includes.
"""

import argparse
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time

try:
    from flask import Flask, Response, abort, g, render_template, request
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("app.py: Flask is missing (Debian: apt-get install -y "
             "--no-install-recommends python3-flask)")
import jinja2

SITE = "Donut Daily"

# --------------------------------------------------------------------------
# Configuration (filled in by main(); module defaults make the app importable)

CONFIG = {
    "db": None,                  # path of the SQLite file
    "log": None,                 # path of the request log (None: stderr)
    "ttl": 3600,                 # shared-cache lifetime of everything cacheable
    "stale_if_error": 60,        # Cache-Control stale-if-error (0: omitted)
    "stale_while_revalidate": 0,  # Cache-Control stale-while-revalidate (0: omitted)
    "delay_ms": 0,               # sleep before every GET/HEAD /frag/* response
    "page_delay_ms": 0,          # sleep before every GET/HEAD page response
    "fail_file": None,           # while this file exists, answer 503
}

# Runtime switches, changed through /admin/*.
STATE = {"fail": False}
STATE_LOCK = threading.Lock()

# --------------------------------------------------------------------------
# Data

SCHEMA = """
CREATE TABLE IF NOT EXISTS authors (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, bio TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
  id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES authors(id), rank INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS comments (
  id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL REFERENCES articles(id),
  author TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (
  article_id INTEGER NOT NULL REFERENCES articles(id), name TEXT NOT NULL,
  PRIMARY KEY (article_id, name));
CREATE TABLE IF NOT EXISTS sections (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

AUTHORS = [
    (1, "Ada Baker", "Writes about caches and the people who purge them."),
    (2, "Ben Okafor", "Covers the city desk, rain or shine."),
    (3, "Chloe Martin", "Science editor; still believes in HTTP/1.1."),
    (4, "Dev Patel", "Sports, markets and anything with a scoreboard."),
]
SUBJECTS = [
    "Donut caching explained", "City council approves new bike lanes",
    "The surprising physics of coffee rings", "Local team wins the cup",
    "Markets calm after a week of swings", "Why ESI never went away",
    "Night trains return to the north", "A museum for forgotten fonts",
    "The bakery that opens at 4 a.m.", "How tags make purging cheap",
    "Rain expected all weekend", "Inside the library's restoration",
]
TOPICS = ["caching", "city", "science", "sports", "markets", "web",
          "travel", "culture", "food", "weather"]
SECTIONS = [("News", "/"), ("City", "/section/city"),
            ("Science", "/section/science"), ("Sports", "/section/sports"),
            ("Culture", "/section/culture")]
SETTINGS = {
    "weather": "Sunny, 21 \u00b0C",
    "ticker": "DNT +1.2% \u00b7 ESI -0.4% \u00b7 TTL +0.0%",
    "ad": "Fresh donuts every morning at the corner bakery.",
}


def seed(db):
    """Creates the tables; fills them when the database is empty."""
    db.executescript(SCHEMA)
    if db.execute("SELECT COUNT(*) FROM authors").fetchone()[0]:
        return
    db.executemany("INSERT INTO authors VALUES (?, ?, ?)", AUTHORS)
    filler = " ".join(["The quick brown fox jumps over the lazy dog while the "
                       "cache keeps every box on this page until the data "
                       "under it changes."] * 3)
    for i, title in enumerate(SUBJECTS, start=1):
        body = "\n\n".join("Paragraph %d of story %d. %s" % (p, i, filler)
                           for p in range(1, 4))
        author = (i - 1) % len(AUTHORS) + 1
        rank = (i * 7) % len(SUBJECTS)  # an editorial order, not by id
        db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
                   (i, title, body, author, rank))
        for c in range(1, 3):
            db.execute(
                "INSERT INTO comments (article_id, author, body) VALUES (?, ?, ?)",
                (i, "reader%d" % ((i + c) % 9 + 1),
                 "Comment %d on story %d: well put." % (c, i)))
        for t in (TOPICS[i % len(TOPICS)], TOPICS[(i * 3) % len(TOPICS)]):
            db.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (i, t))
    db.executemany("INSERT INTO sections (name, path) VALUES (?, ?)", SECTIONS)
    db.executemany("INSERT INTO settings VALUES (?, ?)", SETTINGS.items())
    db.commit()


def connect():
    db = sqlite3.connect(CONFIG["db"], timeout=10)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    return db


def get_db():
    if "db" not in g:
        g.db = connect()
    return g.db


def setting(key):
    row = get_db().execute("SELECT value FROM settings WHERE key = ?",
                           (key,)).fetchone()
    return row["value"] if row else ""


def article_or_404(article_id):
    row = get_db().execute(
        "SELECT a.*, au.name AS author_name FROM articles a "
        "JOIN authors au ON au.id = a.author_id WHERE a.id = ?",
        (article_id,)).fetchone()
    if row is None:
        abort(404)
    return row


def newest_article_id():
    row = get_db().execute("SELECT MAX(id) FROM articles").fetchone()
    return row[0]


# --------------------------------------------------------------------------
# Request log: one line per response, "METHOD TARGET STATUS", appended and
# flushed under a lock, written when the response starts (before its body).

class RequestLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else sys.stderr

    def write(self, method, target, status):
        line = "%s %s %s\n" % (method, target, status)
        with self.lock:
            self.file.write(line)
            self.file.flush()


def _clean(s):
    """The request target as one token: no spaces or control bytes."""
    out = []
    for ch in s:
        o = ord(ch)
        out.append("%%%02X" % o if o <= 0x20 or o == 0x7F else ch)
    return "".join(out)


ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class LogMiddleware:
    """WSGI middleware that logs every response, whatever produced it."""

    def __init__(self, wsgi_app, log):
        self.wsgi_app = wsgi_app
        self.log = log

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "-")
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        m = ABSOLUTE_FORM.match(target or "")
        if m:  # http://host/path?q: log the path and query only
            rest = target[m.end():]
            target = rest if rest.startswith("/") else "/" + rest
        if not target:
            target = environ.get("PATH_INFO", "/")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]

        def logging_start_response(status, headers, exc_info=None):
            self.log.write(_clean(method), _clean(target), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, logging_start_response)


# --------------------------------------------------------------------------
# Templates: Jinja autoescapes every *.html template, so everything that
# comes from a request or the database is HTML-escaped.

TEMPLATES = {
    "page.html": """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} - {{ site }}</title></head>
<body>
<esi:include src="/frag/header"/>
{% if greeting %}
<p class="greeting"><esi:include src="/frag/greeting"/></p>
{% endif %}
{% if visit %}
<p class="visit"><esi:include src="/frag/visit"/></p>
{% endif %}
<main>
{% if article_id %}
<esi:include src="/frag/article/{{ article_id }}"/>
{% else %}
<p>No stories yet.</p>
{% endif %}
</main>
<esi:include src="/frag/sidebar"/>
<footer><p>{{ site }} &middot; served through an ESI surrogate</p></footer>
</body></html>
""",
    "header.html": """<header class="site">
<h1><a href="/">{{ site }}</a></h1>
<esi:include src="/frag/nav"/>
<esi:include src="/frag/weather"/>
<esi:include src="/frag/ticker"/>
</header>
""",
    "nav.html": """<nav><ul>
{% for s in sections %}
<li><a href="{{ s.path }}">{{ s.name }}</a></li>
{% endfor %}
</ul></nav>
""",
    "weather.html": """<div class="weather">Weather: {{ weather }}</div>
""",
    "ticker.html": """<div class="ticker">{{ ticker }}</div>
""",
    "article.html": """<article id="article-{{ a.id }}">
<h2>{{ a.title }}</h2>
<esi:include src="/frag/author/{{ a.author_id }}"/>
{% for p in paragraphs %}
<p>{{ p }}</p>
{% endfor %}
<esi:include src="/frag/tags/{{ a.id }}"/>
<esi:include src="/frag/comments/{{ a.id }}"/>
</article>
""",
    "author.html": """<p class="byline">By <span class="author">{{ au.name }}</span> &mdash; <em>{{ au.bio }}</em></p>
""",
    "comments.html": """<section class="comments">
<h3>{{ comments|length }} comment{{ "" if comments|length == 1 else "s" }}</h3>
<ul>
{% for c in comments %}
<li id="comment-{{ c.id }}"><b>{{ c.author }}</b>: {{ c.body }}</li>
{% endfor %}
</ul>
</section>
""",
    "tags.html": """<ul class="topics">
{% for t in topics %}
<li>{{ t.name }}</li>
{% endfor %}
</ul>
""",
    "sidebar.html": """<aside class="sidebar">
<esi:include src="/frag/popular"/>
<esi:include src="/frag/newest"/>
<esi:include src="/frag/ad"/>
</aside>
""",
    "list.html": """<section class="{{ kind }}">
<h3>{{ heading }}</h3>
<ol>
{% for a in articles %}
<li><a href="/article/{{ a.id }}">{{ a.title }}</a></li>
{% endfor %}
</ol>
</section>
""",
    "ad.html": """<div class="ad">{{ ad }}</div>
""",
    "greeting.html": """<span class="greeting">Hello, {{ visitor }}</span>""",
    "visit.html": """<span class="visit">Thanks for visiting.</span>""",
}

app = Flask(__name__)
app.jinja_loader = jinja2.DictLoader(TEMPLATES)
app.jinja_env.trim_blocks = True
app.jinja_env.lstrip_blocks = True
app.config["MAX_CONTENT_LENGTH"] = 1 << 20


def render(name, **ctx):
    return render_template(name, site=SITE, **ctx)


# --------------------------------------------------------------------------
# Caching header fields

def cacheable(body, keys, esi=False, surrogate=True, shared=True):
    """A response that shared caches may store for CONFIG["ttl"] seconds.

    Browsers get max-age=0 (they revalidate every time: a page changes when
    its data does, not on a schedule); shared caches get the lifetime from
    Surrogate-Control (surrogates) and s-maxage (other shared caches). With
    surrogate=False the response has no Surrogate-Control; with
    shared=False its Cache-Control has only max-age=N, so a cache has to
    fall back on it.
    """
    ttl = CONFIG["ttl"]
    resp = Response(body, content_type="text/html; charset=utf-8")
    if surrogate:
        sc = "max-age=%d" % ttl
        if esi:
            sc += ', content="ESI/1.0"'
        resp.headers["Surrogate-Control"] = sc
    cc = ["public"]
    cc += ["max-age=0", "s-maxage=%d" % ttl] if shared else ["max-age=%d" % ttl]
    if CONFIG["stale_while_revalidate"] > 0:
        cc.append("stale-while-revalidate=%d" % CONFIG["stale_while_revalidate"])
    if CONFIG["stale_if_error"] > 0:
        cc.append("stale-if-error=%d" % CONFIG["stale_if_error"])
    resp.headers["Cache-Control"] = ", ".join(cc)
    resp.headers["Surrogate-Key"] = " ".join(keys)
    return resp


def uncacheable(body, status=200, content_type="text/plain; charset=utf-8"):
    resp = Response(body, status=status, content_type=content_type)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def changed(status, tags=(), location=None, body=""):
    """The answer to a write: the tags it changed in Donut-Invalidate."""
    resp = uncacheable(body, status=status)
    if status == 204:
        del resp.headers["Content-Type"]
    if tags:
        resp.headers["Donut-Invalidate"] = " ".join(tags)
    if location:
        resp.headers["Location"] = location
    return resp


def text_field(*names):
    """A write's text: the first named form field present, else the raw
    body (so `curl --data-binary 'Rain' -X PUT` and `-F text=Rain` both
    work), decoded as UTF-8 and stripped."""
    if request.mimetype in ("application/x-www-form-urlencoded",
                            "multipart/form-data"):
        for n in names:
            if n in request.form:
                return request.form[n].strip()
    return request.get_data(as_text=True).strip()


# --------------------------------------------------------------------------
# Hooks: read the body, fail mode, delays.

def failing():
    with STATE_LOCK:
        if STATE["fail"]:
            return True
    return bool(CONFIG["fail_file"]) and os.path.exists(CONFIG["fail_file"])


@app.before_request
def before():
    request.get_data(cache=True)  # read the body once; form parsing reuses it
    if request.path.startswith("/admin/"):
        return None
    if failing():
        resp = uncacheable("origin failing on purpose\n", status=503)
        resp.headers["Retry-After"] = "1"
        return resp
    if request.method in ("GET", "HEAD"):
        if request.path.startswith("/frag/"):
            ms = CONFIG["delay_ms"]
        elif request.path == "/" or request.path.startswith(("/article/", "/bench/")):
            ms = CONFIG["page_delay_ms"]
        else:
            ms = 0
        if ms > 0:
            time.sleep(ms / 1000.0)
    return None


@app.teardown_appcontext
def close_db(_exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()


@app.errorhandler(404)
@app.errorhandler(405)
@app.errorhandler(400)
@app.errorhandler(413)
def http_error(e):
    resp = uncacheable("%d %s\n" % (e.code, e.name), status=e.code)
    if e.code == 405 and getattr(e, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(e.valid_methods)
    return resp


# --------------------------------------------------------------------------
# Pages (level 1)

def page(article_id, keys, greeting, visit, title=None):
    if article_id is not None:
        a = article_or_404(article_id)
        title = title or a["title"]
    body = render("page.html", title=title, article_id=article_id,
                  greeting=greeting, visit=visit)
    return cacheable(body, keys, esi=True)


@app.get("/")
def home():
    aid = newest_article_id()
    keys = ["page", "home", "articles"] + (["article-%d" % aid] if aid else [])
    return page(aid, keys, greeting=True, visit=True, title="Front page")


@app.get("/article/<int:article_id>")
def article_page(article_id):
    return page(article_id, ["page", "article-%d" % article_id],
                greeting=True, visit=False)


@app.get("/bench/<int:article_id>")
def bench_page(article_id):
    # Exactly 1 + 3 + 9 cacheable objects, nothing personalised.
    return page(article_id, ["page", "bench", "article-%d" % article_id],
                greeting=False, visit=False)


# --------------------------------------------------------------------------
# Level 2 fragments

@app.get("/frag/header")
def frag_header():
    return cacheable(render("header.html"), ["header"], esi=True)


@app.get("/frag/article/<int:article_id>")
def frag_article(article_id):
    a = article_or_404(article_id)
    paragraphs = [p for p in a["body"].split("\n\n") if p.strip()]
    return cacheable(render("article.html", a=a, paragraphs=paragraphs),
                     ["article-%d" % article_id], esi=True)


@app.get("/frag/sidebar")
def frag_sidebar():
    return cacheable(render("sidebar.html"), ["sidebar"], esi=True)


# --------------------------------------------------------------------------
# Level 3 fragments

@app.get("/frag/nav")
def frag_nav():
    rows = get_db().execute("SELECT name, path FROM sections ORDER BY id").fetchall()
    return cacheable(render("nav.html", sections=rows), ["nav"])


@app.get("/frag/weather")
def frag_weather():
    return cacheable(render("weather.html", weather=setting("weather")), ["weather"])


@app.get("/frag/ticker")
def frag_ticker():
    # No Surrogate-Control: the lifetime is Cache-Control's s-maxage.
    return cacheable(render("ticker.html", ticker=setting("ticker")), ["ticker"],
                     surrogate=False)


@app.get("/frag/author/<int:author_id>")
def frag_author(author_id):
    au = get_db().execute("SELECT * FROM authors WHERE id = ?",
                          (author_id,)).fetchone()
    if au is None:
        abort(404)
    return cacheable(render("author.html", au=au), ["author-%d" % author_id])


@app.get("/frag/comments/<int:article_id>")
def frag_comments(article_id):
    article_or_404(article_id)
    rows = get_db().execute(
        "SELECT id, author, body FROM comments WHERE article_id = ? ORDER BY id",
        (article_id,)).fetchall()
    return cacheable(render("comments.html", comments=rows),
                     ["comments-%d" % article_id])


@app.get("/frag/tags/<int:article_id>")
def frag_tags(article_id):
    article_or_404(article_id)
    rows = get_db().execute(
        "SELECT name FROM topics WHERE article_id = ? ORDER BY name",
        (article_id,)).fetchall()
    return cacheable(render("tags.html", topics=rows), ["tags-%d" % article_id])


@app.get("/frag/popular")
def frag_popular():
    rows = get_db().execute(
        "SELECT id, title FROM articles ORDER BY rank, id LIMIT 5").fetchall()
    return cacheable(render("list.html", kind="popular", heading="Popular",
                            articles=rows), ["popular", "articles"])


@app.get("/frag/newest")
def frag_newest():
    rows = get_db().execute(
        "SELECT id, title FROM articles ORDER BY id DESC LIMIT 5").fetchall()
    return cacheable(render("list.html", kind="newest", heading="Newest",
                            articles=rows), ["newest", "articles"])


@app.get("/frag/ad")
def frag_ad():
    # Like a third-party ad server: only Cache-Control: public, max-age=N.
    return cacheable(render("ad.html", ad=setting("ad")), ["ad"],
                     surrogate=False, shared=False)


# --------------------------------------------------------------------------
# Uncacheable fragments

@app.get("/frag/greeting")
def frag_greeting():
    name = request.cookies.get("name", "").strip() or "guest"
    resp = Response(render("greeting.html", visitor=name),
                    content_type="text/html; charset=utf-8")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@app.get("/frag/visit")
def frag_visit():
    # Cacheable in every respect but one: it sets a cookie.
    resp = cacheable(render("visit.html"), ["visit"])
    resp.headers["Set-Cookie"] = "visited=1; Path=/"
    return resp


# --------------------------------------------------------------------------
# Writes

@app.put("/frag/weather")
def put_weather():
    text = text_field("text", "weather")
    if not text:
        abort(400)
    db = get_db()
    db.execute("UPDATE settings SET value = ? WHERE key = 'weather'", (text,))
    db.commit()
    return changed(204)  # the target URI is all that changed


@app.put("/frag/ticker")
def put_ticker():
    text = text_field("text", "ticker")
    if not text:
        abort(400)
    db = get_db()
    db.execute("UPDATE settings SET value = ? WHERE key = 'ticker'", (text,))
    db.commit()
    return changed(204, tags=["ticker"])


@app.post("/comments/<int:article_id>")
def post_comment(article_id):
    article_or_404(article_id)
    text = text_field("body", "text", "comment")
    if not text:
        abort(400)
    author = (request.form.get("author", "") if request.mimetype in (
        "application/x-www-form-urlencoded", "multipart/form-data") else "")
    author = author.strip() or "anonymous"
    db = get_db()
    cur = db.execute(
        "INSERT INTO comments (article_id, author, body) VALUES (?, ?, ?)",
        (article_id, author, text))
    db.commit()
    return changed(201, tags=["comments-%d" % article_id],
                   location="/frag/comments/%d" % article_id,
                   body="comment %d added\n" % cur.lastrowid)


@app.put("/authors/<int:author_id>")
def put_author(author_id):
    name = text_field("name", "text")
    if not name:
        abort(400)
    db = get_db()
    cur = db.execute("UPDATE authors SET name = ? WHERE id = ?", (name, author_id))
    if cur.rowcount == 0:
        abort(404)
    db.commit()
    return changed(204, tags=["author-%d" % author_id])


@app.post("/articles")
def post_article():
    f = request.form
    title = f.get("title", "").strip()
    body = f.get("body", "").strip()
    try:
        author_id = int(f.get("author_id", "1"))
    except ValueError:
        abort(400)
    if not title or not body:
        abort(400)
    db = get_db()
    if db.execute("SELECT 1 FROM authors WHERE id = ?", (author_id,)).fetchone() is None:
        abort(400)
    rank = db.execute("SELECT COALESCE(MAX(rank), 0) + 1 FROM articles").fetchone()[0]
    cur = db.execute(
        "INSERT INTO articles (title, body, author_id, rank) VALUES (?, ?, ?, ?)",
        (title, body, author_id, rank))
    db.commit()
    aid = cur.lastrowid
    return changed(201, tags=["articles"], location="/article/%d" % aid,
                   body="article %d added\n" % aid)


@app.put("/article/<int:article_id>")
def put_article(article_id):
    article_or_404(article_id)
    f = request.form
    db = get_db()
    title = f.get("title", "").strip()
    body = f.get("body", "").strip()
    if not title and not body:
        abort(400)
    if title:
        db.execute("UPDATE articles SET title = ? WHERE id = ?", (title, article_id))
    if body:
        db.execute("UPDATE articles SET body = ? WHERE id = ?", (body, article_id))
    db.commit()
    return changed(204, tags=["article-%d" % article_id, "articles"])


@app.delete("/article/<int:article_id>")
def delete_article(article_id):
    article_or_404(article_id)
    db = get_db()
    db.execute("DELETE FROM comments WHERE article_id = ?", (article_id,))
    db.execute("DELETE FROM topics WHERE article_id = ?", (article_id,))
    db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
    db.commit()
    return changed(204, tags=["article-%d" % article_id, "comments-%d" % article_id,
                              "tags-%d" % article_id, "articles"])


# --------------------------------------------------------------------------
# Test switches (never failed, never delayed, never cacheable)

@app.route("/admin/fail", methods=["GET", "POST"])
def admin_fail():
    if request.method == "POST":
        word = request.get_data(as_text=True).strip().lower()
        with STATE_LOCK:
            if word in ("on", "1", "true"):
                STATE["fail"] = True
            elif word in ("off", "0", "false"):
                STATE["fail"] = False
            else:
                STATE["fail"] = not STATE["fail"]
    return uncacheable("fail %s\n" % ("on" if failing() else "off"))


@app.route("/admin/delay", methods=["GET", "POST"])
def admin_delay():
    if request.method == "POST":
        try:
            CONFIG["delay_ms"] = max(0, int(request.get_data(as_text=True).strip()))
        except ValueError:
            abort(400)
    return uncacheable("delay %d ms\n" % CONFIG["delay_ms"])


@app.get("/healthz")
def healthz():
    return uncacheable("ok\n")


# --------------------------------------------------------------------------

def env_int(name, default):
    v = os.environ.get(name)
    try:
        return int(v) if v not in (None, "") else default
    except ValueError:
        sys.exit("app.py: %s must be an integer, not %r" % (name, v))


def main(argv=None):
    p = argparse.ArgumentParser(
        description="A small Flask + SQLite news site with ESI fragments, "
                    "to run behind donut serve --upstream or Varnish.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=env_int("DONUT_ORIGIN_PORT", 5000))
    p.add_argument("--db", default=os.environ.get("DONUT_ORIGIN_DB"),
                   help="SQLite file, created and seeded when empty "
                        "(default: a temporary file removed at exit)")
    p.add_argument("--reset", action="store_true",
                   help="empty the database and seed it again")
    p.add_argument("--log", default=os.environ.get("DONUT_ORIGIN_LOG"),
                   help="append 'METHOD TARGET STATUS' per response here "
                        "(default: standard error)")
    p.add_argument("--ttl", type=int, default=env_int("DONUT_ORIGIN_TTL", 3600),
                   help="shared-cache lifetime in seconds (default 3600)")
    p.add_argument("--stale-if-error", type=int,
                   default=env_int("DONUT_ORIGIN_STALE_IF_ERROR", 60),
                   help="Cache-Control stale-if-error seconds; 0 omits it (default 60)")
    p.add_argument("--stale-while-revalidate", type=int,
                   default=env_int("DONUT_ORIGIN_STALE_WHILE_REVALIDATE", 0),
                   help="Cache-Control stale-while-revalidate seconds; 0 omits it "
                        "(default 0)")
    p.add_argument("--delay-ms", type=int, default=env_int("DONUT_ORIGIN_DELAY_MS", 0),
                   help="sleep this long before every GET/HEAD /frag/* response")
    p.add_argument("--page-delay-ms", type=int,
                   default=env_int("DONUT_ORIGIN_PAGE_DELAY_MS", 0),
                   help="sleep this long before every GET/HEAD page response")
    p.add_argument("--fail-file", default=os.environ.get("DONUT_ORIGIN_FAIL_FILE"),
                   help="answer 503 to everything but /admin/* while this file exists")
    args = p.parse_args(argv)

    tmpdir = None
    if not args.db:
        tmpdir = tempfile.TemporaryDirectory(prefix="donut-origin-")
        args.db = os.path.join(tmpdir.name, "news.db")
    CONFIG.update(db=args.db, log=args.log, ttl=args.ttl,
                  stale_if_error=args.stale_if_error,
                  stale_while_revalidate=args.stale_while_revalidate,
                  delay_ms=args.delay_ms, page_delay_ms=args.page_delay_ms,
                  fail_file=args.fail_file)

    db = connect()
    try:
        db.execute("PRAGMA journal_mode = WAL")
        if args.reset:
            for t in ("comments", "topics", "articles", "authors", "sections",
                      "settings"):
                db.execute("DROP TABLE IF EXISTS %s" % t)
            db.commit()
        seed(db)
    finally:
        db.close()

    app.wsgi_app = LogMiddleware(app.wsgi_app, RequestLog(args.log))

    # Quiet: the request log above replaces werkzeug's, and the banner goes.
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import flask.cli
    flask.cli.show_server_banner = lambda *a, **k: None

    print("donut origin app: http://%s:%d/ (db %s, log %s, ttl %d, delay %d ms)"
          % (args.host, args.port, args.db, args.log or "stderr", args.ttl,
             args.delay_ms), file=sys.stderr, flush=True)
    try:
        app.run(host=args.host, port=args.port, threaded=True, debug=False,
                use_reloader=False)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


if __name__ == "__main__":
    main()
