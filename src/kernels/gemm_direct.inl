/// \file
/// \brief The GEMM's direct path: small and skinny products, without packing A.
///
/// Part of the shared SIMD GEMM (see gemm_kernel.inl, which includes this file). A reader learns
/// here when the ladder's rung 4 does not pay. A transformer this size multiplies small matrices:
/// attention products with T = 16–128 and head size 16–64, linear layers with K = 64–256. There,
/// copying A into panels costs about as much as using it a few times. So when all of K fits one
/// KC block and one operand fits in L2, the micro-kernels run straight on A as stored (row r at
/// A + r·lda, or A + r when transposed) and B is copied only where its rows are not contiguous
/// (B transposed) or a panel is narrower than NR. Products at most one vector wide take the narrow
/// tile instead, so that no half-empty tiles are computed.
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// The direct (unpacked) path is used when the whole K dimension fits one KC block and one of the
// operands is small enough to stay in L2 while it is re-read: A (M×K) when the B panels are the
// outer loop, or B (K×N) when the A row strips are.
template <class Isa>
bool a_fits_l2(const GemmF32& g) {
    return g.M * g.K * 4 <= Isa::kDirectMaxBytes;
}
template <class Isa>
bool b_fits_l2(const GemmF32& g) {
    return g.K * g.N * 4 <= Isa::kDirectMaxBytes;
}
template <class Isa>
bool use_direct(const GemmF32& g) {
    return g.K <= Isa::kKC && (a_fits_l2<Isa>(g) || b_fits_l2<Isa>(g));
}

// B panels need a copy only when op(B)'s rows are not contiguous (B transposed) or the
// panel is narrower than NR columns; these copies are K×NR floats each, a small fraction of
// the work.
template <class Isa>
bool panel_needs_pack(const GemmF32& g, i64 n) {
    return g.trans_b || n < kNR<Isa>;
}

template <class Isa>
i64 direct_scratch_floats(const GemmF32& g) {
    return g.K * round_up(g.N, kNR<Isa>);
}

/// A view of op(A) as stored: row r starts at base + r·row_stride, consecutive k are a_step apart.
struct DirectA {
    const float* base;
    i64 row_stride, a_step;
};

/// One NR-column panel of op(B): row k at panel + k·step.
struct DirectB {
    const float* panel;
    i64 step;
};

template <class Isa>
DirectB direct_b(const GemmF32& g, const float* packed, i64 jr, i64 n) {
    if (panel_needs_pack<Isa>(g, n)) return {packed + jr * g.K, kNR<Isa>};
    return {g.B + jr, g.ldb};
}

// One MR-row micro-tile at (ir, jr), straight from A as stored. Rows past the bottom edge repeat
// the last valid row, so the kernel never reads outside A; the tile's m discards their results.
template <class Isa>
void direct_tile(const GemmF32& g, const DirectA& a, const DirectB& b, i64 ir, i64 jr) {
    constexpr i64 kMr = kMR<Isa>;
    const i64 m = imin(kMr, g.M - ir), n = imin(kNR<Isa>, g.N - jr);
    i64 offsets[kMr];
    for (i64 r = 0; r < kMr; ++r) offsets[r] = imin(r, m - 1) * a.row_stride;
    const Tile t = make_tile(g.C, g.ldc, ir, jr, m, n, g.alpha, g.beta, g.bias);
    micro_tile<Isa, false>(g.K, a.base + ir * a.row_stride, offsets, a.a_step, b.panel, b.step, t);
    finish_tile(g.epilogue, t);  // all of K is done: the tile is final
}

// Rows [ir, ...) of one B panel: a 12-row tall tile while 12 rows remain (AVX-512), else an
// MR-row one. Returns the row after the tile done.
template <class Isa>
i64 direct_strip(const GemmF32& g, const DirectA& a, const DirectB& b, i64 ir, i64 jr) {
    if constexpr (Isa::kTallDirect) {
        if (g.M - ir >= kTallRows) {
            const Tile t = make_tile(g.C, g.ldc, ir, jr, kTallRows, imin(kNR<Isa>, g.N - jr), g.alpha, g.beta, g.bias);
            tall_kernel<Isa>(g.K, a.base + ir * a.row_stride, a.row_stride, a.a_step, b.panel, b.step, t);
            finish_tile(g.epilogue, t);
            return ir + kTallRows;
        }
    }
    direct_tile<Isa>(g, a, b, ir, jr);
    return ir + kMR<Isa>;
}

// All of K in one go (K ≤ KC), A read in place: row r of op(A) starts at A + r·lda (k step
// 1) or, transposed, at A + r (k step lda). The loop order decides which operand is re-read:
// with the B panels outside, a K×NR panel stays in L1 and all of A is re-read from L2 once
// per panel; with the A strips outside, an MR×K strip stays in L1 and all of B is re-read once
// per strip.
template <class Isa>
void gemm_direct(const GemmF32& g, float* scratch) {
    constexpr i64 kNr = kNR<Isa>;
    const DirectA a{g.A, g.trans_a ? 1 : g.lda, g.trans_a ? g.lda : 1};
    for (i64 jr = 0; jr < g.N; jr += kNr) {
        const i64 n = imin(kNr, g.N - jr);
        if (panel_needs_pack<Isa>(g, n)) pack_b<Isa>(g, 0, g.K, jr, n, scratch + jr * g.K);
    }
    // Re-read whichever operand is smaller (it is then the likelier to stay in L1 or L2).
    if (a_fits_l2<Isa>(g) && (!b_fits_l2<Isa>(g) || g.M <= g.N)) {
        for (i64 jr = 0; jr < g.N; jr += kNr) {
            const DirectB b = direct_b<Isa>(g, scratch, jr, imin(kNr, g.N - jr));
            for (i64 ir = 0; ir < g.M;) ir = direct_strip<Isa>(g, a, b, ir, jr);
        }
    } else {
        for (i64 ir = 0; ir < g.M;) {
            i64 next = ir;
            for (i64 jr = 0; jr < g.N; jr += kNr)
                next = direct_strip<Isa>(g, a, direct_b<Isa>(g, scratch, jr, imin(kNr, g.N - jr)), ir, jr);
            ir = next;
        }
    }
}

// ---- the narrow path: products at most one vector wide ---------------------------------------------

// Every element of C is still one FMA chain over k in order, scaled the same way, so the result
// is bit for bit that of the wide tile (and of the other ISA).
template <class Isa>
bool use_narrow(const GemmF32& g) {
    return g.N <= Isa::kLanes && use_direct<Isa>(g);
}

// The first vector of each row of a B panel (row stride NR), zero past column N ≤ one
// vector: pack_b_panel_transposed (8×8 register transposes) when B is stored transposed,
// one masked load per row otherwise.
template <class Isa>
void pack_narrow_b(const GemmF32& g, float* panel) {
    if (g.trans_b) return pack_b_panel_transposed<Isa>(g, 0, g.K, 0, g.N, panel, Isa::kLanes);
    const typename Isa::Mask m = Isa::first_lanes(g.N);
    for (i64 k = 0; k < g.K; ++k) Isa::store_aligned(panel + k * kNR<Isa>, Isa::load_masked(g.B + k * g.ldb, m));
}

// B as stored when its rows are one whole vector (B not transposed, N = one vector);
// otherwise copied by pack_narrow_b.
template <class Isa>
void gemm_narrow(const GemmF32& g, float* scratch) {
    const bool copy_b = g.trans_b || g.N < Isa::kLanes;
    if (copy_b) pack_narrow_b<Isa>(g, scratch);
    const float* b = copy_b ? scratch : g.B;
    const i64 b_step = copy_b ? kNR<Isa> : g.ldb;
    const i64 row_stride = g.trans_a ? 1 : g.lda, a_step = g.trans_a ? g.lda : 1;
    for (i64 ir = 0; ir < g.M; ir += kNarrowRows) {
        const Tile t = make_tile(g.C, g.ldc, ir, 0, imin(kNarrowRows, g.M - ir), g.N, g.alpha, g.beta, g.bias);
        narrow_tile<Isa>(g.K, g.A + ir * row_stride, row_stride, a_step, b, b_step, t);
        finish_tile(g.epilogue, t);
    }
}

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
