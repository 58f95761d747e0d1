/// \file
/// \brief Lab 8: layer normalisation, forward and backward by hand.
///
/// You write both functions in lab.cpp, on (R, C) float64 tensors, one normalisation per row. The
/// grader compares them with qkv::layer_norm and its gradients.
#pragma once

#include "support/lab.hpp"

namespace lab {

/// \brief Layer norm of every row: \f$ y = \gamma \odot \hat x + \beta \f$ with
/// \f$ \hat x = (x - \mu)/\sqrt{\sigma^2 + \epsilon} \f$, μ and σ² the row's mean and (biased) variance.
/// \param x (R, C), f64 \param gamma scale (C) \param beta shift (C) \param eps added to the variance
/// \return y (R, C), f64
qkv::Tensor layer_norm_forward(const qkv::Tensor& x, const qkv::Tensor& gamma, const qkv::Tensor& beta, double eps);

/// \brief The gradients of layer norm.
struct LayerNormGrads {
    qkv::Tensor dx;      ///< (R, C)
    qkv::Tensor dgamma;  ///< (C)
    qkv::Tensor dbeta;   ///< (C)
};

/// \brief The backward pass: with \f$ g = dy \odot \gamma \f$ and \f$ r = 1/\sqrt{\sigma^2+\epsilon} \f$,
/// \f$ dx = r\,(g - \mathrm{mean}(g) - \hat x\,\mathrm{mean}(g \odot \hat x)) \f$ per row,
/// \f$ d\gamma = \sum_{\text{rows}} dy \odot \hat x \f$, \f$ d\beta = \sum_{\text{rows}} dy \f$.
/// \param x (R, C) \param gamma (C) \param eps as in the forward \param dy ∂L/∂y (R, C)
/// \return dx, dgamma, dbeta
LayerNormGrads layer_norm_backward(const qkv::Tensor& x, const qkv::Tensor& gamma, double eps, const qkv::Tensor& dy);

}  // namespace lab
