/// \file
/// \brief The fast single-precision GEMM, written once for any SIMD width: packing, cache
/// blocking and an MR×NR register-tiled FMA micro-kernel.
///
/// This file is the end of a ladder that every optimised BLAS climbs. A reader learns here why
/// each rung exists and what it buys. It is not compiled on its own: gemm_avx2.cpp and
/// gemm_avx512.cpp each describe their instruction set in a small *traits* struct (the vector
/// type, how many floats it holds, load/store/FMA/broadcast, masked load/store for edge tiles,
/// and the block sizes that suit it) and then include this file, so the same algorithm is
/// compiled twice, once per ISA, with no copy of it to drift apart. The ladder, with the numbers
/// of the machines qkv was measured on:
///
/// 1. **Naive i-j-k** (gemm_reference.cpp): the inner loop walks B down a column, a new cache
///    line per multiply-add, and its sum is one long dependency chain the compiler may not
///    reorder: 5–9 GFLOP/s at 32³–128³ (the `ref1t` column of bench_gemm), far less once B
///    no longer fits in cache.
/// 2. **Loop order i-k-j**: the inner loop now walks a row of B and a row of C contiguously, so the
///    compiler can vectorise it; but every step loads and stores C, so memory traffic, not
///    arithmetic, sets the speed.
/// 3. **Blocking**: work on tiles small enough to stay in cache, so each float fetched from memory
///    is used many times instead of once. Three levels, one per cache (KC, MC, NC in the traits).
/// 4. **Packing**: copy each tile into a contiguous, aligned buffer in exactly the order the inner
///    kernel reads it. Strides, transposes and TLB misses are paid once per tile, during the copy;
///    the inner loop then reads two sequential streams. Edge tiles are zero-padded, so the inner
///    loop never needs a bounds check.
/// 5. **Register tiling (the micro-kernel)**: a 6×NR block of C lives in 12 vector registers for
///    the whole K loop, NR = 2 vectors (16 floats with AVX2, 32 with AVX-512). Each step loads one
///    row of B (2 loads), broadcasts 6 floats of A, and issues 12 FMAs: 12 FMAs per 8 loads, enough
///    to keep both FMA pipes busy every cycle. AVX2 reaches ~90 % of a Zen 5 core's 117 GFLOP/s.
/// 6. **Wider vectors** (AVX-512, gemm_avx512.cpp): the same 12 FMAs now each do 16 multiply-adds
///    instead of 8, so the same loop does twice the work per cycle, on a core whose two FMA pipes
///    are 512 bits wide (Intel Sapphire Rapids: 246 GFLOP/s per core against 132 with AVX2). The
///    packed panels of B get twice as wide, so the cache blocks are re-sized (see the traits).
/// 7. **Threads** (gemm_dispatch.cpp): split C between cores. Each core runs this file's serial
///    algorithm on its own block of C.
///
/// The shapes in a small transformer are often too small for rung 4 to pay (attention products
/// with T = 16–128 and head size 16–64): copying A costs about as much as using it a few times.
/// For those, a *direct* path runs the same micro-kernel straight on A as stored and packs B only
/// when it must (transposed B, or a last panel narrower than NR columns).
///
/// Rules for this file (see gemm_simd.hpp): only intrinsics, the traits and plain functions; no
/// library templates; everything inside the anonymous namespace, so that each ISA file gets a
/// private copy. The including file instantiates `Gemm<Traits>` with its own traits struct.
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
#include <immintrin.h>

#include "gemm_simd.hpp"

namespace qkv::detail {
namespace {

using i64 = std::int64_t;

constexpr i64 imin(i64 a, i64 b) { return a < b ? a : b; }
constexpr i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
constexpr i64 round_up(i64 a, i64 b) { return ceil_div(a, b) * b; }

/// The whole algorithm for one ISA, as static functions of a class template: `Gemm<Avx2>` and
/// `Gemm<Avx512>` are two independent instantiations, each compiled in its own file with its own
/// compiler flags.
template <class Isa>
struct Gemm {
    using Vec = typename Isa::Vec;
    using Mask = typename Isa::Mask;

    // -----------------------------------------------------------------------------------------
    // Block sizes (chosen, and explained, in the traits of each ISA)
    //
    // MR×NR is the register tile: MR rows of C, NR = 2 vectors of columns. With 6 rows the tile
    // needs 12 accumulators, one row of B 2 registers and the broadcast element of A 1: 15, which
    // fits AVX2's 16 registers (AVX-512 has 32 and could hold a bigger tile). 12 independent FMAs
    // per step hide the 4-cycle FMA latency on 2 pipes (at least 8 are needed).
    // -----------------------------------------------------------------------------------------
    static constexpr i64 kLanes = Isa::kLanes;
    static constexpr i64 kMR = 6;
    static constexpr i64 kNR = 2 * kLanes;
    // KC also fixes the rounding: each element of C is summed as one FMA chain per KC block of
    // k, in order, whatever the vector width. Both ISAs use KC = 384, so the AVX2 and AVX-512
    // kernels return bit-identical results (a test checks it).
    static constexpr i64 kKC = Isa::kKC;
    static constexpr i64 kMC = Isa::kMC;
    static constexpr i64 kNC = Isa::kNC;

    // The direct (unpacked) path is used when the whole K dimension fits one KC block and one
    // of the operands is small enough to stay in L2 while it is re-read (see gemm_direct).
    static constexpr i64 kDirectMaxK = kKC;
    static constexpr i64 kDirectMaxBytes = Isa::kDirectMaxBytes;

    static_assert(kMC % kMR == 0 && kNC % kNR == 0, "blocks must hold whole panels");
    static_assert(kNR % 8 == 0, "B panels are transposed 8 columns at a time");

    // Splits `total` into ceil(total/block) near-equal pieces rounded up to `unit`, so that e.g.
    // K = 400 runs as 2 blocks of 200 rather than 384 and a wasteful 16.
    static constexpr i64 balanced_block(i64 total, i64 block, i64 unit) {
        const i64 pieces = ceil_div(total, block);
        return round_up(ceil_div(total, pieces), unit);
    }

    // -----------------------------------------------------------------------------------------
    // Packing
    // -----------------------------------------------------------------------------------------

    // pack_a for A stored (K, M), used transposed: row k of A holds, side by side, the mc values
    // every panel of the block needs at step k. So k runs outside and the panels inside: A is
    // read row after row, sequentially, and each full panel gets its 6 floats per k as one
    // 16-byte and one 8-byte copy. (Panel by panel instead, every k would start a new cache line
    // of A, 4·lda bytes from the last, and the dW = dYᵀ·X products spent a quarter of their
    // packing time waiting for them.) A partial last panel is zero-padded.
    static void pack_a_transposed(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
        const i64 full = mc - mc % kMR;
        const float* src = g.A + k0 * g.lda + i0;
        for (i64 k = 0; k < kc; ++k, src += g.lda) {
            for (i64 ip = 0; ip < full; ip += kMR) {
                float* dst = out + ip * kc + k * kMR;
                _mm_storeu_ps(dst, _mm_loadu_ps(src + ip));
                _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4),
                              _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(src + ip + 4)));
            }
            if (full < mc) {
                float* dst = out + full * kc + k * kMR;
                for (i64 r = 0; r < kMR; ++r) dst[r] = full + r < mc ? src[full + r] : 0.0f;
            }
        }
    }

    // Copies rows [i0, i0+mc) × columns [k0, k0+kc) of op(A) into MR-row panels: panel p holds
    // rows i0+p·MR ... as kc columns of MR consecutive floats (element (r, k) at
    // panel[k·MR + r]), which is the order the micro-kernel broadcasts them. Rows past the edge
    // are zero, so the last panel multiplies harmlessly.
    static void pack_a(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
        if (g.trans_a) return pack_a_transposed(g, i0, mc, k0, kc, out);
        for (i64 ip = 0; ip < mc; ip += kMR) {
            const i64 m = imin(kMR, mc - ip);
            float* panel = out + ip * kc;
            if (m == kMR) {
                // A is stored (M, K), a full panel: 6 rows × 8 k at a time through a register
                // transpose, the last k < 8 one by one.
                const float* src = g.A + (i0 + ip) * g.lda + k0;
                const i64 k8 = kc - kc % 8;
                for (i64 k = 0; k < k8; k += 8)
                    pack_a_6x8(src + k, g.lda, panel + k * kMR, k + 8 == kc);
                for (i64 k = k8; k < kc; ++k)
                    for (i64 r = 0; r < kMR; ++r) panel[k * kMR + r] = src[r * g.lda + k];
            } else {
                // A is stored (M, K): read each of the m rows sequentially, scatter with stride MR.
                for (i64 r = 0; r < kMR; ++r) {
                    const float* src = g.A + (i0 + ip + r) * g.lda + k0;
                    if (r < m)
                        for (i64 k = 0; k < kc; ++k) panel[k * kMR + r] = src[k];
                    else
                        for (i64 k = 0; k < kc; ++k) panel[k * kMR + r] = 0.0f;
                }
            }
        }
    }

    // Transposes the 8×8 block held in r0..r7 (row i in ri) in place: afterwards ri holds column
    // i. The classic unpack/shuffle/permute sequence, 24 instructions for 64 floats. Written with
    // AVX (256-bit) intrinsics, which every ISA this file is compiled for has.
    static void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5,
                           __m256& r6, __m256& r7) {
        // Interleave pairs of rows: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5] ...
        const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        // Gather 4-element columns within each 128-bit lane.
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        // Join the low lanes (columns 0-3) and the high lanes (columns 4-7).
        r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
        r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
        r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
        r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
        r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
        r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
        r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
        r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
    }

    // Writes the 8×8 transpose of the rows src[0], src[ld], ... (8 floats each) to dst with row
    // stride kNR (a B panel).
    static void transpose_8x8(const float* src, i64 ld, float* dst) {
        __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
        __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
        __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
        __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
        transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
        _mm256_store_ps(dst + 0 * kNR, r0);
        _mm256_store_ps(dst + 1 * kNR, r1);
        _mm256_store_ps(dst + 2 * kNR, r2);
        _mm256_store_ps(dst + 3 * kNR, r3);
        _mm256_store_ps(dst + 4 * kNR, r4);
        _mm256_store_ps(dst + 5 * kNR, r5);
        _mm256_store_ps(dst + 6 * kNR, r6);
        _mm256_store_ps(dst + 7 * kNR, r7);
    }

    // Packs 8 k-steps of a full 6-row A panel from A stored (M, K): the 6 rows × 8 columns are
    // transposed in registers (rows 6 and 7 of the 8×8 block repeat row 5 and are discarded),
    // then each k-step's 6 floats are written with one 8-float store at dst + k·6 whose last two
    // floats the next store overwrites. The final store of a panel, which would run past its end,
    // writes exactly 6 floats (`last`).
    static void pack_a_6x8(const float* src, i64 ld, float* dst, bool last) {
        __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
        __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
        __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
        __m256 r6 = r5, r7 = r5;
        transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
        _mm256_storeu_ps(dst + 0 * kMR, r0);
        _mm256_storeu_ps(dst + 1 * kMR, r1);
        _mm256_storeu_ps(dst + 2 * kMR, r2);
        _mm256_storeu_ps(dst + 3 * kMR, r3);
        _mm256_storeu_ps(dst + 4 * kMR, r4);
        _mm256_storeu_ps(dst + 5 * kMR, r5);
        _mm256_storeu_ps(dst + 6 * kMR, r6);
        if (!last) {
            _mm256_storeu_ps(dst + 7 * kMR, r7);
        } else {  // 4 + 2 floats: nothing past the panel
            _mm_storeu_ps(dst + 7 * kMR, _mm256_castps256_ps128(r7));
            _mm_storel_pi(reinterpret_cast<__m64*>(dst + 7 * kMR + 4), _mm256_extractf128_ps(r7, 1));
        }
    }

    // Packs one NR-column panel of op(B) stored transposed, (N, K): column j of op(B) is row j
    // of B, so every full group of 8 columns × 8 k is transposed in registers and the rest is
    // copied element by element (zero past column n). Rows of the panel are NR floats apart;
    // the first `width` of them are written (NR, or one vector for the narrow tile, which
    // never reads the rest).
    static void pack_b_panel_transposed(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 n,
                                        float* panel, i64 width = kNR) {
        const float* src = g.B + j0 * g.ldb + k0;
        const i64 full = n - n % 8;  // columns in whole groups of 8
        i64 k = 0;
        for (; k + 8 <= kc; k += 8) {
            for (i64 c = 0; c < full; c += 8)
                transpose_8x8(src + c * g.ldb + k, g.ldb, panel + k * kNR + c);
            for (i64 kk = k; kk < k + 8; ++kk)
                for (i64 c = full; c < width; ++c)
                    panel[kk * kNR + c] = c < n ? src[c * g.ldb + kk] : 0.0f;
        }
        for (; k < kc; ++k)
            for (i64 c = 0; c < width; ++c) panel[k * kNR + c] = c < n ? src[c * g.ldb + k] : 0.0f;
    }

    // Packs one NR-column panel of op(B) stored as (K, N): each k contributes NR contiguous
    // floats.
    static void pack_b_panel(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 n, float* panel) {
        const float* src = g.B + k0 * g.ldb + j0;
        for (i64 k = 0; k < kc; ++k, src += g.ldb, panel += kNR) {
            if (n == kNR) {
                Isa::store_aligned(panel, Isa::load(src));
                Isa::store_aligned(panel + kLanes, Isa::load(src + kLanes));
            } else {
                for (i64 c = 0; c < kNR; ++c) panel[c] = c < n ? src[c] : 0.0f;
            }
        }
    }

    // Copies columns [j0, j0+nc) × rows [k0, k0+kc) of op(B) into NR-column panels of kc×NR
    // floats (element (k, c) at panel[k·NR + c]): one NR-float row per k step of the
    // micro-kernel.
    static void pack_b(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 nc, float* out) {
        if (!g.trans_b) {
            // B stored (K, N): row k of B feeds every panel at step k, so — as in
            // pack_a_transposed — k runs outside and B is read row by row, sequentially.
            const i64 full = nc - nc % kNR;
            const float* src = g.B + k0 * g.ldb + j0;
            for (i64 k = 0; k < kc; ++k, src += g.ldb)
                for (i64 jp = 0; jp < full; jp += kNR) {
                    float* dst = out + jp * kc + k * kNR;
                    Isa::store_aligned(dst, Isa::load(src + jp));
                    Isa::store_aligned(dst + kLanes, Isa::load(src + jp + kLanes));
                }
            if (full < nc) pack_b_panel(g, k0, kc, j0 + full, nc - full, out + full * kc);
            return;
        }
        for (i64 jp = 0; jp < nc; jp += kNR) {
            const i64 n = imin(kNR, nc - jp);
            if (g.trans_b)
                pack_b_panel_transposed(g, k0, kc, j0 + jp, n, out + jp * kc);
            else
                pack_b_panel(g, k0, kc, j0 + jp, n, out + jp * kc);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The micro-kernel
    // -----------------------------------------------------------------------------------------

    /// Where a micro-tile of C goes and how it is combined with the old C.
    struct Tile {
        float* c;        // top-left element of the tile in C
        i64 ldc;         // row stride of C
        i64 m, n;        // valid rows (≤ MR) and columns (≤ NR); the rest of the tile is discarded
        float alpha;     // scale of the product
        float beta;      // scale of the old C; 0 means it is not read
        const float* old;  // where the old C is read: C itself, or a bias row
        i64 old_ld;      // row stride of `old` (ldc; 0 for a bias row, the same for every row)
    };

    // The tile at (ir, jr) of a problem whose C starts at c: its old values come from C, or
    // — when the problem has a bias and this is the first K block — from the bias row, with
    // beta = 1 (what copying the bias into C and accumulating onto it computes, bit for bit).
    static Tile make_tile(float* c, i64 ldc, i64 ir, i64 jr, i64 m, i64 n, float alpha,
                          float beta, const float* bias) {
        float* at = c + ir * ldc + jr;
        if (bias != nullptr) return {at, ldc, m, n, alpha, 1.0f, bias + jr, 0};
        return {at, ldc, m, n, alpha, beta, at, ldc};
    }

    /// How the accumulators reach C: scales, and lane masks for a tile narrower than NR columns.
    struct Store {
        Vec alpha, beta;
        Mask mask_lo, mask_hi;  // lane j is on when column j (resp. kLanes + j) is inside C
        bool read_c;            // beta ≠ 0
        bool full;              // all NR columns valid: plain loads and stores
    };

    static Store make_store(const Tile& t) {
        return {Isa::set1(t.alpha), Isa::set1(t.beta), Isa::first_lanes(t.n),
                Isa::first_lanes(t.n - kLanes), t.beta != 0.0f, t.n == kNR};
    }

    // One row of C ← alpha·acc (+ beta·C). Narrow edge tiles use masked loads and stores, which
    // neither read nor write the masked-off columns (so they cannot fault past the end of C).
    static void update_row(float* c, const float* old, Vec lo, Vec hi, const Store& s) {
        lo = Isa::mul(lo, s.alpha);
        hi = Isa::mul(hi, s.alpha);
        if (s.full) {
            if (s.read_c) {
                lo = Isa::fma(s.beta, Isa::load(old), lo);
                hi = Isa::fma(s.beta, Isa::load(old + kLanes), hi);
            }
            Isa::store(c, lo);
            Isa::store(c + kLanes, hi);
            return;
        }
        if (s.read_c) {
            lo = Isa::fma(s.beta, Isa::load_masked(old, s.mask_lo), lo);
            hi = Isa::fma(s.beta, Isa::load_masked(old + kLanes, s.mask_hi), hi);
        }
        Isa::store_masked(c, s.mask_lo, lo);
        Isa::store_masked(c + kLanes, s.mask_hi, hi);
    }

    // The heart of the library: C tile (kRows×NR) ← alpha · A panel (kRows×kc) · B panel
    // (kc×NR) + beta · C, with kRows = 6 except in the last row strip of C (templated, so an edge
    // tile of 4 rows does 8 FMAs per step instead of computing 2 rows of zeros).
    //
    // A's element (r, k) is read at a[row_offset[r] + k·a_step]; B's row k is NR contiguous
    // floats at b + k·b_step. Packed operands use a = panel, row offsets 0..5, a_step = MR and
    // b_step = NR; the direct path points straight into the caller's matrices.
    //
    // The twelve accumulators are twelve *named* variables, not an array: with `Vec c[6][2]`
    // g++ 12 keeps the array in memory and reloads/stores it around every FMA, halving the speed.
    // (Verify with `objdump -d --no-show-raw-insn gemm_avx2.cpp.o` (or gemm_avx512.cpp.o): the
    // loop must contain 12 vfmadd231ps with register operands only, 2 vmovups loads and 6
    // vbroadcastss.)
    template <bool kPacked, int kRows>
    static void micro_kernel(i64 kc, const float* a, const i64* row_offset, i64 a_step,
                             const float* b, i64 b_step, const Tile& t) {
        // For packed A the offsets and step are compile-time constants, so the compiler
        // addresses all six broadcasts from one pointer.
        const i64 o0 = kPacked ? 0 : row_offset[0], o1 = kPacked ? 1 : row_offset[1];
        const i64 o2 = kPacked ? 2 : row_offset[2], o3 = kPacked ? 3 : row_offset[3];
        const i64 o4 = kPacked ? 4 : row_offset[4], o5 = kPacked ? 5 : row_offset[5];
        if (kPacked) a_step = kMR;
        // Ask for the C tile now, so that its cache lines arrive while the k loop runs instead
        // of stalling the write-back at the end (C rows are far apart: every row is a separate
        // miss). First, middle and last column: a row of NR ≤ 32 floats spans at most 3 lines.
        for (i64 r = 0; r < kRows; ++r) {
            const char* row = reinterpret_cast<const char*>(t.c + r * t.ldc);
            _mm_prefetch(row, _MM_HINT_T0);
            _mm_prefetch(row + 4 * (t.n / 2), _MM_HINT_T0);
            _mm_prefetch(row + 4 * (t.n - 1), _MM_HINT_T0);
        }

        Vec c00 = Isa::zero(), c01 = Isa::zero();
        Vec c10 = Isa::zero(), c11 = Isa::zero();
        Vec c20 = Isa::zero(), c21 = Isa::zero();
        Vec c30 = Isa::zero(), c31 = Isa::zero();
        Vec c40 = Isa::zero(), c41 = Isa::zero();
        Vec c50 = Isa::zero(), c51 = Isa::zero();

        // Unrolled 4×: the loop's own add/compare/branch then costs 5 instructions per 80, not
        // per 20.
#pragma GCC unroll 4
        for (i64 k = 0; k < kc; ++k) {
            const Vec b0 = Isa::load(b);
            const Vec b1 = Isa::load(b + kLanes);
            Vec x;
            if constexpr (kRows > 0) {
                x = Isa::broadcast(a + o0);
                c00 = Isa::fma(x, b0, c00);
                c01 = Isa::fma(x, b1, c01);
            }
            if constexpr (kRows > 1) {
                x = Isa::broadcast(a + o1);
                c10 = Isa::fma(x, b0, c10);
                c11 = Isa::fma(x, b1, c11);
            }
            if constexpr (kRows > 2) {
                x = Isa::broadcast(a + o2);
                c20 = Isa::fma(x, b0, c20);
                c21 = Isa::fma(x, b1, c21);
            }
            if constexpr (kRows > 3) {
                x = Isa::broadcast(a + o3);
                c30 = Isa::fma(x, b0, c30);
                c31 = Isa::fma(x, b1, c31);
            }
            if constexpr (kRows > 4) {
                x = Isa::broadcast(a + o4);
                c40 = Isa::fma(x, b0, c40);
                c41 = Isa::fma(x, b1, c41);
            }
            if constexpr (kRows > 5) {
                x = Isa::broadcast(a + o5);
                c50 = Isa::fma(x, b0, c50);
                c51 = Isa::fma(x, b1, c51);
            }
            a += a_step;
            b += b_step;
        }

        const Store s = make_store(t);
        if constexpr (kRows > 0) update_row(t.c + 0 * t.ldc, t.old + 0 * t.old_ld, c00, c01, s);
        if constexpr (kRows > 1) update_row(t.c + 1 * t.ldc, t.old + 1 * t.old_ld, c10, c11, s);
        if constexpr (kRows > 2) update_row(t.c + 2 * t.ldc, t.old + 2 * t.old_ld, c20, c21, s);
        if constexpr (kRows > 3) update_row(t.c + 3 * t.ldc, t.old + 3 * t.old_ld, c30, c31, s);
        if constexpr (kRows > 4) update_row(t.c + 4 * t.ldc, t.old + 4 * t.old_ld, c40, c41, s);
        if constexpr (kRows > 5) update_row(t.c + 5 * t.ldc, t.old + 5 * t.old_ld, c50, c51, s);
    }

    // Picks the kernel instance for the tile's number of rows.
    template <bool kPacked>
    static void micro_tile(i64 kc, const float* a, const i64* row_offset, i64 a_step,
                           const float* b, i64 b_step, const Tile& t) {
        switch (t.m) {
            case 1: return micro_kernel<kPacked, 1>(kc, a, row_offset, a_step, b, b_step, t);
            case 2: return micro_kernel<kPacked, 2>(kc, a, row_offset, a_step, b, b_step, t);
            case 3: return micro_kernel<kPacked, 3>(kc, a, row_offset, a_step, b, b_step, t);
            case 4: return micro_kernel<kPacked, 4>(kc, a, row_offset, a_step, b, b_step, t);
            case 5: return micro_kernel<kPacked, 5>(kc, a, row_offset, a_step, b, b_step, t);
            default: return micro_kernel<kPacked, 6>(kc, a, row_offset, a_step, b, b_step, t);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The packed (Goto/BLIS) path: five loops around the micro-kernel
    // -----------------------------------------------------------------------------------------

    // Loops 4 and 5: every MR×NR tile of one packed MC×KC block of A times one packed KC×NC
    // block of B. The NR loop is outside, so an NR-column panel of B stays in L1 while the
    // panels of A stream past it from L2.
    static void macro_kernel(const float* a_pack, const float* b_pack, i64 mc, i64 nc, i64 kc,
                             float* c, i64 ldc, float alpha, float beta, const float* bias) {
        for (i64 jr = 0; jr < nc; jr += kNR) {
            for (i64 ir = 0; ir < mc; ir += kMR) {
                const Tile t = make_tile(c, ldc, ir, jr, imin(kMR, mc - ir), imin(kNR, nc - jr),
                                         alpha, beta, bias);
                micro_tile<true>(kc, a_pack + ir * kc, nullptr, kMR, b_pack + jr * kc, kNR, t);
            }
        }
    }

    // The packed A block comes first in the scratch buffer; rounding its size up to 16 floats
    // keeps the B block that follows on a 64-byte boundary (the aligned stores in pack_b need
    // 32 bytes with AVX2, 64 with AVX-512).
    static constexpr i64 a_pack_floats(i64 mc, i64 kc) { return round_up(mc * kc, 16); }

    // The packed path's blocks of B are cut at these sizes (KC balanced over K, see above).
    static BlockSizes b_blocks(const GemmF32& g) {
        const i64 kc = balanced_block(g.K, kKC, 1);
        return {kc, kNC, kc * round_up(imin(kNC, g.N), kNR),
                a_pack_floats(balanced_block(g.M, kMC, kMR), kc)};
    }

    // Packs NR-column panels [p0, p1) of the (pc, jc) block of B into b_pack, at the place the
    // whole block's packing would put them: threads can pack disjoint panels of one block.
    static void pack_b_panels(const GemmF32& g, i64 pc, i64 kc, i64 jc, i64 nc, i64 p0, i64 p1,
                              float* b_pack) {
        const i64 j0 = p0 * kNR, j1 = imin(p1 * kNR, nc);
        if (j1 > j0) pack_b(g, pc, kc, jc + j0, j1 - j0, b_pack + j0 * kc);
    }

    // Loop 3 for rows [i0, i1) of C: MC rows of A at a time (L2), each packed into a_pack and
    // multiplied with the packed (pc, jc) block of B. Only the first KC block applies the
    // caller's beta; later blocks add to what the first one wrote (beta = 1).
    static void multiply_rows(const GemmF32& g, const float* b_pack, i64 pc, i64 kc, i64 jc,
                              i64 nc, i64 i0, i64 i1, float* a_pack) {
        const i64 mc_max = balanced_block(g.M, kMC, kMR);
        const float beta = pc == 0 ? g.beta : 1.0f;
        const float* bias = pc == 0 && g.bias != nullptr ? g.bias + jc : nullptr;
        for (i64 ic = i0; ic < i1; ic += mc_max) {
            const i64 mc = imin(mc_max, i1 - ic);
            pack_a(g, ic, mc, pc, kc, a_pack);
            macro_kernel(a_pack, b_pack, mc, nc, kc, g.C + ic * g.ldc + jc, g.ldc, g.alpha, beta,
                         bias);
        }
    }

    // Loops 1-3: NC columns of B at a time (L3), KC of the inner dimension at a time (L1
    // panels), MC rows of A at a time (L2).
    static void gemm_packed(const GemmF32& g, float* scratch) {
        const BlockSizes bs = b_blocks(g);
        float* a_pack = scratch;
        float* b_pack = scratch + bs.a_pack_floats;
        for (i64 jc = 0; jc < g.N; jc += bs.nc) {
            const i64 nc = imin(bs.nc, g.N - jc);
            for (i64 pc = 0; pc < g.K; pc += bs.kc) {
                const i64 kc = imin(bs.kc, g.K - pc);
                pack_b_panels(g, pc, kc, jc, nc, 0, ceil_div(nc, kNR), b_pack);
                multiply_rows(g, b_pack, pc, kc, jc, nc, 0, g.M, a_pack);
            }
        }
    }

    static i64 packed_scratch_floats(const GemmF32& g) {
        const BlockSizes bs = b_blocks(g);
        return bs.a_pack_floats + bs.b_pack_floats;
    }

    // -----------------------------------------------------------------------------------------
    // The direct path for small and skinny shapes
    // -----------------------------------------------------------------------------------------

    // Without packing, the operand that is re-read must come from L2: A (M×K) when the B panels
    // are the outer loop, or B (K×N) when the A row strips are.
    static bool a_fits_l2(const GemmF32& g) { return g.M * g.K * 4 <= kDirectMaxBytes; }
    static bool b_fits_l2(const GemmF32& g) { return g.K * g.N * 4 <= kDirectMaxBytes; }

    static bool use_direct(const GemmF32& g) {
        return g.K <= kDirectMaxK && (a_fits_l2(g) || b_fits_l2(g));
    }

    // B panels need a copy only when op(B)'s rows are not contiguous (B transposed) or the
    // panel is narrower than NR columns; these copies are K×NR floats each, a small fraction of
    // the work.
    static bool panel_needs_pack(const GemmF32& g, i64 n) { return g.trans_b || n < kNR; }

    /// A view of op(A) as stored: row r starts at base + r·row_stride, consecutive k are a_step
    /// apart.
    struct DirectA {
        const float* base;
        i64 row_stride, a_step;
    };

    /// One NR-column panel of op(B): row k at panel + k·step.
    struct DirectB {
        const float* panel;
        i64 step;
    };

    static DirectB direct_b(const GemmF32& g, const float* packed, i64 jr, i64 n) {
        if (panel_needs_pack(g, n)) return {packed + jr * g.K, kNR};
        return {g.B + jr, g.ldb};
    }

    // One micro-tile at (ir, jr), straight from A as stored. Rows past the bottom edge repeat
    // the last valid row, so the kernel never reads outside A; the tile's m discards their
    // results.
    static void direct_tile(const GemmF32& g, const DirectA& a, const DirectB& b, i64 ir, i64 jr) {
        const i64 m = imin(kMR, g.M - ir), n = imin(kNR, g.N - jr);
        i64 offsets[kMR];
        for (i64 r = 0; r < kMR; ++r) offsets[r] = imin(r, m - 1) * a.row_stride;
        const Tile t = make_tile(g.C, g.ldc, ir, jr, m, n, g.alpha, g.beta, g.bias);
        micro_tile<false>(g.K, a.base + ir * a.row_stride, offsets, a.a_step, b.panel, b.step, t);
    }

    // -----------------------------------------------------------------------------------------
    // The tall tile (AVX-512 only): 12 rows × 2 vectors on the direct path
    // -----------------------------------------------------------------------------------------

    // AVX-512 has 32 vector registers, enough for a 12 × 32 tile: 24 accumulators, 2 of B, 1
    // broadcast. Per step of k it loads B once for 24 FMAs instead of 12, and a small-K product
    // (a linear layer with K = 64, an attention product with K = T) pays the tile's start and
    // write-back half as often. AVX2's 16 registers cannot hold it. Same FMA chains, same bits.
    static constexpr i64 kTallRows = 12;
    static constexpr bool kHasTall = kLanes == 16;

#define QKV_TALL_FMA(r, p, j)                                          \
    {                                                                  \
        const Vec x = Isa::broadcast(p + j * rs);                      \
        c##r##0 = Isa::fma(x, b0, c##r##0);                            \
        c##r##1 = Isa::fma(x, b1, c##r##1);                            \
    }
#define QKV_TALL_STORE(r) update_row(t.c + r * t.ldc, t.old + r * t.old_ld, c##r##0, c##r##1, s);

    // C tile (12 × n ≤ NR) ← alpha · A rows · B panel + beta · C; A's element (r, k) at
    // a[r·rs + k·a_step], reached through four row pointers as in narrow_kernel.
    static void tall_kernel(i64 kc, const float* a, i64 rs, i64 a_step, const float* b, i64 b_step,
                            const Tile& t) {
        for (i64 r = 0; r < kTallRows; ++r) {
            const char* row = reinterpret_cast<const char*>(t.c + r * t.ldc);
            _mm_prefetch(row, _MM_HINT_T0);
            _mm_prefetch(row + 4 * (t.n - 1), _MM_HINT_T0);
        }
        const float *p0 = a, *p1 = a + 3 * rs, *p2 = a + 6 * rs, *p3 = a + 9 * rs;
        Vec c00 = Isa::zero(), c01 = Isa::zero(), c10 = Isa::zero(), c11 = Isa::zero();
        Vec c20 = Isa::zero(), c21 = Isa::zero(), c30 = Isa::zero(), c31 = Isa::zero();
        Vec c40 = Isa::zero(), c41 = Isa::zero(), c50 = Isa::zero(), c51 = Isa::zero();
        Vec c60 = Isa::zero(), c61 = Isa::zero(), c70 = Isa::zero(), c71 = Isa::zero();
        Vec c80 = Isa::zero(), c81 = Isa::zero(), c90 = Isa::zero(), c91 = Isa::zero();
        Vec c100 = Isa::zero(), c101 = Isa::zero(), c110 = Isa::zero(), c111 = Isa::zero();
#pragma GCC unroll 2
        for (i64 k = 0; k < kc; ++k) {
            const Vec b0 = Isa::load(b);
            const Vec b1 = Isa::load(b + kLanes);
            QKV_TALL_FMA(0, p0, 0) QKV_TALL_FMA(1, p0, 1) QKV_TALL_FMA(2, p0, 2)
            QKV_TALL_FMA(3, p1, 0) QKV_TALL_FMA(4, p1, 1) QKV_TALL_FMA(5, p1, 2)
            QKV_TALL_FMA(6, p2, 0) QKV_TALL_FMA(7, p2, 1) QKV_TALL_FMA(8, p2, 2)
            QKV_TALL_FMA(9, p3, 0) QKV_TALL_FMA(10, p3, 1) QKV_TALL_FMA(11, p3, 2)
            p0 += a_step;
            p1 += a_step;
            p2 += a_step;
            p3 += a_step;
            b += b_step;
        }
        const Store s = make_store(t);
        QKV_TALL_STORE(0) QKV_TALL_STORE(1) QKV_TALL_STORE(2) QKV_TALL_STORE(3)
        QKV_TALL_STORE(4) QKV_TALL_STORE(5) QKV_TALL_STORE(6) QKV_TALL_STORE(7)
        QKV_TALL_STORE(8) QKV_TALL_STORE(9) QKV_TALL_STORE(10) QKV_TALL_STORE(11)
    }
#undef QKV_TALL_FMA
#undef QKV_TALL_STORE

    // Rows [ir, ...) of one B panel: 12-row tiles while 12 rows remain (AVX-512), then 6-row ones.
    // Returns the row after the last tile done.
    static i64 direct_strip(const GemmF32& g, const DirectA& a, const DirectB& b, i64 ir, i64 jr) {
        if constexpr (kHasTall) {
            if (g.M - ir >= kTallRows) {
                const Tile t = make_tile(g.C, g.ldc, ir, jr, kTallRows, imin(kNR, g.N - jr), g.alpha,
                                         g.beta, g.bias);
                tall_kernel(g.K, a.base + ir * a.row_stride, a.row_stride, a.a_step, b.panel, b.step, t);
                return ir + kTallRows;
            }
        }
        direct_tile(g, a, b, ir, jr);
        return ir + kMR;
    }

    // All of K in one go (K ≤ KC), A read in place: row r of op(A) starts at A + r·lda (k step
    // 1) or, transposed, at A + r (k step lda). The loop order decides which operand is re-read:
    // with the B panels outside, a K×NR panel stays in L1 and all of A is re-read from L2 once
    // per panel; with the A strips outside, a 6×K strip stays in L1 and all of B is re-read once
    // per strip.
    static void gemm_direct(const GemmF32& g, float* scratch) {
        const DirectA a{g.A, g.trans_a ? 1 : g.lda, g.trans_a ? g.lda : 1};
        for (i64 jr = 0; jr < g.N; jr += kNR) {
            const i64 n = imin(kNR, g.N - jr);
            if (panel_needs_pack(g, n)) pack_b(g, 0, g.K, jr, n, scratch + jr * g.K);
        }
        // Re-read whichever operand is smaller (it is then the likelier to stay in L1 or L2).
        if (a_fits_l2(g) && (!b_fits_l2(g) || g.M <= g.N)) {
            for (i64 jr = 0; jr < g.N; jr += kNR) {
                const DirectB b = direct_b(g, scratch, jr, imin(kNR, g.N - jr));
                for (i64 ir = 0; ir < g.M;) ir = direct_strip(g, a, b, ir, jr);
            }
        } else {
            for (i64 ir = 0; ir < g.M;) {
                i64 next = ir;
                for (i64 jr = 0; jr < g.N; jr += kNR)
                    next = direct_strip(g, a, direct_b(g, scratch, jr, imin(kNR, g.N - jr)), ir, jr);
                ir = next;
            }
        }
    }

    static i64 direct_scratch_floats(const GemmF32& g) { return g.K * round_up(g.N, kNR); }

    // -----------------------------------------------------------------------------------------
    // The narrow path: products at most one vector wide
    // -----------------------------------------------------------------------------------------

    // Attention with head size 16 multiplies (T×T)·(T×16) (P·V, and dQ = dS·K, dV = Pᵀ·dO in
    // the backward). With a tile two vectors wide, half of every AVX-512 tile would be padding.
    // So for N ≤ one vector the tile is one vector wide and twice as tall, 12 rows: still 12
    // independent FMA chains in flight, one load of B per 12 FMAs. Every element of C is still
    // one FMA chain over k in order, scaled the same way, so the result is bit for bit that of the
    // wide tile (and of the other ISA). Used on the direct path (K ≤ KC), where these products are.
    static constexpr i64 kNarrowRows = 12;

    static bool use_narrow(const GemmF32& g) { return g.N <= kLanes && use_direct(g); }

    // One row of the narrow tile to C: alpha·acc (+ beta·C), masked when N < one vector.
    static void update_narrow_row(float* c, const float* old, Vec acc, const Store& s, bool whole) {
        acc = Isa::mul(acc, s.alpha);
        if (whole) {
            if (s.read_c) acc = Isa::fma(s.beta, Isa::load(old), acc);
            Isa::store(c, acc);
            return;
        }
        if (s.read_c) acc = Isa::fma(s.beta, Isa::load_masked(old, s.mask_lo), acc);
        Isa::store_masked(c, s.mask_lo, acc);
    }

// Row r of the narrow tile: accumulator c<r>, A element at p + j·rs (row r = 3·(p's index) + j).
// (A macro only to spell the twelve named accumulators once; see micro_kernel for why they
// cannot be an array.)
#define QKV_NARROW_FMA(r, p, j) \
    if constexpr (kRows > r) c##r = Isa::fma(Isa::broadcast(p + j * rs), b0, c##r);
#define QKV_NARROW_STORE(r) \
    if constexpr (kRows > r) update_narrow_row(t.c + r * t.ldc, t.old + r * t.old_ld, c##r, s, whole);

    // C tile (kRows × n ≤ one vector) ← alpha · A rows · B (kc × one vector, row k at
    // b + k·b_step) + beta · C; A's element (r, k) at a[r·rs + k·a_step]. Four row pointers, three
    // rows apart, each reach their rows as p, p + rs, p + 2·rs: that is what x86 addressing does
    // for free, where twelve separate row offsets would not fit the 16 integer registers and
    // would be reloaded from the stack inside the loop.
    template <int kRows>
    static void narrow_kernel(i64 kc, const float* a, i64 rs, i64 a_step, const float* b,
                              i64 b_step, const Tile& t) {
        for (i64 r = 0; r < kRows; ++r) _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc), _MM_HINT_T0);
        // Rows past kRows are never read (their pointers are only formed, not dereferenced).
        const float *p0 = a, *p1 = a + (kRows > 3 ? 3 * rs : 0);
        const float *p2 = a + (kRows > 6 ? 6 * rs : 0), *p3 = a + (kRows > 9 ? 9 * rs : 0);
        Vec c0 = Isa::zero(), c1 = Isa::zero(), c2 = Isa::zero(), c3 = Isa::zero();
        Vec c4 = Isa::zero(), c5 = Isa::zero(), c6 = Isa::zero(), c7 = Isa::zero();
        Vec c8 = Isa::zero(), c9 = Isa::zero(), c10 = Isa::zero(), c11 = Isa::zero();
#pragma GCC unroll 4
        for (i64 k = 0; k < kc; ++k) {
            const Vec b0 = Isa::load(b);
            QKV_NARROW_FMA(0, p0, 0) QKV_NARROW_FMA(1, p0, 1) QKV_NARROW_FMA(2, p0, 2)
            QKV_NARROW_FMA(3, p1, 0) QKV_NARROW_FMA(4, p1, 1) QKV_NARROW_FMA(5, p1, 2)
            QKV_NARROW_FMA(6, p2, 0) QKV_NARROW_FMA(7, p2, 1) QKV_NARROW_FMA(8, p2, 2)
            QKV_NARROW_FMA(9, p3, 0) QKV_NARROW_FMA(10, p3, 1) QKV_NARROW_FMA(11, p3, 2)
            p0 += a_step;
            p1 += a_step;
            p2 += a_step;
            p3 += a_step;
            b += b_step;
        }
        const Store s = make_store(t);
        const bool whole = t.n == kLanes;
        QKV_NARROW_STORE(0) QKV_NARROW_STORE(1) QKV_NARROW_STORE(2) QKV_NARROW_STORE(3)
        QKV_NARROW_STORE(4) QKV_NARROW_STORE(5) QKV_NARROW_STORE(6) QKV_NARROW_STORE(7)
        QKV_NARROW_STORE(8) QKV_NARROW_STORE(9) QKV_NARROW_STORE(10) QKV_NARROW_STORE(11)
    }
#undef QKV_NARROW_FMA
#undef QKV_NARROW_STORE

    // Picks the narrow kernel instance for the tile's number of rows.
    template <int kRows = kNarrowRows>
    static void narrow_tile(i64 kc, const float* a, i64 rs, i64 a_step, const float* b,
                            i64 b_step, const Tile& t) {
        if constexpr (kRows > 1) {
            if (t.m < kRows) return narrow_tile<kRows - 1>(kc, a, rs, a_step, b, b_step, t);
        }
        narrow_kernel<kRows>(kc, a, rs, a_step, b, b_step, t);
    }

    // The first vector of each row of a B panel (row stride NR), zero past column N ≤ one
    // vector: pack_b_panel_transposed (8×8 register transposes) when B is stored transposed,
    // one masked load per row otherwise.
    static void pack_narrow_b(const GemmF32& g, float* panel) {
        if (g.trans_b) return pack_b_panel_transposed(g, 0, g.K, 0, g.N, panel, kLanes);
        const Mask m = Isa::first_lanes(g.N);
        for (i64 k = 0; k < g.K; ++k) Isa::store_aligned(panel + k * kNR, Isa::load_masked(g.B + k * g.ldb, m));
    }

    // B as stored when its rows are one whole vector (B not transposed, N = one vector);
    // otherwise copied by pack_narrow_b.
    static void gemm_narrow(const GemmF32& g, float* scratch) {
        const bool copy_b = g.trans_b || g.N < kLanes;
        if (copy_b) pack_narrow_b(g, scratch);
        const float* b = copy_b ? scratch : g.B;
        const i64 b_step = copy_b ? kNR : g.ldb;
        const i64 row_stride = g.trans_a ? 1 : g.lda, a_step = g.trans_a ? g.lda : 1;
        for (i64 ir = 0; ir < g.M; ir += kNarrowRows) {
            const Tile t = make_tile(g.C, g.ldc, ir, 0, imin(kNarrowRows, g.M - ir), g.N, g.alpha,
                                     g.beta, g.bias);
            narrow_tile(g.K, g.A + ir * row_stride, row_stride, a_step, b, b_step, t);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Entry points
    // -----------------------------------------------------------------------------------------

    static i64 scratch_floats(const GemmF32& g) {
        return use_direct(g) ? direct_scratch_floats(g) : packed_scratch_floats(g);
    }

    static void run(const GemmF32& g, float* scratch) {
        if (use_narrow(g))
            gemm_narrow(g, scratch);
        else if (use_direct(g))
            gemm_direct(g, scratch);
        else
            gemm_packed(g, scratch);
    }

    static bool packs(const GemmF32& g) { return !use_direct(g); }

    static GemmKernel kernel() {
        return {kMR,  kNR,      &scratch_floats, &run, &packs, &b_blocks, &pack_b_panels,
                &multiply_rows};
    }
};

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
