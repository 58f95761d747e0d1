/// \file
/// \brief The softmax kernels: each formula once, compiled as the reference rows and the fast f32 rows.
///
/// See softmax.hpp for the math. The three templates below — the row maximum and sum, the forward
/// row, the backward row — take `kFast` as a parameter: false gives the readable reference (any
/// dtype, any stride, std::exp, sums left to right), true the vectorised f32 rows (exp_f32, the
/// 16-lane sums of vec.hpp), compiled once per CPU level by QKV_CLONES with the same bits on each.
#include "kernels/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/vec.hpp"

namespace qkv::kernels {
using detail::exp_f32_or_zero;
using detail::fold_lanes;
using detail::kSumLanes;
using detail::lane_max;
using detail::row_max;
using detail::row_sum;

namespace {

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// ---- the pieces that differ between the reference and the fast rows -----------------------------

// e^v: std::exp (reference) or exp_f32_or_zero (fast: no library call, so loops vectorise; exactly
// 0 for v < −87, so e^−∞ = 0 as a masked entry needs).
template <bool kFast, class T>
[[gnu::always_inline]] inline T exp_of(T v) {
    if constexpr (kFast) return exp_f32_or_zero(v);
    else return std::exp(v);
}

// ---- forward -----------------------------------------------------------------------------------

// One row: value(k) is x_k (−∞ for a blocked entry), y_k = y[k·stride] the output.
//   m = max_k value(k)
//   softmax:      y_k = e^{value(k) − m} / Σ_j e^{value(j) − m}
//   log_softmax:  y_k = value(k) − (m + log Σ_j e^{value(j) − m})
template <bool kFast, class T, class Value>
[[gnu::always_inline]] inline void softmax_row(Value value, T* y, std::int64_t n, std::int64_t stride, bool log_space) {
    const T m = row_max<kFast, T>(n, value);
    if (m == kNegInf<T>) {  // nothing to attend to: zeros (log: −∞), not 0/0
        for (std::int64_t k = 0; k < n; ++k) y[k * stride] = log_space ? kNegInf<T> : T(0);
        return;
    }
    if (log_space) {
        const T lse = m + std::log(row_sum<kFast, T>(n, [&](std::int64_t k) { return exp_of<kFast>(value(k) - m); }));
        for (std::int64_t k = 0; k < n; ++k) y[k * stride] = value(k) - lse;
        return;
    }
    // Exponentiate and sum in one pass (each e^{x_k − m} is stored, then scaled by 1/sum).
    const T s = row_sum<kFast, T>(n, [&](std::int64_t k) { return y[k * stride] = exp_of<kFast>(value(k) - m); });
    const T inv = T(1) / s;
    for (std::int64_t k = 0; k < n; ++k) y[k * stride] *= inv;
}

// The row with or without a mask. (Two calls rather than a test of `blocked` inside the loops, so
// the unmasked loops stay free of it.)
template <bool kFast, class T>
[[gnu::always_inline]] inline void softmax_row_masked(const T* x, T* y, std::int64_t n, std::int64_t stride,
                                                      bool log_space, const std::uint8_t* blocked) {
    if (blocked)
        softmax_row<kFast>([=](std::int64_t k) { return blocked[k] ? kNegInf<T> : x[k * stride]; }, y, n, stride,
                           log_space);
    else
        softmax_row<kFast>([=](std::int64_t k) { return x[k * stride]; }, y, n, stride, log_space);
}

// ---- backward ----------------------------------------------------------------------------------

//   softmax:      dx_k (+)= y_k (dy_k − Σ_i dy_i y_i)
//   log_softmax:  dx_k (+)= dy_k − e^{y_k} Σ_i dy_i
template <bool kFast, class T>
[[gnu::always_inline]] inline void softmax_row_backward(const T* y, const T* dy, T* dx, std::int64_t n,
                                                        std::int64_t stride, bool log_space, bool accumulate) {
    const T dot = log_space ? row_sum<kFast, T>(n, [=](std::int64_t k) { return dy[k * stride]; })
                            : row_sum<kFast, T>(n, [=](std::int64_t k) { return dy[k * stride] * y[k * stride]; });
    auto grad = [=](std::int64_t j) { return log_space ? dy[j] - std::exp(y[j]) * dot : y[j] * (dy[j] - dot); };
    if (accumulate)
        for (std::int64_t k = 0; k < n; ++k) dx[k * stride] += grad(k * stride);
    else
        for (std::int64_t k = 0; k < n; ++k) dx[k * stride] = grad(k * stride);
}

}  // namespace

// ---- reference rows ------------------------------------------------------------------------------

void softmax_fibre(const float* x, float* y, std::int64_t n, std::int64_t stride, bool log_space,
                   const std::uint8_t* blocked) {
    softmax_row_masked<false>(x, y, n, stride, log_space, blocked);
}
void softmax_fibre(const double* x, double* y, std::int64_t n, std::int64_t stride, bool log_space,
                   const std::uint8_t* blocked) {
    softmax_row_masked<false>(x, y, n, stride, log_space, blocked);
}

void softmax_fibre_backward(const float* y, const float* dy, float* dx, std::int64_t n, std::int64_t stride,
                            bool log_space, bool accumulate) {
    softmax_row_backward<false>(y, dy, dx, n, stride, log_space, accumulate);
}
void softmax_fibre_backward(const double* y, const double* dy, double* dx, std::int64_t n, std::int64_t stride,
                            bool log_space, bool accumulate) {
    softmax_row_backward<false>(y, dy, dx, n, stride, log_space, accumulate);
}

namespace {
template <class T>
T log_sum_exp_row(const T* x, std::int64_t n) {
    auto value = [x](std::int64_t k) { return x[k]; };
    const T m = row_max<false, T>(n, value);
    if (m == kNegInf<T>) return m;
    return m + std::log(row_sum<false, T>(n, [&](std::int64_t k) { return std::exp(x[k] - m); }));
}
}  // namespace

float log_sum_exp(const float* x, std::int64_t n) { return log_sum_exp_row(x, n); }
double log_sum_exp(const double* x, std::int64_t n) { return log_sum_exp_row(x, n); }

// ---- fast f32 rows ------------------------------------------------------------------------------

QKV_CLONES void softmax_row_f32(float* x, std::int64_t n, const std::uint8_t* blocked) {
    softmax_row_masked<true>(x, x, n, 1, false, blocked);
}

QKV_CLONES void softmax_row_backward_f32(const float* y, const float* dy, float* dx, std::int64_t n,
                                         bool accumulate) {
    softmax_row_backward<true>(y, dy, dx, n, 1, false, accumulate);
}

namespace {
// kGroup rows at once, each n long and ld apart: softmax_row's three passes, with the rows' work
// interleaved. A 16- to 64-key attention row is one to four vectors, so one row alone leaves the
// exp polynomial's chain of dependent multiply-adds waiting on itself; four rows give the core
// four independent chains. Each row's arithmetic is exactly softmax_row_f32's (the tests compare
// the bits).
constexpr std::int64_t kGroup = 4;

// (Always inlined: a function of its own would be compiled once, for the baseline CPU, and the
// AVX-512 and AVX2 clones of softmax_rows_f32 would call that scalar-width copy.)
[[gnu::always_inline]] inline void softmax_row_group_f32(float* x, std::int64_t n, std::int64_t ld) {
    float m[kGroup], acc[kGroup][kSumLanes] = {};
    for (std::int64_t g = 0; g < kGroup; ++g) {
        const float* row = x + g * ld;
        m[g] = lane_max(n, [row](std::int64_t j) { return row[j]; });
    }
    // A row with nothing to attend to (m = −∞) is exponentiated around 0 instead — every e^−∞
    // is 0, no −∞ − (−∞) = NaN — and zeroed at the end.
    float shift[kGroup];
    for (std::int64_t g = 0; g < kGroup; ++g) shift[g] = m[g] == kNegInf<float> ? 0.0f : m[g];
    // Term j of row g goes into acc[g][j mod 16], as in lane_sum.
    std::int64_t j = 0;
    for (; j + kSumLanes <= n; j += kSumLanes)
        for (std::int64_t g = 0; g < kGroup; ++g)
            for (std::int64_t l = 0; l < kSumLanes; ++l) {
                float& v = x[g * ld + j + l];
                v = exp_f32_or_zero(v - shift[g]);
                acc[g][l] += v;
            }
    for (std::int64_t g = 0; g < kGroup; ++g) {
        float* row = x + g * ld;
        for (std::int64_t l = 0; j + l < n; ++l) acc[g][l] += row[j + l] = exp_f32_or_zero(row[j + l] - shift[g]);
        fold_lanes<kSumLanes / 2>(acc[g], [](float a, float b) { return a + b; });
        const float inv = m[g] == kNegInf<float> ? 0.0f : 1.0f / acc[g][0];
        for (std::int64_t k = 0; k < n; ++k) row[k] *= inv;
    }
}
}  // namespace

QKV_CLONES void softmax_rows_f32(float* x, std::int64_t rows, std::int64_t n, std::int64_t ld) {
    std::int64_t r = 0;
    for (; r + kGroup <= rows; r += kGroup) softmax_row_group_f32(x + r * ld, n, ld);
    for (; r < rows; ++r) softmax_row_f32(x + r * ld, n, nullptr);
}

}  // namespace qkv::kernels
