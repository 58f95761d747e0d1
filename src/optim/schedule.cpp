/// \file
/// \brief Learning-rate schedules: constant, and linear warmup followed by cosine decay.
///
/// A reader learns here that the learning rate is usually not a constant: it starts small (so the
/// first updates, made with noisy optimizer statistics, cannot wreck the initial weights), rises
/// to its peak, then decays along a half cosine — fast in the middle, gently at both ends — to a
/// floor where the model settles into a minimum.
#include <cmath>
#include <numbers>

#include "checks.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::optim {

double ConstantLR::lr_at(std::int64_t step) const {
    detail::check_non_negative("ConstantLR", "lr", lr);
    if (step < 0) fail("ConstantLR: step must be >= 0, got {}", step);
    return lr;
}

// -------------------------------------------------------------------------------------------------
// lr(s) = η (s + 1)/W                                         s < W
//       = η_min + ½(η − η_min)(1 + cos(π (s − W)/(S − W)))     W ≤ s < S
//       = η_min                                               s ≥ S
double WarmupCosineLR::lr_at(std::int64_t step) const {
    detail::check_non_negative("WarmupCosineLR", "peak_lr", peak_lr);
    detail::check_non_negative("WarmupCosineLR", "min_lr", min_lr);
    if (min_lr > peak_lr) fail("WarmupCosineLR: min_lr {} is above peak_lr {}", min_lr, peak_lr);
    if (warmup_steps < 0 || total_steps < warmup_steps)
        fail("WarmupCosineLR: need 0 <= warmup_steps <= total_steps, got warmup_steps {} and total_steps {}",
             warmup_steps, total_steps);
    if (step < 0) fail("WarmupCosineLR: step must be >= 0, got {}", step);

    if (step < warmup_steps) return peak_lr * double(step + 1) / double(warmup_steps);
    if (step >= total_steps) return min_lr;
    const double progress = double(step - warmup_steps) / double(total_steps - warmup_steps);  // in [0, 1)
    return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace qkv::optim
