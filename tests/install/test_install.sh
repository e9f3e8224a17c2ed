#!/usr/bin/env bash
# test_install.sh - installs donut into a temporary prefix and builds an
# outside program against it twice: with CMake's find_package(donut) and
# with pkg-config. Both programs must run and print the same line.
set -euo pipefail
: "${DONUT_SOURCE_DIR:?}" "${DONUT_BINARY_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() { # name command...
  local name=$1; shift
  if "$@" >"$work/out.$name" 2>&1; then passed=$((passed + 1)); echo "ok: $name"
  else failed=$((failed + 1)); echo "FAILED: $name"; cat "$work/out.$name"; fi
}

cmake --install "$DONUT_BINARY_DIR" --prefix "$work/prefix" >/dev/null
want='app://self/x?a=2&b=1 hello'

check find_package bash -c "
  cmake -S '$DONUT_SOURCE_DIR/tests/install/consumer' -B '$work/build' \
    -DCMAKE_PREFIX_PATH='$work/prefix' >/dev/null &&
  cmake --build '$work/build' >/dev/null &&
  LD_LIBRARY_PATH='$work/prefix/lib' '$work/build/consumer' | grep -q '^$want ' &&
  '$work/build/consumer_static' | grep -q '^$want '"

libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -1)
check pkg_config bash -c "
  export PKG_CONFIG_PATH='$libdir'
  cc \$(pkg-config --cflags donut) '$DONUT_SOURCE_DIR/tests/install/consumer/main.c' \
     -o '$work/pc' \$(pkg-config --libs donut) &&
  LD_LIBRARY_PATH='$(dirname "$libdir")' '$work/pc' | grep -q '^$want '"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
