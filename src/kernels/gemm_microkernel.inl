/// \file
/// \brief GEMM rung 5, register tiling: the micro-kernels, and how their tile reaches C.
///
/// Part of the shared SIMD GEMM (see gemm_kernel.inl, which includes this file). A reader learns
/// here where a GEMM's time goes: in a loop that keeps a tile of C in vector registers for the
/// whole sum over k and, per step, loads one row of B, broadcasts a few floats of A and issues
/// one FMA per accumulator. Three tile shapes share the idea:
///
/// | kernel          | tile (rows × columns)  | accumulators   | used for                            |
/// |-----------------|------------------------|----------------|-------------------------------------|
/// | micro_kernel    | MR × 2 vectors         | 12 (x86), 24 (NEON) | everything (both paths)        |
/// | tall_kernel     | 12 × 2 vectors         | 24 (AVX-512)   | the direct path with ≥ 12 rows left |
/// | narrow_kernel   | 12 × 1 vector          | 12             | products at most one vector wide    |
///
/// Every element of C is one FMA chain over k, in order, in all three, scaled and written back by
/// the same code (write_row), so which kernel computed a tile never changes a bit of the result.
///
/// The accumulators are *named* variables, not an array: with `Vec c[6][2]` g++ 12 keeps the
/// array in memory and reloads/stores it around every FMA, halving the speed. The small
/// always-inlined helpers below (fma_row, fma_row1) take them by reference, which is fine once
/// inlined. Verify with `objdump -d --no-show-raw-insn` on gemm_avx2.cpp.o (or gemm_avx512.cpp.o):
/// the 6-row loop must hold 12 vfmadd231ps with register operands only, 2 loads and 6 broadcasts.
/// On AArch64 (`aarch64-linux-gnu-objdump` on gemm_neon.cpp.o) the packed 12-row loop must hold 24
/// `fmla vC.4s, vB.4s, vA.s[lane]`, 5 vector loads and no load or store to the stack (sp).
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// ---- where a tile goes ---------------------------------------------------------------------------

/// Where a micro-tile of C goes and how it is combined with the old C.
struct Tile {
    float* c;          // top-left element of the tile in C
    i64 ldc;           // row stride of C
    i64 m, n;          // valid rows and columns; the rest of the tile is discarded
    float alpha;       // scale of the product
    float beta;        // scale of the old C; 0 means it is not read
    const float* old;  // where the old C is read: C itself, or a bias row
    i64 old_ld;        // row stride of `old` (ldc; 0 for a bias row, the same for every row)
};

// The tile at (ir, jr) of a problem whose C starts at c: its old values come from C, or
// — when the problem has a bias and this is the first K block — from the bias row, with
// beta = 1 (what copying the bias into C and accumulating onto it computes, bit for bit).
inline Tile make_tile(float* c, i64 ldc, i64 ir, i64 jr, i64 m, i64 n, float alpha, float beta,
                      const float* bias) {
    float* at = c + ir * ldc + jr;
    if (bias != nullptr) return {at, ldc, m, n, alpha, 1.0f, bias + jr, 0};
    return {at, ldc, m, n, alpha, beta, at, ldc};
}

// The caller's epilogue (kernels::GemmEpilogue) on a tile whose last K step has just been written,
// so its values are still in L1; no-op without one.
inline void finish_tile(const kernels::GemmEpilogue& e, const Tile& t) {
    if (e.apply != nullptr) e.apply(e.ctx, t.c, t.ldc, t.m, t.n);
}

/// How the accumulators reach C: scales, and lane masks for a tile narrower than its vectors.
template <class Isa>
struct Store {
    typename Isa::Vec alpha, beta;
    typename Isa::Mask mask_lo, mask_hi;  // lane j is on when column j (resp. kLanes + j) is inside C
    bool read_c;                          // beta ≠ 0
    bool full_lo, full_hi;                // all lanes of the first (second) vector valid
};

template <class Isa>
Store<Isa> make_store(const Tile& t) {
    return {Isa::set1(t.alpha), Isa::set1(t.beta), Isa::first_lanes(t.n), Isa::first_lanes(t.n - Isa::kLanes),
            t.beta != 0.0f, t.n >= Isa::kLanes, t.n >= 2 * Isa::kLanes};
}

// One vector of a row of C ← alpha·acc (+ beta·old). A partial vector uses masked loads and
// stores, which neither read nor write the masked-off columns (so they cannot fault past C's end).
template <class Isa>
[[gnu::always_inline]] inline void write_vector(float* c, const float* old, typename Isa::Vec acc,
                                                const typename Isa::Vec& alpha, const typename Isa::Vec& beta,
                                                bool read_c, bool full, typename Isa::Mask mask) {
    acc = Isa::mul(acc, alpha);
    if (full) {
        if (read_c) acc = Isa::fma(beta, Isa::load(old), acc);
        Isa::store(c, acc);
        return;
    }
    if (read_c) acc = Isa::fma(beta, Isa::load_masked(old, mask), acc);
    Isa::store_masked(c, mask, acc);
}

// Row r of a tile two vectors wide (lo, hi) to C.
template <class Isa>
[[gnu::always_inline]] inline void write_row(const Tile& t, const Store<Isa>& s, i64 r, typename Isa::Vec lo,
                                             typename Isa::Vec hi) {
    float* c = t.c + r * t.ldc;
    const float* old = t.old + r * t.old_ld;
    if (s.full_hi) {  // the common case, tested once: two whole vectors
        write_vector<Isa>(c, old, lo, s.alpha, s.beta, s.read_c, true, s.mask_lo);
        write_vector<Isa>(c + Isa::kLanes, old + Isa::kLanes, hi, s.alpha, s.beta, s.read_c, true, s.mask_hi);
        return;
    }
    write_vector<Isa>(c, old, lo, s.alpha, s.beta, s.read_c, false, s.mask_lo);
    write_vector<Isa>(c + Isa::kLanes, old + Isa::kLanes, hi, s.alpha, s.beta, s.read_c, false, s.mask_hi);
}

// Row r of a tile one vector wide to C.
template <class Isa>
[[gnu::always_inline]] inline void write_row1(const Tile& t, const Store<Isa>& s, i64 r, typename Isa::Vec acc) {
    write_vector<Isa>(t.c + r * t.ldc, t.old + r * t.old_ld, acc, s.alpha, s.beta, s.read_c, s.full_lo, s.mask_lo);
}

// Asks for a cache line now, to read soon, into every cache level: `prefetcht0` on x86, `prfm
// pldl1keep` on AArch64 (the compiler's built-in picks the instruction, so the shared code names
// no ISA).
[[gnu::always_inline]] inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

// Asks for the tile's rows of C now, so that their cache lines arrive while the k loop runs
// instead of stalling the write-back at the end (C rows are far apart: every row is a separate
// miss). First, middle and last column: a row of at most 32 floats spans at most 3 lines.
inline void prefetch_rows(const Tile& t, i64 rows) {
    for (i64 r = 0; r < rows; ++r) {
        const char* row = reinterpret_cast<const char*>(t.c + r * t.ldc);
        prefetch(row);
        prefetch(row + 4 * (t.n / 2));
        prefetch(row + 4 * (t.n - 1));
    }
}

// ---- one step of k for one row of A -------------------------------------------------------------

// c0 += x·b0, c1 += x·b1: one row of a two-vector tile (x holds A's element in every lane).
template <class Isa>
[[gnu::always_inline]] inline void fma_row(typename Isa::Vec& c0, typename Isa::Vec& c1, typename Isa::Vec x,
                                           typename Isa::Vec b0, typename Isa::Vec b1) {
    c0 = Isa::fma(x, b0, c0);
    c1 = Isa::fma(x, b1, c1);
}

// c += a·b: one row of a one-vector tile.
template <class Isa>
[[gnu::always_inline]] inline void fma_row1(typename Isa::Vec& c, const float* a, typename Isa::Vec b) {
    c = Isa::fma(Isa::broadcast(a), b, c);
}

// Row R's element of A at this step of k, in every lane. A packed panel holds the MR elements of
// a step side by side, and the ISA decides how to fetch them (Isa::packed_a): x86 broadcasts each
// from memory, NEON loads the 12 as three vectors and multiplies by one lane of them. A's rows as
// stored (the direct path) are far apart, so each element is broadcast from its own row.
template <class Isa, bool kPacked, int R>
[[gnu::always_inline]] inline typename Isa::Vec a_element(const float* a, i64 offset) {
    if constexpr (kPacked)
        return Isa::template packed_a<R>(a);
    else
        return Isa::broadcast(a + offset);
}

// Row R's offset in A as stored (the direct path; for packed A the rows are R floats apart, and
// packed_a finds them). Rows the tile does not have are never read.
template <bool kPacked, int kRows, int R>
[[gnu::always_inline]] inline i64 row_at(const i64* row_offset) {
    if constexpr (kPacked || R >= kRows)
        return R;
    else
        return row_offset[R];
}

// ---- the MR-row kernel -----------------------------------------------------------------------------

// The heart of the library: C tile (kRows×NR) ← alpha · A panel (kRows×kc) · B panel
// (kc×NR) + beta · C, with kRows = MR (6 on x86, 12 on NEON) except in the last row strip of C
// (templated, so an edge tile of 4 rows does 8 FMAs per step instead of computing 2 rows of zeros).
//
// A's element (r, k) is read at a[row_offset[r] + k·a_step]; B's row k is NR contiguous
// floats at b + k·b_step. Packed operands use a = panel, a_step = MR and b_step = NR, and
// Isa::packed_a fetches row r's element; the direct path points straight into the caller's
// matrices.
//
// The accumulators are named for up to 12 rows (c00 … c111); `if constexpr` drops the rows an
// instance does not have, so the 6-row x86 instances hold exactly 12 of them.
template <class Isa, bool kPacked, int kRows>
void micro_kernel(i64 kc, const float* a, const i64* row_offset, i64 a_step, const float* b, i64 b_step,
                  const Tile& t) {
    using Vec = typename Isa::Vec;
    // For packed A the step is a compile-time constant, so the compiler addresses all of a
    // step's elements from one pointer.
    const i64 o0 = row_at<kPacked, kRows, 0>(row_offset), o1 = row_at<kPacked, kRows, 1>(row_offset);
    const i64 o2 = row_at<kPacked, kRows, 2>(row_offset), o3 = row_at<kPacked, kRows, 3>(row_offset);
    const i64 o4 = row_at<kPacked, kRows, 4>(row_offset), o5 = row_at<kPacked, kRows, 5>(row_offset);
    const i64 o6 = row_at<kPacked, kRows, 6>(row_offset), o7 = row_at<kPacked, kRows, 7>(row_offset);
    const i64 o8 = row_at<kPacked, kRows, 8>(row_offset), o9 = row_at<kPacked, kRows, 9>(row_offset);
    const i64 o10 = row_at<kPacked, kRows, 10>(row_offset), o11 = row_at<kPacked, kRows, 11>(row_offset);
    if (kPacked) a_step = kMR<Isa>;
    prefetch_rows(t, kRows);

    Vec c00 = Isa::zero(), c01 = Isa::zero();
    Vec c10 = Isa::zero(), c11 = Isa::zero();
    Vec c20 = Isa::zero(), c21 = Isa::zero();
    Vec c30 = Isa::zero(), c31 = Isa::zero();
    Vec c40 = Isa::zero(), c41 = Isa::zero();
    Vec c50 = Isa::zero(), c51 = Isa::zero();
    Vec c60 = Isa::zero(), c61 = Isa::zero();
    Vec c70 = Isa::zero(), c71 = Isa::zero();
    Vec c80 = Isa::zero(), c81 = Isa::zero();
    Vec c90 = Isa::zero(), c91 = Isa::zero();
    Vec c100 = Isa::zero(), c101 = Isa::zero();
    Vec c110 = Isa::zero(), c111 = Isa::zero();

    // Unrolled 4×: the loop's own add/compare/branch then costs 5 instructions per 80, not
    // per 20 (6 rows).
#pragma GCC unroll 4
    for (i64 k = 0; k < kc; ++k) {
        const Vec b0 = Isa::load(b);
        const Vec b1 = Isa::load(b + Isa::kLanes);
        if constexpr (kRows > 0) fma_row<Isa>(c00, c01, a_element<Isa, kPacked, 0>(a, o0), b0, b1);
        if constexpr (kRows > 1) fma_row<Isa>(c10, c11, a_element<Isa, kPacked, 1>(a, o1), b0, b1);
        if constexpr (kRows > 2) fma_row<Isa>(c20, c21, a_element<Isa, kPacked, 2>(a, o2), b0, b1);
        if constexpr (kRows > 3) fma_row<Isa>(c30, c31, a_element<Isa, kPacked, 3>(a, o3), b0, b1);
        if constexpr (kRows > 4) fma_row<Isa>(c40, c41, a_element<Isa, kPacked, 4>(a, o4), b0, b1);
        if constexpr (kRows > 5) fma_row<Isa>(c50, c51, a_element<Isa, kPacked, 5>(a, o5), b0, b1);
        if constexpr (kRows > 6) fma_row<Isa>(c60, c61, a_element<Isa, kPacked, 6>(a, o6), b0, b1);
        if constexpr (kRows > 7) fma_row<Isa>(c70, c71, a_element<Isa, kPacked, 7>(a, o7), b0, b1);
        if constexpr (kRows > 8) fma_row<Isa>(c80, c81, a_element<Isa, kPacked, 8>(a, o8), b0, b1);
        if constexpr (kRows > 9) fma_row<Isa>(c90, c91, a_element<Isa, kPacked, 9>(a, o9), b0, b1);
        if constexpr (kRows > 10) fma_row<Isa>(c100, c101, a_element<Isa, kPacked, 10>(a, o10), b0, b1);
        if constexpr (kRows > 11) fma_row<Isa>(c110, c111, a_element<Isa, kPacked, 11>(a, o11), b0, b1);
        a += a_step;
        b += b_step;
    }

    const Store<Isa> s = make_store<Isa>(t);
    if constexpr (kRows > 0) write_row<Isa>(t, s, 0, c00, c01);
    if constexpr (kRows > 1) write_row<Isa>(t, s, 1, c10, c11);
    if constexpr (kRows > 2) write_row<Isa>(t, s, 2, c20, c21);
    if constexpr (kRows > 3) write_row<Isa>(t, s, 3, c30, c31);
    if constexpr (kRows > 4) write_row<Isa>(t, s, 4, c40, c41);
    if constexpr (kRows > 5) write_row<Isa>(t, s, 5, c50, c51);
    if constexpr (kRows > 6) write_row<Isa>(t, s, 6, c60, c61);
    if constexpr (kRows > 7) write_row<Isa>(t, s, 7, c70, c71);
    if constexpr (kRows > 8) write_row<Isa>(t, s, 8, c80, c81);
    if constexpr (kRows > 9) write_row<Isa>(t, s, 9, c90, c91);
    if constexpr (kRows > 10) write_row<Isa>(t, s, 10, c100, c101);
    if constexpr (kRows > 11) write_row<Isa>(t, s, 11, c110, c111);
}

// Picks the kernel instance for the tile's number of rows, 1 … MR (t.m never exceeds MR; rows 6
// to 11 have their own instances only where MR is larger, on NEON).
template <class Isa, bool kPacked>
void micro_tile(i64 kc, const float* a, const i64* row_offset, i64 a_step, const float* b, i64 b_step,
                const Tile& t) {
    switch (t.m) {
        case 1: return micro_kernel<Isa, kPacked, 1>(kc, a, row_offset, a_step, b, b_step, t);
        case 2: return micro_kernel<Isa, kPacked, 2>(kc, a, row_offset, a_step, b, b_step, t);
        case 3: return micro_kernel<Isa, kPacked, 3>(kc, a, row_offset, a_step, b, b_step, t);
        case 4: return micro_kernel<Isa, kPacked, 4>(kc, a, row_offset, a_step, b, b_step, t);
        case 5: return micro_kernel<Isa, kPacked, 5>(kc, a, row_offset, a_step, b, b_step, t);
        default: break;
    }
    if constexpr (kMR<Isa> > 6) {
        switch (t.m) {
            case 6: return micro_kernel<Isa, kPacked, 6>(kc, a, row_offset, a_step, b, b_step, t);
            case 7: return micro_kernel<Isa, kPacked, 7>(kc, a, row_offset, a_step, b, b_step, t);
            case 8: return micro_kernel<Isa, kPacked, 8>(kc, a, row_offset, a_step, b, b_step, t);
            case 9: return micro_kernel<Isa, kPacked, 9>(kc, a, row_offset, a_step, b, b_step, t);
            case 10: return micro_kernel<Isa, kPacked, 10>(kc, a, row_offset, a_step, b, b_step, t);
            case 11: return micro_kernel<Isa, kPacked, 11>(kc, a, row_offset, a_step, b, b_step, t);
            default: break;
        }
    }
    micro_kernel<Isa, kPacked, kMR<Isa>>(kc, a, row_offset, a_step, b, b_step, t);
}

// ---- the tall tile (AVX-512 only): 12 rows × 2 vectors ---------------------------------------------

// AVX-512 has 32 vector registers, enough for a 12 × 32 tile: 24 accumulators, 2 of B, 1
// broadcast. Per step of k it loads B once for 24 FMAs instead of 12, and a small-K product
// (a linear layer with K = 64, an attention product with K = T) pays the tile's start and
// write-back half as often. AVX2's 16 registers cannot hold it; NEON's MR-row kernel already has
// 12 rows. (Isa::kTallDirect says which ISA uses it.)
constexpr i64 kTallRows = 12;

// C tile (12 × n ≤ NR) ← alpha · A rows · B panel + beta · C; A's element (r, k) at
// a[r·rs + k·a_step], reached through four row pointers as in narrow_kernel.
template <class Isa>
void tall_kernel(i64 kc, const float* a, i64 rs, i64 a_step, const float* b, i64 b_step, const Tile& t) {
    using Vec = typename Isa::Vec;
    for (i64 r = 0; r < kTallRows; ++r) {
        const char* row = reinterpret_cast<const char*>(t.c + r * t.ldc);
        prefetch(row);
        prefetch(row + 4 * (t.n - 1));
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
        const Vec b1 = Isa::load(b + Isa::kLanes);
        fma_row<Isa>(c00, c01, Isa::broadcast(p0), b0, b1);
        fma_row<Isa>(c10, c11, Isa::broadcast(p0 + rs), b0, b1);
        fma_row<Isa>(c20, c21, Isa::broadcast(p0 + 2 * rs), b0, b1);
        fma_row<Isa>(c30, c31, Isa::broadcast(p1), b0, b1);
        fma_row<Isa>(c40, c41, Isa::broadcast(p1 + rs), b0, b1);
        fma_row<Isa>(c50, c51, Isa::broadcast(p1 + 2 * rs), b0, b1);
        fma_row<Isa>(c60, c61, Isa::broadcast(p2), b0, b1);
        fma_row<Isa>(c70, c71, Isa::broadcast(p2 + rs), b0, b1);
        fma_row<Isa>(c80, c81, Isa::broadcast(p2 + 2 * rs), b0, b1);
        fma_row<Isa>(c90, c91, Isa::broadcast(p3), b0, b1);
        fma_row<Isa>(c100, c101, Isa::broadcast(p3 + rs), b0, b1);
        fma_row<Isa>(c110, c111, Isa::broadcast(p3 + 2 * rs), b0, b1);
        p0 += a_step;
        p1 += a_step;
        p2 += a_step;
        p3 += a_step;
        b += b_step;
    }
    const Store<Isa> s = make_store<Isa>(t);
    write_row<Isa>(t, s, 0, c00, c01);
    write_row<Isa>(t, s, 1, c10, c11);
    write_row<Isa>(t, s, 2, c20, c21);
    write_row<Isa>(t, s, 3, c30, c31);
    write_row<Isa>(t, s, 4, c40, c41);
    write_row<Isa>(t, s, 5, c50, c51);
    write_row<Isa>(t, s, 6, c60, c61);
    write_row<Isa>(t, s, 7, c70, c71);
    write_row<Isa>(t, s, 8, c80, c81);
    write_row<Isa>(t, s, 9, c90, c91);
    write_row<Isa>(t, s, 10, c100, c101);
    write_row<Isa>(t, s, 11, c110, c111);
}

// ---- the narrow tile: 12 rows × 1 vector -----------------------------------------------------------

// Attention with head size 16 multiplies (T×T)·(T×16) (P·V, and dQ = dS·K, dV = Pᵀ·dO in
// the backward). With a tile two vectors wide, half of every AVX-512 tile would be padding.
// So for N ≤ one vector the tile is one vector wide and twice as tall, 12 rows: still 12
// independent FMA chains in flight, one load of B per 12 FMAs.
constexpr i64 kNarrowRows = 12;

// C tile (kRows × n ≤ one vector) ← alpha · A rows · B (kc × one vector, row k at
// b + k·b_step) + beta · C; A's element (r, k) at a[r·rs + k·a_step]. Four row pointers, three
// rows apart, each reach their rows as p, p + rs, p + 2·rs: that is what x86 addressing does
// for free, where twelve separate row offsets would not fit the 16 integer registers and
// would be reloaded from the stack inside the loop.
template <class Isa, int kRows>
void narrow_kernel(i64 kc, const float* a, i64 rs, i64 a_step, const float* b, i64 b_step, const Tile& t) {
    using Vec = typename Isa::Vec;
    for (i64 r = 0; r < kRows; ++r) prefetch(t.c + r * t.ldc);
    // Rows past kRows are never read (their pointers are only formed, not dereferenced).
    const float *p0 = a, *p1 = a + (kRows > 3 ? 3 * rs : 0);
    const float *p2 = a + (kRows > 6 ? 6 * rs : 0), *p3 = a + (kRows > 9 ? 9 * rs : 0);
    Vec c0 = Isa::zero(), c1 = Isa::zero(), c2 = Isa::zero(), c3 = Isa::zero();
    Vec c4 = Isa::zero(), c5 = Isa::zero(), c6 = Isa::zero(), c7 = Isa::zero();
    Vec c8 = Isa::zero(), c9 = Isa::zero(), c10 = Isa::zero(), c11 = Isa::zero();
#pragma GCC unroll 4
    for (i64 k = 0; k < kc; ++k) {
        const Vec b0 = Isa::load(b);
        if constexpr (kRows > 0) fma_row1<Isa>(c0, p0, b0);
        if constexpr (kRows > 1) fma_row1<Isa>(c1, p0 + rs, b0);
        if constexpr (kRows > 2) fma_row1<Isa>(c2, p0 + 2 * rs, b0);
        if constexpr (kRows > 3) fma_row1<Isa>(c3, p1, b0);
        if constexpr (kRows > 4) fma_row1<Isa>(c4, p1 + rs, b0);
        if constexpr (kRows > 5) fma_row1<Isa>(c5, p1 + 2 * rs, b0);
        if constexpr (kRows > 6) fma_row1<Isa>(c6, p2, b0);
        if constexpr (kRows > 7) fma_row1<Isa>(c7, p2 + rs, b0);
        if constexpr (kRows > 8) fma_row1<Isa>(c8, p2 + 2 * rs, b0);
        if constexpr (kRows > 9) fma_row1<Isa>(c9, p3, b0);
        if constexpr (kRows > 10) fma_row1<Isa>(c10, p3 + rs, b0);
        if constexpr (kRows > 11) fma_row1<Isa>(c11, p3 + 2 * rs, b0);
        p0 += a_step;
        p1 += a_step;
        p2 += a_step;
        p3 += a_step;
        b += b_step;
    }
    const Store<Isa> s = make_store<Isa>(t);
    if constexpr (kRows > 0) write_row1<Isa>(t, s, 0, c0);
    if constexpr (kRows > 1) write_row1<Isa>(t, s, 1, c1);
    if constexpr (kRows > 2) write_row1<Isa>(t, s, 2, c2);
    if constexpr (kRows > 3) write_row1<Isa>(t, s, 3, c3);
    if constexpr (kRows > 4) write_row1<Isa>(t, s, 4, c4);
    if constexpr (kRows > 5) write_row1<Isa>(t, s, 5, c5);
    if constexpr (kRows > 6) write_row1<Isa>(t, s, 6, c6);
    if constexpr (kRows > 7) write_row1<Isa>(t, s, 7, c7);
    if constexpr (kRows > 8) write_row1<Isa>(t, s, 8, c8);
    if constexpr (kRows > 9) write_row1<Isa>(t, s, 9, c9);
    if constexpr (kRows > 10) write_row1<Isa>(t, s, 10, c10);
    if constexpr (kRows > 11) write_row1<Isa>(t, s, 11, c11);
}

// Picks the narrow kernel instance for the tile's number of rows.
template <class Isa, int kRows = kNarrowRows>
void narrow_tile(i64 kc, const float* a, i64 rs, i64 a_step, const float* b, i64 b_step, const Tile& t) {
    if constexpr (kRows > 1) {
        if (t.m < kRows) return narrow_tile<Isa, kRows - 1>(kc, a, rs, a_step, b, b_step, t);
    }
    narrow_kernel<Isa, kRows>(kc, a, rs, a_step, b, b_step, t);
}

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
