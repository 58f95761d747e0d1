/// \file
/// \brief General matrix multiply (GEMM): the one kernel every linear layer and attention product runs on.
///
/// This header is the whole interface between qkv's tensors and its fastest loops. A reader learns
/// here the BLAS-style contract \f$ C \leftarrow \alpha\,\mathrm{op}(A)\,\mathrm{op}(B) + \beta\,C \f$
/// on raw row-major pointers with leading dimensions, why transposed operands are flags rather than
/// copies (backward needs \f$ dA = dC\,B^\top \f$ and \f$ dB = A^\top dC \f$), and how the fast
/// path (AVX-512 or AVX2 on x86-64, NEON on AArch64) is chosen at run time with a portable
/// reference path always available.
/// Kernels know nothing of tensors: only pointers, sizes and strides.
#pragma once

#include <cstdint>

namespace qkv::kernels {

/// Which implementation `gemm` runs.
enum class GemmBackend {
    reference,  ///< portable C++: the reference loops of gemm_reference.cpp, row-wise (gemm_rowwise)
    avx2,       ///< the packed, blocked, register-tiled AVX2/FMA kernel in gemm_avx2.cpp
    avx512,     ///< the same algorithm on 512-bit vectors (6×32 tiles, 12×16 for products at
                ///< most 16 columns wide), in gemm_avx512.cpp
    neon,       ///< the same algorithm on AArch64's 128-bit Advanced SIMD vectors (12×8 tiles),
                ///< in gemm_neon.cpp; bit-identical to avx2 and avx512
};

/// \brief \f$ C \leftarrow \alpha\,\mathrm{op}(A)\,\mathrm{op}(B) + \beta\,C \f$ in float32, row-major.
///
/// \f$\mathrm{op}(A)\f$ is (M, K): if \p trans_a is false, A is stored as M rows of K with row stride
/// \p lda (lda ≥ K); if true, A is stored as K rows of M (lda ≥ M) and used transposed. Likewise
/// \f$\mathrm{op}(B)\f$ is (K, N). C is (M, N) with row stride \p ldc ≥ N.
/// As in BLAS, when \p beta is 0 the old contents of C are never read (NaNs in C do not leak);
/// with \p beta = 1 the product is accumulated into C (how backward adds gradients in place).
/// K = 0 or \p alpha = 0 give \f$ C \leftarrow \beta C \f$ without reading A or B.
///
/// Runs on the backend gemm_backend() names. The SIMD backends (AVX2, AVX-512, NEON) return
/// bit-identical results: each element of C is one fused multiply-add chain over k, in order, cut
/// into blocks of 384 at the same places, and written back alike (NaN payloads aside). The
/// reference backend rounds differently (separate multiply and add). On the SIMD backends, products of more than about
/// 4 MFLOP (2·M·N·K; roughly 128³) are split between qkv::num_threads() threads; smaller ones,
/// and every call made from inside a qkv::parallel_for, stay on the calling thread.
/// Bad sizes or strides (negative sizes, ld smaller than the stored row, null pointers with a
/// non-empty matrix) throw qkv::Error before any memory is touched. C must not overlap A or B.
/// \param trans_a use A transposed
/// \param trans_b use B transposed
/// \param M rows of op(A) and C
/// \param N columns of op(B) and C
/// \param K columns of op(A), rows of op(B)
/// \param alpha scale of the product
/// \param A first operand
/// \param lda row stride of A as stored
/// \param B second operand
/// \param ldb row stride of B as stored
/// \param beta scale of the old C
/// \param C result, (M, N)
/// \param ldc row stride of C
/// \param bias optional row of N values that takes the place of the old C in every row:
/// \f$ C_{ij} \leftarrow \alpha\,(\mathrm{op}(A)\,\mathrm{op}(B))_{ij} + \mathrm{bias}_j \f$, added as
/// each tile is written (a linear layer's bias, without first copying it into every row of C).
/// Needs \p beta = 0 (qkv::Error otherwise).
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc, const float* bias = nullptr);

/// \brief Work done on each finished block of C while it is still in the cache: the fused
/// activation of a linear layer (ops' linear_gelu). Writing C and then reading all of it back for
/// an elementwise pass costs a trip through memory when C is larger than the cache; applied to
/// each block as soon as its last K step is written, the pass reads C from L1 instead.
struct GemmEpilogue {
    /// Called with `rows` × `cols` final elements of C from `c` on (rows `ldc` apart), once for
    /// every element of C, possibly from several threads at once (on disjoint blocks). It may
    /// rewrite them in place; it finds its own data for the same elements from `c`'s distance to
    /// the start of C.
    void (*apply)(const void* ctx, float* c, std::int64_t ldc, std::int64_t rows, std::int64_t cols) = nullptr;
    const void* ctx = nullptr;  ///< passed to apply
};

/// \brief gemm() followed by \p epilogue on every element of C, applied block by block as the
/// blocks are finished (on the SIMD backends) or to all of C at the end (reference backend). The
/// results are those of the two steps done one after the other, bit for bit.
/// \param trans_a,trans_b,M,N,K,alpha,A,lda,B,ldb,beta,C,ldc,bias as for gemm()
/// \param epilogue what to do with each finished block of C
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc, const float* bias, const GemmEpilogue& epilogue);

/// \brief The same contract in float64. Always runs the reference path: f64 is for exact
/// gradient checks, not for speed.
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands
/// \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C result, (M, N)
/// \param bias optional row of N values in place of the old C (needs beta = 0)
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
          const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C,
          std::int64_t ldc, const double* bias = nullptr);

/// \brief A batch of independent GEMMs with the same shapes: for b in [0, batch),
/// \f$ C_b \leftarrow \alpha\,\mathrm{op}(A_b)\,\mathrm{op}(B_b) + \beta\,C_b \f$ where
/// \f$ A_b = A + b\cdot\mathrm{stride\_a} \f$ (and likewise B, C).
/// A stride of 0 reuses the same matrix for every batch entry (broadcasting).
/// Batches of small products (one attention head each, say) are spread over the threads one
/// product per task; batches of large products run in turn, each on all threads.
/// Other parameters as in gemm().
/// \param trans_a,trans_b,M,N,K,alpha,A,lda,B,ldb,beta,C,ldc as in gemm(), for each product
/// \param batch number of products
/// \param stride_a elements between consecutive A matrices
/// \param stride_b elements between consecutive B matrices
/// \param stride_c elements between consecutive C matrices (must not make C matrices overlap)
void gemm_batched(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                  float alpha, const float* A, std::int64_t lda, std::int64_t stride_a, const float* B,
                  std::int64_t ldb, std::int64_t stride_b, float beta, float* C, std::int64_t ldc,
                  std::int64_t stride_c, std::int64_t batch);

/// \brief Batched GEMM in float64 (reference path). See the float overload.
/// \param trans_a,trans_b use each A, B transposed
/// \param M,N,K each op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the products and of the old C
/// \param A,B the first matrices of the operands
/// \param lda,ldb,ldc row strides of each A, B and C as stored
/// \param stride_a,stride_b,stride_c elements between consecutive A, B and C matrices (0 for A or B
/// broadcasts one matrix; C matrices must not overlap)
/// \param C the first result matrix, each (M, N)
/// \param batch number of products
void gemm_batched(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                  double alpha, const double* A, std::int64_t lda, std::int64_t stride_a,
                  const double* B, std::int64_t ldb, std::int64_t stride_b, double beta, double* C,
                  std::int64_t ldc, std::int64_t stride_c, std::int64_t batch);

/// \brief The plain triple loop: the algorithmic reference every other path is tested against.
/// Same contract as gemm().
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands
/// \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C result, (M, N)
void gemm_reference(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                    float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                    float beta, float* C, std::int64_t ldc);

/// \brief The reference loop in float64. Same contract as gemm().
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands
/// \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C result, (M, N)
void gemm_reference(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                    double alpha, const double* A, std::int64_t lda, const double* B, std::int64_t ldb,
                    double beta, double* C, std::int64_t ldc);

/// \brief gemm_reference()'s sums in its order, bit for bit, with the loops turned (i-k-j) so the
/// innermost one walks rows: vectorisable, cache-friendly, and split over threads by rows of C.
/// What float64 products and the `reference` backend run. Same contract as gemm().
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands
/// \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C result, (M, N)
void gemm_rowwise(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                  float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                  float beta, float* C, std::int64_t ldc);

/// \brief gemm_rowwise() in float64. Same contract as gemm().
/// \param trans_a,trans_b use A, B transposed
/// \param M,N,K op(A) is (M, K), op(B) is (K, N), C is (M, N)
/// \param alpha,beta scales of the product and of the old C
/// \param A,B the operands
/// \param lda,ldb,ldc row strides of A, B and C as stored
/// \param C result, (M, N)
void gemm_rowwise(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                  double alpha, const double* A, std::int64_t lda, const double* B, std::int64_t ldb,
                  double beta, double* C, std::int64_t ldc);

/// \brief The backend gemm() uses now. Chosen on first use, by CPU: on x86-64 `avx512` when the CPU
/// has AVX-512F (and AVX2+FMA), else `avx2` when it has AVX2 and FMA; on AArch64 `neon` (always
/// present there); else `reference`. Unless the environment variable `QKV_GEMM` says otherwise:
/// `reference` forces the portable path, `avx2`, `avx512` or `neon` insists on that kernel
/// (qkv::Error if the CPU or the build lacks it), `auto` or unset picks by CPU; any other value
/// throws qkv::Error.
/// \return the backend in use
GemmBackend gemm_backend();

/// \brief Force a backend (tests and the matmul tutorial compare them in one binary).
/// Throws qkv::Error when asking for a SIMD backend the CPU (or the build) lacks.
/// \param backend the backend to use from now on
void set_gemm_backend(GemmBackend backend);

/// \brief True when this CPU supports AVX2 and FMA (and the binary was built with the AVX2 kernel).
/// \return whether the AVX2 backend can run here
bool cpu_has_avx2_fma();

/// \brief Whether this CPU supports AVX-512F, AVX2 and FMA (and the binary was built with the
/// AVX-512 kernel).
/// \return true when GemmBackend::avx512 can run
bool cpu_has_avx512();

/// \brief Whether the NEON kernel can run: true on AArch64 (where Advanced SIMD is part of every
/// CPU) when the binary was built with it, false elsewhere.
/// \return true when GemmBackend::neon can run
bool cpu_has_neon();

/// \brief The backend's name as `QKV_GEMM` spells it: "reference", "avx2", "avx512" or "neon".
/// \param backend a backend
/// \return its name (a static string)
const char* gemm_backend_name(GemmBackend backend);

/// \brief Whether \p backend can run on this CPU and build (reference always can).
/// \param backend a backend
/// \return true when set_gemm_backend(backend) would succeed
bool gemm_backend_available(GemmBackend backend);

}  // namespace qkv::kernels
