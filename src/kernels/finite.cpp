/// \file
/// \brief The scans of kernels/finite.hpp: a vectorised test of each block, then the exact index.
///
/// A reader learns here how to make a check cheap enough to run on every tensor: do not ask "where
/// is the first bad element?" element by element (a branch per element stops vectorisation), but
/// "is there a bad element in these 1024?" — an OR over a branch-free test — and only for the one
/// block that says yes, look for the index.
#include "kernels/finite.hpp"

#include <algorithm>
#include <bit>

#include "kernels/vec.hpp"

namespace qkv::kernels {

namespace {

constexpr std::int64_t kBlock = 1024;

// All exponent bits set: NaN or ±∞ (the sign and the mantissa do not matter).
QKV_CLONES bool any_non_finite_f32(const float* p, std::int64_t n) {
    std::uint32_t any = 0;
    for (std::int64_t i = 0; i < n; ++i) any |= (std::bit_cast<std::uint32_t>(p[i]) & 0x7F800000u) == 0x7F800000u;
    return any != 0;
}

QKV_CLONES bool any_non_finite_f64(const double* p, std::int64_t n) {
    std::uint64_t any = 0;
    constexpr std::uint64_t kExp = 0x7FF0000000000000ull;
    for (std::int64_t i = 0; i < n; ++i) any |= (std::bit_cast<std::uint64_t>(p[i]) & kExp) == kExp;
    return any != 0;
}

template <class T, class AnyFn>
std::int64_t first_in_blocks(const T* p, std::int64_t n, AnyFn any) {
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t len = std::min(kBlock, n - start);
        if (!any(p + start, len)) continue;
        for (std::int64_t i = start; i < start + len; ++i)
            if (!std::isfinite(p[i])) return i;
    }
    return -1;
}

}  // namespace

std::int64_t first_non_finite(const float* p, std::int64_t n) { return first_in_blocks(p, n, any_non_finite_f32); }
std::int64_t first_non_finite(const double* p, std::int64_t n) { return first_in_blocks(p, n, any_non_finite_f64); }

}  // namespace qkv::kernels
