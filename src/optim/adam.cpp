/// \file
/// \brief Adam and AdamW: per-parameter step sizes from running moment estimates.
///
/// A reader learns here why Adam works out of the box on so many models. It keeps two running
/// averages per weight: m, of the gradient (a momentum), and v, of the squared gradient (its
/// typical magnitude). The step m/√v has roughly unit size whatever the scale of the gradient, so
/// the learning rate sets how far each weight moves per step. Both averages start at zero, which
/// biases them toward zero early on; dividing by 1 − βᵗ removes that bias (at t = 1, m/(1 − β₁) is
/// exactly g). AdamW differs only in where weight decay enters: outside the division.
#include <cmath>
#include <type_traits>

#include "checks.hpp"
#include "kernels/vec.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::optim {
namespace {

constexpr std::size_t kExpAvg = 0, kExpAvgSq = 1, kStep = 2;  // slot indices

void validate(const std::string& who, const AdamOptions& o) {
    detail::check_non_negative(who, "lr", o.lr);
    detail::check_beta(who, "beta1", o.beta1);
    detail::check_beta(who, "beta2", o.beta2);
    detail::check_non_negative(who, "eps", o.eps);
    detail::check_non_negative(who, "weight_decay", o.weight_decay);
}

/// The per-step scalars of one parameter's update, computed once in double, converted to T.
template <class T>
struct AdamCoeffs {
    T beta1, beta2;  // β₁, β₂
    // 1 − β₁ and 1 − β₂, subtracted in double and then rounded. Subtracting in T from the already
    // rounded β would be wrong in f32: float(0.999) is 0.999000013, so 1 − float(0.999) comes out
    // as 9.99987e-4 instead of 1e-3 and every second-moment update 1.3e-5 too small (the step
    // 6.75e-6 relatively too large).
    T one_minus_beta1, one_minus_beta2;
    T step_size;     // η / (1 − β₁ᵗ)
    T inv_sqrt_bc2;  // 1 / √(1 − β₂ᵗ)
    T eps;           // ε
    T l2;            // λ for Adam (added to g), 0 for AdamW
    T shrink;        // 1 − ηλ for AdamW, 1 for Adam
};

// -------------------------------------------------------------------------------------------------
// Adam      g ← g + λθ                           (Adam's L2 weight decay; 0 for AdamW)
// AdamW     θ ← θ(1 − ηλ)                        (decoupled weight decay; 1 for Adam)
// both      m ← β₁m + (1 − β₁)g
//           v ← β₂v + (1 − β₂)g²
//           θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
// The last line is the paper's θ ← θ − η m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), with
// the two corrections folded into scalars as PyTorch does (one division per element, not three).
// (always_inline: so that each CPU-specific clone below gets its own vectorised copy of the loop
// instead of calling the baseline one.)
template <class T>
[[gnu::always_inline]] inline void adam_kernel(T* theta, const T* grad, T* m, T* v, std::size_t n, const AdamCoeffs<T>& c) {
    for (std::size_t i = 0; i < n; ++i) {
        const T g = grad[i] + c.l2 * theta[i];
        theta[i] *= c.shrink;
        m[i] = c.beta1 * m[i] + c.one_minus_beta1 * g;
        v[i] = c.beta2 * v[i] + c.one_minus_beta2 * g * g;
        theta[i] -= c.step_size * m[i] / (std::sqrt(v[i]) * c.inv_sqrt_bc2 + c.eps);
    }
}

// The same loop for f32, compiled per CPU level (see src/kernels/vec.hpp): the square root and the
// division run 8 or 16 lanes at a time, with the same bits in every version.
QKV_CLONES void adam_kernel_f32(float* theta, const float* grad, float* m, float* v, std::size_t n,
                                const AdamCoeffs<float>& c) {
    adam_kernel<float>(theta, grad, m, v, n, c);
}

template <class T>
void adam_update(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamCoeffs<double>& c) {
    const AdamCoeffs<T> ct{T(c.beta1), T(c.beta2), T(c.one_minus_beta1), T(c.one_minus_beta2), T(c.step_size), T(c.inv_sqrt_bc2), T(c.eps), T(c.l2), T(c.shrink)};
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    // Elements are independent, so large parameters are split between the threads.
    parallel_for(0, p.numel(), 32768, [&](std::int64_t lo, std::int64_t hi) {
        const auto n = std::size_t(hi - lo);
        if constexpr (std::is_same_v<T, float>)
            adam_kernel_f32(pp + lo, pg + lo, pm + lo, pv + lo, n, ct);
        else
            adam_kernel<T>(pp + lo, pg + lo, pm + lo, pv + lo, n, ct);
    });
}

AdamOptions from_adamw(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}; }

}  // namespace

Adam::Adam(std::vector<NamedTensor> params, AdamOptions options) : Adam("Adam", std::move(params), options, false) {}

Adam::Adam(const std::string& who, std::vector<NamedTensor> params, AdamOptions options, bool decoupled)
    : Optimizer(who, std::move(params), options.lr, {{"exp_avg", false}, {"exp_avg_sq", false}, {"step", true}}),
      opt_(options),
      decoupled_(decoupled) {
    validate(who, opt_);
}

AdamW::AdamW(std::vector<NamedTensor> params, AdamWOptions options)
    : Adam("AdamW", std::move(params), from_adamw(options), true) {}

void Adam::update(std::size_t i) {
    Tensor p = params()[i].second;
    const Tensor g = p.grad();
    Tensor& m = buffer(i, kExpAvg);
    Tensor& v = buffer(i, kExpAvgSq);
    // t counts this parameter's own updates: one skipped while it had no gradient does not count.
    double& t = buffer(i, kStep).data<double>()[0];
    t += 1.0;
    const double bc1 = 1.0 - std::pow(opt_.beta1, t);
    const double bc2 = 1.0 - std::pow(opt_.beta2, t);
    const double wd = opt_.weight_decay;
    const AdamCoeffs<double> c{opt_.beta1, opt_.beta2, 1.0 - opt_.beta1, 1.0 - opt_.beta2, lr_ / bc1,
                               1.0 / std::sqrt(bc2), opt_.eps, decoupled_ ? 0.0 : wd,
                               decoupled_ ? 1.0 - lr_ * wd : 1.0};
    if (p.dtype() == f32) adam_update<float>(p, g, m, v, c);
    else adam_update<double>(p, g, m, v, c);
}

std::map<std::string, double> Adam::hyper() const {
    return {{"lr", lr_}, {"beta1", opt_.beta1}, {"beta2", opt_.beta2}, {"eps", opt_.eps}, {"weight_decay", opt_.weight_decay}};
}

AdamOptions Adam::options() const {
    AdamOptions o = opt_;
    o.lr = lr_;
    return o;
}

void Adam::set_hyper(const std::map<std::string, double>& h) {
    expect_keys(h, {"lr", "beta1", "beta2", "eps", "weight_decay"});
    const AdamOptions o{h.at("lr"), h.at("beta1"), h.at("beta2"), h.at("eps"), h.at("weight_decay")};
    validate(kind(), o);
    opt_ = o;
    lr_ = o.lr;
}

}  // namespace qkv::optim
