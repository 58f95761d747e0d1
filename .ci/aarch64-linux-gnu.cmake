# CMake toolchain file: cross-compile qkv for 64-bit ARM Linux (AArch64) on an x86-64 Debian or
# Ubuntu machine, and run its programs — ctest's whole suite included — under qemu's user-mode
# emulation. Used by CI (.ci/run) and by the `aarch64` presets (CMakePresets.json):
#
#   cmake --workflow --preset aarch64      configure, build and run the suite under qemu-aarch64
#
# It lives in .ci/ because it is a piece of the test machinery, not of the library: on an ARM
# machine (a Raspberry Pi, an ARM server, a Mac) qkv builds natively with the ordinary commands
# and needs no toolchain file. What it needs (Debian packages, .ci/install-deps installs them):
#   g++-aarch64-linux-gnu   the cross compiler
#   libfmt-dev:arm64        fmt built for AArch64 (after `dpkg --add-architecture arm64`), with the
#                           AArch64 C and C++ runtime the programs run with (libc6, libstdc++6:arm64)
#   qemu-user               qemu-aarch64, which runs AArch64 Linux programs on this machine
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's multiarch packages (libfmt-dev:arm64) install into /usr/lib/aarch64-linux-gnu, where
# find_package() looks when it knows the target's library architecture.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs this build makes cannot run here directly (no binfmt_misc handler is assumed): ctest
# puts the emulator in front of every test whose command is one of them, and the tests that run
# them from inside another program (check_output, lab_expect, a shell) insert it themselves.
# qemu-aarch64 finds the AArch64 dynamic loader at /lib/ld-linux-aarch64.so.1 and the C/C++
# runtime in /usr/lib/aarch64-linux-gnu: Debian's multiarch packages libc6:arm64 and
# libstdc++6:arm64. (Not `-L /usr/aarch64-linux-gnu`, the cross compiler's own copy of them: with
# that glibc, qemu 7.2 hangs as soon as a program starts a second thread.)
find_program(QKV_QEMU_AARCH64 qemu-aarch64)
if(NOT QKV_QEMU_AARCH64)
  message(WARNING "qemu-aarch64 not found (Debian: apt-get install qemu-user): the build works, the tests cannot run")
  set(QKV_QEMU_AARCH64 qemu-aarch64)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR ${QKV_QEMU_AARCH64})
