// Lab 9: embeddings and cross-entropy. Your file: replace each `throw NotImplemented(...)` with
// your code, then run `build/tutorials/labs/grade 9`. README.md has the math.
//
// Token ids and targets are i32: ids.data<std::int32_t>(). Everything else is float64.
#include "embed_loss.hpp"

#include <cmath>

namespace lab {

using qkv::Tensor;

Tensor embed_forward(const Tensor& tok, const Tensor& pos, const Tensor& ids) {
    // h[b][t][c] = tok[ids[b][t]][c] + pos[t][c]
    throw NotImplemented("embed_forward");
}

EmbedGrads embed_backward(const Tensor& ids, const Tensor& dh, std::int64_t vocab, std::int64_t max_len) {
    // Start from zeros; for every (b, t): dtok[ids[b][t]] += dh[b][t] and dpos[t] += dh[b][t].
    throw NotImplemented("embed_backward");
}

double cross_entropy_forward(const Tensor& logits, const Tensor& targets) {
    // Per row n: m = max z, lse = m + log Σ exp(z − m), loss_n = lse − z[target]. Return the mean.
    throw NotImplemented("cross_entropy_forward");
}

Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets) {
    // Per row n: softmax(z) (stable), minus 1 at the target, all divided by N.
    throw NotImplemented("cross_entropy_backward");
}

}  // namespace lab
