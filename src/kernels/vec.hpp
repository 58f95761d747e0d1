/// \file
/// \brief Private building blocks for fast f32 loops: CPU-specific clones, exp without a call, fixed-order sums.
///
/// Not installed and not part of the API. A reader learns here how the elementwise and row-wise
/// kernels (GELU, layer norm, softmax, Adam) run at AVX2 or AVX-512 speed inside a library that is
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

/// \brief \f$ \sum_{k<n} f(k) \f$ in one of the two orders qkv uses: left to right (\p kLanes false:
/// the reference loops, and everything in f64) or lane_sum()'s 16 partial sums (\p kLanes true: the
/// fast f32 rows). One template, so a kernel written once can be compiled both ways.
template <bool kLanes, class T, class F>
[[gnu::always_inline]] inline T row_sum(std::int64_t n, F&& f) {
    if constexpr (kLanes) {
        return lane_sum<T>(n, f);
    } else {
        T s = 0;
        for (std::int64_t k = 0; k < n; ++k) s += f(k);
        return s;
    }
}

/// \brief \f$ \max_{k<n} f(k) \f$ (−∞ when n = 0), in the order row_sum() would use: a maximum is
/// exact, so both orders give the same answer; the lanes are there for speed.
template <bool kLanes, class T, class F>
[[gnu::always_inline]] inline T row_max(std::int64_t n, F&& f) {
    if constexpr (kLanes) {
        return lane_max(n, f);
    } else {
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < n; ++k) m = std::max(m, f(k));
        return m;
    }
}

}  // namespace qkv::detail
