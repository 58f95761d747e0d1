/// \file
/// \brief Private helpers shared by the op files: strides, broadcasting, GEMM with BLAS-legal strides.
///
/// Not installed and not part of the API. Read it to see the plumbing under the elementwise and
/// reduction ops: a shape seen around one dimension, and two broadcast operands walked in step.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/dispatch.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/core/profiler.hpp"
#include "qkv/core/tensor.hpp"
#include "qkv/kernels/gemm.hpp"

namespace qkv::detail {

/// Row-major strides of a contiguous shape.
inline std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
    std::vector<std::int64_t> st(shape.size());
    std::int64_t s = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        st[i] = s;
        s *= shape[i];
    }
    return st;
}

/// A shape seen as (outer, n, inner) around dimension `dim`: reductions and softmax loop this way.
struct DimSplit {
    std::int64_t outer = 1, n = 1, inner = 1;
};
inline DimSplit split_at(const Shape& shape, std::int64_t dim) {
    DimSplit s;
    for (std::int64_t i = 0; i < std::int64_t(shape.size()); ++i) {
        if (i < dim) s.outer *= shape[std::size_t(i)];
        else if (i == dim) s.n = shape[std::size_t(i)];
        else s.inner *= shape[std::size_t(i)];
    }
    return s;
}

// ---- broadcasting -------------------------------------------------------------------------------
// NumPy rule: align shapes at the right; each pair of sizes must be equal or one of them 1; the
// result takes the larger. An operand of size 1 along a dimension is read with stride 0 there, so
// the same element serves every position — that is all broadcasting is.

/// The broadcast shape of several shapes, or a qkv::Error naming the op and the shapes.
Shape broadcast_shapes(const char* op, const std::vector<const Shape*>& shapes);

/// Iteration plan over an output shape for K operands with broadcast strides. Adjacent dimensions
/// that are contiguous for every operand are merged, so the common cases (same shapes, a scalar,
/// a bias along the last dim) become a few long rows.
template <std::size_t K>
struct BroadcastPlan {
    std::vector<std::int64_t> sizes;                      // merged output dims
    std::array<std::vector<std::int64_t>, K> strides;     // per operand, per merged dim (0 = broadcast)
    std::int64_t numel = 1;

    BroadcastPlan(const Shape& out, const std::array<const Shape*, K>& in);

    /// Call f(offsets, n, inner_strides) for every innermost row: offsets[k] is the element offset
    /// of operand k (operand 0 may be the output), n the row length, inner_strides[k] 0 or 1.
    template <class F>
    void for_each_row(F&& f) const;
};

template <std::size_t K>
BroadcastPlan<K>::BroadcastPlan(const Shape& out, const std::array<const Shape*, K>& in) {
    const std::size_t nd = out.size();
    std::array<std::vector<std::int64_t>, K> full;
    for (std::size_t k = 0; k < K; ++k) {
        const Shape& s = *in[k];
        const auto cs = contiguous_strides(s);
        full[k].assign(nd, 0);
        const std::size_t lead = nd - s.size();
        for (std::size_t d = 0; d < s.size(); ++d) full[k][lead + d] = s[d] == 1 ? 0 : cs[d];
    }
    for (std::size_t d = 0; d < nd; ++d) {
        if (out[d] == 1) continue;  // size-1 dims contribute nothing
        bool merge = !sizes.empty();
        for (std::size_t k = 0; k < K && merge; ++k)
            merge = strides[k].back() == full[k][d] * out[d];
        if (merge) {
            sizes.back() *= out[d];
            for (std::size_t k = 0; k < K; ++k) strides[k].back() = full[k][d];
        } else {
            sizes.push_back(out[d]);
            for (std::size_t k = 0; k < K; ++k) strides[k].push_back(full[k][d]);
        }
    }
    if (sizes.empty()) {  // a scalar or all-ones shape: one row of one element
        sizes.push_back(1);
        for (auto& s : strides) s.push_back(0);
    }
    for (auto s : sizes) numel *= s;
}

template <std::size_t K>
template <class F>
void BroadcastPlan<K>::for_each_row(F&& f) const {
    if (numel == 0) return;
    const std::size_t nd = sizes.size();
    const std::int64_t n = sizes.back();
    std::array<std::int64_t, K> inner{};
    for (std::size_t k = 0; k < K; ++k) inner[k] = strides[k].back();
    std::vector<std::int64_t> idx(nd, 0);
    std::array<std::int64_t, K> off{};
    for (;;) {
        f(off, n, inner);
        // Advance the multi-index over the outer dims (odometer style).
        std::size_t d = nd - 1;
        for (;;) {
            if (d == 0) return;
            --d;
            ++idx[d];
            for (std::size_t k = 0; k < K; ++k) off[k] += strides[k][d];
            if (idx[d] < sizes[d]) break;
            for (std::size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * sizes[d];
            idx[d] = 0;
        }
    }
}

// ---- GEMM with BLAS-legal strides ------------------------------------------------------------
// A leading dimension must be ≥ 1 even for an empty matrix (the BLAS rule the kernel enforces).
// Ops compute strides from sizes that may be 0 (K = 0 is a valid matmul), so clamp here; when a
// size is 0 the stride is never used.

template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
          const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc, const T* bias = nullptr) {
    kernels::gemm(ta, tb, M, N, K, alpha, A, std::max<std::int64_t>(lda, 1), B, std::max<std::int64_t>(ldb, 1), beta, C,
                  std::max<std::int64_t>(ldc, 1), bias);
}

template <class T>
void gemm_batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                  std::int64_t lda, std::int64_t sa, const T* B, std::int64_t ldb, std::int64_t sb, T beta, T* C,
                  std::int64_t ldc, std::int64_t sc, std::int64_t batch) {
    kernels::gemm_batched(ta, tb, M, N, K, alpha, A, std::max<std::int64_t>(lda, 1), sa, B,
                          std::max<std::int64_t>(ldb, 1), sb, beta, C, std::max<std::int64_t>(ldc, 1), sc, batch);
}

/// \brief Exact GELU of n values with its slope: y = x·Φ(x), slope = Φ(x) + x·φ(x) — gelu_erf's own
/// loops, in elementwise.cpp (linear_gelu applies them to each finished tile of its product).
/// \p y may be \p x (in place). \param x input \param y output \param slope dy/dx \param n count
void gelu_erf_rows(const float* x, float* y, float* slope, std::int64_t n);
/// \brief The same in f64 (std::erf, for gradient checks). \param x input \param y output
/// \param slope dy/dx \param n count
void gelu_erf_rows(const double* x, double* y, double* slope, std::int64_t n);
/// \brief GELU's backward: dx = dy ⊙ slope, or dx += dy ⊙ slope when \p accumulate (gelu_erf's
/// and linear_gelu's, in elementwise.cpp). \param slope GELU'(h) \param dy upstream gradient
/// \param dx result, dy's shape \param accumulate add into dx instead of overwriting it
void gelu_erf_backward_into(const Tensor& slope, const Tensor& dy, Tensor& dx, bool accumulate);

}  // namespace qkv::detail
