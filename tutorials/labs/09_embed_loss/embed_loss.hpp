/// \file
/// \brief Lab 9: the two ends of a language model — token + position embeddings at the bottom,
/// cross-entropy at the top — forward and backward by hand.
///
/// You write the four functions in lab.cpp, in float64 (token ids and targets are i32). The grader
/// compares them with qkv::embedding, qkv::cross_entropy and their gradients.
#pragma once

#include <cstdint>

#include "support/lab.hpp"

namespace lab {

/// \brief \f$ h_{b,t} = E_{\mathrm{ids}_{b,t}} + P_t \f$: each position's token vector plus its
/// position's vector.
/// \param tok token embeddings E (V, C), f64 \param pos position embeddings P (T_max, C), f64
/// \param ids token ids (B, T), i32, each in [0, V), with T ≤ T_max
/// \return h (B, T, C), f64
qkv::Tensor embed_forward(const qkv::Tensor& tok, const qkv::Tensor& pos, const qkv::Tensor& ids);

/// \brief The gradients of the two tables.
struct EmbedGrads {
    qkv::Tensor dtok;  ///< (V, C): row v collects dh of every position whose token is v
    qkv::Tensor dpos;  ///< (T_max, C): row t collects dh[b][t] over the batch; rows ≥ T stay 0
};

/// \brief The backward pass of embed_forward(): scatter-add dh into the rows that were read.
/// \param ids (B, T) i32, as given to the forward \param dh ∂L/∂h (B, T, C)
/// \param vocab V \param max_len T_max
/// \return dtok (V, C) and dpos (T_max, C), f64
EmbedGrads embed_backward(const qkv::Tensor& ids, const qkv::Tensor& dh, std::int64_t vocab, std::int64_t max_len);

/// \brief Mean cross-entropy: \f$ L = \frac1N \sum_n \big(\log\sum_v e^{z_{nv}} - z_{n,t_n}\big) \f$,
/// computed without overflow (subtract each row's maximum).
/// \param logits z (N, V), f64 \param targets t (N), i32 in [0, V)
/// \return L
double cross_entropy_forward(const qkv::Tensor& logits, const qkv::Tensor& targets);

/// \brief \f$ \partial L/\partial z = (\mathrm{softmax}(z) - \mathrm{onehot}(t)) / N \f$.
/// \param logits z (N, V), f64 \param targets t (N), i32
/// \return dz (N, V), f64
qkv::Tensor cross_entropy_backward(const qkv::Tensor& logits, const qkv::Tensor& targets);

}  // namespace lab
