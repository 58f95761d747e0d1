/// \file
/// \brief softmax and log_softmax: fused forward and hand-derived backward.
///
/// softmax turns scores into probabilities: \f$ y_i = e^{x_i} / \sum_j e^{x_j} \f$. Computed
/// literally, \f$ e^{x} \f$ overflows for x > 88 in float32, so we subtract the row maximum m first;
/// the ratio is unchanged because the \f$ e^{-m} \f$ factors cancel.
///
/// Its Jacobian is \f$ \partial y_i/\partial x_k = y_i(\delta_{ik} - y_k) \f$, so the
/// vector–Jacobian product collapses to one dot product per row:
/// \f[ \frac{\partial L}{\partial x_k} = \sum_i \frac{\partial L}{\partial y_i} y_i(\delta_{ik} - y_k)
///     = y_k\Big(\frac{\partial L}{\partial y_k} - \sum_i \frac{\partial L}{\partial y_i} y_i\Big). \f]
/// For \f$ y = \log\mathrm{softmax}(x) = x - \log\sum_j e^{x_j} \f$ the Jacobian is
/// \f$ \delta_{ik} - \mathrm{softmax}(x)_k \f$, giving
/// \f$ \partial L/\partial x_k = \partial L/\partial y_k - \mathrm{softmax}(x)_k \sum_i \partial L/\partial y_i \f$.
/// Composing softmax from exp, sum and div gives the same numbers with three stored
/// intermediates; the tests check that both agree.
#include <algorithm>
#include <cmath>
#include <limits>

#include "detail.hpp"
#include "vec.hpp"
#include "qkv/ops.hpp"
#include "qkv/parallel.hpp"

namespace qkv {
using namespace detail;

namespace {

// softmax:      dx_k += y_k (dy_k − Σᵢ dyᵢ yᵢ)
// log_softmax:  dx_k += dy_k − e^{y_k} Σᵢ dyᵢ
template <class T>
void softmax_fibre_backward(const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t stride, bool log_space) {
    T dot = 0;
    for (std::int64_t k = 0; k < n; ++k) dot += log_space ? dy[k * stride] : dy[k * stride] * y[k * stride];
    for (std::int64_t k = 0; k < n; ++k) {
        const std::int64_t j = k * stride;
        dx[j] += log_space ? dy[j] - std::exp(y[j]) * dot : y[j] * (dy[j] - dot);
    }
}

// Fibres per thread chunk: enough that a chunk holds ~8k elements.
std::int64_t fibre_grain(std::int64_t n) { return std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(n, 1)); }

Tensor softmax_impl(const OpDef& op, const Tensor& x, std::int64_t dim, bool log_space) {
    check_float_tensor(op.name, x);
    const auto d = normalize_dim(op.name, dim, x.dim());
    const DimSplit sp = split_at(x.shape(), d);
    Tensor y = empty(x.shape(), x.dtype());
    visit_float(x.dtype(), op.name, [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        parallel_for(0, sp.outer * sp.inner, fibre_grain(sp.n), [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t f = lo; f < hi; ++f) {
                const std::int64_t base = (f / sp.inner) * sp.n * sp.inner + f % sp.inner;
                softmax_fibre(px + base, py + base, sp.n, sp.inner, log_space);
            }
        });
    });
    return record(op, y, {x}, [ys = y.detach(), sp, log_space](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "softmax backward", [&]<class T>(T) {
            parallel_for(0, sp.outer * sp.inner, fibre_grain(sp.n), [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t f = lo; f < hi; ++f) {
                    const std::int64_t base = (f / sp.inner) * sp.n * sp.inner + f % sp.inner;
                    softmax_fibre_backward(ys.data<T>() + base, dy.data<T>() + base, dx->data<T>() + base, sp.n,
                                           sp.inner, log_space);
                }
            });
        });
    });
}

}  // namespace

// The fast f32 rows (vec.hpp) that attention runs on every score row: the same three passes as
// softmax_fibre (max, exponentiate and sum, scale), written so that each pass vectorises and every
// CPU-specific clone gives the same bits (exp_f32, lane_sum).
namespace detail {
QKV_CLONES void softmax_row_f32(float* x, std::int64_t n, const std::uint8_t* blocked) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    const float m = blocked ? lane_max(n, [=](std::int64_t j) { return blocked[j] ? kNegInf : x[j]; })
                            : lane_max(n, [x](std::int64_t j) { return x[j]; });
    if (m == kNegInf) {  // nothing to attend to: zeros, not 0/0
        for (std::int64_t j = 0; j < n; ++j) x[j] = 0.0f;
        return;
    }
    // Exponentiate and sum in one pass (each e^(x_j − m) is stored and added to its partial sum).
    const float s = blocked ? lane_sum(n, [=](std::int64_t j) { return x[j] = blocked[j] ? 0.0f : exp_f32_or_zero(x[j] - m); })
                            : lane_sum(n, [=](std::int64_t j) { return x[j] = exp_f32_or_zero(x[j] - m); });
    const float inv = 1.0f / s;
    for (std::int64_t j = 0; j < n; ++j) x[j] *= inv;
}

// kGroup rows at once, each n long and ld apart: the same three passes, but with the rows' work
// interleaved. A 16- to 64-key attention row is one to four vectors, so one row alone leaves the
// exp polynomial's chain of dependent multiply-adds waiting on itself; four rows give the core
// four independent chains. Each row's arithmetic is exactly softmax_row_f32's.
constexpr std::int64_t kGroup = 4;

// (Always inlined: a function of its own would be compiled once, for the baseline CPU, and the
// AVX-512 and AVX2 clones of softmax_rows_f32 would call that scalar-width copy.)
[[gnu::always_inline]] inline void softmax_row_group_f32(float* x, std::int64_t n, std::int64_t ld) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    float m[kGroup], acc[kGroup][kSumLanes] = {};
    for (std::int64_t g = 0; g < kGroup; ++g) {
        const float* row = x + g * ld;
        m[g] = lane_max(n, [row](std::int64_t j) { return row[j]; });
    }
    // A row with nothing to attend to (m = −∞) is exponentiated around 0 instead — every e^−∞
    // is 0, no −∞ − (−∞) = NaN — and zeroed at the end.
    float shift[kGroup];
    for (std::int64_t g = 0; g < kGroup; ++g) shift[g] = m[g] == kNegInf ? 0.0f : m[g];
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
        const float inv = m[g] == kNegInf ? 0.0f : 1.0f / acc[g][0];
        for (std::int64_t k = 0; k < n; ++k) row[k] *= inv;
    }
}

QKV_CLONES void softmax_rows_f32(float* x, std::int64_t rows, std::int64_t n, std::int64_t ld) {
    std::int64_t r = 0;
    for (; r + kGroup <= rows; r += kGroup) softmax_row_group_f32(x + r * ld, n, ld);
    for (; r < rows; ++r) softmax_row_f32(x + r * ld, n, nullptr);
}

QKV_CLONES void softmax_row_backward_f32(const float* y, const float* dy, float* dx, std::int64_t n,
                                         bool accumulate) {
    const float dot = lane_sum(n, [=](std::int64_t j) { return dy[j] * y[j]; });
    if (accumulate)
        for (std::int64_t j = 0; j < n; ++j) dx[j] += y[j] * (dy[j] - dot);
    else
        for (std::int64_t j = 0; j < n; ++j) dx[j] = y[j] * (dy[j] - dot);
}
}  // namespace detail

// -------------------------------------------------------------------------------------------------
// softmax      y_k = e^{x_k − m} / Σⱼ e^{x_j − m}        dx_k = y_k (dy_k − Σᵢ dyᵢ yᵢ)
static const OpDef kSoftmax{"softmax"};
Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(kSoftmax, x, dim, false); }

// -------------------------------------------------------------------------------------------------
// log_softmax  y_k = x_k − m − log Σⱼ e^{x_j − m}        dx_k = dy_k − softmax_k Σᵢ dyᵢ
static const OpDef kLogSoftmax{"log_softmax"};
Tensor log_softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(kLogSoftmax, x, dim, true); }

}  // namespace qkv
