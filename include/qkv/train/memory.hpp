/// \file
/// \brief How much memory training a GPT takes, how much the machine has, and a clear error
/// instead of `std::bad_alloc` (or the kernel's OOM killer) when it does not fit.
///
/// A reader learns here where a training run's memory goes. Every weight is stored once, its
/// gradient once more, and AdamW keeps two running moments per weight: four copies of the model
/// before a single activation. Then the forward pass keeps, for every layer and every token of the
/// batch, the intermediate values its backward will need — about thirty numbers per channel, plus
/// the attention weights, T per head. Estimating this *before* allocating lets qkv refuse a model
/// that cannot fit with a message that says how much it needs, instead of being killed half-way.
///
/// The training loops (TaskTrainer, and any other) call check_fits_in_memory() before they build a
/// model, and turn a failed allocation later on into the same kind of message with
/// out_of_memory_error().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qkv/error.hpp"
#include "qkv/nn/transformer.hpp"

namespace qkv {

/// \brief The memory one training step of a model needs, in bytes, by what it is for.
struct MemoryEstimate {
    double parameters = 0;   ///< the weights
    double gradients = 0;    ///< one gradient per weight
    double optimizer = 0;    ///< AdamW's two moment estimates per weight
    double activations = 0;  ///< what the forward pass keeps for the backward (an estimate)
    double data = 0;         ///< what the loop keeps besides the model (TaskTrainer: its held-out set)
    /// \brief Everything together.
    /// \return the sum of the parts, in bytes
    double total() const { return parameters + gradients + optimizer + activations + data; }
    /// \brief The parts as text for messages: "parameters 48 GiB, gradients 48 GiB, ...".
    /// \return the non-zero parts with their sizes
    std::string breakdown() const;
};

/// \brief Estimate the memory of training a GPT with AdamW on batches of \p batch sequences of \p tokens
/// tokens. Parameters, gradients and optimizer state are exact; activations are estimated from the
/// shapes a step keeps (about 30·C + 3·H·T values per token and layer, and 4·V per token for the
/// logits), measured on qkv's own models to within a few tens of percent — the process itself peaks
/// higher, because freed blocks are kept for reuse.
/// \param model the model's settings
/// \param batch sequences per step
/// \param tokens tokens per sequence (T)
/// \param dtype f32 or f64 (the size of every number above)
/// \param extra bytes the loop keeps besides the model (e.g. its held-out set)
/// \return the estimate
MemoryEstimate estimate_training_memory(const nn::GPTConfig& model, std::int64_t batch, std::int64_t tokens,
                                        DType dtype, double extra = 0);

/// \brief How much memory this process may still use, and what limits it.
struct AvailableMemory {
    double bytes = 0;    ///< the smallest of the limits found
    std::string source;  ///< which limit that is, for messages ("MemAvailable + SwapFree in /proc/meminfo", ...)
};

/// \brief The memory this process can still get: the smallest of the memory the kernel reports
/// available (MemAvailable + SwapFree), the cgroup's limit (memory.max − memory.current), the
/// process's RLIMIT_AS and RLIMIT_DATA, and the environment variable `QKV_MEMORY_LIMIT` (bytes, or a
/// number with K, M, G or T: "16G"), which lets a user hold qkv to less than the machine has.
/// \return the limit, or nothing when none is known (not Linux, and no QKV_MEMORY_LIMIT)
std::optional<AvailableMemory> available_memory();

/// \brief Throw qkv::OutOfMemory, before anything is allocated, when \p need exceeds
/// available_memory(): "<who>: this model needs about 61 GiB to train (parameters ..., ...), but
/// only 21 GiB is available (...): make it smaller — fewer layers, a smaller dim or batch".
/// \param need the estimate
/// \param who the function or command, to start the message with
/// \param what_to_change the settings a user can change, in their words (e.g. "--dim, --layers or --batch")
void check_fits_in_memory(const MemoryEstimate& need, std::string_view who,
                          std::string_view what_to_change = "fewer layers, a smaller dim or batch");

/// \brief The error to throw when an allocation failed anyway (the estimate is not exact, and
/// other programs take memory too): qkv::OutOfMemory naming what the model needs and what is
/// available. Catch `std::bad_alloc` (and qkv::OutOfMemory) around building and training a model
/// and throw this instead.
/// \param need the estimate
/// \param who the function or command, to start the message with
/// \param what_to_change the settings a user can change
/// \return the exception to throw
OutOfMemory out_of_memory_error(const MemoryEstimate& need, std::string_view who,
                                std::string_view what_to_change = "fewer layers, a smaller dim or batch");

}  // namespace qkv
