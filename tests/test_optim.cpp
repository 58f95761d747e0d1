// Optimizers, clipping and schedules: every update rule against numbers worked out by hand.
//
// The hand-worked tests use one f64 parameter and set its gradient directly (set_grad), so the
// arithmetic in the comments is exactly what the optimizer must do. A gradient from backward()
// would be the same to the optimizer; the convergence tests use that path.
#include <catch2/catch.hpp>

#include <cmath>

#include "qkv/optim/optim.hpp"
#include "qkv/qkv.hpp"

using namespace qkv;
using Catch::Contains;

namespace {

// One f64 parameter named "w" with the given values.
std::vector<NamedTensor> param(std::initializer_list<double> values) {
    Tensor w = from(values, {std::int64_t(values.size())}, f64).requires_grad_();
    return {{"w", w}};
}

// Set the gradient of the single parameter and take one step; returns θ[0] after the step.
double step_with(optim::Optimizer& opt, double g) {
    Tensor w = opt.params()[0].second;
    w.set_grad(full(w.shape(), g, w.dtype()));
    opt.step();
    return w.at({0});
}

}  // namespace

// ---- SGD ----------------------------------------------------------------------------------------

TEST_CASE("SGD without momentum: theta -= lr * g", "[optim]") {
    auto ps = param({1.0, -2.0});
    optim::SGD sgd(ps, {.lr = 0.1});
    ps[0].second.set_grad(from({0.5, 1.0}, {2}, f64));
    sgd.step();
    // θ = [1 − 0.1·0.5, −2 − 0.1·1] = [0.95, −2.1]
    CHECK(ps[0].second.at({0}) == Approx(0.95).margin(1e-15));
    CHECK(ps[0].second.at({1}) == Approx(-2.1).margin(1e-15));
    CHECK(sgd.step_count() == 1);
    // Without momentum SGD keeps no state at all.
    CHECK(sgd.state().tensors.empty());
}

TEST_CASE("SGD momentum, weight decay, dampening and Nesterov match hand-worked steps", "[optim]") {
    SECTION("momentum 0.9, lr 0.1, g = 1") {
        optim::SGD sgd(param({1.0}), {.lr = 0.1, .momentum = 0.9});
        // t=1: b = g = 1              θ = 1 − 0.1·1 = 0.9
        CHECK(step_with(sgd, 1.0) == Approx(0.9).margin(1e-12));
        // t=2: b = 0.9·1 + 1 = 1.9    θ = 0.9 − 0.1·1.9 = 0.71
        CHECK(step_with(sgd, 1.0) == Approx(0.71).margin(1e-12));
        // t=3: b = 0.9·1.9 + 1 = 2.71 θ = 0.71 − 0.271 = 0.439
        CHECK(step_with(sgd, 1.0) == Approx(0.439).margin(1e-12));
        const auto s = sgd.state();
        REQUIRE(s.tensors.size() == 1);
        CHECK(s.tensors[0].first == "w.momentum_buffer");
        CHECK(s.tensors[0].second.at({0}) == Approx(2.71).margin(1e-12));
    }
    SECTION("weight decay 0.1 (L2 added to g), momentum 0.9, lr 0.1, g = 1") {
        optim::SGD sgd(param({1.0}), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
        // t=1: g' = 1 + 0.1·1 = 1.1          b = 1.1                      θ = 1 − 0.11 = 0.89
        CHECK(step_with(sgd, 1.0) == Approx(0.89).margin(1e-12));
        // t=2: g' = 1 + 0.1·0.89 = 1.089     b = 0.9·1.1 + 1.089 = 2.079  θ = 0.89 − 0.2079 = 0.6821
        CHECK(step_with(sgd, 1.0) == Approx(0.6821).margin(1e-12));
    }
    SECTION("dampening 0.5: the first step is not damped, later gradients are") {
        optim::SGD sgd(param({1.0}), {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
        // t=1: b = g = 1                       θ = 0.9
        CHECK(step_with(sgd, 1.0) == Approx(0.9).margin(1e-12));
        // t=2: b = 0.9·1 + 0.5·1 = 1.4         θ = 0.9 − 0.14 = 0.76
        CHECK(step_with(sgd, 1.0) == Approx(0.76).margin(1e-12));
    }
    SECTION("Nesterov: step along g + mu*b") {
        optim::SGD sgd(param({1.0}), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
        // t=1: b = 1      d = 1 + 0.9·1 = 1.9      θ = 1 − 0.19 = 0.81
        CHECK(step_with(sgd, 1.0) == Approx(0.81).margin(1e-12));
        // t=2: b = 1.9    d = 1 + 0.9·1.9 = 2.71   θ = 0.81 − 0.271 = 0.539
        CHECK(step_with(sgd, 1.0) == Approx(0.539).margin(1e-12));
    }
}

// ---- Adam and AdamW -----------------------------------------------------------------------------

TEST_CASE("Adam matches three hand-worked steps including bias correction", "[optim]") {
    // lr 0.1, β₁ 0.9, β₂ 0.999, ε 1e-8; gradients 0.5, −1, 0.25.
    optim::Adam adam(param({1.0}), {.lr = 0.1});
    // t=1: m = 0.1·0.5 = 0.05    v = 0.001·0.25 = 0.00025
    //      m̂ = 0.05/(1 − 0.9) = 0.5    v̂ = 0.00025/(1 − 0.999) = 0.25    (bias correction: m̂ = g exactly)
    //      θ = 1 − 0.1·0.5/(√0.25 + 1e-8) = 1 − 0.05/0.50000001 = 0.900000002
    CHECK(step_with(adam, 0.5) == Approx(0.900000002).margin(1e-12));
    // t=2: m = 0.9·0.05 + 0.1·(−1) = −0.055    v = 0.999·0.00025 + 0.001·1 = 0.00124975
    //      m̂ = −0.055/(1 − 0.81) = −0.289473684    v̂ = 0.00124975/(1 − 0.998001) = 0.625187594
    //      √v̂ = 0.790688051      θ = 0.900000002 + 0.1·0.289473684/0.790688061 = 0.936610354
    CHECK(step_with(adam, -1.0) == Approx(0.9366103542).margin(1e-9));
    // t=3: m = 0.9·(−0.055) + 0.1·0.25 = −0.0245    v = 0.999·0.00124975 + 0.001·0.0625 = 0.00131100025
    //      m̂ = −0.0245/0.271 = −0.090405904    v̂ = 0.00131100025/0.002997001 = 0.437439...
    //      θ = 0.936610354 + 0.1·0.090405904/0.661392... = 0.950279420
    CHECK(step_with(adam, 0.25) == Approx(0.9502794203).margin(1e-9));

    const auto s = adam.state();
    CHECK(s.kind == "Adam");
    CHECK(s.step == 3);
    REQUIRE(s.tensors.size() == 3);
    CHECK(s.tensors[0].first == "w.exp_avg");
    CHECK(s.tensors[0].second.at({0}) == Approx(-0.0245).margin(1e-15));
    CHECK(s.tensors[1].first == "w.exp_avg_sq");
    CHECK(s.tensors[1].second.at({0}) == Approx(0.00131100025).margin(1e-15));
    CHECK(s.tensors[2].first == "w.step");
    CHECK(s.tensors[2].second.item() == 3.0);
}

TEST_CASE("Adam's L2 decay is normalised away, AdamW's decoupled decay is not", "[optim]") {
    // Same start θ = 1, g = 0.5 each step, lr 0.1, weight decay 0.1.
    optim::Adam adam(param({1.0}), {.lr = 0.1, .weight_decay = 0.1});
    optim::AdamW adamw(param({1.0}), {.lr = 0.1, .weight_decay = 0.1});
    // Adam, t=1: g' = 0.5 + 0.1·1 = 0.6, m̂ = 0.6, v̂ = 0.36: the step is 0.1·0.6/(0.6 + 1e-8) ≈ 0.1
    //            — exactly as without decay: dividing by √v̂ cancelled the λθ term.
    //            θ = 1 − 0.06/0.60000001 = 0.9000000016667
    CHECK(step_with(adam, 0.5) == Approx(0.9000000016667).margin(1e-12));
    // AdamW, t=1: θ = 1·(1 − 0.1·0.1) = 0.99, then the plain Adam step 0.1·0.5/(0.5 + 1e-8):
    //            θ = 0.99 − 0.099999998 = 0.890000002
    CHECK(step_with(adamw, 0.5) == Approx(0.890000002).margin(1e-12));
    // Adam, t=2: g' = 0.5 + 0.1·0.9 = 0.59, m = 0.054 + 0.059 = 0.113, v = 0.00035964 + 0.0003481 = 0.00070774
    //            m̂ = 0.113/0.19 = 0.594736842, v̂ = 0.00070774/0.001999 = 0.354047024, √v̂ = 0.595018507
    //            θ = 0.9 − 0.1·0.594736842/0.595018517 = 0.800047340
    CHECK(step_with(adam, 0.5) == Approx(0.8000473405).margin(1e-9));
    // AdamW, t=2: θ = 0.890000002·0.99 = 0.881100002, m̂ = 0.5, v̂ = 0.25 again (g constant):
    //            θ = 0.881100002 − 0.099999998 = 0.781100004
    CHECK(step_with(adamw, 0.5) == Approx(0.7811000040).margin(1e-9));
    CHECK(adamw.kind() == "AdamW");
    CHECK(adamw.hyper().at("weight_decay") == 0.1);
}

TEST_CASE("AdamW defaults are PyTorch's", "[optim]") {
    optim::AdamW adamw(param({1.0}));
    const auto o = adamw.options();
    CHECK(o.lr == 1e-3);
    CHECK(o.beta1 == 0.9);
    CHECK(o.beta2 == 0.999);
    CHECK(o.eps == 1e-8);
    CHECK(o.weight_decay == 0.01);
    CHECK(optim::Adam(param({1.0})).options().weight_decay == 0.0);
}

TEST_CASE("f32 parameters follow the same rule as f64 ones", "[optim]") {
    Tensor w32 = from({1.0}, {1}, f32).requires_grad_();
    optim::Adam a32({{"w", w32}}, {.lr = 0.1});
    optim::Adam a64(param({1.0}), {.lr = 0.1});
    for (double g : {0.5, -1.0, 0.25}) {
        const double x64 = step_with(a64, g);
        CHECK(step_with(a32, g) == Approx(x64).margin(1e-6));
    }
    CHECK(a32.state().tensors[0].second.dtype() == f32);
}

// The f32 update must be the f64 one rounded, not a different rule: 1 − β₂ once came out of a
// float subtraction as 9.99987e-4, which made every f32 step 6.75e-6 relatively too large. Starting
// from θ = 0, θ after each step is the sum of the steps, so f32 round-off alone stays near 1e-7.
TEST_CASE("f32 AdamW steps equal the f64 steps to 1e-6 relative (1 - beta computed in double)", "[optim]") {
    for (double g0 : {1.0, 0.01, 100.0}) {
        Tensor w32 = from({0.0}, {1}, f32).requires_grad_();
        optim::AdamW a32({{"w", w32}}, {});
        optim::AdamW a64(param({0.0}), {});
        for (double g : {g0, -0.5 * g0, 2.0 * g0}) {
            const double x64 = step_with(a64, g);
            const double x32 = step_with(a32, g);
            INFO("gradient " << g << ": f64 " << x64 << ", f32 " << x32);
            CHECK(std::abs(x32 - x64) <= 1e-6 * std::abs(x64));
        }
    }
}

TEST_CASE("a parameter without a gradient is skipped and its state does not advance", "[optim]") {
    Tensor a = from({1.0}, {1}, f64).requires_grad_();
    Tensor b = from({1.0}, {1}, f64).requires_grad_();
    optim::Adam adam({{"a", a}, {"b", b}}, {.lr = 0.1});
    a.set_grad(full({1}, 0.5, f64));
    adam.step();
    CHECK(a.at({0}) == Approx(0.900000002).margin(1e-12));
    CHECK(b.at({0}) == 1.0);  // untouched
    auto s = adam.state();
    REQUIRE(s.tensors.size() == 3);  // only a's buffers exist
    for (const auto& [n, t] : s.tensors) CHECK(n.rfind("a.", 0) == 0);
    // b's first real update is its own t = 1 (full bias correction), although the optimizer is at step 2.
    b.set_grad(full({1}, 0.5, f64));
    adam.step();
    CHECK(b.at({0}) == Approx(0.900000002).margin(1e-12));
    CHECK(adam.step_count() == 2);
    s = adam.state();
    CHECK(s.tensors[2].second.item() == 2.0);  // a.step
    CHECK(s.tensors[5].second.item() == 1.0);  // b.step
}

TEST_CASE("zero_grad keeps the gradient buffers, set_lr changes the step size", "[optim]") {
    auto ps = param({1.0});
    optim::SGD sgd(ps, {.lr = 0.1});
    step_with(sgd, 1.0);
    const void* buf = ps[0].second.grad().raw_data();
    sgd.zero_grad();
    CHECK(ps[0].second.grad().raw_data() == buf);
    CHECK(ps[0].second.grad().at({0}) == 0.0);
    sgd.set_lr(0.5);
    CHECK(sgd.lr() == 0.5);
    CHECK(step_with(sgd, 1.0) == Approx(0.9 - 0.5).margin(1e-12));
}

TEST_CASE("state() and load_state() continue a run exactly", "[optim]") {
    auto run = [](optim::Optimizer& opt, double g) { return step_with(opt, g); };
    auto ps = param({1.0, 2.0});
    optim::AdamW a(ps, {.lr = 0.05});
    run(a, 0.3);
    run(a, -0.7);
    // A second optimizer over a copy of the parameter, loaded from the first one's state.
    auto qs = param({0.0, 0.0});
    qs[0].second.set({0}, ps[0].second.at({0}));
    qs[0].second.set({1}, ps[0].second.at({1}));
    optim::AdamW b(qs, {.lr = 0.9, .weight_decay = 0.5});  // hyper-parameters are restored too
    b.load_state(a.state());
    CHECK(b.lr() == 0.05);
    CHECK(b.step_count() == 2);
    CHECK(run(a, 0.4) == run(b, 0.4));  // bit-identical
    CHECK(ps[0].second.at({1}) == qs[0].second.at({1}));
}

TEST_CASE("load_state rejects a state that does not fit, and changes nothing", "[optim]") {
    optim::Adam a(param({1.0, 2.0}), {.lr = 0.1});
    step_with(a, 1.0);
    optim::Adam b(param({1.0, 2.0}), {.lr = 0.1});
    auto good = a.state();

    auto s = good;
    s.kind = "SGD";
    CHECK_THROWS_WITH(b.load_state(s), Contains("Adam: cannot load the state of a SGD optimizer"));
    s = good;
    s.tensors[0].second = zeros({3}, f64);
    CHECK_THROWS_WITH(b.load_state(s), Contains("state 'w.exp_avg' has shape (3), expected (2)"));
    s = good;
    s.tensors[1].second = zeros({2}, f32);
    CHECK_THROWS_WITH(b.load_state(s), Contains("state 'w.exp_avg_sq' is f32, expected f64"));
    s = good;
    s.tensors[0].first = "v.exp_avg";
    CHECK_THROWS_WITH(b.load_state(s), Contains("unexpected state tensor 'v.exp_avg'"));
    s = good;
    s.tensors.pop_back();
    CHECK_THROWS_WITH(b.load_state(s), Contains("state of 'w' is incomplete: 'w.step' is missing"));
    s = good;
    s.tensors.push_back(s.tensors[0]);
    CHECK_THROWS_WITH(b.load_state(s), Contains("state 'w.exp_avg' appears twice"));
    s = good;
    s.tensors[2].second = scalar(-1.0, f64);
    CHECK_THROWS_WITH(b.load_state(s), Contains("state 'w.step' must be a whole number >= 0, got -1"));
    s.tensors[2].second = scalar(1.5, f64);
    CHECK_THROWS_WITH(b.load_state(s), Contains("state 'w.step' must be a whole number >= 0, got 1.5"));
    s = good;
    s.hyper.erase("eps");
    CHECK_THROWS_WITH(b.load_state(s), Contains("hyper-parameter 'eps' is missing"));
    s = good;
    s.hyper["momentum"] = 0.9;
    CHECK_THROWS_WITH(b.load_state(s), Contains("unknown hyper-parameter 'momentum'"));
    s = good;
    s.hyper["beta2"] = 1.0;
    CHECK_THROWS_WITH(b.load_state(s), Contains("beta2 must be in [0, 1), got 1"));
    // Nothing was adopted by the failed loads.
    CHECK(b.step_count() == 0);
    CHECK(b.state().tensors.empty());
    CHECK(b.lr() == 0.1);
}

// ---- bad hyper-parameters -----------------------------------------------------------------------

TEST_CASE("invalid hyper-parameters and parameter lists are rejected", "[optim]") {
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.lr = -0.1}), "SGD: lr must be a finite number >= 0, got -0.1");
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.lr = std::nan("")}), Contains("SGD: lr must be a finite number >= 0"));
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.momentum = -1}), Contains("SGD: momentum must be"));
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.dampening = 2}), Contains("SGD: dampening must be in [0, 1], got 2"));
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.weight_decay = -1}), Contains("SGD: weight_decay must be"));
    CHECK_THROWS_WITH(optim::SGD(param({1}), {.nesterov = true}), Contains("nesterov needs momentum > 0"));
    CHECK_THROWS_WITH(optim::Adam(param({1}), {.beta1 = 1.0}), "Adam: beta1 must be in [0, 1), got 1");
    CHECK_THROWS_WITH(optim::Adam(param({1}), {.beta2 = -0.1}), Contains("Adam: beta2 must be in [0, 1), got -0.1"));
    CHECK_THROWS_WITH(optim::Adam(param({1}), {.eps = -1e-8}), Contains("Adam: eps must be"));
    CHECK_THROWS_WITH(optim::AdamW(param({1}), {.lr = -1}), Contains("AdamW: lr must be"));
    CHECK_THROWS_WITH(optim::AdamW(param({1}), {.weight_decay = -0.01}), Contains("AdamW: weight_decay must be"));

    CHECK_THROWS_WITH(optim::Adam({}), Contains("Adam: got an empty parameter list"));
    Tensor w = ones({2}).requires_grad_();
    CHECK_THROWS_WITH(optim::Adam({{"a", w}, {"a", ones({1})}}), Contains("parameter name 'a' appears twice"));
    CHECK_THROWS_WITH(optim::Adam({{"a", w}, {"b", w}}), Contains("'b' is the same tensor as an earlier one"));
    CHECK_THROWS_WITH(optim::Adam({{"ids", zeros({2}, i32)}}), Contains("parameter 'ids' is i32"));
    CHECK_THROWS_WITH(optim::Adam({{"u", Tensor()}}), Contains("parameter 'u' is an undefined tensor"));
    CHECK_THROWS_WITH(optim::Adam({{"y", w * 2.0}}), Contains("'y' is not a leaf"));

    optim::SGD sgd(param({1}));
    CHECK_THROWS_WITH(sgd.set_lr(-1), Contains("lr must be a finite number >= 0, got -1"));
    CHECK(sgd.lr() == 0.01);
}

// ---- clipping -----------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm returns the global norm and scales gradients above max_norm", "[optim]") {
    Tensor a = zeros({2}, f64).requires_grad_();
    Tensor b = zeros({1}, f32).requires_grad_();
    Tensor c = zeros({3}).requires_grad_();  // no gradient: ignored
    a.set_grad(from({3.0, 4.0}, {2}, f64));
    b.set_grad(from({12.0}, {1}, f32));
    const std::vector<NamedTensor> ps{{"a", a}, {"b", b}, {"c", c}};
    // n = √(3² + 4² + 12²) = √169 = 13 — under 20, nothing changes
    CHECK(optim::clip_grad_norm(ps, 20.0) == Approx(13.0).margin(1e-12));
    CHECK(a.grad().at({0}) == 3.0);
    // max_norm 6.5: c = 6.5/(13 + 1e-6) = 0.49999996 — every gradient is halved (almost exactly)
    CHECK(optim::clip_grad_norm(ps, 6.5) == Approx(13.0).margin(1e-12));
    CHECK(a.grad().at({0}) == Approx(1.5).epsilon(1e-6));
    CHECK(a.grad().at({1}) == Approx(2.0).epsilon(1e-6));
    CHECK(b.grad().at({0}) == Approx(6.0).epsilon(1e-6));
    // Now n = 13·0.49999996 = 6.5 − 5e-7; clipping again scales by 6.5/(6.5 + 5e-7) — almost nothing.
    CHECK(optim::clip_grad_norm(std::vector<Tensor>{a, b, c}, 6.5) == Approx(6.5).epsilon(1e-6));
    CHECK(b.grad().at({0}) == Approx(6.0).epsilon(1e-6));
    CHECK_THROWS_WITH(optim::clip_grad_norm(ps, 0.0), Contains("clip_grad_norm: max_norm must be a finite number > 0, got 0"));
    // A NaN gradient: the norm says so, and the gradients are left alone.
    b.set_grad(from({std::nan("")}, {1}, f32));
    CHECK(std::isnan(optim::clip_grad_norm(ps, 1.0)));
    CHECK(a.grad().at({0}) == Approx(1.5).epsilon(1e-6));
}

// ---- schedules ----------------------------------------------------------------------------------

TEST_CASE("learning-rate schedules: constant, and warmup then cosine", "[optim]") {
    CHECK(optim::ConstantLR{0.3}.lr_at(0) == 0.3);
    CHECK(optim::ConstantLR{0.3}.lr_at(1000) == 0.3);
    const optim::WarmupCosineLR s{.peak_lr = 1.0, .min_lr = 0.1, .warmup_steps = 10, .total_steps = 110};
    CHECK(s.lr_at(0) == Approx(0.1));   // warmup start: 1·(0+1)/10
    CHECK(s.lr_at(4) == Approx(0.5));   // 1·5/10
    CHECK(s.lr_at(9) == Approx(1.0));   // warmup end: 1·10/10
    CHECK(s.lr_at(10) == Approx(1.0));  // cosine start: 0.1 + 0.45·(1 + cos 0)
    CHECK(s.lr_at(35) == Approx(0.8681980515));  // a quarter in: 0.1 + 0.45·(1 + cos(π/4))
    CHECK(s.lr_at(60) == Approx(0.55));          // middle: 0.1 + 0.45·(1 + cos(π/2))
    CHECK(s.lr_at(109) == Approx(0.1002220478)); // 0.1 + 0.45·(1 + cos(0.99π))
    CHECK(s.lr_at(110) == 0.1);                  // end: the floor
    CHECK(s.lr_at(100000) == 0.1);
    CHECK(optim::WarmupCosineLR{.peak_lr = 2.0, .warmup_steps = 0, .total_steps = 4}.lr_at(0) == 2.0);
    CHECK_THROWS_WITH((optim::WarmupCosineLR{.peak_lr = 1, .min_lr = 2}.lr_at(0)), Contains("min_lr 2 is above peak_lr 1"));
    CHECK_THROWS_WITH((optim::WarmupCosineLR{.warmup_steps = 5, .total_steps = 4}.lr_at(0)),
                      Contains("need 0 <= warmup_steps <= total_steps"));
    CHECK_THROWS_WITH(s.lr_at(-1), Contains("step must be >= 0, got -1"));
}

// ---- optimisation -------------------------------------------------------------------------------

TEST_CASE("each optimizer minimises a quadratic", "[optim]") {
    // L(x) = Σ (x − c)², minimum at x = c. Gradients come from backward() this time.
    const Tensor target = from({1.0, -2.0, 3.0}, {3});
    auto minimise = [&](auto make_optimizer, int steps) {
        Tensor x = zeros({3}).requires_grad_();
        auto opt = make_optimizer(std::vector<NamedTensor>{{"x", x}});
        double loss = 0;
        for (int i = 0; i < steps; ++i) {
            opt.zero_grad();
            const Tensor d = x - target;
            const Tensor l = sum(d * d);
            l.backward();
            loss = l.item();
            opt.step();
        }
        CHECK(loss < 1e-6);
        for (std::int64_t i = 0; i < 3; ++i) CHECK(x.at({i}) == Approx(target.at({i})).margin(1e-3));
    };
    minimise([](auto ps) { return optim::SGD(ps, {.lr = 0.1}); }, 100);
    minimise([](auto ps) { return optim::SGD(ps, {.lr = 0.05, .momentum = 0.9, .nesterov = true}); }, 200);
    minimise([](auto ps) { return optim::Adam(ps, {.lr = 0.05}); }, 1000);
    minimise([](auto ps) { return optim::AdamW(ps, {.lr = 0.05, .weight_decay = 0.0}); }, 1000);
}
