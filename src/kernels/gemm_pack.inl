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
/// 8×8 register transposes where a panel's rows are columns of the stored matrix.
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// ---- register transposes -----------------------------------------------------------------------

// Transposes the 8×8 block held in r0..r7 (row i in ri) in place: afterwards ri holds column
// i. The classic unpack/shuffle/permute sequence, 24 instructions for 64 floats. Written with
// AVX (256-bit) intrinsics, which every ISA this file is compiled for has.
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                       __m256& r7) {
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
// stride NR (a B panel).
template <class Isa>
void transpose_8x8(const float* src, i64 ld, float* dst) {
    constexpr i64 kNr = kNR<Isa>;
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
    _mm256_store_ps(dst + 0 * kNr, r0);
    _mm256_store_ps(dst + 1 * kNr, r1);
    _mm256_store_ps(dst + 2 * kNr, r2);
    _mm256_store_ps(dst + 3 * kNr, r3);
    _mm256_store_ps(dst + 4 * kNr, r4);
    _mm256_store_ps(dst + 5 * kNr, r5);
    _mm256_store_ps(dst + 6 * kNr, r6);
    _mm256_store_ps(dst + 7 * kNr, r7);
}

// Packs 8 k-steps of a full 6-row A panel from A stored (M, K): the 6 rows × 8 columns are
// transposed in registers (rows 6 and 7 of the 8×8 block repeat row 5 and are discarded),
// then each k-step's 6 floats are written with one 8-float store at dst + k·6 whose last two
// floats the next store overwrites. The final store of a panel, which would run past its end,
// writes exactly 6 floats (`last`).
inline void pack_a_6x8(const float* src, i64 ld, float* dst, bool last) {
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

// ---- A: MR-row panels ----------------------------------------------------------------------------

// pack_a for A stored (K, M), used transposed: row k of A holds, side by side, the mc values
// every panel of the block needs at step k. So k runs outside and the panels inside: A is
// read row after row, sequentially, and each full panel gets its 6 floats per k as one
// 16-byte and one 8-byte copy. (Panel by panel instead, every k would start a new cache line
// of A, 4·lda bytes from the last, and the dW = dYᵀ·X products spent a quarter of their
// packing time waiting for them.) A partial last panel is zero-padded.
inline void pack_a_transposed(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
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
inline void pack_a(const GemmF32& g, i64 i0, i64 mc, i64 k0, i64 kc, float* out) {
    if (g.trans_a) return pack_a_transposed(g, i0, mc, k0, kc, out);
    for (i64 ip = 0; ip < mc; ip += kMR) {
        const i64 m = imin(kMR, mc - ip);
        float* panel = out + ip * kc;
        if (m == kMR) {
            // A is stored (M, K), a full panel: 6 rows × 8 k at a time through a register
            // transpose, the last k < 8 one by one.
            const float* src = g.A + (i0 + ip) * g.lda + k0;
            const i64 k8 = kc - kc % 8;
            for (i64 k = 0; k < k8; k += 8) pack_a_6x8(src + k, g.lda, panel + k * kMR, k + 8 == kc);
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

// ---- B: NR-column panels -------------------------------------------------------------------------

// Packs one NR-column panel of op(B) stored transposed, (N, K): column j of op(B) is row j
// of B, so every full group of 8 columns × 8 k is transposed in registers and the rest is
// copied element by element (zero past column n). Rows of the panel are NR floats apart;
// the first `width` of them are written (NR, or one vector for the narrow tile, which
// never reads the rest).
template <class Isa>
void pack_b_panel_transposed(const GemmF32& g, i64 k0, i64 kc, i64 j0, i64 n, float* panel,
                             i64 width = kNR<Isa>) {
    constexpr i64 kNr = kNR<Isa>;
    const float* src = g.B + j0 * g.ldb + k0;
    const i64 full = n - n % 8;  // columns in whole groups of 8
    i64 k = 0;
    for (; k + 8 <= kc; k += 8) {
        for (i64 c = 0; c < full; c += 8) transpose_8x8<Isa>(src + c * g.ldb + k, g.ldb, panel + k * kNr + c);
        for (i64 kk = k; kk < k + 8; ++kk)
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
