/// \file
/// \brief Internal interface between the GEMM dispatcher and the AVX2/FMA kernel.
///
/// A reader learns here where the line between portable and AVX2 code runs. Everything on this
/// side of the line (argument checks, K = 0, threads, scratch memory) lives in portable files;
/// gemm_avx2.cpp, the only file compiled with `-mavx2 -mfma`, receives a well-formed
/// single-threaded problem and a scratch buffer, and only multiplies. Keeping library templates
/// (std::vector, std::min, ...) out of that file matters: an inline function instantiated there
/// would contain AVX2 instructions, and the linker may keep that copy for the whole program,
/// which would then crash on a CPU without AVX2.
#pragma once

#include <cstdint>

namespace qkv::detail {

/// One single-precision GEMM problem, \f$ C \leftarrow \alpha\,\mathrm{op}(A)\,\mathrm{op}(B) +
/// \beta C \f$, with the meaning of qkv::kernels::gemm().
struct GemmF32 {
    bool trans_a;      ///< A stored as (K, M) and used transposed
    bool trans_b;      ///< B stored as (N, K) and used transposed
    std::int64_t M;    ///< rows of C
    std::int64_t N;    ///< columns of C
    std::int64_t K;    ///< inner dimension
    float alpha;       ///< scale of the product
    const float* A;    ///< first operand
    std::int64_t lda;  ///< row stride of A as stored
    const float* B;    ///< second operand
    std::int64_t ldb;  ///< row stride of B as stored
    float beta;        ///< scale of the old C (0: C is never read)
    float* C;          ///< result
    std::int64_t ldc;  ///< row stride of C
};

/// \brief Floats of 64-byte-aligned scratch memory gemm_avx2() needs for problem \p g.
/// \param g the problem
std::int64_t gemm_avx2_scratch_floats(const GemmF32& g);

/// \brief Run problem \p g on the calling thread with the AVX2/FMA kernel.
///
/// Preconditions (checked by the dispatcher): M, N, K ≥ 1, alpha ≠ 0, valid strides, and the CPU
/// supports AVX2 and FMA.
/// \param g the problem
/// \param scratch at least gemm_avx2_scratch_floats(g) floats, 64-byte aligned
void gemm_avx2(const GemmF32& g, float* scratch);

}  // namespace qkv::detail
