/// \file
/// \brief Matrix multiplication and its two backward products.
///
/// For C = A·B with A (M, K) and B (K, N), each \f$ C_{ij} = \sum_k A_{ik} B_{kj} \f$, so
/// \f$ \partial L/\partial A_{ik} = \sum_j \partial L/\partial C_{ij}\, B_{kj} \f$ — that is
/// \f$ dA = dC\,B^\top \f$ — and likewise \f$ dB = A^\top dC \f$. Both are again matrix products,
/// so backward runs on the same GEMM kernel with its transpose flags set (no transposed copy is
/// ever made) and β = 1 so the products are added into the gradient buffers.
///
/// The batched forms reduce to that: (…, M, K) @ (K, N) folds the batch into M (one big GEMM,
/// which is what a linear layer over every position is), and (…, M, K) @ (…, K, N) runs one GEMM
/// per batch entry, reading a stride of 0 for an operand that is shared by the whole batch.
#include "ops/op_detail.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

static const OpDef kMatmul{"matmul"};

namespace {

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// (…, M, K) @ (K, N): fold all leading dims into M.
//   C = A·B            dA += dC·Bᵀ            dB += Aᵀ·dC
Tensor matmul_folded(const Tensor& a, const Tensor& b) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    const std::int64_t K = a.size(-1), N = b.size(-1), R = shape_numel(out_shape);
    out_shape.push_back(N);
    shape_numel(out_shape, kMatmul.name);  // e.g. (2^40, K) @ (K, 2^40): a result no tensor can hold
    Tensor c = empty(out_shape, a.dtype());
    visit_float(a.dtype(), "matmul", [&]<class T>(T) {
        gemm(false, false, R, N, K, T(1), a.data<T>(), K, b.data<T>(), N, T(0), c.data<T>(), N);
    });
    return record(kMatmul, c, {a, b}, [a, b, R, N, K](const Tensor& dc, BackwardContext& ctx) {
        Tensor* da = ctx.grad(0);
        Tensor* db = ctx.grad(1);
        visit_float(dc.dtype(), "matmul backward", [&]<class T>(T) {
            if (da) gemm(false, true, R, K, N, T(1), dc.data<T>(), N, b.data<T>(), N, T(1), da->data<T>(), K);
            if (db) gemm(true, false, K, N, R, T(1), a.data<T>(), K, dc.data<T>(), N, T(1), db->data<T>(), N);
        });
    });
}

// Batched: C_b = A_b·B_b, where an operand with one matrix for the whole batch has stride 0.
//   dA_b += dC_b·B_bᵀ      dB_b += A_bᵀ·dC_b   (summed over b when B is shared, and likewise A)
Tensor matmul_batched(const Tensor& a, const Tensor& b, const Shape& batch) {
    const std::int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1), nb = shape_numel(batch);
    const std::int64_t sa = shape_numel(batch_of(a)) == 1 ? 0 : M * K;
    const std::int64_t sb = shape_numel(batch_of(b)) == 1 ? 0 : K * N;
    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    shape_numel(out_shape, kMatmul.name);  // e.g. (2^40, K) @ (K, 2^40): a result no tensor can hold
    Tensor c = empty(out_shape, a.dtype());
    visit_float(a.dtype(), "matmul", [&]<class T>(T) {
        detail::gemm_batched(false, false, M, N, K, T(1), a.data<T>(), K, sa, b.data<T>(), N, sb, T(0),
                              c.data<T>(), N, M * N, nb);
    });
    return record(kMatmul, c, {a, b}, [a, b, M, N, K, nb, sa, sb](const Tensor& dc, BackwardContext& ctx) {
        Tensor* da = ctx.grad(0);
        Tensor* db = ctx.grad(1);
        visit_float(dc.dtype(), "matmul backward", [&]<class T>(T) {
            const T* pdc = dc.data<T>();
            for (std::int64_t i = 0; i < nb; ++i) {  // a shared operand accumulates over the batch
                if (da)
                    gemm(false, true, M, K, N, T(1), pdc + i * M * N, N, b.data<T>() + i * sb, N, T(1),
                         da->data<T>() + i * sa, K);
                if (db)
                    gemm(true, false, K, N, M, T(1), a.data<T>() + i * sa, K, pdc + i * M * N, N, T(1),
                         db->data<T>() + i * sb, N);
            }
        });
    });
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// matmul     C = A·B       dA = dC·Bᵀ       dB = Aᵀ·dC
Tensor matmul(const Tensor& a, const Tensor& b) {
    detail::OpScope profile(kMatmul);  // the profiler's hook: one branch when off
    check_float_tensor(kMatmul.name, a, "left operand");
    check_float_tensor(kMatmul.name, b, "right operand");
    check_same_dtype(kMatmul.name, a, b);
    if (a.dim() < 2 || b.dim() < 2)
        fail("matmul: both operands need at least 2 dims, got {} @ {} (reshape a vector to (1,n) or (n,1))",
             shape_str(a.shape()), shape_str(b.shape()));
    if (a.size(-1) != b.size(-2))
        fail("matmul: inner dimensions differ: {} @ {}", shape_str(a.shape()), shape_str(b.shape()));
    // 2·M·N·K per product; the backward's dA and dB products twice that.
    const double mnk = 2.0 * double(a.size(-2)) * double(b.size(-1)) * double(a.size(-1));
    if (b.dim() == 2) {
        const double flops = mnk * double(shape_numel(batch_of(a)));
        profile.set_flops(flops, 2 * flops);
        return matmul_folded(a, b);
    }
    const Shape ba = batch_of(a), bb = batch_of(b);
    const Shape batch = broadcast_shapes(kMatmul.name, {&ba, &bb});
    profile.set_flops(mnk * double(shape_numel(batch)), 2 * mnk * double(shape_numel(batch)));
    // A batch broadcast other than "all or nothing" (e.g. (B,1,·,·) @ (1,H,·,·)) is materialised by
    // expand, whose own backward sums the gradient back: simple, and rare in practice.
    auto full = [&](const Tensor& t, const Shape& tb) {
        if (tb == batch || shape_numel(tb) == 1) return t;
        Shape s = batch;
        s.push_back(t.size(-2));
        s.push_back(t.size(-1));
        return expand(t, s);
    };
    return matmul_batched(full(a, ba), full(b, bb), batch);
}

}  // namespace qkv
