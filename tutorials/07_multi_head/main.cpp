/// \file
/// \brief Tutorial 7: multi-head attention — why several heads, with the shapes at each step.
///
/// Walks a batch through nn::MultiHeadAttention step by step, printing every shape: projections,
/// the split into heads, per-head attention, the concatenation and the output projection. Then
/// builds, by hand, two heads that attend to different things (the previous token, the first
/// token), shows that one big head cannot do both, and compares the cost of H heads with one.
/// See README.md.
#include <qkv/qkv.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

using namespace qkv;

namespace {

void show(const char* step, const Tensor& t) { fmt::print("  {:<50} {}\n", step, shape_str(t.shape())); }

// Prints the (T, T) weights of head h of batch entry 0 from a (B, H, T, T) tensor.
void print_weights(const Tensor& w, std::int64_t h) {
    const std::int64_t T = w.size(-1);
    fmt::print("      key:");
    for (std::int64_t j = 0; j < T; ++j) fmt::print("{:6}", j);
    fmt::print("\n");
    for (std::int64_t i = 0; i < T; ++i) {
        fmt::print("  query {}: ", i);
        for (std::int64_t j = 0; j < T; ++j) {
            const double p = w.at({0, h, i, j});
            if (p < 0.005) fmt::print("{:>6}", ".");
            else fmt::print("{:6.2f}", p);
        }
        fmt::print("\n");
    }
}

}  // namespace

int main() {
    Generator gen(7);

    // [shapes]
    // B = 2 sequences of T = 5 positions, C = 8 channels, H = 2 heads of D = C/H = 4 channels.
    const std::int64_t B = 2, T = 5, C = 8, H = 2, D = C / H;
    nn::MultiHeadAttentionConfig cfg;
    cfg.dim = C;
    cfg.heads = H;
    nn::MultiHeadAttention mha(cfg, gen);
    mha.to(f64);
    const Tensor x = randn({B, T, C}, gen, f64);

    fmt::print("multi-head attention, step by step (B = {}, T = {}, C = {}, H = {}, D = {}):\n", B, T, C, H, D);
    show("x (B, T, C)", x);
    // 1. One Linear C → C per role computes the queries of *all* heads at once: head h owns
    //    channels [h·D, (h+1)·D) of the result.
    const Tensor q = mha.q_proj->forward(x), k = mha.k_proj->forward(x), v = mha.v_proj->forward(x);
    show("q = x·W_Qᵀ + b_Q (B, T, C), same for k, v", q);
    // 2. Split the channels into heads and move the head dimension forward.
    auto split_heads = [&](const Tensor& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
    show("reshape to (B, T, H, D)", reshape(q, {B, T, H, D}));
    const Tensor qh = split_heads(q), kh = split_heads(k), vh = split_heads(v);
    show("permute to (B, H, T, D)", qh);
    // 3. Attention on every (batch, head) pair independently: the leading (B, H) are batch dims.
    Tensor weights;
    AttentionOptions opt;
    opt.weights = &weights;
    const Tensor oh = attention(qh, kh, vh, opt);
    show("weights softmax(q·kᵀ/√D) (B, H, T, T)", weights);
    show("per-head output weights·v (B, H, T, D)", oh);
    // 4. Concatenate the heads: back to (B, T, H, D), then merge the last two dims.
    const Tensor concat_heads = reshape(permute(oh, {0, 2, 1, 3}), {B, T, C});
    show("permute back and reshape: Concat (B, T, C)", concat_heads);
    // 5. The output projection W_O mixes what the heads found.
    const Tensor y = mha.out_proj(concat_heads);
    show("y = Concat·W_Oᵀ + b_O (B, T, C)", y);

    const Tensor y_layer = mha.forward(x);
    fmt::print("the layer's forward gives the same y: max |difference| = {:.1e}\n", max_abs_diff(y, y_layer));
    // The fused op reads head h straight from channels [h·D, (h+1)·D): no split, no concat copies.
    const Tensor packed = head_attention(q, k, v, H);
    fmt::print("head_attention(q, k, v, H) {} equals the explicit split and concat: max |difference| = {:.1e}\n\n",
               shape_str(packed.shape()), max_abs_diff(packed, concat_heads));
    // [shapes]

    // [two-heads]
    // Two heads that look at different things, with weights set by hand. Input position t of a
    // sequence of 6 carries its position as an angle, (cos θt, sin θt) with θ = π/6, a token value
    // in channel 2, and a 0 in channel 3. C = 4, H = 2, D = 2, causal.
    const std::int64_t T2 = 6;
    const double theta = std::numbers::pi / 6, s = 40;  // s: how sharp the attention is
    const std::vector<double> tokens = {3, 1, 4, 1, 5, 9};
    Tensor x2 = zeros({1, T2, 4}, f64);
    for (std::int64_t t = 0; t < T2; ++t) {
        x2.set({0, t, 0}, std::cos(theta * double(t)));
        x2.set({0, t, 1}, std::sin(theta * double(t)));
        x2.set({0, t, 2}, tokens[std::size_t(t)]);
    }
    cfg.dim = 4;
    cfg.heads = 2;
    nn::MultiHeadAttention two(cfg, gen);
    two.to(f64);
    for (Tensor p : two.parameters()) nn::init_constant(p, 0);
    const double c = std::cos(theta), sn = std::sin(theta);
    // Head 0, channels 0–1, "previous token": its query is the position rotated back by one step,
    // s·(cos θ(t−1), sin θ(t−1)), so q·k_j = s·cos θ(t−1−j) is largest at j = t − 1.
    Tensor& Wq = two.q_proj->weight;
    Wq.set({0, 0}, s * c), Wq.set({0, 1}, s * sn);
    Wq.set({1, 0}, -s * sn), Wq.set({1, 1}, s * c);
    // Head 1, channels 2–3, "first token": a constant query s·(1, 0) (a bias), so q·k_j = s·cos θj
    // is largest at j = 0.
    two.q_proj->bias.set({2}, s);
    // Both heads' keys are the position (cos θj, sin θj).
    Tensor& Wk = two.k_proj->weight;
    Wk.set({0, 0}, 1), Wk.set({1, 1}, 1), Wk.set({2, 0}, 1), Wk.set({3, 1}, 1);
    // Both heads' values carry the token (channel 2), head 0 into channel 0, head 1 into channel 2;
    // W_O is the identity, so the output shows each head's result in its own channel.
    two.v_proj->weight.set({0, 2}, 1), two.v_proj->weight.set({2, 2}, 1);
    for (std::int64_t i = 0; i < 4; ++i) two.out_proj.weight.set({i, i}, 1);

    AttentionOptions causal;
    causal.causal = true;
    const Tensor y2 = two.forward(x2, causal);
    fmt::print("two hand-made heads on the tokens {}, causal:\n", fmt::join(tokens, " "));
    fmt::print("head 0 (previous token):\n");
    print_weights(two.last_weights(), 0);
    fmt::print("head 1 (first token):\n");
    print_weights(two.last_weights(), 1);
    fmt::print("position:                  ");
    for (std::int64_t t = 0; t < T2; ++t) fmt::print("{:6}", t);
    fmt::print("\ntoken:                     ");
    for (std::int64_t t = 0; t < T2; ++t) fmt::print("{:6.0f}", tokens[std::size_t(t)]);
    fmt::print("\nhead 0 output (channel 0): ");
    for (std::int64_t t = 0; t < T2; ++t) fmt::print("{:6.2f}", y2.at({0, t, 0}));
    fmt::print("\nhead 1 output (channel 2): ");
    for (std::int64_t t = 0; t < T2; ++t) fmt::print("{:6.2f}", y2.at({0, t, 2}));
    fmt::print("\n\n");
    // [two-heads]

    // [one-head]
    // The same projections as ONE head of size 4: a single softmax over the *sum* of both heads'
    // scores. One row of weights can make only one average, so it lands between the two targets.
    cfg.heads = 1;
    nn::MultiHeadAttention one(cfg, gen);
    one.to(f64);
    const auto src = two.parameters(), dst = one.parameters();
    for (std::size_t i = 0; i < src.size(); ++i) {
        Tensor p = dst[i];
        std::copy_n(src[i].data<double>(), src[i].numel(), p.data<double>());
    }
    const Tensor y1 = one.forward(x2, causal);
    fmt::print("the same projections as one head of size 4:\n");
    print_weights(one.last_weights(), 0);
    fmt::print("output (channel 0):        ");
    for (std::int64_t t = 0; t < T2; ++t) fmt::print("{:6.2f}", y1.at({0, t, 0}));
    fmt::print("\n\n");
    // [one-head]

    // [cost]
    // What do heads cost? Count for the attention layer of the benchmark.
    const std::int64_t Bc = 32, Tc = 64, Cc = 128;
    fmt::print("cost of one attention layer, B = {}, T = {}, C = {}:\n", Bc, Tc, Cc);
    fmt::print("{:>6} {:>4} {:>11} {:>20} {:>20} {:>18}\n", "heads", "D", "parameters", "projection MFLOP",
               "attention MFLOP", "weights kept");
    for (const std::int64_t heads : {1, 4, 8}) {
        nn::MultiHeadAttentionConfig cc;
        cc.dim = Cc;
        cc.heads = heads;
        Generator g(0);
        const nn::MultiHeadAttention layer(cc, g);
        const double proj = 4.0 * 2 * Bc * Tc * Cc * Cc;                  // Q, K, V and W_O: (BT × C)·(C × C)
        const double att = 2.0 * 2 * Bc * heads * Tc * Tc * (Cc / heads);  // Q·Kᵀ and P·V, per head
        fmt::print("{:>6} {:>4} {:>11} {:>20.1f} {:>20.1f} {:>18}\n", heads, Cc / heads, layer.num_parameters(),
                   proj / 1e6, att / 1e6, Bc * heads * Tc * Tc);
    }
    // [cost]
}
