#!/usr/bin/env bash
# test_cli_main.sh - the top level of the donut command: --help, --version,
# every command's --help, and usage errors (exit status 2).
set -u
: "${DONUT:?path of the donut binary}"
passed=0 failed=0
expect() { # name want-status command...
  local name=$1 want=$2; shift 2
  "$@" >/tmp/dn_cli_out.$$ 2>/tmp/dn_cli_err.$$
  local got=$?
  if [ "$got" -eq "$want" ]; then passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAILED: $name: exit $got, want $want"; cat /tmp/dn_cli_err.$$; fi
}
contains() { # name file pattern
  if grep -q -- "$3" "$2"; then passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAILED: $1: no '$3' in output"; cat "$2"; fi
}

expect "--help" 0 "$DONUT" --help
contains "--help lists commands" /tmp/dn_cli_out.$$ "Commands:"
contains "--help documents exit status" /tmp/dn_cli_out.$$ "Exit status:"
expect "--version" 0 "$DONUT" --version
contains "--version" /tmp/dn_cli_out.$$ "^donut [0-9]*\.[0-9]*\.[0-9]*$"
expect "no command" 2 "$DONUT"
expect "unknown command" 2 "$DONUT" frobnicate
contains "unknown command is named" /tmp/dn_cli_err.$$ "unknown command 'frobnicate'"

# Every command listed in --help answers its own --help, and rejects an
# unknown option with status 2.
for cmd in $("$DONUT" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}'); do
  expect "$cmd --help" 0 "$DONUT" "$cmd" --help
  contains "$cmd --help has usage" /tmp/dn_cli_out.$$ "usage: donut $cmd"
  expect "$cmd --no-such-option" 2 "$DONUT" "$cmd" --no-such-option
done

rm -f /tmp/dn_cli_out.$$ /tmp/dn_cli_err.$$
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
