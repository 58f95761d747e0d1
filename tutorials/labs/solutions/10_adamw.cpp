// SPOILER: the reference solution of lab 10 (AdamW). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "10_adamw/adamw.hpp"

#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

void adamw_step(qkv::Tensor& param, const qkv::Tensor& grad, AdamWState& state, const AdamWHyper& h) {
    if (!state.m.defined()) {
        state.m = qkv::zeros(param.shape(), qkv::f64);
        state.v = qkv::zeros(param.shape(), qkv::f64);
    }
    state.t += 1;
    // m and v start at 0, so early on they underestimate the gradient's mean and mean square by the
    // factors 1 − β^t; dividing by them removes that bias (it fades as β^t → 0).
    const double t = double(state.t);
    const double bc1 = mutant("no_bias_correction") ? 1.0 : 1.0 - std::pow(h.beta1, t);
    const double bc2 = mutant("no_bias_correction") ? 1.0 : 1.0 - std::pow(h.beta2, t);
    // Decoupled weight decay: shrink θ directly, apart from the adaptive step (Loshchilov & Hutter).
    const double shrink = mutant("decay_without_lr") ? 1.0 - h.weight_decay : 1.0 - h.lr * h.weight_decay;
    double* p = param.data<double>();
    const double* g = grad.data<double>();
    double *m = state.m.data<double>(), *v = state.v.data<double>();
    for (std::int64_t i = 0; i < param.numel(); ++i) {
        double gi = g[i];
        if (mutant("coupled_decay")) gi += h.weight_decay * p[i];  // Adam's L2 penalty, not AdamW's
        else p[i] *= shrink;
        m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
        v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
        p[i] -= h.lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + h.eps);
    }
}

}  // namespace lab
