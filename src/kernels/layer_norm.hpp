/// \file
/// \brief The layer-norm kernels, forward and backward, on rows of C numbers.
///
/// Not installed and not part of the API: ops/norm.cpp wraps them into the `layer_norm` op (where
/// the math is derived). Per row x of C values:
/// \f[ \mu = \tfrac1C\textstyle\sum_i x_i, \quad r = 1/\sqrt{\tfrac1C\sum_i (x_i-\mu)^2 + \epsilon}, \quad
///     \hat x_i = (x_i-\mu)\,r, \quad y_i = \gamma_i\hat x_i + \beta_i, \f]
/// \f[ dx_i = r\Big(g_i - \tfrac1C\textstyle\sum_j g_j - \hat x_i\,\tfrac1C\sum_j g_j\hat x_j\Big), \; g = \gamma\odot dy,
///     \qquad d\gamma_i = \textstyle\sum_\text{rows} dy_i\,\hat x_i, \qquad d\beta_i = \sum_\text{rows} dy_i. \f]
/// Each formula is written once (layer_norm.cpp) and compiled for double, with sums left to right,
/// and for float, with lane_sum()'s fixed order, once per CPU level (the same bits on each).
#pragma once

#include <cstdint>

namespace qkv::kernels {

///@{
/// \brief Forward of \p rows rows of \p C values: y = (x − μ)·r·γ + β; stores (μ, r) per row in
/// \p stats (2 per row), all the backward needs.
/// \param x input rows \param gamma scale (C) \param beta shift (C) \param y output rows
/// \param stats (μ, r) per row \param rows number of rows \param C values per row \param eps added to the variance
void layer_norm_rows(const float* x, const float* gamma, const float* beta, float* y, float* stats, std::int64_t rows,
                     std::int64_t C, float eps);
void layer_norm_rows(const double* x, const double* gamma, const double* beta, double* y, double* stats,
                     std::int64_t rows, std::int64_t C, double eps);
///@}

///@{
/// \brief dx of \p rows rows, r·(g − mean(g) − x̂·mean(g·x̂)) with g = γ·dy, added into \p dx when
/// \p accumulate, else written.
/// \param x the forward's input rows \param gamma scale (C) \param dy the output's gradient
/// \param stats (μ, r) per row from the forward \param dx the input's gradient \param rows number of rows
/// \param C values per row \param accumulate add into \p dx instead of writing it
void layer_norm_rows_backward(const float* x, const float* gamma, const float* dy, const float* stats, float* dx,
                              std::int64_t rows, std::int64_t C, bool accumulate);
void layer_norm_rows_backward(const double* x, const double* gamma, const double* dy, const double* stats, double* dx,
                              std::int64_t rows, std::int64_t C, bool accumulate);
///@}

///@{
/// \brief dγ_i = Σ_rows dy_i·x̂_i and dβ_i = Σ_rows dy_i for the columns i in [lo, hi) of all \p R
/// rows, rows in order: added into the buffers when add_g / add_b, else written. Either buffer may
/// be null (not needed). Threads split the columns, so no two write the same element.
/// \param x the forward's input rows \param dy the output's gradient \param stats (μ, r) per row
/// \param R number of rows \param C values per row \param lo first column \param hi column after the last
/// \param dgamma γ's gradient, or null \param add_g add into it \param dbeta β's gradient, or null
/// \param add_b add into it
void layer_norm_param_grads(const float* x, const float* dy, const float* stats, std::int64_t R, std::int64_t C,
                            std::int64_t lo, std::int64_t hi, float* dgamma, bool add_g, float* dbeta, bool add_b);
void layer_norm_param_grads(const double* x, const double* dy, const double* stats, std::int64_t R, std::int64_t C,
                            std::int64_t lo, std::int64_t hi, double* dgamma, bool add_g, double* dbeta, bool add_b);
///@}

}  // namespace qkv::kernels
