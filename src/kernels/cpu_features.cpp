/// \file
/// \brief Does this CPU have AVX2 and FMA? The run-time half of "compile everywhere, run fast here".
///
/// A reader learns here how one binary can contain AVX2 code and still run on any x86-64: only
/// gemm_avx2.cpp is compiled with `-mavx2 -mfma`, and nothing calls into it before this file has
/// asked the CPU (through the CPUID instruction, wrapped by GCC's `__builtin_cpu_supports`)
/// whether those instructions exist. On other architectures, or when the build left the AVX2 file
/// out, the answer is simply "no" and the reference path runs.
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

}  // namespace qkv::kernels
