#!/usr/bin/env bash
# Driver of the install_consumer test (tests/install/CMakeLists.txt):
#   1. cmake --install <build dir> --prefix <work dir>/prefix
#   2. configure, build and run tests/install/consumer against that prefix with
#      find_package(spindle): one program on spindle::spindle (static), one on
#      spindle::spindle_shared;
#   3. compile consumer/main.cpp with $(pkg-config --cflags --libs spindle) and
#      run it (shared library), then once more linking libspindle.a with
#      `pkg-config --static --libs` (static library).
# Any failure stops the test with a message saying which step failed.
set -euo pipefail

build_dir='' work_dir='' source_dir='' cmake_cmd=cmake generator='' cxx=c++ cxx_flags=''
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --work-dir) work_dir=$2; shift 2 ;;
    --source-dir) source_dir=$2; shift 2 ;;
    --cmake) cmake_cmd=$2; shift 2 ;;
    --generator) generator=$2; shift 2 ;;
    --cxx) cxx=$2; shift 2 ;;
    --cxx-flags) cxx_flags=$2; shift 2 ;;
    *) echo "run_consumer.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z $build_dir || -z $work_dir || -z $source_dir ]]; then
  echo "usage: run_consumer.sh --build-dir DIR --work-dir DIR --source-dir DIR" \
    "[--cmake CMAKE] [--generator GEN] [--cxx CXX] [--cxx-flags FLAGS]" >&2
  exit 2
fi

step=""
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "install_consumer: FAILED at step: ${step} (exit ${rc})" >&2
  fi
}
trap on_exit EXIT

start=$SECONDS
note() {
  step=$1
  echo "== [$((SECONDS - start))s] $1"
}
fail() {
  echo "install_consumer: $*" >&2
  exit 1
}

prefix=$work_dir/prefix
consumer_build=$work_dir/consumer-build
bin=$work_dir/bin
rm -rf "$prefix" "$consumer_build" "$bin"
mkdir -p "$bin"

# Every program prints this line and exits 0 when spindle worked.
expected="spindle consumer: result 42"
run_program() {
  local out
  out=$("$@") || fail "'$*' exited with status $? (output: ${out})"
  echo "$out"
  [[ $out == *"$expected"* ]] || fail "'$*' did not print '${expected}'"
}
needs_libspindle_so() {
  readelf -d "$1" | grep -q 'NEEDED.*\[libspindle\.so'
}

note "cmake --install ${build_dir} --prefix ${prefix}"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix"

config=$(find "$prefix" -path '*/cmake/spindle/spindleConfig.cmake' -print -quit)
pc=$(find "$prefix" -path '*/pkgconfig/spindle.pc' -print -quit)
[[ -n $config ]] || fail "no spindleConfig.cmake under ${prefix}"
[[ -n $pc ]] || fail "no spindle.pc under ${prefix}"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libspindle.a" "$libdir/libspindle.so" "$prefix/include/spindle/fiber/runtime.hpp"; do
  [[ -e $f ]] || fail "the install lacks ${f}"
done

note "configure the consumer with find_package(spindle)"
generator_args=()
[[ -n $generator ]] && generator_args=(-G "$generator")
"$cmake_cmd" -S "$source_dir" -B "$consumer_build" "${generator_args[@]}" \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror ${cxx_flags}" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
found_dir=$(sed -n 's/^spindle_DIR:[A-Z]*=//p' "$consumer_build/CMakeCache.txt")
[[ $found_dir -ef $(dirname "$config") ]] \
  || fail "find_package(spindle) found '${found_dir}', not the package installed in ${prefix}"

note "build the consumer"
"$cmake_cmd" --build "$consumer_build" --parallel 2

note "run the consumer linked with spindle::spindle (static)"
needs_libspindle_so "$consumer_build/consumer_static" \
  && fail "consumer_static needs libspindle.so: spindle::spindle is not the static library"
run_program "$consumer_build/consumer_static"

note "run the consumer linked with spindle::spindle_shared"
needs_libspindle_so "$consumer_build/consumer_shared" \
  || fail "consumer_shared does not need libspindle.so: spindle::spindle_shared is not the shared library"
run_program "$consumer_build/consumer_shared"

PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
note "pkg-config spindle: $(pkg-config --modversion spindle)"
cflags=$(pkg-config --cflags spindle)
libs=$(pkg-config --libs spindle)
static_libs=$(pkg-config --static --libs spindle)
echo "cflags: ${cflags}"
echo "libs: ${libs}"
echo "static libs: ${static_libs}"
[[ " $static_libs " == *" -luring "* ]] || fail "pkg-config --static --libs spindle lacks -luring"
[[ " $static_libs " == *" -lssl "* ]] || fail "pkg-config --static --libs spindle lacks -lssl"

note "compile with \$(pkg-config --cflags --libs spindle) and run"
# shellcheck disable=SC2046,SC2086  # the flags are lists of words
"$cxx" -std=c++20 -Wall -Wextra -Werror $cxx_flags "$source_dir/main.cpp" -o "$bin/pc_shared" \
  $(pkg-config --cflags --libs spindle)
run_program env LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin/pc_shared"

note "compile with \$(pkg-config --static --libs spindle), libspindle.a, and run"
# shellcheck disable=SC2086
"$cxx" -std=c++20 -Wall -Wextra -Werror $cxx_flags "$source_dir/main.cpp" -o "$bin/pc_static" \
  $cflags ${static_libs/-lspindle/-l:libspindle.a}
needs_libspindle_so "$bin/pc_static" && fail "pc_static needs libspindle.so"
run_program "$bin/pc_static"

step=""
echo "== [$((SECONDS - start))s] install_consumer: OK"
