/// \file
/// \brief Private helpers of the core and the ops: dtype dispatch and argument checks.
///
/// Not installed and not part of the API. Read it to see how a runtime dtype becomes a
/// compile-time element type (one lambda, instantiated for float and double), and the checks
/// every op runs on its arguments before touching memory.
#pragma once

#include <cstdint>

#include "qkv/core/tensor.hpp"

namespace qkv::detail {

// ---- dtype dispatch -----------------------------------------------------------------------------
// `visit_float(dt, "tanh", [&]<class T>(T) { ... })` runs the lambda with T = float or double.
// The lambda takes a dummy argument of type T so the compiler can deduce T.

template <class F>
decltype(auto) visit_float(DType dtype, const char* op, F&& f) {
    switch (dtype) {
        case DType::f32: return f(float{});
        case DType::f64: return f(double{});
        default: fail("{}: expected a floating-point tensor (f32 or f64), got {}", op, dtype_name(dtype));
    }
}

template <class F>
decltype(auto) visit_all(DType dtype, F&& f) {
    switch (dtype) {
        case DType::f32: return f(float{});
        case DType::f64: return f(double{});
        case DType::i32: return f(std::int32_t{});
        case DType::b8: return f(std::uint8_t{});
    }
    fail("internal: unknown dtype");
}

// ---- argument checks ------------------------------------------------------------------------

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
    if (!t.defined()) fail("{}: {} is an undefined tensor", op, what);
}

inline void check_floating(const char* op, DType dtype) {
    if (!is_floating(dtype))
        fail("{}: expected a floating-point tensor (f32 or f64), got {}", op, dtype_name(dtype));
}

inline void check_float_tensor(const char* op, const Tensor& t, const char* what = "input") {
    check_defined(op, t, what);
    if (!is_floating(t.dtype()))
        fail("{}: {} must be f32 or f64, got {} {}", op, what, dtype_name(t.dtype()), shape_str(t.shape()));
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype())
        fail("{}: dtypes differ: {} {} and {} {} (convert one with .to())", op, dtype_name(a.dtype()),
             shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
}

/// Map a possibly negative dim into [0, ndim); throws with the op's name when out of range.
inline std::int64_t normalize_dim(const char* op, std::int64_t d, std::int64_t ndim) {
    if (d < -ndim || d >= ndim || ndim == 0)
        fail("{}: dim {} out of range for a tensor with {} dims", op, d, ndim);
    return d < 0 ? d + ndim : d;
}

}  // namespace qkv::detail
