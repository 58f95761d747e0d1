// SPOILER: the reference solution of lab 11 (greedy decoding with a key/value cache). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "11_kv_cache/kv_cache.hpp"

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

Tensor attention_step(const qkv::nn::MultiHeadAttention& attn, const Tensor& x, qkv::nn::KVCache& cache) {
    const std::int64_t C = attn.config().dim, H = attn.config().heads;
    const std::vector<Tensor> qkv_new = qkv::split((*attn.qkv_proj)(x), C, -1);  // q, k, v: (B, 1, C) each
    const Tensor& q = qkv_new[0];
    const auto append = [&] {
        const bool empty = cache.length() == 0;
        cache.k = empty ? qkv_new[1] : qkv::concat({cache.k, qkv_new[1]}, 1);
        cache.v = empty ? qkv_new[2] : qkv::concat({cache.v, qkv_new[2]}, 1);
    };
    if (mutant("attend_before_append") && cache.length() > 0) {
        const Tensor o = qkv::head_attention(q, cache.k, cache.v, H);  // misses the position itself
        append();
        return attn.out_proj(o);
    }
    append();
    // The new query is the last position: every cached key is at or before it, so no mask is needed.
    return attn.out_proj(qkv::head_attention(q, cache.k, cache.v, H));
}

Tensor decode_step(qkv::nn::GPT& model, const Tensor& tokens, std::vector<qkv::nn::KVCache>& caches) {
    caches.resize(model.blocks().size());
    const std::int64_t B = tokens.size(0), t = caches[0].length();
    // The token's vector plus the vector of its position t: (B, 1, C) + (1, C).
    Tensor h = model.tok_emb(qkv::reshape(tokens, {B, 1})) + model.pos_emb.forward(1, mutant("no_pos_offset") ? 0 : t);
    for (std::size_t l = 0; l < model.blocks().size(); ++l) {
        qkv::nn::TransformerBlock& block = *model.blocks()[l];
        h = h + attention_step(block.attn, block.ln1(h), caches[l]);  // pre-LN residuals, as in training
        h = h + block.mlp(block.ln2(h));
    }
    return qkv::reshape((*model.lm_head)(model.ln_f(h)), {B, model.config().vocab});
}

Tensor greedy_decode(qkv::nn::GPT& model, const Tensor& prompt, std::int64_t steps) {
    qkv::NoGradGuard no_graph;  // inference: nothing to differentiate
    const std::int64_t B = prompt.size(0), T0 = prompt.size(1);
    std::vector<qkv::nn::KVCache> caches;
    std::vector<Tensor> columns;  // one (B, 1) column per position
    Tensor logits;
    for (std::int64_t t = 0; t < T0; ++t) {  // the prompt, one position at a time
        columns.push_back(qkv::narrow(prompt, 1, t, 1));
        logits = decode_step(model, qkv::reshape(columns.back(), {B}), caches);
    }
    for (std::int64_t s = 0; s < steps; ++s) {
        const Tensor next = qkv::argmax(logits, 1);  // (B) i32: the most likely token
        columns.push_back(qkv::reshape(next, {B, 1}));
        if (s + 1 < steps) logits = decode_step(model, next, caches);
    }
    return qkv::concat(columns, 1);
}

}  // namespace lab
