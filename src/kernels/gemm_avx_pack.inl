/// \file
/// \brief The register transposes with which the AVX2 and AVX-512 traits pack A and B panels.
///
/// Part of the x86 GEMM: included by gemm_avx2.cpp and gemm_avx512.cpp (never by the shared
/// algorithm, which reaches these through the traits' `transpose_block` and `pack_a_block`). A
/// reader learns here how a transposed operand is packed with vector moves: 8 rows of 8 floats
/// are loaded, turned into 8 columns by unpack/shuffle/permute instructions, and stored as 8 rows
/// of a panel. Written with AVX (256-bit) intrinsics, which both x86 files are compiled for.
/// (gemm_neon.cpp does the same with 4×4 transposes.)
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// Transposes the 8×8 block held in r0..r7 (row i in ri) in place: afterwards ri holds column
// i. The classic unpack/shuffle/permute sequence, 24 instructions for 64 floats.
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
// stride kLd (a B panel: kLd = NR, a multiple of 8, so the stores are aligned).
template <std::int64_t kLd>
void avx_transpose_8x8(const float* src, std::int64_t ld, float* dst) {
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
    _mm256_store_ps(dst + 0 * kLd, r0);
    _mm256_store_ps(dst + 1 * kLd, r1);
    _mm256_store_ps(dst + 2 * kLd, r2);
    _mm256_store_ps(dst + 3 * kLd, r3);
    _mm256_store_ps(dst + 4 * kLd, r4);
    _mm256_store_ps(dst + 5 * kLd, r5);
    _mm256_store_ps(dst + 6 * kLd, r6);
    _mm256_store_ps(dst + 7 * kLd, r7);
}

// Packs 8 k-steps of a full 6-row A panel from A stored (M, K): the 6 rows × 8 columns are
// transposed in registers (rows 6 and 7 of the 8×8 block repeat row 5 and are discarded),
// then each k-step's 6 floats are written with one 8-float store at dst + k·6 whose last two
// floats the next store overwrites. The final store of a panel, which would run past its end,
// writes exactly 6 floats (`last`).
inline void avx_pack_a_6x8(const float* src, std::int64_t ld, float* dst, bool last) {
    constexpr std::int64_t kMr = 6;
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = r5, r7 = r5;
    transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
    _mm256_storeu_ps(dst + 0 * kMr, r0);
    _mm256_storeu_ps(dst + 1 * kMr, r1);
    _mm256_storeu_ps(dst + 2 * kMr, r2);
    _mm256_storeu_ps(dst + 3 * kMr, r3);
    _mm256_storeu_ps(dst + 4 * kMr, r4);
    _mm256_storeu_ps(dst + 5 * kMr, r5);
    _mm256_storeu_ps(dst + 6 * kMr, r6);
    if (!last) {
        _mm256_storeu_ps(dst + 7 * kMr, r7);
    } else {  // 4 + 2 floats: nothing past the panel
        _mm_storeu_ps(dst + 7 * kMr, _mm256_castps256_ps128(r7));
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 7 * kMr + 4), _mm256_extractf128_ps(r7, 1));
    }
}

// Copies the 6 floats of one step of k of an A panel (A stored transposed): one 16-byte and one
// 8-byte move.
inline void avx_copy_6(float* dst, const float* src) {
    _mm_storeu_ps(dst, _mm_loadu_ps(src));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4), _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(src + 4)));
}

// The packing members of the AVX2 and AVX-512 traits (both inherit them): 256-bit register
// transposes for a transposed B panel, 8 × 8 at a time; a full A panel 6 rows × 8 steps of k at a
// time; a transposed A one step (6 floats) at a time. See gemm_pack.inl for where they are used.
struct AvxPacking {
    static constexpr std::int64_t kTransposeBlock = 8;
    template <std::int64_t kLd>
    static void transpose_block(const float* src, std::int64_t ld, float* dst) { avx_transpose_8x8<kLd>(src, ld, dst); }
    static constexpr std::int64_t kPackAK = 8;
    static void pack_a_block(const float* src, std::int64_t ld, float* dst, bool last) { avx_pack_a_6x8(src, ld, dst, last); }
    static void copy_a_step(float* dst, const float* src) { avx_copy_6(dst, src); }
};

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
