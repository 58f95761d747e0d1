/// \file
/// \brief Masks: masked_fill and where (differentiable), comparisons and triangular masks (not).
///
/// Attention hides positions by writing −∞ into their scores before the softmax
/// (`masked_fill(scores, mask, -inf)`), so they get probability 0. The gradient simply does not
/// flow into a masked position: \f$ \partial y/\partial x = 0 \f$ where the mask is set, 1 elsewhere.
#include "ops/op_detail.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

namespace {
void check_mask(const char* op, const Tensor& m, const char* what) {
    check_defined(op, m, what);
    if (m.dtype() != DType::b8)
        fail("{}: {} must be a b8 (boolean) tensor, got {} {}; make one with eq/gt/lt or from(std::vector<bool>)", op,
             what, dtype_name(m.dtype()), shape_str(m.shape()));
}
}  // namespace

// -------------------------------------------------------------------------------------------------
// masked_fill   y = mask ? v : x          ∂y/∂x = 0 where mask, 1 elsewhere
static const OpDef kMaskedFill{"masked_fill", true, /*makes_infinities=*/true};  // −∞ for masked scores
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
    detail::OpScope profile(kMaskedFill);  // the profiler's hook: one branch when off
    check_float_tensor(kMaskedFill.name, x);
    check_mask(kMaskedFill.name, mask, "mask");
    const Shape out = broadcast_shapes(kMaskedFill.name, {&x.shape(), &mask.shape()});
    if (out != x.shape())
        fail("masked_fill: mask {} must broadcast to the input's shape {}", shape_str(mask.shape()), shape_str(x.shape()));
    Tensor y = empty(out, x.dtype());
    const BroadcastPlan<2> plan(out, {&out, &mask.shape()});
    const std::uint8_t* pm = mask.data<std::uint8_t>();
    visit_float(x.dtype(), kMaskedFill.name, [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
            for (std::int64_t i = 0; i < n; ++i) py[off[0] + i] = pm[off[1] + i * st[1]] ? T(value) : px[off[0] + i];
        });
    });
    return record(kMaskedFill, y, {x}, [mask, plan](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        const std::uint8_t* m = mask.data<std::uint8_t>();
        visit_float(dy.dtype(), "masked_fill backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
                for (std::int64_t i = 0; i < n; ++i)
                    if (!m[off[1] + i * st[1]]) pdx[off[0] + i] += pdy[off[0] + i];
            });
        });
    });
}

// -------------------------------------------------------------------------------------------------
// where     y = c ? a : b           ∂y/∂a = c,   ∂y/∂b = 1 − c   (summed over broadcast dims)
static const OpDef kWhere{"where"};
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    detail::OpScope profile(kWhere);  // the profiler's hook: one branch when off
    check_mask(kWhere.name, cond, "cond");
    check_float_tensor(kWhere.name, a, "a");
    check_float_tensor(kWhere.name, b, "b");
    check_same_dtype(kWhere.name, a, b);
    const Shape out = broadcast_shapes(kWhere.name, {&cond.shape(), &a.shape(), &b.shape()});
    Tensor y = empty(out, a.dtype());
    const BroadcastPlan<4> plan(out, {&out, &cond.shape(), &a.shape(), &b.shape()});
    const std::uint8_t* pc = cond.data<std::uint8_t>();
    visit_float(a.dtype(), kWhere.name, [&]<class T>(T) {
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* py = y.data<T>();
        plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
            for (std::int64_t i = 0; i < n; ++i)
                py[off[0] + i] = pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
        });
    });
    return record(kWhere, y, {a, b}, [cond, plan](const Tensor& dy, BackwardContext& ctx) {
        Tensor* da = ctx.grad(0);
        Tensor* db = ctx.grad(1);
        const std::uint8_t* c = cond.data<std::uint8_t>();
        visit_float(dy.dtype(), "where backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pda = da ? da->data<T>() : nullptr;
            T* pdb = db ? db->data<T>() : nullptr;
            plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
                for (std::int64_t i = 0; i < n; ++i) {
                    const bool take_a = c[off[1] + i * st[1]] != 0;
                    if (take_a && pda) pda[off[2] + i * st[2]] += pdy[off[0] + i];
                    if (!take_a && pdb) pdb[off[3] + i * st[3]] += pdy[off[0] + i];
                }
            });
        });
    });
}

// ---- comparisons: not differentiable, return b8 -------------------------------------------------

namespace {
template <class Pred>
Tensor compare_scalar(const char* op, const Tensor& x, Pred pred) {
    check_defined(op, x);
    Tensor y = empty(x.shape(), DType::b8);
    std::uint8_t* py = y.data<std::uint8_t>();
    visit_all(x.dtype(), [&]<class T>(T) {
        const T* px = x.data<T>();
        for (std::int64_t i = 0; i < x.numel(); ++i) py[i] = pred(double(px[i])) ? 1 : 0;
    });
    return y;
}
}  // namespace

Tensor eq(const Tensor& x, double s) { return compare_scalar("eq", x, [s](double v) { return v == s; }); }
Tensor gt(const Tensor& x, double s) { return compare_scalar("gt", x, [s](double v) { return v > s; }); }
Tensor lt(const Tensor& x, double s) { return compare_scalar("lt", x, [s](double v) { return v < s; }); }

Tensor eq(const Tensor& a, const Tensor& b) {
    check_defined("eq", a);
    check_defined("eq", b);
    check_same_dtype("eq", a, b);
    const Shape out = broadcast_shapes("eq", {&a.shape(), &b.shape()});
    Tensor y = empty(out, DType::b8);
    const BroadcastPlan<3> plan(out, {&out, &a.shape(), &b.shape()});
    std::uint8_t* py = y.data<std::uint8_t>();
    visit_all(a.dtype(), [&]<class T>(T) {
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
            for (std::int64_t i = 0; i < n; ++i) py[off[0] + i] = pa[off[1] + i * st[1]] == pb[off[2] + i * st[2]];
        });
    });
    return y;
}

Tensor logical_not(const Tensor& mask) {
    check_mask("logical_not", mask, "input");
    Tensor y = empty(mask.shape(), DType::b8);
    const std::uint8_t* pm = mask.data<std::uint8_t>();
    std::uint8_t* py = y.data<std::uint8_t>();
    for (std::int64_t i = 0; i < mask.numel(); ++i) py[i] = pm[i] ? 0 : 1;
    return y;
}

Tensor tril_mask(std::int64_t rows, std::int64_t cols, std::int64_t diagonal) {
    if (rows < 0 || cols < 0) fail("tril_mask: negative size ({}, {})", rows, cols);
    Tensor y = empty({rows, cols}, DType::b8);
    std::uint8_t* py = y.data<std::uint8_t>();
    // c − r ≤ diagonal rather than c ≤ r + diagonal: a huge diagonal must not overflow the sum.
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) py[r * cols + c] = c - r <= diagonal ? 1 : 0;
    return y;
}

}  // namespace qkv
