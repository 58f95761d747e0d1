// Lab 4: the matrix multiply. Your file: replace each `throw NotImplemented(...)` with your code,
// then run `build/tutorials/labs/grade 4` (correctness first; then it measures your speed).
// README.md has the contract, the blocking scheme and the register tile.
#include "matmul.hpp"

#include <algorithm>
#include <vector>

namespace lab {

void matmul_naive(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                  std::int64_t ldc) {
    // For every (i, j): s = Σ_k op(A)(i, k) · op(B)(k, j), then C(i, j) = α·s + β·C(i, j)
    // (and just α·s when β = 0: never read C then).
    // op(A)(i, k) is A[i*lda + k], or A[k*lda + i] when trans_a.
    throw NotImplemented("matmul_naive");
}

void matmul_fast(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc) {
    // 1. Scale C by β once (set it to 0 when β = 0).
    // 2. For blocks of K (KC at a time) and of M (MC) and N (NC): pack op(A) and op(B) blocks into
    //    contiguous buffers, in the order the register tile reads them (zero-padded to whole tiles).
    // 3. For each MR × NR tile of C: accumulate Σ_k over the block in MR·NR local floats, then add
    //    α times them into C — only the rows and columns that exist (edge tiles).
    throw NotImplemented("matmul_fast");
}

}  // namespace lab
