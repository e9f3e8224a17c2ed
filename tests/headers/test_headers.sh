#!/usr/bin/env bash
# test_headers.sh - every public header compiles on its own as strict C11
# (-Wpedantic) and as C++, and donut.h includes every one of them. The
# generated donut/config.h sits in the build tree.
set -u
: "${DONUT_SOURCE_DIR:?}" "${DONUT_BINARY_DIR:?}"
inc="$DONUT_SOURCE_DIR/include"
geninc="$DONUT_BINARY_DIR/include"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {
  if "$@" >"$work/log" 2>&1; then passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAILED: $*"; cat "$work/log"; fi
}
for h in "$inc"/donut.h "$inc"/donut/*.h "$geninc"/donut/config.h; do
  rel=${h#"$inc"/}
  rel=${rel#"$geninc"/}
  printf '#include <%s>\nint main(void) { return 0; }\n' "$rel" >"$work/t.c"
  check cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$inc" -I"$geninc" -c "$work/t.c" -o "$work/t.o"
  check c++ -std=c++11 -Wall -Wextra -Werror -x c++ -I"$inc" -I"$geninc" -c "$work/t.c" -o "$work/t.o"
  case "$rel" in
    donut.h) ;;
    *) check grep -q "#include \"$rel\"" "$inc/donut.h" ;;
  esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
