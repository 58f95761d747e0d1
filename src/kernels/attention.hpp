/// \file
/// \brief Tiled attention with online softmax (FlashAttention's algorithm), forward and backward,
/// for one (batch, head) slice at a time.
///
/// Not installed and not part of the API: ops/attention.cpp chooses between this kernel and the
/// readable, materialising one there. A reader learns here how attention can run without ever
/// holding the T_q × T_k matrix of scores. With queries Q (T_q, D), keys K (T_k, D), values
/// V (T_k, D_v) and s the scale:
/// \f[ S = s\,QK^\top, \qquad P = \mathrm{softmax}_\text{rows}(S + M), \qquad O = PV. \f]
///
/// **Forward: online softmax.** A row of P needs the row's maximum and sum over *all* keys before
/// any entry is known. But a running maximum m and a running sum ℓ can be corrected as new keys
/// arrive: for the next block of keys with scores S_b,
/// \f[ m' = \max(m, \max S_b), \quad \ell' = e^{m - m'}\ell + \textstyle\sum e^{S_b - m'}, \quad
///     O' = e^{m - m'}\,O + e^{S_b - m'}\,V_b. \f]
/// After the last block, \f$ O/\ell \f$ is exactly softmax(S)·V: every term was multiplied by
/// \f$ e^{-m_\text{final}} \f$ in the end, whatever order the blocks came in. So the queries are
/// processed in blocks of kQueryBlock rows, the keys in blocks of kKeyBlock, and only a
/// kQueryBlock × kKeyBlock tile of scores exists at a time. What the backward needs of P is
/// kept as one number per row: \f$ \mathrm{lse} = m + \log\ell \f$, the log of the row's softmax
/// denominator, because \f$ P_{ij} = e^{S_{ij} - \mathrm{lse}_i} \f$.
///
/// **Backward: recompute, don't store.** With \f$ \Delta_i = \sum_k dO_{ik} O_{ik} \f$ (which equals
/// \f$ \sum_j dP_{ij} P_{ij} \f$, the softmax backward's row sum, because O = PV), every block of
/// the materialising backward can be rebuilt from Q, K, V, lse and dO alone:
/// \f[ P_b = e^{S_b - \mathrm{lse}}, \quad dV_b \mathrel{+}= P_b^\top dO, \quad dP_b = dO\,V_b^\top,
///     \quad dS_b = P_b \odot (dP_b - \Delta), \quad dQ \mathrel{+}= s\,dS_b K_b, \quad
///     dK_b \mathrel{+}= s\,dS_b^\top Q. \f]
/// It costs one more product per block (S is computed again) and saves the T_q × T_k memory: memory
/// grows with T, not T².
///
/// Masks: the causal rule (query i sees keys j ≤ i + T_k − T_q) and a boolean mask given as a view
/// with strides, so a (B, 1, 1, T_k) padding mask is read in place, never expanded to T_q × T_k.
/// A query that sees no key at all gets O = 0 and lse = −∞, and passes no gradient — as in the
/// materialising kernel.
#pragma once

#include <cstdint>

namespace qkv::kernels {

/// Query rows per block (the tile of scores is kQueryBlock × kKeyBlock).
constexpr std::int64_t kQueryBlock = 64;
/// Keys per block.
constexpr std::int64_t kKeyBlock = 64;

/// \brief A boolean mask over one slice's (T_q, T_k) pairs, read in place: pair (i, j) is blocked
/// when `data[i·row_stride + j·col_stride]` ≠ 0. A stride of 0 repeats one row or column (a padding
/// mask broadcast over the queries). No mask when data is null.
struct MaskView {
    const std::uint8_t* data = nullptr;  ///< element (0, 0), or null for no mask
    std::int64_t row_stride = 0;         ///< elements from query i to i + 1
    std::int64_t col_stride = 0;         ///< elements from key j to j + 1
};

/// \brief The sizes and settings of one attention slice.
struct AttentionDims {
    std::int64_t Tq;     ///< queries
    std::int64_t Tk;     ///< keys (and values)
    std::int64_t D;      ///< query/key size
    std::int64_t Dv;     ///< value size
    double scale;        ///< score scale s (1/√D by default, chosen by the op)
    bool causal;         ///< block keys after the query (aligned to the end of the keys)
    /// The forward computes query rows [row_begin, row_end) only (row_end < 0: up to T_q), so that
    /// threads can share one slice's query blocks; the causal rule still counts rows from 0.
    std::int64_t row_begin = 0;
    std::int64_t row_end = -1;  ///< see row_begin
};

///@{
/// \brief Forward of one slice: O = softmax(s·QKᵀ + M)·V, and lse per query row (−∞ for a row
/// that sees no key). Row i of an operand X starts at `x + i·ldx`.
/// \param d sizes and settings \param q queries (T_q, D) \param ldq row stride of q
/// \param k keys (T_k, D) \param ldk row stride of k \param v values (T_k, D_v) \param ldv row stride of v
/// \param mask optional boolean mask \param o output (T_q, D_v), written \param ldo row stride of o
/// \param lse log-sum-exp per query row (T_q), written
void attention_tiled_forward(const AttentionDims& d, const float* q, std::int64_t ldq, const float* k, std::int64_t ldk,
                             const float* v, std::int64_t ldv, const MaskView& mask, float* o, std::int64_t ldo,
                             float* lse);
void attention_tiled_forward(const AttentionDims& d, const double* q, std::int64_t ldq, const double* k,
                             std::int64_t ldk, const double* v, std::int64_t ldv, const MaskView& mask, double* o,
                             std::int64_t ldo, double* lse);
///@}

///@{
/// \brief Backward of one slice (all its query rows), from the forward's O and lse and the output
/// gradient dO (laid out as O): the gradients are *added* into dq, dk, dv, which are laid out as q,
/// k, v (same row strides); each may be null (not needed).
/// \param d sizes and settings \param q queries \param ldq row stride \param k keys \param ldk row stride
/// \param v values \param ldv row stride \param mask optional boolean mask \param o the forward's output
/// \param ldo row stride of o and do_ \param lse the forward's log-sum-exp per row \param do_ dL/dO
/// \param dq dL/dQ, added (or null) \param dk dL/dK, added (or null) \param dv dL/dV, added (or null)
void attention_tiled_backward(const AttentionDims& d, const float* q, std::int64_t ldq, const float* k,
                              std::int64_t ldk, const float* v, std::int64_t ldv, const MaskView& mask,
                              const float* o, std::int64_t ldo, const float* lse, const float* do_, float* dq,
                              float* dk, float* dv);
void attention_tiled_backward(const AttentionDims& d, const double* q, std::int64_t ldq, const double* k,
                              std::int64_t ldk, const double* v, std::int64_t ldv, const MaskView& mask,
                              const double* o, std::int64_t ldo, const double* lse, const double* do_, double* dq,
                              double* dk, double* dv);
///@}

}  // namespace qkv::kernels
