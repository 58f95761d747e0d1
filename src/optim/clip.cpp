/// \file
/// \brief Gradient clipping by global norm.
///
/// A reader learns here the standard guard against exploding gradients: treat all gradients of the
/// model as one long vector, and if its length exceeds a threshold, shrink it to that length. The
/// direction of the step is unchanged; only its size is capped. One bad batch can then no longer
/// throw the weights far away.
#include <cmath>

#include "checks.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::optim {
namespace {

// Σ g² of one gradient, accumulated in double so that millions of f32 terms do not lose the small ones.
template <class T>
double sum_of_squares(const T* g, std::size_t n) {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
    return s;
}

// g ← c·g in place.
template <class T>
void scale(T* g, std::size_t n, T c) {
    for (std::size_t i = 0; i < n; ++i) g[i] *= c;
}

// -------------------------------------------------------------------------------------------------
// clip_grad_norm     n = √(Σ_p Σ_i g_{p,i}²)      c = max_norm / (n + 10⁻⁶)      if c < 1: g ← c·g
// The 10⁻⁶ (PyTorch's) keeps c finite when every gradient is zero. `tensor_of` picks the tensor out
// of an element of the list, so both overloads share this code without copying the list.
template <class List, class TensorOf>
double clip_impl(const List& params, double max_norm, TensorOf tensor_of) {
    if (!(max_norm > 0.0) || !std::isfinite(max_norm))
        fail("clip_grad_norm: max_norm must be a finite number > 0, got {}", max_norm);
    NoGradGuard no_grad;
    double total = 0.0;
    for (const auto& item : params) {
        const Tensor g = tensor_of(item).grad();
        if (!g.defined()) continue;
        total += g.dtype() == f32 ? sum_of_squares(g.data<float>(), std::size_t(g.numel()))
                                  : sum_of_squares(g.data<double>(), std::size_t(g.numel()));
    }
    const double norm = std::sqrt(total);
    const double c = max_norm / (norm + 1e-6);
    if (!std::isfinite(norm) || c >= 1.0) return norm;
    for (const auto& item : params) {
        Tensor g = tensor_of(item).grad();
        if (!g.defined()) continue;
        if (g.dtype() == f32) scale(g.data<float>(), std::size_t(g.numel()), float(c));
        else scale(g.data<double>(), std::size_t(g.numel()), c);
    }
    return norm;
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
    return clip_impl(params, max_norm, [](const Tensor& t) -> const Tensor& { return t; });
}

double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm) {
    return clip_impl(params, max_norm, [](const NamedTensor& nt) -> const Tensor& { return nt.second; });
}

}  // namespace qkv::optim
