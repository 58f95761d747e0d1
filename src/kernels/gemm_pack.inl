/// \file
/// \brief GEMM rung 4, packing: A and B copied into panels in the order the micro-kernel reads them.
///
/// Part of the shared SIMD GEMM (see gemm_kernel.inl, which includes this file). A reader learns
/// here what "packing" means concretely. The micro-kernel multiplies an MR-row panel of A by an
/// NR-column panel of B, one k at a time: at step k it broadcasts MR floats of A and loads NR floats
/// of B. Packing lays those floats out contiguously — A's as `panel[k·MR + r]`, B's as
/// `panel[k·NR + c]` — so the kernel reads two sequential streams whatever the strides, and
/// transposes, of the caller's matrices. Panels past the edge of a matrix are zero-padded, so the
/// kernel never checks a bound. Most of the code is about doing the copies with vector moves:
/// register transposes where a panel's rows are columns of the stored matrix. Those transposes are
/// the one ISA-specific piece, so the traits provide them (`transpose_block`, `pack_a_block`: 8×8
/// with AVX in gemm_avx_pack.inl, 4×4 with NEON in gemm_neon.cpp); the loops around them are here.
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// ---- A: MR-row panels ----------------------------------------------------------------------------

// pack_a for A stored (K, M), used transposed: row k of A holds, side by side, the mc values
// every panel of the block needs at step k. So k runs outside and the panels inside: A is
// read row after row, sequentially, and each full panel gets its MR floats per k from
// Isa::copy_a_step (6 floats: one 16-byte and one 8-byte move on x86; 12: three 16-byte moves on
// NEON). (Panel by panel instead, every k would start a new cache line of A, 4·lda bytes from
// the last, and the dW = dYᵀ·X products spent a quarter of their packing time waiting for
// them.) A partial last panel is zero-padded.
template <class Isa>
inline void pack_a_transposed(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
    constexpr i64 kMr = kMR<Isa>;
    const i64 full = mc - mc % kMr;
    const float* src = g.A + k0 * g.lda + i0;
    for (i64 k = 0; k < kc; ++k, src += g.lda) {
        for (i64 ip = 0; ip < full; ip += kMr) Isa::copy_a_step(out + ip * kc + k * kMr, src + ip);
        if (full < mc) {
            float* dst = out + full * kc + k * kMr;
            for (i64 r = 0; r < kMr; ++r) dst[r] = full + r < mc ? src[full + r] : 0.0f;
        }
    }
}

// Copies rows [i0, i0+mc) × columns [k0, k0+kc) of op(A) into MR-row panels: panel p holds
// rows i0+p·MR ... as kc columns of MR consecutive floats (element (r, k) at
// panel[k·MR + r]), which is the order the micro-kernel broadcasts them. Rows past the edge
// are zero, so the last panel multiplies harmlessly.
template <class Isa>
inline void pack_a(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
    constexpr i64 kMr = kMR<Isa>, kStep = Isa::kPackAK;
    if (g.trans_a) return pack_a_transposed<Isa>(g, i0, mc, k0, kc, out);
    for (i64 ip = 0; ip < mc; ip += kMr) {
        const i64 m = imin(kMr, mc - ip);
        float* panel = out + ip * kc;
        if (m == kMr) {
            // A is stored (M, K), a full panel: MR rows × kPackAK k at a time through register
            // transposes (Isa::pack_a_block), the last k one by one.
            const float* src = g.A + (i0 + ip) * g.lda + k0;
            const i64 k_blocks = kc - kc % kStep;
            for (i64 k = 0; k < k_blocks; k += kStep)
                Isa::pack_a_block(src + k, g.lda, panel + k * kMr, k + kStep == kc);
            for (i64 k = k_blocks; k < kc; ++k)
                for (i64 r = 0; r < kMr; ++r) panel[k * kMr + r] = src[r * g.lda + k];
        } else {
            // A is stored (M, K): read each of the m rows sequentially, scatter with stride MR.
            for (i64 r = 0; r < kMr; ++r) {
                const float* src = g.A + (i0 + ip + r) * g.lda + k0;
                if (r < m)
                    for (i64 k = 0; k < kc; ++k) panel[k * kMr + r] = src[k];
                else
                    for (i64 k = 0; k < kc; ++k) panel[k * kMr + r] = 0.0f;
            }
        }
    }
}

// ---- B: NR-column panels -------------------------------------------------------------------------

// Packs one NR-column panel of op(B) stored transposed, (N, K): column j of op(B) is row j
// of B, so every full group of T columns × T k (T = Isa::kTransposeBlock: 8 with AVX, 4 with
// NEON) is transposed in registers and the rest is copied element by element (zero past column
// n). Rows of the panel are NR floats apart; the first `width` of them are written (NR, or one
// vector for the narrow tile, which never reads the rest).
template <class Isa>
void pack_b_panel_transposed(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 n, float* panel,
                             i64 width = kNR<Isa>) {
    constexpr i64 kNr = kNR<Isa>, kT = Isa::kTransposeBlock;
    const float* src = g.B + j0 * g.ldb + k0;
    const i64 full = n - n % kT;  // columns in whole groups of T
    i64 k = 0;
    for (; k + kT <= kc; k += kT) {
        for (i64 c = 0; c < full; c += kT)
            Isa::template transpose_block<kNr>(src + c * g.ldb + k, g.ldb, panel + k * kNr + c);
        for (i64 kk = k; kk < k + kT; ++kk)
            for (i64 c = full; c < width; ++c) panel[kk * kNr + c] = c < n ? src[c * g.ldb + kk] : 0.0f;
    }
    for (; k < kc; ++k)
        for (i64 c = 0; c < width; ++c) panel[k * kNr + c] = c < n ? src[c * g.ldb + k] : 0.0f;
}

// Packs one NR-column panel of op(B) stored as (K, N): each k contributes NR contiguous
// floats.
template <class Isa>
void pack_b_panel(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 n, float* panel) {
    constexpr i64 kNr = kNR<Isa>;
    const float* src = g.B + k0 * g.ldb + j0;
    for (i64 k = 0; k < kc; ++k, src += g.ldb, panel += kNr) {
        if (n == kNr) {
            Isa::store_aligned(panel, Isa::load(src));
            Isa::store_aligned(panel + Isa::kLanes, Isa::load(src + Isa::kLanes));
        } else {
            for (i64 c = 0; c < kNr; ++c) panel[c] = c < n ? src[c] : 0.0f;
        }
    }
}

// Copies columns [j0, j0+nc) × rows [k0, k0+kc) of op(B) into NR-column panels of kc×NR
// floats (element (k, c) at panel[k·NR + c]): one NR-float row per k step of the
// micro-kernel.
template <class Isa>
void pack_b(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 nc, float* out) {
    constexpr i64 kNr = kNR<Isa>;
    if (g.trans_b) {
        for (i64 jp = 0; jp < nc; jp += kNr) pack_b_panel_transposed<Isa>(g, k0, kc, j0 + jp, imin(kNr, nc - jp), out + jp * kc);
        return;
    }
    // B stored (K, N): row k of B feeds every panel at step k, so — as in pack_a_transposed — k
    // runs outside and B is read row by row, sequentially. A last panel narrower than NR is padded.
    const i64 full = nc - nc % kNr;
    const float* src = g.B + k0 * g.ldb + j0;
    for (i64 k = 0; k < kc; ++k, src += g.ldb)
        for (i64 jp = 0; jp < full; jp += kNr) {
            float* dst = out + jp * kc + k * kNr;
            Isa::store_aligned(dst, Isa::load(src + jp));
            Isa::store_aligned(dst + Isa::kLanes, Isa::load(src + jp + Isa::kLanes));
        }
    if (full < nc) pack_b_panel<Isa>(g, k0, kc, j0 + full, nc - full, out + full * kc);
}

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
