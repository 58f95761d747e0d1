/// \file
/// \brief The softmax kernels, forward and backward: rows of numbers in, rows of numbers out.
///
/// Not installed and not part of the API. A reader finds here the one place where qkv computes a
/// softmax. Three ops use it: `softmax` / `log_softmax` (ops/softmax.cpp) on any dimension of a
/// tensor, `cross_entropy` (ops/loss.cpp) for its log-sum-exp, and attention (ops/attention.cpp) on
/// every row of scores.
///
/// Forward, for one row x of n values with maximum m:
/// \f[ y_k = \frac{e^{x_k - m}}{\sum_j e^{x_j - m}}, \qquad
///     \log y_k = x_k - \mathrm{lse}(x), \quad \mathrm{lse}(x) = m + \log\sum_j e^{x_j - m}. \f]
/// Subtracting m changes nothing mathematically (the \f$ e^{-m} \f$ cancels) but keeps every
/// exponent ≤ 0, so nothing overflows.
///
/// Backward, from \f$ \partial y_i/\partial x_k = y_i(\delta_{ik} - y_k) \f$:
/// \f[ dx_k = y_k\Big(dy_k - \sum_i dy_i\,y_i\Big) \quad\text{(softmax)}, \qquad
///     dx_k = dy_k - e^{y_k}\sum_i dy_i \quad\text{(log-softmax, } y = \log\text{softmax)}. \f]
///
/// Each formula is written once (softmax.cpp) and compiled two ways. The *reference* rows work in
/// float or double, on rows whose elements may be `stride` apart (softmax over any dimension), with
/// std::exp and sums in plain left-to-right order. The *fast* f32 rows, for attention's contiguous
/// score rows, use exp_f32() and lane_sum() (kernels/vec.hpp) so that they vectorise and give the
/// same bits on every CPU.
#pragma once

#include <cstdint>

namespace qkv::kernels {

// ---- reference rows: float or double, any stride ------------------------------------------------

///@{
/// \brief One softmax row ("fibre"): \p n values of \p x, \p stride apart, written to \p y (which may
/// be \p x) as probabilities or, with \p log_space, log-probabilities.
///
/// Where \p blocked is non-null, entries with blocked[k] ≠ 0 (indexed 0 … n−1) take no part, as if
/// they were −∞: probability 0. When every entry is −∞ or blocked (a fully masked attention row)
/// there is no distribution to form; the row becomes probability 0 everywhere (log-probability −∞)
/// instead of 0/0 = NaN, so it contributes nothing downstream and its gradient is 0.
/// \param x the row's first value \param y where its first output goes \param n values in the row
/// \param stride elements between consecutive values \param log_space log-probabilities instead
/// \param blocked n flags (1 = masked), or null
void softmax_fibre(const float* x, float* y, std::int64_t n, std::int64_t stride, bool log_space,
                   const std::uint8_t* blocked = nullptr);
void softmax_fibre(const double* x, double* y, std::int64_t n, std::int64_t stride, bool log_space,
                   const std::uint8_t* blocked = nullptr);
///@}

///@{
/// \brief Backward of one softmax (or, with \p log_space, log-softmax) row: from the row's output
/// \p y and its gradient \p dy, \f$ dx_k = y_k(dy_k - \sum_i dy_i y_i) \f$ (log-softmax:
/// \f$ dx_k = dy_k - e^{y_k}\sum_i dy_i \f$), added into \p dx when \p accumulate, else written.
/// \p dx may be \p dy itself (every dy is read before its dx is written).
/// \param y the forward's output row \param dy its gradient \param dx the input's gradient
/// \param n values in the row \param stride elements between consecutive values
/// \param log_space the row is a log-softmax \param accumulate add into \p dx instead of writing it
void softmax_fibre_backward(const float* y, const float* dy, float* dx, std::int64_t n, std::int64_t stride,
                            bool log_space, bool accumulate);
void softmax_fibre_backward(const double* y, const double* dy, double* dx, std::int64_t n, std::int64_t stride,
                            bool log_space, bool accumulate);
///@}

///@{
/// \brief \f$ \mathrm{lse}(x) = m + \log\sum_k e^{x_k - m} \f$ of one contiguous row (m its maximum):
/// the log of softmax's denominator, what cross-entropy needs. −∞ for an empty row.
/// \param x the row \param n its length \return lse(x)
float log_sum_exp(const float* x, std::int64_t n);
double log_sum_exp(const double* x, std::int64_t n);
///@}

// ---- fast f32 rows: contiguous, vectorised, the same bits on every CPU --------------------------

/// \brief Softmax of one row of \p n floats in place. Where \p blocked is non-null, entries with
/// blocked[j] ≠ 0 take no part and become 0; a row with nothing left becomes all zeros.
/// \param x the row \param n its length \param blocked n flags (1 = masked), or null
void softmax_row_f32(float* x, std::int64_t n, const std::uint8_t* blocked);

/// \brief softmax_row_f32() (without a mask) on \p rows rows of \p n floats, \p ld apart, with the
/// same bits: four rows at a time, so that short rows keep the core busy.
/// \param x the first row \param rows how many rows \param n the length of each \param ld floats from one row to the next
void softmax_rows_f32(float* x, std::int64_t rows, std::int64_t n, std::int64_t ld);

/// \brief Softmax backward of one contiguous row, \f$ dx_j = y_j(dy_j - \sum_k dy_k y_k) \f$, written
/// into \p dx (which may be \p dy itself) or added to it when \p accumulate.
/// \param y the forward's output row \param dy its gradient \param dx the input's gradient
/// \param n the row's length \param accumulate add into \p dx instead of writing it
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, std::int64_t n, bool accumulate);

}  // namespace qkv::kernels
