/// \file
/// \brief qkv::Tensor: an n-dimensional array that remembers how it was computed.
///
/// A reader learns here what a tensor is in a deep-learning framework: a *handle* (cheap to copy)
/// to a shape, a dtype and a block of contiguous row-major memory shared between handles, plus the
/// autograd bookkeeping (does it require a gradient, which node produced it, its accumulated
/// gradient). Creation functions (`zeros`, `arange`, `from`, `randn`, ...) live here too; the
/// differentiable functions on tensors are in ops.hpp and the graph machinery in autograd.hpp.
///
/// Row-major means the last index moves fastest: element (i, j) of a (R, C) tensor sits at offset
/// i·C + j. Every tensor in qkv is contiguous, so a reshape is free (it shares the memory) while
/// transposes and slices copy; the docs of each op say which.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qkv/error.hpp"
#include "qkv/core/generator.hpp"

namespace qkv {

/// Element types. Floating types carry gradients; `i32` holds token ids and class targets, `b8`
/// holds boolean masks (one byte per element, 0 or 1).
enum class DType : std::uint8_t {
    f32,  ///< 32-bit float: the default, the fast path
    f64,  ///< 64-bit float: exact enough for finite-difference gradient checks
    i32,  ///< 32-bit signed integer: token ids, class targets, indices
    b8,   ///< boolean stored in one byte: masks
};

inline constexpr DType f32 = DType::f32;  ///< shorthand for DType::f32
inline constexpr DType f64 = DType::f64;  ///< shorthand for DType::f64
inline constexpr DType i32 = DType::i32;  ///< shorthand for DType::i32
inline constexpr DType b8 = DType::b8;    ///< shorthand for DType::b8

/// \brief Name of a dtype as printed in messages ("f32", "f64", "i32", "b8").
/// \param dtype the dtype
/// \return the name, for example "f32"
std::string_view dtype_name(DType dtype);
/// \brief Bytes per element.
/// \param dtype the dtype
/// \return the size of one element in bytes (4, 8, 4 or 1)
std::size_t dtype_size(DType dtype);
/// \brief True for f32 and f64.
/// \param dtype the dtype
/// \return whether \p dtype is f32 or f64
constexpr bool is_floating(DType dtype) { return dtype == DType::f32 || dtype == DType::f64; }

/// \brief The dtype of the C++ element type \p T: `float` → f32, `double` → f64, `std::int32_t` →
/// i32, `std::uint8_t` or `bool` → b8 (any other type fails to compile).
/// \tparam T `float`, `double`, `std::int32_t`, `std::uint8_t` or `bool`
/// \return the dtype whose elements are \p T (f32, f64, i32 or b8)
template <class T>
constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>) return DType::f32;
    else if constexpr (std::is_same_v<T, double>) return DType::f64;
    else if constexpr (std::is_same_v<T, std::int32_t>) return DType::i32;
    else if constexpr (std::is_same_v<T, std::uint8_t> || std::is_same_v<T, bool>) return DType::b8;
    else static_assert(sizeof(T) == 0, "qkv: unsupported element type");
}

/// A shape: the size of each dimension, outermost first. `{}` is a 0-d tensor (a scalar).
using Shape = std::vector<std::int64_t>;

/// \brief A size in bytes as people read it, for messages: "512 B", "1.5 KiB", "61.3 GiB".
/// \param bytes the size
/// \return the size with a binary unit, three significant digits
std::string format_bytes(double bytes);

/// \brief Read a decimal number at the start of `s`, as `strtod` does in the classic "C" locale.
///
/// Checkpoint metadata, flags and limits hold numbers as text; this reads them the same way on every
/// toolchain and whatever locale a program chose ("0.5" never depends on a decimal comma). It exists
/// because `std::from_chars` for floating point is missing from the libc++ of clang 14 (and of older
/// Xcodes); like it, it rounds correctly (fmt's shortest output reads back to the same bits).
/// \param s the text; leading spaces are not skipped
/// \param value set to the number read (unchanged when there is none)
/// \return how many characters of `s` the number used: 0 when `s` does not start with one
std::size_t parse_double_prefix(std::string_view s, double& value);

/// \brief Format a shape as "(2,3)" (and "()" for a scalar) for messages.
/// \param shape the shape
/// \return the shape as text, for example "(2,3)"
std::string shape_str(const Shape& shape);
/// \brief The most elements a tensor may have: \f$ 2^{60} \f$, so that its size in bytes, for
/// every dtype, fits in a signed 64-bit integer and no size computed from a valid shape can overflow.
inline constexpr std::int64_t kMaxNumel = std::int64_t(1) << 60;

/// \brief Number of elements of a shape (1 for `{}`), with the arithmetic checked: the sizes come
/// from files, flags and callers, and a product that wrapped around would allocate too little and
/// let later writes run past the end. Throws qkv::Error naming \p op and the shape when a size is
/// negative or the product of the nonzero sizes exceeds kMaxNumel (checked_numel() does not throw).
/// \param shape the shape
/// \param op the function asking, for the error message
/// \return the product of the sizes (1 for a scalar)
std::int64_t shape_numel(const Shape& shape, std::string_view op = "shape_numel");
/// \brief The number of elements of \p shape, or -1 when a size is negative or the product of the
/// nonzero sizes exceeds kMaxNumel (the shape no tensor can have). Never overflows.
/// \param shape the shape
/// \return the product of the sizes (1 for a scalar), or -1
std::int64_t checked_numel(const Shape& shape);

struct Node;
struct TensorImpl;

/// \brief An n-dimensional array with autograd. Copying a Tensor copies the *handle*: both copies
/// see the same data and the same gradient (like `torch.Tensor`). Use clone() for a deep copy.
///
/// A default-constructed Tensor is *undefined* (no data); defined() tells. Most functions throw
/// qkv::Error when given an undefined tensor.
class Tensor {
public:
    /// An undefined tensor.
    Tensor() = default;

    // ---- what it is ------------------------------------------------------------------------
    /// \brief True when this handle refers to data.
    /// \return whether this handle refers to data
    bool defined() const { return impl_ != nullptr; }
    /// \brief The shape, outermost dimension first.
    /// \return the size of each dimension, outermost first
    const Shape& shape() const;
    /// \brief Number of dimensions (0 for a scalar).
    /// \return the number of dimensions
    std::int64_t dim() const;
    /// \brief Size of dimension \p d; negative \p d counts from the end (-1 is the last).
    /// \param d the dimension
    /// \return the size of dimension \p d
    std::int64_t size(std::int64_t d) const;
    /// \brief Number of elements.
    /// \return the product of the sizes (1 for a scalar)
    std::int64_t numel() const;
    /// \brief Element type.
    /// \return the dtype of the elements
    DType dtype() const;

    // ---- the data --------------------------------------------------------------------------
    /// \brief Typed pointer to the first element. Throws qkv::Error if T does not match dtype().
    /// \tparam T the element type; must match dtype()
    /// \return a pointer to the first of numel() contiguous elements, row-major
    template <class T>
    T* data();
    /// \brief Read-only typed pointer to the first element. Throws if T does not match dtype().
    /// \tparam T the element type; must match dtype()
    /// \return a read-only pointer to the first of numel() contiguous elements, row-major
    template <class T>
    const T* data() const;
    /// \brief Untyped pointer to the first element.
    /// \return a pointer to the first byte of the elements
    void* raw_data();
    /// \brief Untyped read-only pointer to the first element.
    /// \return a read-only pointer to the first byte of the elements
    const void* raw_data() const;
    /// \brief The value of a one-element tensor, as double. Throws if numel() != 1.
    /// \return the single element, converted to double
    double item() const;
    /// \brief Element at a multi-index, as double (bounds-checked; slow, for inspection).
    /// \param index one index per dimension; negative indices count from the end
    /// \return the element at \p index, converted to double
    double at(std::initializer_list<std::int64_t> index) const;
    /// \brief Set the element at a multi-index (bounds-checked). Writes through to every handle
    /// that shares this storage; do not modify tensors a recorded graph still needs.
    /// \param index one index per dimension
    /// \param value the new value (converted to the dtype; for b8, nonzero becomes 1)
    void set(std::initializer_list<std::int64_t> index, double value);
    /// \brief All elements, row-major, converted to T.
    /// \tparam T the element type of the result (each element is converted with `static_cast`)
    /// \return the numel() elements in row-major order
    template <class T>
    std::vector<T> to_vector() const;
    /// \brief A copy converted to another dtype. The copy has no autograd history (it is a new
    /// leaf); float↔int conversion truncates toward zero, and conversion to b8 is a truth test:
    /// every nonzero value (NaN included) becomes 1, as with PyTorch's `.bool()`.
    /// \param dtype target dtype
    /// \return a new leaf tensor with the same shape and values converted to \p dtype
    Tensor to(DType dtype) const;
    /// \brief A deep copy of the data, with no autograd history.
    /// \return a new leaf tensor with the same shape and dtype and its own copy of the data
    Tensor clone() const;
    /// \brief True when both handles share the same storage (for example after reshape()).
    /// \param other the other tensor
    /// \return whether this tensor and \p other use the same block of memory
    bool shares_storage(const Tensor& other) const;

    // ---- autograd --------------------------------------------------------------------------
    /// \brief True when gradients flow to (or through) this tensor.
    /// \return whether this tensor requires gradients
    bool requires_grad() const;
    /// \brief Mark a leaf as a parameter (or unmark it). Throws on non-leaf tensors and on
    /// integer/boolean dtypes. Returns *this so it chains: `auto w = randn({3}, g).requires_grad_();`
    /// \param on whether to require gradients
    /// \return *this
    Tensor& requires_grad_(bool on = true);
    /// \brief True for tensors not produced by a recorded op (created by the user, or detached).
    /// \return whether this tensor has no grad_fn()
    bool is_leaf() const;
    /// \brief The accumulated gradient dL/d(this) of a leaf after backward(); undefined before.
    /// \return the gradient (this tensor's shape and dtype), or an undefined tensor if none yet
    Tensor grad() const;
    /// \brief Replace the stored gradient (optimizers and tests use this). Shape and dtype must match.
    /// \param grad the new gradient (or an undefined tensor to clear it)
    void set_grad(const Tensor& grad);
    /// Fill the stored gradient with zeros (keeps the buffer, so no allocation next step).
    void zero_grad();
    /// \brief Backpropagate from this scalar: computes dL/dx for every leaf x that requires grad
    /// and *adds* it to x.grad(). Throws if this tensor is not a one-element tensor.
    ///
    /// As in PyTorch, a backward pass frees what each node saved for it as soon as the node has run,
    /// so a second backward through the same graph is an error ("... a second time"), not a silent
    /// doubling of the gradients. Pass \p retain_graph = true to keep the graph for another backward;
    /// gradients then accumulate (+=) into x.grad(), as every backward does.
    /// \param retain_graph keep the saved values, so that backward may run through this graph again
    void backward(bool retain_graph = false) const;
    /// \brief Backpropagate with an explicit upstream gradient dL/d(this) of the same shape.
    /// \param grad_output the upstream gradient
    /// \param retain_graph keep the graph for another backward (see backward(bool))
    void backward(const Tensor& grad_output, bool retain_graph = false) const;
    /// \brief A handle to the same data with no autograd history (a new leaf, requires_grad false).
    /// \return a new leaf handle sharing this tensor's storage
    Tensor detach() const;
    /// \brief The node that produced this tensor (null for leaves).
    /// \return the producing node, or null for a leaf
    const std::shared_ptr<Node>& grad_fn() const;

    /// \cond INTERNAL
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    /// \endcond

private:
    const TensorImpl& checked() const;
    std::shared_ptr<TensorImpl> impl_;
};

/// \cond INTERNAL
/// A block of 64-byte-aligned memory (aligned so SIMD loads never straddle cache lines).
struct Storage {
    explicit Storage(std::size_t nbytes);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    void* data = nullptr;
    std::size_t nbytes = 0;
};

/// What a Tensor handle points at.
struct TensorImpl {
    Shape shape;
    DType dtype = DType::f32;
    std::int64_t numel = 0;
    std::shared_ptr<Storage> storage;
    bool requires_grad = false;
    std::shared_ptr<Node> grad_fn;  // the op that produced this tensor; null for leaves
    Tensor grad;                    // accumulated gradient of a leaf
};
/// \endcond

// ---- creation -----------------------------------------------------------------------------

/// \brief A tensor with uninitialised contents (fast; fill it before reading).
/// \param shape its shape
/// \param dtype element type
/// \return a new tensor of shape \p shape whose elements are unspecified
Tensor empty(const Shape& shape, DType dtype = f32);
/// \brief All zeros.
/// \param shape its shape
/// \param dtype element type
/// \return a new tensor of shape \p shape filled with 0
Tensor zeros(const Shape& shape, DType dtype = f32);
/// \brief All ones.
/// \param shape its shape
/// \param dtype element type
/// \return a new tensor of shape \p shape filled with 1
Tensor ones(const Shape& shape, DType dtype = f32);
/// \brief Every element equal to \p value.
/// \param shape its shape
/// \param value the fill value (for b8, nonzero becomes 1)
/// \param dtype element type
/// \return a new tensor of shape \p shape filled with \p value
Tensor full(const Shape& shape, double value, DType dtype = f32);
/// \brief A 0-d tensor holding one value.
/// \param value the value
/// \param dtype element type
/// \return a 0-d tensor (shape `{}`) holding \p value
Tensor scalar(double value, DType dtype = f32);
/// \brief Zeros with the shape and dtype of \p like.
/// \param like the tensor whose shape and dtype to copy
/// \return a new tensor of like.shape() filled with 0
Tensor zeros_like(const Tensor& like);
/// \brief Ones with the shape and dtype of \p like.
/// \param like the tensor whose shape and dtype to copy
/// \return a new tensor of like.shape() filled with 1
Tensor ones_like(const Tensor& like);
/// \brief 0, 1, ..., n-1 as a 1-D tensor.
/// \param n number of elements (≥ 0)
/// \param dtype element type: f32, f64 or i32 (b8 throws qkv::Error)
/// \return the values 0 … n-1 (n)
Tensor arange(std::int64_t n, DType dtype = f32);
/// \brief start, start+step, ... up to but excluding end (like Python's range, for floats too).
/// Throws qkv::Error when the bounds are not finite or, for i32, a value does not fit in 32 bits.
/// \param start first value
/// \param end bound (excluded)
/// \param step increment (non-zero)
/// \param dtype element type: f32, f64 or i32 (b8 throws qkv::Error)
/// \return the values start + i·step for i = 0 … n-1 (n), where
/// \f$ n = \max(0, \lceil (\mathrm{end} - \mathrm{start}) / \mathrm{step} \rceil) \f$
Tensor arange(double start, double end, double step, DType dtype = f32);
/// \brief A tensor from values in row-major order; dtype follows T (float→f32, double→f64,
/// int32→i32, uint8/bool→b8; a nonzero uint8 becomes 1, as b8 holds only 0 or 1). Throws if
/// values.size() differs from the shape's element count.
/// \param values the elements
/// \param shape their shape
/// \tparam T `float`, `double`, `std::int32_t`, `std::uint8_t` or `bool`
/// \return a new tensor of shape \p shape holding a copy of \p values
template <class T>
Tensor from(const std::vector<T>& values, const Shape& shape);
/// \brief A tensor from a brace list: `from({1, 2, 3, 4}, {2, 2})`.
/// \param values the elements, row-major
/// \param shape their shape
/// \param dtype element type
/// \return a new tensor of shape \p shape holding \p values converted to \p dtype
Tensor from(std::initializer_list<double> values, const Shape& shape, DType dtype = f32);
/// \brief Samples of the standard normal distribution N(0, 1), drawn from \p gen.
/// \param shape its shape
/// \param gen the random generator (advanced by numel draws)
/// \param dtype f32 or f64
/// \return a new tensor of shape \p shape of independent N(0, 1) samples
Tensor randn(const Shape& shape, Generator& gen, DType dtype = f32);
/// \brief Samples of the uniform distribution on [low, high), drawn from \p gen.
/// \param shape its shape
/// \param low lower bound
/// \param high upper bound (> low)
/// \param gen the random generator
/// \param dtype f32 or f64
/// \return a new tensor of shape \p shape of independent samples from [low, high)
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype = f32);

/// \brief The tensor as text, PyTorch style: nested brackets, aligned columns, and "..." in the
/// middle of dimensions longer than 6 when the tensor has more than 1000 elements.
/// \param t the tensor
/// \return the text, "tensor(...)" without a trailing newline
std::string to_string(const Tensor& t);

/// \brief How much tensor memory is in use: what memory_stats() reports.
///
/// Counts the bytes of tensor data (Storage blocks) alive at once, as requested — not the
/// allocator's padding, and not scratch memory outside tensors — which is what decides whether a
/// model fits: the parameters, their gradients and optimizer state, and every activation a backward
/// pass keeps. The peak is the largest value since the program started or since reset_peak_memory().
struct MemoryStats {
    std::int64_t live_bytes = 0;   ///< bytes of tensor data alive now
    std::int64_t peak_bytes = 0;   ///< the largest live_bytes seen since the last reset
    std::int64_t allocations = 0;  ///< tensor data blocks allocated so far (never reset)
    std::int64_t allocated_bytes = 0;  ///< bytes of all those blocks together (never reset)
};

/// \brief Tensor memory in use now, its peak, and the number of allocations (all threads).
/// \return the current statistics
MemoryStats memory_stats();

/// \brief Start a new peak: set MemoryStats::peak_bytes to the bytes alive now.
void reset_peak_memory();

/// A tensor with a name: a parameter ("blocks.0.attn.qkv_proj.weight"), an optimizer buffer or a
/// checkpoint entry. Modules, optimizers and checkpoints all speak in lists of these.
using NamedTensor = std::pair<std::string, Tensor>;

}  // namespace qkv

/// fmt support: `fmt::print("{}", t)` prints to_string(t).
template <>
struct fmt::formatter<qkv::Tensor> : fmt::formatter<std::string_view> {
    /// \brief Format a tensor with the default layout.
    /// \param t the tensor
    /// \param ctx fmt's output context
    /// \return the output iterator past the written text
    auto format(const qkv::Tensor& t, fmt::format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(qkv::to_string(t), ctx);
    }
};
