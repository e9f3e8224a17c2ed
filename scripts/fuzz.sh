#!/usr/bin/env bash
# fuzz.sh - builds every libFuzzer target (fuzz/fuzz_*.c) with clang and
# runs each for SECONDS (default 60), one after another. Corpora live in
# build-fuzz/corpus/<target>, so later runs continue where earlier ones
# stopped. Exits non-zero when a target finds a crash, leak or timeout.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (scripts/install-deps.sh)" >&2; exit 1; }
CC=clang cmake -S . -B build-fuzz -DDONUT_BUILD_FUZZERS=ON -DDONUT_BUILD_TESTS=OFF \
  -DDONUT_BUILD_BENCH=OFF -DDONUT_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  if "build-fuzz/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/artifacts/$t/" "build-fuzz/corpus/$t" \
      >"build-fuzz/$t.log" 2>&1; then
    echo "fuzz: $t ran ${seconds}s: $(grep -Eo '#[0-9]+' "build-fuzz/$t.log" | tail -1 | tr -d '#') executions, no findings"
  else
    echo "fuzz: $t FOUND A PROBLEM; see build-fuzz/$t.log and build-fuzz/artifacts/$t/" >&2
    tail -30 "build-fuzz/$t.log" >&2
    status=1
  fi
done
exit $status
