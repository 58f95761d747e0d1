/// \file
/// \brief The reference GEMM: three nested loops anyone can check by hand.
///
/// This is the algorithmic definition \f$ C_{ij} \leftarrow \alpha \sum_k \mathrm{op}(A)_{ik}
/// \mathrm{op}(B)_{kj} + \beta C_{ij} \f$, written for clarity, not speed. It runs on machines
/// without AVX2, for float64, and in tests as the yardstick for the fast kernel.
///
/// gemm_rowwise() below computes the very same sums in the very same order, bit for bit, with the
/// loops turned around so that the innermost one runs along rows (contiguous memory) instead of
/// down a column of B. It is what float64 products and the `reference` backend actually run.
#include <algorithm>
#include <array>
#include <vector>

#include "qkv/kernels/gemm.hpp"
#include "qkv/kernels/parallel.hpp"

namespace qkv::kernels {
namespace {

// Element (i, k) of op(A) and (k, j) of op(B), with transposition folded into the index.
template <class T>
T at(const T* X, std::int64_t ld, bool trans, std::int64_t r, std::int64_t c) {
    return trans ? X[c * ld + r] : X[r * ld + c];
}

template <class T>
void reference(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
               const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
               std::int64_t ldc) {
    for (std::int64_t i = 0; i < M; ++i) {
        for (std::int64_t j = 0; j < N; ++j) {
            T acc = 0;
            for (std::int64_t k = 0; k < K; ++k) acc += at(A, lda, ta, i, k) * at(B, ldb, tb, k, j);
            T& c = C[i * ldc + j];
            // BLAS convention: beta == 0 means "overwrite", so garbage (even NaN) in C is ignored.
            c = beta == T(0) ? alpha * acc : alpha * acc + beta * c;
        }
    }
}

// -------------------------------------------------------------------------------------------------
// The same arithmetic, i-k-j instead of i-j-k.
//
// The triple loop above adds, for each C[i][j], the products op(A)[i][k]·op(B)[k][j] for
// k = 0, 1, …, K−1 into an accumulator that starts at 0. Its inner loop walks op(B) down a column:
// one element per row of B, a new cache line every step, and nothing the compiler can vectorise.
// Here the loop over j is innermost instead: for one row i and one k, the product
// op(A)[i][k]·op(B)[k][j] is added into acc[j] for a strip of consecutive j. Each acc[j] still
// receives exactly the same terms in exactly the same order (k ascending, starting from 0), and
// nothing is fused (the library is built with -ffp-contract=off), so every element comes out
// bit-identical to the triple loop's; the test "the row-wise loops give the reference's bits"
// holds it to that. What changes is the memory access: rows of op(B) and a strip of accumulators
// that stays in L1, which the compiler turns into SIMD loads and multiplies. Rows of C are
// independent, so they are also split between threads; every element is still computed by one
// thread, so the thread count cannot change a bit either.
constexpr std::int64_t kStrip = 256;  // accumulators per strip: 2 KiB of f64, well inside L1

// Below this many flops (2·M·N·K) a second thread costs more than it saves (as in gemm()).
constexpr double kMinFlopsPerThread = 2.0e6;

template <class T>
void rowwise(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
             std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
    // Rows of op(B) must be contiguous: when B is stored transposed, copy op(B) out once (K·N
    // elements, against M·N·K multiply-adds).
    std::vector<T> copy;
    const T* Bk = B;
    std::int64_t ldbk = ldb;
    if (tb) {
        copy.resize(static_cast<std::size_t>(K * N));
        for (std::int64_t k = 0; k < K; ++k)
            for (std::int64_t j = 0; j < N; ++j) copy[static_cast<std::size_t>(k * N + j)] = B[j * ldb + k];
        Bk = copy.data();
        ldbk = N;
    }
    const double flops_per_row = 2.0 * static_cast<double>(N) * static_cast<double>(K);
    const auto grain = static_cast<std::int64_t>(kMinFlopsPerThread / std::max(flops_per_row, 1.0)) + 1;
    parallel_for(0, M, grain, [&](std::int64_t lo, std::int64_t hi) {
        std::array<T, kStrip> acc;
        for (std::int64_t j0 = 0; j0 < N; j0 += kStrip) {
            const std::int64_t nj = std::min(kStrip, N - j0);
            for (std::int64_t i = lo; i < hi; ++i) {
                std::fill_n(acc.begin(), nj, T(0));
                for (std::int64_t k = 0; k < K; ++k) {
                    const T a = at(A, lda, ta, i, k);
                    const T* b = Bk + k * ldbk + j0;
                    for (std::int64_t j = 0; j < nj; ++j) acc[static_cast<std::size_t>(j)] += a * b[j];
                }
                T* c = C + i * ldc + j0;
                for (std::int64_t j = 0; j < nj; ++j) {
                    const T sum = acc[static_cast<std::size_t>(j)];
                    c[j] = beta == T(0) ? alpha * sum : alpha * sum + beta * c[j];
                }
            }
        }
    });
}

}  // namespace

void gemm_rowwise(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                  float* C, std::int64_t ldc) {
    rowwise(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_rowwise(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                  const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
                  double* C, std::int64_t ldc) {
    rowwise(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_reference(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                    const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                    float* C, std::int64_t ldc) {
    reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_reference(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                    const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
                    double* C, std::int64_t ldc) {
    reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace qkv::kernels
