#!/usr/bin/env bash
# test_cli_headers.sh - `donut headers` from the outside.
#
# Checks the fields printed for every CDN profile, lifetimes and their
# overrides, the compaction of a 10,000-tag closure (the field stays within
# the CDN's limit and the purge keys of sampled tags reach it), and the
# exit statuses: 1 for an invalid tag, 2 for usage errors.
# Needs DONUT (the built CLI).
set -u

: "${DONUT:?DONUT must name the built donut command}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() {
  failed=$((failed + 1))
  echo "FAIL: $*" >&2
}

# expect NAME STATUS STDOUT [STDERR-SUBSTRING] -- ARGS...
expect() {
  local name=$1 want_status=$2 want_out=$3 want_err=$4
  shift 5
  "$DONUT" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  local status=$?
  local out err
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  if [ "$status" -ne "$want_status" ]; then
    bad "$name: exit $status, want $want_status (stderr: $err)"
  elif [ "$out" != "$want_out" ]; then
    bad "$name: printed '$out', want '$want_out'"
  elif [ -n "$want_err" ] && [[ "$err" != *"$want_err"* ]]; then
    bad "$name: stderr '$err' lacks '$want_err'"
  else
    ok
  fi
}

nl=$'\n'
tags="app:/self/news weather"

# ---- one closure under every profile ------------------------------------
expect "none" 0 "Cache-Control: max-age=0, s-maxage=10" "" -- \
  headers --tags "$tags" --cdn none
expect "generic (default)" 0 \
  "Cache-Control: max-age=0${nl}CDN-Cache-Control: max-age=10${nl}Surrogate-Key: app:/self/news weather" \
  "" -- headers --tags "$tags"
expect "fastly" 0 \
  "Cache-Control: max-age=0${nl}Surrogate-Control: max-age=31536000${nl}Surrogate-Key: app:/self/news weather" \
  "" -- headers --tags "$tags" --cdn fastly
expect "akamai hashes tags with ':' or '/'" 0 \
  "Cache-Control: max-age=0${nl}Akamai-Cache-Control: max-age=31536000${nl}Edge-Cache-Tag: dh-98323a53eb3e6b35,weather" \
  "" -- headers --tags "$tags" --cdn akamai
expect "cloudflare" 0 \
  "Cache-Control: max-age=0${nl}Cloudflare-CDN-Cache-Control: max-age=31536000${nl}Cache-Tag: app:/self/news,weather" \
  "" -- headers --tags "$tags" --cdn cloudflare
expect "varnish" 0 \
  "Cache-Control: max-age=0, s-maxage=31536000${nl}xkey: app:/self/news weather" \
  "" -- headers --tags "$tags" --cdn varnish
expect "bunny" 0 \
  "Cache-Control: max-age=0, s-maxage=31536000${nl}CDN-Tag: app:/self/news,weather" \
  "" -- headers --tags "$tags" --cdn=bunny
expect "rfc9875" 0 \
  "Cache-Control: max-age=0${nl}CDN-Cache-Control: max-age=10${nl}Cache-Groups: \"app:/self/news\", \"weather\"" \
  "" -- headers --tags "$tags" --cdn rfc9875

# ---- lifetimes -----------------------------------------------------------
expect "lifetimes" 0 \
  "Cache-Control: max-age=60, stale-while-revalidate=30, stale-if-error=600${nl}Surrogate-Control: max-age=100, stale-while-revalidate=30, stale-if-error=600${nl}Surrogate-Key: a" \
  "" -- headers --tags a --cdn fastly --max-age 60 --s-maxage=100 --swr 30 \
  --sie 600
expect "no tags" 0 "Cache-Control: max-age=0${nl}CDN-Cache-Control: max-age=10" \
  "" -- headers --tags ""

# ---- a 10,000-tag closure ------------------------------------------------
seq -f "app:/self/item/%g" 1 10000 >"$tmp/tags"
for cdn in generic fastly akamai cloudflare varnish bunny rfc9875; do
  "$DONUT" headers --tags-file "$tmp/tags" --cdn "$cdn" >"$tmp/h" 2>&1 ||
    bad "$cdn: 10,000 tags failed: $(cat "$tmp/h")"
  field=$(tail -n 1 "$tmp/h")
  value=${field#*: }
  case $cdn in
  fastly) limit=16384 ;; cloudflare) limit=16000 ;; varnish) limit=8000 ;;
  bunny) limit=1024 ;; *) limit=4096 ;;
  esac
  if [ "${#value}" -gt "$limit" ]; then
    bad "$cdn: field of ${#value} bytes exceeds $limit"
  else
    ok
  fi
  # Sampled tags: some purge key must be in the page's field.
  keys=$(printf '%s\n' "$value" | tr ', "' '\n\n\n' | grep -v '^$' | sort -u)
  for i in 1 777 5000 9999 10000; do
    hit=0
    for k in $("$DONUT" headers --purge-keys --cdn "$cdn" \
      --tags "app:/self/item/$i"); do
      if printf '%s\n' "$keys" | grep -qxF -- "$k"; then hit=1; fi
    done
    if [ "$hit" -eq 1 ]; then ok; else bad "$cdn: purge of item $i misses"; fi
  done
done
got=$(printf 'a\n  b\n' | "$DONUT" headers --tags-file - --cdn varnish)
if [ "$got" = "Cache-Control: max-age=0, s-maxage=31536000${nl}xkey: a b" ]; then
  ok
else
  bad "tags from standard input: printed '$got'"
fi

# ---- errors ------------------------------------------------------------
expect "invalid tag" 1 "" "invalid tag: tag 1" -- headers --tags "ok a,b"
expect "tag with '='" 1 "" "invalid tag" -- headers --tags "a=b" --cdn fastly
expect "missing --tags" 2 "" "usage error" -- headers --cdn fastly
expect "both tag sources" 2 "" "usage error" -- \
  headers --tags a --tags-file "$tmp/tags"
expect "unknown profile" 2 "" "--cdn needs one of" -- \
  headers --tags a --cdn nope
expect "negative lifetime" 2 "" "--max-age needs" -- \
  headers --tags a --max-age -1
expect "lifetime not a number" 2 "" "--swr needs" -- headers --tags a --swr 1x
expect "missing value" 2 "" "usage error" -- headers --tags a --s-maxage
expect "stray argument" 2 "" "unexpected argument" -- headers --tags a extra
expect "unreadable file" 1 "" "cannot read" -- \
  headers --tags-file "$tmp/missing"
if "$DONUT" headers --help | grep -q '^usage: donut headers'; then
  ok
else
  bad "help: no usage text"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
