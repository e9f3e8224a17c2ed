#!/usr/bin/env bash
# install-deps.sh - installs everything donut needs to build and test on
# Debian 12, from Debian's own packages. Safe to run again: packages that
# are already installed are skipped. Needs root or sudo.
#
#   scripts/install-deps.sh          build and test dependencies
#   scripts/install-deps.sh --build  only what building the library needs
#   scripts/install-deps.sh --bench  tests plus the benchmarks' servers
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git ca-certificates
  libjansson-dev libuv1-dev libcmocka-dev libxxhash-dev libcurl4-openssl-dev
  libmemcached-dev libhiredis-dev libzstd-dev libssl-dev libhttp-parser-dev)
# The tests start real servers (memcached, redis, varnish with the xkey
# vmod) and a real browser (chromium, headless); clang builds the fuzzers.
test_pkgs=(clang libclang-rt-14-dev clang-format memcached redis-server varnish
  varnish-modules chromium curl python3 python3-flask procps)
# Only the benchmarks need these (scripts/install-deps.sh --bench).
bench_pkgs=(wrk nginx)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
  --build) ;;
  --bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) pkgs+=("${test_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these as system services on install; the tests run their
# own instances on loopback ports, so the system ones are not needed.
for svc in memcached redis-server varnish nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
