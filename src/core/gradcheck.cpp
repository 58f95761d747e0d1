/// \file
/// \brief Central finite differences against backward, element by element, in float64.
///
/// A reader learns here how to test a backward pass without trusting it. The output y is reduced to
/// one number with random weights, \f$ L = \sum w \odot y \f$, so every output element counts and one
/// backward gives the analytic dL/dx for every input element. Each element is then nudged by ±eps
/// in place and f re-run: \f$ (L(x+\epsilon) - L(x-\epsilon)) / 2\epsilon \f$ has error O(ε²). All
/// in f64, because in f32 rounding would swamp that difference. The report keeps the element with the
/// worst error relative to atol + rtol·|numeric|, which points straight at the bug.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/dispatch.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/core/gradcheck.hpp"

namespace qkv {

std::string GradcheckReport::summary() const {
    if (ok)
        return fmt::format("gradcheck {}: ok ({} elements, worst |analytic - numeric| = {:.3e})", op, checked, abs_error);
    return fmt::format("gradcheck {}: FAILED at input {} {} element {}: analytic {:.10g}, numeric {:.10g} "
                       "(abs error {:.3e}, rel error {:.3e})",
                       op, input, shape_str(input_shape), index, analytic, numeric, abs_error, rel_error);
}

namespace {
// L = Σ w ⊙ y for an output y (no graph recorded when called under NoGradGuard).
double weighted(const Tensor& y, const Tensor& w) {
    const double* py = y.data<double>();
    const double* pw = w.data<double>();
    double s = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) s += py[i] * pw[i];
    return s;
}

void check_f64(const char* who, const std::vector<Tensor>& xs) {
    for (std::size_t i = 0; i < xs.size(); ++i) {
        detail::check_defined(who, xs[i]);
        if (xs[i].dtype() != DType::f64)
            fail("{}: input {} is {} {}; gradients are checked in f64 (use .to(f64))", who, i, dtype_name(xs[i].dtype()),
                 shape_str(xs[i].shape()));
    }
}

// The shared core: run `eval` once with gradients for the analytic side, then perturb every element
// of every tensor in `xs` (in place, restored afterwards) for the numeric side.
GradcheckReport check(const std::function<Tensor()>& eval, const std::vector<Tensor>& xs, const GradcheckOptions& opt) {
    const Tensor y = eval();
    detail::check_defined("gradcheck", y, "output of f");
    if (y.dtype() != DType::f64) fail("gradcheck: f returned {}, expected f64", dtype_name(y.dtype()));
    if (!y.requires_grad()) fail("gradcheck: the output of f does not depend differentiably on any input");
    Generator gen(opt.seed);
    const Tensor w = randn(y.shape(), gen, DType::f64);
    GradcheckReport rep;
    rep.op = !opt.label.empty() ? opt.label : (y.grad_fn() ? y.grad_fn()->op->name : "leaf");
    rep.ops = graph_ops(y);
    y.backward(w);
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const Tensor g = xs[i].grad();
        const std::int64_t n = xs[i].numel();
        const std::int64_t step = n > opt.max_elements ? (n + opt.max_elements - 1) / opt.max_elements : 1;
        double* px = const_cast<Tensor&>(xs[i]).data<double>();
        for (std::int64_t k = 0; k < n; k += step) {
            const double orig = px[k];
            px[k] = orig + opt.eps;
            const double up = weighted(eval(), w);
            px[k] = orig - opt.eps;
            const double down = weighted(eval(), w);
            px[k] = orig;
            const double numeric = (up - down) / (2 * opt.eps);
            const double analytic = g.defined() ? g.data<double>()[k] : 0.0;  // no grad = zero grad
            const double err = std::fabs(analytic - numeric);
            const double ratio = std::isnan(err) ? INFINITY : err / (opt.atol + opt.rtol * std::fabs(numeric));
            ++rep.checked;
            if (ratio > rep.worst_ratio || rep.input < 0) {
                rep.worst_ratio = ratio;
                rep.input = int(i);
                rep.index = k;
                rep.input_shape = xs[i].shape();
                rep.analytic = analytic;
                rep.numeric = numeric;
                rep.abs_error = err;
                rep.rel_error = err / std::max(std::fabs(numeric), 1e-300);
            }
        }
    }
    rep.ok = rep.worst_ratio <= 1.0;
    return rep;
}
}  // namespace

GradcheckReport gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
    check_f64("gradcheck", inputs);
    std::vector<Tensor> xs;
    for (const auto& in : inputs) xs.push_back(in.clone().requires_grad_());
    return check([&] { return f(xs); }, xs, opt);
}

GradcheckReport gradcheck_params(const std::function<Tensor()>& f, const std::vector<Tensor>& params,
                                 const GradcheckOptions& opt) {
    check_f64("gradcheck_params", params);
    for (std::size_t i = 0; i < params.size(); ++i)
        if (!params[i].requires_grad() || !params[i].is_leaf())
            fail("gradcheck_params: parameter {} {} must be a leaf that requires grad", i, shape_str(params[i].shape()));
    for (auto p : params) p.set_grad(Tensor());
    auto rep = check(f, params, opt);
    for (auto p : params) p.set_grad(Tensor());
    return rep;
}

// ---- comparing tensors ------------------------------------------------------------------------

namespace {
// Both tensors as f64 vectors, after checking that they can be compared element by element.
std::pair<std::vector<double>, std::vector<double>> comparable(const char* who, const Tensor& a, const Tensor& b) {
    detail::check_defined(who, a);
    detail::check_defined(who, b);
    if (a.shape() != b.shape()) fail("{}: shapes differ: {} vs {}", who, shape_str(a.shape()), shape_str(b.shape()));
    return {a.to_vector<double>(), b.to_vector<double>()};
}

// |x − y|, with equal infinities (which x − y would turn into NaN) counting as no difference.
double difference(double x, double y) { return x == y ? 0.0 : std::fabs(x - y); }
}  // namespace

double max_abs_diff(const Tensor& a, const Tensor& b) {
    const auto [x, y] = comparable("max_abs_diff", a, b);
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double d = difference(x[i], y[i]);
        if (std::isnan(d)) return d;  // NaN on either side: report it, never skip it
        worst = std::max(worst, d);
    }
    return worst;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
    if (!(rtol >= 0) || !(atol >= 0)) fail("allclose: tolerances must be >= 0, got rtol {} and atol {}", rtol, atol);
    const auto [x, y] = comparable("allclose", a, b);
    for (std::size_t i = 0; i < x.size(); ++i) {
        // An infinity is close only to itself (the bound would be ∞ too); a NaN fails the ≤.
        const bool infinite = std::isinf(x[i]) || std::isinf(y[i]);
        const bool close = infinite ? x[i] == y[i] : difference(x[i], y[i]) <= atol + rtol * std::fabs(y[i]);
        if (!close) return false;
    }
    return true;
}

}  // namespace qkv
