// SPOILER: the reference solution of lab 2 (a tensor op's backward with broadcasting). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "02_broadcast/broadcast.hpp"

#include <algorithm>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Shape;
using qkv::Tensor;

Shape broadcast_shape(const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {  // i-th dimension from the end
        const std::int64_t sa = i < a.size() ? a[a.size() - 1 - i] : 1;
        const std::int64_t sb = i < b.size() ? b[b.size() - 1 - i] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            qkv::fail("broadcast_shape: {} and {} do not broadcast (sizes {} and {})", qkv::shape_str(a),
                      qkv::shape_str(b), sa, sb);
        out[n - 1 - i] = sa == 1 ? sb : sa;
    }
    return out;
}

std::int64_t broadcast_source(const Shape& out, const Shape& in, std::int64_t flat) {
    // Dimensions of `out` in front of `in`'s are broadcast: their indices are simply dropped.
    std::int64_t source = 0, stride = 1;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const std::int64_t size_out = out[out.size() - 1 - i], size_in = in[in.size() - 1 - i];
        const std::int64_t index = flat % size_out;
        flat /= size_out;
        if (size_in != 1) source += index * stride;  // a stretched dimension always reads index 0
        stride *= size_in;
    }
    return source;
}

namespace {
void add_into(double& g, double v) {
    if (mutant("assign_grad")) g = v;
    else g += v;
}
}  // namespace

Tensor broadcast_mul(const Tensor& a, const Tensor& b) {
    static const qkv::OpDef kOp{"lab.broadcast_mul", /*builtin=*/false};
    const Shape shape = broadcast_shape(a.shape(), b.shape());
    Tensor y = qkv::empty(shape, qkv::f64);
    const std::int64_t n = y.numel();
    for (std::int64_t i = 0; i < n; ++i)
        y.data<double>()[i] = a.data<double>()[broadcast_source(shape, a.shape(), i)] *
                              b.data<double>()[broadcast_source(shape, b.shape(), i)];
    // y_i = a_{s(i)} · b_{t(i)}, so ∂L/∂a_k = Σ_{i: s(i) = k} dy_i · b_{t(i)}: a scatter-add over the
    // output, which sums over the broadcast positions by itself.
    return qkv::record(kOp, y, {a, b}, [a, b, shape, n](const Tensor& dy, qkv::BackwardContext& ctx) {
        const double *pa = a.data<double>(), *pb = b.data<double>(), *pdy = dy.data<double>();
        const bool swap = mutant("swap_factors");
        if (Tensor* da = ctx.grad(0))
            for (std::int64_t i = 0; i < n; ++i) {
                const std::int64_t ia = broadcast_source(shape, a.shape(), i), ib = broadcast_source(shape, b.shape(), i);
                add_into(da->data<double>()[ia], pdy[i] * (swap ? pa[ia] : pb[ib]));
            }
        if (Tensor* db = ctx.grad(1))
            for (std::int64_t i = 0; i < n; ++i) {
                const std::int64_t ia = broadcast_source(shape, a.shape(), i), ib = broadcast_source(shape, b.shape(), i);
                add_into(db->data<double>()[ib], pdy[i] * (swap ? pb[ib] : pa[ia]));
            }
    });
}

Tensor sum_dim(const Tensor& x, std::int64_t dim, bool keepdim) {
    static const qkv::OpDef kOp{"lab.sum_dim", /*builtin=*/false};
    const Shape& s = x.shape();
    if (dim < 0 || dim >= x.dim()) qkv::fail("sum_dim: dim {} is out of range for shape {}", dim, qkv::shape_str(s));
    // x as (outer, n, inner); y as (outer, inner).
    const std::int64_t n = s[std::size_t(dim)];
    const std::int64_t outer = qkv::shape_numel(Shape(s.begin(), s.begin() + dim));
    const std::int64_t inner = qkv::shape_numel(Shape(s.begin() + dim + 1, s.end()));
    Shape out_shape = s;
    if (keepdim) out_shape[std::size_t(dim)] = 1;
    else out_shape.erase(out_shape.begin() + dim);
    Tensor y = qkv::zeros(out_shape, qkv::f64);
    const double* px = x.data<double>();
    double* py = y.data<double>();
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t k = 0; k < n; ++k)
            for (std::int64_t i = 0; i < inner; ++i) py[o * inner + i] += px[(o * n + k) * inner + i];
    // ∂y_{o,i}/∂x_{o,k,i} = 1: each x element receives the dy of the one sum it went into.
    return qkv::record(kOp, y, {x}, [outer, n, inner](const Tensor& dy, qkv::BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        const double* pdy = dy.data<double>();
        double* pdx = dx->data<double>();
        for (std::int64_t o = 0; o < outer; ++o)
            for (std::int64_t k = 0; k < n; ++k)
                for (std::int64_t i = 0; i < inner; ++i)
                    pdx[(o * n + k) * inner + i] += mutant("sum_ones") ? 1.0 : pdy[o * inner + i];
    });
}

}  // namespace lab
