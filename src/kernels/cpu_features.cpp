/// \file
/// \brief Does this CPU have AVX2+FMA, AVX-512, or NEON? The run-time half of "compile everywhere,
/// run fast here".
///
/// A reader learns here how one binary can contain AVX2 and AVX-512 code and still run on any
/// x86-64: only gemm_avx2.cpp and gemm_avx512.cpp are compiled with those instruction sets, and
/// nothing calls into them before this file has asked the CPU (through the CPUID instruction,
/// wrapped by GCC's `__builtin_cpu_supports`, which also checks that the operating system saves
/// the wider registers) whether those instructions exist. On AArch64 the question does not arise:
/// Advanced SIMD (NEON) is part of every AArch64 CPU, so gemm_neon.cpp needs no extra flag and
/// the answer is "yes" whenever the build has it. On other architectures, or when the build left
/// the SIMD files out, the answer is simply "no" and the reference path runs.
#include "qkv/kernels/gemm.hpp"

namespace qkv::kernels {

bool cpu_has_avx2_fma() {
#if defined(QKV_HAVE_AVX2_KERNEL) && (defined(__x86_64__) || defined(__i386__))
    // Both are needed: AVX2 for the 256-bit integer/permutes, FMA for vfmadd231ps. The answer
    // cannot change while the program runs, so it is computed once (thread-safe static init).
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(QKV_HAVE_AVX512_KERNEL) && (defined(__x86_64__) || defined(__i386__))
    // gemm_avx512.cpp is compiled with -mavx512f -mfma, which lets the compiler use AVX2 too:
    // all three must be there (every AVX-512 CPU has the other two, but a VM may hide them).
    static const bool has = __builtin_cpu_supports("avx512f") && cpu_has_avx2_fma();
    return has;
#else
    return false;
#endif
}

bool cpu_has_neon() {
#if defined(QKV_HAVE_NEON_KERNEL) && defined(__aarch64__)
    return true;
#else
    return false;
#endif
}

}  // namespace qkv::kernels
