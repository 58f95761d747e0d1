/// \file
/// \brief Lab 7: multi-head attention — splitting the channels into heads, attending in each,
/// concatenating the heads, and the output projection — built from qkv's differentiable ops.
///
/// You write the three functions in lab.cpp. The grader compares the layer's output and every
/// gradient (of x and of all eight weights) with qkv::nn::MultiHeadAttention given the same weights.
#pragma once

#include <cstdint>

#include "support/lab.hpp"

namespace lab {

/// \brief The weights of a multi-head attention layer, in PyTorch's layout: a projection
/// \f$ y = x W^\top + b \f$ stores W as (out, in) — what qkv::linear(x, W, b) computes.
struct MhaWeights {
    qkv::Tensor wq, bq;  ///< queries: (C, C) and (C); all heads at once (head h: output channels [hD, (h+1)D))
    qkv::Tensor wk, bk;  ///< keys
    qkv::Tensor wv, bv;  ///< values
    qkv::Tensor wo, bo;  ///< the output projection \f$ W_O \f$, mixing the concatenated heads
};

/// \brief Split the channels into heads: (B, T, C) → (B, H, T, D) with D = C / H, head h taking
/// channels [h·D, (h+1)·D) of every position.
/// \param x (B, T, C) \param heads H (divides C)
/// \return (B, H, T, D)
qkv::Tensor split_heads(const qkv::Tensor& x, std::int64_t heads);

/// \brief The inverse: put the heads side by side again, (B, H, T, D) → (B, T, H·D).
/// \param x (B, H, T, D)
/// \return (B, T, H·D)
qkv::Tensor merge_heads(const qkv::Tensor& x);

/// \brief Multi-head self-attention:
/// \f$ \mathrm{merge}(\mathrm{attention}(\mathrm{split}(xW_Q^\top + b_Q), \mathrm{split}(xW_K^\top + b_K),
/// \mathrm{split}(xW_V^\top + b_V)))\,W_O^\top + b_O \f$, each head scaled by \f$ 1/\sqrt D \f$.
/// Must be differentiable (built from qkv's ops), so that backward() reaches x and every weight.
/// \param x (B, T, C) \param w the weights \param heads H \param causal block future positions
/// \return (B, T, C)
qkv::Tensor multi_head_attention(const qkv::Tensor& x, const MhaWeights& w, std::int64_t heads, bool causal);

}  // namespace lab
