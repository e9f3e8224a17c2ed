#!/usr/bin/env bash
# test_varnish_cli.sh - the operator's path end to end: `donut serve --cdn
# varnish` behind a real varnishd, with DONUT_PURGE_URLS pointing at that
# Varnish, and `donut purge --tag weather` through the control API. The
# server's engine invalidates the tag, its purger sends the xkey purge, and
# Varnish drops /weather?city=tokyo and every page that embeds it, while an
# unrelated page stays cached.
set -u
: "${DONUT:?}" "${DONUT_SOURCE_DIR:?}"
varnishd=${DONUT_VARNISHD_BIN:-$(command -v varnishd || echo /usr/sbin/varnishd)}
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
if [ ! -x "$varnishd" ]; then
  echo "FAILED: varnishd is not installed (Debian varnish and varnish-modules)"
  echo "0 passed, 1 failed"; exit 1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/dn-vcli-XXXXXX); chmod 755 "$dir"
serve_pid= varnish_pid=
cleanup() {
  [ -n "$varnish_pid" ] && kill "$varnish_pid" 2>/dev/null
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  wait 2>/dev/null; rm -rf "$dir"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

vport=$(free_port) sport=$(free_port) cport=$(free_port)
export DONUT_CONTROL_TOKEN=varnish-cli-test-token DONUT_OUTBOX=none
DONUT_PURGE_URLS="http://127.0.0.1:$vport" "$DONUT" serve --cdn varnish \
  --listen "127.0.0.1:$sport" --control "127.0.0.1:$cport" 2>"$dir/serve.log" &
serve_pid=$!
sed "s/\.port = \"8080\";/.port = \"$sport\";/" \
  "$DONUT_SOURCE_DIR/examples/varnish/donut.vcl" >"$dir/donut.vcl"
"$varnishd" -F -a "127.0.0.1:$vport" -f "$dir/donut.vcl" -n "$dir/varnish" \
  -s malloc,64m >"$dir/varnishd.log" 2>&1 &
varnish_pid=$!
if wait_port "$sport" && wait_port "$cport" && wait_port "$vport"; then ok
else bad "servers did not start"; cat "$dir/serve.log" "$dir/varnishd.log"; # A configuration file alone (no --cdn, no DONUT_CDN) picks the profile of
# the headers and of the purger alike.
printf '{"cdn":"varnish","purge":{"urls":["http://127.0.0.1:%s"]}}\n' "$vport" >"$dir/cdn.json"
cfg_port=$(free_port)
line=$(DONUT_CONFIG="$dir/cdn.json" timeout 2 "$DONUT" serve \
  --listen "127.0.0.1:$cfg_port" --control none 2>&1 | head -1)
case "$line" in
  *"cdn varnish (purging cdn=varnish purger=varnish"*) ok ;;
  *) bad "DONUT_CONFIG's cdn is not used: $line" ;;
esac

echo "$passed passed, $failed failed"; exit 1; fi
grep -q "purging cdn=varnish" "$dir/serve.log" && ok || bad "startup line names the purger: $(cat "$dir/serve.log")"

get() { curl -s -D "$dir/h" "http://127.0.0.1:$vport$1" -o "$dir/b"; }
cache_of() { get "$1"; tr -d '\r' <"$dir/h" | awk -F': ' 'tolower($1)=="x-cache"{print $2}'; }
report() { grep -o 'report [0-9]*' "$dir/b" | head -1; }

for p in "/weather?city=tokyo" "/news?id=1" "/comments?post=1"; do
  cache_of "$p" >/dev/null
  [ "$(cache_of "$p")" = HIT ] && ok || bad "$p is not cached by Varnish"
done
get "/news?id=1"; before=$(report)
get "/comments?post=1"; cp "$dir/b" "$dir/comments.before"

out=$("$DONUT" purge --tag weather --server "http://127.0.0.1:$cport" 2>&1)
[ $? -eq 0 ] && ok || bad "donut purge failed: $out"

# The purge reaches Varnish asynchronously (a 50 ms batching window).
dropped=
for _ in $(seq 50); do
  if [ "$(cache_of "/weather?city=tokyo")" = MISS ]; then dropped=1; break; fi
  sleep 0.1
done
[ -n "$dropped" ] && ok || bad "Varnish kept /weather?city=tokyo after the purge"
[ "$(cache_of "/news?id=1")" = MISS ] && ok || bad "Varnish kept /news?id=1, which embeds the weather"
after=$(report)
[ -n "$before" ] && [ "$after" != "$before" ] && ok || bad "/news?id=1 shows '$after', was '$before'"
[ "$(cache_of "/comments?post=1")" = HIT ] && ok || bad "the unrelated /comments?post=1 was purged"
cmp -s "$dir/b" "$dir/comments.before" && ok || bad "/comments?post=1 changed"

# A configuration file alone (no --cdn, no DONUT_CDN) picks the profile of
# the headers and of the purger alike.
printf '{"cdn":"varnish","purge":{"urls":["http://127.0.0.1:%s"]}}\n' "$vport" >"$dir/cdn.json"
cfg_port=$(free_port)
line=$(DONUT_CONFIG="$dir/cdn.json" timeout 2 "$DONUT" serve \
  --listen "127.0.0.1:$cfg_port" --control none 2>&1 | head -1)
case "$line" in
  *"cdn varnish (purging cdn=varnish purger=varnish"*) ok ;;
  *) bad "DONUT_CONFIG's cdn is not used: $line" ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
