/// \file
/// \brief xoshiro256** with splitmix64 seeding, and Box–Muller normals.
///
/// A reader learns here that a good random number generator fits in a page. xoshiro256** keeps four
/// 64-bit words and mixes them with shifts, xors and rotations; seeding passes the seed through
/// splitmix64, so even seed 0 gives a well-mixed, non-zero state. Everything else builds on
/// next_u64(): uniform() keeps the top 53 bits (a double's precision), below(n) rejects the
/// 2^64 mod n lowest values so that `x % n` favours no result, and normal() is Box–Muller, using one
/// value of each pair. Nothing is global: two Generators never disturb each other's streams.
#include <cmath>
#include <numbers>

#include "qkv/error.hpp"
#include "qkv/core/generator.hpp"

namespace qkv {
namespace {

// splitmix64 turns any seed (even 0) into well-mixed state words, as xoshiro's authors advise.
std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

void Generator::manual_seed(std::uint64_t seed) {
    for (auto& w : s_) w = splitmix64(seed);
}

std::uint64_t Generator::next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

// The top 53 bits scaled by 2^-53: every double in [0, 1) on that grid is equally likely.
double Generator::uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }

// Box–Muller: if u1, u2 ~ U(0,1) then sqrt(-2 ln u1) cos(2π u2) ~ N(0,1). 1 - uniform() lies in
// (0, 1], so the log never sees 0. We use one of the pair and draw fresh next time: simpler state.
double Generator::normal() {
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// The classic modulo rejection (as in OpenBSD's arc4random_uniform): reject the lowest 2^64 mod n
// values, so the accepted range [2^64 mod n, 2^64) holds a whole number of copies of 0..n-1 and
// x % n favours no result. (Lemire's method is a different one, built on a 128-bit multiply.)
std::uint64_t Generator::below(std::uint64_t n) {
    if (n == 0) fail("Generator::below: bound must be positive");
    const std::uint64_t limit = -n % n;  // = 2^64 mod n
    for (;;) {
        const std::uint64_t x = next_u64();
        if (x >= limit) return x % n;
    }
}

void Generator::set_state(const std::array<std::uint64_t, 4>& s) {
    if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        fail("Generator::set_state: the all-zero state is invalid for xoshiro256**");
    s_ = s;
}

}  // namespace qkv
