/// \file
/// \brief Lab 3: gradient checking — the numeric gradient by central differences, and the
/// comparison that tells a right backward from a wrong one.
///
/// You write both functions in lab.cpp. The grader feeds them functions whose gradients qkv knows,
/// correct backwards that must pass, and deliberately broken backwards that must be caught.
#pragma once

#include <cstdint>
#include <functional>

#include "support/lab.hpp"

namespace lab {

/// \brief \f$ \partial f/\partial x_i \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon} \f$
/// for every element i of x: the central difference, accurate to \f$ O(\varepsilon^2) \f$.
/// \param f a scalar function of a tensor shaped like \p x (evaluate it on your perturbed copy)
/// \param x the point (f64); it must be left unchanged
/// \param eps the step \f$ \varepsilon \f$
/// \return the numeric gradient, shaped like x, f64
qkv::Tensor numeric_gradient(const std::function<double(const qkv::Tensor&)>& f, const qkv::Tensor& x, double eps);

/// \brief What check_gradient() found: the verdict and the element that decided it.
struct GradientCheck {
    bool ok = true;           ///< every element within tolerance
    std::int64_t worst = -1;  ///< flat index of the element with the largest ratio (below)
    double analytic = 0;      ///< backward's value there
    double numeric = 0;       ///< the central difference there
    /// \f$ |a - n| / (\mathrm{atol} + \mathrm{rtol}\,|n|) \f$ at the worst element: ok means ≤ 1
    double ratio = 0;
};

/// \brief Check a backward pass: the gradient autograd computes for \f$ L = f(x) \f$ against
/// numeric_gradient(), element by element; element i passes when
/// \f$ |a_i - n_i| \le \mathrm{atol} + \mathrm{rtol}\,|n_i| \f$.
/// \param f a function returning a one-element tensor (a loss) that records a graph
/// \param x the point (f64); it must be left unchanged
/// \param eps finite-difference step
/// \param atol absolute tolerance \param rtol relative tolerance
/// \return the verdict and the worst element
GradientCheck check_gradient(const std::function<qkv::Tensor(const qkv::Tensor&)>& f, const qkv::Tensor& x,
                             double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3);

}  // namespace lab
