#!/usr/bin/env bash
# Installs what building and testing spindle needs, on Debian and Ubuntu.
#
#   scripts/install-deps.sh          compilers, CMake, Ninja, liburing, c-ares, dnsmasq,
#                                    OpenSSL, GoogleTest,
#                                    Google Benchmark, Clang, the AArch64 cross
#                                    toolchain and QEMU
#   scripts/install-deps.sh --bench  the same, then scripts/bench-deps.sh (what the
#                                    side-by-side benchmarks need)
#
# Only missing packages are installed, and `apt-get update` runs only then, once.
# Works as root, or through sudo (which may ask for a password at a terminal, and
# only there). apt-get never asks anything (DEBIAN_FRONTEND=noninteractive).
#
# Also raises vm.max_map_count to at least 1048576 when it is lower: every
# guarded fiber stack is two kernel mappings, and the tests run 100,000 fibers
# at once. (Recent Fedora, Ubuntu and Arch ship 1048576 as the default.) When
# it cannot be raised a warning says so and the tests scale themselves down.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "install-deps: $*"; }
warn() { echo "install-deps: warning: $*" >&2; }

# Runs a command as root: directly, or through sudo (without a prompt when
# there is no terminal to answer it). Fails when neither is possible.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then
      sudo "$@"
    else
      sudo -n "$@"
    fi
  else
    return 1
  fi
}

packages=(
  # build and test
  build-essential g++ cmake ninja-build pkg-config
  liburing-dev
  # the net layer: c-ares for DNS; dnsmasq (its binary only, no service) is
  # the local DNS server the DNS tests start
  libc-ares-dev dnsmasq-base
  # TLS (OpenSSL); the openssl command runs s_server / s_client in the TLS tests
  libssl-dev openssl
  googletest libgtest-dev libgmock-dev
  libbenchmark-dev
  python3
  # the Clang build check
  clang
)
# The AArch64 job: cross compiler, and QEMU to run the cross-built tests.
if command -v dpkg >/dev/null 2>&1 && [[ $(dpkg --print-architecture) == amd64 ]]; then
  packages+=(g++-aarch64-linux-gnu qemu-user)
fi

install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    warn "not a Debian-based system; install the equivalents of: ${packages[*]}"
    return 0
  fi
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all ${#packages[@]} packages present"
    return 0
  fi
  log "installing ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0)
  if ! as_root "${apt[@]}" update -qq; then
    echo "install-deps: cannot run apt-get as root (not root, and no usable sudo);" \
      "install these packages: ${missing[*]}" >&2
    return 1
  fi
  as_root "${apt[@]}" install --no-install-recommends "${missing[@]}"
}

raise_max_map_count() {
  local want=1048576 file=/proc/sys/vm/max_map_count cur now
  [[ -r $file ]] || return 0
  cur=$(<"$file")
  if ((cur >= want)); then
    return 0
  fi
  as_root sysctl -q -w "vm.max_map_count=$want" >/dev/null 2>&1 \
    || as_root sh -c "echo $want > $file" 2>/dev/null \
    || true
  now=$(<"$file")
  if ((now >= want)); then
    log "raised vm.max_map_count from $cur to $now (each guarded fiber stack takes two mappings;" \
      "the tests run 100,000 fibers at once). Not kept across reboots: add" \
      "'vm.max_map_count = $want' to /etc/sysctl.d/ for that."
  else
    warn "vm.max_map_count is $now and could not be raised to $want (needs root outside a" \
      "container); the tests that run very many fibers at once will use fewer"
  fi
}

install_packages
raise_max_map_count

if ((bench)); then
  if [[ -f $here/bench-deps.sh ]]; then
    bash "$here/bench-deps.sh"
  else
    log "no scripts/bench-deps.sh: nothing more to install for the benchmarks"
  fi
fi
