/// \file
/// \brief qkv::gradcheck: proving a backward pass right with finite differences.
///
/// A reader learns here how to *test* a gradient. For a scalar function L(x), the central difference
/// \f$ \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon} \f$ approximates
/// \f$ \partial L/\partial x_i \f$ with error \f$ O(\varepsilon^2) \f$. In float64 with
/// \f$ \varepsilon = 10^{-6} \f$ that is accurate to about 1e-8, far below any real bug.
///
/// A function f with a tensor output is reduced to a scalar by a fixed random weighting,
/// \f$ L = \sum_j w_j f_j(x) \f$ with \f$ w \sim N(0,1) \f$. Then backward with upstream gradient w
/// gives the vector–Jacobian product \f$ J^\top w \f$ — exactly what every backward computes — and
/// random weights make it essentially impossible for a wrong Jacobian to agree by accident.
/// Every input element is perturbed (up to a limit), and the report names the worst one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv {

/// Settings of gradcheck(). The defaults equal PyTorch's gradcheck.
struct GradcheckOptions {
    double eps = 1e-6;   ///< finite-difference step
    double atol = 1e-5;  ///< absolute tolerance
    double rtol = 1e-3;  ///< relative tolerance: pass when |analytic − numeric| ≤ atol + rtol·|numeric|
    std::uint64_t seed = 1234;  ///< seed of the random output weighting w
    /// Inputs with more elements than this are checked on an evenly spaced sample of this many.
    std::int64_t max_elements = 4096;
    std::string label;  ///< name shown in the report (defaults to the output's op)
};

/// What gradcheck() found.
struct GradcheckReport {
    bool ok = true;          ///< every checked element within tolerance
    std::string op;          ///< label, or the op that produced the output
    int input = -1;          ///< which input holds the worst element
    std::int64_t index = -1; ///< flat index of the worst element in that input
    Shape input_shape;       ///< shape of that input
    double analytic = 0;     ///< backward's value there
    double numeric = 0;      ///< finite-difference value there
    double abs_error = 0;    ///< |analytic − numeric|
    double rel_error = 0;    ///< abs_error / max(|numeric|, tiny)
    double worst_ratio = 0;  ///< abs_error / (atol + rtol·|numeric|); > 1 means failure
    std::int64_t checked = 0;        ///< number of input elements compared
    std::vector<std::string> ops;    ///< ops recorded in the checked graph
    /// \brief One line: "gradcheck <op>: ok (N elements, worst ...)" or the failing element.
    /// \return the line, without a trailing newline
    std::string summary() const;
};

/// \brief Compare the backward pass of \p f with central finite differences.
///
/// \p f receives tensors with the values of \p inputs (f64, requiring grad) and returns a floating
/// tensor of any shape. Throws qkv::Error when an input is not f64 or \p f does not depend
/// differentiably on them.
/// \param f the function to check
/// \param inputs the point at which to check (f64 tensors; they are not modified)
/// \param options tolerances and limits
/// \return the report: whether every checked element passed, and the worst one
GradcheckReport gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

/// \brief Gradient-check a model's *parameters*: \p f computes an output from the current values
/// of \p params (typically `model.parameters()` after `model.to(f64)`), and each parameter element
/// is perturbed in place (and restored) for the finite differences. The parameters' existing
/// gradients are cleared.
/// \param f computes the output from the parameters' current values
/// \param params f64 leaf tensors that require grad
/// \param options tolerances and limits
/// \return the report: whether every checked element passed, and the worst one
GradcheckReport gradcheck_params(const std::function<Tensor()>& f, const std::vector<Tensor>& params,
                                 const GradcheckOptions& options = {});

/// \brief The largest elementwise \f$ |a_i - b_i| \f$, computed in float64 — the number to print
/// when comparing two ways of computing the same thing (a fused op and its composed formula, a
/// hand-derived gradient and autograd's).
///
/// A NaN anywhere in either tensor makes the result NaN (`std::max` would silently skip it, and a
/// comparison that ignores a NaN would pass), and an infinity on one side only makes it +∞; equal
/// infinities count as no difference. Any dtypes may be mixed. Throws qkv::Error when the shapes
/// differ or a tensor is undefined.
/// \param a first tensor
/// \param b second tensor, of the same shape
/// \return the largest absolute difference (0 for empty tensors)
double max_abs_diff(const Tensor& a, const Tensor& b);

/// \brief True when every element satisfies \f$ |a_i - b_i| \le \mathrm{atol} + \mathrm{rtol}\,|b_i| \f$,
/// the test of NumPy's and PyTorch's `allclose` (with their defaults).
///
/// NaN is never close to anything, not even NaN; equal infinities are close. Throws qkv::Error
/// when the shapes differ, a tensor is undefined, or a tolerance is negative or NaN.
/// \param a the tensor under test
/// \param b the reference (the relative tolerance scales with |b|)
/// \param rtol relative tolerance
/// \param atol absolute tolerance
/// \return whether all elements are close
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

}  // namespace qkv
