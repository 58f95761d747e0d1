/// \file
/// \brief Transformer blocks and the two classic models: a decoder-only GPT and the
/// encoder–decoder Transformer of "Attention Is All You Need".
///
/// A block is attention (positions exchange information) followed by a feed-forward MLP (each
/// position thinks on its own), each wrapped in a residual connection and a layer norm. Where the
/// norm sits matters: the paper normalises *after* adding the residual (post-LN,
/// \f$ x = \mathrm{LN}(x + f(x)) \f$); GPT-2 and most models since normalise the *input* of each
/// sub-layer (pre-LN, \f$ x = x + f(\mathrm{LN}(x)) \f$), which keeps a clean residual path from
/// output to input and trains more stably without warm-up. Both are here to compare.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "qkv/nn/attention.hpp"

namespace qkv::nn {

/// Settings of a TransformerBlock.
struct BlockConfig {
    std::int64_t dim = 64;         ///< C
    std::int64_t heads = 4;        ///< H
    std::int64_t hidden = 0;       ///< MLP width; 0 means 4·C (negative is an error)
    bool pre_ln = true;            ///< pre-LN (GPT-2) or post-LN (the paper)
    bool cross_attention = false;  ///< add a cross-attention sub-layer (decoder of an encoder–decoder)
    bool fused_qkv = false;        ///< one C → 3C projection for self-attention
    bool bias = true;              ///< biases in Linear layers
    bool fused = true;             ///< fused attention op (false: composed from primitives)
    bool tanh_gelu = false;        ///< the MLP's GELU: tanh approximation (GPT-2) instead of exact erf
    double ln_eps = 1e-5;          ///< the layer norms' ε (added to the variance)
    double dropout = 0.0;          ///< residual dropout
    std::uint64_t seed = 0;        ///< dropout seed
};

/// \brief One transformer block: self-attention, optional cross-attention, MLP; residuals and LNs.
class TransformerBlock : public Module {
public:
    /// \param config sizes and options \param gen initialisation
    TransformerBlock(const BlockConfig& config, Generator& gen);
    /// \brief Apply. \param x (B, T, C) \param self_options mask/causal for self-attention
    /// \param memory encoder output (B, S, C), for blocks with cross-attention
    /// \param cross_options mask for cross-attention (e.g. source padding)
    /// \return the block's output (B, T, C)
    Tensor forward(const Tensor& x, const AttentionOptions& self_options = {}, const Tensor& memory = Tensor(),
                   const AttentionOptions& cross_options = {});
    /// \brief Causal self-attention step with a key/value cache (generation; no cross-attention).
    /// \param x (B, T_new, C) \param cache this block's cache
    /// \return the block's output for the new positions (B, T_new, C)
    Tensor forward_cached(const Tensor& x, KVCache& cache);
    LayerNorm ln1;                             ///< before (pre-LN) or after (post-LN) self-attention
    MultiHeadAttention attn;                   ///< self-attention
    std::unique_ptr<LayerNorm> ln_cross;       ///< around cross-attention
    std::unique_ptr<MultiHeadAttention> cross; ///< cross-attention (queries here, keys/values from memory)
    LayerNorm ln2;                             ///< around the MLP
    FeedForward mlp;                           ///< position-wise MLP
    Dropout drop;                              ///< residual dropout

private:
    Tensor residual(const Tensor& x, LayerNorm& ln, const std::function<Tensor(const Tensor&)>& f);
    bool pre_ln_;
};

/// \brief How to pick the next token from logits: greedily, or by sampling from
/// softmax(logits / temperature) restricted to the top-k tokens and then to the top-p "nucleus".
struct SampleOptions {
    bool greedy = true;         ///< take the most likely token (ignores the other fields)
    double temperature = 1.0;   ///< divide logits by this (> 0): lower is more conservative
    std::int64_t top_k = 0;     ///< sample only among the k most likely tokens (0 = all)
    /// \brief Nucleus sampling (Holtzman et al. 2020), in (0, 1]: after temperature and top-k, keep
    /// only the most likely tokens whose probabilities first add up to at least top_p (at least one
    /// token), and renormalise. 1 keeps them all. Unlike a fixed k, the nucleus is small where the
    /// model is sure and wide where it is not.
    double top_p = 1.0;
};

/// \brief Choose one token from a row of logits. Throws qkv::Error when sampling with a temperature
/// that is not > 0 or a top_p outside (0, 1].
/// \param logits (V) scores \param options greedy / temperature / top-k / top-p \param gen randomness for sampling
/// \return the chosen token id, in [0, V)
std::int32_t sample_token(const Tensor& logits, const SampleOptions& options, Generator& gen);

/// \brief Called by GPT::generate() after each step with the new token of every row (B ids), e.g. to
/// print text as it is produced; returning false stops the generation after this step.
using TokenCallback = std::function<bool(const std::vector<std::int32_t>& next)>;

/// Settings of a GPT model.
struct GPTConfig {
    std::int64_t vocab = 16;       ///< V
    std::int64_t block_size = 64;  ///< longest sequence (number of learned positions)
    std::int64_t dim = 64;         ///< C
    std::int64_t heads = 4;        ///< H
    std::int64_t layers = 2;       ///< number of blocks
    std::int64_t hidden = 0;       ///< MLP width; 0 means 4·C (negative is an error)
    double dropout = 0.0;          ///< residual and embedding dropout
    bool tie_weights = false;      ///< LM head shares the token embedding matrix
    bool pre_ln = true;            ///< pre-LN blocks
    bool fused = true;             ///< fused attention op
    bool tanh_gelu = false;        ///< GELU by its tanh approximation, as GPT-2 (false: exact erf)
    double ln_eps = 1e-5;          ///< ε of every layer norm (GPT-2's config.json: layer_norm_epsilon)
    std::uint64_t seed = 0;        ///< initialisation and dropout seed
};

/// \brief A decoder-only transformer language model (GPT): token + position embeddings, N causal
/// blocks, a final LayerNorm and an LM head (C → V, no bias). Weights start N(0, 0.02), biases 0.
class GPT : public Module {
    // Declared first so they exist before the layers below are constructed from them.
    GPTConfig cfg_;
    Generator init_gen_;

public:
    /// \brief Build and initialise the model. Throws qkv::Error, naming the field, when vocab,
    /// block_size, dim, heads or layers is < 1, hidden is < 0 or heads does not divide dim.
    /// \param config sizes and options
    explicit GPT(const GPTConfig& config);
    /// \brief Logits for every position. \param ids (B, T) i32, T ≤ block_size \return (B, T, V)
    Tensor forward(const Tensor& ids);
    /// \brief Same as forward(). \param ids (B, T) i32
    /// \return the logits (B, T, V)
    Tensor operator()(const Tensor& ids) { return forward(ids); }
    /// \brief Mean cross-entropy of next-token prediction. \param ids (B, T) inputs
    /// \param targets (B, T) i32 next tokens (ignore_index −100 skips a position)
    /// \return the mean loss over the counted positions, a 0-d tensor ()
    Tensor loss(const Tensor& ids, const Tensor& targets);
    /// \brief Continue each row of \p prompt by \p steps tokens (no gradients recorded).
    /// With \p use_cache each step feeds only the newest token and reuses cached keys/values;
    /// without, it recomputes the whole sequence (the results are the same).
    ///
    /// Prompt and continuation may be longer than block_size: the model then reads a sliding
    /// window, the last block_size tokens, at positions 0 … block_size−1 — the positions it learned.
    /// Each step past the context therefore recomputes the whole window, with or without the cache:
    /// sliding the window moves every token to a new position, and cached keys and values belong to
    /// the positions they were computed at. (The cache still saves the work up to block_size.)
    /// \param prompt (B, T₀) i32, T₀ ≥ 1 (any length) \param steps tokens to add (≥ 0)
    /// \param options greedy/temperature/top-k/top-p \param gen randomness for sampling
    /// \param use_cache use the key/value cache
    /// \param on_token called after every step with each row's new token (streaming); when it
    /// returns false, generation stops there. May be empty.
    /// \return (B, T₀ + n) i32: the prompt followed by the n new tokens (n = \p steps, or fewer when
    /// \p on_token stopped it)
    Tensor generate(const Tensor& prompt, std::int64_t steps, const SampleOptions& options, Generator& gen,
                    bool use_cache = true, const TokenCallback& on_token = {});
    /// \brief Restart every dropout mask generator of the model (after the embeddings, in each block)
    /// from \p seed. A training loop that calls this before each step with a seed made of (run seed,
    /// step) draws masks that depend on the step alone, so a run resumed from a checkpoint draws
    /// the same masks as one that never stopped. \param seed the seed of this step's masks
    void reseed_dropout(std::uint64_t seed);
    /// \brief Settings.
    /// \return the configuration it was built with
    const GPTConfig& config() const { return cfg_; }
    /// \brief The number of parameters a GPT of \p config has, computed without building it — to
    /// tell, before allocating anything, how much memory a model will need. Equals
    /// `GPT(config).num_parameters()` (a test checks it). Throws like the constructor on a bad config.
    /// \param config sizes and options
    /// \return the number of scalar parameters, as a double (it may exceed what fits in memory)
    static double parameter_count(const GPTConfig& config);
    /// \brief The blocks, in order (to inspect their attention weights).
    /// \return the config().layers blocks, first to last
    const std::vector<std::unique_ptr<TransformerBlock>>& blocks() const { return blocks_; }
    Embedding tok_emb;                 ///< (V, C)
    LearnedPositions pos_emb;          ///< (block_size, C)
    LayerNorm ln_f;                    ///< final norm
    std::unique_ptr<Linear> lm_head;   ///< C → V (absent when tied)

private:
    Tensor embed(const Tensor& ids, std::int64_t start);
    Tensor head(const Tensor& h) const;
    Dropout drop_;
    std::vector<std::unique_ptr<TransformerBlock>> blocks_;
};

/// Settings of an encoder–decoder Transformer.
struct Seq2SeqConfig {
    std::int64_t src_vocab = 16;   ///< source vocabulary
    std::int64_t tgt_vocab = 16;   ///< target vocabulary
    std::int64_t max_len = 64;     ///< longest source or target
    std::int64_t dim = 64;         ///< C
    std::int64_t heads = 4;        ///< H
    std::int64_t encoder_layers = 2;  ///< encoder blocks
    std::int64_t decoder_layers = 2;  ///< decoder blocks
    std::int64_t hidden = 0;       ///< MLP width; 0 means 4·C (negative is an error)
    double dropout = 0.0;          ///< dropout
    bool pre_ln = true;            ///< pre-LN (true) or the paper's post-LN
    std::uint64_t seed = 0;        ///< initialisation seed
};

/// \brief The encoder–decoder Transformer of Vaswani et al. (2017): the encoder reads the source
/// with bidirectional self-attention; each decoder block attends causally to the target so far and,
/// through cross-attention, to the encoder's output. Sinusoidal positions; embeddings scaled by √C.
class Transformer : public Module {
    // Declared first so they exist before the layers below are constructed from them.
    Seq2SeqConfig cfg_;
    Generator init_gen_;

public:
    /// \brief Build and initialise the model. Throws qkv::Error, naming the field, when a vocabulary,
    /// max_len, dim, heads or a layer count is < 1, hidden is < 0 or heads does not divide dim.
    /// \param config sizes and options
    explicit Transformer(const Seq2SeqConfig& config);
    /// \brief Encode. \param src (B, S) i32 \param src_padding (B, S) b8, true at padding (or undefined)
    /// \return memory (B, S, C)
    Tensor encode(const Tensor& src, const Tensor& src_padding = Tensor());
    /// \brief Decode. \param tgt (B, T) i32 target so far \param memory encoder output
    /// \param src_padding as given to encode() \return logits (B, T, V_tgt)
    Tensor decode(const Tensor& tgt, const Tensor& memory, const Tensor& src_padding = Tensor());
    /// \brief encode + decode. \param src (B, S) \param tgt (B, T) \param src_padding optional
    /// \return logits (B, T, V_tgt)
    Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_padding = Tensor());
    /// \brief Greedy decoding: start from \p bos and emit \p steps tokens. \param src (B, S)
    /// \param bos start token \param steps tokens to produce \param src_padding optional
    /// \return (B, steps) i32
    Tensor greedy_decode(const Tensor& src, std::int32_t bos, std::int64_t steps, const Tensor& src_padding = Tensor());
    /// \brief Settings.
    /// \return the configuration it was built with
    const Seq2SeqConfig& config() const { return cfg_; }
    /// \brief Encoder blocks.
    /// \return the config().encoder_layers blocks, first to last
    const std::vector<std::unique_ptr<TransformerBlock>>& encoder() const { return encoder_; }
    /// \brief Decoder blocks.
    /// \return the config().decoder_layers blocks, first to last
    const std::vector<std::unique_ptr<TransformerBlock>>& decoder() const { return decoder_; }
    Embedding src_emb;          ///< (V_src, C)
    Embedding tgt_emb;          ///< (V_tgt, C)
    SinusoidalPositions pos;    ///< fixed positions
    LayerNorm ln_enc;           ///< final encoder norm (pre-LN)
    LayerNorm ln_dec;           ///< final decoder norm (pre-LN)
    Linear out;                 ///< C → V_tgt

private:
    Tensor embed(const Embedding& emb, const Tensor& ids);
    std::vector<std::unique_ptr<TransformerBlock>> encoder_, decoder_;
};

}  // namespace qkv::nn
