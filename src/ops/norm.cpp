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
/// Only μ and r per row are kept from the forward; \f$ \hat x \f$ is recomputed. The row loops
/// are in kernels/layer_norm.cpp.
#include "kernels/layer_norm.hpp"
#include "ops/op_detail.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

// -------------------------------------------------------------------------------------------------
// layer_norm   y = (x − μ)·r·γ + β           dx = r·(g − mean(g) − x̂·mean(g·x̂)),  g = γ·dy
static const OpDef kLayerNorm{"layer_norm"};
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
    detail::OpScope profile(kLayerNorm);  // the profiler's hook: one branch when off
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
    const std::int64_t grain = rows_per_chunk(C);
    visit_float(x.dtype(), op, [&]<class T>(T) {
        const T* px = x.data<T>();
        const T* pg = gamma.data<T>();
        const T* pb = beta.data<T>();
        T* py = y.data<T>();
        T* ps = stats.data<T>();
        parallel_for(0, R, grain, [&](std::int64_t lo, std::int64_t hi) {
            kernels::layer_norm_rows(px + lo * C, pg, pb, py + lo * C, ps + 2 * lo, hi - lo, C, T(eps));
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
                kernels::layer_norm_rows_backward(px + lo * C, pg, pdy + lo * C, ps + 2 * lo, pdx0 + lo * C, hi - lo, C,
                                                  add_x);
            });
            // dγ and dβ sum over rows: split the columns between threads instead (no races).
            T* pdgamma = dgamma ? dgamma->data<T>() : nullptr;
            T* pdbeta = dbeta ? dbeta->data<T>() : nullptr;
            if (pdgamma || pdbeta) parallel_for(0, C, 16, [&](std::int64_t lo, std::int64_t hi) {
                kernels::layer_norm_param_grads(px, pdy, ps, R, C, lo, hi, pdgamma, add_g, pdbeta, add_b);
            });
        });
    });
}

}  // namespace qkv
