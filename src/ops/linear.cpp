/// \file
/// \brief The linear layer as one op, and dropout.
///
/// \f$ y = xW^\top + b \f$ is the workhorse of every transformer (Q, K, V and output projections,
/// both MLP layers, the LM head). Writing it as one op instead of matmul + transpose + add saves a
/// transposed copy of W and an intermediate the size of y, and its backward is three GEMM-shaped
/// sums over all positions r: \f$ dx_r = dy_r W \f$, \f$ dW = \sum_r dy_r^\top x_r \f$,
/// \f$ db = \sum_r dy_r \f$.
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

}  // namespace

// -------------------------------------------------------------------------------------------------
// linear     y = x·Wᵀ + b         dx = dy·W        dW = dyᵀ·x        db = Σ_rows dy
static const OpDef kLinear{"linear"};
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    detail::OpScope profile(kLinear);  // the profiler's hook: one branch when off
    const char* op = kLinear.name;
    check_float_tensor(op, x, "input");
    check_float_tensor(op, weight, "weight");
    check_same_dtype(op, x, weight);
    if (weight.dim() != 2) fail("linear: weight must be (out, in), got {}", shape_str(weight.shape()));
    if (x.dim() < 1 || x.size(-1) != weight.size(1))
        fail("linear: input {} does not match weight {} (expected last dim {})", shape_str(x.shape()),
             shape_str(weight.shape()), weight.size(1));
    const std::int64_t in = weight.size(1), out = weight.size(0);
    if (bias.defined()) {
        check_float_tensor(op, bias, "bias");
        check_same_dtype(op, x, bias);
        if (bias.shape() != Shape{out})
            fail("linear: bias {} does not match weight {} (expected ({}))", shape_str(bias.shape()),
                 shape_str(weight.shape()), out);
    }
    Shape out_shape = x.shape();
    out_shape.back() = out;
    const std::int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    // y = x·Wᵀ: 2·rows·in·out; the backward's dx and dW products twice that.
    const double flops = 2.0 * double(rows) * double(in) * double(out);
    profile.set_flops(flops, 2 * flops);
    Tensor y = empty(out_shape, x.dtype());
    visit_float(x.dtype(), op, [&]<class T>(T) {
        // y = x·Wᵀ + b: the kernel adds the bias row as it writes each tile of y.
        gemm(false, true, rows, out, in, T(1), x.data<T>(), in, weight.data<T>(), in, T(0), y.data<T>(), out,
             bias.defined() ? bias.data<T>() : nullptr);
    });
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    return record(kLinear, y, std::move(inputs), [x, weight, rows, in, out](const Tensor& dy, BackwardContext& ctx) {
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
