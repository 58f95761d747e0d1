/// \file
/// \brief Grader of lab 7: split_heads, merge_heads, and the whole multi-head layer, forward and
/// every gradient, against qkv::nn::MultiHeadAttention holding the same weights.
#include <cmath>
#include <memory>

#include <catch2/catch.hpp>

#include "07_multi_head/multi_head.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

constexpr std::int64_t B = 2, T = 5, C = 12, H = 3, D = C / H;

Tensor randn(const qkv::Shape& s, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn(s, gen, qkv::f64);
}

// qkv's layer, in float64, with PyTorch's initialisation; its weights are what the learner gets.
std::unique_ptr<qkv::nn::MultiHeadAttention> layer(std::uint64_t seed) {
    qkv::nn::MultiHeadAttentionConfig cfg;
    cfg.dim = C;
    cfg.heads = H;
    qkv::Generator gen(seed);
    auto m = std::make_unique<qkv::nn::MultiHeadAttention>(cfg, gen);
    m->to(qkv::f64);
    return m;
}

lab::MhaWeights weights_of(const qkv::nn::MultiHeadAttention& m) {
    return {m.q_proj->weight, m.q_proj->bias, m.k_proj->weight, m.k_proj->bias,
            m.v_proj->weight, m.v_proj->bias, m.out_proj.weight, m.out_proj.bias};
}

// The layer composed from qkv's ops, right or with one known mistake: the hints' answers.
enum class Variant { reshape_split, reshape_merge, scale_by_c, no_out_proj, untransposed_weights, no_mask };
Tensor composed(const Tensor& x, const lab::MhaWeights& w, bool causal, Variant v) {
    const auto project = [&](const Tensor& W, const Tensor& b) {
        return v == Variant::untransposed_weights ? qkv::matmul(x, W) + b : qkv::linear(x, W, b);
    };
    const auto split = [&](const Tensor& t) {
        return v == Variant::reshape_split ? qkv::reshape(t, {B, H, T, D}) : qkv::permute(qkv::reshape(t, {B, T, H, D}), {0, 2, 1, 3});
    };
    qkv::AttentionOptions o;
    o.causal = causal && v != Variant::no_mask;
    if (v == Variant::scale_by_c) o.scale = 1.0 / std::sqrt(double(C));
    const Tensor heads = qkv::attention(split(project(w.wq, w.bq)), split(project(w.wk, w.bk)), split(project(w.wv, w.bv)), o);
    const Tensor merged = v == Variant::reshape_merge ? qkv::reshape(heads, {B, T, C}) : qkv::reshape(qkv::permute(heads, {0, 2, 1, 3}), {B, T, C});
    return v == Variant::no_out_proj ? merged : qkv::linear(merged, w.wo, w.bo);
}

const std::string kSplit =
    "a plain reshape of (B, T, C) to (B, H, T, D) mixes positions: head h's channels are [h·D, (h+1)·D) of each "
    "position, so reshape to (B, T, H, D) first, then transpose dimensions 1 and 2";
const std::string kMerge =
    "merging needs the transpose back first: (B, H, T, D) → transpose(1, 2) → (B, T, H, D) → reshape (B, T, H·D); "
    "a plain reshape interleaves positions and heads";

std::vector<Mistake> layer_mistakes(const Tensor& x, const lab::MhaWeights& w, bool causal) {
    std::vector<Mistake> m = {
        {kSplit, [=] { return composed(x, w, causal, Variant::reshape_split); }},
        {kMerge, [=] { return composed(x, w, causal, Variant::reshape_merge); }},
        {fmt::format("each head scales its scores by 1/√D with D = C/H = {}, its own size, not 1/√C", D),
         [=] { return composed(x, w, causal, Variant::scale_by_c); }},
        {"the concatenated heads still go through the output projection W_O: y = concat·W_Oᵀ + b_O",
         [=] { return composed(x, w, causal, Variant::no_out_proj); }},
        {"the weights are stored (out, in), PyTorch's layout: a projection is x·Wᵀ + b, which is qkv::linear(x, W, b)",
         [=] { return composed(x, w, causal, Variant::untransposed_weights); }},
    };
    if (causal)
        m.push_back({"position t saw later positions: pass the causal flag to the attention (AttentionOptions::causal)",
                     [=] { return composed(x, w, causal, Variant::no_mask); }});
    return m;
}

}  // namespace

TEST_CASE("07.1 split_heads") {
    const Tensor x = randn({B, T, C}, 1);
    const Tensor got = call("split_heads", [&] { return lab::split_heads(x, H); });
    check(got, {.what = "split_heads(x, 3), x (2, 5, 12)",
                .expected = qkv::permute(qkv::reshape(x, {B, T, H, D}), {0, 2, 1, 3}),
                .mistakes = {{kSplit, [&] { return qkv::reshape(x, {B, H, T, D}); }}}});
}

TEST_CASE("07.2 merge_heads") {
    const Tensor y = randn({B, H, T, D}, 2);
    const Tensor got = call("merge_heads", [&] { return lab::merge_heads(y); });
    check(got, {.what = "merge_heads(y), y (2, 3, 5, 4)",
                .expected = qkv::reshape(qkv::permute(y, {0, 2, 1, 3}), {B, T, C}),
                .mistakes = {{kMerge, [&] { return qkv::reshape(y, {B, T, C}); }}}});
}

TEST_CASE("07.3 multi_head_attention forward") {
    for (bool causal : {false, true}) {
        const auto m = layer(3);
        const lab::MhaWeights w = weights_of(*m);
        const Tensor x = randn({B, T, C}, 4);
        qkv::AttentionOptions o;
        o.causal = causal;
        const Tensor want = m->forward(x, o).detach();
        const Tensor got = call("multi_head_attention", [&] { return lab::multi_head_attention(x, w, H, causal); });
        check(got, {.what = fmt::format("multi_head_attention(x, w, 3, causal = {}), x (2, 5, 12)", causal),
                    .expected = want,
                    .mistakes = layer_mistakes(x, w, causal)});
    }
}

TEST_CASE("07.4 multi_head_attention backward (autograd through your ops)") {
    const auto m = layer(5);
    const lab::MhaWeights w = weights_of(*m);
    const std::vector<std::pair<std::string, Tensor>> params = {{"wq", w.wq}, {"bq", w.bq}, {"wk", w.wk}, {"bk", w.bk},
                                                                {"wv", w.wv}, {"bv", w.bv}, {"wo", w.wo}, {"bo", w.bo}};
    const Tensor x0 = randn({B, T, C}, 6), dy = randn({B, T, C}, 7);
    // Yours first; keep the gradients, clear them, then qkv's layer on the same weights.
    Tensor x = x0.clone().requires_grad_();
    const Tensor y = call("multi_head_attention", [&] { return lab::multi_head_attention(x, w, H, true); });
    require(y.grad_fn() != nullptr, "multi_head_attention's output records no graph: build it from qkv's ops (linear, "
                                    "reshape, transpose, attention) so that backward() can reach x and the weights");
    call("backward through multi_head_attention", [&] { y.backward(dy); });
    std::vector<Tensor> got;
    for (const auto& [name, p] : params) {
        require(p.grad().defined(), "w." + name + ".grad() is undefined after backward: the path from w." + name +
                                        " to the output is cut (a tensor copied by hand, or detach()?)");
        got.push_back(p.grad().clone());
        Tensor(p).set_grad(Tensor());
    }
    require(x.grad().defined(), "x.grad() is undefined after backward: the path from x to the output is cut");
    Tensor xr = x0.clone().requires_grad_();
    qkv::AttentionOptions o;
    o.causal = true;
    m->forward(xr, o).backward(dy);
    check(x.grad(), {.what = "x.grad() after multi_head_attention(x, w, 3, causal = true).backward(dy)", .expected = xr.grad()});
    for (std::size_t i = 0; i < params.size(); ++i)
        check(got[i], {.what = "w." + params[i].first + ".grad() after multi_head_attention(x, w, 3, causal = true).backward(dy)",
                       .expected = params[i].second.grad()});
}
