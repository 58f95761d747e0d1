// Lab 6: scaled dot-product attention, one head, forward and backward by hand. Your file: replace
// each `throw NotImplemented(...)` with your code, then run `build/tutorials/labs/grade 6`.
// README.md has the math and the derivation of the backward pass.
//
// Matrices are float64 (rows, cols). You may compute with loops, or with qkv's functions as plain
// calculators: qkv::matmul, qkv::transpose(x, 0, 1), qkv::softmax(x, -1), qkv::masked_fill,
// qkv::tril_mask, qkv::logical_not, qkv::sum(x, 1, true), +, −, * (elementwise), * a number.
// Not qkv::attention (that is the answer key) and not backward(): the grader turns autograd off.
#include "attention.hpp"

#include <cmath>
#include <limits>

namespace lab {

using qkv::Tensor;

Tensor attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
    // S = Q·Kᵀ / √D; if causal, S_ij = −∞ where j > i; P = softmax of each row of S; return P·V.
    throw NotImplemented("attention_forward");
}

AttentionGrads attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor& dout) {
    // Recompute P as in the forward, then dV, dP, dS, dQ, dK (README.md, "The backward pass").
    throw NotImplemented("attention_backward");
}

}  // namespace lab
