#!/usr/bin/env bash
# check-layers.sh - every include in lib/ and include/ respects the layers.
#
#   scripts/check-layers.sh BUILD_DIR/layers.txt
#
# CMake writes layers.txt from the donut_layer() calls of CMakeLists.txt,
# one line per layer built: "name|layers below|its public headers". A file
# of lib/<layer>/ may include headers of its own folder and of the layers
# below; so may a public header of that layer. The compiler already refuses
# an upward include of a private header (a layer's include path holds only
# the folders below it); this script also catches the public headers, which
# every layer can reach, and names the offending line. The donut command
# (cli/) may include only public headers.
set -euo pipefail
map=${1:?usage: check-layers.sh BUILD_DIR/layers.txt}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

declare -A below header_layer
layers=()
while IFS='|' read -r name lower headers; do
  [ -n "$name" ] || continue
  layers+=("$name")
  below[$name]=" $name $lower "
  for h in $headers; do header_layer[donut/$h]=$name; done
done <"$map"

bad=0
# The layer that owns an include: a private header in lib/<layer>/, or a
# public donut/*.h. Prints nothing for system headers.
owner() {
  local inc=$1 l
  if [ -n "${header_layer[$inc]:-}" ]; then echo "${header_layer[$inc]}"; return; fi
  for l in "${layers[@]}"; do
    if [ -e "lib/$l/$inc" ]; then echo "$l"; return; fi
  done
}
check_file() { # file layer
  local f=$1 layer=$2 line inc o
  while IFS= read -r line; do
    inc=${line#*\"}; inc=${inc%%\"*}
    o=$(owner "$inc")
    if [ -z "$o" ]; then
      if [[ $inc == donut/* || $inc == donut.h ]] && [ "$layer" != cli ]; then
        echo "check-layers: $f includes $inc, a header of a part that is not built" >&2
        bad=1
      fi
      continue
    fi
    if [ "$layer" = cli ]; then
      if [[ $inc != donut/* ]]; then
        echo "check-layers: $f includes $inc, a private header of lib/$o/ (the donut command uses only the public API)" >&2
        bad=1
      fi
      continue
    fi
    if [[ ${below[$layer]} != *" $o "* ]]; then
      echo "check-layers: $f (layer $layer) includes $inc of the higher layer $o" >&2
      bad=1
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
}

count=0
for l in "${layers[@]}"; do
  while IFS= read -r f; do
    check_file "$f" "$l"; count=$((count + 1))
  done < <(find "lib/$l" -name '*.[ch]' | sort)
done
for inc in "${!header_layer[@]}"; do
  f=include/$inc
  [ -e "$f" ] || continue
  check_file "$f" "${header_layer[$inc]}"; count=$((count + 1))
done
for f in cli/*.[ch]; do
  check_file "$f" cli; count=$((count + 1))
done
# Every folder of lib/ is a layer that CMake knows.
for d in lib/*/; do
  d=${d%/}; d=${d#lib/}
  if [ -z "${below[$d]:-}" ]; then
    if grep -q "donut_layer($d " CMakeLists.txt; then continue; fi
    echo "check-layers: lib/$d/ is not a layer of CMakeLists.txt" >&2
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "check-layers: $count files respect the layers (${layers[*]})"
exit "$bad"
