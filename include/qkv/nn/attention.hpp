/// \file
/// \brief Attention, in the three forms a learner can compare: composed from primitive ops, one
/// fused op, and as layers (one head, many heads, cross-attention, with a key/value cache).
///
/// Attention lets every position look at every other position and take a weighted average of what
/// it finds. Each position emits a *query* q ("what am I looking for"), a *key* k ("what do I
/// contain") and a *value* v ("what I pass on"). The weight of position j for position i is
/// \f$ \mathrm{softmax}_j(q_i\cdot k_j/\sqrt{D}) \f$ — dividing by \f$ \sqrt D \f$ keeps the dot
/// products of D-dimensional vectors from growing with D and saturating the softmax — and the output
/// is \f$ \sum_j w_{ij} v_j \f$. In matrix form: \f$ \mathrm{Attention}(Q,K,V) = \mathrm{softmax}(QK^\top/\sqrt{D})\,V \f$.
///
/// Multi-head attention runs H such attentions side by side, each on its own learned projections
/// of the input, so different heads can attend to different things:
/// \f$ \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\,W_O \f$ with
/// \f$ \mathrm{head}_h = \mathrm{Attention}(XW^Q_h, XW^K_h, XW^V_h) \f$. Stacking the H projections
/// \f$ W^Q_h \f$ (C × D each) side by side gives one C × C matrix, so one Linear computes all heads'
/// queries at once and head h reads channels [h·D, (h+1)·D). Shapes: B batch, T time, C = H·D channels.
#pragma once

#include <cstdint>
#include <memory>

#include "qkv/nn/layers.hpp"

namespace qkv::nn {

/// \brief Attention composed from primitive ops — matmul, transpose, scale, masked_fill, softmax,
/// matmul — exactly as the formula reads. q (…, T_q, D), k (…, T_k, D), v (…, T_k, D_v).
/// Slower and hungrier than the fused qkv::attention() (it stores every intermediate), and equal to
/// it forward and backward; the tests check that.
/// \param q queries \param k keys \param v values \param options mask (true = blocked), causal, scale, weights
/// \return the attention output (…, T_q, D_v)
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

/// \brief Keys and values of earlier positions, kept between generation steps so each new token
/// costs one position's worth of projections instead of the whole prefix.
struct KVCache {
    Tensor k;  ///< (B, T_cached, C) keys so far (undefined when empty)
    Tensor v;  ///< (B, T_cached, C) values so far
    /// \brief Number of cached positions.
    /// \return T_cached, 0 when empty
    std::int64_t length() const { return k.defined() ? k.size(1) : 0; }
    /// Forget everything.
    void clear() { k = Tensor(); v = Tensor(); }
};

/// \brief One attention head with its own Q, K, V projections (C → D): (B, T, C) → (B, T, D).
class SelfAttention : public Module {
public:
    /// \param dim C \param head_size D \param gen initialisation \param causal block future positions
    /// \param fused use the fused op (true) or the composed one (false)
    SelfAttention(std::int64_t dim, std::int64_t head_size, Generator& gen, bool causal = false, bool fused = true);
    /// \brief Attend. \param x (B, T, C) \param mask optional b8 mask broadcastable to (B, T, T), true = blocked
    /// \return the head's output (B, T, D)
    Tensor forward(const Tensor& x, const Tensor& mask = Tensor());
    /// \brief Same as forward(). \param x (B, T, C) \param mask optional mask
    /// \return the head's output (B, T, D)
    Tensor operator()(const Tensor& x, const Tensor& mask = Tensor()) { return forward(x, mask); }
    /// \brief The attention weights of the last forward, (B, 1, T, T) (one head).
    /// \return the weights (B, 1, T, T); undefined before the first forward
    const Tensor& last_weights() const { return weights_; }
    ///@{
    Linear query, key, value;  ///< the projections C → D
    ///@}
    ///@{
    bool causal, fused;         ///< settings
    ///@}

private:
    Tensor weights_;
};

/// Settings of MultiHeadAttention.
struct MultiHeadAttentionConfig {
    std::int64_t dim = 64;      ///< C (d_model)
    std::int64_t heads = 4;     ///< H; must divide C
    bool bias = true;           ///< biases in the projections
    bool fused_qkv = false;     ///< one Linear C → 3C for Q, K, V (self-attention only, as in GPT)
    bool fused = true;          ///< fused attention op (true) or composed from primitives (false)
    double dropout = 0.0;       ///< dropout on the output projection
    std::uint64_t seed = 0;     ///< dropout seed
};

/// \brief Multi-head attention: projections, H heads, concatenation, output projection W_O.
/// Self-attention (queries, keys and values from x) or cross-attention (queries from x, keys and
/// values from a second sequence, the encoder's output).
class MultiHeadAttention : public Module {
public:
    /// \param config sizes and options \param gen initialisation
    MultiHeadAttention(const MultiHeadAttentionConfig& config, Generator& gen);
    /// \brief Self-attention. \param x (B, T, C) \param options mask (broadcast to (B, H, T, T)), causal
    /// \return the attention output after W_O and dropout (B, T, C)
    Tensor forward(const Tensor& x, const AttentionOptions& options = {});
    /// \brief Cross-attention. \param x (B, T_q, C) queries \param memory (B, T_k, C) keys and values
    /// \param options mask (broadcast to (B, H, T_q, T_k)), e.g. the source's padding
    /// \return the attention output after W_O and dropout (B, T_q, C)
    Tensor forward(const Tensor& x, const Tensor& memory, const AttentionOptions& options = {});
    /// \brief Causal self-attention for generation: appends the new positions' keys and values to
    /// \p cache and attends from the new positions to everything cached.
    /// \param x (B, T_new, C) the new positions \param cache the layer's cache (updated)
    /// \return the attention output of the new positions (B, T_new, C)
    Tensor forward_cached(const Tensor& x, KVCache& cache);
    /// \brief The attention weights of the last forward, (B, H, T_q, T_k), per head.
    /// \return the weights (B, H, T_q, T_k); undefined before the first forward
    const Tensor& last_weights() const { return weights_; }
    /// \brief Settings.
    /// \return the configuration it was built with
    const MultiHeadAttentionConfig& config() const { return cfg_; }
    std::unique_ptr<Linear> q_proj;    ///< C → C queries (all heads), when not fused_qkv
    std::unique_ptr<Linear> k_proj;    ///< C → C keys
    std::unique_ptr<Linear> v_proj;    ///< C → C values
    std::unique_ptr<Linear> qkv_proj;  ///< C → 3C, when fused_qkv
    Linear out_proj;                   ///< W_O: C → C
    Dropout drop;                      ///< on the output

private:
    Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options);
    void check_input(const Tensor& x) const;  // x must be (B, T, C): throws naming the shape
    void project_self(const Tensor& x, Tensor& q, Tensor& k, Tensor& v) const;
    MultiHeadAttentionConfig cfg_;
    Tensor weights_;
};

}  // namespace qkv::nn
