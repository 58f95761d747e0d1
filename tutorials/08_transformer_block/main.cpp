/// \file
/// \brief Tutorial 8: the transformer block — layer norm, residual connections, the feed-forward
/// MLP, and nn::TransformerBlock put together and gradient-checked.
///
/// Shows what layer norm does to each position (mean 0, variance 1) and that the fused op equals
/// its composed formula; measures gradient norms at the input of deep stacks with and without
/// residual connections; looks at GELU and the MLP; then runs a full block, counts its parameters
/// and gradient-checks it in float64. See README.md.
#include <qkv/qkv.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

using namespace qkv;

namespace {

void report(const char* what, double diff) {
    fmt::print("  {:<7} max |difference| = {:.1e}  (below 1e-12: {})\n", what, diff, diff < 1e-12 ? "yes" : "NO");
}

// Rounds values that print as ±0.0000 to 0, so the sign of a rounding error does not show.
double tidy(double v) { return std::abs(v) < 5e-5 ? 0.0 : v; }

// Euclidean norm of a tensor.
double norm(const Tensor& t) {
    double s = 0;
    for (double v : t.to_vector<double>()) s += v * v;
    return std::sqrt(s);
}

}  // namespace

int main() {
    Generator gen(8);

    // [layernorm]
    // Layer norm rescales each position's C numbers to mean 0 and variance 1, then applies a learned
    // scale γ and shift β:   y = (x − μ) / √(σ² + ε) · γ + β   with μ, σ² the mean and (biased)
    // variance of that position's channels. Take inputs far from that: mean ≈ 5, spread ≈ 3.
    const std::int64_t C = 8;
    const Tensor x = randn({2, 3, C}, gen, f64) * 3.0 + 5.0;
    nn::LayerNorm ln(C);
    ln.to(f64);
    const Tensor y = ln(x);  // γ = 1, β = 0 at initialisation
    const Tensor mx = mean(x, -1), vx = var(x, -1, false, false), my = mean(y, -1), vy = var(y, -1, false, false);
    fmt::print("layer norm over C = {} channels, per position (b, t):\n", C);
    fmt::print("  (b, t)    mean(x)   var(x)    mean(y)   var(y)\n");
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t t = 0; t < 3; ++t)
            fmt::print("  ({}, {}) {:10.4f} {:8.4f} {:10.4f} {:8.4f}\n", b, t, mx.at({b, t}), vx.at({b, t}),
                       tidy(my.at({b, t})), vy.at({b, t}));

    // Fused op vs the formula composed from primitives, forward and backward, with a random γ, β.
    Tensor gamma = randn({C}, gen, f64).requires_grad_(), beta = randn({C}, gen, f64).requires_grad_();
    Tensor xg = x.detach().requires_grad_();
    const Tensor dy = randn({2, 3, C}, gen, f64);
    auto grads = [&](const Tensor& out) {
        xg.zero_grad(), gamma.zero_grad(), beta.zero_grad();
        out.backward(dy);
        return std::vector<Tensor>{xg.grad().clone(), gamma.grad().clone(), beta.grad().clone()};
    };
    const double eps = 1e-5;
    const Tensor fused = layer_norm(xg, gamma, beta, eps);
    const Tensor mu = mean(xg, -1, true), sigma2 = var(xg, -1, true, false);
    const Tensor composed = (xg - mu) / sqrt(sigma2 + eps) * gamma + beta;
    fmt::print("fused graph:    {}\n", fmt::join(graph_ops(fused), " <- "));
    fmt::print("composed graph: {}\n", fmt::join(graph_ops(composed), " <- "));
    const auto gf = grads(fused), gc = grads(composed);
    fmt::print("fused vs composed:\n");
    report("y", max_abs_diff(fused, composed));
    report("dx", max_abs_diff(gf[0], gc[0]));
    report("dgamma", max_abs_diff(gf[1], gc[1]));
    report("dbeta", max_abs_diff(gf[2], gc[2]));
    fmt::print("\n");
    // [layernorm]

    // [residual]
    // Why residual connections: stack many layers and look at the gradient that reaches the input.
    // Each layer is the block's MLP (C → 4C → C with GELU) at its standard initialisation.
    //   plain:    x ← mlp(x)
    //   pre-LN:   x ← x + mlp(LN(x))      (residual; GPT-2 and most models since)
    //   post-LN:  x ← LN(x + mlp(x))      (residual; the original Transformer paper)
    const std::int64_t Cr = 16, depth_max = 32;
    std::vector<std::unique_ptr<nn::FeedForward>> mlps;
    std::vector<std::unique_ptr<nn::LayerNorm>> lns;
    for (std::int64_t l = 0; l < depth_max; ++l) {
        mlps.push_back(std::make_unique<nn::FeedForward>(Cr, 4 * Cr, gen));
        lns.push_back(std::make_unique<nn::LayerNorm>(Cr));
        mlps.back()->to(f64);
        lns.back()->to(f64);
    }
    const Tensor x0 = randn({4, 8, Cr}, gen, f64);
    const Tensor r = randn({4, 8, Cr}, gen, f64);  // loss L = Σ r ⊙ output: a fixed random direction
    enum class Stack { plain, pre_ln, post_ln };
    auto input_grad_norm = [&](std::int64_t depth, Stack kind) {
        Tensor in = x0.detach().requires_grad_();
        Tensor h = in;
        for (std::int64_t l = 0; l < depth; ++l) {
            const nn::FeedForward& mlp = *mlps[std::size_t(l)];
            const nn::LayerNorm& norm_l = *lns[std::size_t(l)];
            if (kind == Stack::plain) h = mlp(h);
            else if (kind == Stack::pre_ln) h = h + mlp(norm_l(h));
            else h = norm_l(h + mlp(h));
        }
        sum(h * r).backward();
        return norm(in.grad());
    };
    fmt::print("gradient norm |dL/dx| at the input of a stack of MLP layers:\n");
    fmt::print("  depth      plain     pre-LN    post-LN\n");
    for (const std::int64_t depth : {1, 2, 4, 8, 16, 32})
        fmt::print("  {:5} {:10.2e} {:10.2e} {:10.2e}\n", depth, input_grad_norm(depth, Stack::plain),
                   input_grad_norm(depth, Stack::pre_ln), input_grad_norm(depth, Stack::post_ln));
    fmt::print("\n");
    // [residual]

    // [mlp]
    // The feed-forward MLP works on each position alone: C → 4C, GELU, 4C → C. GELU(x) = x·Φ(x)
    // (Φ the standard normal CDF) is a smooth ReLU: ≈ 0 for very negative x, ≈ x for large x, and it
    // lets a little gradient through for negative inputs.
    const Tensor grid = from({-3, -1, -0.5, 0, 0.5, 1, 3}, {7}, f64);
    const Tensor ge = gelu_erf(grid), re = relu(grid);
    fmt::print("     x:");
    for (std::int64_t i = 0; i < 7; ++i) fmt::print("{:8.3f}", grid.at({i}));
    fmt::print("\n  GELU:");
    for (std::int64_t i = 0; i < 7; ++i) fmt::print("{:8.3f}", tidy(ge.at({i})));
    fmt::print("\n  ReLU:");
    for (std::int64_t i = 0; i < 7; ++i) fmt::print("{:8.3f}", re.at({i}));
    fmt::print("\n\n");
    // [mlp]

    // [block]
    // A whole pre-LN block:   x ← x + Attention(LN₁(x));   x ← x + MLP(LN₂(x))
    nn::BlockConfig cfg;
    cfg.dim = 16;
    cfg.heads = 4;  // hidden = 0 means 4·C = 64
    nn::TransformerBlock block(cfg, gen);
    const Tensor xb = randn({2, 5, cfg.dim}, gen);
    AttentionOptions causal;
    causal.causal = true;
    const Tensor h1 = block.ln1(xb);
    const Tensor a = block.attn.forward(h1, causal);
    const Tensor x1 = xb + a;
    const Tensor h2 = block.ln2(x1);
    const Tensor f1 = block.mlp.fc1(h2);
    const Tensor f2 = block.mlp.fc2(block.mlp.act(f1));
    const Tensor out = x1 + f2;
    fmt::print("a transformer block, C = {}, H = {}, MLP width {}:\n", cfg.dim, cfg.heads, block.mlp.fc1.weight.size(0));
    fmt::print("  x                         {}\n", shape_str(xb.shape()));
    fmt::print("  LN1(x)                    {}\n", shape_str(h1.shape()));
    fmt::print("  causal attention          {}  weights {}\n", shape_str(a.shape()), shape_str(block.attn.last_weights().shape()));
    fmt::print("  x + attention             {}\n", shape_str(x1.shape()));
    fmt::print("  LN2, fc1                  {}\n", shape_str(f1.shape()));
    fmt::print("  GELU, fc2                 {}\n", shape_str(f2.shape()));
    fmt::print("  x + MLP                   {}\n", shape_str(out.shape()));
    fmt::print("same as block.forward: max |difference| = {:.1e}\n", max_abs_diff(out, block.forward(xb, causal)));
    fmt::print("parameters:\n");
    for (const auto& [name, p] : block.named_parameters())
        fmt::print("  {:<20} {:<8} {:6}\n", name, shape_str(p.shape()), p.numel());
    const std::int64_t Cb = cfg.dim;
    fmt::print("  total {} = 12·C² + 13·C = {}\n\n", block.num_parameters(), 12 * Cb * Cb + 13 * Cb);
    // [block]

    // [gradcheck]
    // The whole block in float64, by finite differences: every parameter, then the input.
    nn::BlockConfig small;
    small.dim = 8;
    small.heads = 2;
    nn::TransformerBlock tiny(small, gen);
    tiny.to(f64);
    const Tensor xt = randn({2, 4, small.dim}, gen, f64);
    GradcheckOptions opt;
    opt.label = "TransformerBlock parameters";
    const GradcheckReport params = gradcheck_params([&] { return tiny.forward(xt, causal); }, tiny.parameters(), opt);
    fmt::print("{}\n", params.summary());
    opt.label = "TransformerBlock input";
    const GradcheckReport input =
        gradcheck([&](const std::vector<Tensor>& in) { return tiny.forward(in[0], causal); }, {xt}, opt);
    fmt::print("{}\n", input.summary());
    // [gradcheck]
    return params.ok && input.ok ? 0 : 1;
}
