#!/usr/bin/env bash
# test.sh - from a fresh Debian 12 machine to the full test suite passing:
# installs dependencies, builds with warnings as errors, runs every test
# with ctest, then builds again with ASan+UBSan and runs everything again.
#
#   scripts/test.sh              everything
#   DONUT_SKIP_SANITIZE=1 scripts/test.sh   skip the sanitizer pass
#   DONUT_FUZZ_SECONDS=N scripts/test.sh    fuzz each parser N s (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
# scripts/install-deps.sh installed chromium: the browser test must run.
export DONUT_REQUIRE_BROWSER=1

run_suite() { # build-dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DDONUT_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs")
}

echo "== formatting (.clang-format)"
scripts/check-format.sh

echo "== build and test (RelWithDebInfo)"
run_suite build

echo "== layers and circles (scripts/check-layers.sh, scripts/check-circles.sh)"
scripts/check-layers.sh build/layers.txt
scripts/check-circles.sh build

echo "== minimal build: engine, URI and HTTP only (no server, purgers, shared stores or origin mode)"
run_suite build-minimal -DDONUT_WITH_SERVER=OFF -DDONUT_WITH_PURGE=OFF \
  -DDONUT_WITH_MEMCACHED=OFF -DDONUT_WITH_REDIS=OFF -DDONUT_WITH_ORIGIN=OFF \
  -DDONUT_BUILD_BENCH=OFF
echo "libdonut.so links: $(ldd build-minimal/libdonut.so | awk '{print $1}' | tr '\n' ' ')"
if ldd build-minimal/libdonut.so | grep -E 'libuv|libcurl|libmemcached|libhiredis|libcrypto|libssl|libzstd|http_parser'; then
  echo "test.sh: the minimal libdonut links a library of a part that was turned off" >&2
  exit 1
fi

echo "== fuzz every parser briefly (regression check; scripts/fuzz.sh runs longer)"
scripts/fuzz.sh "${DONUT_FUZZ_SECONDS:-15}"

if [ -z "${DONUT_SKIP_SANITIZE:-}" ]; then
  echo "== build and test with ASan+UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DDONUT_SANITIZE=ON \
      -DDONUT_BUILD_BENCH=OFF
fi
