/// \file
/// \brief Grader of lab 3: numeric_gradient against qkv's autograd; check_gradient must pass
/// correct backwards and catch deliberately broken ones (ops recorded here with qkv::record).
#include <cmath>

#include <catch2/catch.hpp>

#include "03_gradcheck/gradcheck.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

Tensor point(std::int64_t n, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn({n}, gen, qkv::f64);
}

// y_i = f(x_i) as a recorded op whose backward multiplies dy by `df(x_i, i)` — right or, on
// purpose, wrong. These are the backwards check_gradient must judge.
Tensor elementwise(const Tensor& x, double (*f)(double), std::function<double(double, std::int64_t)> df) {
    static const qkv::OpDef op{"lab3.elementwise", /*builtin=*/false};
    Tensor y = qkv::empty(x.shape(), qkv::f64);
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = f(x.data<double>()[i]);
    return qkv::record(op, y, {x}, [x, df](const Tensor& dy, qkv::BackwardContext& ctx) {
        if (Tensor* dx = ctx.grad(0))
            for (std::int64_t i = 0; i < x.numel(); ++i)
                dx->data<double>()[i] += df(x.data<double>()[i], i) * dy.data<double>()[i];
    });
}

double cube(double v) { return v * v * v; }
double square(double v) { return v * v; }
double relu(double v) { return v > 0 ? v : 0; }
double tanh_(double v) { return std::tanh(v); }

// A backward to judge: the loss L = Σ_i w_i · op(x)_i, and whether the backward is right.
struct Case {
    std::string name;  // "x³ with the factor 3 forgotten (x² instead of 3x²)"
    std::function<Tensor(const Tensor&)> loss;
    Tensor x;
    bool correct;
    std::string hint;  // shown when check_gradient gets this case wrong
};

Tensor weighted(const Tensor& y, std::uint64_t seed, bool positive) {
    Tensor w = point(y.numel(), seed);
    if (positive) w = qkv::add(qkv::mul(w, 0.0), 1.0);  // w = 1: every numeric gradient keeps the op's sign
    return qkv::sum(qkv::mul(y, w));
}

std::string describe(const lab::GradientCheck& r) {
    return fmt::format("worst element {}: analytic {:.10g}, numeric {:.10g}, ratio {:.4g}", r.worst, r.analytic,
                       r.numeric, r.ratio);
}

void judge(const Case& c, lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    const Tensor before = c.x.clone();
    const lab::GradientCheck r = call("check_gradient", [&] { return lab::check_gradient(c.loss, c.x); }, where);
    require(r.ok == c.correct,
            fmt::format("check_gradient on {} (a {} backward) returned ok = {} ({})\n  hint: {}", c.name,
                        c.correct ? "correct" : "broken", r.ok, describe(r), c.hint),
            where);
    require(qkv::allclose(c.x, before, 0, 0), "check_gradient changed its input x: perturb a copy", where);
}

const std::string kAbs =
    "the backward's gradient is too small or of the wrong sign, so analytic − numeric is negative and "
    "passes any test of the form (a − n) ≤ tolerance: compare |analytic − numeric|";
const std::string kRelative =
    "the numeric gradient of x³ at x = 0 is ε² (about 1e-12), not 0, and a purely relative test, "
    "|a − n| ≤ rtol·|n|, fails it; pass when |a − n| ≤ atol + rtol·|n| (atol covers gradients near 0)";

}  // namespace

TEST_CASE("03.1 numeric_gradient") {
    const Tensor x = point(6, 1);
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> functions = {
        {"Σ tanh(x)·x", [](const Tensor& t) { return qkv::sum(qkv::tanh(t) * t); }},
        {"Σ exp(x)/(1 + x²)", [](const Tensor& t) { return qkv::sum(qkv::exp(t) / (1.0 + t * t)); }},
        {"log Σ exp(x)", [](const Tensor& t) { return qkv::log(qkv::sum(qkv::exp(t))); }},
    };
    const double eps = 1e-5;
    for (const auto& entry : functions) {  // (named, not a structured binding: clang before 16 cannot capture bindings in lambdas)
        const std::string& text = entry.first;
        const auto& fn = entry.second;
        Tensor xg = x.clone().requires_grad_();
        fn(xg).backward();  // the answer key: qkv's autograd
        const auto value = [&fn](const Tensor& t) {
            qkv::NoGradGuard no_graph;
            return fn(t).item();
        };
        const Tensor got = call("numeric_gradient", [&] { return lab::numeric_gradient(value, x, eps); });
        // What the known mistakes return, computed here the same way.
        const auto differences = [&](bool central, bool halve, bool restore) {
            Tensor p = x.clone(), g = qkv::empty(x.shape(), qkv::f64);
            const double f0 = value(p);
            for (std::int64_t i = 0; i < x.numel(); ++i) {
                double& xi = p.data<double>()[i];
                const double old = xi;
                xi = old + eps;
                const double plus = value(p);
                xi = central ? old - eps : old;
                const double minus = central ? value(p) : f0;
                if (restore) xi = old;
                g.data<double>()[i] = (plus - minus) / (central && halve ? 2 * eps : eps);
            }
            return g;
        };
        check(got, {.what = "numeric_gradient(f, x, 1e-5) for f(x) = " + text + ", x (6)",
                    .expected = xg.grad(),
                    .rtol = 1e-6,
                    .atol = 1e-7,  // the central difference's own error, ~ε²·f''' ≈ 1e-10, is far below
                    .mistakes = {
                        {"your error is O(ε) (≈1e-5 here): that is the one-sided difference (f(x+ε) − f(x))/ε; "
                         "use the central difference (f(x+ε) − f(x−ε))/(2ε), whose error is O(ε²)",
                         [&] { return differences(false, false, true); }},
                        {"the central difference spans 2ε, from x−ε to x+ε: divide by 2ε",
                         [&] { return differences(true, false, true); }},
                        {"each perturbed element must be put back (x_i = old) before the next one is perturbed",
                         [&] { return differences(true, true, false); }},
                    }});
        require(qkv::allclose(x, point(6, 1), 0, 0), "numeric_gradient changed its input x: perturb a copy (x.clone())");
    }
}

TEST_CASE("03.2 check_gradient passes correct backwards") {
    Tensor with_zero = point(5, 2);
    with_zero.set({2}, 0.0);
    const std::vector<Case> cases = {
        {"Σ w·tanh(x) (qkv's own tanh)", [](const Tensor& t) { return weighted(qkv::tanh(t), 3, false); }, point(7, 4),
         true, "a correct backward was rejected: is the analytic gradient taken from a copy of x that requires grad, "
               "after f(copy).backward()?"},
        {"Σ w·x³ with x₂ = 0 (a gradient of exactly 0)",
         [](const Tensor& t) { return weighted(elementwise(t, cube, [](double v, std::int64_t) { return 3 * v * v; }), 5, false); },
         with_zero, true, kRelative},
        {"Σ w·relu(x)",
         [](const Tensor& t) { return weighted(elementwise(t, relu, [](double v, std::int64_t) { return v > 0 ? 1.0 : 0.0; }), 6, false); },
         point(6, 7), true, "a correct backward with gradients of 0 was rejected: pass when |a − n| ≤ atol + rtol·|n|"},
    };
    for (const Case& c : cases) judge(c);
}

TEST_CASE("03.3 check_gradient catches broken backwards") {
    const std::vector<Case> cases = {
        {"Σ x³ with the factor 3 forgotten (x² instead of 3x²)",
         [](const Tensor& t) { return weighted(elementwise(t, cube, [](double v, std::int64_t) { return v * v; }), 0, true); },
         point(5, 8), false, kAbs},
        {"Σ tanh(x) with the sign flipped (−(1 − tanh²x))",
         [](const Tensor& t) {
             return weighted(elementwise(t, tanh_, [](double v, std::int64_t) { return -(1 - std::tanh(v) * std::tanh(v)); }), 0, true);
         },
         point(5, 9), false, kAbs},
        {"Σ w·tanh(x) with a backward 1% too large",
         [](const Tensor& t) {
             return weighted(elementwise(t, tanh_, [](double v, std::int64_t) { return 1.01 * (1 - std::tanh(v) * std::tanh(v)); }), 10, false);
         },
         point(5, 11), false, "a 1% error is 10 times rtol = 1e-3: is the relative tolerance applied to |numeric|?"},
        {"Σ w·x² with element 5's gradient lost (0 instead of 2x₅)",
         [](const Tensor& t) {
             return weighted(elementwise(t, square, [](double v, std::int64_t i) { return i == 5 ? 0 : 2 * v; }), 12, false);
         },
         point(8, 13), false, "only element 5 is wrong: is every element of x perturbed and compared?"},
    };
    for (const Case& c : cases) judge(c);
}

TEST_CASE("03.4 check_gradient reports the worst element") {
    // x² with element 5's gradient lost: element 5 is the only wrong one, so it must be the worst,
    // with the analytic value the backward gave (0) and the numeric one qkv's autograd knows is right.
    const Tensor x = point(8, 13);
    const auto loss = [](const Tensor& t) {
        return weighted(elementwise(t, square, [](double v, std::int64_t i) { return i == 5 ? 0 : 2 * v; }), 12, false);
    };
    const lab::GradientCheck r = call("check_gradient", [&] { return lab::check_gradient(loss, x); });
    Tensor xt = x.clone().requires_grad_();
    weighted(qkv::mul(xt, xt), 12, false).backward();
    const double truth = xt.grad().at({5});
    require(r.worst == 5, fmt::format("check_gradient reported element {} as the worst; element 5 is the only wrong "
                                      "one\n  hint: keep the element with the largest ratio |a − n| / (atol + rtol·|n|)",
                                      r.worst));
    check(r.analytic, {.what = "GradientCheck::analytic at the worst element (5)", .expected = number(0.0)});
    check(r.numeric, {.what = "GradientCheck::numeric at the worst element (5)", .expected = number(truth), .rtol = 1e-6, .atol = 1e-7});
    check(r.ratio, {.what = "GradientCheck::ratio = |a − n| / (atol + rtol·|n|) at the worst element, atol 1e-5, rtol 1e-3",
                    .expected = number(std::abs(truth) / (1e-5 + 1e-3 * std::abs(truth))),
                    .rtol = 1e-5});
}
