/// \file
/// \brief The layer-norm kernels: each formula once, compiled for double and (per CPU level) for float.
///
/// See layer_norm.hpp for the math and ops/norm.cpp for its derivation. The templates take the
/// order of their sums from the element type: left to right in double (the exact reference),
/// lane_sum()'s 16 partial sums in float, where they vectorise and round alike on every CPU.
#include "kernels/layer_norm.hpp"

#include <cmath>
#include <type_traits>

#include "kernels/vec.hpp"

namespace qkv::kernels {
using detail::row_sum;

namespace {

template <class T>
constexpr bool kLanes = std::is_same_v<T, float>;

//   μ = (1/C) Σ x_i      r = 1 / √((1/C) Σ (x_i − μ)² + ε)      y_i = (x_i − μ)·r·γ_i + β_i
template <class T>
[[gnu::always_inline]] inline void forward_rows(const T* x, const T* gamma, const T* beta, T* y, T* stats,
                                                std::int64_t rows, std::int64_t C, T eps) {
    for (std::int64_t r = 0; r < rows; ++r, x += C, y += C, stats += 2) {
        const T mu = row_sum<kLanes<T>, T>(C, [x](std::int64_t i) { return x[i]; }) / T(C);
        const T var = row_sum<kLanes<T>, T>(C, [x, mu](std::int64_t i) { return (x[i] - mu) * (x[i] - mu); });
        const T rstd = T(1) / std::sqrt(var / T(C) + eps);
        for (std::int64_t i = 0; i < C; ++i) y[i] = (x[i] - mu) * rstd * gamma[i] + beta[i];
        stats[0] = mu;
        stats[1] = rstd;
    }
}

//   g_i = γ_i·dy_i      dx_i (+)= r·(g_i − (1/C) Σ_j g_j − x̂_i·(1/C) Σ_j g_j·x̂_j)
template <class T>
[[gnu::always_inline]] inline void backward_rows(const T* x, const T* gamma, const T* dy, const T* stats, T* dx,
                                                 std::int64_t rows, std::int64_t C, bool accumulate) {
    for (std::int64_t r = 0; r < rows; ++r, x += C, dy += C, dx += C, stats += 2) {
        const T mu = stats[0], rstd = stats[1];
        const T mean_g = row_sum<kLanes<T>, T>(C, [=](std::int64_t i) { return gamma[i] * dy[i]; }) / T(C);
        const T mean_gx =
            row_sum<kLanes<T>, T>(C, [=](std::int64_t i) { return gamma[i] * dy[i] * (x[i] - mu) * rstd; }) / T(C);
        for (std::int64_t i = 0; i < C; ++i) {
            const T xhat = (x[i] - mu) * rstd;
            const T g = rstd * (gamma[i] * dy[i] - mean_g - xhat * mean_gx);
            dx[i] = accumulate ? dx[i] + g : g;
        }
    }
}

//   dγ_i (+)= Σ_rows dy_i·x̂_i      dβ_i (+)= Σ_rows dy_i        (columns lo … hi−1, rows in order)
template <class T>
[[gnu::always_inline]] inline void param_grads(const T* x, const T* dy, const T* stats, std::int64_t R, std::int64_t C,
                                               std::int64_t lo, std::int64_t hi, T* dgamma, bool add_g, T* dbeta,
                                               bool add_b) {
    for (std::int64_t i = lo; i < hi; ++i) {  // fresh buffers start from zero
        if (dgamma && !add_g) dgamma[i] = T(0);
        if (dbeta && !add_b) dbeta[i] = T(0);
    }
    for (std::int64_t r = 0; r < R; ++r) {
        const T mu = stats[2 * r], rstd = stats[2 * r + 1];
        const T* drow = dy + r * C;
        const T* row = x + r * C;
        if (dgamma)
            for (std::int64_t i = lo; i < hi; ++i) dgamma[i] += drow[i] * (row[i] - mu) * rstd;
        if (dbeta)
            for (std::int64_t i = lo; i < hi; ++i) dbeta[i] += drow[i];
    }
}

}  // namespace

QKV_CLONES void layer_norm_rows(const float* x, const float* gamma, const float* beta, float* y, float* stats,
                                std::int64_t rows, std::int64_t C, float eps) {
    forward_rows(x, gamma, beta, y, stats, rows, C, eps);
}
void layer_norm_rows(const double* x, const double* gamma, const double* beta, double* y, double* stats,
                     std::int64_t rows, std::int64_t C, double eps) {
    forward_rows(x, gamma, beta, y, stats, rows, C, eps);
}

QKV_CLONES void layer_norm_rows_backward(const float* x, const float* gamma, const float* dy, const float* stats,
                                         float* dx, std::int64_t rows, std::int64_t C, bool accumulate) {
    backward_rows(x, gamma, dy, stats, dx, rows, C, accumulate);
}
void layer_norm_rows_backward(const double* x, const double* gamma, const double* dy, const double* stats, double* dx,
                              std::int64_t rows, std::int64_t C, bool accumulate) {
    backward_rows(x, gamma, dy, stats, dx, rows, C, accumulate);
}

QKV_CLONES void layer_norm_param_grads(const float* x, const float* dy, const float* stats, std::int64_t R,
                                       std::int64_t C, std::int64_t lo, std::int64_t hi, float* dgamma, bool add_g,
                                       float* dbeta, bool add_b) {
    param_grads(x, dy, stats, R, C, lo, hi, dgamma, add_g, dbeta, add_b);
}
void layer_norm_param_grads(const double* x, const double* dy, const double* stats, std::int64_t R, std::int64_t C,
                            std::int64_t lo, std::int64_t hi, double* dgamma, bool add_g, double* dbeta, bool add_b) {
    param_grads(x, dy, stats, R, C, lo, hi, dgamma, add_g, dbeta, add_b);
}

}  // namespace qkv::kernels
