/// \file
/// \brief Transformer blocks, GPT (with key/value-cached generation) and the encoder–decoder model.
///
/// A reader learns here how the layers assemble into models. A TransformerBlock is two or three
/// residual sublayers (self-attention, optional cross-attention, MLP), pre-LN, x + f(LN(x)), or post-LN
/// as in the paper, LN(x + f(x)). GPT puts causal blocks between token + learned position embeddings
/// and an LM head, initialised as GPT-2; generate() with the key/value cache feeds only the newest
/// token per step. The encoder–decoder follows Vaswani et al.: sinusoidal positions, embeddings scaled
/// by √C, source padding as a key mask. Both constructors check their config before building layers.
#include "qkv/nn/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "qkv/core/autograd.hpp"

namespace qkv::nn {

// ---- block ------------------------------------------------------------------------------------

namespace {
MultiHeadAttentionConfig attn_config(const BlockConfig& c, bool self) {
    MultiHeadAttentionConfig a;
    a.dim = c.dim;
    a.heads = c.heads;
    a.bias = c.bias;
    a.fused_qkv = self && c.fused_qkv;
    a.fused = c.fused;
    return a;
}
std::int64_t hidden_of(std::int64_t hidden, std::int64_t dim) {
    if (hidden < 0) fail("TransformerBlock: hidden must be >= 0 (0 means 4 * dim), got {}", hidden);
    return hidden > 0 ? hidden : 4 * dim;
}
}  // namespace

TransformerBlock::TransformerBlock(const BlockConfig& c, Generator& gen)
    : ln1(c.dim, c.ln_eps), attn(attn_config(c, true), gen), ln2(c.dim, c.ln_eps),
      mlp(c.dim, hidden_of(c.hidden, c.dim), gen, c.bias, c.tanh_gelu),
      drop(c.dropout, c.seed), pre_ln_(c.pre_ln) {
    register_module("ln1", ln1);
    register_module("attn", attn);
    if (c.cross_attention) {
        ln_cross = std::make_unique<LayerNorm>(c.dim, c.ln_eps);
        cross = std::make_unique<MultiHeadAttention>(attn_config(c, false), gen);
        register_module("ln_cross", *ln_cross);
        register_module("cross", *cross);
    }
    register_module("ln2", ln2);
    register_module("mlp", mlp);
    register_module("drop", drop);  // (no parameters; registered so that eval() turns it off)
}

// pre-LN:  x + f(LN(x))        post-LN:  LN(x + f(x))
Tensor TransformerBlock::residual(const Tensor& x, LayerNorm& ln, const std::function<Tensor(const Tensor&)>& f) {
    return pre_ln_ ? x + drop(f(ln(x))) : ln(x + drop(f(x)));
}

Tensor TransformerBlock::forward(const Tensor& x, const AttentionOptions& self_opt, const Tensor& memory,
                                 const AttentionOptions& cross_opt) {
    const ScopeGuard scope(*this);
    Tensor h = residual(x, ln1, [&](const Tensor& t) { return attn.forward(t, self_opt); });
    if (cross) {
        if (!memory.defined()) fail("TransformerBlock: this block has cross-attention and needs the encoder's memory");
        h = residual(h, *ln_cross, [&](const Tensor& t) { return cross->forward(t, memory, cross_opt); });
    }
    return residual(h, ln2, [&](const Tensor& t) { return mlp(t); });
}

Tensor TransformerBlock::forward_cached(const Tensor& x, KVCache& cache) {
    const ScopeGuard scope(*this);
    if (cross) fail("TransformerBlock: cached generation is for decoder-only blocks");
    const Tensor h = residual(x, ln1, [&](const Tensor& t) { return attn.forward_cached(t, cache); });
    return residual(h, ln2, [&](const Tensor& t) { return mlp(t); });
}

// ---- sampling ---------------------------------------------------------------------------------

namespace {
// sample_token on a row of V logits already read out of the tensor.
std::int32_t sample_from(const std::vector<double>& z, const SampleOptions& opt, Generator& gen) {
    const auto best = std::max_element(z.begin(), z.end()) - z.begin();
    if (opt.greedy) return std::int32_t(best);
    if (!(opt.temperature > 0)) fail("sample_token: temperature must be > 0, got {}", opt.temperature);
    if (!(opt.top_p > 0 && opt.top_p <= 1)) fail("sample_token: top_p must be in (0, 1], got {}", opt.top_p);
    // Keep the top k (all if k = 0), then softmax(z / temperature) over them and draw.
    std::vector<std::size_t> order(z.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return z[a] > z[b]; });
    std::size_t k = opt.top_k > 0 ? std::min<std::size_t>(std::size_t(opt.top_k), z.size()) : z.size();
    std::vector<double> p(k);
    double total = 0;
    for (std::size_t i = 0; i < k; ++i) total += p[i] = std::exp((z[order[i]] - z[order[0]]) / opt.temperature);
    // Top-p: the probabilities are sorted, largest first; keep the shortest prefix that holds at
    // least top_p of the mass (p are unnormalised: compare with top_p · total).
    if (opt.top_p < 1) {
        double mass = 0;
        std::size_t keep = 0;
        while (keep < k && !(mass >= opt.top_p * total)) mass += p[keep++];
        k = std::max<std::size_t>(keep, 1);
        total = mass > 0 ? mass : p[0];
    }
    double u = gen.uniform() * total;
    for (std::size_t i = 0; i < k; ++i) {
        if (u < p[i]) return std::int32_t(order[i]);
        u -= p[i];
    }
    return std::int32_t(order[k - 1]);
}
}  // namespace

std::int32_t sample_token(const Tensor& logits, const SampleOptions& opt, Generator& gen) {
    if (!logits.defined() || logits.dim() != 1 || logits.numel() == 0)
        fail("sample_token: expected a non-empty (V) row of logits");
    return sample_from(logits.to_vector<double>(), opt, gen);
}

// ---- GPT --------------------------------------------------------------------------------------

namespace {
void init_linear(Linear& l, Generator& gen) {
    init_normal(l.weight, 0.02, gen);
    if (l.bias.defined()) init_constant(l.bias, 0.0);
}
void init_attention(MultiHeadAttention& a, Generator& gen) {
    for (auto* l : {a.q_proj.get(), a.k_proj.get(), a.v_proj.get(), a.qkv_proj.get(), &a.out_proj})
        if (l) init_linear(*l, gen);
}
void init_block(TransformerBlock& b, Generator& gen) {
    init_attention(b.attn, gen);
    if (b.cross) init_attention(*b.cross, gen);
    init_linear(b.mlp.fc1, gen);
    init_linear(b.mlp.fc2, gen);
}
void check_ids(const char* who, const Tensor& ids, std::int64_t max_len) {
    if (!ids.defined() || ids.dtype() != i32 || ids.dim() != 2)
        fail("{}: expected ids of shape (B, T) and dtype i32, got {}", who,
             ids.defined() ? fmt::format("{} {}", dtype_name(ids.dtype()), shape_str(ids.shape())) : "undefined");
    if (ids.size(1) > max_len) fail("{}: sequence length {} exceeds the model's maximum {}", who, ids.size(1), max_len);
}

// Config checks run first (cfg_ is the first member), so a bad size is reported under the model's
// own field name before any layer is built from it.
void check_at_least_1(const char* who, const char* field, std::int64_t v) {
    if (v < 1) fail("{}: {} must be >= 1, got {}", who, field, v);
}
// The MLP width may be 0, which means 4 * dim; only a negative width is an error.
void check_hidden(const char* who, std::int64_t hidden) {
    if (hidden < 0) fail("{}: hidden must be >= 0 (0 means 4 * dim), got {}", who, hidden);
}
const GPTConfig& validated(const GPTConfig& c) {
    check_at_least_1("GPT", "vocab", c.vocab);
    check_at_least_1("GPT", "block_size", c.block_size);
    check_at_least_1("GPT", "dim", c.dim);
    check_at_least_1("GPT", "heads", c.heads);
    check_at_least_1("GPT", "layers", c.layers);
    check_hidden("GPT", c.hidden);
    if (c.dim % c.heads != 0) fail("GPT: heads ({}) must divide dim ({})", c.heads, c.dim);
    if (!(c.ln_eps > 0 && std::isfinite(c.ln_eps))) fail("GPT: ln_eps must be finite and > 0, got {}", c.ln_eps);
    return c;
}
const Seq2SeqConfig& validated(const Seq2SeqConfig& c) {
    check_at_least_1("Transformer", "src_vocab", c.src_vocab);
    check_at_least_1("Transformer", "tgt_vocab", c.tgt_vocab);
    check_at_least_1("Transformer", "max_len", c.max_len);
    check_at_least_1("Transformer", "dim", c.dim);
    check_at_least_1("Transformer", "heads", c.heads);
    check_at_least_1("Transformer", "encoder_layers", c.encoder_layers);
    check_at_least_1("Transformer", "decoder_layers", c.decoder_layers);
    check_hidden("Transformer", c.hidden);
    if (c.dim % c.heads != 0) fail("Transformer: heads ({}) must divide dim ({})", c.heads, c.dim);
    return c;
}
}  // namespace

GPT::GPT(const GPTConfig& c)
    : cfg_(validated(c)), init_gen_(c.seed), tok_emb(c.vocab, c.dim, init_gen_), pos_emb(c.block_size, c.dim, init_gen_),
      ln_f(c.dim, c.ln_eps), drop_(c.dropout, c.seed + 1) {
    register_module("tok_emb", tok_emb);
    register_module("pos_emb", pos_emb);
    register_module("drop", drop_);  // (no parameters; registered so that eval() turns it off)
    BlockConfig bc;
    bc.dim = c.dim;
    bc.heads = c.heads;
    bc.hidden = c.hidden;
    bc.pre_ln = c.pre_ln;
    bc.fused_qkv = true;
    bc.fused = c.fused;
    bc.tanh_gelu = c.tanh_gelu;
    bc.ln_eps = c.ln_eps;
    bc.dropout = c.dropout;
    for (std::int64_t l = 0; l < c.layers; ++l) {
        bc.seed = c.seed + 100 + std::uint64_t(l);
        blocks_.push_back(std::make_unique<TransformerBlock>(bc, init_gen_));
        register_module("blocks." + std::to_string(l), *blocks_.back());
    }
    register_module("ln_f", ln_f);
    if (!c.tie_weights) {
        lm_head = std::make_unique<Linear>(c.dim, c.vocab, init_gen_, false);
        register_module("lm_head", *lm_head);
    }
    // GPT-2's initialisation: every weight matrix and embedding N(0, 0.02), biases 0, LN γ=1 β=0.
    init_normal(tok_emb.weight, 0.02, init_gen_);
    init_normal(pos_emb.weight, 0.02, init_gen_);
    for (auto& b : blocks_) init_block(*b, init_gen_);
    if (lm_head) init_linear(*lm_head, init_gen_);
}

// The same offsets as the constructor's seeds, so that each generator gets a stream of its own.
void GPT::reseed_dropout(std::uint64_t seed) {
    drop_.gen.manual_seed(seed + 1);
    for (std::size_t l = 0; l < blocks_.size(); ++l) blocks_[l]->drop.gen.manual_seed(seed + 100 + l);
}

// Mirrors the constructor above, layer by layer (the test of parameter_count keeps them together).
double GPT::parameter_count(const GPTConfig& config) {
    const GPTConfig& c = validated(config);
    const double C = double(c.dim), V = double(c.vocab), hidden = double(c.hidden > 0 ? c.hidden : 4 * c.dim);
    const double layer_norm = 2 * C;                                  // γ, β
    const double attention = (C * 3 * C + 3 * C) + (C * C + C);       // fused Q/K/V projection, W_O (with biases)
    const double mlp = (C * hidden + hidden) + (hidden * C + C);      // fc1, fc2 (with biases)
    const double block = 2 * layer_norm + attention + mlp;
    const double embeddings = V * C + double(c.block_size) * C;       // tokens, positions
    const double head = c.tie_weights ? 0 : C * V;                    // LM head, no bias (or the tied embedding)
    return embeddings + double(c.layers) * block + layer_norm + head;
}

Tensor GPT::embed(const Tensor& ids, std::int64_t start) {
    const ScopeGuard scope(*this);
    check_ids("GPT", ids, cfg_.block_size - start);
    return drop_(tok_emb(ids) + pos_emb.forward(ids.size(1), start));  // (B,T,C) + (T,C)
}

Tensor GPT::head(const Tensor& h) const {
    const ScopeGuard scope(*this);
    const Tensor n = ln_f(h);
    return lm_head ? (*lm_head)(n) : linear(n, tok_emb.weight);  // tied: logits = h·Eᵀ
}

Tensor GPT::forward(const Tensor& ids) {
    const ScopeGuard scope(*this);
    Tensor h = embed(ids, 0);
    AttentionOptions causal;
    causal.causal = true;
    for (auto& b : blocks_) h = b->forward(h, causal);
    return head(h);
}

Tensor GPT::loss(const Tensor& ids, const Tensor& targets) {
    const ScopeGuard scope(*this);
    const Tensor logits = forward(ids);
    return cross_entropy(reshape(logits, {-1, cfg_.vocab}), reshape(targets, {-1}));
}

Tensor GPT::generate(const Tensor& prompt, std::int64_t steps, const SampleOptions& opt, Generator& gen, bool use_cache,
                     const TokenCallback& on_token) {
    const ScopeGuard scope(*this);
    // Any prompt length: the model reads at most its last block_size tokens (see below).
    check_ids("GPT::generate", prompt, std::numeric_limits<std::int64_t>::max());
    if (steps < 0) fail("GPT::generate: steps must be >= 0, got {}", steps);
    if (prompt.size(1) == 0) fail("GPT::generate: the prompt must hold at least one token");
    NoGradGuard no_grad;
    const std::int64_t B = prompt.size(0), W = cfg_.block_size;
    std::vector<std::vector<std::int32_t>> seqs(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < prompt.size(1); ++t) seqs[std::size_t(b)].push_back(std::int32_t(prompt.at({b, t})));
    // The last `len` tokens of every sequence, (B, len).
    auto last_tokens = [&](std::int64_t len) {
        std::vector<std::int32_t> flat;
        for (auto& sq : seqs) flat.insert(flat.end(), sq.end() - len, sq.end());
        return from(flat, {B, len});
    };
    std::vector<KVCache> caches(blocks_.size());
    for (std::int64_t s = 0; s < steps; ++s) {
        const auto n = std::int64_t(seqs[0].size());
        Tensor logits;
        if (!use_cache || n > W) {
            // The window: the last min(n, W) tokens, at positions 0 … — the positions the model was
            // trained with. Once the sequence is longer than W the window slides by one token per
            // step, every token's position changes, and so does everything computed from it: the
            // whole window is recomputed (cached keys and values would belong to old positions).
            logits = forward(last_tokens(std::min(n, W)));
        } else {
            // Within the context, feed only what the cache has not seen: the whole prompt at the
            // first step, then one token per step at the next position.
            const Tensor input = last_tokens(n - caches[0].length());
            Tensor h = embed(input, caches[0].length());
            for (std::size_t l = 0; l < blocks_.size(); ++l) h = blocks_[l]->forward_cached(h, caches[l]);
            logits = head(narrow(h, 1, h.size(1) - 1, 1));  // only the last position is sampled
        }
        // The logits of each sequence's last position, (B, V), read out once.
        const std::int64_t T = logits.size(1), V = cfg_.vocab;
        const std::vector<double> last = narrow(logits, 1, T - 1, 1).to_vector<double>();
        std::vector<std::int32_t> next(static_cast<std::size_t>(B));
        for (std::int64_t b = 0; b < B; ++b) {
            const std::vector<double> row(last.begin() + b * V, last.begin() + (b + 1) * V);
            next[std::size_t(b)] = sample_from(row, opt, gen);
            seqs[std::size_t(b)].push_back(next[std::size_t(b)]);
        }
        if (on_token && !on_token(next)) break;  // the caller has seen enough
    }
    std::vector<std::int32_t> flat;
    for (auto& sq : seqs) flat.insert(flat.end(), sq.begin(), sq.end());
    return from(flat, {B, std::int64_t(seqs[0].size())});
}

// ---- encoder–decoder --------------------------------------------------------------------------

Transformer::Transformer(const Seq2SeqConfig& c)
    : cfg_(validated(c)), init_gen_(c.seed), src_emb(c.src_vocab, c.dim, init_gen_), tgt_emb(c.tgt_vocab, c.dim, init_gen_),
      pos(c.max_len, c.dim), ln_enc(c.dim), ln_dec(c.dim), out(c.dim, c.tgt_vocab, init_gen_) {
    register_module("src_emb", src_emb);
    register_module("tgt_emb", tgt_emb);
    BlockConfig bc;
    bc.dim = c.dim;
    bc.heads = c.heads;
    bc.hidden = c.hidden;
    bc.pre_ln = c.pre_ln;
    bc.dropout = c.dropout;
    for (std::int64_t l = 0; l < c.encoder_layers; ++l) {
        bc.seed = c.seed + 100 + std::uint64_t(l);
        encoder_.push_back(std::make_unique<TransformerBlock>(bc, init_gen_));
        register_module("encoder." + std::to_string(l), *encoder_.back());
    }
    bc.cross_attention = true;
    for (std::int64_t l = 0; l < c.decoder_layers; ++l) {
        bc.seed = c.seed + 200 + std::uint64_t(l);
        decoder_.push_back(std::make_unique<TransformerBlock>(bc, init_gen_));
        register_module("decoder." + std::to_string(l), *decoder_.back());
    }
    register_module("ln_enc", ln_enc);
    register_module("ln_dec", ln_dec);
    register_module("out", out);
    // Small embeddings: multiplied by √C below, they then match the unit-scale sinusoids.
    init_normal(src_emb.weight, 1.0 / std::sqrt(double(c.dim)), init_gen_);
    init_normal(tgt_emb.weight, 1.0 / std::sqrt(double(c.dim)), init_gen_);
}

// The paper multiplies embeddings by √C before adding the positional encodings.
Tensor Transformer::embed(const Embedding& emb, const Tensor& ids) {
    const ScopeGuard scope(*this);
    check_ids("Transformer", ids, cfg_.max_len);
    const Tensor e = emb(ids);
    return e * std::sqrt(double(cfg_.dim)) + pos.forward(ids.size(1), 0, e.dtype());
}

namespace {
// Source padding (B, S) → a mask (B, 1, 1, S) that blocks those keys for every head and query.
AttentionOptions padding_options(const Tensor& pad) {
    AttentionOptions o;
    if (pad.defined()) {
        if (pad.dtype() != b8 || pad.dim() != 2) fail("Transformer: src_padding must be a (B, S) b8 tensor");
        o.mask = reshape(pad, {pad.size(0), 1, 1, pad.size(1)});
    }
    return o;
}
}  // namespace

Tensor Transformer::encode(const Tensor& src, const Tensor& src_padding) {
    const ScopeGuard scope(*this);
    Tensor h = embed(src_emb, src);
    const AttentionOptions opt = padding_options(src_padding);
    for (auto& b : encoder_) h = b->forward(h, opt);
    return cfg_.pre_ln ? ln_enc(h) : h;
}

Tensor Transformer::decode(const Tensor& tgt, const Tensor& memory, const Tensor& src_padding) {
    const ScopeGuard scope(*this);
    Tensor h = embed(tgt_emb, tgt);
    AttentionOptions causal;
    causal.causal = true;
    const AttentionOptions cross = padding_options(src_padding);
    for (auto& b : decoder_) h = b->forward(h, causal, memory, cross);
    return out(cfg_.pre_ln ? ln_dec(h) : h);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_padding) {
    const ScopeGuard scope(*this);
    return decode(tgt, encode(src, src_padding), src_padding);
}

Tensor Transformer::greedy_decode(const Tensor& src, std::int32_t bos, std::int64_t steps, const Tensor& src_padding) {
    if (steps < 0 || steps + 1 > cfg_.max_len) fail("Transformer::greedy_decode: {} steps exceed max_len {}", steps, cfg_.max_len);
    NoGradGuard no_grad;
    const Tensor memory = encode(src, src_padding);
    const std::int64_t B = src.size(0);
    std::vector<std::int32_t> seq(static_cast<std::size_t>(B), bos);  // (B, t) row-major, grows by one column per step
    std::int64_t t = 1;
    for (std::int64_t s = 0; s < steps; ++s, ++t) {
        const Tensor logits = decode(from(seq, {B, t}), memory, src_padding);  // (B, t, V)
        const Tensor last = argmax(narrow(logits, 1, t - 1, 1), -1);          // (B, 1)
        std::vector<std::int32_t> next_seq;
        for (std::int64_t b = 0; b < B; ++b) {
            next_seq.insert(next_seq.end(), seq.begin() + b * t, seq.begin() + (b + 1) * t);
            next_seq.push_back(std::int32_t(last.at({b, 0})));
        }
        seq = std::move(next_seq);
    }
    Tensor all = from(seq, {B, t});
    return narrow(all, 1, 1, steps);
}

}  // namespace qkv::nn
