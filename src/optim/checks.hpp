/// \file
/// \brief Internal helpers shared by the optimizer sources: hyper-parameter checks.
///
/// Every hyper-parameter is checked with a comparison that is *false* for NaN (`!(x >= 0)`), so a
/// NaN learning rate is rejected with the same message as a negative one instead of silently
/// turning every weight into NaN one step later.
#pragma once

#include <cmath>
#include <string_view>

#include "qkv/error.hpp"

namespace qkv::optim::detail {

/// \brief Throw unless \p value is finite and ≥ 0.
/// \param who the optimizer (or schedule), to start the message with
/// \param what the hyper-parameter's name
/// \param value its value
inline void check_non_negative(std::string_view who, std::string_view what, double value) {
    if (!(value >= 0.0) || !std::isfinite(value)) fail("{}: {} must be a finite number >= 0, got {}", who, what, value);
}

/// \brief Throw unless \p value lies in [0, 1) — the range of Adam's betas.
/// \param who the optimizer, to start the message with
/// \param what the hyper-parameter's name
/// \param value its value
inline void check_beta(std::string_view who, std::string_view what, double value) {
    if (!(value >= 0.0 && value < 1.0)) fail("{}: {} must be in [0, 1), got {}", who, what, value);
}

}  // namespace qkv::optim::detail
