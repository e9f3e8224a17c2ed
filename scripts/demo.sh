#!/usr/bin/env bash
# demo.sh - from a fresh Debian 12 machine to donut running: installs what
# the build needs, builds, and runs the demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
cmake -S . -B build -DDONUT_BUILD_TESTS=OFF -DDONUT_BUILD_BENCH=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
exec build/examples/example_news "$@"
