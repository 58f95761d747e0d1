/// \file
/// \brief Lab 11: greedy decoding with a key/value cache — one new token per step, attending to the
/// keys and values every earlier step saved, instead of recomputing the whole sequence.
///
/// You write three functions in lab.cpp that run a qkv GPT (nn::GPT) one position at a time. The
/// grader checks each attention step and its cache against qkv's, each step's logits against the
/// model's full forward pass, and the decoded tokens against decoding without any cache.
#pragma once

#include <cstdint>
#include <vector>

#include "support/lab.hpp"

namespace lab {

/// \brief One causal self-attention layer for one new position, with a cache.
///
/// Projects x with the layer's fused projection (`attn.qkv_proj`, C → 3C: channels [0, C) are the
/// queries, [C, 2C) the keys, [2C, 3C) the values), appends the new key and value to the cache, lets
/// the new query attend to every cached position (itself included), and applies `attn.out_proj`.
/// \param attn a layer of a GPT block (fused QKV projection, H = attn.config().heads heads)
/// \param x the new position's input (B, 1, C)
/// \param cache keys and values of the earlier positions, (B, T, C) each (undefined when T = 0);
/// on return they hold T + 1 positions
/// \return the layer's output for the new position (B, 1, C)
qkv::Tensor attention_step(const qkv::nn::MultiHeadAttention& attn, const qkv::Tensor& x, qkv::nn::KVCache& cache);

/// \brief Feed one token per sequence through the whole model at the next position
/// (t = caches[0].length()), updating every layer's cache.
/// \param model a pre-LN GPT with an LM head (not tied), in eval mode
/// \param tokens the new tokens (B), i32
/// \param caches one cache per block (resize it to model.blocks().size() when empty)
/// \return the logits for the token after them (B, V)
qkv::Tensor decode_step(qkv::nn::GPT& model, const qkv::Tensor& tokens, std::vector<qkv::nn::KVCache>& caches);

/// \brief Greedy decoding with the cache: feed the prompt token by token, then repeatedly append
/// the most likely next token (qkv::argmax of the logits) and feed it.
/// \param model the model \param prompt (B, T₀) i32, T₀ ≥ 1 \param steps how many tokens to add
/// \return the prompt followed by the \p steps new tokens (B, T₀ + steps), i32
qkv::Tensor greedy_decode(qkv::nn::GPT& model, const qkv::Tensor& prompt, std::int64_t steps);

}  // namespace lab
