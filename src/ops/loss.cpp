/// \file
/// \brief Cross-entropy over class logits with integer targets: the loss every model here trains on.
///
/// For logits z (one row of V scores) and target class t, the loss is the negative log-probability
/// of t under softmax(z): \f$ \ell = -\log \frac{e^{z_t}}{\sum_j e^{z_j}} = \mathrm{lse}(z) - z_t \f$
/// with \f$ \mathrm{lse}(z) = m + \log\sum_j e^{z_j - m} \f$ (m the row max, for stability).
/// Differentiating, \f$ \partial\ell/\partial z_j = \mathrm{softmax}(z)_j - [j = t] \f$: the
/// predicted distribution minus the one-hot target. Fusing the two steps saves storing the
/// (N, V) probabilities and is exact where log(softmax) would underflow.
#include <cmath>

#include "kernels/softmax.hpp"
#include "ops/op_detail.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

// -------------------------------------------------------------------------------------------------
// cross_entropy   ℓ_r = lse(z_r) − z_{r,t_r}          ∂ℓ_r/∂z_{r,j} = softmax(z_r)_j − [j = t_r]
// mean: L = (1/count) Σ_r ℓ_r over non-ignored rows; we keep lse per row for the backward.
static const OpDef kCrossEntropy{"cross_entropy"};
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index, Reduction reduction) {
    detail::OpScope profile(kCrossEntropy);  // the profiler's hook: one branch when off
    const char* op = kCrossEntropy.name;
    check_float_tensor(op, logits, "logits");
    check_defined(op, targets, "targets");
    if (targets.dtype() != DType::i32)
        fail("cross_entropy: targets must be i32 class indices, got {} {}", dtype_name(targets.dtype()),
             shape_str(targets.shape()));
    if (logits.dim() < 1) fail("cross_entropy: logits must have a class dimension, got a 0-d tensor");
    const Shape rows_shape(logits.shape().begin(), logits.shape().end() - 1);
    if (targets.shape() != rows_shape)
        fail("cross_entropy: logits {} need targets of shape {}, got {}", shape_str(logits.shape()),
             shape_str(rows_shape), shape_str(targets.shape()));
    const std::int64_t V = logits.size(-1), R = targets.numel();
    const std::int32_t* pt = targets.data<std::int32_t>();
    std::int64_t count = 0;
    for (std::int64_t r = 0; r < R; ++r) {
        if (pt[r] == ignore_index) continue;
        if (pt[r] < 0 || pt[r] >= V)
            fail("cross_entropy: target {} at position {} is out of range [0, {}) (ignore_index is {})", pt[r], r, V,
                 ignore_index);
        ++count;
    }
    Tensor lse = empty({R}, logits.dtype());
    Tensor per_row = zeros(rows_shape, logits.dtype());
    visit_float(logits.dtype(), op, [&]<class T>(T) {
        const T* z = logits.data<T>();
        T* pl = lse.data<T>();
        T* loss = per_row.data<T>();
        parallel_for(0, R, rows_per_chunk(V), [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t r = lo; r < hi; ++r) {
                pl[r] = kernels::log_sum_exp(z + r * V, V);
                if (pt[r] != ignore_index) loss[r] = pl[r] - z[r * V + pt[r]];
            }
        });
    });
    // Per-row weight of each loss in the result: 1/count for mean, 1 for sum and none.
    const double w = reduction == Reduction::mean ? (count ? 1.0 / double(count) : 0.0) : 1.0;
    Tensor out = reduction == Reduction::none ? per_row : scalar(0, logits.dtype());
    if (reduction != Reduction::none) {
        double total = 0;
        visit_float(logits.dtype(), op, [&]<class T>(T) {
            for (std::int64_t r = 0; r < R; ++r) total += double(per_row.data<T>()[r]);
        });
        out.set({}, total * w);
    }
    const bool per_position = reduction == Reduction::none;
    return record(kCrossEntropy, out, {logits},
                  [logits, targets, lse, V, R, w, ignore_index, per_position](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dz = ctx.grad(0);
        if (!dz) return;
        visit_float(dy.dtype(), "cross_entropy backward", [&]<class T>(T) {
            const T* z = logits.data<T>();
            const T* pl = lse.data<T>();
            const T* pdy = dy.data<T>();
            const std::int32_t* tg = targets.data<std::int32_t>();
            T* g = dz->data<T>();
            parallel_for(0, R, rows_per_chunk(V), [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t r = lo; r < hi; ++r) {
                    if (tg[r] == ignore_index) continue;
                    const T scale = T(w) * (per_position ? pdy[r] : pdy[0]);
                    for (std::int64_t j = 0; j < V; ++j) g[r * V + j] += scale * std::exp(z[r * V + j] - pl[r]);
                    g[r * V + tg[r]] -= scale;
                }
            });
        });
    });
}

}  // namespace qkv
