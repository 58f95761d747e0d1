/// \file
/// \brief Internal interface between the GEMM dispatcher and the SIMD kernels (AVX2, AVX-512, NEON).
///
/// A reader learns here where the line between portable and ISA-specific code runs. Everything
/// on this side of the line (argument checks, K = 0, threads, scratch memory) lives in portable
/// files; gemm_avx2.cpp and gemm_avx512.cpp, the only files compiled with `-mavx2 -mfma` and
/// `-mavx512f ...`, and gemm_neon.cpp on AArch64, receive a well-formed problem and a scratch
/// buffer, and only multiply. All three are thin wrappers around one shared algorithm
/// (gemm_kernel.inl and the steps it includes), instantiated for each ISA.
///
/// Keeping library templates (std::vector, std::min, ...) out of those files matters: an inline
/// function instantiated there would contain AVX2 or AVX-512 instructions, and the linker may
/// keep that copy for the whole program, which would then crash on a CPU without them. That is
/// also why everything in the shared algorithm lives in an anonymous namespace: each ISA file
/// gets its own private copy, and the linker cannot mix them up.
#pragma once

#include <cstdint>
#include "qkv/kernels/gemm.hpp"  // GemmEpilogue

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
    /// Optional row of N values that stands in for the old C in every row (with beta = 1): a
    /// linear layer's bias, added in the kernel's write-back instead of copied into C first.
    const float* bias = nullptr;
    /// Optional work on each finished tile of C (see kernels::GemmEpilogue).
    kernels::GemmEpilogue epilogue = {};
};

/// \brief What the dispatcher needs to know about one SIMD kernel: its tile and its entry points.
///
/// Preconditions of `run` (checked by the dispatcher): M, N, K ≥ 1, alpha ≠ 0, valid strides,
/// and the CPU supports the kernel's instructions.
struct GemmKernel {
    std::int64_t mr;  ///< rows of the register tile (thread blocks are whole tiles)
    std::int64_t nr;  ///< columns of the register tile
    /// Floats of 64-byte-aligned scratch memory `run` needs for a problem.
    std::int64_t (*scratch_floats)(const GemmF32& g);
    /// Runs a problem on the calling thread with a scratch buffer of scratch_floats(g) floats.
    void (*run)(const GemmF32& g, float* scratch);
    /// True when `run` takes the packed path (false: the direct path, which packs little).
    bool (*packs)(const GemmF32& g);
};

/// \brief The AVX2/FMA kernel (6×16 tile), defined in gemm_avx2.cpp. Call it (and what it
/// returns) only when the CPU has AVX2 and FMA: the file may use them anywhere.
/// \return its tile and entry points
GemmKernel gemm_avx2_kernel();

/// \brief The AVX-512 kernel (6×32 tile), defined in gemm_avx512.cpp. Call it (and what it
/// returns) only when the CPU has AVX-512F and FMA: the file may use them anywhere.
/// \return its tile and entry points
GemmKernel gemm_avx512_kernel();

/// \brief The NEON kernel (12×8 tile), defined in gemm_neon.cpp; built only for AArch64, where
/// Advanced SIMD is always present.
/// \return its tile and entry points
GemmKernel gemm_neon_kernel();

}  // namespace qkv::detail
