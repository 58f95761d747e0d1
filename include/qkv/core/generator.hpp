/// \file
/// \brief qkv::Generator: the seedable random number generator behind every random tensor.
///
/// Reproducibility is a feature: the same seed gives the same weights, the same batches and the
/// same loss curve, bit for bit, on the same machine. qkv never uses a hidden global seed — every
/// random function takes a Generator. It is xoshiro256** (Blackman & Vigna), seeded through
/// splitmix64, with normals from the Box–Muller transform. Its state can be saved and restored,
/// which is how a resumed training run continues exactly where it stopped.
#pragma once

#include <array>
#include <cstdint>

namespace qkv {

/// A small, fast, seedable pseudo-random generator (xoshiro256**).
class Generator {
public:
    /// \brief Seed the generator. Equal seeds give equal streams.
    /// \param seed any 64-bit value
    explicit Generator(std::uint64_t seed = 0) { manual_seed(seed); }
    /// \brief Restart the stream from \p seed.
    /// \param seed any 64-bit value
    void manual_seed(std::uint64_t seed);
    /// \brief Next raw 64-bit value.
    /// \return 64 uniformly random bits
    std::uint64_t next_u64();
    /// \brief Uniform double in [0, 1) with 53 random bits.
    /// \return a value in [0, 1), a multiple of \f$ 2^{-53} \f$
    double uniform();
    /// \brief A sample of N(0, 1).
    /// \return a standard normal sample (Box–Muller; each call uses two fresh uniforms)
    double normal();
    /// \brief Uniform integer in [0, n) (n > 0), without modulo bias.
    /// \param n the bound
    /// \return a uniformly random integer in [0, n)
    std::uint64_t below(std::uint64_t n);
    /// \brief The full internal state (to save with a checkpoint).
    /// \return the four xoshiro256** state words
    std::array<std::uint64_t, 4> state() const { return s_; }
    /// \brief Restore a state returned by state().
    /// \param s the saved state (must not be all zero)
    void set_state(const std::array<std::uint64_t, 4>& s);

private:
    std::array<std::uint64_t, 4> s_{};
};

}  // namespace qkv
