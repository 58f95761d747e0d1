/// \file
/// \brief Lab 5: numerically stable softmax, forward and backward, written by hand.
///
/// You write both functions in lab.cpp, on plain (R, C) float64 tensors, one softmax per row.
/// The grader compares them with qkv::softmax and with qkv's autograd, element by element.
#pragma once

#include "support/lab.hpp"

namespace lab {

/// \brief Softmax of every row: \f$ y_{rj} = e^{x_{rj} - m_r} / \sum_k e^{x_{rk} - m_r} \f$ with
/// \f$ m_r = \max_k x_{rk} \f$, so that no exponent is positive and nothing overflows.
/// \param x logits (R, C), f64; any finite values, however large
/// \return the probabilities (R, C), f64, each row summing to 1
qkv::Tensor softmax_forward(const qkv::Tensor& x);

/// \brief The gradient of the loss with respect to the logits, from the softmax's output:
/// \f$ dx_{rj} = y_{rj}\,(dy_{rj} - \sum_k y_{rk}\,dy_{rk}) \f$.
/// \param y the forward's output (R, C), f64
/// \param dy the gradient of the loss with respect to y (R, C), f64
/// \return dx (R, C), f64
qkv::Tensor softmax_backward(const qkv::Tensor& y, const qkv::Tensor& dy);

}  // namespace lab
