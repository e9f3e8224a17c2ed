#!/usr/bin/env bash
# test_browser.sh - a real browser against `donut serve`: headless Chromium
# loads /news?id=1, then loads it again with the same profile, and the
# server must have answered the second load with 304 Not Modified.
#
# How the reload is driven: two `chromium --headless --dump-dom` runs share
# one --user-data-dir. The first run stores the page and its ETag in the
# profile's HTTP cache; the page says max-age=0, so the second run must
# revalidate it with If-None-Match, and the server's access log shows what
# it answered to each request Chromium sent (the user agent tells Chromium's
# requests apart). The DOM of both runs must hold the composed page.
#
# Needs Debian's `chromium` package; when it is missing the test says so and
# passes, unless DONUT_REQUIRE_BROWSER=1.
set -euo pipefail
: "${DONUT:?path of the donut binary}"
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "chromium is not installed (apt-get install chromium): skipped"
  [ "${DONUT_REQUIRE_BROWSER:-0}" = 1 ] && exit 1
  exit 0
fi
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
unset MEMCACHED_ADDR REDIS_URL DONUT_STORE || true
export DONUT_CONTROL_TOKEN=browser-test-token-0123456789
"$DONUT" serve --listen 127.0.0.1:0 --control none \
  --access-log "$tmp/access.log" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$tmp/serve.log" 2>/dev/null && break
  sleep 0.05
done
site=$(sed -nE 's/.*listening on (http:[^;]*);.*/\1/p' "$tmp/serve.log")
[ -n "$site" ] || { cat "$tmp/serve.log"; exit 1; }

load() { # dumps the DOM of /news?id=1 with the shared profile
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$tmp/profile" \
    --dump-dom "$site/news?id=1" 2>>"$tmp/chromium.log"
}

fails=0
expect() { # description, command
  if ! "${@:2}"; then
    echo "FAIL: $1" >&2
    fails=$((fails + 1))
  fi
}
load >"$tmp/dom1.html"
load >"$tmp/dom2.html"
expect "the first load shows the page" grep -q 'Weather in tokyo' "$tmp/dom1.html"
expect "the first load shows the comments" grep -q 'comment-2' "$tmp/dom1.html"
expect "the reload shows the same page" grep -q 'Weather in tokyo' "$tmp/dom2.html"
grep 'GET /news?id=1 ' "$tmp/access.log" | grep 'HeadlessChrome' \
  | awk '{print $9}' >"$tmp/statuses"
echo "statuses Chromium got for /news?id=1: $(tr '\n' ' ' <"$tmp/statuses")"
expect "Chromium loaded the page twice" test "$(wc -l <"$tmp/statuses")" -eq 2
expect "the first load got 200" test "$(sed -n 1p "$tmp/statuses")" = 200
expect "the reload got 304" test "$(sed -n 2p "$tmp/statuses")" = 304
if [ "$fails" != 0 ]; then
  cat "$tmp/access.log" >&2
  echo "0 passed, $fails failed"
  exit 1
fi
echo "6 passed, 0 failed"
