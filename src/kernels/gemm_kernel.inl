/// \file
/// \brief The fast single-precision GEMM, written once for any SIMD width: packing, cache
/// blocking and an MR×NR register-tiled FMA micro-kernel.
///
/// This file and the four it includes are the end of a ladder that every optimised BLAS climbs.
/// A reader learns here why each rung exists and what it buys. They are not compiled on their
/// own: gemm_avx2.cpp and gemm_avx512.cpp each describe their instruction set in a small *traits*
/// struct (the vector type, how many floats it holds, load/store/FMA/broadcast, masked load/store
/// for edge tiles, and the block sizes that suit it) and then include this file, so the same
/// algorithm is compiled twice, once per ISA, with no copy of it to drift apart. The ladder, with
/// the numbers of the machines qkv was measured on, and the file that holds each rung:
///
/// 1. **Naive i-j-k** (gemm_reference.cpp): the inner loop walks B down a column, a new cache
///    line per multiply-add, and its sum is one long dependency chain the compiler may not
///    reorder: 5–9 GFLOP/s at 32³–128³ (the `ref1t` column of bench_gemm), far less once B
///    no longer fits in cache.
/// 2. **Loop order i-k-j**: the inner loop now walks a row of B and a row of C contiguously, so the
///    compiler can vectorise it; but every step loads and stores C, so memory traffic, not
///    arithmetic, sets the speed. (Tutorial 04 runs this rung; the library skips it.)
/// 3. **Blocking** (gemm_packed.inl): work on tiles small enough to stay in cache, so each float
///    fetched from memory is used many times instead of once. Three levels, one per cache (KC, MC,
///    NC in the traits), as five loops around the micro-kernel.
/// 4. **Packing** (gemm_pack.inl): copy each tile into a contiguous, aligned buffer in exactly the
///    order the inner kernel reads it. Strides, transposes and TLB misses are paid once per tile,
///    during the copy; the inner loop then reads two sequential streams. Edge tiles are
///    zero-padded, so the inner loop never needs a bounds check.
/// 5. **Register tiling** (gemm_microkernel.inl): a 6×NR block of C lives in 12 vector registers
///    for the whole K loop, NR = 2 vectors (16 floats with AVX2, 32 with AVX-512). Each step loads
///    one row of B (2 loads), broadcasts 6 floats of A, and issues 12 FMAs: 12 FMAs per 8 loads,
///    enough to keep both FMA pipes busy every cycle. AVX2 reaches ~90 % of a Zen 5 core's
///    117 GFLOP/s.
/// 6. **Wider vectors** (AVX-512, gemm_avx512.cpp): the same 12 FMAs now each do 16 multiply-adds
///    instead of 8, so the same loop does twice the work per cycle, on a core whose two FMA pipes
///    are 512 bits wide (Intel Sapphire Rapids: 246 GFLOP/s per core against 132 with AVX2). The
///    packed panels of B get twice as wide, so the cache blocks are re-sized (see the traits).
/// 7. **Threads** (gemm_dispatch.cpp): split C between cores. Each core runs this serial
///    algorithm on its own block of C.
///
/// The shapes in a small transformer are often too small for rung 4 to pay (attention products
/// with T = 16–128 and head size 16–64): copying A costs about as much as using it a few times.
/// For those, a *direct* path (gemm_direct.inl) runs the same micro-kernels straight on A as
/// stored and packs B only when it must (transposed B, or a last panel narrower than NR columns).
///
/// Rules for these files (see gemm_simd.hpp): only the traits, plain functions and the compiler's
/// `__builtin_prefetch`; no intrinsics of any one ISA, no library
/// templates; everything inside the anonymous namespace, so that each ISA file gets a private
/// copy. Every function is a template on the traits struct `Isa`; the including file instantiates
/// gemm_kernel<Traits>() with its own. What an ISA file provides, besides the vector operations:
///
/// - `kMR`, the rows of the register tile (6 on x86, 12 on NEON: see below and the traits);
/// - `packed_a<R>(p)`, row R's element of a packed A column in every lane (x86 broadcasts it from
///   memory; NEON loads the column as vectors once and multiplies by one lane of them);
/// - `transpose_block<kLd>(src, ld, dst)` and `kTransposeBlock`, the register transpose that
///   packs a transposed B (8×8 with AVX, 4×4 with NEON);
/// - `pack_a_block(src, ld, dst, last)` and `kPackAK`, which packs kPackAK steps of k of a full
///   A panel through register transposes, and `copy_a_step(dst, src)`, which copies the MR floats
///   of one step of a transposed A;
/// - `kTallDirect`, whether the direct path uses the 12-row tall tile (AVX-512 only);
/// - the block sizes KC, MC, NC and the direct path's limit, each explained where it is chosen.
namespace qkv::detail {
namespace {

using i64 = std::int64_t;

constexpr i64 imin(i64 a, i64 b) { return a < b ? a : b; }
constexpr i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
constexpr i64 round_up(i64 a, i64 b) { return ceil_div(a, b) * b; }

// ---------------------------------------------------------------------------------------------
// The register tile (the block sizes KC, MC, NC are chosen, and explained, in each ISA's traits)
//
// MR×NR is the register tile: MR rows of C (Isa::kMR), NR = 2 vectors of columns. The tile's
// accumulators, one row of B and A's multiplier must all fit the vector registers:
//
//   AVX2, 16 registers of 8 floats:     MR = 6:  12 accumulators + 2 (B) + 1 (broadcast A) = 15
//   AVX-512, 32 registers of 16 floats: MR = 6, as AVX2 (and a 12-row tall tile on the direct path)
//   NEON, 32 registers of 4 floats:     MR = 12: 24 accumulators + 2 (B) + 3 (A's 12 floats) = 29
//
// At least latency × pipes independent FMAs must be in flight (4 × 2 = 8 on the x86 cores qkv was
// tuned on); 12 and 24 leave a margin. (gemm_neon.cpp derives its 12 × 8 tile in full.)
//
// KC also fixes the rounding: each element of C is summed as one FMA chain per KC block of k, in
// order, whatever the vector width. Every ISA uses KC = 384, so the AVX2, AVX-512 and NEON kernels
// return bit-identical results (a test checks it, on x86 between AVX2 and AVX-512, and on every
// ISA against hashes of results recorded on x86).
// ---------------------------------------------------------------------------------------------
template <class Isa>
constexpr i64 kMR = Isa::kMR;
template <class Isa>
constexpr i64 kNR = 2 * Isa::kLanes;

// Splits `total` into ceil(total/block) near-equal pieces rounded up to `unit`, so that e.g.
// K = 400 runs as 2 blocks of 200 rather than 384 and a wasteful 16.
constexpr i64 balanced_block(i64 total, i64 block, i64 unit) {
    const i64 pieces = ceil_div(total, block);
    return round_up(ceil_div(total, pieces), unit);
}

}  // namespace
}  // namespace qkv::detail

// The rungs, in the order each builds on the last.
#include "gemm_pack.inl"         // 4. packing A and B into panels
#include "gemm_microkernel.inl"  // 5. the register-tiled micro-kernels and their write-back to C
#include "gemm_packed.inl"       // 3. the five loops of the packed (Goto/BLIS) path
#include "gemm_direct.inl"       //    the direct path for small and skinny products

namespace qkv::detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Entry points: which path a problem takes, and the scratch it needs
// ---------------------------------------------------------------------------------------------

template <class Isa>
i64 scratch_floats(const GemmF32& g) {
    return use_direct<Isa>(g) ? direct_scratch_floats<Isa>(g) : packed_scratch_floats<Isa>(g);
}

template <class Isa>
void run(const GemmF32& g, float* scratch) {
    if (use_narrow<Isa>(g))
        gemm_narrow<Isa>(g, scratch);
    else if (use_direct<Isa>(g))
        gemm_direct<Isa>(g, scratch);
    else
        gemm_packed<Isa>(g, scratch);
}

template <class Isa>
bool packs(const GemmF32& g) {
    return !use_direct<Isa>(g);
}

/// The kernel table of one ISA, for the dispatcher (gemm_simd.hpp).
template <class Isa>
GemmKernel gemm_kernel() {
    static_assert(Isa::kMC % kMR<Isa> == 0 && Isa::kNC % kNR<Isa> == 0, "blocks must hold whole panels");
    static_assert(kNR<Isa> % Isa::kTransposeBlock == 0, "B panels are transposed in whole blocks");
    static_assert(kMR<Isa> <= 12, "the micro-kernel has accumulators for at most 12 rows");
    return {kMR<Isa>, kNR<Isa>, &scratch_floats<Isa>, &run<Isa>, &packs<Isa>};
}

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
