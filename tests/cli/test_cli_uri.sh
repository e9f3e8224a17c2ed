#!/usr/bin/env bash
# test_cli_uri.sh - `donut normalize` and `donut uri-tag`: output, exit
# statuses (0 success, 1 invalid URI with the position on stderr, 2 usage
# error), and the examples in the commands' help text.
#
# Needs DONUT, the path of the built `donut` command (ctest sets it).
set -u
: "${DONUT:?set DONUT to the donut binary}"

pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME STATUS STDOUT STDERR-SUBSTRING -- ARGS...
# STDOUT "*" skips the stdout check; STDERR-SUBSTRING "" means stderr must
# be empty.
expect() {
  local name=$1 status=$2 want_out=$3 want_err=$4
  shift 5
  "$DONUT" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$? why=""
  if [ "$got" -ne "$status" ]; then
    why="exit status $got, want $status"
  elif [ "$want_out" != "*" ] && [ "$(cat "$tmp/out")" != "$want_out" ]; then
    why="stdout '$(cat "$tmp/out")', want '$want_out'"
  elif [ -z "$want_err" ] && [ -s "$tmp/err" ]; then
    why="unexpected stderr '$(cat "$tmp/err")'"
  elif [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$tmp/err"; then
    why="stderr '$(cat "$tmp/err")' lacks '$want_err'"
  fi
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $name: $why"
  fi
}

nl=$'\n'

# ---- donut normalize ------------------------------------------------------
expect "normalize one" 0 "app://self/Item?a=1&b=2" "" -- \
  normalize 'APP://Self/a/../Item?b=2&a=1'
expect "normalize is idempotent" 0 "app://self/Item?a=1&b=2" "" -- \
  normalize 'app://self/Item?a=1&b=2'
expect "normalize several" 0 "page://self/x${nl}http://[::1]:80/" "" -- \
  normalize 'page://self/x#frag' 'HTTP://[0:0::1]:080/'
expect "normalize percent-encoding" 0 "app://self/~A%2F?q=%C3%A9" "" -- \
  normalize 'app://self/%7e%41%2f?q=%c3%a9&&'
expect "normalize after --" 0 "a:b" "" -- normalize -- 'A:b'
expect "normalize invalid" 1 "" "at byte 12: space is not allowed in the path" \
  -- normalize 'app://self/a b'
expect "normalize bad escape" 1 "" "at byte 11: malformed percent escape" \
  -- normalize 'app://self/%zz'
expect "normalize missing scheme" 1 "" "at byte 0: missing scheme" \
  -- normalize '/just/a/path'
expect "normalize empty" 1 "" "at byte 0: empty URI" -- normalize ''
expect "normalize reports each bad URI, prints the good ones" 1 "a:x" \
  "'b c:d': at byte 1" -- normalize 'b c:d' 'A:x'
expect "normalize no argument" 2 "" "usage error: expected at least one URI" \
  -- normalize
expect "normalize unknown option" 2 "" "unknown option '--bogus'" \
  -- normalize --bogus 'a:b'
expect "normalize --help" 0 "*" "" -- normalize --help

# ---- donut uri-tag --------------------------------------------------------
expect "uri-tag" 0 "app%3A||self|item%3Fid%3D1" "" -- \
  uri-tag 'app://self/item?id=1'
expect "uri-tag normalises first" 0 "app%3A||self|item%3Fa%3D1%26b%3D2" "" -- \
  uri-tag 'APP://self/./item?b=2&a=1#x'
expect "uri-tag keeps the scheme" 0 \
  "app%3A||self|x${nl}page%3A||self|x" "" -- uri-tag 'app://self/x' 'page://self/x'
expect "uri-tag escapes % and =" 0 "a%3Ax%3Fk%3D%253D" "" -- uri-tag 'a:x?k=%3d'
expect "uri-tag invalid" 1 "" "at byte 12: character '<' is not allowed" \
  -- uri-tag 'app://self/x<y'
expect "uri-tag no argument" 2 "" "usage error" -- uri-tag
expect "uri-tag unknown option" 2 "" "unknown option '--json'" \
  -- uri-tag --json 'a:b'

# A long URI: at most 128 bytes, a readable prefix, '#' and 32 hex digits;
# two long URIs that differ only at the end get different tags.
long="app://self/$(printf 'segment/%.0s' $(seq 1 40))item?id="
"$DONUT" uri-tag "${long}1" "${long}2" >"$tmp/long" 2>"$tmp/err"
status=$?
t1=$(sed -n 1p "$tmp/long")
t2=$(sed -n 2p "$tmp/long")
if [ $status -eq 0 ] && [ ${#t1} -le 128 ] && [ "$t1" != "$t2" ] &&
  [[ "$t1" =~ ^app%3A\|\|self\|segment\|[^#]*#[0-9a-f]{32}$ ]] &&
  [ "${t1%#*}" = "${t2%#*}" ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1))
  echo "FAIL: long uri-tag: status $status, '$t1' / '$t2'"
fi

# Every tag byte is one that all CDN tag headers accept.
"$DONUT" uri-tag 'app://u:p@h:1/a,b;c=(d)*e!f$g'"'"'h+i@j~k?x=[]' >"$tmp/t" 2>&1
if grep -qE '^[A-Za-z0-9!#$%'"'"'+.^_`|~-]{1,128}$' "$tmp/t"; then
  fail=$((fail + 1))
  echo "FAIL: '[' in a query was accepted: $(cat "$tmp/t")"
else
  pass=$((pass + 1))
fi
"$DONUT" uri-tag 'app://u:p@h:1/a,b;c=(d)*e!f$g'"'"'h+i@j~k?x=%5B%5D' >"$tmp/t"
if grep -qE '^[A-Za-z0-9!#$%'"'"'+.^_`|~-]{1,128}$' "$tmp/t"; then
  pass=$((pass + 1))
else
  fail=$((fail + 1))
  echo "FAIL: tag with bytes outside the CDN alphabet: $(cat "$tmp/t")"
fi

# ---- the examples in the help text are real output ------------------------
for cmd in normalize uri-tag; do
  "$DONUT" "$cmd" --help >"$tmp/help"
  example=$(grep -A1 '^  \$ donut ' "$tmp/help" | head -2)
  arg=$(sed -n "1s/^  \\\$ donut $cmd '\\(.*\\)'\$/\\1/p" <<<"$example")
  want=$(sed -n '2s/^  //p' <<<"$example")
  got=$("$DONUT" "$cmd" "$arg" 2>&1)
  if [ -n "$arg" ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: help example of $cmd: '$arg' gives '$got', help says '$want'"
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
