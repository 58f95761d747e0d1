/// \file
/// \brief The FMA peak probe (see peak.hpp): 12 chains of fused multiply-adds, timed.
///
/// Each probe function is compiled for its instruction set alone (a `target` attribute), so this
/// file needs no special flags, and each is called only after the CPU said it has the instructions.
#include "qkv/kernels/peak.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qkv::kernels {
namespace {

constexpr int kChains = 12;                 // independent accumulators: more than latency × pipes
constexpr std::int64_t kIterations = 200'000;  // one short run: ~2.4 M FMAs
constexpr int kRuns = 50;                   // the best of these is rarely interrupted

#if defined(__x86_64__)
// y ← y·m + c on every accumulator, again and again: nothing but FMAs, none waiting on another.
__attribute__((target("avx2,fma"))) float chains_avx2(std::int64_t iterations) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(float(c));
    const __m256 m = _mm256_set1_ps(0.999f), add = _mm256_set1_ps(0.001f);
    for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, add);
    }
    __m256 s = acc[0];  // the result is used, so the compiler cannot drop the loop
    for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
    return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) float chains_avx512(std::int64_t iterations) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
    const __m512 m = _mm512_set1_ps(0.999f), add = _mm512_set1_ps(0.001f);
    for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, add);
    }
    __m512 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
    float out[16];
    _mm512_storeu_ps(out, s);
    return out[0];
}
#endif

template <class F>
double best_gflops(F&& run, int lanes) {
    volatile float sink = 0;
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < kRuns; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        sink = sink + run(kIterations);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return double(kIterations) * kChains * lanes * 2 / best / 1e9;  // 2 flops per lane per FMA
}

}  // namespace

double measure_fma_peak(GemmBackend isa) {
#if defined(__x86_64__)
    if (isa == GemmBackend::avx2 && cpu_has_avx2_fma()) return best_gflops(chains_avx2, 8);
    if (isa == GemmBackend::avx512 && cpu_has_avx512()) return best_gflops(chains_avx512, 16);
#else
    (void)isa;
#endif
    return 0.0;
}

double measure_fma_peak() {
    return std::max(measure_fma_peak(GemmBackend::avx2), measure_fma_peak(GemmBackend::avx512));
}

}  // namespace qkv::kernels
