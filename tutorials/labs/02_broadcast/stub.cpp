// Lab 2: one tensor op's backward, with broadcasting. Your file: replace each
// `throw NotImplemented(...)` with your code, then run `build/tutorials/labs/grade 2`.
// README.md has the math, and the shape of a recorded op (qkv::record).
//
// Tensors here are float64 and row-major: x.data<double>()[flat]. Shapes are qkv::Shape, a
// std::vector<std::int64_t>; qkv::shape_numel(shape) multiplies the sizes.
#include "broadcast.hpp"

namespace lab {

using qkv::Shape;
using qkv::Tensor;

Shape broadcast_shape(const Shape& a, const Shape& b) {
    // Walk both shapes from their last dimension; a missing dimension counts as 1.
    // Sizes must match or one must be 1 — else qkv::fail("broadcast_shape: ...", ...).
    throw NotImplemented("broadcast_shape");
}

std::int64_t broadcast_source(const Shape& out, const Shape& in, std::int64_t flat) {
    // Peel the output's multi-index off `flat`, last dimension first (flat % size, flat / size);
    // map it onto `in` (aligned at the last dimension; a size-1 dimension is always index 0).
    throw NotImplemented("broadcast_source");
}

Tensor broadcast_mul(const Tensor& a, const Tensor& b) {
    // Forward: y[i] = a[broadcast_source(shape, a.shape(), i)] * b[...] for every output element i.
    // Then return qkv::record(op, y, {a, b}, backward), where backward adds into ctx.grad(0) and
    // ctx.grad(1) (see README.md).
    throw NotImplemented("broadcast_mul");
}

Tensor sum_dim(const Tensor& x, std::int64_t dim, bool keepdim) {
    // View x as (outer, n, inner): outer = product of the sizes before dim, n = x.size(dim),
    // inner = product of the sizes after it. y[o][i] = Σ_k x[o][k][i].
    throw NotImplemented("sum_dim");
}

}  // namespace lab
