/// \file
/// \brief Grader of lab 8: layer norm forward (including a constant row) and backward, against
/// qkv::layer_norm and qkv's autograd, with the known mistakes computed from qkv's ops.
#include <cmath>

#include <catch2/catch.hpp>

#include "08_layer_norm/layer_norm.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

constexpr double kEps = 1e-5;

struct Inputs {
    Tensor x, gamma, beta, dy;
};

// Rows with a mean far from 0 and a spread far from 1, so that forgetting either shows.
Inputs inputs(std::uint64_t seed) {
    qkv::Generator gen(seed);
    return {qkv::randn({4, 6}, gen, qkv::f64) * 2.0 + 3.0, qkv::randn({6}, gen, qkv::f64) + 1.0,
            qkv::randn({6}, gen, qkv::f64), qkv::randn({4, 6}, gen, qkv::f64)};
}

// Layer norm from qkv's primitive ops, with the variance's divisor and ε's place as parameters.
Tensor normalised(const Tensor& x, bool unbiased, bool eps_outside) {
    const Tensor centred = x - qkv::mean(x, 1, true);
    const Tensor var = qkv::var(x, 1, true, unbiased);
    return centred / (eps_outside ? qkv::sqrt(var) + kEps : qkv::sqrt(var + kEps));
}

std::vector<Mistake> forward_mistakes(const Inputs& in) {
    return {
        {"layer norm uses the biased variance: divide by C, not C − 1",
         [=] { return normalised(in.x, true, false) * in.gamma + in.beta; }},
        {"ε goes inside the square root: x̂ = (x − μ)/√(σ² + ε)",
         [=] { return normalised(in.x, false, true) * in.gamma + in.beta; }},
        {"you returned x̂: scale by γ and shift by β (y = γ ⊙ x̂ + β)", [=] { return normalised(in.x, false, false); }},
        {"each row is normalised over its own C elements (the last dimension), not down the columns",
         [=] {
             const Tensor c = in.x - qkv::mean(in.x, 0, true);
             return c / qkv::sqrt(qkv::var(in.x, 0, true, false) + kEps) * in.gamma + in.beta;
         }},
    };
}

lab::LayerNormGrads expected(const Inputs& in) {
    Tensor x = in.x.clone().requires_grad_(), g = in.gamma.clone().requires_grad_(), b = in.beta.clone().requires_grad_();
    qkv::layer_norm(x, g, b, kEps).backward(in.dy);
    return {x.grad(), g.grad(), b.grad()};
}

}  // namespace

TEST_CASE("08.1 layer_norm_forward") {
    const Inputs in = inputs(1);
    const Tensor y = call("layer_norm_forward", [&] { return lab::layer_norm_forward(in.x, in.gamma, in.beta, kEps); });
    check(y, {.what = "layer_norm_forward(x, γ, β, 1e-5), x (4, 6) with row means near 3 and spreads near 2",
              .expected = qkv::layer_norm(in.x, in.gamma, in.beta, kEps),
              .mistakes = forward_mistakes(in)});
}

TEST_CASE("08.2 layer_norm_forward on a constant row") {
    Inputs in = inputs(2);
    for (std::int64_t j = 0; j < 6; ++j) in.x.set({1, j}, 7.0);  // row 1: σ² = 0
    const Tensor y = call("layer_norm_forward", [&] { return lab::layer_norm_forward(in.x, in.gamma, in.beta, kEps); });
    check(y, {.what = "layer_norm_forward(x, γ, β, 1e-5), x (4, 6) whose row 1 is constant (variance 0)",
              .expected = qkv::layer_norm(in.x, in.gamma, in.beta, kEps),
              .mistakes = forward_mistakes(in),
              .nan_hint = "a constant row has σ² = 0, and (x − μ)/√σ² is 0/0 = NaN: ε is there to keep "
                          "1/√(σ² + ε) finite (then x̂ = 0 and y = β)"});
}

TEST_CASE("08.3 layer_norm_backward") {
    const Inputs in = inputs(3);
    const lab::LayerNormGrads got =
        call("layer_norm_backward", [&] { return lab::layer_norm_backward(in.x, in.gamma, kEps, in.dy); });
    const lab::LayerNormGrads want = expected(in);
    // The pieces the known mistakes are made of.
    const Tensor xhat = normalised(in.x, false, false), g = in.dy * in.gamma;
    const Tensor rstd = 1.0 / qkv::sqrt(qkv::var(in.x, 1, true, false) + kEps);
    const Tensor mean_g = qkv::mean(g, 1, true), mean_gx = qkv::mean(g * xhat, 1, true);
    check(got.dbeta, {.what = "dβ from layer_norm_backward(x, γ, 1e-5, dy), x (4, 6)",
                      .expected = want.dbeta,
                      .mistakes = {{"dβ = Σ over the rows of dy ⊙ x̂ is dγ's formula: β is added as it is, so dβ = Σ_rows dy",
                                    [&] { return qkv::sum(in.dy * xhat, 0); }}}});
    check(got.dgamma, {.what = "dγ from layer_norm_backward(x, γ, 1e-5, dy), x (4, 6)",
                       .expected = want.dgamma,
                       .mistakes = {{"γ multiplies x̂: dγ = Σ over the rows of dy ⊙ x̂ (Σ_rows dy is dβ)",
                                     [&] { return qkv::sum(in.dy, 0); }},
                                    {"γ multiplies x̂, not x: dγ = Σ over the rows of dy ⊙ x̂",
                                     [&] { return qkv::sum(in.dy * in.x, 0); }}}});
    check(got.dx, {.what = "dx from layer_norm_backward(x, γ, 1e-5, dy), x (4, 6)",
                   .expected = want.dx,
                   .mistakes = {
                       {"x̂ depends on every element of its row through μ and σ, not only on x_j: "
                        "dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) with g = dy ⊙ γ, not r·g",
                        [&] { return rstd * g; }},
                       {"μ depends on x: the term −mean(g) is missing (dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)))",
                        [&] { return rstd * (g - xhat * mean_gx); }},
                       {"σ depends on x: the term −x̂·mean(g ⊙ x̂) is missing (dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)))",
                        [&] { return rstd * (g - mean_g); }},
                       {"g = ∂L/∂x̂ = dy ⊙ γ: the factor γ is missing",
                        [&] { return rstd * (in.dy - qkv::mean(in.dy, 1, true) - xhat * qkv::mean(in.dy * xhat, 1, true)); }},
                   }});
}
