#!/usr/bin/env bash
# bench_server.sh - wrk on loopback against `donut serve` /news?id=1, as a
# 200 over keep-alive and as a 304 (If-None-Match), next to Varnish serving
# the same page from its cache and nginx serving the same bytes as a static
# file. Every server runs as this user's own process on a free loopback
# port with its configuration in a temporary directory; nothing is
# installed as a service. Prints a Markdown table (req/s and p99).
#
#   bench/bench_server.sh [DONUT_BINARY]   (default build/donut)
#   DURATION=10 ROUNDS=3 CONNECTIONS=50 THREADS=1 bench/bench_server.sh
#
# Needs Debian's wrk, varnish and nginx packages.
set -euo pipefail
cd "$(dirname "$0")/.."
donut=${1:-build/donut}
duration=${DURATION:-10}
conns=${CONNECTIONS:-50}
threads=${THREADS:-1}
for tool in wrk varnishd nginx curl python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "bench_server: $tool is not installed" >&2
    exit 1
  }
done
export PATH=$PATH:/usr/sbin
tmp=$(mktemp -d)
# Varnish and nginx drop root privileges for their workers, which must
# still read their configuration and the page.
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench_server: nothing listens on port $1" >&2
  return 1
}

unset MEMCACHED_ADDR REDIS_URL DONUT_STORE || true
dport=$(free_port)
DONUT_CONTROL_TOKEN=bench-token-0123456789abcdef \
  "$donut" serve --listen "127.0.0.1:$dport" --control none \
  2>"$tmp/donut.log" &
pids+=($!)
wait_port "$dport"
# The same server with two event loops on one port (--threads 2).
d2port=$(free_port)
DONUT_CONTROL_TOKEN=bench-token-0123456789abcdef \
  "$donut" serve --listen "127.0.0.1:$d2port" --control none --threads 2 \
  2>"$tmp/donut2.log" &
pids+=($!)
wait_port "$d2port"
url_path="/news?id=1"
curl -s -o "$tmp/news.html" "http://127.0.0.1:$dport$url_path"
etag=$(curl -s -D - -o /dev/null "http://127.0.0.1:$dport$url_path" |
  tr -d '\r' | sed -n 's/^ETag: //Ip')

# Varnish in front of donut: it stores the page (s-maxage) and answers
# from its cache, revalidating If-None-Match itself.
vport=$(free_port)
cat >"$tmp/default.vcl" <<EOF
vcl 4.1;
backend donut { .host = "127.0.0.1"; .port = "$dport"; }
EOF
chmod 644 "$tmp/default.vcl"
varnishd -F -a "127.0.0.1:$vport" -f "$tmp/default.vcl" -n "$tmp/varnish" \
  -s malloc,64m >"$tmp/varnish.log" 2>&1 &
pids+=($!)
wait_port "$vport"
curl -s -o /dev/null "http://127.0.0.1:$vport$url_path"
vetag=$(curl -s -D - -o /dev/null "http://127.0.0.1:$vport$url_path" |
  tr -d '\r' | sed -n 's/^ETag: //Ip')

# nginx serving the same bytes as a static file (its own ETag).
nport=$(free_port)
mkdir -p "$tmp/www"
cp "$tmp/news.html" "$tmp/www/news.html"
chmod -R a+rX "$tmp/www"
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/html;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  fastcgi_temp_path $tmp/nginx-fastcgi;
  uwsgi_temp_path $tmp/nginx-uwsgi;
  scgi_temp_path $tmp/nginx-scgi;
  server {
    listen 127.0.0.1:$nport;
    root $tmp/www;
  }
}
EOF
nginx -c "$tmp/nginx.conf" -p "$tmp" -g 'daemon on;' 2>"$tmp/nginx-start.log"
wait_port "$nport"
netag=$(curl -s -D - -o /dev/null "http://127.0.0.1:$nport/news.html" |
  tr -d '\r' | sed -n 's/^ETag: //Ip')

# measure URL [HEADER] -> "req/s p99" of one wrk run
measure() {
  local url=$1
  shift
  local args=(-t "$threads" -c "$conns" -d "${duration}s" --latency)
  [ $# -gt 0 ] && args+=(-H "$1")
  wrk "${args[@]}" "$url" | awk '
    /^Requests\/sec:/ {rps = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx or 3xx/ {bad = $5}
    END {print rps, p99, (bad ? bad : 0)}'
}

# The configurations, measured in turns for $rounds rounds so that a busy
# moment of a shared machine does not fall on one of them only; the table
# shows the median round of each.
names=(
  "donut serve, 200 keep-alive"
  "donut serve, 304 If-None-Match"
  "donut serve --threads 2, 200 keep-alive"
  "donut serve --threads 2, 304 If-None-Match"
  "Varnish 7.1 cache hit, 200"
  "Varnish 7.1 cache hit, 304"
  "nginx 1.22 static file, 200"
  "nginx 1.22 static file, 304"
)
urls=(
  "http://127.0.0.1:$dport$url_path" "http://127.0.0.1:$dport$url_path"
  "http://127.0.0.1:$d2port$url_path" "http://127.0.0.1:$d2port$url_path"
  "http://127.0.0.1:$vport$url_path" "http://127.0.0.1:$vport$url_path"
  "http://127.0.0.1:$nport/news.html" "http://127.0.0.1:$nport/news.html"
)
hdrs=("" "If-None-Match: $etag" "" "If-None-Match: $etag" ""
  "If-None-Match: $vetag" "" "If-None-Match: $netag")
curl -s -o /dev/null "http://127.0.0.1:$d2port$url_path"
rounds=${ROUNDS:-3}
for r in $(seq "$rounds"); do
  for i in "${!names[@]}"; do
    if [ -n "${hdrs[$i]}" ]; then
      measure "${urls[$i]}" "${hdrs[$i]}" >>"$tmp/result.$i"
    else
      measure "${urls[$i]}" >>"$tmp/result.$i"
    fi
  done
done

bytes=$(wc -c <"$tmp/news.html")
echo "wrk -t$threads -c$conns -d${duration}s --latency, loopback, $bytes-byte page, median of $rounds rounds"
echo
echo "| server | req/s | p99 latency |"
echo "| --- | ---: | ---: |"
for i in "${!names[@]}"; do
  # the median round by req/s
  read -r rps p99 bad < <(sort -n "$tmp/result.$i" | sed -n "$(((rounds + 1) / 2))p")
  note=""
  [ "$bad" != 0 ] && note=" ($bad non-2xx/3xx)"
  printf '| %s | %.0f | %s |%s\n' "${names[$i]}" "$rps" "$p99" "$note"
done
