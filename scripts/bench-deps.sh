#!/usr/bin/env bash
# Installs what the side-by-side benchmarks (bench/run.py) need, on Debian and
# Ubuntu: Boost.Context, Boost.Fiber and Boost.Asio, libev and libuv, liburing
# (the C io_uring peer), dd (coreutils), Go, Tokio's sources
# (built offline from Debian's packaged crates), cargo when none is found, and
# Python 3.
#
#   scripts/bench-deps.sh      (scripts/install-deps.sh --bench runs it)
#
# Only missing packages are installed, `apt-get update` runs at most once and
# only then, and nothing is printed when nothing is missing. cargo is installed
# from Debian only when there is no cargo on PATH or in ~/.cargo/bin (a rustup
# install is used as it is). Works as root, or through sudo (a password prompt
# only at a terminal). A peer whose toolchain is still missing is reported as
# missing by bench/run.py; the other figures are still measured.
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench-deps: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

packages=(libboost-context-dev libboost-fiber-dev libboost-dev libboost-system-dev libev-dev
  libuv1-dev liburing-dev coreutils golang-go librust-tokio-dev python3)
if ! command -v cargo >/dev/null 2>&1 && [[ ! -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
  packages+=(cargo)
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "bench-deps: not a Debian-based system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
    missing+=("$pkg")
  fi
done
((${#missing[@]} == 0)) && exit 0

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
  else
    return 1
  fi
}

echo "bench-deps: installing ${missing[*]}"
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0)
if ! as_root "${apt[@]}" update -qq; then
  echo "bench-deps: cannot run apt-get as root (not root, and no usable sudo);" \
    "install these packages: ${missing[*]}" >&2
  exit 1
fi
as_root "${apt[@]}" install --no-install-recommends "${missing[@]}"
