/// \file
/// \brief This core's peak: how many single-precision FLOP/s its FMA units can do, measured.
///
/// A reader learns here how to measure a CPU's ceiling instead of looking it up. A loop of fused
/// multiply-adds on independent accumulators — enough of them that the FMA units never wait for a
/// result (12 chains: latency 4 cycles × 2 pipes needs 8) — runs as fast as the core can issue FMAs,
/// so its FLOP/s *is* the peak of one core for that vector width. Tutorial 04 builds the same probe
/// step by step, chain by chain; the benchmarks call this one to state their speed as a fraction of
/// the peak measured in the same run (speed ratios survive a shared machine's drift better than
/// absolute numbers).
#pragma once

#include "qkv/kernels/gemm.hpp"

namespace qkv::kernels {

/// \brief The peak single-precision GFLOP/s of one core with \p isa's vectors (avx2: 8 floats,
/// avx512: 16), measured: 12 independent FMA chains, the best of many short runs (about 0.1 s in
/// all). Returns 0 when the CPU (or the build) lacks \p isa, and for GemmBackend::reference.
/// \param isa which vector instructions to measure
/// \return GFLOP/s of one core (2 flops per lane per FMA)
double measure_fma_peak(GemmBackend isa);

/// \brief measure_fma_peak() of the widest of AVX2 and AVX-512 this CPU has: the ceiling of qkv's
/// float32 matrix multiply on one core (0 without either).
/// \return GFLOP/s of one core
double measure_fma_peak();

}  // namespace qkv::kernels
