// SPOILER: the reference solution of lab 7 (multi-head attention). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "07_multi_head/multi_head.hpp"

#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

Tensor split_heads(const Tensor& x, std::int64_t heads) {
    const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / heads;
    if (C % heads != 0) qkv::fail("split_heads: {} heads do not divide {} channels", heads, C);
    // Head h owns channels [hD, (h+1)D) of each position: first cut the channels, (B, T, H, D),
    // then bring the head dimension in front of time, so each head is a (T, D) matrix.
    if (mutant("reshape_no_transpose")) return qkv::reshape(x, {B, heads, T, D});
    return qkv::transpose(qkv::reshape(x, {B, T, heads, D}), 1, 2);
}

Tensor merge_heads(const Tensor& x) {
    const std::int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
    return qkv::reshape(qkv::transpose(x, 1, 2), {B, T, H * D});  // the heads side by side again
}

Tensor multi_head_attention(const Tensor& x, const MhaWeights& w, std::int64_t heads, bool causal) {
    const Tensor q = split_heads(qkv::linear(x, w.wq, w.bq), heads);
    const Tensor k = split_heads(qkv::linear(x, w.wk, w.bk), heads);
    const Tensor v = split_heads(qkv::linear(x, w.wv, w.bv), heads);
    qkv::AttentionOptions options;
    options.causal = causal;
    // qkv::attention's default scale is 1/√D with D = q.size(-1), one head's size.
    if (mutant("scale_by_c")) options.scale = 1.0 / std::sqrt(double(x.size(2)));
    const Tensor merged = merge_heads(qkv::attention(q, k, v, options));  // (B, T, C)
    if (mutant("no_out_proj")) return merged;
    return qkv::linear(merged, w.wo, w.bo);  // W_O mixes what the heads found
}

}  // namespace lab
