#!/usr/bin/env bash
# bench_origin.sh - origin mode against Varnish, in one run, in front of the
# same application (examples/origin/app.py, Flask + SQLite, ESI pages).
#
#   DONUT=build/donut bench/bench_origin.sh      (default build/donut)
#   DURATION=5 ROUNDS=3 bench/bench_origin.sh
#
# It starts, on free loopback ports, as this user's own processes with
# their files in a temporary directory:
#   - app A behind `donut serve --upstream` (memory store, --control none),
#   - app B behind varnishd with examples/origin/varnish.vcl (a copy with the
#     backend port substituted),
#   - app C (--delay-ms/--page-delay-ms 200) behind a second donut, for
#     the hits-under-miss-load part,
# so every cache has its own request log to count upstream fetches in.
#
# 1. wrk on /bench/3 (1 page + 3 + 9 cached fragments): 200s, and 304s
#    (donut: If-None-Match with the page's ETag; Varnish sends no validator
#    for this page, so it gets If-Modified-Since with the page's Date, the
#    one conditional it answers 304 to), ROUNDS rounds in turns, median.
# 2. PUT /frag/weather through each cache, then GET /bench/3 once: the
#    GETs each app saw.
# 3. The page's validator, a fragment change, then the old validator:
#    what each cache answers.
# 4. Cached /bench/3 through donut idle, then while wrk keeps
#    200 connections asking for distinct uncached pages
#    (/bench/<n>?r=<unique>, a 200 ms upstream fetch each); the ratio of
#    the medians, the misses completed in the measured window, and where
#    the CPU went (the loop thread's time on a CPU and waiting for one,
#    from schedstat). Two variants: the app and the miss generator at
#    nice 19 (roughly, an app on cores of its own), and a control that
#    sends the same miss load straight to the app, not through donut: what
#    the app and the load generator alone take from the hits.
#
# Needs wrk, varnishd (Debian's varnish, with varnish-modules for xkey),
# curl, and a python3 with Flask (DONUT_ORIGIN_PYTHON, default
# /usr/bin/python3, Debian's python3-flask). Takes about 3 minutes.
# port_NAME and pid_NAME are set through printf -v.
# shellcheck disable=SC2154
set -euo pipefail
cd "$(dirname "$0")/.."
donut=${DONUT:-build/donut}
py=${DONUT_ORIGIN_PYTHON:-/usr/bin/python3}
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
conns=${CONNECTIONS:-32}
miss_conns=${MISS_CONNECTIONS:-200}
delay_ms=${DELAY_MS:-200}
export PATH=$PATH:/usr/sbin
for tool in wrk varnishd curl; do
  command -v "$tool" >/dev/null || {
    echo "bench_origin: $tool is not installed" >&2
    exit 1
  }
done
[ -x "$donut" ] || {
  echo "bench_origin: no donut binary at $donut (set DONUT)" >&2
  exit 1
}
"$py" -c 'import flask' 2>/dev/null || {
  echo "bench_origin: $py has no Flask (apt-get install python3-flask)" >&2
  exit 1
}
vcl_src=examples/origin/varnish.vcl
app=examples/origin/app.py

tmp=$(mktemp -d)
# varnishd's child drops privileges and must still read the VCL copies.
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench_origin: nothing listens on port $1" >&2
  return 1
}
# header FIELD CURL_ARGS... -> the value of FIELD in the response
header() {
  local f=$1
  shift
  curl -s -D - -o /dev/null "$@" | tr -d '\r' |
    sed -n "s/^$f: //Ip" | head -1
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
lines() { wc -l <"$1" | tr -d ' '; }

# start_app NAME [app flags...] -> sets port_NAME; log in $tmp/NAME.log
start_app() {
  local name=$1 port
  shift
  port=$(free_port)
  "$py" "$app" --port "$port" --db "$tmp/$name.db" --log "$tmp/$name.log" \
    "$@" 2>"$tmp/$name.err" &
  pids+=($!)
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$!"
}
# start_donut NAME UPSTREAM_PORT -> port_NAME, pid_NAME
start_donut() {
  local name=$1 port
  port=$(free_port)
  unset MEMCACHED_ADDR REDIS_URL DONUT_STORE DONUT_CONFIG || true
  "$donut" serve --upstream "http://127.0.0.1:$2" \
    --listen "127.0.0.1:$port" --control none 2>"$tmp/$name.err" &
  pids+=($!)
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$!"
}
# start_varnish NAME UPSTREAM_PORT -> port_NAME, pid_NAME
start_varnish() {
  local name=$1 port
  port=$(free_port)
  sed "s/^\([[:space:]]*\.port = \"\)5000\";/\1$2\";/" "$vcl_src" \
    >"$tmp/$name.vcl"
  grep -q "\.port = \"$2\";" "$tmp/$name.vcl" || {
    echo "bench_origin: no '.port = \"5000\";' to substitute in $vcl_src" >&2
    exit 1
  }
  chmod 644 "$tmp/$name.vcl"
  varnishd -F -a "127.0.0.1:$port" -f "$tmp/$name.vcl" -n "$tmp/$name.n" \
    -s malloc,256m >"$tmp/$name.err" 2>&1 &
  pids+=($!)
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$!"
}

start_app appd
start_app appv
start_app appslow --delay-ms "$delay_ms" --page-delay-ms "$delay_ms"
wait_port "$port_appd"
wait_port "$port_appv"
wait_port "$port_appslow"
start_donut donut "$port_appd"
start_varnish varnish "$port_appv"
start_donut donutslow "$port_appslow"
for p in "$port_donut" "$port_varnish" "$port_donutslow"; do
  wait_port "$p"
done
D=http://127.0.0.1:$port_donut
V=http://127.0.0.1:$port_varnish
page=/bench/3

# ---- 1. cached 200s and 304s ------------------------------------------------
for u in "$D" "$V"; do
  for _ in 1 2 3; do curl -s -o /dev/null "$u$page"; done
done
etag=$(header ETag "$D$page")
vetag=$(header ETag "$V$page")
vlm=$(header Last-Modified "$V$page")
vdate=$(header Date "$V$page")
d304=$(status -H "If-None-Match: $etag" "$D$page")
v304_inm=$(status -H "If-None-Match: ${vetag:-\"x\"}" "$V$page")
v304=$(status -H "If-Modified-Since: $vdate" "$V$page")
bytes=$(curl -s "$D$page" | wc -c | tr -d ' ')
cmp -s <(curl -s "$D$page") <(curl -s "$V$page") || {
  echo "bench_origin: donut and Varnish serve different bytes for $page" >&2
  exit 1
}

# measure URL [HEADER] -> "req/s p99 non-2xx/3xx bytes/response" of one run
to_bytes() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    m = (u == "KB") ? 1024 : (u == "MB") ? 1048576 : (u == "GB") ? 1073741824 : 1
    printf "%.0f", n * m }'
}
measure() {
  local url=$1
  shift
  local args=(-t "$threads" -c "$conns" -d "${duration}s" --latency)
  [ $# -gt 0 ] && args+=(-H "$1")
  wrk "${args[@]}" "$url" >"$tmp/wrk.out"
  local read
  read=$(awk '/requests in/ {print $5}' "$tmp/wrk.out")
  awk -v rb="$(to_bytes "$read")" '
    /requests in/ {n = $1}
    /^Requests\/sec:/ {rps = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx or 3xx/ {bad = $5}
    END {printf "%s %s %d %.0f\n", rps, p99, bad, (n ? rb / n : 0)}' "$tmp/wrk.out"
}
# median FILE -> the median line by req/s (first column)
median() { sort -n "$1" | sed -n "$((($(wc -l <"$1") + 1) / 2))p"; }

names=("donut, 200" "Varnish 7.1, 200" "donut, 304 (If-None-Match)"
  "Varnish 7.1, 304 (If-Modified-Since)")
urls=("$D$page" "$V$page" "$D$page" "$V$page")
hdrs=("" "" "If-None-Match: $etag" "If-Modified-Since: $vdate")
ad0=$(lines "$tmp/appd.log")
av0=$(lines "$tmp/appv.log")
for _ in $(seq "$rounds"); do
  for i in "${!names[@]}"; do
    if [ -n "${hdrs[$i]}" ]; then
      measure "${urls[$i]}" "${hdrs[$i]}" >>"$tmp/r1.$i"
    else
      measure "${urls[$i]}" >>"$tmp/r1.$i"
    fi
  done
done
hit_fetches_d=$(($(lines "$tmp/appd.log") - ad0))
hit_fetches_v=$(($(lines "$tmp/appv.log") - av0))

# ---- 2. upstream fetches after one fragment changes -------------------------
# after_change NAME URL TEXT -> "GETs-the-app-saw status" after PUT + one GET
after_change() {
  local log=$tmp/$1.log put n0
  put=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "$3" \
    "$2/frag/weather")
  n0=$(lines "$log")
  curl -s "$2$page" >"$tmp/$1.page"
  grep -q "Weather: $3<" "$tmp/$1.page" || put="$put, page without the change"
  tail -n +"$((n0 + 1))" "$log" | grep -c '^GET ' || true
  tail -n +"$((n0 + 1))" "$log" | grep '^GET ' | tr '\n' ';' >"$tmp/$1.fetched"
  echo "$put" >"$tmp/$1.put"
}
fetch_d=$(after_change appd "$D" "Rain, 12 C")
fetch_v=$(after_change appv "$V" "Rain, 12 C")

# ---- 3. the old validator after a fragment change ---------------------------
old_etag=$(header ETag "$D$page")
curl -s -o /dev/null -X PUT --data-binary "Fog, 9 C" "$D/frag/weather"
curl -s -D "$tmp/d3.h" -o "$tmp/d3.body" -H "If-None-Match: $old_etag" "$D$page"
d3_status=$(head -1 "$tmp/d3.h" | awk '{print $2}')
d3_etag=$(tr -d '\r' <"$tmp/d3.h" | sed -n 's/^ETag: //Ip')
d3_new=no
grep -q 'Weather: Fog, 9 C<' "$tmp/d3.body" && d3_new=yes
d3_again=$(status -H "If-None-Match: $d3_etag" "$D$page")

old_vetag=$(header ETag "$V$page")
vlm=$(header Last-Modified "$V$page")
old_vdate=$(header Date "$V$page")
sleep 1 # the change lands in a later second than the validator's date
curl -s -o /dev/null -X PUT --data-binary "Fog, 9 C" "$V/frag/weather"
v3_inm=$(status -H "If-None-Match: ${old_vetag:-\"$old_etag\"}" "$V$page")
v3_ims=$(status -H "If-Modified-Since: $old_vdate" "$V$page")
v3_new=no
curl -s "$V$page" | grep -q 'Weather: Fog, 9 C<' && v3_new=yes

# ---- 4. hits under miss load --------------------------
cat >"$tmp/miss.lua" <<'EOF'
-- every request a distinct URL: /bench/<1..12>?r=<run>-<thread>-<n>
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
local n = 0
function init(args)
  run = args[1] or "0"
end
function request()
  n = n + 1
  return wrk.format("GET", "/bench/" .. (n % 12 + 1) .. "?r=" .. run ..
    "-" .. tid .. "-" .. n)
end
EOF
# Warm the 12 pages' fragments in parallel (each object takes delay_ms).
warm=()
for n in $(seq 12); do
  curl -s -o /dev/null "http://127.0.0.1:$port_donutslow/bench/$n" &
  warm+=($!)
done
for j in "${warm[@]}"; do wait "$j" || true; done
curl -s -o /dev/null "http://127.0.0.1:$port_donutslow$page"

hz=$(getconf CLK_TCK)
# ticks PID -> utime+stime of the whole process (all its threads)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# sched PID -> ns on a CPU and ns runnable but waiting, of its main thread
sched() { cut -d' ' -f1-2 "/proc/$1/task/$1/schedstat"; }
# the machine's busy and total jiffies
machine() {
  awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}
run=0
# window CFG HIT_URL CACHE_PID [MISS_BASE [NICE]] -> appends to $tmp/r4.CFG
#   "req/s p99 misses loop-cpu-s loop-wait-s cache-cpu-s app-cpu-s busy-%"
# of one hit run; with MISS_BASE, while wrk keeps $miss_conns connections
# asking MISS_BASE for distinct uncached pages; with NICE, the app (its
# request threads, created from then on) and that wrk run at nice NICE.
window() {
  local cfg=$1 url=$2 pid=$3 base=${4:-} nice=${5:-0} wpid="" out
  local m0 m1 s0 s1 c0 c1 p0 p1 mb0 mt0 mb1 mt1
  run=$((run + 1))
  if [ -n "$base" ]; then
    renice -n "$nice" -p "$pid_appslow" >/dev/null
    nice -n "$nice" wrk -t1 -c "$miss_conns" -d "$((duration + 3))s" \
      -s "$tmp/miss.lua" "$base/" -- "$cfg$run" >"$tmp/miss.$cfg.$run" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    sleep 1.5
  fi
  m0=$(grep -c '?r=' "$tmp/appslow.log" || true)
  s0=$(sched "$pid")
  c0=$(ticks "$pid")
  p0=$(ticks "$pid_appslow")
  read -r mb0 mt0 < <(machine)
  out=$(measure "$url")
  m1=$(grep -c '?r=' "$tmp/appslow.log" || true)
  s1=$(sched "$pid")
  c1=$(ticks "$pid")
  p1=$(ticks "$pid_appslow")
  read -r mb1 mt1 < <(machine)
  if [ -n "$wpid" ]; then
    wait "$wpid" || true
    renice -n 0 -p "$pid_appslow" >/dev/null
    awk '/requests in/ {n = $1} /Non-2xx/ {bad = $5} /Socket errors/ {err = $0}
      END {printf "%d %d %s\n", n, bad, err}' "$tmp/miss.$cfg.$run" \
      >>"$tmp/r4.$cfg.misswrk"
    sleep 1 # the misses still queued finish before the next window
  fi
  read -r rps p99 _ <<<"$out"
  awk -v r="$rps" -v p="$p99" -v m=$((m1 - m0)) -v s0="$s0" -v s1="$s1" \
    -v c=$((c1 - c0)) -v a=$((p1 - p0)) -v b=$((mb1 - mb0)) \
    -v t=$((mt1 - mt0)) -v hz="$hz" 'BEGIN {
      split(s0, x, " "); split(s1, y, " ")
      printf "%s %s %d %.2f %.2f %.2f %.2f %.0f\n", r, p, m, (y[1] - x[1]) / 1e9,
        (y[2] - x[2]) / 1e9, c / hz, a / hz, 100 * b / t }' >>"$tmp/r4.$cfg"
}
DS=http://127.0.0.1:$port_donutslow
AS=http://127.0.0.1:$port_appslow
for _ in $(seq "$rounds"); do
  window idle "$DS$page" "$pid_donutslow"
  window load "$DS$page" "$pid_donutslow" "$DS"
  window nice "$DS$page" "$pid_donutslow" "$DS" 19
  window ctrl "$DS$page" "$pid_donutslow" "$AS"
done

# ---- report -------------------------------------------------------------------
echo "wrk -t$threads -c$conns -d${duration}s --latency on loopback, $page ($bytes bytes, 13 cached objects), median of $rounds rounds; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| cached /bench/3 | req/s | p99 latency | bytes/response |"
echo "| --- | ---: | ---: | ---: |"
for i in "${!names[@]}"; do
  read -r rps p99 bad rb < <(median "$tmp/r1.$i")
  note=""
  [ "$bad" != 0 ] && note=" ($bad non-2xx/3xx)"
  printf '| %s | %.0f | %s | %s |%s\n' "${names[$i]}" "$rps" "$p99" "$rb" "$note"
done
read -r d200 _ < <(median "$tmp/r1.0")
read -r v200 _ < <(median "$tmp/r1.1")
read -r d304r _ < <(median "$tmp/r1.2")
read -r v304r _ < <(median "$tmp/r1.3")
awk -v a="$d200" -v b="$v200" -v c="$d304r" -v d="$v304r" \
  'BEGIN {printf "\ndonut / Varnish: 200 %.2fx, 304 %.2fx\n", a / b, c / d}'
echo "upstream requests during the hit runs: donut $hit_fetches_d, Varnish $hit_fetches_v"
echo "validators of $page: donut ETag $etag (If-None-Match -> $d304);" \
  "Varnish ETag ${vetag:-none}, Last-Modified ${vlm:-none}" \
  "(If-None-Match -> $v304_inm, If-Modified-Since: its Date -> $v304)"
echo
echo "| after PUT /frag/weather, one GET $page | donut | Varnish 7.1 |"
echo "| --- | --- | --- |"
echo "| PUT through the cache | $(cat "$tmp/appd.put") | $(cat "$tmp/appv.put") |"
echo "| GETs the application saw | $fetch_d | $fetch_v |"
echo "| which | $(cat "$tmp/appd.fetched") | $(cat "$tmp/appv.fetched") |"
echo
echo "| old validator after a fragment change | donut | Varnish 7.1 |"
echo "| --- | --- | --- |"
echo "| If-None-Match: the old ETag | $d3_status, ETag $d3_etag (new body: $d3_new) | $v3_inm (its ETag for the page: ${old_vetag:-none}) |"
echo "| If-Modified-Since: the old Date | - | $v3_ims (new body on a plain GET: $v3_new) |"
echo "| If-None-Match: the new ETag | $d3_again | - |"
echo
echo "hits under miss load: $page cached through donut, app --delay-ms $delay_ms --page-delay-ms $delay_ms;"
echo "miss load: wrk -t1 -c$miss_conns, every request a distinct /bench/<n>?r=<unique>"
echo "(one ${delay_ms} ms upstream fetch each); CPU figures of the median round's ${duration}s window"
echo
echo "| donut, cached $page | req/s | / idle | p99 | misses | loop on CPU / waiting, s | donut CPU s | app CPU s | machine busy % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
labels=(idle "idle" load "misses through donut"
  nice "misses through donut, app and miss wrk at nice 19"
  ctrl "the same misses straight to the app (control)")
read -r irps _ < <(median "$tmp/r4.idle")
for ((k = 0; k < ${#labels[@]}; k += 2)); do
  cfg=${labels[$k]}
  read -r rps p99 misses lcpu lwait ccpu acpu busy < <(median "$tmp/r4.$cfg")
  awk -v n="${labels[$((k + 1))]}" -v r="$rps" -v i="$irps" -v p="$p99" \
    -v m="$misses" -v l="$lcpu / $lwait" -v c="$ccpu" -v a="$acpu" -v b="$busy" \
    'BEGIN {printf "| %s | %.0f | %.2f | %s | %d | %s | %s | %s | %s |\n",
      n, r, r / i, p, m, l, c, a, b}'
done
echo
echo "per round (req/s p99 misses loop-cpu loop-wait donut-cpu app-cpu busy%):"
for ((k = 0; k < ${#labels[@]}; k += 2)); do
  sed "s/^/  ${labels[$k]}: /" "$tmp/r4.${labels[$k]}"
  if [ -f "$tmp/r4.${labels[$k]}.misswrk" ]; then
    sed "s/^/  ${labels[$k]} miss wrk (requests, non-2xx, errors): /" \
      "$tmp/r4.${labels[$k]}.misswrk"
  fi
done
