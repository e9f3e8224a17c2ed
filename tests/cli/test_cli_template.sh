#!/usr/bin/env bash
# test_cli_template.sh - `donut expand` and `donut tags` from the outside.
#
# Runs every case of the uritemplate-test suite (tests/data/uritemplate)
# through `donut expand`, which must print what the library computes (a
# list result accepts any member; false must exit 1 with a byte position),
# then checks exit statuses, option forms and `donut tags`. The expected
# tags come from `donut uri-tag`, so the tag format is not repeated here.
# Needs DONUT (the built CLI) and DONUT_TEST_DATA; python3 reads the suite.
set -u

: "${DONUT:?DONUT must name the built donut command}"
: "${DONUT_TEST_DATA:?DONUT_TEST_DATA must name tests/data}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() {
  failed=$((failed + 1))
  echo "FAIL: $*" >&2
}

# run ARGS...: runs donut with stdin from $tmp/in (if present), keeping
# stdout, stderr and the exit status in $out, $err and $status.
run() {
  if [ -f "$tmp/in" ]; then
    "$DONUT" "$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
  else
    "$DONUT" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  fi
  status=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  rm -f "$tmp/in"
}

# expect NAME STATUS STDOUT [STDERR-SUBSTRING] -- ARGS...
expect() {
  local name=$1 want_status=$2 want_out=$3 want_err=$4
  shift 5
  run "$@"
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

input() { printf '%s' "$1" >"$tmp/in"; }

# ---- the uritemplate-test suite through `donut expand` ------------------
suite_counts=$(python3 - "$DONUT" "$DONUT_TEST_DATA/uritemplate" "$tmp" <<'EOF'
import json, os, subprocess, sys

donut, data, tmp = sys.argv[1:4]
files = ["spec-examples.json", "spec-examples-by-section.json",
         "extended-tests.json", "negative-tests.json"]
passed = failed = 0
for name in files:
    with open(os.path.join(data, name), encoding="utf-8") as f:
        suite = json.load(f)
    for gi, (group, g) in enumerate(suite.items()):
        vars_path = os.path.join(tmp, "vars-%s-%d.json" % (name, gi))
        with open(vars_path, "w", encoding="utf-8") as f:
            json.dump(g["variables"], f, ensure_ascii=False)
        for tpl, want in g["testcases"]:
            r = subprocess.run([donut, "expand", tpl, "--vars", vars_path],
                               capture_output=True)
            got = r.stdout.decode("utf-8", "replace")
            if want is False:
                good = (r.returncode == 1 and got == "" and
                        b"at byte " in r.stderr)
            else:
                wants = want if isinstance(want, list) else [want]
                good = r.returncode == 0 and got in [w + "\n" for w in wants]
            if good:
                passed += 1
            else:
                failed += 1
                print("FAIL: suite %s [%s] %r: exit %d, printed %r, stderr %r"
                      % (name, group, tpl, r.returncode, got,
                         r.stderr.decode("utf-8", "replace")),
                      file=sys.stderr)
print(passed, failed)
EOF
)
read -r suite_passed suite_failed <<<"${suite_counts:-0 1}"
passed=$((passed + suite_passed))
failed=$((failed + suite_failed))
if [ "$suite_passed" -ne 270 ]; then
  bad "uritemplate-test through the CLI: $suite_passed of 270 passed"
fi

# ---- donut expand ----------------------------------------------------------
input '{"id": 42, "q": "a b"}'
expect "usage example" 0 "app://self/item?id=42&q=a%20b" "" -- \
  expand 'app://self/item{?id,q}' --vars -
printf '{"n": 37.76, "big": 1e21, "list": [1, true, null, "x y"]}' \
  >"$tmp/vars.json"
expect "--vars=FILE, numbers" 0 "/37.76/1e%2B21?list=1,true,x%20y" "" -- \
  expand '{/n,big}{?list}' --vars="$tmp/vars.json"
expect "no --vars: all undefined" 0 "ab" "" -- expand 'a{x}{?y}b'
expect "empty template" 0 "" "" -- expand ''
expect "unclosed expression" 1 "" "invalid template: at byte 3:" -- \
  expand 'abc{x' --vars "$tmp/vars.json"
expect "reserved operator" 1 "" "at byte 1: operator '='" -- expand '{=x}'
expect "prefix on a list" 1 "" "at byte 1: variable 'list'" -- \
  expand '{list:2}' --vars "$tmp/vars.json"
input '{"a": }'
expect "invalid JSON" 1 "" \
  "invalid variables JSON: at byte 7, line 1, column 7:" -- \
  expand '{a}' --vars -
input '[1, 2]'
expect "variables not an object" 1 "" "JSON object" -- expand '{a}' --vars -
expect "unreadable vars file" 1 "" "cannot read" -- \
  expand '{a}' --vars "$tmp/missing.json"
expect "no template" 2 "" "usage error" -- expand
expect "two templates" 2 "" "unexpected argument" -- expand '{a}' '{b}'
expect "unknown option" 2 "" "unknown option" -- expand '{a}' --nope
expect "--vars without value" 2 "" "--vars needs" -- expand '{a}' --vars
expect "help" 0 "$("$DONUT" expand --help)" "" -- expand -h

# ---- donut tags --------------------------------------------------------------
t1=$("$DONUT" uri-tag 'app://self/item?id=1')
t2=$("$DONUT" uri-tag 'app://self/item?id=2')
t3=$("$DONUT" uri-tag 'app://self/item')
input '[{"id": 2}, {"id": 1}, {"id": 2}, {"id": "1"}, {"other": 0}]'
expect "tags from stdin, deduplicated in order" 0 "$t2 $t1 $t3" "" -- \
  tags --template 'app://self/item{?id}' --rows -
printf '[{"id": 1}]' >"$tmp/rows.json"
expect "tags from a file, --opt=value" 0 "$t1" "" -- \
  tags --template='app://self/item{?id}' --rows="$tmp/rows.json"
input '[]'
expect "no rows" 0 "" "" -- tags --template 'app://self/item{?id}' --rows -
input '[{"id": 1}, 7]'
expect "row not an object" 1 "" \
  "invalid rows JSON: rows[1] is not a JSON object" -- \
  tags --template 'app://self/item{?id}' --rows -
input '{"id": 1}'
expect "rows not an array" 1 "" "JSON array" -- \
  tags --template 'app://self/item{?id}' --rows -
input '[{"id": 1},'
expect "rows invalid JSON" 1 "" "invalid rows JSON: at byte" -- \
  tags --template 'app://self/item{?id}' --rows -
input '[{"id": 1}]'
expect "tags, invalid template" 1 "" "at byte 15:" -- \
  tags --template 'app://self/item{?id' --rows -
input '[{"id": "ab"}, {"id": [1]}]'
expect "tags, prefix on a row's list" 1 "" \
  "invalid template: at byte 12: rows[1]: variable 'id'" -- \
  tags --template 'app://self/{id:1}' --rows -
input '[{"u": "app://self/a"}, {"u": "no-scheme"}]'
expect "tags, a row that is no URI" 1 "" "cannot derive tags: rows[1]: its URI" \
  -- tags --template '{+u}' --rows -
expect "tags, missing --rows" 2 "" "usage error" -- \
  tags --template 'app://self/item{?id}'
expect "tags, stray argument" 2 "" "unexpected argument" -- \
  tags --template 'x' --rows - extra
expect "tags, unreadable rows" 1 "" "cannot read" -- \
  tags --template 'x' --rows "$tmp/missing.json"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
