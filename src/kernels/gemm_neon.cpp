/// \file
/// \brief The NEON GEMM: the shared algorithm of gemm_kernel.inl on AArch64's 4-float vectors,
/// with a 12 × 8 register tile chosen for 32 registers.
///
/// A reader learns here how a register tile is derived from a register file. AArch64's Advanced
/// SIMD (NEON) has 32 vector registers of 128 bits, 4 floats each, and an FMA that multiplies by
/// *one lane* of a register (`fmla v0.4s, v1.4s, v2.s[3]`). That lane form changes the
/// arithmetic of the tile. On x86 each row of A costs a broadcast (one register, refilled per
/// row); here the MR floats of A at one step of k are loaded as MR/4 whole vectors and every FMA
/// picks its multiplier from a lane. An MR × NR tile then needs
///
///     MR·NR/4 accumulators  +  NR/4 registers for a row of B  +  MR/4 registers for A  ≤  32.
///
/// | tile (MR × NR) | accumulators | B | A | registers | loads per step | FMAs per step |
/// |----------------|--------------|---|---|-----------|----------------|---------------|
/// | 6 × 8 (x86's 6 × 2 vectors) | 12 | 2 | 2 (6 → 8 floats) | 16 | 4 | 12 |
/// | 8 × 8          | 16           | 2 | 2 | 20        | 4              | 16            |
/// | 8 × 12         | 24           | 3 | 2 | 29        | 5              | 24            |
/// | **12 × 8**     | **24**       | 2 | 3 | **29**    | **5**          | **24**        |
/// | 12 × 12 or 16 × 8 | 36 or 32  | … | … | > 32      |                |               |
///
/// 24 accumulators is the most that fits, and both 24-accumulator shapes load 5 vectors per 24
/// FMAs (the classic AArch64 SGEMM shape is 8 × 12; ours is its transpose). We take **12 × 8**:
/// NR = 8 is two vectors, like the x86 tiles, so the shared B packing, the edge masks and the
/// write-back work unchanged, and MR = 12 is the tall tile AVX-512 already uses on its direct
/// path. 24 independent FMA chains cover an FMA latency of 4 cycles on up to 6 pipes (cores have
/// 2 to 4 128-bit FMA pipes), and 5 loads per 24 FMAs leave the load ports idle most of the time.
/// The 12 × 8 × 384 A and B panels take 18 KB and 12 KB: together they fit a 32 KB L1d, the
/// smallest on AArch64 cores of the last decade.
///
/// What the traits add to the x86 ones: `packed_a` loads a step's 12 floats of A as three vectors
/// and takes lane R % 4 of vector R / 4 (g++ fuses the lane duplicate into the `fmla`, so each FMA
/// reads its multiplier straight from the A registers); the packing transposes are 4 × 4
/// (`trn1`/`trn2` on 32- and 64-bit elements); NEON has no masked load or store, so an edge
/// tile moves its valid lanes one by one (only edge tiles do). Every element of C is still one
/// FMA chain over k, in order, cut at the same KC = 384, with the same write-back, so the results
/// are bit for bit those of the AVX2 and AVX-512 kernels (tests/test_gemm.cpp checks recorded
/// hashes of x86 results). Advanced SIMD is part of every AArch64 CPU, so this file needs no extra
/// compiler flag and no run-time check.
///
/// The micro-kernel's loop, as g++ 12 compiles it (`aarch64-linux-gnu-objdump -d` on
/// gemm_neon.cpp.o), is 24 `fmla` by element, 5 vector loads (`ldp q`, `ldp q` + `ldr q`),
/// 2 pointer increments and the loop's compare and branch, with no register spilled to the stack:
/// see docs/pages/avx2_matmul.md ("NEON"). The block sizes are reasoned, not measured: qkv has
/// not been run on ARM hardware, only under qemu's user-mode emulation.
#include <arm_neon.h>

#include "gemm_simd.hpp"

#include "gemm_kernel.inl"

namespace qkv::detail {
namespace {

// Transposes the 4×4 block held in r0..r3 (row i in ri) in place: afterwards ri holds column i.
// trn1/trn2 on 32-bit lanes interleave pairs of rows; on 64-bit lanes, pairs of pairs.
[[gnu::always_inline]] inline void transpose4(float32x4_t& r0, float32x4_t& r1, float32x4_t& r2, float32x4_t& r3) {
    // t0 = r0[0] r1[0] r0[2] r1[2], t1 = r0[1] r1[1] r0[3] r1[3], and the same for r2, r3.
    const float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
    const float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
    // Columns: the low halves of t0 and t2 (column 0), of t1 and t3 (column 1); the high halves
    // (columns 2 and 3).
    r0 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r1 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r2 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r3 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/// AArch64 Advanced SIMD: 32 registers of 4 floats, FMA by lane; 2–4 FMA pipes per core.
struct Neon {
    using Vec = float32x4_t;
    using Mask = i64;  ///< NEON has no lane masks: the number of leading lanes to load/store
    static constexpr i64 kLanes = 4;

    // The register tile: 12 rows × 2 vectors (12 × 8), 24 accumulators (see the file comment).
    static constexpr i64 kMR = 12;
    static constexpr bool kTallDirect = false;  // the MR-row tile is already 12 rows tall

    // Block sizes, reasoned for cores with at least 32 KB of L1d and 1 MB of L2 per core (Arm
    // Neoverse N1 and later: 64 KB and 1 MB; Apple M1: 128 KB L1d and a shared 12 MB L2), not
    // measured (no ARM hardware).
    //
    // KC = 384, as on x86, and for the same reason as there: KC is where the sum over k is cut,
    // so with the same KC every backend rounds alike. The panels of one tile then take
    // 384 × 12 × 4 = 18 KB (A) and 384 × 8 × 4 = 12 KB (B): the B panel, reused for every A panel
    // of the block, stays in L1 next to the A panel streaming past.
    //
    // MC = 144 (a multiple of 12): the packed 144 × 384 block of A (216 KB) stays in a 1 MB L2.
    // NC = 4080 (a multiple of 8): the packed 384 × 4080 block of B (≈ 6 MB) is left to the
    // last-level cache, as on x86.
    static constexpr i64 kKC = 384;
    static constexpr i64 kMC = 144;
    static constexpr i64 kNC = 4080;
    // The direct path re-reads one unpacked operand; up to 512 KB of it stays in a 1 MB L2.
    static constexpr i64 kDirectMaxBytes = 512 * 1024;

    static Vec zero() { return vdupq_n_f32(0.0f); }
    static Vec set1(float x) { return vdupq_n_f32(x); }
    static Vec load(const float* p) { return vld1q_f32(p); }
    static void store(float* p, Vec v) { vst1q_f32(p, v); }
    static void store_aligned(float* p, Vec v) { vst1q_f32(p, v); }
    static Vec broadcast(const float* p) { return vld1q_dup_f32(p); }  // ld1r
    static Vec mul(Vec a, Vec b) { return vmulq_f32(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return vfmaq_f32(c, a, b); }  // a·b + c, rounded once
    // Row R's element of a packed A column (12 floats at p), in every lane: lane R % 4 of the
    // column's vector R / 4. The compiler loads each of the three vectors once per step and
    // turns the duplicate + FMA into one `fmla ..., v.s[R % 4]`.
    template <int R>
    static Vec packed_a(const float* p) {
        return vdupq_laneq_f32(vld1q_f32(p + (R / 4) * 4), R % 4);
    }

    // Lanes [0, n): the count itself, clamped to 0 … 4.
    static Mask first_lanes(i64 n) { return n < 0 ? 0 : (n > kLanes ? kLanes : n); }
    // Edge tiles only: the valid lanes one by one, so nothing outside C is read or written.
    static Vec load_masked(const float* p, Mask m) {
        Vec v = vdupq_n_f32(0.0f);
        if (m > 0) v = vld1q_lane_f32(p, v, 0);
        if (m > 1) v = vld1q_lane_f32(p + 1, v, 1);
        if (m > 2) v = vld1q_lane_f32(p + 2, v, 2);
        if (m > 3) v = vld1q_lane_f32(p + 3, v, 3);
        return v;
    }
    static void store_masked(float* p, Mask m, Vec v) {
        if (m > 0) vst1q_lane_f32(p, v, 0);
        if (m > 1) vst1q_lane_f32(p + 1, v, 1);
        if (m > 2) vst1q_lane_f32(p + 2, v, 2);
        if (m > 3) vst1q_lane_f32(p + 3, v, 3);
    }

    // Packing with 4 × 4 register transposes. A transposed B panel, 4 columns × 4 steps of k at
    // a time: rows src, src + ld, ... become rows of the panel, kLd floats apart.
    static constexpr i64 kTransposeBlock = 4;
    template <i64 kLd>
    static void transpose_block(const float* src, i64 ld, float* dst) {
        float32x4_t r0 = vld1q_f32(src), r1 = vld1q_f32(src + ld);
        float32x4_t r2 = vld1q_f32(src + 2 * ld), r3 = vld1q_f32(src + 3 * ld);
        transpose4(r0, r1, r2, r3);
        vst1q_f32(dst, r0);
        vst1q_f32(dst + kLd, r1);
        vst1q_f32(dst + 2 * kLd, r2);
        vst1q_f32(dst + 3 * kLd, r3);
    }
    // A full A panel (A stored (M, K)), 12 rows × 4 steps of k: three 4 × 4 transposes, rows
    // 4g … 4g+3 becoming floats 4g … 4g+3 of each step's 12. Nothing is written past the panel,
    // so `last` is not needed.
    static constexpr i64 kPackAK = 4;
    static void pack_a_block(const float* src, i64 ld, float* dst, bool /*last*/) {
        for (i64 g = 0; g < 3; ++g) {
            const float* rows = src + 4 * g * ld;
            float32x4_t r0 = vld1q_f32(rows), r1 = vld1q_f32(rows + ld);
            float32x4_t r2 = vld1q_f32(rows + 2 * ld), r3 = vld1q_f32(rows + 3 * ld);
            transpose4(r0, r1, r2, r3);
            vst1q_f32(dst + 4 * g, r0);
            vst1q_f32(dst + kMR + 4 * g, r1);
            vst1q_f32(dst + 2 * kMR + 4 * g, r2);
            vst1q_f32(dst + 3 * kMR + 4 * g, r3);
        }
    }
    // One step of k of a transposed A: 12 contiguous floats, three vector moves.
    static void copy_a_step(float* dst, const float* src) {
        vst1q_f32(dst, vld1q_f32(src));
        vst1q_f32(dst + 4, vld1q_f32(src + 4));
        vst1q_f32(dst + 8, vld1q_f32(src + 8));
    }
};

}  // namespace

GemmKernel gemm_neon_kernel() { return gemm_kernel<Neon>(); }

}  // namespace qkv::detail
