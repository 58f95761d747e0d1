/// \file
/// \brief Tutorial 6: a self-attention layer, forward and backward, gradient-checked.
///
/// Runs nn::SelfAttention on a small input, derives attention's backward pass by hand and checks
/// it against autograd, compares the fused attention op with the same formula composed from
/// primitive ops (forward and gradients), and gradient-checks the op and the layer's parameters in
/// float64. See README.md.
#include <qkv/qkv.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace qkv;

namespace {

void report(const char* what, double diff) {
    fmt::print("  {:<4} max |difference| = {:.1e}  (below 1e-12: {})\n", what, diff, diff < 1e-12 ? "yes" : "NO");
}

}  // namespace

int main() {
    Generator gen(6);

    // [layer]
    // One attention head on a sequence of T = 4 positions with C = 4 channels, head size D = 3.
    // Its parameters are the three projections C → D (no bias), stored (out, in) like PyTorch.
    const std::int64_t B = 1, T = 4, C = 4, D = 3;
    nn::SelfAttention attn(C, D, gen);
    attn.to(f64);  // float64 throughout: exact enough for finite differences
    for (const auto& [name, p] : attn.named_parameters()) fmt::print("{:<13} {}\n", name, shape_str(p.shape()));
    fmt::print("{} parameters\n\n", attn.num_parameters());
    // [layer]

    // [forward]
    const Tensor x = randn({B, T, C}, gen, f64);
    const Tensor out = attn(x);
    fmt::print("x {} -> output {}\n", shape_str(x.shape()), shape_str(out.shape()));
    fmt::print("attention weights {} (rows sum to 1):\n{}\n", shape_str(attn.last_weights().shape()),
               attn.last_weights());
    // The whole layer is four nodes: three linear projections and one fused attention op.
    fmt::print("graph: {}\n\n", fmt::join(graph_ops(out), " <- "));
    // [forward]

    // [by-hand]
    // Backward by hand. Take q, k, v as leaves, some upstream gradient dO, and follow the forward
    //   S = Q·Kᵀ/√D,   P = softmax(S) by rows,   O = P·V
    // backwards, one line at a time.
    Tensor q = attn.query(x).detach().requires_grad_();
    Tensor k = attn.key(x).detach().requires_grad_();
    Tensor v = attn.value(x).detach().requires_grad_();
    const Tensor dO = randn({B, T, D}, gen, f64);
    const double scale = 1.0 / std::sqrt(double(D));
    Tensor dQ, dK, dV;
    {
        NoGradGuard no_grad;
        const Tensor P = softmax(matmul(q, transpose(k, 1, 2)) * scale, -1);  // (B, T, T)
        dV = matmul(transpose(P, 1, 2), dO);                                  // O = P·V  ⇒ dV = Pᵀ·dO
        const Tensor dP = matmul(dO, transpose(v, 1, 2));                     //          ⇒ dP = dO·Vᵀ
        const Tensor dS = P * (dP - sum(dP * P, -1, /*keepdim=*/true));        // softmax backward
        dQ = matmul(dS, k) * scale;                                           // S = Q·Kᵀ/√D ⇒ dQ = dS·K/√D
        dK = matmul(transpose(dS, 1, 2), q) * scale;                          //             ⇒ dK = dSᵀ·Q/√D
    }
    // Now let autograd do it through the fused op, and compare.
    attention(q, k, v).backward(dO);
    fmt::print("backward by hand vs autograd through the fused op:\n");
    report("dQ", max_abs_diff(dQ, q.grad()));
    report("dK", max_abs_diff(dK, k.grad()));
    report("dV", max_abs_diff(dV, v.grad()));
    fmt::print("\n");
    // [by-hand]

    // [fused-vs-composed]
    // The same attention composed from primitive ops — matmul, transpose, scale, softmax, matmul —
    // exactly as the formula reads. Its backward comes from the primitives' backward passes.
    const Tensor fused = attention(q, k, v);
    const Tensor composed = nn::scaled_dot_product_attention(q, k, v);
    fmt::print("fused graph:    {}\n", fmt::join(graph_ops(fused), " <- "));
    fmt::print("composed graph: {}\n", fmt::join(graph_ops(composed), " <- "));
    auto grads = [&](const Tensor& o) {
        q.zero_grad(), k.zero_grad(), v.zero_grad();
        o.backward(dO);
        return std::vector<Tensor>{q.grad().clone(), k.grad().clone(), v.grad().clone()};
    };
    const auto gf = grads(fused), gc = grads(composed);
    fmt::print("fused vs composed:\n");
    report("O", max_abs_diff(fused, composed));
    report("dQ", max_abs_diff(gf[0], gc[0]));
    report("dK", max_abs_diff(gf[1], gc[1]));
    report("dV", max_abs_diff(gf[2], gc[2]));
    fmt::print("\n");
    // [fused-vs-composed]

    // [gradcheck]
    // Finally, finite differences (tutorial 3): the op on every element of q, k and v, with and
    // without the causal mask, then every parameter of the layer.
    const GradcheckReport op_check = gradcheck(
        [](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2]); }, {q.detach(), k.detach(), v.detach()});
    fmt::print("{}\n", op_check.summary());
    AttentionOptions causal;
    causal.causal = true;
    GradcheckOptions label;
    label.label = "causal attention";
    const GradcheckReport causal_check = gradcheck(
        [&](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], causal); },
        {q.detach(), k.detach(), v.detach()}, label);
    fmt::print("{}\n", causal_check.summary());
    label.label = "SelfAttention parameters";
    const GradcheckReport layer_check = gradcheck_params([&] { return attn(x); }, attn.parameters(), label);
    fmt::print("{}\n", layer_check.summary());
    label.label = "SelfAttention input";
    const GradcheckReport input_check =
        gradcheck([&](const std::vector<Tensor>& in) { return attn(in[0]); }, {x}, label);
    fmt::print("{}\n", input_check.summary());
    // [gradcheck]
    return op_check.ok && causal_check.ok && layer_check.ok && input_check.ok ? 0 : 1;
}
