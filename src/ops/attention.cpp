/// \file
/// \brief Scaled dot-product attention as one fused op, with its backward derived by hand.
///
/// For one (batch, head) slice with queries Q (T_q, D), keys K (T_k, D) and values V (T_k, D_v):
/// \f[ S = \mathrm{scale}\cdot QK^\top, \qquad P = \mathrm{softmax}_\text{rows}(S + M), \qquad O = PV, \f]
/// where M is −∞ at blocked (masked) pairs and 0 elsewhere. Going backward from dO:
/// \f[ dV = P^\top dO, \qquad dP = dO\,V^\top, \qquad
///     dS_{ij} = P_{ij}\Big(dP_{ij} - \sum_k dP_{ik}P_{ik}\Big), \qquad
///     dQ = \mathrm{scale}\cdot dS\,K, \qquad dK = \mathrm{scale}\cdot dS^\top Q. \f]
/// The dS line is the softmax backward of kernels/softmax.cpp applied to every row; blocked pairs have
/// \f$ P_{ij} = 0 \f$ and so receive no gradient. Everything except the row-wise softmax is a
/// matrix product, so a slice costs six GEMM calls: two forward (S and O) and four backward (dV,
/// dP, dQ and dK), six per block of query rows under the causal rule. The only tensor kept from
/// the forward is P (T_q × T_k per slice), which is also what a learner wants to look at.
///
/// The same kernel serves two layouts by addressing each slice through a base offset and a leading
/// dimension: (…, T, D) tensors (one slice per leading index) and (B, T, H·D) tensors where the H
/// heads sit side by side in the channels (no transposes needed around multi-head attention).
///
/// That kernel *materialises* P: T_q × T_k numbers per slice, which at T = 4096 are 64 MiB per head.
/// For long sequences the op can instead run the tiled kernel of kernels/attention.cpp
/// (FlashAttention's online softmax), which keeps only a log-sum-exp per query row and recomputes
/// the scores block by block in the backward: memory grows with T, not T². Both compute the same
/// function; AttentionOptions::kernel chooses (automatic: tiled for long keys when no weights are
/// asked for). The materialising kernel below stays the readable reference the tiled one is tested
/// against.
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/attention.hpp"
#include "kernels/softmax.hpp"
#include "kernels/vec.hpp"
#include "ops/op_detail.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

namespace {

// Where slice n = b·H + h of each operand starts: base + b·batch_stride + h·head_stride, with rows
// `ld` apart. (base is non-zero when Q, K and V are parts of one packed tensor.)
struct Operand {
    std::int64_t batch_stride, head_stride, ld, base = 0;
    std::int64_t offset(std::int64_t n, std::int64_t H) const {
        return base + (n / H) * batch_stride + (n % H) * head_stride;
    }
};

struct Layout {
    std::int64_t N, H, Tq, Tk, D, Dv;
    Operand q, k, v, o;
};

// The user's boolean mask broadcast to (N, T_q, T_k) bytes (1 = blocked); empty without one.
// The causal rule needs no bytes: a causal row i simply ends after key i + T_k − T_q (see
// causal_keys), and both rules together block a pair when either does.
std::vector<std::uint8_t> build_mask(const char* op, const AttentionOptions& opt, const Shape& full, const Layout& L) {
    std::vector<std::uint8_t> m;
    if (!opt.mask.defined()) return m;
    if (opt.mask.dtype() != DType::b8)
        fail("{}: mask must be a b8 tensor (true = blocked), got {} {}", op, dtype_name(opt.mask.dtype()),
             shape_str(opt.mask.shape()));
    const Shape b = broadcast_shapes(op, {&full, &opt.mask.shape()});
    if (b != full)
        fail("{}: mask {} does not broadcast to the scores' shape {}", op, shape_str(opt.mask.shape()), shape_str(full));
    m.assign(std::size_t(L.N * L.Tq * L.Tk), 0);
    const BroadcastPlan<2> plan(full, {&full, &opt.mask.shape()});
    const std::uint8_t* pm = opt.mask.data<std::uint8_t>();
    plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
        for (std::int64_t i = 0; i < n; ++i) m[std::size_t(off[0] + i)] = pm[off[1] + i * st[1]] ? 1 : 0;
    });
    return m;
}

// Keys query row i may see under the causal rule: 0 … i + T_k − T_q (the last T_q keys are the
// queries' own positions), clamped to [0, T_k].
std::int64_t causal_keys(std::int64_t i, std::int64_t Tq, std::int64_t Tk, bool causal) {
    if (!causal) return Tk;
    return std::clamp<std::int64_t>(i + Tk - Tq + 1, 0, Tk);
}

// Row softmax of S in place, −∞ at blocked pairs; an all-blocked row becomes zeros. Under the
// causal rule only the first causal_keys() entries of a row take part; the rest become 0.
// Row i of the block sees keys 0 … i + first (first = the block's first row + T_k − T_q).
template <class T>
void masked_softmax_rows(T* S, const std::uint8_t* mask, bool causal, std::int64_t rows, std::int64_t Tk,
                         std::int64_t first) {
    auto keys_of = [&](std::int64_t i) { return causal ? std::clamp<std::int64_t>(i + first + 1, 0, Tk) : Tk; };
    if constexpr (std::is_same_v<T, float>) {
        // A causal row is rarely a whole number of 16-lane steps, and the leftover entries would
        // go one by one through lane_sum's and lane_max's partial sums (in memory). Those entries
        // are about to be zeroed anyway, so every row of the block is padded with −∞ to the same
        // width — the last (longest) row's keys rounded up to a multiple of kSumLanes, within the
        // row: e^−∞ = 0 adds nothing to a sum and −∞ nothing to a max, so each row's result is the
        // same to the bit as over its own keys, and rows of one width can go several at a time.
        const std::int64_t last = rows > 0 ? keys_of(rows - 1) : 0;
        const std::int64_t width = std::min(Tk, (last + kSumLanes - 1) / kSumLanes * kSumLanes);
        for (std::int64_t i = 0; i < rows; ++i)
            std::fill(S + i * Tk + keys_of(i), S + i * Tk + width, -std::numeric_limits<float>::infinity());
        if (mask)
            for (std::int64_t i = 0; i < rows; ++i) kernels::softmax_row_f32(S + i * Tk, width, mask + i * Tk);
        else
            kernels::softmax_rows_f32(S, rows, width, Tk);
    } else {
        for (std::int64_t i = 0; i < rows; ++i)
            kernels::softmax_fibre(S + i * Tk, S + i * Tk, keys_of(i), 1, false, mask ? mask + i * Tk : nullptr);
    }
    for (std::int64_t i = 0; i < rows; ++i) std::fill(S + i * Tk + keys_of(i), S + (i + 1) * Tk, T(0));
}

// dS = P ⊙ (dP − rowsum(dP ⊙ P)), row by row, in place over dP (the softmax backward of
// kernels/softmax.cpp); only the first `keys` columns (rows `ld` apart) — P is 0 beyond them.
template <class T>
void softmax_rows_backward(const T* P, T* dS, std::int64_t rows, std::int64_t keys, std::int64_t ld) {
    for (std::int64_t i = 0; i < rows; ++i) {
        if constexpr (std::is_same_v<T, float>)
            kernels::softmax_row_backward_f32(P + i * ld, dS + i * ld, dS + i * ld, keys, /*accumulate=*/false);
        else
            kernels::softmax_fibre_backward(P + i * ld, dS + i * ld, dS + i * ld, keys, 1, /*log_space=*/false,
                                            /*accumulate=*/false);
    }
}

// Under the causal rule, query rows run in blocks of this many: block [i0, i1) needs only the first
// causal_keys(i1 − 1) keys, so the products skip the blocked upper triangle block by block (for
// T = 64, 59% of the full work instead of 100%). Without it, one block holds every row.
constexpr std::int64_t kCausalRows = 16;

// The row blocks of a slice and how many keys each needs: f(i0, rows, keys).
template <class F>
void for_each_row_block(const Layout& L, bool causal, F&& f) {
    const std::int64_t step = causal ? kCausalRows : L.Tq;
    for (std::int64_t i0 = 0; i0 < L.Tq; i0 += step) {
        const std::int64_t rows = std::min(step, L.Tq - i0);
        const std::int64_t keys = causal_keys(i0 + rows - 1, L.Tq, L.Tk, causal);
        f(i0, rows, keys);
    }
}

// Forward of slice n:  S = scale·Q·Kᵀ,  P = softmax(S + M),  O = P·V   (row block by row block)
template <class T>
void forward_slice(const Layout& L, std::int64_t n, T scale, const T* q, const T* k, const T* v, T* o, T* P,
                   const std::uint8_t* mask, bool causal) {
    T* Pn = P + n * L.Tq * L.Tk;
    const T* qn = q + L.q.offset(n, L.H);
    const T* kn = k + L.k.offset(n, L.H);
    const T* vn = v + L.v.offset(n, L.H);
    T* on = o + L.o.offset(n, L.H);
    const std::uint8_t* mn = mask ? mask + n * L.Tq * L.Tk : nullptr;
    for_each_row_block(L, causal, [&](std::int64_t i0, std::int64_t rows, std::int64_t keys) {
        T* Pb = Pn + i0 * L.Tk;
        if (keys > 0) gemm(false, true, rows, keys, L.D, scale, qn + i0 * L.q.ld, L.q.ld, kn, L.k.ld, T(0), Pb, L.Tk);
        // Rows start at their own causal_keys ≤ keys; entries from keys on are zeroed here.
        masked_softmax_rows(Pb, mn ? mn + i0 * L.Tk : nullptr, causal, rows, L.Tk, i0 + L.Tk - L.Tq);
        gemm(false, false, rows, L.Dv, keys, T(1), Pb, L.Tk, vn, L.v.ld, T(0), on + i0 * L.o.ld, L.o.ld);
    });
}

// Backward of slice n (gradients added into dq, dk, dv; dS is a T_q×T_k scratch buffer), per row block:
//   dV += Pᵀ·dO      dP = dO·Vᵀ      dS = P ⊙ (dP − rowsum(dP ⊙ P))      dQ += scale·dS·K      dK += scale·dSᵀ·Q
// Keys past a block's `keys` have P = 0 there, so they receive nothing from that block.
template <class T>
void backward_slice(const Layout& L, std::int64_t n, T scale, bool causal, const T* q, const T* k, const T* v,
                    const T* P, const T* dO, T* dq, T* dk, T* dv, T* dS) {
    const T* Pn = P + n * L.Tq * L.Tk;
    const T* dOn = dO + L.o.offset(n, L.H);
    const T* qn = q + L.q.offset(n, L.H);
    const T* kn = k + L.k.offset(n, L.H);
    const T* vn = v + L.v.offset(n, L.H);
    for_each_row_block(L, causal, [&](std::int64_t i0, std::int64_t rows, std::int64_t keys) {
        if (keys == 0) return;  // rows that see no key have P = 0 and pass no gradient
        const T* Pb = Pn + i0 * L.Tk;
        const T* dOb = dOn + i0 * L.o.ld;
        if (dv) gemm(true, false, keys, L.Dv, rows, T(1), Pb, L.Tk, dOb, L.o.ld, T(1), dv + L.v.offset(n, L.H), L.v.ld);
        if (!dq && !dk) return;
        T* dSb = dS + i0 * L.Tk;
        gemm(false, true, rows, keys, L.Dv, T(1), dOb, L.o.ld, vn, L.v.ld, T(0), dSb, L.Tk);
        softmax_rows_backward(Pb, dSb, rows, keys, L.Tk);
        if (dq)
            gemm(false, false, rows, L.D, keys, scale, dSb, L.Tk, kn, L.k.ld, T(1), dq + L.q.offset(n, L.H) + i0 * L.q.ld,
                 L.q.ld);
        if (dk) gemm(true, false, keys, L.D, rows, scale, dSb, L.Tk, qn + i0 * L.q.ld, L.q.ld, T(1), dk + L.k.offset(n, L.H), L.k.ld);
    });
}

// Where the backward writes dq, dk and dv (nullptr for an input that needs no gradient). Packed:
// one gradient buffer holds all three, at the same offsets as q, k and v in the packed input.
template <class T>
std::array<T*, 3> grad_pointers(BackwardContext& ctx, bool packed) {
    Tensor* dq = ctx.grad(0);
    Tensor* dk = packed ? dq : ctx.grad(1);
    Tensor* dv = packed ? dq : ctx.grad(2);
    auto ptr = [](Tensor* g) { return g ? g->data<T>() : nullptr; };
    return {ptr(dq), ptr(dk), ptr(dv)};
}

// Slices are independent, so both passes run them in parallel; a grain of a few slices keeps
// tiny problems on one thread.
constexpr std::int64_t kSliceGrain = 4;

// ---- the tiled kernel (kernels/attention.cpp) ------------------------------------------------------

// Which kernel computes. The tiled one holds no weights, so asking for them rules it out; it also
// needs non-empty heads (its small products take the BLAS rule ld ≥ 1 literally).
bool use_tiled(const char* op, const AttentionOptions& opt, const Layout& L) {
    switch (opt.kernel) {
        case AttentionKernel::materialize: return false;
        case AttentionKernel::tiled:
            if (opt.weights)
                fail("{}: the tiled kernel keeps no attention weights; ask for them with kernel = materialize "
                     "or automatic", op);
            return L.D > 0 && L.Dv > 0;
        case AttentionKernel::automatic: break;
    }
    return !opt.weights && L.Tk >= kTiledAttentionMinKeys && L.D > 0 && L.Dv > 0;
}

// The user's mask, read in place by the tiled kernel: its strides along the scores' shape `full`
// (…, T_q, T_k), 0 where the mask has size 1 (broadcast). Slice n starts at the offset of its
// leading indices; a (B, 1, 1, T_k) padding mask is never expanded to T_q × T_k bytes.
struct MaskStrides {
    const std::uint8_t* data = nullptr;
    std::vector<std::int64_t> lead;  // per leading dim of `full`
    std::int64_t row = 0, col = 0;
};

MaskStrides mask_strides(const char* op, const AttentionOptions& opt, const Shape& full) {
    MaskStrides m;
    if (!opt.mask.defined()) return m;
    if (opt.mask.dtype() != DType::b8)
        fail("{}: mask must be a b8 tensor (true = blocked), got {} {}", op, dtype_name(opt.mask.dtype()),
             shape_str(opt.mask.shape()));
    if (broadcast_shapes(op, {&full, &opt.mask.shape()}) != full)
        fail("{}: mask {} does not broadcast to the scores' shape {}", op, shape_str(opt.mask.shape()), shape_str(full));
    const Shape& ms = opt.mask.shape();
    const auto cs = contiguous_strides(ms);
    std::vector<std::int64_t> st(full.size(), 0);  // aligned at the right, 0 where broadcast
    for (std::size_t i = 0; i < ms.size(); ++i) {
        const std::size_t d = full.size() - ms.size() + i;
        st[d] = ms[i] == 1 ? 0 : cs[i];
    }
    m.data = opt.mask.data<std::uint8_t>();
    m.lead.assign(st.begin(), st.end() - 2);
    m.row = st[full.size() - 2];
    m.col = st[full.size() - 1];
    return m;
}

kernels::MaskView mask_view(const MaskStrides& m, const Shape& full, std::int64_t n) {
    if (!m.data) return {};
    std::int64_t offset = 0;
    for (std::size_t d = m.lead.size(); d-- > 0;) {  // n's index along each leading dim, last fastest
        offset += (n % full[d]) * m.lead[d];
        n /= full[d];
    }
    return {m.data + offset, m.row, m.col};
}

// Forward: one work item per (slice, block of query rows), all independent. Backward: one per
// slice, because a slice's key and value gradients gather from all its query blocks. Kept for the
// backward: q, k, v, the output O and lse (T_q numbers per slice) — no T_q × T_k tensor at all.
Tensor tiled_attention(const OpDef& op, const Tensor& q, const Tensor& k, const Tensor& v, const Layout& L,
                       const Shape& out_shape, const Shape& weights_shape, const AttentionOptions& opt, bool packed) {
    const MaskStrides mask = mask_strides(op.name, opt, weights_shape);
    const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(L.D));
    const kernels::AttentionDims dims{L.Tq, L.Tk, L.D, L.Dv, scale, opt.causal};
    Tensor out = empty(out_shape, q.dtype());
    Tensor lse = empty({L.N, L.Tq}, q.dtype());
    const std::int64_t blocks = (L.Tq + kernels::kQueryBlock - 1) / kernels::kQueryBlock;
    visit_float(q.dtype(), op.name, [&]<class T>(T) {
        parallel_for(0, L.N * blocks, 1, [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t item = lo; item < hi; ++item) {
                const std::int64_t n = item / blocks, b = item % blocks;
                kernels::AttentionDims part = dims;
                part.row_begin = b * kernels::kQueryBlock;
                part.row_end = std::min(L.Tq, part.row_begin + kernels::kQueryBlock);
                kernels::attention_tiled_forward(part, q.data<T>() + L.q.offset(n, L.H), L.q.ld,
                                                 k.data<T>() + L.k.offset(n, L.H), L.k.ld,
                                                 v.data<T>() + L.v.offset(n, L.H), L.v.ld,
                                                 mask_view(mask, weights_shape, n), out.data<T>() + L.o.offset(n, L.H),
                                                 L.o.ld, lse.data<T>() + n * L.Tq);
            }
        });
    });
    std::vector<Tensor> inputs = packed ? std::vector<Tensor>{q} : std::vector<Tensor>{q, k, v};
    return record(op, out, std::move(inputs),
                  [q, k, v, o = out.detach(), lse, L, dims, mask, weights_shape, packed](const Tensor& dy,
                                                                                          BackwardContext& ctx) {
        visit_float(dy.dtype(), "attention backward", [&]<class T>(T) {
            const std::array<T*, 3> grads = grad_pointers<T>(ctx, packed);  // named: lambdas capture them
            T* const pdq = grads[0];
            T* const pdk = grads[1];
            T* const pdv = grads[2];
            parallel_for(0, L.N, 1, [&](std::int64_t lo, std::int64_t hi) {
                for (std::int64_t n = lo; n < hi; ++n)
                    kernels::attention_tiled_backward(
                        dims, q.data<T>() + L.q.offset(n, L.H), L.q.ld, k.data<T>() + L.k.offset(n, L.H), L.k.ld,
                        v.data<T>() + L.v.offset(n, L.H), L.v.ld, mask_view(mask, weights_shape, n),
                        o.data<T>() + L.o.offset(n, L.H), L.o.ld, lse.data<T>() + n * L.Tq,
                        dy.data<T>() + L.o.offset(n, L.H), pdq ? pdq + L.q.offset(n, L.H) : nullptr,
                        pdk ? pdk + L.k.offset(n, L.H) : nullptr, pdv ? pdv + L.v.offset(n, L.H) : nullptr);
            });
        });
    });
}

// ---- the materialising kernel, and the choice -----------------------------------------------------

// q, k and v may be three tensors or three views of one packed tensor (then `packed` holds it and
// q, k, v are all that tensor, the layout's offsets telling the parts apart).
Tensor fused_attention(const OpDef& op, const Tensor& q, const Tensor& k, const Tensor& v, const Layout& L,
                       const Shape& out_shape, const Shape& weights_shape, const AttentionOptions& opt,
                       bool packed = false) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    if (profiling()) {
        // The mathematical count, whichever kernel runs: S and O take 2·(D + D_v) per visible
        // query-key pair; the backward's four products twice that (the tiled kernel's second
        // computation of S is not counted: GFLOP/s then measures useful work).
        double pairs = 0;
        for (std::int64_t i = 0; i < L.Tq; ++i) pairs += double(causal_keys(i, L.Tq, L.Tk, opt.causal));
        const double flops = 2.0 * pairs * double(L.D + L.Dv) * double(L.N);
        profile.set_flops(flops, 2 * flops);
    }
    if (use_tiled(op.name, opt, L)) return tiled_attention(op, q, k, v, L, out_shape, weights_shape, opt, packed);
    const auto mask = build_mask(op.name, opt, weights_shape, L);
    const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(L.D ? L.D : 1));
    Tensor out = empty(out_shape, q.dtype());
    Tensor P = empty(weights_shape, q.dtype());
    visit_float(q.dtype(), op.name, [&]<class T>(T) {
        const T* pq = q.data<T>();
        const T* pk = k.data<T>();
        const T* pv = v.data<T>();
        T* po = out.data<T>();
        T* pp = P.data<T>();
        const std::uint8_t* pm = mask.empty() ? nullptr : mask.data();
        parallel_for(0, L.N, kSliceGrain, [&](std::int64_t lo, std::int64_t hi) {
            for (std::int64_t n = lo; n < hi; ++n) forward_slice(L, n, T(scale), pq, pk, pv, po, pp, pm, opt.causal);
        });
    });
    if (opt.weights) *opt.weights = P.detach();
    std::vector<Tensor> inputs = packed ? std::vector<Tensor>{q} : std::vector<Tensor>{q, k, v};
    const bool causal = opt.causal;
    return record(op, out, std::move(inputs), [q, k, v, P, L, scale, packed, causal](const Tensor& dy, BackwardContext& ctx) {
        visit_float(dy.dtype(), "attention backward", [&]<class T>(T) {
            const std::array<T*, 3> grads = grad_pointers<T>(ctx, packed);  // named: lambdas capture them
            T* const pdq = grads[0];
            T* const pdk = grads[1];
            T* const pdv = grads[2];
            parallel_for(0, L.N, kSliceGrain, [&](std::int64_t lo, std::int64_t hi) {
                // Scratch for one slice's dS, as a tensor so that qkv::memory_stats() counts it.
                Tensor dS = empty({L.Tq, L.Tk}, dy.dtype());
                for (std::int64_t n = lo; n < hi; ++n)
                    backward_slice(L, n, T(scale), causal, q.data<T>(), k.data<T>(), v.data<T>(), P.data<T>(), dy.data<T>(),
                                   pdq, pdk, pdv, dS.data<T>());
            });
        });
    });
}

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t min_dim) {
    check_float_tensor(op, q, "q");
    check_float_tensor(op, k, "k");
    check_float_tensor(op, v, "v");
    check_same_dtype(op, q, k);
    check_same_dtype(op, q, v);
    if (q.dim() < min_dim || k.dim() != q.dim() || v.dim() != q.dim())
        fail("{}: q, k, v must have the same number of dims (at least {}), got {}, {}, {}", op, min_dim,
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// attention   O = softmax(scale·QKᵀ + M)·V       (backward: see the file comment)
static const OpDef kAttention{"attention"};
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
    const char* op = kAttention.name;
    check_qkv(op, q, k, v, 2);
    const Shape lead(q.shape().begin(), q.shape().end() - 2);
    if (Shape(k.shape().begin(), k.shape().end() - 2) != lead || Shape(v.shape().begin(), v.shape().end() - 2) != lead)
        fail("attention: q {}, k {}, v {} must share their leading dims", shape_str(q.shape()), shape_str(k.shape()),
             shape_str(v.shape()));
    const std::int64_t Tq = q.size(-2), D = q.size(-1), Tk = k.size(-2), Dv = v.size(-1);
    if (k.size(-1) != D) fail("attention: q {} and k {} differ in head size", shape_str(q.shape()), shape_str(k.shape()));
    if (v.size(-2) != Tk) fail("attention: k {} and v {} differ in length", shape_str(k.shape()), shape_str(v.shape()));
    const Layout L{shape_numel(lead), 1, Tq, Tk, D, Dv, {Tq * D, 0, D}, {Tk * D, 0, D}, {Tk * Dv, 0, Dv}, {Tq * Dv, 0, Dv}};
    Shape out_shape = lead, w_shape = lead;
    out_shape.insert(out_shape.end(), {Tq, Dv});
    w_shape.insert(w_shape.end(), {Tq, Tk});
    return fused_attention(kAttention, q, k, v, L, out_shape, w_shape, opt);
}

// -------------------------------------------------------------------------------------------------
// head_attention   the same, heads side by side in the channels: (B, T, H·D)
static const OpDef kHeadAttention{"head_attention"};
Tensor head_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t heads, const AttentionOptions& opt) {
    const char* op = kHeadAttention.name;
    check_qkv(op, q, k, v, 3);
    if (q.dim() != 3) fail("head_attention: q, k, v must be (B, T, H*D), got q {}", shape_str(q.shape()));
    const std::int64_t B = q.size(0), Tq = q.size(1), C = q.size(2), Tk = k.size(1), Cv = v.size(2);
    if (k.size(0) != B || v.size(0) != B || v.size(1) != Tk || k.size(2) != C)
        fail("head_attention: q {}, k {}, v {} do not fit together (B, T_q, C), (B, T_k, C), (B, T_k, C_v)",
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
    if (heads < 1 || C % heads != 0 || Cv % heads != 0)
        fail("head_attention: {} heads do not divide the channels of q {} and v {}", heads, shape_str(q.shape()),
             shape_str(v.shape()));
    const std::int64_t D = C / heads, Dv = Cv / heads;
    const Layout L{B * heads, heads, Tq, Tk, D, Dv, {Tq * C, D, C}, {Tk * C, D, C}, {Tk * Cv, Dv, Cv}, {Tq * Cv, Dv, Cv}};
    return fused_attention(kHeadAttention, q, k, v, L, {B, Tq, Cv}, {B, heads, Tq, Tk}, opt);
}

// -------------------------------------------------------------------------------------------------
// head_attention_qkv   the same, reading Q, K and V straight out of one (B, T, 3·H·D) tensor — the
// output of a fused QKV projection — so neither the split nor its backward copies anything.
static const OpDef kHeadAttentionQKV{"head_attention_qkv"};
Tensor head_attention_qkv(const Tensor& qkv, std::int64_t heads, const AttentionOptions& opt) {
    const char* op = kHeadAttentionQKV.name;
    check_float_tensor(op, qkv, "qkv");
    if (qkv.dim() != 3 || qkv.size(2) % 3 != 0)
        fail("head_attention_qkv: expected (B, T, 3*C), got {}", shape_str(qkv.shape()));
    const std::int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3;
    if (heads < 1 || C % heads != 0)
        fail("head_attention_qkv: {} heads do not divide C = {} of qkv {}", heads, C, shape_str(qkv.shape()));
    const std::int64_t D = C / heads, ld = 3 * C;
    // Q, K, V of head h start at channels h·D, C + h·D and 2C + h·D of each row.
    const Layout L{B * heads, heads, T, T, D, D, {T * ld, D, ld, 0}, {T * ld, D, ld, C}, {T * ld, D, ld, 2 * C},
                   {T * C, D, C, 0}};
    return fused_attention(kHeadAttentionQKV, qkv, qkv, qkv, L, {B, T, C}, {B, heads, T, T}, opt, /*packed=*/true);
}

}  // namespace qkv
