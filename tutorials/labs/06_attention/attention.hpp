/// \file
/// \brief Lab 6: scaled dot-product attention for one head — the forward pass, the causal mask,
/// and the backward pass derived by hand.
///
/// You write both functions in lab.cpp, on float64 matrices (no batch, one head). The grader calls
/// them with autograd switched off and compares with qkv::attention and its gradients.
#pragma once

#include "support/lab.hpp"

namespace lab {

/// \brief \f$ O = \mathrm{softmax}(Q K^\top/\sqrt{D} + M)\,V \f$, the softmax along each row.
/// \param q queries (T_q, D), f64
/// \param k keys (T_k, D), f64
/// \param v values (T_k, D_v), f64
/// \param causal if true (then T_q = T_k), query i sees only keys j ≤ i: M_ij = −∞ for j > i
/// \return the output O (T_q, D_v), f64
qkv::Tensor attention_forward(const qkv::Tensor& q, const qkv::Tensor& k, const qkv::Tensor& v, bool causal);

/// \brief The gradients of the loss with respect to Q, K and V.
struct AttentionGrads {
    qkv::Tensor dq;  ///< (T_q, D)
    qkv::Tensor dk;  ///< (T_k, D)
    qkv::Tensor dv;  ///< (T_k, D_v)
};

/// \brief The backward pass of attention_forward(): given \f$ dO = \partial L/\partial O \f$,
/// \f$ dV = P^\top dO \f$, \f$ dP = dO\,V^\top \f$, \f$ dS = P \odot (dP - \mathrm{rowsum}(dP \odot P)) \f$,
/// \f$ dQ = dS\,K/\sqrt D \f$, \f$ dK = dS^\top Q/\sqrt D \f$ (P the attention weights, recomputed).
/// \param q,k,v as given to attention_forward()
/// \param causal as given to attention_forward()
/// \param dout \f$ \partial L/\partial O \f$ (T_q, D_v)
/// \return dq, dk, dv
AttentionGrads attention_backward(const qkv::Tensor& q, const qkv::Tensor& k, const qkv::Tensor& v, bool causal,
                                  const qkv::Tensor& dout);

}  // namespace lab
