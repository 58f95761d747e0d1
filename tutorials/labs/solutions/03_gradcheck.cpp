// SPOILER: the reference solution of lab 3 (gradient checking). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "03_gradcheck/gradcheck.hpp"

#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

Tensor numeric_gradient(const std::function<double(const Tensor&)>& f, const Tensor& x, double eps) {
    Tensor xp = x.clone();  // perturb a copy: the caller's x is never touched
    Tensor g = qkv::empty(x.shape(), qkv::f64);
    double* p = xp.data<double>();
    const double f0 = mutant("forward_difference") ? f(xp) : 0;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        const double old = p[i];
        p[i] = old + eps;
        const double plus = f(xp);
        if (mutant("forward_difference")) {  // (f(x+ε) − f(x)) / ε: its error is O(ε), not O(ε²)
            g.data<double>()[i] = (plus - f0) / eps;
            p[i] = old;
            continue;
        }
        p[i] = old - eps;
        const double minus = f(xp);
        p[i] = old;  // restore before the next element
        // The O(ε²) error terms of f(x ± ε) cancel: f(x±ε) = f ± εf' + ε²f''/2 ± ε³f'''/6 + ...
        g.data<double>()[i] = (plus - minus) / (2 * eps);
    }
    return g;
}

GradientCheck check_gradient(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, double eps,
                             double atol, double rtol) {
    Tensor xa = x.clone().requires_grad_();
    f(xa).backward();
    const Tensor analytic = xa.grad();
    const Tensor numeric = numeric_gradient(
        [&f](const Tensor& t) {
            qkv::NoGradGuard no_graph;  // plain evaluations: nothing to differentiate
            return f(t).item();
        },
        x, eps);
    GradientCheck r;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        const double a = analytic.data<double>()[i], n = numeric.data<double>()[i];
        // atol covers gradients near 0 (where a relative test divides by ~0); rtol covers large ones.
        double ratio = std::abs(a - n) / (atol + rtol * std::abs(n));
        if (mutant("no_abs")) ratio = (a - n) / (atol + rtol * std::abs(n));
        if (mutant("relative_only")) ratio = std::abs(a - n) / (rtol * std::abs(n));
        if (r.worst < 0 || ratio > r.ratio) r = {ratio <= 1, i, a, n, ratio};
    }
    r.ok = r.ratio <= 1;
    return r;
}

}  // namespace lab
