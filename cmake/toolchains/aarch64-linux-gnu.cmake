# Cross build for AArch64 Linux with Debian's GNU cross toolchain
# (g++-aarch64-linux-gnu). Binaries are linked statically, so qemu-user runs
# them without an AArch64 sysroot; CTest runs every test through the emulator.
#
#   cmake --preset aarch64 && cmake --build build/aarch64 && ctest --test-dir build/aarch64

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# The target's headers and libraries come with the cross compiler; programs
# (the emulator) come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(SPINDLE_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64
  DOC "qemu-user emulator that runs the AArch64 test binaries")
if(SPINDLE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SPINDLE_QEMU_AARCH64}")
else()
  message(WARNING "qemu-aarch64 not found (Debian: apt-get install qemu-user): "
                  "the AArch64 tests will build but ctest cannot run them")
endif()
