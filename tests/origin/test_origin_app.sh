#!/usr/bin/env bash
# test_origin_app.sh - the origin-mode example app (examples/origin/app.py) on its
# own: starts it on a free port with a fresh database, fetches every route
# and checks the caching header fields, the ESI markup (the benchmark page
# is 1 + 3 + 9 cacheable objects), the writes and their Donut-Invalidate
# fields, HTML escaping, the request log, fail mode and the delay knob.
# When varnishd is installed it also checks that examples/origin/varnish.vcl
# compiles. Exits 0 when everything passed, 1 otherwise.
#
# Environment: DONUT_SOURCE_DIR (default: two levels above this script),
# DONUT_ORIGIN_PYTHON (default: the first of /usr/bin/python3 (Debian's
# python3-flask) and python3 that has Flask).
set -u
src=${DONUT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
app_py=$src/examples/origin/app.py
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

python=
for p in ${DONUT_ORIGIN_PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import flask' 2>/dev/null; then
    python=$p; break
  fi
done
if [ -z "$python" ]; then
  bad "no Python with Flask (Debian: apt-get install -y --no-install-recommends python3-flask)"
  finish
fi

dir=$(mktemp -d /tmp/dn-origin-smoke-XXXXXX)
app_pid=
stop_app() {
  if [ -n "$app_pid" ]; then
    kill "$app_pid" 2>/dev/null
    wait "$app_pid" 2>/dev/null
    app_pid=
  fi
}
cleanup() { stop_app; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
base=http://127.0.0.1:$port
log=$dir/requests.log

start_app() {
  "$python" "$app_py" --port "$port" --db "$dir/news.db" --log "$log" \
    --fail-file "$dir/fail" "$@" 2>>"$dir/app.err" &
  app_pid=$!
  for _ in $(seq 600); do  # up to a minute on a busy machine
    curl -sf -o /dev/null "$base/healthz" && return 0
    kill -0 "$app_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

if start_app; then ok; else
  bad "the app did not start: $(cat "$dir/app.err")"; finish
fi

# get PATH [curl args...]: headers in $dir/h (CR removed) and in the
# array hdr (lower-case names), the status in code, the body in $dir/b.
declare -A hdr
code=
get() {
  local path=$1 line name; shift
  curl -s -D "$dir/h.raw" -o "$dir/b" "$@" "$base$path"
  hdr=() code=
  : >"$dir/h"
  while IFS= read -r line; do
    line=${line%$'\r'}
    printf '%s\n' "$line" >>"$dir/h"
    if [ -z "$code" ]; then code=${line#* }; code=${code%% *}; continue; fi
    [[ $line == *:* ]] || continue
    name=${line%%:*}; name=${name,,}
    hdr[$name]=${line#*: }
  done <"$dir/h.raw"
}
status() { echo "$code"; }
field() { local n=${1,,}; echo "${hdr[$n]:-}"; }
includes() {
  local body rest
  body=$(<"$dir/b")
  while [[ $body =~ \<esi:include\ src=\"([^\"]*)\"/\> ]]; do
    echo "${BASH_REMATCH[1]}"
    rest=${body#*"${BASH_REMATCH[0]}"}
    body=$rest
  done
}
expect() { # expect WHAT ACTUAL WANTED
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

# --- Cacheable pages and fragments -------------------------------------
sc_esi='max-age=3600, content="ESI/1.0"'
cc='public, max-age=0, s-maxage=3600, stale-if-error=60'
check_cacheable() { # PATH SURROGATE-CONTROL SURROGATE-KEY INCLUDES...
  local path=$1 sc=$2 keys=$3; shift 3
  get "$path"
  expect "$path status" "$(status)" 200
  expect "$path Content-Type" "$(field Content-Type)" "text/html; charset=utf-8"
  expect "$path Surrogate-Control" "$(field Surrogate-Control)" "$sc"
  expect "$path Surrogate-Key" "$(field Surrogate-Key)" "$keys"
  [ -z "$(field Set-Cookie)$(field Vary)$(field ETag)" ] && ok ||
    bad "$path has Set-Cookie, Vary or ETag: $(cat "$dir/h")"
  expect "$path includes" "$(includes | paste -sd' ')" "$*"
  [ "$#" -eq 0 ] && { grep -q '<esi:' "$dir/b" && bad "$path has ESI markup" || ok; }
  cp "$dir/b" "$dir/b.first"
  get "$path"
  cmp -s "$dir/b" "$dir/b.first" && ok || bad "$path is not deterministic"
}

check_cacheable / "$sc_esi" "page home articles article-12" \
  /frag/header /frag/greeting /frag/visit /frag/article/12 /frag/sidebar
expect "/ Cache-Control" "$(field Cache-Control)" "$cc"
check_cacheable /article/1 "$sc_esi" "page article-1" \
  /frag/header /frag/greeting /frag/article/1 /frag/sidebar
grep -q '<title>Donut caching explained - Donut Daily</title>' "$dir/b" && ok ||
  bad "/article/1 has no title"
check_cacheable /bench/1 "$sc_esi" "page bench article-1" \
  /frag/header /frag/article/1 /frag/sidebar
check_cacheable /frag/header "$sc_esi" header /frag/nav /frag/weather /frag/ticker
check_cacheable /frag/article/1 "$sc_esi" article-1 \
  /frag/author/1 /frag/tags/1 /frag/comments/1
check_cacheable /frag/sidebar "$sc_esi" sidebar /frag/popular /frag/newest /frag/ad
check_cacheable /frag/nav max-age=3600 nav
check_cacheable /frag/weather max-age=3600 weather
grep -q 'Weather: Sunny, 21 °C' "$dir/b" && ok || bad "weather: $(cat "$dir/b")"
check_cacheable /frag/author/1 max-age=3600 author-1
grep -q '<span class="author">Ada Baker</span>' "$dir/b" && ok || bad "author: $(cat "$dir/b")"
check_cacheable /frag/comments/1 max-age=3600 comments-1
expect "comments on 1" "$(grep -c '<li id="comment-' "$dir/b")" 2
check_cacheable /frag/tags/1 max-age=3600 tags-1
check_cacheable /frag/popular max-age=3600 "popular articles"
check_cacheable /frag/newest max-age=3600 "newest articles"
# The ticker has no Surrogate-Control (s-maxage applies), the ad only max-age.
check_cacheable /frag/ticker "" ticker
expect "ticker Cache-Control" "$(field Cache-Control)" "$cc"
check_cacheable /frag/ad "" ad
expect "ad Cache-Control" "$(field Cache-Control)" "public, max-age=3600, stale-if-error=60"

# The benchmark page's closure: 1 + 3 + 9 cacheable objects, 3 levels.
level1=(/bench/7) level2=() level3=()
get /bench/7; mapfile -t level2 < <(includes)
for p in "${level2[@]}"; do get "$p"; mapfile -t -O "${#level3[@]}" level3 < <(includes); done
expect "bench level 2" "${#level2[@]}" 3
expect "bench level 3" "${#level3[@]}" 9
for p in "${level1[@]}" "${level2[@]}" "${level3[@]}"; do
  get "$p"
  if [ "$(status)" = 200 ] &&
     { field Surrogate-Control; field Cache-Control; } | grep -qE '(^|[ ,])(s-maxage|max-age)=3600' &&
     ! field Cache-Control | grep -qi -e private -e no-store &&
     [ -z "$(field Set-Cookie)" ] && [ -n "$(field Surrogate-Key)" ]; then ok
  else bad "bench object $p is not cacheable: $(cat "$dir/h")"; fi
done
for p in "${level3[@]}"; do
  get "$p"; includes | grep -q . && bad "level-3 $p includes more" || ok
done
expect "bench level 3 paths" "${level3[*]}" \
  "/frag/nav /frag/weather /frag/ticker /frag/author/3 /frag/tags/7 /frag/comments/7 /frag/popular /frag/newest /frag/ad"

# --- Uncacheable fragments ------------------------------------------------
get /frag/greeting
expect "greeting Cache-Control" "$(field Cache-Control)" "private, no-store"
expect "greeting (no cookie)" "$(cat "$dir/b")" '<span class="greeting">Hello, guest</span>'
[ -z "$(field Surrogate-Control)$(field Surrogate-Key)" ] && ok || bad "greeting has surrogate fields"
get /frag/greeting -b 'name=<b>Al&ice</b>'
expect "greeting escapes the cookie" "$(cat "$dir/b")" \
  '<span class="greeting">Hello, &lt;b&gt;Al&amp;ice&lt;/b&gt;</span>'
get /frag/visit
expect "visit Set-Cookie" "$(field Set-Cookie)" "visited=1; Path=/"
expect "visit Cache-Control" "$(field Cache-Control)" "$cc"
expect "visit Surrogate-Control" "$(field Surrogate-Control)" "max-age=3600"

# --- Writes ---------------------------------------------------------------
get /frag/weather -X PUT --data-binary 'Hail & <thunder>'
expect "PUT weather" "$(status)" 204
expect "PUT weather Donut-Invalidate" "$(field Donut-Invalidate)" ""
get /frag/weather
grep -q 'Weather: Hail &amp; &lt;thunder&gt;' "$dir/b" && ok || bad "weather after PUT: $(cat "$dir/b")"

get /comments/7 -X POST --data-urlencode 'body=<i>nice</i>' --data-urlencode 'author=zoe'
expect "POST comment" "$(status)" 201
expect "POST comment Location" "$(field Location)" /frag/comments/7
expect "POST comment Donut-Invalidate" "$(field Donut-Invalidate)" comments-7
get /comments/7 -X POST --data-binary 'plain text comment' -H 'Content-Type: text/plain'
expect "POST comment (text body)" "$(status)" 201
get /frag/comments/7
expect "comments on 7" "$(grep -c '<li id="comment-' "$dir/b")" 4
grep -q '<b>zoe</b>: &lt;i&gt;nice&lt;/i&gt;' "$dir/b" && ok || bad "comment not escaped: $(cat "$dir/b")"
get /comments/999 -X POST --data-binary x
expect "POST comment to no article" "$(status)" 404

get /authors/3 -X PUT --data-urlencode 'name=<script>Chloe</script>'
expect "PUT author" "$(status)" 204
expect "PUT author Donut-Invalidate" "$(field Donut-Invalidate)" author-3
get /frag/author/3
grep -q '<span class="author">&lt;script&gt;Chloe&lt;/script&gt;</span>' "$dir/b" && ok ||
  bad "author after PUT: $(cat "$dir/b")"

get /articles -X POST --data-urlencode 'title=Fresh <news>' --data-urlencode 'body=Text' -d author_id=2
expect "POST article" "$(status)" 201
expect "POST article Location" "$(field Location)" /article/13
expect "POST article Donut-Invalidate" "$(field Donut-Invalidate)" articles
get /
expect "/ shows the newest article" "$(field Surrogate-Key)" "page home articles article-13"
get /article/13 -X DELETE
expect "DELETE article" "$(status)" 204
expect "DELETE article Donut-Invalidate" "$(field Donut-Invalidate)" \
  "article-13 comments-13 tags-13 articles"
for p in /article/13 /bench/13 /frag/article/13 /frag/comments/13; do
  get "$p"; expect "$p after DELETE" "$(status)" 404
  expect "$p 404 Cache-Control" "$(field Cache-Control)" no-store
done

# --- Fail mode, delay -----------------------------------------------------
touch "$dir/fail"
get /bench/1; expect "fail file: page" "$(status)" 503
get /frag/weather; expect "fail file: fragment" "$(status)" 503
expect "fail file: 503 Cache-Control" "$(field Cache-Control)" no-store
rm -f "$dir/fail"
get /bench/1; expect "fail file removed" "$(status)" 200
get /admin/fail -X POST --data-binary on; expect "admin fail on" "$(cat "$dir/b")" "fail on"
get /frag/nav; expect "admin fail: fragment" "$(status)" 503
get /admin/fail -X POST; expect "admin fail toggled" "$(cat "$dir/b")" "fail off"
get /frag/nav; expect "admin fail off" "$(status)" 200

# With a 5 s delay, a fragment cannot be answered within curl's 1 s limit
# (exit 28, timed out); /healthz, which has no delay, can within 4 s.
get /admin/delay -X POST --data-binary 5000
if curl -s -o /dev/null --max-time 1 "$base/frag/nav"; then bad "delay: /frag/nav was not delayed"
else [ $? -eq 28 ] && ok || bad "delay: /frag/nav failed other than by timing out"; fi
curl -sf -o /dev/null --max-time 4 "$base/healthz" && ok || bad "delay applies to /healthz"
get /admin/delay -X POST --data-binary 0

# --- The request log ------------------------------------------------------
sleep 0.2
bad_lines=$(grep -cvE '^[A-Z]+ /[^ ]* [0-9]{3}$' "$log")
expect "log lines that are not 'METHOD TARGET STATUS'" "$bad_lines" 0
grep -qx 'PUT /frag/weather 204' "$log" && ok || bad "log has no 'PUT /frag/weather 204'"
grep -qx 'GET /frag/weather 503' "$log" && ok || bad "log has no 'GET /frag/weather 503'"
n=$(grep -c '^GET /frag/weather ' "$log")
[ "$n" -ge 4 ] && ok || bad "log counts $n GET /frag/weather"

# --- Flags ----------------------------------------------------------------
stop_app
if start_app --ttl 5 --stale-if-error 0 --stale-while-revalidate 7; then ok
else bad "restart with flags: $(cat "$dir/app.err")"; fi
get /article/1
expect "--ttl Surrogate-Control" "$(field Surrogate-Control)" 'max-age=5, content="ESI/1.0"'
expect "--ttl Cache-Control" "$(field Cache-Control)" \
  "public, max-age=0, s-maxage=5, stale-while-revalidate=7"
# The database persists across restarts.
get /frag/author/3
grep -q '&lt;script&gt;Chloe' "$dir/b" && ok || bad "the data did not persist"
stop_app

# --- The Varnish VCL compiles ---------------------------------------------
varnishd=${DONUT_VARNISHD_BIN:-$(command -v varnishd || echo /usr/sbin/varnishd)}
if [ -x "$varnishd" ]; then
  if "$varnishd" -C -n "$dir/varnish" -f "$src/examples/origin/varnish.vcl" \
      >/dev/null 2>"$dir/vcl.err"; then ok
  else bad "varnish.vcl does not compile: $(tail -20 "$dir/vcl.err")"; fi
else
  echo "note: varnishd not installed, varnish.vcl not compiled"
fi

finish
