/// \file
/// \brief Grader of lab 10: adamw_step against qkv::optim::AdamW, in float64, step by step —
/// the parameter, the moment estimates m and v, and the step count.
#include <cmath>

#include <catch2/catch.hpp>

#include "10_adamw/adamw.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

constexpr int kSteps = 5;

Tensor randn(const qkv::Shape& s, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn(s, gen, qkv::f64);
}

// qkv's AdamW on a copy of the parameter: its value and its buffers after each step.
struct Trace {
    std::vector<Tensor> param, m, v;
};
Trace reference(const Tensor& p0, const std::vector<Tensor>& grads, const std::vector<double>& lrs, const lab::AdamWHyper& h,
                bool coupled = false) {
    Tensor p = p0.clone().requires_grad_();
    const std::vector<qkv::NamedTensor> params = {{"theta", p}};
    std::unique_ptr<qkv::optim::Optimizer> opt;
    if (coupled)  // Adam with the decay as an L2 penalty in the gradient: a mistake's answer
        opt = std::make_unique<qkv::optim::Adam>(params, qkv::optim::AdamOptions{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay});
    else
        opt = std::make_unique<qkv::optim::AdamW>(params, qkv::optim::AdamWOptions{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay});
    Trace t;
    for (std::size_t k = 0; k < grads.size(); ++k) {
        opt->set_lr(lrs[k]);
        p.set_grad(grads[k].clone());
        opt->step();
        t.param.push_back(p.detach().clone());
        for (const auto& [name, buffer] : opt->state().tensors) {
            if (name == "theta.exp_avg") t.m.push_back(buffer);
            if (name == "theta.exp_avg_sq") t.v.push_back(buffer);
        }
    }
    return t;
}

// The parameter after `steps` steps of a *mistaken* rule, for the hints.
enum class Rule { no_bias_correction, decay_without_lr, decay_after_step, eps_inside_sqrt, no_sqrt };
Tensor mistaken(Rule rule, const Tensor& p0, const std::vector<Tensor>& grads, const std::vector<double>& lrs,
                const lab::AdamWHyper& h, std::size_t steps) {
    Tensor p = p0.clone(), m = qkv::zeros(p0.shape(), qkv::f64), v = qkv::zeros(p0.shape(), qkv::f64);
    for (std::size_t k = 0; k < steps; ++k) {
        const double lr = lrs[k], t = double(k + 1);
        const bool correct = rule != Rule::no_bias_correction;
        const Tensor& g = grads[k];
        const double shrink = rule == Rule::decay_without_lr ? 1 - h.weight_decay : 1 - lr * h.weight_decay;
        if (rule != Rule::decay_after_step) p = p * shrink;
        m = h.beta1 * m + (1 - h.beta1) * g;
        v = h.beta2 * v + (1 - h.beta2) * g * g;
        const Tensor mhat = correct ? m / (1 - std::pow(h.beta1, t)) : m;
        const Tensor vhat = correct ? v / (1 - std::pow(h.beta2, t)) : v;
        const Tensor denominator = rule == Rule::eps_inside_sqrt ? qkv::sqrt(vhat + h.eps)
                                   : rule == Rule::no_sqrt       ? vhat + h.eps
                                                                 : qkv::sqrt(vhat) + h.eps;
        p = p - lr * mhat / denominator;
        if (rule == Rule::decay_after_step) p = p * shrink;
    }
    return p;
}

// Run your adamw_step over the gradients and check the parameter after every step.
void grade_steps(const std::string& title, const Tensor& p0, const std::vector<Tensor>& grads, const std::vector<double>& lrs,
                 lab::AdamWHyper h, lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    const Trace want = reference(p0, grads, lrs, h);
    const Trace adam = reference(p0, grads, lrs, h, /*coupled=*/true);
    Tensor p = p0.clone();
    lab::AdamWState state;
    for (std::size_t k = 0; k < grads.size(); ++k) {
        h.lr = lrs[k];
        call("adamw_step", [&] { lab::adamw_step(p, grads[k], state, h); }, where);
        const auto rule = [&, k](Rule r) { return [=, &p0, &grads, &lrs] { return mistaken(r, p0, grads, lrs, h, k + 1); }; };
        check(p, {.what = fmt::format("θ after step {} of {}: {}", k + 1, grads.size(), title),
                  .expected = want.param[k],
                  .mistakes = {
                      {"the bias correction is missing: m and v start at 0, so divide them by 1 − β₁ᵗ and 1 − β₂ᵗ "
                       "(t = 1 on the first step)",
                       rule(Rule::no_bias_correction)},
                      {"the weight decay went through Adam's division (g + λθ): that is Adam with an L2 penalty. "
                       "AdamW decays θ directly, θ ← θ·(1 − ηλ), and runs Adam on the raw gradient",
                       [&adam, k] { return adam.param[k]; }},
                      {"the decay is scaled by the learning rate too: θ ← θ·(1 − ηλ), not θ·(1 − λ)",
                       rule(Rule::decay_without_lr)},
                      {"decay θ before the Adam step (θ ← θ·(1 − ηλ), then θ ← θ − η·m̂/(√v̂ + ε)), not after it",
                       rule(Rule::decay_after_step)},
                      {"ε is added after the square root: √v̂ + ε, not √(v̂ + ε)", rule(Rule::eps_inside_sqrt)},
                      {"divide by the square root of v̂: √v̂ + ε (v̂ is a mean of *squared* gradients)", rule(Rule::no_sqrt)},
                  },
                  .nan_hint = "NaN or inf: with t = 0 the bias corrections 1 − βᵗ are 0; increment t before using it "
                              "(the first step has t = 1)"},
              where);
        if (k == 0) {
            require(state.t == 1, fmt::format("state.t = {} after the first step; it counts the steps taken (1)", state.t), where);
            require(state.m.defined() && state.v.defined(), "state.m or state.v is undefined after the first step: create them "
                                                            "(zeros shaped like θ) on the first step and keep them in the state",
                    where);
            check(state.m, {.what = "state.m after the first step (β₁·m + (1 − β₁)·g, m starting at 0)",
                            .expected = want.m[0],
                            .mistakes = {{"m is the running mean of the raw gradient g, before any bias correction",
                                          [&] { return want.m[0] / (1 - h.beta1); }}}},
                  where);
            check(state.v, {.what = "state.v after the first step (β₂·v + (1 − β₂)·g², v starting at 0)",
                            .expected = want.v[0],
                            .mistakes = {{"v is the running mean of g², the *squared* gradient", [&] {
                                              return (1 - h.beta2) * grads[0];
                                          }}}},
                  where);
        }
    }
    require(state.t == std::int64_t(grads.size()),
            fmt::format("state.t = {} after {} steps: add 1 per step", state.t, grads.size()), where);
}

std::vector<Tensor> gradients(std::uint64_t seed) {
    std::vector<Tensor> g;
    for (int k = 0; k < kSteps; ++k) g.push_back(randn({3, 4}, seed + std::uint64_t(k)));
    return g;
}

}  // namespace

TEST_CASE("10.1 one AdamW step") {
    lab::AdamWHyper h;
    h.lr = 0.05;
    h.weight_decay = 0.1;
    const std::vector<Tensor> g = gradients(10);
    grade_steps("θ (3, 4), lr 0.05, weight decay 0.1", randn({3, 4}, 1), {g[0]}, {h.lr}, h);
}

TEST_CASE("10.2 five AdamW steps") {
    lab::AdamWHyper h;
    h.lr = 0.05;
    h.weight_decay = 0.1;
    grade_steps("θ (3, 4), lr 0.05, weight decay 0.1, a new gradient each step", randn({3, 4}, 2), gradients(20),
                std::vector<double>(kSteps, h.lr), h);
}

TEST_CASE("10.3 a learning-rate schedule, betas 0.8 and 0.99") {
    lab::AdamWHyper h;
    h.beta1 = 0.8;
    h.beta2 = 0.99;
    h.weight_decay = 0.05;
    grade_steps("θ (3, 4), lr 0.1, 0.08, 0.06, 0.04, 0.02 (set before each step), weight decay 0.05", randn({3, 4}, 3),
                gradients(30), {0.1, 0.08, 0.06, 0.04, 0.02}, h);
}
