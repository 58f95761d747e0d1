/// \file
/// \brief The AVX-512 GEMM: the shared algorithm of gemm_kernel.inl on 16-float ZMM vectors.
///
/// A reader learns here the last rung of the ladder: wider vectors. AVX-512 doubles the width of
/// every register and every FMA (16 floats instead of 8), so the same 6-row micro-kernel — 12
/// accumulators, 2 loads of B and 6 broadcasts of A per step — now computes a 6×32 tile and does
/// twice the work per instruction. On a core with two 512-bit FMA pipes (Intel Sapphire Rapids:
/// measured 246 GFLOP/s against 132 with AVX2) that is the difference between reaching OpenBLAS
/// and being left at half its speed. Three things change besides the width, all here in the
/// traits: masks are a separate kind of register (`__mmask16`, one bit per lane) instead of a
/// vector; the B panels are twice as wide (KC stays 384 anyway, so that both kernels round
/// alike: see the traits); and the larger L2 of these cores allows a larger MC.
///
/// This is one of only two files compiled with extra instruction sets (`-mavx512f -mfma`); it
/// is called only after cpu_has_avx512() said yes. See gemm_simd.hpp for why it must not
/// instantiate library templates.
#include <immintrin.h>

#include "gemm_simd.hpp"

#include "gemm_kernel.inl"
#include "gemm_avx_pack.inl"

namespace qkv::detail {
namespace {

/// AVX-512F: 32 ZMM registers of 16 floats, 8 mask registers, two 512-bit FMA pipes on
/// server cores (one on some client cores, where this path still matches AVX2).
struct Avx512 : AvxPacking {  // packing: gemm_avx_pack.inl
    using Vec = __m512;
    using Mask = __mmask16;  ///< bit j on: load/store lane j
    static constexpr i64 kLanes = 16;

    // The register tile: 6 rows × 2 vectors (6 × 32), as AVX2's, so both ISAs share the packed
    // path's panels. The 32 ZMM registers also hold the 12 × 32 tall tile (24 accumulators), which
    // the direct path uses while 12 rows remain (see gemm_microkernel.inl).
    static constexpr i64 kMR = 6;
    static constexpr bool kTallDirect = true;

    // Block sizes, for an Intel Sapphire Rapids core (48 KB L1d, 2 MB L2; the L3 is shared).
    //
    // KC = 384, as for AVX2, and not for the caches' sake: KC decides where the sum over k is
    // cut into pieces (each C element is one FMA chain per KC block, added to C block by block),
    // so with the same KC both SIMD backends round identically and give bit-for-bit the same
    // results; a training run (and every tutorial's printed loss) is then the same whichever
    // kernel the CPU picks. The cost: a KC×32 panel of B is 48 KB, the whole L1d, so part of it
    // is re-read from L2 for each tile. Measured here, KC = 256 (a 32 KB panel) was no faster
    // within the noise: the L2 delivers the 128 bytes of B per 12 FMAs easily, and the
    // hardware prefetcher sees the sequential stream.
    //
    // MC = 192: the packed MC×KC block of A (288 KB) streams from L2 past every B panel. A
    // larger MC reuses each B panel for more tiles, but every MC block of A must stay in L2
    // together with the B panels on their way through: 288 KB of a 2 MB L2 leaves plenty.
    //
    // NC = 4096: the packed KC×NC block of B (6 MB) is reused by every MC block of A; it lives
    // in the L3. A multiple of 32.
    static constexpr i64 kKC = 384;
    static constexpr i64 kMC = 192;
    static constexpr i64 kNC = 4096;
    // The direct path re-reads one unpacked operand from the cache for every tile. At 1 MB (what
    // fits the 2 MB L2) the unpacked rows, 4·N bytes apart, came too slowly for 32-wide tiles:
    // 1024×256×256 ran at 143 GFLOP/s direct and 185 packed. 128 KB, about what L1 and the near
    // part of L2 serve at full speed, was measured best (2048×128×384: 151 → 171; the attention
    // and small-K shapes stay direct).
    static constexpr i64 kDirectMaxBytes = 128 * 1024;

    static Vec zero() { return _mm512_setzero_ps(); }
    static Vec set1(float x) { return _mm512_set1_ps(x); }
    static Vec load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
    static void store_aligned(float* p, Vec v) { _mm512_store_ps(p, v); }
    static Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }  // vbroadcastss
    static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }  // a·b + c
    // Row R's element of a packed A column, in every lane: a broadcast from memory (which the
    // compiler may fold into the FMA as a memory operand).
    template <int R>
    static Vec packed_a(const float* p) { return broadcast(p + R); }

    // Lanes [0, n) on (none when n ≤ 0, all when n ≥ 16): just the low n bits of an integer.
    static Mask first_lanes(i64 n) {
        const auto clamped = static_cast<unsigned>(n < 0 ? 0 : (n > kLanes ? kLanes : n));
        return static_cast<Mask>((1u << clamped) - 1u);
    }
    // Masked-off lanes are neither read (they load as 0) nor written, and cannot fault.
    static Vec load_masked(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store_masked(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
};

}  // namespace

GemmKernel gemm_avx512_kernel() { return gemm_kernel<Avx512>(); }

}  // namespace qkv::detail
