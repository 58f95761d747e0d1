/// \file
/// \brief Private building blocks for fast f32 loops: CPU-specific clones, exp without a call, row softmax.
///
/// Not installed and not part of the API. A reader learns here how the elementwise and row-wise
/// kernels (GELU, layer norm, softmax) run at AVX2 or AVX-512 speed inside a library that is
/// compiled for plain x86-64. The answer is GCC's *function multi-versioning*: a function marked
/// `QKV_CLONES` is compiled three times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the
/// baseline, and when the program starts the dynamic loader asks the CPU which it can run (an
/// "ifunc" resolver) and binds every call to that version. The source stays one plain loop.
///
/// Two things keep those loops vectorisable. A call to a library function (`std::exp`) stops the
/// compiler from vectorising, so exp_f32() computes \f$ e^x \f$ with a few multiplies and adds.
/// And a float sum is a chain of dependent additions that the compiler may not reorder, because
/// reordering changes the rounding; lane_sum() fixes one order of its own — 16 running partial
/// sums, combined pairwise — which 4-, 8- and 16-lane registers all compute alike.
///
/// That last point is a promise worth keeping: **every clone gives the same bits.** The library is
/// compiled with `-ffp-contract=off` (no silent fusing of a·b + c into one FMA, which rounds once
/// instead of twice), each elementwise formula is the same sequence of IEEE operations in every
/// clone, and every sum has the fixed order above. So a model trained on an AVX-512 machine and
/// on a plain x86-64 one takes exactly the same steps, and the tutorials print the same digits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// (Define QKV_NO_CLONES to build the baseline version only: that is how we checked that every
// clone gives the same bits as the baseline build.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(QKV_NO_CLONES)
/// Compile the function for AVX-512, AVX2+FMA and baseline x86-64; the loader picks one at start-up.
#define QKV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
/// Without GCC on x86-64 (or with QKV_NO_CLONES): an ordinary function, compiled once.
#define QKV_CLONES
#endif

namespace qkv::detail {

/// \brief \f$ e^v \f$ in float without a library call, so loops of it vectorise.
///
/// v = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite: ln2 split in two parts so n·ln2 is exact), e^r by
/// its Taylor polynomial to r⁷ (relative error < 1e-7 on that interval), and 2^n built directly in
/// the exponent bits. Branch-free (selects, not ifs). Inputs below −87 give e^−87 ≈ 1.6e-38
/// instead of a denormal or 0; above 88 they give e^88 (float overflows at 88.7).
/// \param v the exponent
/// \return \f$ e^v \f$ to within 1e-7 relative
inline float exp_f32(float v) {
    v = v < -87.0f ? -87.0f : v;
    v = v > 88.0f ? 88.0f : v;
    const float n = (v * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest: the 1.5·2²³ trick
    const float r = (v - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t bits = (std::int32_t(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/// \brief exp_f32() that is exactly 0 for v < −87 (so e^−∞ = 0, as a masked score needs).
inline float exp_f32_or_zero(float v) {
    const float e = exp_f32(v);
    return v < -87.0f ? 0.0f : e;
}

/// Partial sums lane_sum() keeps: as many as the widest registers hold (AVX-512: 16 floats).
constexpr std::int64_t kSumLanes = 16;

/// \brief Folds the first 2·W partial results in halves: acc[l] ← op(acc[l], acc[l + W]) for
/// W, W/2, … 1, leaving the total in acc[0] (the pairwise order lane_sum() promises).
///
/// W is a template parameter so that every step has a fixed length the compiler unrolls into one
/// vector operation (8 lanes, then 4, 2, 1); as a run-time loop it stayed a scalar loop through
/// memory, and the reductions cost more than the arithmetic in a 32-key attention row.
template <std::int64_t W, class T, class Op>
inline void fold_lanes(T* acc, Op op) {
    for (std::int64_t l = 0; l < W; ++l) acc[l] = op(acc[l], acc[l + W]);
    if constexpr (W > 1) fold_lanes<W / 2>(acc, op);
}

/// \brief \f$ \sum_{i<n} f(i) \f$ in a fixed order that does not depend on the vector width.
///
/// Term i goes into partial sum i mod 16; the 16 partial sums are then added pairwise (8 + 8,
/// 4 + 4, 2 + 2, 1 + 1). The inner loop has 16 independent lanes, so it vectorises as 4×4 (SSE),
/// 2×8 (AVX2) or 1×16 (AVX-512) — with identical results — and 16 chains of additions also hide
/// the 4-cycle latency of each add, which a single running sum cannot.
/// \tparam Acc the type of the partial sums (float; double where a long sum must keep its digits)
/// \param n number of terms
/// \param f the i-th term, `Acc f(std::int64_t i)`
/// \return the sum
template <class Acc = float, class F>
inline Acc lane_sum(std::int64_t n, F&& f) {
    Acc acc[kSumLanes] = {};
    std::int64_t i = 0;
    for (; i + kSumLanes <= n; i += kSumLanes)
        for (std::int64_t l = 0; l < kSumLanes; ++l) acc[l] += f(i + l);
    for (std::int64_t l = 0; i + l < n; ++l) acc[l] += f(i + l);
    fold_lanes<kSumLanes / 2>(acc, [](Acc a, Acc b) { return a + b; });
    return acc[0];
}

/// \brief \f$ \max_{i<n} f(i) \f$ (−∞ when n = 0), in 16 running maxima like lane_sum().
///
/// A maximum is exact, so any order gives the same answer; the lanes are there for speed. A
/// single running `m = std::max(m, x[i])` is one chain of dependent compares — 4 cycles an
/// element — which GCC will not split by itself (std::max's NaN rule makes the order visible);
/// 16 independent maxima become one AVX-512 or two AVX2 instructions per 16 elements.
/// \param n number of terms
/// \param f the i-th term, `float f(std::int64_t i)`
/// \return the largest term
template <class F>
inline float lane_max(std::int64_t n, F&& f) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    float acc[kSumLanes];
    std::fill(acc, acc + kSumLanes, kNegInf);
    std::int64_t i = 0;
    for (; i + kSumLanes <= n; i += kSumLanes)
        for (std::int64_t l = 0; l < kSumLanes; ++l) acc[l] = std::max(acc[l], f(i + l));
    for (std::int64_t l = 0; i + l < n; ++l) acc[l] = std::max(acc[l], f(i + l));
    fold_lanes<kSumLanes / 2>(acc, [](float a, float b) { return std::max(a, b); });
    return acc[0];
}

/// \brief One softmax "fibre", the readable reference: n values of \p x spaced \p stride apart,
/// written to \p y as probabilities (or, with \p log_space, log-probabilities).
///
/// Where \p blocked is non-null, entries with blocked[k] ≠ 0 (indexed 0..n-1) take no part, as if
/// they were −∞: probability 0. When every entry is −∞ or blocked (a fully masked attention row)
/// there is no distribution to form; we return probability 0 everywhere (log-probability −∞)
/// instead of 0/0 = NaN, so the row contributes nothing downstream and its gradient is 0.
template <class T>
void softmax_fibre(const T* x, T* y, std::int64_t n, std::int64_t stride, bool log_space,
                   const std::uint8_t* blocked = nullptr) {
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    auto value = [&](std::int64_t k) { return blocked && blocked[k] ? kNegInf : x[k * stride]; };
    T m = kNegInf;
    for (std::int64_t k = 0; k < n; ++k) m = std::max(m, value(k));
    if (m == kNegInf) {
        for (std::int64_t k = 0; k < n; ++k) y[k * stride] = log_space ? kNegInf : T(0);
        return;
    }
    T s = 0;
    for (std::int64_t k = 0; k < n; ++k) s += std::exp(value(k) - m);
    if (log_space) {
        const T lse = m + std::log(s);
        for (std::int64_t k = 0; k < n; ++k) y[k * stride] = value(k) - lse;
    } else {
        const T inv = T(1) / s;
        for (std::int64_t k = 0; k < n; ++k) y[k * stride] = std::exp(value(k) - m) * inv;
    }
}

/// \brief Softmax of one row of \p n floats in place: \f$ x_j \leftarrow e^{x_j - m} / \sum_k e^{x_k - m} \f$,
/// m the row maximum. Where \p blocked is non-null, entries with blocked[j] ≠ 0 take no part and
/// become 0; a row with nothing left becomes all zeros (no 0/0). The fast f32 twin of
/// softmax_fibre() with stride 1, for attention's score rows.
void softmax_row_f32(float* x, std::int64_t n, const std::uint8_t* blocked);

/// \brief softmax_row_f32() (without a mask) on \p rows rows of \p n floats, \p ld apart, with
/// the same bits: several rows at a time, so that short rows keep the core busy.
void softmax_rows_f32(float* x, std::int64_t rows, std::int64_t n, std::int64_t ld);

/// \brief Softmax backward of one row: \f$ dx_j = y_j\,(dy_j - \sum_k dy_k y_k) \f$, written into
/// \p dx (which may be \p dy itself) or added to it when \p accumulate.
void softmax_row_backward_f32(const float* y, const float* dy, float* dx, std::int64_t n, bool accumulate);

}  // namespace qkv::detail
