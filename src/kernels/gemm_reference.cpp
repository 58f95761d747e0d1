/// \file
/// \brief The reference GEMM: three nested loops anyone can check by hand.
///
/// This is the algorithmic definition \f$ C_{ij} \leftarrow \alpha \sum_k \mathrm{op}(A)_{ik}
/// \mathrm{op}(B)_{kj} + \beta C_{ij} \f$, written for clarity, not speed. It runs on machines
/// without AVX2, for float64, and in tests as the yardstick for the fast kernel.
#include "qkv/kernels/gemm.hpp"

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

}  // namespace

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
