// SPOILER: the reference solution of lab 6 (attention, one head, forward and backward). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "06_attention/attention.hpp"

#include <cmath>
#include <limits>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

namespace {

double scale_of(const Tensor& q) { return mutant("no_scale") ? 1.0 : 1.0 / std::sqrt(double(q.size(1))); }

// The attention weights P = softmax(S), S = Q·Kᵀ/√D with the future masked out when causal.
Tensor weights(const Tensor& q, const Tensor& k, bool causal) {
    Tensor s = qkv::matmul(q, qkv::transpose(k, 0, 1)) * scale_of(q);  // (T_q, T_k)
    if (causal) {
        if (q.size(0) != k.size(0)) qkv::fail("attention: causal needs T_q = T_k, got {} and {}", q.size(0), k.size(0));
        // −∞ gives weight e^−∞ = 0 exactly, and the other weights of the row still sum to 1.
        const Tensor future = qkv::logical_not(qkv::tril_mask(q.size(0), k.size(0)));  // true where j > i
        s = qkv::masked_fill(s, future, mutant("mask_zero") ? 0.0 : -std::numeric_limits<double>::infinity());
    }
    return qkv::softmax(s, -1);
}

}  // namespace

Tensor attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
    return qkv::matmul(weights(q, k, causal), v);
}

AttentionGrads attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor& dout) {
    const Tensor p = weights(q, k, causal);
    const Tensor pt = qkv::transpose(p, 0, 1);
    // O = P·V: the matrix-product rule, dP = dO·Vᵀ and dV = Pᵀ·dO.
    const Tensor dv = qkv::matmul(mutant("dv_not_transposed") ? p : pt, dout);
    const Tensor dp = qkv::matmul(dout, qkv::transpose(v, 0, 1));
    // P = softmax(S) row by row (lab 5): dS = P ⊙ (dP − rowsum(dP ⊙ P)). Masked entries have P = 0,
    // so their dS is 0: no gradient flows to scores the forward ignored.
    const Tensor ds = p * (dp - qkv::sum(dp * p, 1, true));
    // S = (Q·Kᵀ)·s: dQ = dS·K·s and dK = dSᵀ·Q·s.
    const double s = scale_of(q);
    return {qkv::matmul(ds, k) * s, qkv::matmul(qkv::transpose(ds, 0, 1), q) * s, dv};
}

}  // namespace lab
