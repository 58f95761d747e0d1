/// \file
/// \brief Lab 2: a tensor op of your own — elementwise product with broadcasting, and a sum over
/// one dimension — forward and backward, recorded in qkv's autograd with qkv::record.
///
/// You write the four functions in lab.cpp, on float64 tensors. The grader compares them with
/// qkv::mul, qkv::sum and qkv's autograd element by element, and runs qkv::gradcheck on your ops.
#pragma once

#include <cstdint>

#include "support/lab.hpp"

namespace lab {

/// \brief The shape of an elementwise op on tensors of shapes \p a and \p b (NumPy's rule): align
/// the shapes at their last dimension; a missing leading dimension counts as 1; at each position
/// the sizes must be equal, or one of them 1 (that one is stretched). Throws qkv::Error otherwise.
/// \param a first shape \param b second shape
/// \return the broadcast shape, e.g. (4, 1, 3) and (5, 1) give (4, 5, 3)
qkv::Shape broadcast_shape(const qkv::Shape& a, const qkv::Shape& b);

/// \brief Which element of a broadcast input an output element reads.
/// \param out the output's shape (the broadcast shape) \param in the input's shape (broadcasts to \p out)
/// \param flat a flat (row-major) index into the output, 0 ≤ flat < numel(out)
/// \return the flat index into the input of the element that output element \p flat reads
std::int64_t broadcast_source(const qkv::Shape& out, const qkv::Shape& in, std::int64_t flat);

/// \brief \f$ y = a \odot b \f$ with broadcasting, as a differentiable op recorded with qkv::record:
/// \f$ \partial L/\partial a = \sum_{\text{broadcast}} \partial L/\partial y \odot b \f$ (and
/// likewise for b), each input's gradient summed over the positions that read the same element.
/// \param a f64 tensor \param b f64 tensor (shapes that broadcast)
/// \return the product, of the broadcast shape, f64
qkv::Tensor broadcast_mul(const qkv::Tensor& a, const qkv::Tensor& b);

/// \brief \f$ y = \sum_k x_{\dots k \dots} \f$ along dimension \p dim, as a differentiable op:
/// every x element's gradient is the dy of the sum it went into.
/// \param x f64 tensor \param dim the dimension summed over, 0 ≤ dim < x.dim()
/// \param keepdim keep the summed dimension with size 1 (true) or remove it (false)
/// \return the sums, f64
qkv::Tensor sum_dim(const qkv::Tensor& x, std::int64_t dim, bool keepdim);

}  // namespace lab
