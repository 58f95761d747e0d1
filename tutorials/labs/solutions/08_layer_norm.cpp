// SPOILER: the reference solution of lab 8 (layer norm). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "08_layer_norm/layer_norm.hpp"

#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

namespace {

// One row's statistics: the mean and r = 1/√(σ² + ε), σ² the biased variance (divide by C).
struct RowStats {
    double mean, rstd;
};

RowStats stats(const double* x, std::int64_t C, double eps) {
    double mean = 0, var = 0;
    for (std::int64_t j = 0; j < C; ++j) mean += x[j];
    mean /= double(C);
    for (std::int64_t j = 0; j < C; ++j) var += (x[j] - mean) * (x[j] - mean);
    var /= mutant("unbiased_var") ? double(C - 1) : double(C);
    const double rstd = mutant("eps_outside_sqrt") ? 1.0 / (std::sqrt(var) + eps) : 1.0 / std::sqrt(var + eps);
    return {mean, rstd};
}

}  // namespace

Tensor layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
    const std::int64_t R = x.size(0), C = x.size(1);
    Tensor y = qkv::empty({R, C}, qkv::f64);
    const double *g = gamma.data<double>(), *b = beta.data<double>();
    for (std::int64_t r = 0; r < R; ++r) {
        const double* xr = x.data<double>() + r * C;
        double* yr = y.data<double>() + r * C;
        const RowStats s = stats(xr, C, eps);
        for (std::int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - s.mean) * s.rstd * g[j] + b[j];
    }
    return y;
}

LayerNormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, double eps, const Tensor& dy) {
    const std::int64_t R = x.size(0), C = x.size(1);
    LayerNormGrads d{qkv::empty({R, C}, qkv::f64), qkv::zeros({C}, qkv::f64), qkv::zeros({C}, qkv::f64)};
    const double* gam = gamma.data<double>();
    for (std::int64_t r = 0; r < R; ++r) {
        const double *xr = x.data<double>() + r * C, *dyr = dy.data<double>() + r * C;
        double* dxr = d.dx.data<double>() + r * C;
        const RowStats s = stats(xr, C, eps);
        // y = γ x̂ + β: dβ and dγ collect over the rows; g = ∂L/∂x̂ = dy ⊙ γ.
        double mean_g = 0, mean_gx = 0;
        for (std::int64_t j = 0; j < C; ++j) {
            const double xhat = (xr[j] - s.mean) * s.rstd, g = dyr[j] * gam[j];
            d.dbeta.data<double>()[j] += dyr[j];
            d.dgamma.data<double>()[j] += dyr[j] * xhat;
            mean_g += g / double(C);
            mean_gx += g * xhat / double(C);
        }
        // x̂ = (x − μ)·r, and μ and r depend on the whole row: dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)).
        if (mutant("backward_no_mean_terms")) mean_g = mean_gx = 0;
        for (std::int64_t j = 0; j < C; ++j) {
            const double xhat = (xr[j] - s.mean) * s.rstd;
            dxr[j] = s.rstd * (dyr[j] * gam[j] - mean_g - xhat * mean_gx);
        }
    }
    return d;
}

}  // namespace lab
