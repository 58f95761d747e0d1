// SPOILER: the reference solution of lab 4 (the matrix multiply). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
//
// matmul_fast is plain, portable C++: GCC vectorises the register tile's inner loop by itself.
// qkv's own kernel (src/kernels/gemm_avx2.cpp) is the same algorithm with AVX2/AVX-512 intrinsics.
#include "04_matmul/matmul.hpp"

#include <algorithm>
#include <vector>

#include "solutions/mutant.hpp"

namespace lab {

namespace {

// C ← βC on the M×N elements, never reading C when β = 0 (it may hold NaN).
void scale_c(std::int64_t M, std::int64_t N, float beta, float* C, std::int64_t ldc) {
    if (mutant("ignore_beta")) beta = 0;
    for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j)
            C[i * ldc + j] = beta == 0 && !mutant("beta_zero_reads_c") ? 0.0f : beta * C[i * ldc + j];
}

// Element (r, c) of op(X), where X is stored with row stride ld and used transposed if `trans`.
inline float at(const float* X, std::int64_t ld, bool trans, std::int64_t r, std::int64_t c) {
    return trans ? X[c * ld + r] : X[r * ld + c];
}

// The register tile: MR rows × NR columns of C live in MR·NR local floats for a whole K block.
// Each step k reads MR numbers of A and NR of B and does MR·NR multiply-adds: the ratio of
// arithmetic to memory traffic that makes it fast. NR = 8 floats is two SSE or one AVX register.
constexpr std::int64_t MR = 4, NR = 8;
// Blocks: a KC×NR strip of packed B (8 KiB) stays in L1 while the MR-row strips of A stream past;
// the MC×KC block of packed A (64 KiB) stays in L2; NC bounds the packed B panel (L3).
constexpr std::int64_t KC = 256, MC = 64, NC = 1024;

// Pack op(A)[i0:i0+mc, p0:p0+kc] as strips of MR rows, each stored k-major (MR numbers per k),
// zero-padded to whole strips so the tile never needs a special case inside its loop.
void pack_a(const float* A, std::int64_t lda, bool trans, std::int64_t i0, std::int64_t mc, std::int64_t p0,
            std::int64_t kc, float* out) {
    for (std::int64_t s = 0; s < mc; s += MR)
        for (std::int64_t k = 0; k < kc; ++k)
            for (std::int64_t r = 0; r < MR; ++r)
                *out++ = s + r < mc ? at(A, lda, trans, i0 + s + r, p0 + k) : 0.0f;
}

// Pack op(B)[p0:p0+kc, j0:j0+nc] as strips of NR columns, each stored k-major (NR numbers per k).
void pack_b(const float* B, std::int64_t ldb, bool trans, std::int64_t p0, std::int64_t kc, std::int64_t j0,
            std::int64_t nc, float* out) {
    for (std::int64_t s = 0; s < nc; s += NR)
        for (std::int64_t k = 0; k < kc; ++k)
            for (std::int64_t c = 0; c < NR; ++c)
                *out++ = s + c < nc ? at(B, ldb, trans, p0 + k, j0 + s + c) : 0.0f;
}

// C[0:mr, 0:nc] += α · (packed A strip) · (packed B strip), mr ≤ MR and nc ≤ NR at the edges.
void tile(std::int64_t kc, const float* a, const float* b, float alpha, float* C, std::int64_t ldc, std::int64_t mr,
          std::int64_t nr) {
    float acc[MR][NR] = {};
    for (std::int64_t k = 0; k < kc; ++k, a += MR, b += NR)
        for (std::int64_t r = 0; r < MR; ++r)
            for (std::int64_t c = 0; c < NR; ++c) acc[r][c] += a[r] * b[c];
    if (mutant("edge_tiles") && (mr < MR || nr < NR)) return;  // as if every tile were whole
    for (std::int64_t r = 0; r < mr; ++r)  // only the rows and columns that exist
        for (std::int64_t c = 0; c < nr; ++c) C[r * ldc + c] += alpha * acc[r][c];
}

}  // namespace

void matmul_naive(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                  std::int64_t ldc) {
    scale_c(M, N, beta, C, ldc);
    for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) {
            float s = 0;
            for (std::int64_t k = 0; k < K; ++k) s += at(A, lda, trans_a, i, k) * at(B, ldb, trans_b, k, j);
            C[i * ldc + j] += alpha * s;
        }
}

void matmul_fast(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc) {
    scale_c(M, N, beta, C, ldc);  // once; every K block then adds into C
    if (K == 0 || alpha == 0) return;
    std::vector<float> a_pack(std::size_t(MC * KC)), b_pack(std::size_t((NC + NR) * KC));
    for (std::int64_t j0 = 0; j0 < N; j0 += NC) {
        const std::int64_t nc = std::min(NC, N - j0);
        for (std::int64_t p0 = 0; p0 < K; p0 += KC) {
            const std::int64_t kc = std::min(KC, K - p0);
            pack_b(B, ldb, trans_b, p0, kc, j0, nc, b_pack.data());
            for (std::int64_t i0 = 0; i0 < M; i0 += MC) {
                const std::int64_t mc = std::min(MC, M - i0);
                pack_a(A, lda, trans_a, i0, mc, p0, kc, a_pack.data());
                for (std::int64_t jr = 0; jr < nc; jr += NR)
                    for (std::int64_t ir = 0; ir < mc; ir += MR)
                        tile(kc, a_pack.data() + ir * kc, b_pack.data() + jr * kc, alpha, C + (i0 + ir) * ldc + j0 + jr,
                             ldc, std::min(MR, mc - ir), std::min(NR, nc - jr));
            }
        }
    }
}

}  // namespace lab
