/// \file
/// \brief Lab 4: the matrix multiply — first the plain triple loop, then a fast one (packed,
/// cache-blocked, register-tiled) — with the contract of BLAS and qkv::kernels::gemm.
///
/// You write both functions in lab.cpp. The grader checks every element against a float64
/// reference for many shapes (edges included), all four transpose combinations, α, β and leading
/// dimensions; `lab04_speed` then measures both against qkv's kernel.
#pragma once

#include <cstdint>

#include "support/lab.hpp"

namespace lab {

/// \brief \f$ C \leftarrow \alpha\,\mathrm{op}(A)\,\mathrm{op}(B) + \beta\,C \f$ in float32, row-major:
/// the plain triple loop, one dot product per element of C.
///
/// \f$\mathrm{op}(A)\f$ is (M, K): when \p trans_a is false, A is stored as M rows of K numbers, row i
/// starting at `A + i*lda` (lda ≥ K); when true, A is stored as K rows of M and used transposed.
/// Likewise \f$\mathrm{op}(B)\f$ is (K, N). C is M rows of N, row i at `C + i*ldc` (ldc ≥ N); the
/// elements between N and ldc belong to someone else and must not be touched. When \p beta is 0 the
/// old C is not read at all (it may hold NaN); K = 0 or \p alpha = 0 give \f$ C \leftarrow \beta C \f$.
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C the result
void matmul_naive(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                  std::int64_t ldc);

/// \brief The same contract, fast: pack blocks of A and B into contiguous buffers, loop over blocks
/// that fit in cache, and compute C in small register tiles (see README.md).
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C the result
void matmul_fast(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc);

}  // namespace lab
