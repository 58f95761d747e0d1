/// \file
/// \brief Shape ops: reshape, transpose/permute, slicing, concatenation, splitting, expand.
///
/// None of these does arithmetic; they move elements. Their backward passes move the gradient
/// back along the same paths: a reshape's gradient is reshaped back, a permute's is permuted by the
/// inverse permutation, a slice's is written into the sliced positions of a zero tensor (the rest
/// received nothing), a concat's is cut into pieces. Because every qkv tensor is contiguous,
/// reshape-like ops share storage and everything else copies.
#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "ops/op_detail.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv {
using namespace detail;

namespace {

// Copy-free view of x with a new shape (numel must match): the data is shared.
Tensor view_op(const OpDef& op, const Tensor& x, Shape shape) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    Tensor y = x.detach();
    y.impl()->shape = std::move(shape);
    return record(op, y, {x}, [](const Tensor& dy, BackwardContext& ctx) {
        bool add = true;
        Tensor* dx = ctx.grad_overwrite(0, add);
        if (!dx) return;
        if (!add) {  // the gradient is dy itself, just seen through x's shape
            std::memcpy(dx->raw_data(), dy.raw_data(), std::size_t(dy.numel()) * dtype_size(dy.dtype()));
            return;
        }
        visit_float(dy.dtype(), "view backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            for (std::int64_t i = 0, n = dy.numel(); i < n; ++i) pdx[i] += pdy[i];
        });
    });
}

// Walk every element of an output of `sizes`, calling f(linear_out_index, source_offset) where the
// source offset follows `strides`. The innermost dimension runs as a plain loop.
template <class F>
void for_each_strided(const Shape& sizes, const std::vector<std::int64_t>& strides, F&& f) {
    const std::int64_t total = shape_numel(sizes);
    if (total == 0) return;
    if (sizes.empty()) { f(0, 0); return; }
    const std::size_t nd = sizes.size();
    std::vector<std::int64_t> idx(nd, 0);
    std::int64_t off = 0, lin = 0;
    const std::int64_t n = sizes.back(), st = strides.back();
    while (lin < total) {
        for (std::int64_t j = 0; j < n; ++j) f(lin + j, off + j * st);
        lin += n;
        for (std::size_t d = nd - 1; d-- > 0;) {
            off += strides[d];
            if (++idx[d] < sizes[d]) break;
            off -= strides[d] * sizes[d];
            idx[d] = 0;
        }
    }
}

// y[o, j, i] = x[o, start + j·step, i];   dx[o, start + j·step, i] += dy[o, j, i]
Tensor slice_op(const OpDef& op, const Tensor& x, std::int64_t d, std::int64_t start, std::int64_t count,
                std::int64_t step) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    const DimSplit sp = split_at(x.shape(), d);
    Shape out_shape = x.shape();
    out_shape[std::size_t(d)] = count;
    Tensor y = empty(out_shape, x.dtype());
    const std::size_t es = dtype_size(x.dtype());
    const auto* px = static_cast<const char*>(x.raw_data());
    auto* py = static_cast<char*>(y.raw_data());
    for (std::int64_t o = 0; o < sp.outer; ++o)
        for (std::int64_t j = 0; j < count; ++j)
            std::memcpy(py + std::size_t((o * count + j) * sp.inner) * es,
                        px + std::size_t((o * sp.n + start + j * step) * sp.inner) * es, std::size_t(sp.inner) * es);
    return record(op, y, {x}, [sp, start, count, step](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "slice backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            for (std::int64_t o = 0; o < sp.outer; ++o)
                for (std::int64_t j = 0; j < count; ++j)
                    for (std::int64_t i = 0; i < sp.inner; ++i)
                        pdx[(o * sp.n + start + j * step) * sp.inner + i] += pdy[(o * count + j) * sp.inner + i];
        });
    });
}

void check_split_input(const char* op, const Tensor& x) {
    check_defined(op, x);
    if (x.dim() == 0) fail("{}: cannot split a 0-d tensor", op);
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// reshape    y = x viewed as another shape            dx = dy viewed as x's shape
static const OpDef kReshape{"reshape"};
Tensor reshape(const Tensor& x, const Shape& shape) {
    check_defined(kReshape.name, x);
    Shape s = shape;
    std::int64_t infer = -1;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            if (infer >= 0) fail("reshape: more than one -1 in {}", shape_str(shape));
            infer = std::int64_t(i);
        } else if (s[i] < 0) {
            fail("reshape: negative size in {}", shape_str(shape));
        }
    }
    // The product of the given sizes, checked (a -1 counts as 1 here): sizes come from callers.
    Shape given = s;
    if (infer >= 0) given[std::size_t(infer)] = 1;
    const std::int64_t known = shape_numel(given, "reshape");
    if (infer >= 0) {
        if (known == 0 || x.numel() % known != 0)
            fail("reshape: cannot reshape {} ({} elements) into {}", shape_str(x.shape()), x.numel(), shape_str(shape));
        s[std::size_t(infer)] = x.numel() / known;
    }
    if (shape_numel(s) != x.numel())
        fail("reshape: cannot reshape {} ({} elements) into {} ({} elements)", shape_str(x.shape()), x.numel(),
             shape_str(shape), shape_numel(s));
    return view_op(kReshape, x, std::move(s));
}

// view is reshape under another name (every qkv tensor is contiguous, so a view always exists).
static const OpDef kView{"view"};
Tensor view(const Tensor& x, const Shape& shape) {
    Tensor r = reshape(x.detach(), shape);  // validates and infers -1 (x.detach(): no extra node)
    return view_op(kView, x, r.shape());
}

// -------------------------------------------------------------------------------------------------
// permute    y[i₀..iₙ] = x[i_{p⁻¹}...]: output dim k is input dim p[k]
//            dx = permute(dy, p⁻¹)  — implemented as a scatter along the same index map
static const OpDef kPermute{"permute"};
static const OpDef kTranspose{"transpose"};

static Tensor permute_op(const OpDef& op, const Tensor& x, const std::vector<std::int64_t>& dims) {
    detail::OpScope profile(op);  // the profiler's hook: one branch when off
    check_defined(op.name, x);
    const auto nd = x.dim();
    if (std::int64_t(dims.size()) != nd)
        fail("{}: got {} dims for a tensor of shape {}", op.name, dims.size(), shape_str(x.shape()));
    std::vector<bool> used(std::size_t(nd), false);
    std::vector<std::int64_t> p(dims.size());
    for (std::size_t k = 0; k < dims.size(); ++k) {
        p[k] = normalize_dim(op.name, dims[k], nd);
        if (used[std::size_t(p[k])]) fail("{}: dims ({}) is not a permutation", op.name, fmt::join(dims, ","));
        used[std::size_t(p[k])] = true;
    }
    const auto in_strides = contiguous_strides(x.shape());
    Shape out_shape(dims.size());
    std::vector<std::int64_t> src_strides(dims.size());
    for (std::size_t k = 0; k < dims.size(); ++k) {
        out_shape[k] = x.shape()[std::size_t(p[k])];
        src_strides[k] = in_strides[std::size_t(p[k])];
    }
    Tensor y = empty(out_shape, x.dtype());
    visit_all(x.dtype(), [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        for_each_strided(out_shape, src_strides, [&](std::int64_t lin, std::int64_t off) { py[lin] = px[off]; });
    });
    return record(op, y, {x}, [out_shape, src_strides](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "permute backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            for_each_strided(out_shape, src_strides, [&](std::int64_t lin, std::int64_t off) { pdx[off] += pdy[lin]; });
        });
    });
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) { return permute_op(kPermute, x, dims); }

// transpose  swap two dims: a permute that exchanges d0 and d1.
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1) {
    check_defined(kTranspose.name, x);
    const auto a = normalize_dim(kTranspose.name, d0, x.dim());
    const auto b = normalize_dim(kTranspose.name, d1, x.dim());
    std::vector<std::int64_t> dims(std::size_t(x.dim()));
    std::iota(dims.begin(), dims.end(), 0);
    std::swap(dims[std::size_t(a)], dims[std::size_t(b)]);
    return permute_op(kTranspose, x, dims);
}

// -------------------------------------------------------------------------------------------------
// narrow     y = x[..., start : start+length, ...]     dx[..., start+j, ...] += dy[..., j, ...]
static const OpDef kNarrow{"narrow"};
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
    check_defined(kNarrow.name, x);
    const auto d = normalize_dim(kNarrow.name, dim, x.dim());
    const auto n = x.shape()[std::size_t(d)];
    // length > n - start, not start + length > n: the sum of two huge values would overflow.
    if (start < 0 || length < 0 || start > n || length > n - start) {
        if (start >= 0 && length >= 0 && length <= std::numeric_limits<std::int64_t>::max() - start)
            fail("narrow: [{}, {}) out of range for dim {} of size {} in {}", start, start + length, dim, n,
                 shape_str(x.shape()));
        fail("narrow: start {} and length {} out of range for dim {} of size {} in {}", start, length, dim, n,
             shape_str(x.shape()));
    }
    return slice_op(kNarrow, x, d, start, length, 1);
}

// -------------------------------------------------------------------------------------------------
// slice      y = x[..., start:end:step, ...]  (Python rules)    dx scatters dy back to those positions
static const OpDef kSlice{"slice"};
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
    check_defined(kSlice.name, x);
    const auto d = normalize_dim(kSlice.name, dim, x.dim());
    if (step < 1) fail("slice: step must be >= 1, got {}", step);
    const auto n = x.shape()[std::size_t(d)];
    auto clamp = [n](std::int64_t i) { return std::clamp(i < 0 ? i + n : i, std::int64_t(0), n); };
    const auto s = clamp(start), e = clamp(end);
    const auto count = e > s ? (e - s - 1) / step + 1 : 0;  // ⌈(e − s) / step⌉ without overflowing for a huge step
    return slice_op(kSlice, x, d, s, count, step);
}

// -------------------------------------------------------------------------------------------------
// split      pieces of x along dim; each piece is a slice (gradients of the pieces land side by side)
static const OpDef kSplit{"split"};
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
    check_split_input(kSplit.name, x);
    const auto d = normalize_dim(kSplit.name, dim, x.dim());
    const auto n = x.shape()[std::size_t(d)];
    std::int64_t total = 0;
    for (auto s : sizes) {
        if (s < 0) fail("split: negative piece size in ({})", fmt::join(sizes, ","));
        // Stop before the sum can overflow: once past n it is wrong anyway.
        if (s > n - total)
            fail("split: sizes ({}) add up to more than dim {} of {}, which has size {}", fmt::join(sizes, ","), dim,
                 shape_str(x.shape()), n);
        total += s;
    }
    if (total != n)
        fail("split: sizes ({}) add up to {}, but dim {} of {} has size {}", fmt::join(sizes, ","), total, dim,
             shape_str(x.shape()), n);
    std::vector<Tensor> out;
    std::int64_t start = 0;
    for (auto s : sizes) {
        out.push_back(slice_op(kSplit, x, d, start, s, 1));
        start += s;
    }
    return out;
}

std::vector<Tensor> split(const Tensor& x, std::int64_t size, std::int64_t dim) {
    check_split_input(kSplit.name, x);
    if (size < 1) fail("split: piece size must be >= 1, got {}", size);
    const auto n = x.shape()[std::size_t(normalize_dim(kSplit.name, dim, x.dim()))];
    std::vector<std::int64_t> sizes;
    for (std::int64_t s = 0; s < n; s += size) sizes.push_back(std::min(size, n - s));
    return split(x, sizes, dim);
}

// -------------------------------------------------------------------------------------------------
// concat     y = [x₁ | x₂ | ...] along dim            dxᵢ = the i-th block of dy
static const OpDef kConcat{"concat"};
Tensor concat(const std::vector<Tensor>& xs, std::int64_t dim) {
    detail::OpScope profile(kConcat);  // the profiler's hook: one branch when off
    if (xs.empty()) fail("concat: needs at least one tensor");
    for (const auto& x : xs) check_defined(kConcat.name, x);
    const auto d = normalize_dim(kConcat.name, dim, xs[0].dim());
    Shape out_shape = xs[0].shape();
    out_shape[std::size_t(d)] = 0;
    for (const auto& x : xs) {
        check_same_dtype(kConcat.name, xs[0], x);
        bool ok = x.dim() == xs[0].dim();
        for (std::size_t i = 0; ok && i < out_shape.size(); ++i)
            ok = std::int64_t(i) == d || x.shape()[i] == xs[0].shape()[i];
        if (!ok)
            fail("concat: shapes {} and {} differ outside dim {}", shape_str(xs[0].shape()), shape_str(x.shape()), dim);
        // Each size is at most kMaxNumel (2^60), so the sum stays far from overflowing as long as
        // it is checked against that bound piece by piece; empty() then checks the whole shape.
        out_shape[std::size_t(d)] += x.shape()[std::size_t(d)];
        if (out_shape[std::size_t(d)] > kMaxNumel)
            fail("concat: the sizes along dim {} add up to more than 2^60", dim);
    }
    Tensor y = empty(out_shape, xs[0].dtype());
    const DimSplit out_sp = split_at(out_shape, d);
    const std::size_t es = dtype_size(y.dtype());
    std::int64_t at = 0;  // running offset along dim
    std::vector<std::int64_t> starts;
    for (const auto& x : xs) {
        const DimSplit sp = split_at(x.shape(), d);
        const std::size_t row = std::size_t(sp.n * sp.inner) * es;
        for (std::int64_t o = 0; o < sp.outer; ++o)
            std::memcpy(static_cast<char*>(y.raw_data()) + std::size_t((o * out_sp.n + at) * sp.inner) * es,
                        static_cast<const char*>(x.raw_data()) + std::size_t(o) * row, row);
        starts.push_back(at);
        at += sp.n;
    }
    return record(kConcat, y, xs, [out_sp, starts](const Tensor& dy, BackwardContext& ctx) {
        visit_float(dy.dtype(), "concat backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            for (std::size_t k = 0; k < starts.size(); ++k) {
                Tensor* dx = ctx.grad(k);
                if (!dx) continue;
                T* pdx = dx->data<T>();
                const std::int64_t n = (k + 1 < starts.size() ? starts[k + 1] : out_sp.n) - starts[k];
                for (std::int64_t o = 0; o < out_sp.outer; ++o)
                    for (std::int64_t j = 0; j < n * out_sp.inner; ++j)
                        pdx[o * n * out_sp.inner + j] += pdy[(o * out_sp.n + starts[k]) * out_sp.inner + j];
            }
        });
    });
}

// -------------------------------------------------------------------------------------------------
// unsqueeze / squeeze: add or remove a size-1 dim — views, gradient reshaped back
static const OpDef kUnsqueeze{"unsqueeze"};
Tensor unsqueeze(const Tensor& x, std::int64_t dim) {
    check_defined(kUnsqueeze.name, x);
    const auto d = normalize_dim(kUnsqueeze.name, dim, x.dim() + 1);
    Shape s = x.shape();
    s.insert(s.begin() + d, 1);
    return view_op(kUnsqueeze, x, std::move(s));
}

static const OpDef kSqueeze{"squeeze"};
Tensor squeeze(const Tensor& x, std::int64_t dim) {
    check_defined(kSqueeze.name, x);
    const auto d = normalize_dim(kSqueeze.name, dim, x.dim());
    if (x.shape()[std::size_t(d)] != 1)
        fail("squeeze: dim {} of {} has size {}, not 1", dim, shape_str(x.shape()), x.shape()[std::size_t(d)]);
    Shape s = x.shape();
    s.erase(s.begin() + d);
    return view_op(kSqueeze, x, std::move(s));
}

Tensor squeeze(const Tensor& x) {
    check_defined(kSqueeze.name, x);
    Shape s;
    for (auto n : x.shape())
        if (n != 1) s.push_back(n);
    return view_op(kSqueeze, x, std::move(s));
}

// -------------------------------------------------------------------------------------------------
// expand     y = x broadcast to `shape`               dx = dy summed over the broadcast dims
static const OpDef kExpand{"expand"};
Tensor expand(const Tensor& x, const Shape& shape) {
    detail::OpScope profile(kExpand);  // the profiler's hook: one branch when off
    check_defined(kExpand.name, x);
    if (shape.size() < x.shape().size())
        fail("expand: target {} has fewer dims than {}", shape_str(shape), shape_str(x.shape()));
    Shape target = shape;
    const std::size_t lead = shape.size() - x.shape().size();
    for (std::size_t i = 0; i < target.size(); ++i) {
        if (target[i] == -1) {
            if (i < lead) fail("expand: -1 is not allowed for the new leading dim {} in {}", i, shape_str(shape));
            target[i] = x.shape()[i - lead];
        }
        const bool ok = target[i] >= 0 && (i < lead || x.shape()[i - lead] == target[i] || x.shape()[i - lead] == 1);
        if (!ok) fail("expand: cannot expand {} to {}", shape_str(x.shape()), shape_str(shape));
    }
    Tensor y = empty(target, x.dtype());
    const BroadcastPlan<2> plan(target, {&target, &x.shape()});
    visit_all(x.dtype(), [&]<class T>(T) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
            for (std::int64_t i = 0; i < n; ++i) py[off[0] + i] = px[off[1] + i * st[1]];
        });
    });
    return record(kExpand, y, {x}, [plan](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        visit_float(dy.dtype(), "expand backward", [&]<class T>(T) {
            const T* pdy = dy.data<T>();
            T* pdx = dx->data<T>();
            plan.for_each_row([&](const auto& off, std::int64_t n, const auto& st) {
                for (std::int64_t i = 0; i < n; ++i) pdx[off[1] + i * st[1]] += pdy[off[0] + i];
            });
        });
    });
}

}  // namespace qkv
