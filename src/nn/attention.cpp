/// \file
/// \brief Composed attention and the attention layers.
///
/// A reader learns here attention written two ways. scaled_dot_product_attention spells out
/// \f$ \mathrm{softmax}(QK^\top/\sqrt{D} + M)\,V \f$ one primitive op per step, so autograd derives its
/// backward and the fused ops (ops/attention.cpp) have a reference to be tested against; each layer can
/// use either (`fused`). MultiHeadAttention shows that many heads are only a reshape: (B, T, H·D) →
/// (B, H, T, D), attend, and put the heads back side by side for one output Linear. forward_cached
/// appends new keys and values to a cache, for generation; layers keep their last attention weights.
#include "qkv/nn/attention.hpp"

#include <cmath>
#include <limits>

#include "qkv/core/autograd.hpp"

namespace qkv::nn {

// softmax(scale·QKᵀ + M)·V, one primitive op per step of the formula.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
    if (!q.defined() || q.dim() < 2) fail("scaled_dot_product_attention: q must have at least 2 dims");
    const std::int64_t D = q.size(-1), Tq = q.size(-2), Tk = k.size(-2);
    const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(D));
    Tensor scores = mul(matmul(q, transpose(k, -2, -1)), scale);  // (…, T_q, T_k)
    const double inf = std::numeric_limits<double>::infinity();
    if (opt.mask.defined()) scores = masked_fill(scores, opt.mask, -inf);
    if (opt.causal) scores = masked_fill(scores, logical_not(tril_mask(Tq, Tk, Tk - Tq)), -inf);
    const Tensor weights = softmax(scores, -1);  // a fully blocked row gives zeros
    if (opt.weights) *opt.weights = weights.detach();
    return matmul(weights, v);
}

// ---- one head ---------------------------------------------------------------------------------

SelfAttention::SelfAttention(std::int64_t dim, std::int64_t head_size, Generator& gen, bool c, bool f)
    : query(dim, head_size, gen, false), key(dim, head_size, gen, false), value(dim, head_size, gen, false),
      causal(c), fused(f) {
    register_module("query", query);
    register_module("key", key);
    register_module("value", value);
}

Tensor SelfAttention::forward(const Tensor& x, const Tensor& mask) {
    const ScopeGuard scope(*this);
    if (!x.defined() || x.dim() != 3) fail("SelfAttention: expected x of shape (B, T, C), got {}", x.defined() ? shape_str(x.shape()) : "undefined");
    const Tensor q = query(x), k = key(x), v = value(x);  // (B, T, D) each
    AttentionOptions opt;
    opt.mask = mask;
    opt.causal = causal;
    opt.weights = &weights_;
    const Tensor out = fused ? attention(q, k, v, opt) : scaled_dot_product_attention(q, k, v, opt);
    weights_ = unsqueeze(weights_, 1);  // (B, 1, T, T): one head
    return out;
}

// ---- many heads -------------------------------------------------------------------------------

namespace {
const MultiHeadAttentionConfig& validated(const MultiHeadAttentionConfig& c) {
    if (c.dim < 1 || c.heads < 1 || c.dim % c.heads != 0)
        fail("MultiHeadAttention: {} heads must divide d_model {} (both positive)", c.heads, c.dim);
    return c;
}
}  // namespace

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionConfig& c, Generator& gen)
    : out_proj(validated(c).dim, c.dim, gen, c.bias), drop(c.dropout, c.seed), cfg_(c) {
    if (c.fused_qkv) {
        qkv_proj = std::make_unique<Linear>(c.dim, 3 * c.dim, gen, c.bias);
        register_module("qkv_proj", *qkv_proj);
    } else {
        q_proj = std::make_unique<Linear>(c.dim, c.dim, gen, c.bias);
        k_proj = std::make_unique<Linear>(c.dim, c.dim, gen, c.bias);
        v_proj = std::make_unique<Linear>(c.dim, c.dim, gen, c.bias);
        register_module("q_proj", *q_proj);
        register_module("k_proj", *k_proj);
        register_module("v_proj", *v_proj);
    }
    register_module("out_proj", out_proj);
    register_module("drop", drop);  // (no parameters; registered so that eval() turns it off)
}

// The heads' outputs come back side by side in the channels — that *is* the concatenation — so
// one Linear applies W_O to Concat(head_1..head_H).
Tensor MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
    const ScopeGuard scope(*this);
    AttentionOptions opt = options;
    opt.weights = &weights_;
    Tensor heads_out;
    if (cfg_.fused) {
        heads_out = head_attention(q, k, v, cfg_.heads, opt);
    } else {
        // Composed path: split heads explicitly, (B, T, H·D) → (B, H, T, D), and back.
        const std::int64_t B = q.size(0), H = cfg_.heads, D = cfg_.dim / H;
        auto split = [&](const Tensor& t) { return permute(reshape(t, {B, t.size(1), H, D}), {0, 2, 1, 3}); };
        const Tensor o = scaled_dot_product_attention(split(q), split(k), split(v), opt);
        heads_out = reshape(permute(o, {0, 2, 1, 3}), {B, q.size(1), cfg_.dim});
    }
    return drop(out_proj(heads_out));
}

void MultiHeadAttention::check_input(const Tensor& x) const {
    if (!x.defined() || x.dim() != 3 || x.size(2) != cfg_.dim)
        fail("MultiHeadAttention: expected x of shape (B, T, {}), got {}", cfg_.dim,
             x.defined() ? shape_str(x.shape()) : "undefined");
}

void MultiHeadAttention::project_self(const Tensor& x, Tensor& q, Tensor& k, Tensor& v) const {
    check_input(x);
    if (qkv_proj) {
        const auto parts = split((*qkv_proj)(x), cfg_.dim, -1);
        q = parts[0], k = parts[1], v = parts[2];
    } else {
        q = (*q_proj)(x), k = (*k_proj)(x), v = (*v_proj)(x);
    }
}

Tensor MultiHeadAttention::forward(const Tensor& x, const AttentionOptions& options) {
    const ScopeGuard scope(*this);
    if (qkv_proj && cfg_.fused) {  // fastest path: attention reads the packed projection directly
        check_input(x);
        AttentionOptions opt = options;
        opt.weights = &weights_;
        return drop(out_proj(head_attention_qkv((*qkv_proj)(x), cfg_.heads, opt)));
    }
    Tensor q, k, v;
    project_self(x, q, k, v);
    return attend(q, k, v, options);
}

Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& memory, const AttentionOptions& options) {
    const ScopeGuard scope(*this);
    if (qkv_proj) fail("MultiHeadAttention: cross-attention needs separate projections (fused_qkv = false)");
    if (!x.defined() || !memory.defined() || x.dim() != 3 || memory.dim() != 3 || x.size(2) != cfg_.dim ||
        memory.size(2) != cfg_.dim || memory.size(0) != x.size(0))
        fail("MultiHeadAttention: cross-attention expects x (B, T_q, {0}) and memory (B, T_k, {0}), got {1} and {2}",
             cfg_.dim, x.defined() ? shape_str(x.shape()) : "undefined",
             memory.defined() ? shape_str(memory.shape()) : "undefined");
    return attend((*q_proj)(x), (*k_proj)(memory), (*v_proj)(memory), options);
}

Tensor MultiHeadAttention::forward_cached(const Tensor& x, KVCache& cache) {
    const ScopeGuard scope(*this);
    Tensor q, k, v;
    project_self(x, q, k, v);
    if (cache.length() > 0) {
        if (cache.k.size(0) != x.size(0))
            fail("MultiHeadAttention: cache holds batch {}, input has batch {}", cache.k.size(0), x.size(0));
        k = concat({cache.k, k}, 1);
        v = concat({cache.v, v}, 1);
    }
    cache.k = k.detach();
    cache.v = v.detach();
    AttentionOptions opt;
    opt.causal = true;  // the new queries sit at the end of the keys: causal alignment handles it
    return attend(q, k, v, opt);
}

}  // namespace qkv::nn
