#!/usr/bin/env bash
# test_purge_cli.sh - `donut outbox` against an outbox left by a process
# that is gone: listing (text and JSON), resending through a purger into a
# local recorder, a resend that fails again, credentials that never reach
# the output, dropping entries, and usage errors.
set -euo pipefail

: "${DONUT:?path of the donut command}"
: "${DONUT_SOURCE_DIR:?source directory}"
fixture="$DONUT_SOURCE_DIR/tests/purge/data/outbox-fixture.log"

tmp=$(mktemp -d)
rec_pid=""
cleanup() {
  [ -n "$rec_pid" ] && kill "$rec_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_in() { # haystack needle
  case "$1" in *"$2"*) ;; *) fail "expected '$2' in: $1" ;; esac
}
expect_not_in() {
  case "$1" in *"$2"*) fail "did not expect '$2' in: $1" ;; *) ;; esac
}

# The recorder: a local HTTP endpoint that records what it gets.
python3 "$DONUT_SOURCE_DIR/tests/support/recorder.py" --port-file "$tmp/port" &
rec_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || fail "recorder did not start"
url="http://127.0.0.1:$(cat "$tmp/port")"
ctl() { curl -sf --noproxy '*' "$@"; }
respond() { ctl -X POST -d "$1" "$url/__recorder/default" >/dev/null; }
reset() { ctl -X POST -d '' "$url/__recorder/reset" >/dev/null; }

# Nothing from the caller's environment.
unset DONUT_CONFIG DONUT_CDN DONUT_PURGER DONUT_PURGE_URLS DONUT_FASTLY_TOKEN \
  DONUT_FASTLY_SERVICE DONUT_FASTLY_API_URL DONUT_PURGE_MAX_ATTEMPTS \
  DONUT_PURGE_BACKOFF_MS 2>/dev/null || true
export DONUT_OUTBOX="$tmp/outbox"

# An outbox left by process 999999: one pending entry, one failed.
fresh() {
  rm -rf "$tmp/outbox"
  mkdir -p "$tmp/outbox"
  cp "$fixture" "$tmp/outbox/outbox-999999-0a0b0c0d.log"
}

echo "== list"
fresh
out=$("$DONUT" outbox)
expect_in "$out" "outbox-999999-0a0b0c0d.log:1 pending"
expect_in "$out" "owner=999999 (gone)"
expect_in "$out" "purger: unknown" # written before outbox identities
expect_in "$out" "tags: weather city-tokyo"
expect_in "$out" "uri: app://self/weather?city=tokyo"
expect_in "$out" "outbox-999999-0a0b0c0d.log:2 failed"
expect_in "$out" "attempts=8"
expect_in "$out" "error: varnish http://127.0.0.1:9: HTTP 503"
expect_in "$out" "1 pending, 1 failed"
"$DONUT" outbox list --json > "$tmp/list.json"
python3 - "$tmp/list.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pending"] == 1 and d["failed"] == 1 and d["corrupt"] == 0, d
e = {x["id"]: x for x in d["entries"]}
assert e[1]["state"] == "pending" and e[1]["tags"] == ["weather", "city-tokyo"]
assert e[1]["uris"] == ["app://self/weather?city=tokyo"]
assert e[2]["state"] == "failed" and e[2]["attempts"] == 8
assert e[2]["owner_pid"] == 999999 and e[2]["owner_running"] is False
assert e[1]["identity"] == "unknown", e[1]
PY

echo "== retry without a purger"
set +e
out=$("$DONUT" outbox retry 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "retry without a purger: exit $rc"
expect_in "$out" "no purger is configured"

echo "== a file that names no purger is taken over only with --any"
reset
out=$(DONUT_CDN=varnish DONUT_PURGE_URLS="$url/" "$DONUT" outbox retry)
expect_in "$out" "varnish: 0 entries taken over, 0 batches delivered, 0 failed"
out=$("$DONUT" outbox)
expect_in "$out" "1 pending, 1 failed"

echo "== retry through Varnish's purge API (the recorder)"
reset
out=$(DONUT_CDN=varnish DONUT_PURGE_URLS="$url/" "$DONUT" outbox retry --any)
expect_in "$out" "varnish: 2 entries taken over, 1 batches delivered, 0 failed"
got=$(ctl "$url/__recorder/requests?wait=1&timeout_ms=10000")
expect_in "$got" "PURGE / HTTP/1.1"
expect_in "$got" "xkey: "
expect_in "$got" "weather"
expect_in "$got" "news"
out=$("$DONUT" outbox)
expect_in "$out" "empty"

echo "== a retry that fails again stays in the outbox"
fresh
respond '{"status":503,"body":"down"}'
set +e
out=$(DONUT_CDN=varnish DONUT_PURGE_URLS="$url/" DONUT_PURGE_MAX_ATTEMPTS=2 \
  DONUT_PURGE_BACKOFF_MS=10 "$DONUT" outbox retry --any 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "failing retry: exit $rc"
expect_in "$out" "HTTP 503: down"
out=$("$DONUT" outbox)
expect_in "$out" "0 pending, 2 failed"

echo "== credentials never reach the output"
fresh
respond '{"status":401,"body":"bad token SECRET-cli-0123456789"}'
set +e
out=$(DONUT_CDN=fastly DONUT_FASTLY_TOKEN=SECRET-cli-0123456789 \
  DONUT_FASTLY_SERVICE=svc1 DONUT_FASTLY_API_URL="$url" \
  "$DONUT" outbox retry --any 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "rejected retry: exit $rc"
expect_in "$out" "HTTP 401"
expect_not_in "$out" "SECRET-cli"
out=$("$DONUT" outbox; "$DONUT" outbox --json)
expect_not_in "$out" "SECRET-cli"
if grep -rq "SECRET-cli" "$tmp/outbox"; then fail "token written to the outbox"; fi
got=$(ctl "$url/__recorder/requests?wait=1&timeout_ms=10000")
expect_in "$got" "Fastly-Key: SECRET-cli-0123456789"
respond '{"status":200}'

echo "== drop"
fresh
out=$("$DONUT" outbox drop --failed)
expect_in "$out" "dropped 1 failed entries"
out=$("$DONUT" outbox)
expect_in "$out" "1 pending, 0 failed"
out=$("$DONUT" outbox drop --all)
expect_in "$out" "dropped 1 entries"
out=$("$DONUT" outbox)
expect_in "$out" "empty"

echo "== donut purge --cdn-only: a Fastly batch purge into the recorder"
reset
out=$(DONUT_CDN=fastly DONUT_FASTLY_TOKEN=tok-secret-123 DONUT_FASTLY_SERVICE=SVC1 \
  DONUT_FASTLY_API_URL="$url" DONUT_OUTBOX=none \
  "$DONUT" purge --cdn-only --tag weather --json)
got=$(ctl "$url/__recorder/requests?wait=1&timeout_ms=10000")
expect_in "$got" "POST /service/SVC1/purge HTTP/1.1"
expect_in "$got" "Fastly-Key: tok-secret-123"
expect_in "$got" '\"surrogate_keys\":[\"weather\"'
expect_in "$out" '"delivered": 1'
expect_in "$out" '"purger": "fastly"'
expect_not_in "$out" "tok-secret-123"

echo "== donut purge --cdn-only: an undeliverable purge fails and stays"
set +e
out=$(DONUT_CDN=fastly DONUT_FASTLY_TOKEN=tok-secret-123 DONUT_FASTLY_SERVICE=SVC1 \
  DONUT_FASTLY_API_URL="http://127.0.0.1:9" DONUT_PURGE_MAX_ATTEMPTS=1 \
  DONUT_OUTBOX="$tmp/outbox-cdn" "$DONUT" purge --cdn-only --tag weather 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "undeliverable --cdn-only: exit $rc, expected 1"
expect_in "$out" "stays in the outbox"
expect_not_in "$out" "tok-secret-123"
out=$(DONUT_OUTBOX="$tmp/outbox-cdn" "$DONUT" outbox)
expect_in "$out" "failed"
expect_in "$out" "tags: weather"
expect_in "$out" "purger: backend=fastly profile="
expect_not_in "$out" "tok-secret-123"
if grep -rq "tok-secret-123" "$tmp/outbox-cdn"; then fail "token in the outbox"; fi

echo "== another configuration's outbox is not taken over"
reset
out=$(DONUT_CDN=varnish DONUT_PURGE_URLS="$url/" DONUT_OUTBOX="$tmp/outbox-cdn" \
  "$DONUT" outbox retry)
expect_in "$out" "varnish: 0 entries taken over"
out=$(DONUT_CDN=fastly DONUT_FASTLY_TOKEN=tok-secret-123 DONUT_FASTLY_SERVICE=OTHER \
  DONUT_FASTLY_API_URL="$url" DONUT_OUTBOX="$tmp/outbox-cdn" \
  "$DONUT" outbox retry)
expect_in "$out" "fastly: 0 entries taken over"
out=$(DONUT_OUTBOX="$tmp/outbox-cdn" "$DONUT" outbox)
expect_in "$out" "0 pending, 1 failed"
# The same backend, profile and destination (a different token) takes it.
set +e
out=$(DONUT_CDN=fastly DONUT_FASTLY_TOKEN=tok-other-456 DONUT_FASTLY_SERVICE=SVC1 \
  DONUT_FASTLY_API_URL="http://127.0.0.1:9" DONUT_PURGE_MAX_ATTEMPTS=1 \
  DONUT_OUTBOX="$tmp/outbox-cdn" "$DONUT" outbox retry 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "retry into a closed port: exit $rc, expected 1"
expect_in "$out" "fastly: 1 entries taken over, 0 batches delivered, 1 failed"

echo "== --cdn-only with no CDN configured"
set +e
"$DONUT" purge --cdn-only --tag weather >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "--cdn-only without a CDN: exit $rc, expected 1"

echo "== usage errors"
for args in "drop" "drop --failed --all" "frobnicate" "retry --timeout 0" \
  "--bogus" "list --outbox"; do
  set +e
  # shellcheck disable=SC2086
  "$DONUT" outbox $args >/dev/null 2>&1; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "donut outbox $args: exit $rc, expected 2"
done
"$DONUT" outbox --help | grep -q "usage: donut outbox"

echo "ok"
