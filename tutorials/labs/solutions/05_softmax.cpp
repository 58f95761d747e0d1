// SPOILER: the reference solution of lab 5 (numerically stable softmax). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "05_softmax/softmax.hpp"

#include <algorithm>
#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

Tensor softmax_forward(const Tensor& x) {
    const std::int64_t R = x.size(0), C = x.size(1);
    Tensor y = qkv::empty({R, C}, qkv::f64);
    for (std::int64_t r = 0; r < R; ++r) {
        const double* xr = x.data<double>() + r * C;
        double* yr = y.data<double>() + r * C;
        // softmax(x) = softmax(x − m): with m the row's maximum every exponent is ≤ 0, so exp
        // cannot overflow, and the largest term is exp(0) = 1, so the sum cannot underflow to 0.
        const double m = mutant("no_max") ? 0.0 : *std::max_element(xr, xr + C);
        double sum = 0;
        for (std::int64_t j = 0; j < C; ++j) sum += yr[j] = std::exp(xr[j] - m);
        for (std::int64_t j = 0; j < C; ++j) yr[j] /= sum;
    }
    return y;
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy) {
    const std::int64_t R = y.size(0), C = y.size(1);
    Tensor dx = qkv::empty({R, C}, qkv::f64);
    for (std::int64_t r = 0; r < R; ++r) {
        const double* yr = y.data<double>() + r * C;
        const double* dyr = dy.data<double>() + r * C;
        double* dxr = dx.data<double>() + r * C;
        // dx_j = Σ_i dy_i ∂y_i/∂x_j = Σ_i dy_i y_i (δ_ij − y_j) = y_j (dy_j − Σ_i y_i dy_i)
        double s = 0;
        for (std::int64_t i = 0; i < C; ++i) s += yr[i] * dyr[i];
        if (mutant("backward_no_sum")) s = 0;  // as if y_j depended on x_j alone
        for (std::int64_t j = 0; j < C; ++j) dxr[j] = yr[j] * (dyr[j] - s);
    }
    return dx;
}

}  // namespace lab
