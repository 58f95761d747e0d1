/// \file
/// \brief The linear layer as one op, and dropout.
///
/// \f$ y = xW^\top + b \f$ is the workhorse of every transformer (Q, K, V and output projections,
/// both MLP layers, the LM head). Writing it as one op instead of matmul + transpose + add saves a
/// transposed copy of W and an intermediate the size of y, and its backward is three GEMM-shaped
/// sums over all positions r: \f$ dx_r = dy_r W \f$, \f$ dW = \sum_r dy_r^\top x_r \f$,
/// \f$ db = \sum_r dy_r \f$.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ops/op_detail.hpp"
#include "kernels/vec.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/ops/ops.hpp"
#include "qkv/kernels/parallel.hpp"

namespace qkv {
using namespace detail;

namespace {

// out[j] (+)= Σ_r x[r·ld + j] for j < cols: the bias gradient. Rows are added in order, one
// column per lane, so the sums are the same on every CPU (and in every clone, see kernels/vec.hpp).
QKV_CLONES void column_sums_f32(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* out,
                                bool accumulate) {
    if (!accumulate)
        for (std::int64_t j = 0; j < cols; ++j) out[j] = 0.0f;
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < cols; ++j) out[j] += x[r * ld + j];
}

// The backward of y = x·Wᵀ + b from dy (rows × out): dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy, into
// inputs 0, 1 and 2 of ctx. linear and linear_gelu share it (linear_gelu passes dh = dy ⊙ slope).
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, std::int64_t rows, std::int64_t in,
                     std::int64_t out, BackwardContext& ctx) {
    // Each product overwrites (β = 0) a fresh gradient buffer, or adds (β = 1) to one that
    // already holds another path's gradient.
    bool add_x = true, add_w = true, add_b = true;
    Tensor* dx = ctx.grad_overwrite(0, add_x);
    Tensor* dw = ctx.grad_overwrite(1, add_w);
    Tensor* db = ctx.grad_overwrite(2, add_b);  // nullptr when there is no bias
    visit_float(dy.dtype(), "linear backward", [&]<class T>(T) {
        const T* pdy = dy.data<T>();
        if (dx) gemm(false, false, rows, in, out, T(1), pdy, out, weight.data<T>(), in, T(add_x), dx->data<T>(), in);
        if (dw) gemm(true, false, out, in, rows, T(1), pdy, out, x.data<T>(), in, T(add_w), dw->data<T>(), in);
        if (db) {  // column sums: threads split the columns, so no two write the same entry
            T* pdb = db->data<T>();
            parallel_for(0, out, 32, [&](std::int64_t lo, std::int64_t hi) {
                if constexpr (std::is_same_v<T, float>) {
                    column_sums_f32(pdy + lo, rows, hi - lo, out, pdb + lo, add_b);
                } else {
                    if (!add_b)
                        for (std::int64_t j = lo; j < hi; ++j) pdb[j] = T(0);
                    for (std::int64_t r = 0; r < rows; ++r)
                        for (std::int64_t j = lo; j < hi; ++j) pdb[j] += pdy[r * out + j];
                }
            });
        }
    });
}

// The sizes of a linear layer's product y = x·Wᵀ, for linear and linear_gelu.
struct LinearShape {
    std::int64_t in, out, rows;  // W is (out, in); x has `rows` rows of `in`
    Shape y;                     // x's shape with the last dim `out`
};

// The checks of linear and linear_gelu (float x and W of one dtype, W (out, in) matching x's last
// dim, bias (out) or none), then the sizes, and the FLOPs for the profiler: the forward product
// 2·rows·in·out, the backward's dx and dW products twice that.
LinearShape linear_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         detail::OpScope& profile) {
    check_float_tensor(op, x, "input");
    check_float_tensor(op, weight, "weight");
    check_same_dtype(op, x, weight);
    if (weight.dim() != 2) fail("{}: weight must be (out, in), got {}", op, shape_str(weight.shape()));
    if (x.dim() < 1 || x.size(-1) != weight.size(1))
        fail("{}: input {} does not match weight {} (expected last dim {})", op, shape_str(x.shape()),
             shape_str(weight.shape()), weight.size(1));
    if (bias.defined()) {
        check_float_tensor(op, bias, "bias");
        check_same_dtype(op, x, bias);
        if (bias.shape() != Shape{weight.size(0)})
            fail("{}: bias {} does not match weight {} (expected ({}))", op, shape_str(bias.shape()),
                 shape_str(weight.shape()), weight.size(0));
    }
    LinearShape s{weight.size(1), weight.size(0), shape_numel(Shape(x.shape().begin(), x.shape().end() - 1)), x.shape()};
    s.y.back() = s.out;
    const double flops = 2.0 * double(s.rows) * double(s.in) * double(s.out);
    profile.set_flops(flops, 2 * flops);
    return s;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// linear     y = x·Wᵀ + b         dx = dy·W        dW = dyᵀ·x        db = Σ_rows dy
static const OpDef kLinear{"linear"};
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    detail::OpScope profile(kLinear);  // the profiler's hook: one branch when off
    // (Plain variables, not a structured binding: lambdas capture them, which clang accepts from 16 on.)
    const LinearShape shape = linear_shape(kLinear.name, x, weight, bias, profile);
    const std::int64_t in = shape.in, out = shape.out, rows = shape.rows;
    const Shape& y_shape = shape.y;
    Tensor y = empty(y_shape, x.dtype());
    visit_float(x.dtype(), kLinear.name, [&]<class T>(T) {
        // y = x·Wᵀ + b: the kernel adds the bias row as it writes each tile of y.
        gemm(false, true, rows, out, in, T(1), x.data<T>(), in, weight.data<T>(), in, T(0), y.data<T>(), out,
             bias.defined() ? bias.data<T>() : nullptr);
    });
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    return record(kLinear, y, std::move(inputs), [x, weight, rows, in, out](const Tensor& dy, BackwardContext& ctx) {
        linear_backward(dy, x, weight, rows, in, out, ctx);
    });
}

// -------------------------------------------------------------------------------------------------
// linear_gelu    h = x·Wᵀ + b,  y = GELU(h) = h·Φ(h)        dh = dy ⊙ GELU'(h)   then linear's backward
//
// An MLP's first layer and its activation as one op. Apart, the product writes h (rows × hidden)
// to memory and GELU reads it back to write y and its slope: for the models' sizes h is larger
// than the cache, so that is a trip through memory per element. Together, the GEMM hands each
// finished tile of h to the GELU loop while the tile is still in L1 (a kernels::GemmEpilogue), and
// h is never stored: y takes its place, the slope GELU'(h) is kept for the backward. The values
// are gelu_erf(linear(x, W, b))'s, bit for bit: the same product, then the same loop on it.
namespace {
struct GeluTiles {
    const float* y;  // start of C (the tiles' position in it locates their slopes)
    float* slope;    // same layout as y
};
void gelu_tiles(const void* ctx, float* c, std::int64_t ldc, std::int64_t rows, std::int64_t cols) {
    const auto& g = *static_cast<const GeluTiles*>(ctx);
    float* s = g.slope + (c - g.y);
    for (std::int64_t r = 0; r < rows; ++r) gelu_erf_rows(c + r * ldc, c + r * ldc, s + r * ldc, cols);
}
}  // namespace

static const OpDef kLinearGelu{"linear_gelu"};
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    detail::OpScope profile(kLinearGelu);  // the profiler's hook: one branch when off
    const LinearShape shape = linear_shape(kLinearGelu.name, x, weight, bias, profile);
    const std::int64_t in = shape.in, out = shape.out, rows = shape.rows;
    const Shape& y_shape = shape.y;
    Tensor y = empty(y_shape, x.dtype());
    Tensor slope = empty(y_shape, x.dtype());
    visit_float(x.dtype(), kLinearGelu.name, [&]<class T>(T) {
        const T* pb = bias.defined() ? bias.data<T>() : nullptr;
        if constexpr (std::is_same_v<T, float>) {
            const GeluTiles tiles{y.data<float>(), slope.data<float>()};
            kernels::gemm(false, true, rows, out, in, 1.0f, x.data<float>(), std::max<std::int64_t>(in, 1),
                          weight.data<float>(), std::max<std::int64_t>(in, 1), 0.0f, y.data<float>(),
                          std::max<std::int64_t>(out, 1), pb, kernels::GemmEpilogue{gelu_tiles, &tiles});
        } else {  // f64, for gradient checks: the product, then GELU over all of it
            gemm(false, true, rows, out, in, T(1), x.data<T>(), in, weight.data<T>(), in, T(0), y.data<T>(), out, pb);
            gelu_erf_rows(y.data<T>(), y.data<T>(), slope.data<T>(), y.numel());
        }
    });
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    return record(kLinearGelu, y, std::move(inputs), [x, weight, slope, rows, in, out](const Tensor& dy, BackwardContext& ctx) {
        // dh = dy ⊙ GELU'(h) into scratch, then the linear layer's backward from it.
        Tensor dh = empty(dy.shape(), dy.dtype());
        gelu_erf_backward_into(slope, dy, dh, /*accumulate=*/false);
        linear_backward(dh, x, weight, rows, in, out, ctx);
    });
}

// -------------------------------------------------------------------------------------------------
// dropout    y = x·m/(1−p),  m ~ Bernoulli(1−p)        dx = dy·m/(1−p)
static const OpDef kDropout{"dropout"};
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
    detail::OpScope profile(kDropout);  // the profiler's hook: one branch when off
    check_float_tensor(kDropout.name, x);
    if (!(p >= 0 && p < 1)) fail("dropout: p must be in [0, 1), got {}", p);
    if (!training || p == 0) return x;
    // The mask stores the scale itself (0 or 1/(1−p)), so forward and backward are one multiply.
    Tensor m = empty(x.shape(), x.dtype());
    Tensor y = empty(x.shape(), x.dtype());
    visit_float(x.dtype(), kDropout.name, [&]<class T>(T) {
        const T keep = T(1 / (1 - p));
        T* pm = m.data<T>();
        const T* px = x.data<T>();
        T* py = y.data<T>();
        for (std::int64_t i = 0; i < x.numel(); ++i) {
            pm[i] = gen.uniform() < p ? T(0) : keep;
            py[i] = px[i] * pm[i];
        }
    });
    return record(kDropout, y, {x}, [m](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "dropout backward", [&]<class T>(T) {
            const T* pm = m.data<T>();
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            for (std::int64_t i = 0; i < dy.numel(); ++i) pdx[i] += pdy[i] * pm[i];
        });
    });
}

}  // namespace qkv
