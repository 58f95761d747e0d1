/// \file
/// \brief The AVX2/FMA GEMM: the shared algorithm of gemm_kernel.inl on 8-float YMM vectors.
///
/// A reader learns here how little is ISA-specific in a fast GEMM: a dozen one-line wrappers
/// around intrinsics (load, store, FMA, broadcast, masked load/store for edge tiles) and three
/// block sizes chosen for the caches. Everything else — packing, blocking, the 6×16 micro-kernel,
/// the direct path for small shapes — is gemm_kernel.inl and the steps it includes, shared with
/// gemm_avx512.cpp.
///
/// This is one of only two files compiled with extra instruction sets (`-mavx2 -mfma`); it is
/// called only after cpu_has_avx2_fma() said yes. See gemm_simd.hpp for why it must not
/// instantiate library templates.
#include <immintrin.h>

#include "gemm_simd.hpp"

#include "gemm_kernel.inl"
#include "gemm_avx_pack.inl"

namespace qkv::detail {
namespace {

/// AVX2 + FMA: 16 YMM registers of 8 floats, two FMA pipes on the cores qkv was tuned on.
struct Avx2 : AvxPacking {  // packing: gemm_avx_pack.inl
    using Vec = __m256;
    using Mask = __m256i;  ///< AVX2 masks are vectors: lane j all-ones to load/store it
    static constexpr i64 kLanes = 8;

    // The register tile: 6 rows × 2 vectors (6 × 16). 12 accumulators, 2 registers for a row of B
    // and 1 for the broadcast element of A: 15 of the 16 YMM registers (see gemm_kernel.inl).
    static constexpr i64 kMR = 6;
    static constexpr bool kTallDirect = false;  // 24 accumulators would not fit 16 registers

    // Block sizes, for an AMD Zen 5 core (48 KB L1d, 1 MB L2, 32 MB L3 shared by 2 cores).
    //
    // KC = 384: the micro-kernel streams a KC×16 panel of B (24 KB) and a 6×KC panel of A
    // (9 KB) per tile. The B panel is reused for all MC/6 tiles of a block, so it must stay in
    // the 48 KB L1d along with the A panel in flight: 33 KB of 48, leaving room for the C tile
    // and the next A panel arriving. A larger KC also amortises the write-back of C (each C tile
    // is loaded and stored once per KC steps). Measured with --cputime: KC = 256, 320 and 384
    // are within 2 % of each other; 384 was best on the large squares. (gemm_avx512.cpp uses the
    // same KC, so that both kernels round alike.)
    //
    // MC = 144: the packed MC×KC block of A (216 KB) is reused for every 16-column panel of B,
    // so it should stay in L2 with plenty of room for the B panels streaming through. MC is a
    // multiple of 6 so that blocks are made of whole panels.
    //
    // NC = 4080: the packed KC×NC block of B (≈ 6 MB) is reused by every MC block of A; it lives
    // in L3, which both cores share, each with its own block. NC is a multiple of 16.
    static constexpr i64 kKC = 384;
    static constexpr i64 kMC = 144;
    static constexpr i64 kNC = 4080;
    // The direct path re-reads one unpacked operand; up to 512 KB of it stays in a 1 MB L2.
    static constexpr i64 kDirectMaxBytes = 512 * 1024;

    static Vec zero() { return _mm256_setzero_ps(); }
    static Vec set1(float x) { return _mm256_set1_ps(x); }
    static Vec load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
    static void store_aligned(float* p, Vec v) { _mm256_store_ps(p, v); }
    static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }  // a·b + c
    // Row R's element of a packed A column, in every lane: a broadcast from memory (which the
    // compiler may fold into the FMA as a memory operand).
    template <int R>
    static Vec packed_a(const float* p) { return broadcast(p + R); }

    // Lanes [0, n) on (none when n ≤ 0, all when n ≥ 8): compare n > lane index, per lane.
    static Mask first_lanes(i64 n) {
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const auto clamped = static_cast<int>(n < 0 ? 0 : (n > kLanes ? kLanes : n));
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(clamped), lanes);
    }
    // vmaskmovps neither reads nor writes masked-off lanes, so it cannot fault past C's end.
    static Vec load_masked(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
    static void store_masked(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
};

}  // namespace

GemmKernel gemm_avx2_kernel() { return gemm_kernel<Avx2>(); }

}  // namespace qkv::detail
