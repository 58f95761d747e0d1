/// \file
/// \brief Elementwise ops: each output element depends on one element of each input.
///
/// For such ops the Jacobian is diagonal, so the vector–Jacobian product that backward needs is a
/// plain elementwise product: \f$ \partial L/\partial x_i = f'(x_i)\,\partial L/\partial y_i \f$.
/// That is why every op below is just two formulas, the forward \f$ y = f(x) \f$ and the local
/// derivative \f$ f'(x) \f$ (written in terms of x and, where cheaper, y), handed to one shared
/// loop. Binary ops add broadcasting: the gradient of a stretched operand is summed over the
/// positions it was stretched to, which the shared loop does by writing through a stride of 0.
#include <cmath>
#include <cstring>
#include <numbers>
#include <type_traits>

#include "ops/op_detail.hpp"
#include "kernels/vec.hpp"
#include "qkv/ops/ops.hpp"
#include "qkv/kernels/parallel.hpp"

namespace qkv {
using namespace detail;

namespace {

// ---- the shared loops ---------------------------------------------------------------------------

// Elementwise loops split into chunks of this many elements across threads (smaller problems run
// on one thread: waking a second one costs more than it saves).
constexpr std::int64_t kGrain = 16384;

// y = f(x) elementwise; backward dx += f'(x, y) · dy. The output is saved detached (no cycle).
template <class Fwd, class Deriv>
Tensor unary(const OpDef& op, const Tensor& x, Fwd fwd, Deriv deriv) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    check_float_tensor(op.name, x);
    Tensor y = empty(x.shape(), x.dtype());
    visit_float(x.dtype(), op.name, [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        parallel_for(0, x.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t i = lo; i < hi; ++i) py[i] = fwd(px[i]);
        });
    });
    return record(op, y, {x}, [x, ys = y.detach(), deriv](const Tensor& dy, BackwardContext& ctx) {
        bool add = true;
        Tensor* dx = ctx.grad_overwrite(0, add);
        if (!dx) return;
        visit_float(x.dtype(), "unary backward", [&]<class T>(T) {
            const T* px = x.data<T>();
            const T* py = ys.data<T>();
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            parallel_for(0, x.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
                if (add)
                    for (std::int64_t i = lo; i < hi; ++i) pdx[i] += deriv(px[i], py[i]) * pdy[i];
                else
                    for (std::int64_t i = lo; i < hi; ++i) pdx[i] = deriv(px[i], py[i]) * pdy[i];
            });
        });
    });
}

// y = f(a, b) with broadcasting; backward da += ∂f/∂a · dy, db += ∂f/∂b · dy, each summed over
// the positions where that operand was broadcast.
template <class Fwd, class DA, class DB>
Tensor binary(const OpDef& op, const Tensor& a, const Tensor& b, Fwd fwd, DA dfda, DB dfdb) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    check_float_tensor(op.name, a, "left operand");
    check_float_tensor(op.name, b, "right operand");
    check_same_dtype(op.name, a, b);
    const Shape out_shape = broadcast_shapes(op.name, {&a.shape(), &b.shape()});
    Tensor y = empty(out_shape, a.dtype());
    const BroadcastPlan<3> plan(out_shape, {&out_shape, &a.shape(), &b.shape()});
    visit_float(a.dtype(), op.name, [&]<class T>(T) {
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* py = y.data<T>();
        if (a.shape() == b.shape()) {  // the common case: plain, parallel, vectorisable
            parallel_for(0, y.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t i = lo; i < hi; ++i) py[i] = fwd(pa[i], pb[i]);
            });
            return;
        }
        plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
            const T* ra = pa + off[1];
            const T* rb = pb + off[2];
            T* ry = py + off[0];
            if (st[1] == 1 && st[2] == 1) {
                for (std::int64_t i = 0; i < n; ++i) ry[i] = fwd(ra[i], rb[i]);
            } else {
                for (std::int64_t i = 0; i < n; ++i) ry[i] = fwd(ra[i * st[1]], rb[i * st[2]]);
            }
        });
    });
    return record(op, y, {a, b}, [a, b, plan, dfda, dfdb](const Tensor& dy, BackwardContext& ctx) {
        // Without broadcasting every element of both gradients is written, so a gradient that is
        // still empty (the common case: a residual's first use) is written (=) without being zeroed
        // first; a broadcast operand's gradient is a sum, so it starts from zeros.
        const bool same = a.shape() == b.shape();
        bool add_a = true, add_b = true;
        Tensor* da = same ? ctx.grad_overwrite(0, add_a) : ctx.grad(0);
        Tensor* db = same ? ctx.grad_overwrite(1, add_b) : ctx.grad(1);
        visit_float(a.dtype(), "binary backward", [&]<class T>(T) {
            const T* pa = a.data<T>();
            const T* pb = b.data<T>();
            const T* pdy = dy.data<T>();
            T* pda = da ? da->data<T>() : nullptr;
            T* pdb = db ? db->data<T>() : nullptr;
            if (same) {  // independent elements, parallel
                parallel_for(0, dy.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
                    if (pda)
                        for (std::int64_t i = lo; i < hi; ++i) {
                            const T g = dfda(pa[i], pb[i]) * pdy[i];
                            pda[i] = add_a ? pda[i] + g : g;
                        }
                    if (pdb)
                        for (std::int64_t i = lo; i < hi; ++i) {
                            const T g = dfdb(pa[i], pb[i]) * pdy[i];
                            pdb[i] = add_b ? pdb[i] + g : g;
                        }
                });
                return;
            }
            plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
                for (std::int64_t i = 0; i < n; ++i) {
                    const T av = pa[off[1] + i * st[1]];
                    const T bv = pb[off[2] + i * st[2]];
                    const T g = pdy[off[0] + i];
                    if (pda) pda[off[1] + i * st[1]] += dfda(av, bv) * g;
                    if (pdb) pdb[off[2] + i * st[2]] += dfdb(av, bv) * g;
                }
            });
        });
    });
}

}  // namespace

namespace detail {
Shape broadcast_shapes(const char* op, const std::vector<const Shape*>& shapes) {
    std::size_t nd = 0;
    for (auto* s : shapes) nd = std::max(nd, s->size());
    Shape out(nd, 1);
    for (auto* s : shapes) {
        const std::size_t lead = nd - s->size();
        for (std::size_t d = 0; d < s->size(); ++d) {
            const auto n = (*s)[d];
            auto& o = out[lead + d];
            if (n == o || n == 1) continue;
            if (o != 1) {
                std::string all;
                for (auto* t : shapes) all += (all.empty() ? "" : " and ") + shape_str(*t);
                fail("{}: shapes {} cannot be broadcast together (dim {} has sizes {} and {})", op, all,
                     int(lead + d) - int(nd), o, n);
            }
            o = n;
        }
    }
    // (2^40, 1) and (1, 2^40) broadcast to a shape no tensor can hold; say so before any plan
    // multiplies its sizes.
    shape_numel(out, op);
    return out;
}
}  // namespace detail

// -------------------------------------------------------------------------------------------------
// add        y = a + b             ∂y/∂a = 1        ∂y/∂b = 1
static const OpDef kAdd{"add"};
Tensor add(const Tensor& a, const Tensor& b) {
    return binary(kAdd, a, b, []<class T>(T x, T z) { return x + z; },
                  []<class T>(T, T) { return T(1); }, []<class T>(T, T) { return T(1); });
}

// -------------------------------------------------------------------------------------------------
// sub        y = a − b             ∂y/∂a = 1        ∂y/∂b = −1
static const OpDef kSub{"sub"};
Tensor sub(const Tensor& a, const Tensor& b) {
    return binary(kSub, a, b, []<class T>(T x, T z) { return x - z; },
                  []<class T>(T, T) { return T(1); }, []<class T>(T, T) { return T(-1); });
}

// -------------------------------------------------------------------------------------------------
// mul        y = a · b             ∂y/∂a = b        ∂y/∂b = a
static const OpDef kMul{"mul"};
Tensor mul(const Tensor& a, const Tensor& b) {
    return binary(kMul, a, b, []<class T>(T x, T z) { return x * z; },
                  []<class T>(T, T z) { return z; }, []<class T>(T x, T) { return x; });
}

// -------------------------------------------------------------------------------------------------
// div        y = a / b             ∂y/∂a = 1/b      ∂y/∂b = −a/b²
static const OpDef kDiv{"div"};
Tensor div(const Tensor& a, const Tensor& b) {
    return binary(kDiv, a, b, []<class T>(T x, T z) { return x / z; },
                  []<class T>(T, T z) { return T(1) / z; }, []<class T>(T x, T z) { return -x / (z * z); });
}

// -------------------------------------------------------------------------------------------------
// add_scalar y = x + s             dy/dx = 1
static const OpDef kAddScalar{"add_scalar"};
Tensor add(const Tensor& x, double s) {
    return unary(kAddScalar, x, [s]<class T>(T v) { return v + T(s); }, []<class T>(T, T) { return T(1); });
}

// -------------------------------------------------------------------------------------------------
// mul_scalar y = s · x             dy/dx = s
static const OpDef kMulScalar{"mul_scalar"};
Tensor mul(const Tensor& x, double s) {
    return unary(kMulScalar, x, [s]<class T>(T v) { return T(s) * v; }, [s]<class T>(T, T) { return T(s); });
}

// -------------------------------------------------------------------------------------------------
// rdiv       y = s / x             dy/dx = −s/x² = −y/x
static const OpDef kRdiv{"rdiv_scalar"};
Tensor rdiv(double s, const Tensor& x) {
    return unary(kRdiv, x, [s]<class T>(T v) { return T(s) / v; }, []<class T>(T v, T y) { return -y / v; });
}

// -------------------------------------------------------------------------------------------------
// pow        y = xᵖ                dy/dx = p·xᵖ⁻¹
static const OpDef kPow{"pow"};
Tensor pow(const Tensor& x, double p) {
    return unary(kPow, x, [p]<class T>(T v) { return T(std::pow(v, T(p))); },
                 [p]<class T>(T v, T) { return T(p) * T(std::pow(v, T(p - 1))); });
}

// -------------------------------------------------------------------------------------------------
// neg        y = −x                dy/dx = −1
static const OpDef kNeg{"neg"};
Tensor neg(const Tensor& x) {
    return unary(kNeg, x, []<class T>(T v) { return -v; }, []<class T>(T, T) { return T(-1); });
}

// -------------------------------------------------------------------------------------------------
// exp        y = eˣ                dy/dx = eˣ = y   (reuse the output: no second exp)
static const OpDef kExp{"exp"};
Tensor exp(const Tensor& x) {
    return unary(kExp, x, []<class T>(T v) { return std::exp(v); }, []<class T>(T, T y) { return y; });
}

// -------------------------------------------------------------------------------------------------
// log        y = ln x              dy/dx = 1/x
static const OpDef kLog{"log"};
Tensor log(const Tensor& x) {
    return unary(kLog, x, []<class T>(T v) { return std::log(v); }, []<class T>(T v, T) { return T(1) / v; });
}

// -------------------------------------------------------------------------------------------------
// sqrt       y = √x                dy/dx = 1/(2√x) = 1/(2y)
static const OpDef kSqrt{"sqrt"};
Tensor sqrt(const Tensor& x) {
    return unary(kSqrt, x, []<class T>(T v) { return std::sqrt(v); },
                 []<class T>(T, T y) { return T(0.5) / y; });
}

// -------------------------------------------------------------------------------------------------
// tanh       y = tanh x            dy/dx = 1 − tanh²x = 1 − y²
static const OpDef kTanh{"tanh"};
Tensor tanh(const Tensor& x) {
    return unary(kTanh, x, []<class T>(T v) { return std::tanh(v); },
                 []<class T>(T, T y) { return T(1) - y * y; });
}

// -------------------------------------------------------------------------------------------------
// sigmoid    y = 1/(1 + e⁻ˣ)       dy/dx = y(1 − y)
// For very negative x, e⁻ˣ overflows; the equal form eˣ/(1 + eˣ) does not, so pick by sign.
static const OpDef kSigmoid{"sigmoid"};
Tensor sigmoid(const Tensor& x) {
    return unary(kSigmoid, x,
                 []<class T>(T v) {
                     if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
                     const T e = std::exp(v);
                     return e / (T(1) + e);
                 },
                 []<class T>(T, T y) { return y * (T(1) - y); });
}

// -------------------------------------------------------------------------------------------------
// relu       y = max(0, x)         dy/dx = 1 if x > 0 else 0
static const OpDef kRelu{"relu"};
Tensor relu(const Tensor& x) {
    return unary(kRelu, x, []<class T>(T v) { return v > T(0) ? v : T(0); },
                 []<class T>(T v, T) { return v > T(0) ? T(1) : T(0); });
}

// -------------------------------------------------------------------------------------------------
// gelu (tanh approximation, GPT-2)
//   u = √(2/π)·(x + 0.044715x³),   y = ½x(1 + tanh u)
//   dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
static const OpDef kGelu{"gelu"};
Tensor gelu(const Tensor& x) {
    constexpr double kC = 0.044715;
    const double kS = std::sqrt(2.0 / std::numbers::pi);
    return unary(kGelu, x,
                 [kS]<class T>(T v) { return T(0.5) * v * (T(1) + std::tanh(T(kS) * (v + T(kC) * v * v * v))); },
                 [kS]<class T>(T v, T) {
                     const T t = std::tanh(T(kS) * (v + T(kC) * v * v * v));
                     return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * T(kS) * (T(1) + T(3 * kC) * v * v);
                 });
}

// -------------------------------------------------------------------------------------------------
// gelu_erf (exact)   y = x·Φ(x) = ½x(1 + erf(x/√2))
//   dy/dx = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)   (product rule; Φ' = φ)
//
// In f64 we call std::erf: gradient checks need every digit. In f32 — the training path, where
// GELU runs on every hidden unit of every MLP — a library call per element was a fifth of a small
// model's step, because it stops the compiler from vectorising the loop. So f32 uses erf from
// Abramowitz & Stegun 7.1.26, erf(z) ≈ 1 − (a₁t + … + a₅t⁵)·e^(−z²), t = 1/(1 + p·z), whose error
// (< 1.5e-7) is at float's own precision, with e^(−z²) from a small exp that vectorises. The same
// e^(−z²) = e^(−x²/2) is the Gaussian density the backward needs, so one exp serves both.
namespace {

// Φ(x) and φ(x) together, f32.
inline void normal_cdf_pdf_f32(float x, float& cdf, float& pdf) {
    const float z = std::fabs(x) * 0.70710678f;  // |x|/√2
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float g = exp_f32(-z * z);  // e^(−x²/2)
    const float erf_abs = 1.0f - poly * g;
    cdf = 0.5f + 0.5f * std::copysign(erf_abs, x);  // erf is odd
    pdf = g * 0.39894228f;  // 1/√(2π)
}

// y = x·Φ(x) and its slope Φ(x) + x·φ(x), from one evaluation of Φ and φ.
template <class T>
void gelu_erf_point(T v, T& y, T& slope) {
    if constexpr (std::is_same_v<T, float>) {
        float cdf, pdf;
        normal_cdf_pdf_f32(v, cdf, pdf);
        y = v * cdf;
        slope = cdf + v * pdf;
    } else {
        const T e = std::erf(v * T(std::numbers::sqrt2 / 2));
        const T pdf = std::exp(T(-0.5) * v * v) * T(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
        y = T(0.5) * v * (T(1) + e);
        slope = T(0.5) * (T(1) + e) + v * pdf;
    }
}

// The f32 loops, compiled once per CPU level (QKV_CLONES, see kernels/vec.hpp): with AVX2 or AVX-512 the
// whole polynomial runs 8 or 16 lanes at a time.
QKV_CLONES void gelu_erf_f32(const float* x, float* y, float* slope, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) gelu_erf_point(x[i], y[i], slope[i]);
}

// out = a·b elementwise, or out += a·b.
QKV_CLONES void multiply_f32(const float* a, const float* b, float* out, std::int64_t n, bool accumulate) {
    if (accumulate)
        for (std::int64_t i = 0; i < n; ++i) out[i] += a[i] * b[i];
    else
        for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

}  // namespace

void detail::gelu_erf_rows(const float* x, float* y, float* slope, std::int64_t n) { gelu_erf_f32(x, y, slope, n); }
void detail::gelu_erf_backward_into(const Tensor& slope, const Tensor& dy, Tensor& dx, bool accumulate) {
    visit_float(dy.dtype(), "gelu_erf backward", [&]<class T>(T) {
        const T* ps = slope.data<T>();
        const T* pdy = dy.data<T>();
        T* pdx = dx.data<T>();
        parallel_for(0, dy.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
            if constexpr (std::is_same_v<T, float>) {
                multiply_f32(ps + lo, pdy + lo, pdx + lo, hi - lo, accumulate);
            } else if (accumulate) {
                for (std::int64_t i = lo; i < hi; ++i) pdx[i] += ps[i] * pdy[i];
            } else {
                for (std::int64_t i = lo; i < hi; ++i) pdx[i] = ps[i] * pdy[i];
            }
        });
    });
}

void detail::gelu_erf_rows(const double* x, double* y, double* slope, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) gelu_erf_point(x[i], y[i], slope[i]);
}

// The forward already has Φ(x) and φ(x) in hand, so it stores the slope Φ(x) + x·φ(x) next to y
// and the backward is one multiply: no second erf and exp per element. (Recomputing them in the
// backward instead, to save writing and reading the slope buffer, was measured: 45% slower in
// total, as the division and exp cost more than the memory traffic they save.)
static const OpDef kGeluErf{"gelu_erf"};
Tensor gelu_erf(const Tensor& x) {
    detail::OpScope profile(kGeluErf);  // the profiler's hook: one branch when off
    check_float_tensor(kGeluErf.name, x);
    Tensor y = empty(x.shape(), x.dtype());
    Tensor slope = empty(x.shape(), x.dtype());
    visit_float(x.dtype(), kGeluErf.name, [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        T* ps = slope.data<T>();
        parallel_for(0, x.numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
            if constexpr (std::is_same_v<T, float>)
                gelu_erf_f32(px + lo, py + lo, ps + lo, hi - lo);
            else
                for (std::int64_t i = lo; i < hi; ++i) gelu_erf_point(px[i], py[i], ps[i]);
        });
    });
    return record(kGeluErf, y, {x}, [slope](const Tensor& dy, BackwardContext& ctx) {
        bool add = true;
        Tensor* dx = ctx.grad_overwrite(0, add);
        if (dx) gelu_erf_backward_into(slope, dy, *dx, add);
    });
}

}  // namespace qkv
