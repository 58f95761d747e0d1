/// \file
/// \brief Grader of lab 11: attention_step and its cache against MultiHeadAttention::forward_cached,
/// decode_step's logits against the full forward pass, and greedy_decode against decoding without
/// a cache (GPT::generate with use_cache = false), token for token.
#include <algorithm>
#include <memory>

#include <catch2/catch.hpp>

#include "11_kv_cache/kv_cache.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

constexpr std::int64_t B = 2, V = 11, C = 16, H = 4;

// A small GPT in float64 with weights drawn wider than GPT-2's 0.02, so that greedy choices are
// clear-cut (the grader checks the margins) and a wrong step cannot pass by luck.
std::unique_ptr<qkv::nn::GPT> model() {
    qkv::nn::GPTConfig cfg;
    cfg.vocab = V;
    cfg.block_size = 16;
    cfg.dim = C;
    cfg.heads = H;
    cfg.layers = 2;
    cfg.seed = 11;
    auto m = std::make_unique<qkv::nn::GPT>(cfg);
    qkv::Generator gen(12);
    for (Tensor& p : m->parameters()) qkv::nn::init_normal(p, 0.5, gen);
    m->to(qkv::f64);
    m->eval();
    return m;
}

Tensor randn(const qkv::Shape& s, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn(s, gen, qkv::f64);
}

Tensor tokens(std::vector<std::int32_t> ids) { return qkv::from(ids, {B, std::int64_t(ids.size()) / B}); }

}  // namespace

TEST_CASE("11.1 attention_step and its cache") {
    qkv::NoGradGuard no_graph;
    const auto m = model();
    qkv::nn::MultiHeadAttention& attn = m->blocks()[0]->attn;
    qkv::nn::KVCache yours, theirs;
    const Tensor xs = randn({B, 5, C}, 1);
    for (std::int64_t t = 0; t < 5; ++t) {
        const Tensor x = qkv::narrow(xs, 1, t, 1);  // position t, (B, 1, C)
        const qkv::nn::KVCache before = theirs;
        const Tensor want = attn.forward_cached(x, theirs);
        const Tensor got = call("attention_step", [&] { return lab::attention_step(attn, x, yours); });
        const auto parts = qkv::split((*attn.qkv_proj)(x), C, -1);
        std::vector<Mistake> mistakes;
        if (t > 0)  // at t = 1 this is also what a mask that lets the query see key 0 only gives
            mistakes.push_back({std::string("append the new position's key and value to the cache before attending: a "
                                            "position attends to itself too") +
                                    (t == 1 ? " (or, if you append first: with one query and several keys, no mask is "
                                              "needed — the query is the last position)"
                                            : ""),
                                [&] { return attn.out_proj(qkv::head_attention(parts[0], before.k, before.v, H)); }});
        mistakes.push_back({"the attention output still goes through the output projection: return attn.out_proj(...)",
                            [&] { return qkv::head_attention(parts[0], theirs.k, theirs.v, H); }});
        mistakes.push_back(
            {fmt::format("with one query and {} keys, the query is the *last* position and sees every cached key: "
                         "no mask is needed (a causal mask not aligned to the end lets it see key 0 only)",
                         t + 1),
             [&] {
                 return attn.out_proj(
                     qkv::head_attention(parts[0], qkv::narrow(theirs.k, 1, 0, 1), qkv::narrow(theirs.v, 1, 0, 1), H));
             }});
        check(got, {.what = fmt::format("attention_step(block 0's attention, x at position {}, cache of {} positions), "
                                        "x (2, 1, 16), H = 4",
                                        t, t),
                    .expected = want,
                    .mistakes = mistakes});
        require(yours.k.defined() && yours.k.shape() == theirs.k.shape() && yours.v.defined() &&
                    yours.v.shape() == theirs.v.shape(),
                fmt::format("after {} steps the cache should hold keys and values of shape {}; yours are {} and {}: append "
                            "each step's key and value along dimension 1 (qkv::concat({{cache.k, k}}, 1))",
                            t + 1, qkv::shape_str(theirs.k.shape()),
                            yours.k.defined() ? qkv::shape_str(yours.k.shape()) : "undefined",
                            yours.v.defined() ? qkv::shape_str(yours.v.shape()) : "undefined"));
        check(yours.k, {.what = fmt::format("cache.k after {} steps", t + 1), .expected = theirs.k});
        check(yours.v, {.what = fmt::format("cache.v after {} steps", t + 1), .expected = theirs.v});
    }
}

namespace {

// One decoding step by qkv's own blocks (TransformerBlock::forward_cached), with the position row
// as a parameter: the right logits, and the answers of mistakes, come from the model itself.
struct QkvStep {
    Tensor logits, logits_without_final_norm;
};
QkvStep qkv_step(qkv::nn::GPT& m, const Tensor& tok, std::vector<qkv::nn::KVCache>& caches, std::int64_t pos_row) {
    Tensor h = m.tok_emb(qkv::reshape(tok, {B, 1})) + m.pos_emb.forward(1, pos_row);
    for (std::size_t l = 0; l < m.blocks().size(); ++l) h = m.blocks()[l]->forward_cached(h, caches[l]);
    return {qkv::reshape((*m.lm_head)(m.ln_f(h)), {B, V}), qkv::reshape((*m.lm_head)(h), {B, V})};
}

}  // namespace

TEST_CASE("11.2 decode_step: each step's logits equal the full forward pass") {
    qkv::NoGradGuard no_graph;
    const auto m = model();
    const Tensor seq = tokens({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8});  // (2, 6)
    std::vector<qkv::nn::KVCache> yours, right(m->blocks().size()), row_zero(m->blocks().size());
    for (std::int64_t t = 0; t < seq.size(1); ++t) {
        const Tensor tok = qkv::reshape(qkv::narrow(seq, 1, t, 1), {B});
        const Tensor full = m->forward(qkv::narrow(seq, 1, 0, t + 1));  // (B, t+1, V): no cache at all
        const Tensor want = qkv::reshape(qkv::narrow(full, 1, t, 1), {B, V});
        const QkvStep ok = qkv_step(*m, tok, right, t), zero = qkv_step(*m, tok, row_zero, 0);
        const Tensor got = call("decode_step", [&] { return lab::decode_step(*m, tok, yours); });
        check(got, {.what = fmt::format("decode_step(model, tokens at position {}, caches): the logits (2, 11), against "
                                        "model.forward(the first {} tokens) at its last position",
                                        t, t + 1),
                    .expected = want,
                    .mistakes = {{"the token at position t needs pos_emb row t (t = caches[0].length(), before this "
                                  "step appends), not row 0: model.pos_emb.forward(1, t)",
                                  [&] { return zero.logits; }},
                                 {"the final layer norm is missing: logits = lm_head(ln_f(h))",
                                  [&] { return ok.logits_without_final_norm; }}},
                    .hint = "each block is pre-LN: h = h + attention_step(block.attn, block.ln1(h), caches[l]), then "
                            "h = h + block.mlp(block.ln2(h)); each block has its own cache; after the blocks, "
                            "logits = lm_head(ln_f(h))"});
    }
}

TEST_CASE("11.3 greedy_decode equals decoding without a cache") {
    qkv::NoGradGuard no_graph;
    const auto m = model();
    const Tensor prompt = tokens({1, 4, 7, 2, 9, 0});  // (2, 3)
    constexpr std::int64_t kSteps = 8;
    qkv::Generator gen(0);
    qkv::nn::SampleOptions greedy;
    greedy.greedy = true;
    const Tensor want = m->generate(prompt, kSteps, greedy, gen, /*use_cache=*/false);
    // The test is only fair if no choice is a near tie: check every margin between the best and the
    // second-best logit along the expected sequence.
    const Tensor logits = m->forward(qkv::narrow(want, 1, 0, want.size(1) - 1));
    double margin = 1e300;
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = prompt.size(1) - 1; t < logits.size(1); ++t) {
            std::vector<double> row(static_cast<std::size_t>(V));
            for (std::int64_t v = 0; v < V; ++v) row[std::size_t(v)] = logits.at({b, t, v});
            std::sort(row.rbegin(), row.rend());
            margin = std::min(margin, row[0] - row[1]);
        }
    require(margin > 1e-6, fmt::format("grader problem: a near tie in the expected decoding (margin {})", margin));
    const Tensor got = call("greedy_decode", [&] { return lab::greedy_decode(*m, prompt, kSteps); });
    check(got, {.what = "greedy_decode(model, prompt (2, 3) = [[1,4,7],[2,9,0]], 8 steps), against "
                        "model.generate(prompt, 8, greedy, use_cache = false)",
                .expected = want,
                .rtol = 0,
                .atol = 0,
                .mistakes = {{"the result starts with the prompt: (B, T₀ + steps), prompt first",
                              [&] { return qkv::narrow(want, 1, prompt.size(1), kSteps); }}},
                .hint = "if decode_step passes, look at the loop: the logits after the prompt's *last* token give the "
                        "first new token, and each chosen token is fed before the next is chosen (one cache per "
                        "block, kept across the whole decoding)"});
}
