/// \file
/// \brief softmax and log_softmax: fused forward and hand-derived backward.
///
/// softmax turns scores into probabilities: \f$ y_i = e^{x_i} / \sum_j e^{x_j} \f$. Computed
/// literally, \f$ e^{x} \f$ overflows for x > 88 in float32, so we subtract the row maximum m first;
/// the ratio is unchanged because the \f$ e^{-m} \f$ factors cancel.
///
/// Its Jacobian is \f$ \partial y_i/\partial x_k = y_i(\delta_{ik} - y_k) \f$, so the
/// vector–Jacobian product collapses to one dot product per row:
/// \f[ \frac{\partial L}{\partial x_k} = \sum_i \frac{\partial L}{\partial y_i} y_i(\delta_{ik} - y_k)
///     = y_k\Big(\frac{\partial L}{\partial y_k} - \sum_i \frac{\partial L}{\partial y_i} y_i\Big). \f]
/// For \f$ y = \log\mathrm{softmax}(x) = x - \log\sum_j e^{x_j} \f$ the Jacobian is
/// \f$ \delta_{ik} - \mathrm{softmax}(x)_k \f$, giving
/// \f$ \partial L/\partial x_k = \partial L/\partial y_k - \mathrm{softmax}(x)_k \sum_i \partial L/\partial y_i \f$.
/// Composing softmax from exp, sum and div gives the same numbers with three stored
/// intermediates; the tests check that both agree. The row loops themselves — forward and
/// backward, the reference and the fast f32 rows attention uses — are in kernels/softmax.cpp.
#include "kernels/softmax.hpp"
#include "ops/op_detail.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

namespace {

// The op around the kernels: each fibre along `dim` is one row of kernels/softmax.cpp, its elements
// `inner` apart. Fibres are independent, so both passes run them in parallel.
Tensor softmax_impl(const OpDef& op, const Tensor& x, std::int64_t dim, bool log_space) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    check_float_tensor(op.name, x);
    const auto d = normalize_dim(op.name, dim, x.dim());
    const DimSplit sp = split_at(x.shape(), d);
    auto base_of = [sp](std::int64_t f) { return (f / sp.inner) * sp.n * sp.inner + f % sp.inner; };
    Tensor y = empty(x.shape(), x.dtype());
    visit_float(x.dtype(), op.name, [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        parallel_for(0, sp.outer * sp.inner, rows_per_chunk(sp.n), [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t f = lo; f < hi; ++f)
                kernels::softmax_fibre(px + base_of(f), py + base_of(f), sp.n, sp.inner, log_space);
        });
    });
    return record(op, y, {x}, [ys = y.detach(), sp, base_of, log_space](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "softmax backward", [&]<class T>(T) {
            parallel_for(0, sp.outer * sp.inner, rows_per_chunk(sp.n), [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t f = lo; f < hi; ++f)
                    kernels::softmax_fibre_backward(ys.data<T>() + base_of(f), dy.data<T>() + base_of(f),
                                                    dx->data<T>() + base_of(f), sp.n, sp.inner, log_space,
                                                    /*accumulate=*/true);
            });
        });
    });
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// softmax      y_k = e^{x_k − m} / Σⱼ e^{x_j − m}        dx_k = y_k (dy_k − Σᵢ dyᵢ yᵢ)
static const OpDef kSoftmax{"softmax"};
Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(kSoftmax, x, dim, false); }

// -------------------------------------------------------------------------------------------------
// log_softmax  y_k = x_k − m − log Σⱼ e^{x_j − m}        dx_k = dy_k − softmax_k Σᵢ dyᵢ
static const OpDef kLogSoftmax{"log_softmax"};
Tensor log_softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(kLogSoftmax, x, dim, true); }

}  // namespace qkv
