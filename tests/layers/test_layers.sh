#!/usr/bin/env bash
# test_layers.sh - the layers are enforced by the build, not only written
# down: scripts/check-layers.sh passes on the tree, a file compiled with the
# engine layer's include path cannot include the server's private header
# (the build fails on that include), and the same setup including a lower
# layer's header builds, so the failure is the include and nothing else.
set -u
: "${DONUT_SOURCE_DIR:?}" "${DONUT_BINARY_DIR:?}"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }

if "$DONUT_SOURCE_DIR/scripts/check-layers.sh" "$DONUT_BINARY_DIR/layers.txt"; then
  ok "check-layers.sh"
else
  fail "check-layers.sh"
fi

out=$(cmake --build "$DONUT_BINARY_DIR" --target donut_probe_upward 2>&1)
if [ $? -ne 0 ] && grep -q 'server_internal.h: No such file' <<<"$out"; then
  ok "an upward include (engine -> server) fails the build"
else
  fail "an upward include (engine -> server) should fail the build on that include"
  printf '%s\n' "$out" | tail -20
fi

if out=$(cmake --build "$DONUT_BINARY_DIR" --target donut_probe_downward 2>&1); then
  ok "a downward include (engine -> uri) builds"
else
  fail "a downward include (engine -> uri) should build"
  printf '%s\n' "$out" | tail -20
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
