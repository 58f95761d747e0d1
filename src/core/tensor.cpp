/// \file
/// \brief Tensor storage, accessors and creation functions.
///
/// A reader learns here what a Tensor is: a shared_ptr to a TensorImpl (shape, dtype, element count,
/// autograd fields) that points at a shared Storage block, so copying a Tensor copies a handle and
/// detach() shares the data without the history. Typed access goes through `data<T>()`, which checks T
/// against the dtype; dtype-generic functions (to(), at(), full(), ...) dispatch once per call with
/// detail::visit_all, not per element. Storage is 64-byte aligned, padded so SIMD loads may run one
/// vector past the end, and recycled through a cache keyed by size, because fresh pages are slow.
#include <cctype>
#include <cstring>
#include <locale>
#include <sstream>
#include <bit>
#include <atomic>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/dispatch.hpp"
#include "qkv/core/autograd.hpp"

namespace qkv {

// ---- dtypes and shapes ------------------------------------------------------------------------

std::string_view dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "f32";
        case DType::f64: return "f64";
        case DType::i32: return "i32";
        case DType::b8: return "b8";
    }
    return "?";
}

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f32: return 4;
        case DType::f64: return 8;
        case DType::i32: return 4;
        case DType::b8: return 1;
    }
    return 0;
}

std::string format_bytes(double bytes) {
    constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    std::size_t u = 0;
    while (bytes >= 1024 && u + 1 < std::size(kUnits)) bytes /= 1024, ++u;
    return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.3g} {}", bytes, kUnits[u]);
}

std::size_t parse_double_prefix(std::string_view s, double& value) {
    // First find the number's extent ourselves — [sign] digits [. digits] [e [sign] digits], at
    // least one digit before the exponent — then read exactly that much. (Streams disagree on where
    // a number ends: libc++'s swallows a following 'x' and then fails.)
    auto digits = [&](std::size_t i) {
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        return i;
    };
    std::size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    std::size_t end = digits(i);
    std::size_t n_digits = end - i;
    if (end < s.size() && s[end] == '.') {
        const std::size_t frac_end = digits(end + 1);
        n_digits += frac_end - end - 1;
        end = frac_end;
    }
    if (n_digits == 0) return 0;  // no digit at all: "", "-", ".", "G16"
    if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
        std::size_t e = end + 1;
        if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
        const std::size_t exp_end = digits(e);
        if (exp_end > e) end = exp_end;  // "2e" without digits: the number is "2"
    }
    std::istringstream in{std::string(s.substr(0, end))};
    in.imbue(std::locale::classic());
    double v = 0;
    in >> std::noskipws >> v;
    if (in.fail()) return 0;  // out of the range of double
    value = v;
    return end;
}

std::string shape_str(const Shape& shape) { return fmt::format("({})", fmt::join(shape, ",")); }

// Sizes come from outside (files, flags, callers), so their product is computed checked: the
// product of the nonzero sizes must stay within kMaxNumel. Bounding the nonzero ones (not just the
// final product, which a single 0 makes 0) means every partial product an op forms from a valid
// shape — outer × inner, rows × cols — is bounded too, and (2^62, 2, 0) is refused rather than
// overflowing inside the first op that multiplies its leading sizes.
std::int64_t checked_numel(const Shape& shape) {
    std::int64_t nonzero = 1;
    bool empty = false;
    for (const auto s : shape) {
        if (s < 0) return -1;
        if (s == 0) {
            empty = true;
            continue;
        }
        if (s > kMaxNumel / nonzero) return -1;  // nonzero · s > kMaxNumel, without computing it
        nonzero *= s;
    }
    return empty ? 0 : nonzero;
}

std::int64_t shape_numel(const Shape& shape, std::string_view op) {
    const std::int64_t n = checked_numel(shape);
    if (n >= 0) return n;
    for (const auto s : shape)
        if (s < 0) fail("{}: negative size in shape {}", op, shape_str(shape));
    fail("{}: shape {} has more than 2^60 elements (the most a tensor can hold)", op, shape_str(shape));
}

// ---- storage ----------------------------------------------------------------------------------
// A training step allocates the same tensors, with the same sizes, every time. Returning each
// block to the system and asking again costs page faults (the OS hands out fresh, zeroed pages for
// large blocks) — measured at a fifth of a small model's step. So freed blocks are kept in a
// cache keyed by size and handed out again. The cache holds at most kCacheLimit bytes; sanitizer
// builds bypass it so use-after-free bugs are still caught.

namespace {
// (Unused in sanitizer builds, which bypass the cache: clang warns about an unused constant.)
[[maybe_unused]] constexpr std::size_t kCacheLimit = std::size_t(1) << 30;  // 1 GiB of idle blocks at most

struct BlockCache {
    std::mutex mu;
    std::unordered_map<std::size_t, std::vector<void*>> free;  // padded size → idle blocks
    std::size_t bytes = 0;

    void* take(std::size_t size) {
        {
            std::lock_guard<std::mutex> lock(mu);
            auto it = free.find(size);
            if (it != free.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                bytes -= size;
                return p;
            }
        }
        // The nothrow form: a failed request comes back as nullptr, which we answer with
        // std::bad_alloc ourselves (the caller turns it into qkv::OutOfMemory). The throwing form
        // would do the same in a plain build, but under AddressSanitizer a failed throwing `new`
        // aborts the process even with allocator_may_return_null=1, so the error could not be tested.
        void* p = ::operator new(size, std::align_val_t{64}, std::nothrow);
        if (p == nullptr) {
            // The idle blocks may be what is missing: a step's activations, cached, do not fit the
            // evaluation's tensors. Give them all back and ask once more before giving up.
            release_all();
            p = ::operator new(size, std::align_val_t{64}, std::nothrow);
        }
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    void release_all() {
        std::lock_guard<std::mutex> lock(mu);
        for (auto& [size, blocks] : free)
            for (void* p : blocks) ::operator delete(p, std::align_val_t{64});
        free.clear();
        bytes = 0;
    }
    void give(void* p, [[maybe_unused]] std::size_t size) {
#ifndef QKV_SANITIZE_BUILD
        std::lock_guard<std::mutex> lock(mu);
        if (bytes + size <= kCacheLimit) {
            free[size].push_back(p);
            bytes += size;
            return;
        }
#endif
        ::operator delete(p, std::align_val_t{64});
    }
};

// Never destroyed: tensors in static objects may be freed after every other static is gone.
BlockCache& block_cache() {
    static BlockCache* cache = new BlockCache;
    return *cache;
}

// Round up to whole cache lines plus one spare line, so SIMD kernels may read a full vector past
// the last element without leaving the block. Blocks of 64 KiB and more are rounded further, up
// to one of 8 size classes per power of two (at most 12.5% larger), so that tensors whose size
// changes a little from call to call — a key/value cache growing by one position per generated
// token — still find a cached block instead of faulting in fresh pages.
std::size_t padded_size(std::size_t bytes) {
    const std::size_t lines = (bytes + 63) / 64 * 64 + 64;
    if (lines < (std::size_t(1) << 16)) return lines;
    const std::size_t step = std::bit_floor(lines) / 8;
    return (lines + step - 1) / step * step;
}
}  // namespace

// ---- memory statistics --------------------------------------------------------------------------
// Relaxed atomics: every allocation updates them from whatever thread it runs on, and nothing is
// ordered by them. The peak is raised with a compare-exchange loop, so a concurrent allocation
// never lowers it.
namespace {
std::atomic<std::int64_t> g_live_bytes{0}, g_peak_bytes{0}, g_allocations{0}, g_allocated_bytes{0};

void count_allocation(std::int64_t bytes) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    g_allocated_bytes.fetch_add(bytes, std::memory_order_relaxed);
    const std::int64_t live = g_live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
    while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
    }
}
}  // namespace

MemoryStats memory_stats() {
    return {g_live_bytes.load(std::memory_order_relaxed), g_peak_bytes.load(std::memory_order_relaxed),
            g_allocations.load(std::memory_order_relaxed), g_allocated_bytes.load(std::memory_order_relaxed)};
}

void reset_peak_memory() { g_peak_bytes.store(g_live_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed); }

/// \cond INTERNAL
Storage::Storage(std::size_t bytes) : data(block_cache().take(padded_size(bytes))), nbytes(bytes) {
    count_allocation(static_cast<std::int64_t>(bytes));
}

Storage::~Storage() {
    g_live_bytes.fetch_sub(static_cast<std::int64_t>(nbytes), std::memory_order_relaxed);
    block_cache().give(data, padded_size(nbytes));
}
/// \endcond

// ---- element conversion -------------------------------------------------------------------------
// b8 holds 0 or 1, so converting to it is a truth test, like C++'s bool(x) and PyTorch's .bool():
// every nonzero value (NaN included) becomes 1. A plain static_cast would keep 2 as 2, and is
// undefined for values outside 0..255. Every other conversion is static_cast (truncation to ints).

namespace {
template <class D, class S>
D convert(S v) {
    if constexpr (std::is_same_v<D, std::uint8_t>) return v != S(0) ? D(1) : D(0);
    else return static_cast<D>(v);
}
}  // namespace

// ---- accessors ----------------------------------------------------------------------------------

const TensorImpl& Tensor::checked() const {
    if (!impl_) fail("tensor: used an undefined tensor (default-constructed Tensor)");
    return *impl_;
}

const Shape& Tensor::shape() const { return checked().shape; }
std::int64_t Tensor::dim() const { return std::int64_t(checked().shape.size()); }
std::int64_t Tensor::numel() const { return checked().numel; }
DType Tensor::dtype() const { return checked().dtype; }

std::int64_t Tensor::size(std::int64_t d) const {
    return checked().shape[std::size_t(detail::normalize_dim("size", d, dim()))];
}

template <class T>
T* Tensor::data() {
    const auto& impl = checked();
    if (impl.dtype != dtype_of<T>())
        fail("data: tensor is {}, asked for {}", dtype_name(impl.dtype), dtype_name(dtype_of<T>()));
    return static_cast<T*>(impl.storage->data);
}

template <class T>
const T* Tensor::data() const {
    return const_cast<Tensor*>(this)->data<T>();
}

/// \cond INTERNAL
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template std::int32_t* Tensor::data<std::int32_t>();
template std::uint8_t* Tensor::data<std::uint8_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const std::int32_t* Tensor::data<std::int32_t>() const;
template const std::uint8_t* Tensor::data<std::uint8_t>() const;
/// \endcond

void* Tensor::raw_data() { return checked().storage->data; }
const void* Tensor::raw_data() const { return checked().storage->data; }

double Tensor::item() const {
    if (numel() != 1) fail("item: tensor has {} elements {}, expected 1", numel(), shape_str(shape()));
    return detail::visit_all(dtype(), [&]<class T>(T) { return double(data<T>()[0]); });
}

namespace {
// Flat offset of a multi-index, with bounds checks and negative indices.
std::int64_t flat_index(const char* op, const Shape& shape, std::initializer_list<std::int64_t> index) {
    if (index.size() != shape.size())
        fail("{}: got {} indices for a tensor of shape {}", op, index.size(), shape_str(shape));
    std::int64_t off = 0;
    std::size_t d = 0;
    for (auto i : index) {
        const auto n = shape[d];
        if (i < -n || i >= n) fail("{}: index {} out of range for dim {} of size {}", op, i, d, n);
        off = off * n + (i < 0 ? i + n : i);
        ++d;
    }
    return off;
}
}  // namespace

double Tensor::at(std::initializer_list<std::int64_t> index) const {
    const auto off = flat_index("at", shape(), index);
    return detail::visit_all(dtype(), [&]<class T>(T) { return double(data<T>()[off]); });
}

void Tensor::set(std::initializer_list<std::int64_t> index, double value) {
    const auto off = flat_index("set", shape(), index);
    detail::visit_all(dtype(), [&]<class T>(T) { data<T>()[off] = convert<T>(value); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
    std::vector<T> out(static_cast<std::size_t>(numel()));
    detail::visit_all(dtype(), [&]<class S>(S) {
        const S* p = data<S>();
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
    });
    return out;
}
/// \cond INTERNAL
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int32_t> Tensor::to_vector<std::int32_t>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<std::uint8_t> Tensor::to_vector<std::uint8_t>() const;
/// \endcond

Tensor Tensor::to(DType target) const {
    Tensor out = empty(shape(), target);
    detail::visit_all(dtype(), [&]<class S>(S) {
        detail::visit_all(target, [&]<class D>(D) {
            const S* src = data<S>();
            D* dst = out.data<D>();
            for (std::int64_t i = 0; i < numel(); ++i) dst[i] = convert<D>(src[i]);
        });
    });
    return out;
}

Tensor Tensor::clone() const {
    Tensor out = empty(shape(), dtype());
    std::memcpy(out.raw_data(), raw_data(), std::size_t(numel()) * dtype_size(dtype()));
    return out;
}

bool Tensor::shares_storage(const Tensor& other) const {
    return checked().storage == other.checked().storage;
}

// ---- autograd accessors ---------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked().requires_grad; }
bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked().grad_fn; }
Tensor Tensor::grad() const { return checked().grad; }

Tensor& Tensor::requires_grad_(bool on) {
    checked();
    if (!is_leaf())
        fail("requires_grad_: only leaf tensors can be marked; this one was produced by '{}'",
             impl_->grad_fn->op->name);
    if (on && !is_floating(dtype()))
        fail("requires_grad_: only f32/f64 tensors can require gradients, got {}", dtype_name(dtype()));
    impl_->requires_grad = on;
    return *this;
}

void Tensor::set_grad(const Tensor& g) {
    checked();
    if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
        fail("set_grad: gradient {} {} does not match tensor {} {}", shape_str(g.shape()),
             dtype_name(g.dtype()), shape_str(shape()), dtype_name(dtype()));
    impl_->grad = g;
}

void Tensor::zero_grad() {
    auto& g = checked().grad;
    if (g.defined()) std::memset(const_cast<Tensor&>(g).raw_data(), 0, std::size_t(g.numel()) * dtype_size(g.dtype()));
}

Tensor Tensor::detach() const {
    const auto& src = checked();
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = src.shape;
    impl->dtype = src.dtype;
    impl->numel = src.numel;
    impl->storage = src.storage;
    return Tensor(std::move(impl));
}

// ---- creation -------------------------------------------------------------------------------

Tensor empty(const Shape& shape, DType dtype) {
    for (auto s : shape)
        if (s < 0) fail("empty: negative dimension in shape {}", shape_str(shape));
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = shape;
    impl->dtype = dtype;
    impl->numel = shape_numel(shape, "empty");
    // numel ≤ 2^60 and an element is at most 8 bytes, so the product cannot overflow.
    const std::size_t bytes = std::size_t(impl->numel) * dtype_size(dtype);
    try {
        impl->storage = std::make_shared<Storage>(bytes);
    } catch (const std::bad_alloc&) {
        throw OutOfMemory(fmt::format("empty: out of memory: cannot allocate {} for a tensor of shape {} ({}); "
                                      "make it smaller, or free memory",
                                      format_bytes(double(bytes)), shape_str(shape), dtype_name(dtype)),
                          bytes);
    }
    return Tensor(std::move(impl));
}

Tensor full(const Shape& shape, double value, DType dtype) {
    Tensor t = empty(shape, dtype);
    detail::visit_all(dtype, [&]<class T>(T) {
        T* p = t.data<T>();
        const T v = convert<T>(value);
        for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = v;
    });
    return t;
}

Tensor zeros(const Shape& shape, DType dtype) {
    Tensor t = empty(shape, dtype);
    std::memset(t.raw_data(), 0, std::size_t(t.numel()) * dtype_size(dtype));
    return t;
}

Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }
Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }

Tensor arange(std::int64_t n, DType dtype) {
    if (n < 0) fail("arange: n must be >= 0, got {}", n);
    return arange(0.0, double(n), 1.0, dtype);
}

Tensor arange(double start, double end, double step, DType dtype) {
    // A range of truth values means nothing (0, 1, 1, 1, ...), so b8 is refused, as in PyTorch.
    if (dtype == b8) fail("arange: dtype must be f32, f64 or i32, got b8 (b8 holds only 0 or 1)");
    if (step == 0) fail("arange: step must be non-zero");
    const double count = std::ceil((end - start) / step);
    // NaN or infinite bounds make count NaN or infinite, and converting that to an integer is
    // undefined; so is storing a value outside int32's range in an i32 element.
    if (!(std::isfinite(count) && count < 1e15))
        fail("arange: [{}, {}) in steps of {} does not give a finite, storable number of elements", start, end, step);
    const auto n = std::int64_t(count > 0 ? count : 0);
    if (dtype == i32 && n > 0)
        for (const double v : {start, start + double(n - 1) * step})
            if (!(v > -2147483649.0 && v < 2147483648.0))
                fail("arange: value {} does not fit in i32 (range [{}, {}) in steps of {})", v, start, end, step);
    Tensor t = empty({n}, dtype);
    detail::visit_all(dtype, [&]<class T>(T) {
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + double(i) * step);
    });
    return t;
}

template <class T>
Tensor from(const std::vector<T>& values, const Shape& shape) {
    const std::int64_t n = shape_numel(shape, "from");
    if (std::int64_t(values.size()) != n)
        fail("from: {} values do not fill shape {} ({} elements)", values.size(), shape_str(shape), n);
    using E = std::conditional_t<std::is_same_v<T, bool>, std::uint8_t, T>;
    Tensor t = empty(shape, dtype_of<E>());
    E* p = t.data<E>();
    // T(values[i]): a std::vector<bool> hands out proxy references, not bools (libc++'s proxy
    // cannot even be compared with 0), so the element is read as a T first.
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = convert<E>(T(values[i]));  // uint8 2 → b8 1
    return t;
}
/// \cond INTERNAL
template Tensor from(const std::vector<float>&, const Shape&);
template Tensor from(const std::vector<double>&, const Shape&);
template Tensor from(const std::vector<std::int32_t>&, const Shape&);
template Tensor from(const std::vector<std::uint8_t>&, const Shape&);
template Tensor from(const std::vector<bool>&, const Shape&);
/// \endcond

Tensor from(std::initializer_list<double> values, const Shape& shape, DType dtype) {
    return from(std::vector<double>(values), shape).to(dtype);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
    detail::check_floating("randn", dtype);
    Tensor t = empty(shape, dtype);
    detail::visit_float(dtype, "randn", [&]<class T>(T) {
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(gen.normal());
    });
    return t;
}

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype) {
    if (!(low < high)) fail("uniform: need low < high, got [{}, {})", low, high);
    Tensor t = empty(shape, dtype);
    detail::visit_float(dtype, "uniform", [&]<class T>(T) {
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < t.numel(); ++i)
            p[i] = static_cast<T>(low + (high - low) * gen.uniform());
    });
    return t;
}

}  // namespace qkv
