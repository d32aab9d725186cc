#!/usr/bin/env bash
# Cross-builds the context layer for AArch64 and runs its tests under QEMU.
#
#   scripts/test-aarch64.sh
#
# Uses the `aarch64` CMake preset (build/aarch64): Debian's GNU cross toolchain
# (g++-aarch64-linux-gnu), static linking, and qemu-user as CTest's emulator
# (cmake/toolchains/aarch64-linux-gnu.cmake). Only the context layer
# (SPINDLE_CONTEXT_ONLY) and GoogleTest are built, so it takes well under a
# minute. Exits non-zero when a tool is missing, the build fails or a test fails.
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "test-aarch64: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
for tool in cmake ninja aarch64-linux-gnu-gcc aarch64-linux-gnu-g++; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ! command -v qemu-aarch64-static >/dev/null 2>&1 && ! command -v qemu-aarch64 >/dev/null 2>&1; then
  missing+=(qemu-aarch64)
fi
if [[ ! -f /usr/src/googletest/CMakeLists.txt ]]; then
  missing+=(/usr/src/googletest)
fi
if ((${#missing[@]} > 0)); then
  echo "test-aarch64: missing ${missing[*]} (scripts/install-deps.sh installs them:" \
    "g++-aarch64-linux-gnu, qemu-user, googletest)" >&2
  exit 1
fi

cmake --preset aarch64 >/dev/null
cmake --build build/aarch64
ctest --test-dir build/aarch64 --output-on-failure --no-tests=error
