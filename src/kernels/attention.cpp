/// \file
/// \brief Tiled attention with online softmax, forward and backward (see attention.hpp for the math).
///
/// Each block of work is two or three small matrix products (kernels::gemm: 64-row tiles run on its
/// direct path, at close to full speed) around a few row-wise loops on a kQueryBlock × kKeyBlock
/// tile. Those row loops are written once as templates: in double with std::exp and sums left to
/// right (the exact reference, for gradient checks), in float with exp_f32 and lane_sum's fixed
/// order, compiled once per CPU level (QKV_CLONES) with the same bits on each.
#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/vec.hpp"
#include "qkv/kernels/gemm.hpp"

namespace qkv::kernels {
using detail::exp_f32_or_zero;
using detail::row_max;
using detail::row_sum;

namespace {

using i64 = std::int64_t;

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

template <class T>
constexpr bool kLanes = std::is_same_v<T, float>;

template <class T>
[[gnu::always_inline]] inline T exp_of(T v) {
    if constexpr (kLanes<T>) return exp_f32_or_zero(v);  // e^−∞ = 0 exactly
    else return std::exp(v);
}

// The keys a query row may see: 0 … limit − 1, with limit = i + T_k − T_q + 1 under the causal
// rule (the queries are the last T_q positions of the keys), clamped to [0, T_k].
i64 visible_keys(const AttentionDims& d, i64 i) {
    return d.causal ? std::clamp<i64>(i + d.Tk - d.Tq + 1, 0, d.Tk) : d.Tk;
}

// S[r][c] ← −∞ where query i0 + r may not see key j0 + c (causal rule or mask); rows are `ld` apart.
template <class T>
void mask_tile(const AttentionDims& d, const MaskView& mask, i64 i0, i64 rows, i64 j0, i64 cols, T* S, i64 ld) {
    for (i64 r = 0; r < rows; ++r) {
        T* row = S + r * ld;
        const i64 limit = visible_keys(d, i0 + r) - j0;  // columns ≥ limit are in the future
        for (i64 c = std::max<i64>(limit, 0); c < cols; ++c) row[c] = kNegInf<T>;
        if (mask.data) {
            const std::uint8_t* m = mask.data + (i0 + r) * mask.row_stride + j0 * mask.col_stride;
            for (i64 c = 0; c < cols; ++c)
                if (m[c * mask.col_stride]) row[c] = kNegInf<T>;
        }
    }
}

// ---- the row loops (one template; float is compiled per CPU level) -------------------------------

// Online softmax over one tile: for each row r, with the running maximum m[r] and sum l[r],
//   m' = max(m, max_c S[r][c])      alpha[r] = e^(m − m')      P[r][c] = e^(S[r][c] − m')
//   l  ← alpha·l + Σ_c P[r][c]      m ← m'
// P overwrites S. A row that has seen only blocked keys so far (m' = −∞) keeps P = 0, alpha = 1.
template <class T>
[[gnu::always_inline]] inline void online_softmax_rows(T* S, i64 rows, i64 cols, i64 ld, T* m, T* l, T* alpha) {
    for (i64 r = 0; r < rows; ++r) {
        T* row = S + r * ld;
        const T m_new = std::max(m[r], row_max<kLanes<T>, T>(cols, [row](i64 c) { return row[c]; }));
        if (m_new == kNegInf<T>) {
            for (i64 c = 0; c < cols; ++c) row[c] = T(0);
            alpha[r] = T(1);
            continue;
        }
        alpha[r] = exp_of(m[r] - m_new);  // e^−∞ = 0 on the first block that sees a key
        const T sum = row_sum<kLanes<T>, T>(cols, [row, m_new](i64 c) { return row[c] = exp_of(row[c] - m_new); });
        l[r] = alpha[r] * l[r] + sum;
        m[r] = m_new;
    }
}

// o[r][:] *= alpha[r] (the correction of everything accumulated before the new maximum).
template <class T>
[[gnu::always_inline]] inline void rescale_rows(T* o, i64 ldo, i64 rows, i64 Dv, const T* alpha) {
    for (i64 r = 0; r < rows; ++r) {
        if (alpha[r] == T(1)) continue;
        T* row = o + r * ldo;
        for (i64 c = 0; c < Dv; ++c) row[c] *= alpha[r];
    }
}

// After the last block: O = O/l and lse = m + log l; a row that saw no key gets O = 0, lse = −∞.
template <class T>
[[gnu::always_inline]] inline void finish_rows(T* o, i64 ldo, i64 rows, i64 Dv, const T* m, const T* l, T* lse) {
    for (i64 r = 0; r < rows; ++r) {
        T* row = o + r * ldo;
        if (m[r] == kNegInf<T>) {
            for (i64 c = 0; c < Dv; ++c) row[c] = T(0);
            lse[r] = kNegInf<T>;
            continue;
        }
        const T inv = T(1) / l[r];
        for (i64 c = 0; c < Dv; ++c) row[c] *= inv;
        lse[r] = m[r] + std::log(l[r]);
    }
}

// Backward, per tile: P = e^(S − lse) (P overwrites S; rows with lse = −∞ are 0), then, once dP
// is known, dS = P ⊙ (dP − Δ) (dS overwrites dP).
template <class T>
[[gnu::always_inline]] inline void probabilities_from_lse(T* S, i64 rows, i64 cols, i64 ld, const T* lse) {
    for (i64 r = 0; r < rows; ++r) {
        T* row = S + r * ld;
        const T shift = lse[r];
        if (shift == kNegInf<T>) {
            for (i64 c = 0; c < cols; ++c) row[c] = T(0);
            continue;
        }
        for (i64 c = 0; c < cols; ++c) row[c] = exp_of(row[c] - shift);
    }
}

template <class T>
[[gnu::always_inline]] inline void score_gradients(const T* P, T* dP, i64 rows, i64 cols, i64 ld, const T* delta) {
    for (i64 r = 0; r < rows; ++r) {
        const T* p = P + r * ld;
        T* g = dP + r * ld;
        for (i64 c = 0; c < cols; ++c) g[c] = p[c] * (g[c] - delta[r]);
    }
}

// Δ_r = Σ_c dO[r][c]·O[r][c], the softmax backward's row sum Σ_j dP_rj·P_rj in another form.
template <class T>
[[gnu::always_inline]] inline void output_dots(const T* o, const T* do_, i64 ld, i64 rows, i64 Dv, T* delta) {
    for (i64 r = 0; r < rows; ++r) {
        const T* a = o + r * ld;
        const T* b = do_ + r * ld;
        delta[r] = row_sum<kLanes<T>, T>(Dv, [a, b](i64 c) { return b[c] * a[c]; });
    }
}

// The float row loops, compiled per CPU level (the double ones are the templates above, called
// directly). Thin wrappers: each inlines its template.
QKV_CLONES void online_softmax_rows_f32(float* S, i64 rows, i64 cols, i64 ld, float* m, float* l, float* alpha) {
    online_softmax_rows(S, rows, cols, ld, m, l, alpha);
}
QKV_CLONES void probabilities_from_lse_f32(float* S, i64 rows, i64 cols, i64 ld, const float* lse) {
    probabilities_from_lse(S, rows, cols, ld, lse);
}
QKV_CLONES void score_gradients_f32(const float* P, float* dP, i64 rows, i64 cols, i64 ld, const float* delta) {
    score_gradients(P, dP, rows, cols, ld, delta);
}
QKV_CLONES void output_dots_f32(const float* o, const float* do_, i64 ld, i64 rows, i64 Dv, float* delta) {
    output_dots(o, do_, ld, rows, Dv, delta);
}

template <class T>
void online_softmax(T* S, i64 rows, i64 cols, i64 ld, T* m, T* l, T* alpha) {
    if constexpr (kLanes<T>) online_softmax_rows_f32(S, rows, cols, ld, m, l, alpha);
    else online_softmax_rows(S, rows, cols, ld, m, l, alpha);
}
template <class T>
void probabilities(T* S, i64 rows, i64 cols, i64 ld, const T* lse) {
    if constexpr (kLanes<T>) probabilities_from_lse_f32(S, rows, cols, ld, lse);
    else probabilities_from_lse(S, rows, cols, ld, lse);
}
template <class T>
void dscores(const T* P, T* dP, i64 rows, i64 cols, i64 ld, const T* delta) {
    if constexpr (kLanes<T>) score_gradients_f32(P, dP, rows, cols, ld, delta);
    else score_gradients(P, dP, rows, cols, ld, delta);
}
template <class T>
void deltas(const T* o, const T* do_, i64 ld, i64 rows, i64 Dv, T* delta) {
    if constexpr (kLanes<T>) output_dots_f32(o, do_, ld, rows, Dv, delta);
    else output_dots(o, do_, ld, rows, Dv, delta);
}

// ---- forward ------------------------------------------------------------------------------------

template <class T>
void forward(const AttentionDims& d, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv,
             const MaskView& mask, T* o, i64 ldo, T* lse) {
    const T scale = T(d.scale);
    const i64 row_end = d.row_end < 0 ? d.Tq : d.row_end;
    // One tile of scores and the per-row state of one query block: all the scratch there is.
    std::vector<T> S(std::size_t(kQueryBlock * kKeyBlock));
    T m[kQueryBlock], l[kQueryBlock], alpha[kQueryBlock];
    for (i64 i0 = d.row_begin; i0 < row_end; i0 += kQueryBlock) {
        const i64 rows = std::min(kQueryBlock, row_end - i0);
        T* ob = o + i0 * ldo;
        for (i64 r = 0; r < rows; ++r) {
            std::fill(ob + r * ldo, ob + r * ldo + d.Dv, T(0));
            m[r] = kNegInf<T>;
            l[r] = T(0);
        }
        const i64 keys = visible_keys(d, i0 + rows - 1);  // the block's last row sees the most
        for (i64 j0 = 0; j0 < keys; j0 += kKeyBlock) {
            const i64 cols = std::min(kKeyBlock, keys - j0);
            //   S = s·Q_b·K_jᵀ
            gemm(false, true, rows, cols, d.D, scale, q + i0 * ldq, ldq, k + j0 * ldk, ldk, T(0), S.data(), kKeyBlock);
            // Only tiles that reach past the block's first row's keys, or a mask, need masking.
            if (mask.data || j0 + cols > visible_keys(d, i0)) mask_tile(d, mask, i0, rows, j0, cols, S.data(), kKeyBlock);
            online_softmax(S.data(), rows, cols, kKeyBlock, m, l, alpha);
            rescale_rows(ob, ldo, rows, d.Dv, alpha);
            //   O_b += P·V_j
            gemm(false, false, rows, d.Dv, cols, T(1), S.data(), kKeyBlock, v + j0 * ldv, ldv, T(1), ob, ldo);
        }
        finish_rows(ob, ldo, rows, d.Dv, m, l, lse + i0);
    }
}

// ---- backward -----------------------------------------------------------------------------------

template <class T>
void backward(const AttentionDims& d, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv,
              const MaskView& mask, const T* o, i64 ldo, const T* lse, const T* do_, T* dq, T* dk, T* dv) {
    const T scale = T(d.scale);
    std::vector<T> P(std::size_t(kQueryBlock * kKeyBlock)), dP(std::size_t(kQueryBlock * kKeyBlock));
    T delta[kQueryBlock];
    for (i64 i0 = 0; i0 < d.Tq; i0 += kQueryBlock) {
        const i64 rows = std::min(kQueryBlock, d.Tq - i0);
        const T* dob = do_ + i0 * ldo;
        deltas(o + i0 * ldo, dob, ldo, rows, d.Dv, delta);
        const i64 keys = visible_keys(d, i0 + rows - 1);
        for (i64 j0 = 0; j0 < keys; j0 += kKeyBlock) {
            const i64 cols = std::min(kKeyBlock, keys - j0);
            //   P = e^(s·Q_b·K_jᵀ − lse)     (recomputed: the forward kept only lse)
            gemm(false, true, rows, cols, d.D, scale, q + i0 * ldq, ldq, k + j0 * ldk, ldk, T(0), P.data(), kKeyBlock);
            if (mask.data || j0 + cols > visible_keys(d, i0)) mask_tile(d, mask, i0, rows, j0, cols, P.data(), kKeyBlock);
            probabilities(P.data(), rows, cols, kKeyBlock, lse + i0);
            //   dV_j += Pᵀ·dO_b
            if (dv) gemm(true, false, cols, d.Dv, rows, T(1), P.data(), kKeyBlock, dob, ldo, T(1), dv + j0 * ldv, ldv);
            if (!dq && !dk) continue;
            //   dP = dO_b·V_jᵀ      dS = P ⊙ (dP − Δ)
            gemm(false, true, rows, cols, d.Dv, T(1), dob, ldo, v + j0 * ldv, ldv, T(0), dP.data(), kKeyBlock);
            dscores(P.data(), dP.data(), rows, cols, kKeyBlock, delta);
            //   dQ_b += s·dS·K_j      dK_j += s·dSᵀ·Q_b
            if (dq) gemm(false, false, rows, d.D, cols, scale, dP.data(), kKeyBlock, k + j0 * ldk, ldk, T(1), dq + i0 * ldq, ldq);
            if (dk) gemm(true, false, cols, d.D, rows, scale, dP.data(), kKeyBlock, q + i0 * ldq, ldq, T(1), dk + j0 * ldk, ldk);
        }
    }
}

}  // namespace

void attention_tiled_forward(const AttentionDims& d, const float* q, std::int64_t ldq, const float* k, std::int64_t ldk,
                             const float* v, std::int64_t ldv, const MaskView& mask, float* o, std::int64_t ldo,
                             float* lse) {
    forward(d, q, ldq, k, ldk, v, ldv, mask, o, ldo, lse);
}
void attention_tiled_forward(const AttentionDims& d, const double* q, std::int64_t ldq, const double* k,
                             std::int64_t ldk, const double* v, std::int64_t ldv, const MaskView& mask, double* o,
                             std::int64_t ldo, double* lse) {
    forward(d, q, ldq, k, ldk, v, ldv, mask, o, ldo, lse);
}

void attention_tiled_backward(const AttentionDims& d, const float* q, std::int64_t ldq, const float* k,
                              std::int64_t ldk, const float* v, std::int64_t ldv, const MaskView& mask,
                              const float* o, std::int64_t ldo, const float* lse, const float* do_, float* dq,
                              float* dk, float* dv) {
    backward(d, q, ldq, k, ldk, v, ldv, mask, o, ldo, lse, do_, dq, dk, dv);
}
void attention_tiled_backward(const AttentionDims& d, const double* q, std::int64_t ldq, const double* k,
                              std::int64_t ldk, const double* v, std::int64_t ldv, const MaskView& mask,
                              const double* o, std::int64_t ldo, const double* lse, const double* do_, double* dq,
                              double* dk, double* dv) {
    backward(d, q, ldq, k, ldk, v, ldv, mask, o, ldo, lse, do_, dq, dk, dv);
}

}  // namespace qkv::kernels
