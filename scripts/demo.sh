#!/usr/bin/env bash
# demo.sh - from a fresh Debian 12 machine to donut running: installs what
# the build needs, builds, and starts `donut serve` with its demo site on
# the in-process memory store (http://127.0.0.1:8080, control API on
# 127.0.0.1:8081). Extra arguments go to `donut serve`; stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
cmake -S . -B build -DDONUT_BUILD_TESTS=OFF -DDONUT_BUILD_BENCH=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target donut_cli >/dev/null
exec build/donut serve "$@"
