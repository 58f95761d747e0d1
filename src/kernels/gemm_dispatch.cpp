/// \file
/// \brief Chooses the GEMM backend at run time (temporary: reference only until the AVX2 kernel lands).
#include "qkv/error.hpp"
#include "qkv/kernels/gemm.hpp"

namespace qkv::kernels {

GemmBackend gemm_backend() { return GemmBackend::reference; }

void set_gemm_backend(GemmBackend backend) {
    if (backend == GemmBackend::avx2) fail("set_gemm_backend: the AVX2 kernel is not built yet");
}

bool cpu_has_avx2_fma() { return false; }

void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc) {
    gemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
          const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
          double* C, std::int64_t ldc) {
    gemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <class T>
static void batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
                    const T* A, std::int64_t lda, std::int64_t sa, const T* B, std::int64_t ldb,
                    std::int64_t sb, T beta, T* C, std::int64_t ldc, std::int64_t sc,
                    std::int64_t batch) {
    for (std::int64_t b = 0; b < batch; ++b)
        gemm(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc);
}

void gemm_batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, std::int64_t sa, const float* B,
                  std::int64_t ldb, std::int64_t sb, float beta, float* C, std::int64_t ldc,
                  std::int64_t sc, std::int64_t batch) {
    batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

void gemm_batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                  const double* A, std::int64_t lda, std::int64_t sa, const double* B,
                  std::int64_t ldb, std::int64_t sb, double beta, double* C, std::int64_t ldc,
                  std::int64_t sc, std::int64_t batch) {
    batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

}  // namespace qkv::kernels
