/// \file
/// \brief Embedding lookup: turning token ids into vectors.
///
/// An embedding table W (V, C) holds one learned vector per token. Looking up ids is a gather,
/// \f$ y_{p} = W_{\mathrm{ids}_p} \f$ — mathematically a one-hot row times W, but without
/// building the one-hot matrix. Its backward is the matching scatter-add: row \f$ \mathrm{ids}_p \f$
/// of dW receives \f$ dy_p \f$, and a token that appears several times receives the sum.
#include <cstring>

#include "ops/op_detail.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

// -------------------------------------------------------------------------------------------------
// embedding   y[p, :] = W[ids[p], :]          dW[ids[p], :] += dy[p, :]
static const OpDef kEmbedding{"embedding"};
Tensor embedding(const Tensor& weight, const Tensor& ids) {
    detail::OpScope profile(kEmbedding);  // the profiler's hook: one branch when off
    check_float_tensor(kEmbedding.name, weight, "weight");
    check_defined(kEmbedding.name, ids, "ids");
    if (weight.dim() != 2) fail("embedding: weight must be (V, C), got {}", shape_str(weight.shape()));
    if (ids.dtype() != DType::i32)
        fail("embedding: ids must be i32 token ids, got {} {}", dtype_name(ids.dtype()), shape_str(ids.shape()));
    const std::int64_t V = weight.size(0), C = weight.size(1), P = ids.numel();
    const std::int32_t* pid = ids.data<std::int32_t>();
    for (std::int64_t p = 0; p < P; ++p)
        if (pid[p] < 0 || pid[p] >= V)
            fail("embedding: token id {} at position {} is out of range for a vocabulary of {} (weight {})", pid[p], p,
                 V, shape_str(weight.shape()));
    Shape out_shape = ids.shape();
    out_shape.push_back(C);
    Tensor y = empty(out_shape, weight.dtype());
    const std::size_t row = std::size_t(C) * dtype_size(weight.dtype());
    for (std::int64_t p = 0; p < P; ++p)
        std::memcpy(static_cast<char*>(y.raw_data()) + std::size_t(p) * row,
                    static_cast<const char*>(weight.raw_data()) + std::size_t(pid[p]) * row, row);
    return record(kEmbedding, y, {weight}, [ids, C, P](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dw = ctx.grad(0);
        if (!dw) return;
        visit_float(dy.dtype(), "embedding backward", [&]<class T>(T) {
            const std::int32_t* id = ids.data<std::int32_t>();
            const T* pdy = dy.data<T>();
            T* pdw = dw->data<T>();
            for (std::int64_t p = 0; p < P; ++p)
                for (std::int64_t c = 0; c < C; ++c) pdw[std::int64_t(id[p]) * C + c] += pdy[p * C + c];
        });
    });
}

}  // namespace qkv
