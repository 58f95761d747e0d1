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

#include "detail.hpp"
#include "qkv/ops.hpp"
#include "qkv/parallel.hpp"

namespace qkv {
using namespace detail;

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
            for (std::int64_t r = lo; r < hi; ++r) {
                const T* row = px + r * C;
                T mu = 0, var = 0;
                for (std::int64_t i = 0; i < C; ++i) mu += row[i];
                mu /= T(C);
                for (std::int64_t i = 0; i < C; ++i) var += (row[i] - mu) * (row[i] - mu);
                const T rstd = T(1) / std::sqrt(var / T(C) + T(eps));
                for (std::int64_t i = 0; i < C; ++i) py[r * C + i] = (row[i] - mu) * rstd * pg[i] + pb[i];
                ps[2 * r] = mu;
                ps[2 * r + 1] = rstd;
            }
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
                for (std::int64_t r = lo; r < hi; ++r) {
                    const T mu = ps[2 * r], rstd = ps[2 * r + 1];
                    const T* row = px + r * C;
                    const T* drow = pdy + r * C;
                    T mean_g = 0, mean_gx = 0;  // (1/C)Σ g_j and (1/C)Σ g_j·x̂_j
                    for (std::int64_t i = 0; i < C; ++i) {
                        const T g = pg[i] * drow[i];
                        mean_g += g;
                        mean_gx += g * (row[i] - mu) * rstd;
                    }
                    mean_g /= T(C);
                    mean_gx /= T(C);
                    T* pdx = pdx0 + r * C;
                    for (std::int64_t i = 0; i < C; ++i) {
                        const T xhat = (row[i] - mu) * rstd;
                        const T g = rstd * (pg[i] * drow[i] - mean_g - xhat * mean_gx);
                        pdx[i] = add_x ? pdx[i] + g : g;
                    }
                }
            });
            // dγ and dβ sum over rows: split the columns between threads instead (no races).
            T* pdgamma = dgamma ? dgamma->data<T>() : nullptr;
            T* pdbeta = dbeta ? dbeta->data<T>() : nullptr;
            if (pdgamma || pdbeta) parallel_for(0, C, 16, [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t i = lo; i < hi; ++i) {  // fresh buffers start from zero
                    if (pdgamma && !add_g) pdgamma[i] = T(0);
                    if (pdbeta && !add_b) pdbeta[i] = T(0);
                }
                for (std::int64_t r = 0; r < R; ++r) {
                    const T mu = ps[2 * r], rstd = ps[2 * r + 1];
                    const T* drow = pdy + r * C;
                    const T* row = px + r * C;
                    if (pdgamma)
                        for (std::int64_t i = lo; i < hi; ++i) pdgamma[i] += drow[i] * (row[i] - mu) * rstd;
                    if (pdbeta)
                        for (std::int64_t i = lo; i < hi; ++i) pdbeta[i] += drow[i];
                }
            });
        });
    });
}

}  // namespace qkv
