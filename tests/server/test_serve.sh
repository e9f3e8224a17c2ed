#!/usr/bin/env bash
# test_serve.sh - `donut serve` and the operator commands end to end, over
# real TCP: the startup line, the generated token file, ETag and 304, purge
# through the control API, inspect, deps, stats, exit codes, the access
# log, a CDN profile, SIGTERM with exit status 0, and (when memcached is
# installed) two servers sharing one memcached purged directly through the
# store.
set -euo pipefail
: "${DONUT:?path of the donut binary}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
unset DONUT_CONTROL_TOKEN MEMCACHED_ADDR REDIS_URL DONUT_STORE DONUT_CDN \
  DONUT_SERVER || true
export XDG_RUNTIME_DIR=$tmp/run
mkdir -p "$XDG_RUNTIME_DIR"
fails=0
pass=0
check() { # description, then a command that must succeed
  local what=$1
  shift
  if "$@"; then
    pass=$((pass + 1))
  else
    echo "FAIL: $what" >&2
    fails=$((fails + 1))
  fi
}

# start_server NAME ARGS... : starts donut serve on free ports, waits for
# its startup line, sets SITE_<NAME>, CTL_<NAME> and PID_<NAME>.
start_server() {
  local name=$1
  shift
  "$DONUT" serve --listen 127.0.0.1:0 --control 127.0.0.1:0 "$@" \
    2>"$tmp/$name.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    grep -q 'listening on' "$tmp/$name.log" 2>/dev/null && break
    sleep 0.05
  done
  local line
  line=$(grep 'listening on' "$tmp/$name.log") || {
    cat "$tmp/$name.log" >&2
    return 1
  }
  printf -v "SITE_$name" '%s' "$(echo "$line" | sed -E 's/.*listening on (http:[^;]*);.*/\1/')"
  printf -v "CTL_$name" '%s' "$(echo "$line" | sed -E 's/.*control API on (http:[^ ]*) .*/\1/')"
  printf -v "PID_$name" '%s' "$pid"
}

etag_of() { curl -s -D - -o /dev/null "$1" | tr -d '\r' | sed -n 's/^ETag: //Ip'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---- one server on the memory store ----------------------------------------
start_server a --access-log "$tmp/access.log"
site=$SITE_a ctl=$CTL_a
line=$(grep 'listening on' "$tmp/a.log")
check "startup line names the store" grep -q 'store memory' <<<"$line"
check "startup line names the CDN profile" grep -q 'cdn none' <<<"$line"
check "startup line names the token file" \
  grep -q "token in $XDG_RUNTIME_DIR/donut/control-token" <<<"$line"
check "token file is private" \
  test "$(stat -c %a "$XDG_RUNTIME_DIR/donut/control-token")" = 600
export DONUT_SERVER=$ctl

e1=$(etag_of "$site/news?id=1")
check "news has an ETag" test -n "$e1"
check "If-None-Match gives 304" \
  test "$(status_of -H "If-None-Match: $e1" "$site/news?id=1")" = 304

out=$("$DONUT" purge --tag weather)
check "purge prints what it did" grep -qx 'invalidated tag weather' <<<"$out"
e2=$(etag_of "$site/news?id=1")
check "the ETag changes after purging weather" test "$e1" != "$e2"
check "the old ETag no longer matches" \
  test "$(status_of -H "If-None-Match: $e1" "$site/news?id=1")" = 200
stats=$("$DONUT" stats)
check "only weather rendered again" \
  grep -q 'news 1 weather 2 comments 1' <<<"$stats"
token=$(cat "$XDG_RUNTIME_DIR/donut/control-token")
metrics=$(curl -s -H "Authorization: Bearer $token" "$ctl/metrics")
check "metrics count renders per renderer" \
  grep -qx 'donut_renders_total{renderer="weather"} 2' <<<"$metrics"
check "stats --json is JSON" \
  python3 -c 'import json,sys; json.load(sys.stdin)' < <("$DONUT" stats --json)

out=$("$DONUT" purge --uri '/comment?id=1' --json)
check "purge --json lists the URI" \
  grep -q '"app://self/comment?id=1"' <<<"$out"

curl -s -b name=alice "$site/home" >"$tmp/home.html"
check "home greets the cookie's name" grep -q 'Welcome to alice' "$tmp/home.html"
check "home has no ETag" test -z "$(etag_of "$site/home")"
out=$("$DONUT" inspect /news?id=1)
check "inspect shows a cached page" grep -q 'cached     yes' <<<"$out"
check "inspect lists the dependents" grep -q 'app://self/home' <<<"$out"
out=$("$DONUT" deps /home)
check "deps shows the tree" grep -q '└── app://self/news?id=1' <<<"$out"
check "deps shows nested holes" grep -q 'weather?city=tokyo' <<<"$out"
out=$("$DONUT" deps --reverse '/weather?city=tokyo')
check "deps --reverse reaches /home" grep -q 'app://self/home' <<<"$out"
check "deps --json is JSON" \
  python3 -c 'import json,sys; json.load(sys.stdin)' < <("$DONUT" deps --json /home)

set +e
DONUT_CONTROL_TOKEN=wrong-token-0123456789abcdef "$DONUT" stats 2>/dev/null
check "a wrong token exits 4" test $? = 4
"$DONUT" purge --tag 'bad tag' 2>/dev/null
check "a bad tag exits 1" test $? = 1
"$DONUT" purge 2>/dev/null
check "nothing to purge exits 2" test $? = 2
"$DONUT" stats --server http://127.0.0.1:1 2>/dev/null
check "an unreachable server exits 3" test $? = 3
set -e

# A second server of the same user shares the token file instead of
# replacing it: the command line reaches both.
token_before=$(cat "$XDG_RUNTIME_DIR/donut/control-token")
start_server a2
check "a second server keeps the token" \
  test "$(cat "$XDG_RUNTIME_DIR/donut/control-token")" = "$token_before"
check "the first server is still reachable" "$DONUT" stats --server "$ctl"
check "the second server is reachable" "$DONUT" stats --server "$CTL_a2"
kill -TERM "$PID_a2"
# A token file that others could have written is refused.
chmod 644 "$XDG_RUNTIME_DIR/donut/control-token"
set +e
err=$("$DONUT" stats --server "$ctl" 2>&1)
rc=$?
set -e
check "a token file readable by others is refused" test "$rc" = 1
check "the refusal says why" grep -q "not a private file" <<<"$err"
chmod 600 "$XDG_RUNTIME_DIR/donut/control-token"

check "the access log has the 304" grep -q '"GET /news?id=1 HTTP/1.1" 304 0 ' "$tmp/access.log"
check "the access log marks control requests" grep -q 'POST /purge.* control$' "$tmp/access.log"

kill -TERM "$PID_a"
set +e
wait "$PID_a"
rc=$?
set -e
check "SIGTERM exits 0" test "$rc" = 0
check "the server says it stopped" grep -q 'donut serve: stopped' "$tmp/a.log"

# ---- a CDN profile -----------------------------------------------------------
DONUT_CONTROL_TOKEN=test-token-0123456789abcdef start_server b --cdn fastly
check "startup line names fastly" grep -q 'cdn fastly' "$tmp/b.log"
check "fastly gets Surrogate-Key" \
  grep -qi '^Surrogate-Key: .*weather' < <(curl -s -D - -o /dev/null "$SITE_b/news?id=2")
check "the env token is reported" grep -q 'token from DONUT_CONTROL_TOKEN' "$tmp/b.log"
kill -INT "$PID_b"
set +e
wait "$PID_b"
check "SIGINT exits 0" test $? = 0
set -e

# ---- several loop threads on one port -----------------------------------------
DONUT_CONTROL_TOKEN=test-token-0123456789abcdef start_server t --threads 3
check "startup line names the loop threads" grep -q '3 loop threads' "$tmp/t.log"
for i in $(seq 30); do curl -s -o /dev/null "$SITE_t/comment?id=1"; done
n=$(curl -s -H 'Authorization: Bearer test-token-0123456789abcdef' "$CTL_t/stats" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["requests"])')
check "the counters add up over every loop (30 + this one)" test "$n" = 31
kill -TERM "$PID_t"
set +e
wait "$PID_t"
check "SIGTERM stops every loop and exits 0" test $? = 0
set -e

# ---- the control token: too long, too short in its file, not on loopback --
long=$(head -c 600 /dev/zero | tr '\0' a)
set +e
err=$(DONUT_CONTROL_TOKEN=$long timeout 5 "$DONUT" serve --listen 127.0.0.1:0 \
  --control 127.0.0.1:0 2>&1 </dev/null)
rc=$?
set -e
check "a token over 512 characters stops serve at once" test "$rc" = 1
check "the refusal says the token is too long" \
  grep -q 'DONUT_CONTROL_TOKEN is 600 characters long' <<<"$err"
set +e
err=$(DONUT_CONTROL_TOKEN=$long "$DONUT" stats --server http://127.0.0.1:9 2>&1)
set -e
check "a client refuses a token over 512 characters too" \
  grep -q 'DONUT_CONTROL_TOKEN is 600 characters long' <<<"$err"

tokfile=$XDG_RUNTIME_DIR/donut/control-token
printf 'short\n' >"$tokfile"
chmod 600 "$tokfile"
start_server s
check "a too-short token in the file is replaced" \
  grep -Eqx '[0-9a-f]{64}' "$tokfile"
check "serve says it replaced the token" grep -q 'replacing it' "$tmp/s.log"
check "the new token works" "$DONUT" stats --server "$CTL_s"
kill -TERM "$PID_s"
wait "$PID_s" || true

DONUT_CONTROL_TOKEN=test-token-0123456789abcdef start_server w --control 0.0.0.0:0
check "a control API off loopback warns that the token is in clear text" \
  grep -q 'not a loopback address: its bearer token travels in clear text' \
  "$tmp/w.log"
check "a control API on loopback does not warn" \
  bash -c "! grep -q 'clear text' '$tmp/s.log'"
kill -TERM "$PID_w"
wait "$PID_w" || true

# ---- two servers on one memcached, purged through the store ---------------
if command -v memcached >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  user=()
  [ "$(id -u)" = 0 ] && user=(-u root)
  memcached -l 127.0.0.1 -p "$port" -U 0 "${user[@]}" &
  pids+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  export MEMCACHED_ADDR=127.0.0.1:$port
  export DONUT_NAMESPACE=t$$
  DONUT_CONTROL_TOKEN=test-token-0123456789abcdef start_server m1
  DONUT_CONTROL_TOKEN=test-token-0123456789abcdef start_server m2
  check "startup line names memcached" grep -q 'store memcached' "$tmp/m1.log"
  check "shared stores run engine calls on the thread pool" \
    grep -q 'engine calls on the thread pool' "$tmp/m1.log"
  x1=$(etag_of "$SITE_m1/news?id=1")
  x2=$(etag_of "$SITE_m2/news?id=1")
  check "both servers serve the same page" test -n "$x1" -a "$x1" = "$x2"
  out=$(env -u DONUT_SERVER "$DONUT" purge --tag weather) || true
  check "purge goes to the store" grep -q '^via memcached' <<<"$out"
  y1=$(etag_of "$SITE_m1/news?id=1")
  y2=$(etag_of "$SITE_m2/news?id=1")
  check "the purge reached the first server" test "$y1" != "$x1"
  check "the purge reached the second server" test "$y2" != "$x2"
  out=$(env -u DONUT_SERVER "$DONUT" inspect /news?id=1) || true
  check "inspect reads the store" grep -q 'cached     yes' <<<"$out"
  kill -TERM "$PID_m1" "$PID_m2"
  unset MEMCACHED_ADDR
else
  echo "memcached not installed: shared-store part skipped"
fi

echo "$pass passed, $fails failed"
test "$fails" = 0
