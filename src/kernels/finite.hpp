/// \file
/// \brief Finding the first NaN or infinity in a block of numbers, fast.
///
/// Not installed and not part of the API. Anomaly mode (core/autograd.cpp) checks the output of
/// every op and every gradient with these, and training checks its loss and gradients once per
/// step, so the scan must cost about as little as reading the memory. A float is NaN or ±∞ exactly
/// when all of its exponent bits are set; testing that bit pattern is one AND and one compare per
/// element with no branch, which the compiler vectorises, block by block.
#pragma once

#include <cstdint>

namespace qkv::kernels {

/// \brief The index of the first element of p[0, n) that is NaN, +∞ or −∞, or −1 when all are finite.
/// \param p the numbers \param n how many
/// \return the index, or −1
std::int64_t first_non_finite(const float* p, std::int64_t n);

/// \brief The same for doubles. \param p the numbers \param n how many
/// \return the index, or −1
std::int64_t first_non_finite(const double* p, std::int64_t n);

}  // namespace qkv::kernels
