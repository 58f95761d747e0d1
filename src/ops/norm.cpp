/// \file
/// \brief Layer normalisation, fused, with its backward derived by hand.
///
/// Per row x of C values: \f$ \mu = \frac1C\sum_i x_i \f$, \f$ \sigma^2 = \frac1C\sum_i (x_i-\mu)^2 \f$,
/// \f$ r = 1/\sqrt{\sigma^2+\epsilon} \f$, \f$ \hat x_i = (x_i-\mu)\,r \f$, \f$ y_i = \gamma_i \hat x_i + \beta_i \f$.
///
/// Backward. With \f$ g_i = \gamma_i\,dy_i \f$ (the gradient reaching \f$ \hat x \f$), and using
/// \f$ \partial\hat x_j/\partial x_i = r(\delta_{ij} - \frac1C - \frac1C\hat x_i\hat x_j) \f$:
/// \f[ dx_i = r\Big(g_i - \frac1C\sum_j g_j - \hat x_i\,\frac1C\sum_j g_j\hat x_j\Big), \qquad
///     d\gamma_i = \sum_{\text{rows}} dy_i\,\hat x_i, \qquad d\beta_i = \sum_{\text{rows}} dy_i. \f]
/// Only μ and r per row are kept from the forward; \f$ \hat x \f$ is recomputed.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "detail.hpp"
#include "vec.hpp"
#include "qkv/ops.hpp"
#include "qkv/parallel.hpp"

namespace qkv {
using namespace detail;

namespace {

// One row forward: y = (x − μ)·r·γ + β; returns (μ, r). The readable version, used for f64.
template <class T>
void layer_norm_row(const T* x, const T* gamma, const T* beta, T* y, std::int64_t C, T eps, T* stats) {
    T mu = 0, var = 0;
    for (std::int64_t i = 0; i < C; ++i) mu += x[i];
    mu /= T(C);
    for (std::int64_t i = 0; i < C; ++i) var += (x[i] - mu) * (x[i] - mu);
    const T rstd = T(1) / std::sqrt(var / T(C) + eps);
    for (std::int64_t i = 0; i < C; ++i) y[i] = (x[i] - mu) * rstd * gamma[i] + beta[i];
    stats[0] = mu;
    stats[1] = rstd;
}

// One row backward: dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = γ·dy, written or added.
template <class T>
void layer_norm_row_backward(const T* x, const T* gamma, const T* dy, const T* stats, T* dx, std::int64_t C,
                             bool accumulate) {
    const T mu = stats[0], rstd = stats[1];
    T mean_g = 0, mean_gx = 0;  // (1/C)Σ g_j and (1/C)Σ g_j·x̂_j
    for (std::int64_t i = 0; i < C; ++i) {
        const T g = gamma[i] * dy[i];
        mean_g += g;
        mean_gx += g * (x[i] - mu) * rstd;
    }
    mean_g /= T(C);
    mean_gx /= T(C);
    for (std::int64_t i = 0; i < C; ++i) {
        const T xhat = (x[i] - mu) * rstd;
        const T g = rstd * (gamma[i] * dy[i] - mean_g - xhat * mean_gx);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

// dγ_i (+)= Σ_rows dy_i·x̂_i and dβ_i (+)= Σ_rows dy_i for the columns i in [lo, hi), rows in order.
// Either output may be null (not needed).
template <class T>
[[gnu::always_inline]] inline void layer_norm_param_grads(const T* x, const T* dy, const T* stats, std::int64_t R,
                                                          std::int64_t C, std::int64_t lo, std::int64_t hi, T* dgamma,
                                                          bool add_g, T* dbeta, bool add_b) {
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

// The same two rows in f32, many rows per call, compiled per CPU level, with sums in lane_sum's
// fixed order (vec.hpp): same formulas as above, and the same bits on every CPU.
QKV_CLONES void layer_norm_rows_f32(const float* x, const float* gamma, const float* beta, float* y,
                                    std::int64_t rows, std::int64_t C, float eps, float* stats) {
    for (std::int64_t r = 0; r < rows; ++r, x += C, y += C, stats += 2) {
        const float mu = lane_sum(C, [x](std::int64_t i) { return x[i]; }) / float(C);
        const float var = lane_sum(C, [x, mu](std::int64_t i) { return (x[i] - mu) * (x[i] - mu); });
        const float rstd = 1.0f / std::sqrt(var / float(C) + eps);
        for (std::int64_t i = 0; i < C; ++i) y[i] = (x[i] - mu) * rstd * gamma[i] + beta[i];
        stats[0] = mu;
        stats[1] = rstd;
    }
}

QKV_CLONES void layer_norm_rows_backward_f32(const float* x, const float* gamma, const float* dy,
                                             const float* stats, float* dx, std::int64_t rows, std::int64_t C,
                                             bool accumulate) {
    for (std::int64_t r = 0; r < rows; ++r, x += C, dy += C, dx += C, stats += 2) {
        const float mu = stats[0], rstd = stats[1];
        const float mean_g = lane_sum(C, [=](std::int64_t i) { return gamma[i] * dy[i]; }) / float(C);
        const float mean_gx =
            lane_sum(C, [=](std::int64_t i) { return gamma[i] * dy[i] * (x[i] - mu) * rstd; }) / float(C);
        for (std::int64_t i = 0; i < C; ++i) {
            const float xhat = (x[i] - mu) * rstd;
            const float g = rstd * (gamma[i] * dy[i] - mean_g - xhat * mean_gx);
            dx[i] = accumulate ? dx[i] + g : g;
        }
    }
}

QKV_CLONES void layer_norm_param_grads_f32(const float* x, const float* dy, const float* stats, std::int64_t R,
                                           std::int64_t C, std::int64_t lo, std::int64_t hi, float* dgamma, bool add_g,
                                           float* dbeta, bool add_b) {
    layer_norm_param_grads(x, dy, stats, R, C, lo, hi, dgamma, add_g, dbeta, add_b);
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// layer_norm   y = (x − μ)·r·γ + β           dx = r·(g − mean(g) − x̂·mean(g·x̂)),  g = γ·dy
static const OpDef kLayerNorm{"layer_norm"};
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
    const char* op = kLayerNorm.name;
    check_float_tensor(op, x, "input");
    check_float_tensor(op, gamma, "gamma");
    check_float_tensor(op, beta, "beta");
    check_same_dtype(op, x, gamma);
    check_same_dtype(op, x, beta);
    if (x.dim() < 1) fail("layer_norm: input must have a feature dimension, got a 0-d tensor");
    const std::int64_t C = x.size(-1), R = C ? x.numel() / C : 0;
    if (gamma.shape() != Shape{C} || beta.shape() != Shape{C})
        fail("layer_norm: gamma {} and beta {} must both be ({}) for input {}", shape_str(gamma.shape()),
             shape_str(beta.shape()), C, shape_str(x.shape()));
    if (!(eps > 0)) fail("layer_norm: eps must be > 0, got {}", eps);
    Tensor y = empty(x.shape(), x.dtype());
    Tensor stats = empty({R, 2}, x.dtype());  // (μ, r) per row
    const std::int64_t grain = std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(C, 1));  // rows per chunk
    visit_float(x.dtype(), op, [&]<class T>(T) {
        const T* px = x.data<T>();
        const T* pg = gamma.data<T>();
        const T* pb = beta.data<T>();
        T* py = y.data<T>();
        T* ps = stats.data<T>();
        parallel_for(0, R, grain, [&](std::int64_t lo, std::int64_t hi) {
            if constexpr (std::is_same_v<T, float>)
                layer_norm_rows_f32(px + lo * C, pg, pb, py + lo * C, hi - lo, C, float(eps), ps + 2 * lo);
            else
                for (std::int64_t r = lo; r < hi; ++r)
                    layer_norm_row(px + r * C, pg, pb, py + r * C, C, T(eps), ps + 2 * r);
        });
    });
    return record(kLayerNorm, y, {x, gamma, beta}, [x, gamma, stats, R, C, grain](const Tensor& dy, BackwardContext& ctx) {
        bool add_x = true, add_g = true, add_b = true;
        Tensor* dx = ctx.grad_overwrite(0, add_x);
        Tensor* dgamma = ctx.grad_overwrite(1, add_g);
        Tensor* dbeta = ctx.grad_overwrite(2, add_b);
        visit_float(dy.dtype(), "layer_norm backward", [&]<class T>(T) {
            const T* px = x.data<T>();
            const T* pg = gamma.data<T>();
            const T* ps = stats.data<T>();
            const T* pdy = dy.data<T>();
            // dx: rows are independent.
            T* pdx0 = dx ? dx->data<T>() : nullptr;
            if (dx) parallel_for(0, R, grain, [&](std::int64_t lo, std::int64_t hi) {
                if constexpr (std::is_same_v<T, float>)
                    layer_norm_rows_backward_f32(px + lo * C, pg, pdy + lo * C, ps + 2 * lo, pdx0 + lo * C, hi - lo, C,
                                                 add_x);
                else
                    for (std::int64_t r = lo; r < hi; ++r)
                        layer_norm_row_backward(px + r * C, pg, pdy + r * C, ps + 2 * r, pdx0 + r * C, C, add_x);
            });
            // dγ and dβ sum over rows: split the columns between threads instead (no races).
            T* pdgamma = dgamma ? dgamma->data<T>() : nullptr;
            T* pdbeta = dbeta ? dbeta->data<T>() : nullptr;
            if (pdgamma || pdbeta) parallel_for(0, C, 16, [&](std::int64_t lo, std::int64_t hi) {
                if constexpr (std::is_same_v<T, float>)
                    layer_norm_param_grads_f32(px, pdy, ps, R, C, lo, hi, pdgamma, add_g, pdbeta, add_b);
                else
                    layer_norm_param_grads(px, pdy, ps, R, C, lo, hi, pdgamma, add_g, pdbeta, add_b);
            });
        });
    });
}

}  // namespace qkv
