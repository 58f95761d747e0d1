// Lab 7: multi-head attention. Your file: replace each `throw NotImplemented(...)` with your code,
// then run `build/tutorials/labs/grade 7`. README.md has the shapes, step by step.
//
// Build everything from qkv's differentiable ops — qkv::reshape, qkv::transpose,
// qkv::permute, qkv::linear, qkv::attention — so that autograd reaches x and every weight. Not
// qkv::head_attention or qkv::nn::MultiHeadAttention: they are the answer key.
#include "multi_head.hpp"

#include <cmath>

namespace lab {

using qkv::Tensor;

Tensor split_heads(const Tensor& x, std::int64_t heads) {
    // (B, T, C) → (B, T, H, D) → (B, H, T, D)
    throw NotImplemented("split_heads");
}

Tensor merge_heads(const Tensor& x) {
    // (B, H, T, D) → (B, T, H, D) → (B, T, H·D)
    throw NotImplemented("merge_heads");
}

Tensor multi_head_attention(const Tensor& x, const MhaWeights& w, std::int64_t heads, bool causal) {
    // Project (qkv::linear), split each of Q, K, V into heads, attend in every head at once
    // (qkv::attention works on (…, T, D)), merge, and project with W_O.
    throw NotImplemented("multi_head_attention");
}

}  // namespace lab
