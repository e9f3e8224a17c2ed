#!/usr/bin/env bash
# check-format.sh - fails when a C source or header tracked by git differs
# from what clang-format (.clang-format) would write. Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 1; }
bad=0
while IFS= read -r f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "check-format: $f is not formatted" >&2
    bad=1
  fi
done < <(git ls-files '*.c' '*.h')
[ "$bad" -eq 0 ] && echo "check-format: every C file is formatted"
exit "$bad"
