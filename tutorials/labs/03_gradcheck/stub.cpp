// Lab 3: gradient checking. Your file: replace each `throw NotImplemented(...)` with your code,
// then run `build/tutorials/labs/grade 3`. README.md has the math.
#include "gradcheck.hpp"

#include <cmath>

namespace lab {

using qkv::Tensor;

Tensor numeric_gradient(const std::function<double(const Tensor&)>& f, const Tensor& x, double eps) {
    // Work on a copy (x.clone()). For each element i: set it to x_i + eps and evaluate f, set it to
    // x_i − eps and evaluate f, put x_i back, and store (f₊ − f₋) / (2·eps).
    throw NotImplemented("numeric_gradient");
}

GradientCheck check_gradient(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, double eps,
                             double atol, double rtol) {
    // 1. Analytic: a copy of x that requires grad, f(copy).backward(), then copy.grad().
    // 2. Numeric: numeric_gradient of t ↦ f(t).item() (under a qkv::NoGradGuard: no graph needed).
    // 3. For every element: ratio = |a − n| / (atol + rtol·|n|); keep the largest; ok when it is ≤ 1.
    throw NotImplemented("check_gradient");
}

}  // namespace lab
