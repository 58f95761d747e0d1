// Lab 11: greedy decoding with a key/value cache. Your file: replace each `throw NotImplemented(...)`
// with your code, then run `build/tutorials/labs/grade 11`. README.md walks through one step.
//
// The model's parts (include/qkv/nn/transformer.hpp): model.tok_emb, model.pos_emb, model.blocks()
// (each with ln1, attn, ln2, mlp), model.ln_f, model.lm_head. Every part is callable: part(x).
// Useful: qkv::split(t, C, -1), qkv::concat({a, b}, 1), qkv::head_attention(q, k, v, H),
// qkv::narrow(t, dim, start, length), qkv::argmax(t, dim), qkv::reshape(t, {...}).
#include "kv_cache.hpp"

namespace lab {

using qkv::Tensor;

Tensor attention_step(const qkv::nn::MultiHeadAttention& attn, const Tensor& x, qkv::nn::KVCache& cache) {
    // q, k, v = the three C-wide parts of attn.qkv_proj(x); append k, v to the cache (along dim 1);
    // the new query attends to all cached positions; return attn.out_proj(...).
    throw NotImplemented("attention_step");
}

Tensor decode_step(qkv::nn::GPT& model, const Tensor& tokens, std::vector<qkv::nn::KVCache>& caches) {
    // h = token embedding + position embedding of row t = caches[0].length(), shaped (B, 1, C);
    // each block: h = h + attention_step(ln1(h)), then h = h + mlp(ln2(h)); logits = lm_head(ln_f(h)).
    throw NotImplemented("decode_step");
}

Tensor greedy_decode(qkv::nn::GPT& model, const Tensor& prompt, std::int64_t steps) {
    // Feed the prompt's tokens one position at a time; then `steps` times: take the argmax of the
    // last logits, record it, and feed it.
    throw NotImplemented("greedy_decode");
}

}  // namespace lab
