/// \file
/// \brief Tutorial 4: the matrix multiply, from three naive loops to the AVX2, AVX-512 and NEON kernels.
///
/// Multiplies two 512×512 float matrices with a ladder of ever faster loops — naive i-j-k, loop
/// order i-k-j, cache blocking — then with qkv's reference kernel and its packed AVX2/FMA and
/// AVX-512 kernels on one and two threads. Every step prints its GFLOP/s and its share of the machine's peak, which the
/// program measures first, and every result is checked against a float64 reference. See README.md.
#include <qkv/qkv.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

using namespace qkv;
using i64 = std::int64_t;

namespace {

// [timing]
// Best wall time of several runs of f: run at least once, and keep going until `budget` seconds
// are spent (at most max_runs runs). The *best* run is the one least disturbed by other programs.
double best_seconds(const std::function<void()>& f, int max_runs = 20, double budget = 0.25) {
    double best = 1e30, total = 0;
    for (int run = 0; run < max_runs && (run == 0 || total < budget); ++run) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s);
        total += s;
    }
    return best;
}
// [timing]

// [peak]
// The peak of one core, measured. A loop of FMAs (y = y·m + c on 8 floats at once) with `chains`
// independent accumulators: one chain waits for each FMA to finish before starting the next (the
// FMA's *latency*); several chains keep the FMA pipes busy every cycle (their *throughput*).
// The function is compiled for AVX2+FMA on its own (target attribute) and only called when the CPU
// has them; the rest of this file stays plain x86-64.
#if defined(__x86_64__)
template <int kChains>
__attribute__((target("avx2,fma"))) float fma_chains(i64 iterations) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(float(c));
    const __m256 m = _mm256_set1_ps(0.999f), add = _mm256_set1_ps(0.001f);
    for (i64 it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, add);
    }
    __m256 s = acc[0];  // use the result, so the compiler cannot drop the loop
    for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

template <int kChains>
double fma_gflops() {
    const i64 iterations = 200'000;  // short runs, many of them: the best is rarely interrupted
    volatile float sink = 0;
    const double s = best_seconds([&] { sink = sink + fma_chains<kChains>(iterations); }, 200, 0.1);
    return double(iterations) * kChains * 8 * 2 / s / 1e9;  // 8 floats × 2 flops per FMA
}

// The same loop on AVX-512's 16-float registers (12 chains), for the AVX-512 rungs' peak.
__attribute__((target("avx512f"))) float fma_chains_512(i64 iterations) {
    __m512 acc[12];
    for (int c = 0; c < 12; ++c) acc[c] = _mm512_set1_ps(float(c));
    const __m512 m = _mm512_set1_ps(0.999f), add = _mm512_set1_ps(0.001f);
    for (i64 it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int c = 0; c < 12; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, add);
    }
    __m512 s = acc[0];
    for (int c = 1; c < 12; ++c) s = _mm512_add_ps(s, acc[c]);
    float out[16];
    _mm512_storeu_ps(out, s);
    return out[0];
}

double fma_gflops_512() {
    const i64 iterations = 200'000;
    volatile float sink = 0;
    const double s = best_seconds([&] { sink = sink + fma_chains_512(iterations); }, 200, 0.1);
    return double(iterations) * 12 * 16 * 2 / s / 1e9;  // 16 floats × 2 flops per FMA
}
#elif defined(__aarch64__)
// The same loop on AArch64's 4-float NEON registers (Advanced SIMD, part of every AArch64 CPU).
template <int kChains>
float fma_chains(i64 iterations) {
    float32x4_t acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = vdupq_n_f32(float(c));
    const float32x4_t m = vdupq_n_f32(0.999f), add = vdupq_n_f32(0.001f);
    for (i64 it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int c = 0; c < kChains; ++c) acc[c] = vfmaq_f32(add, acc[c], m);  // add + acc·m
    }
    float32x4_t s = acc[0];
    for (int c = 1; c < kChains; ++c) s = vaddq_f32(s, acc[c]);
    return vgetq_lane_f32(s, 0);
}

template <int kChains>
double fma_gflops() {
    const i64 iterations = 200'000;
    volatile float sink = 0;
    const double s = best_seconds([&] { sink = sink + fma_chains<kChains>(iterations); }, 200, 0.1);
    return double(iterations) * kChains * 4 * 2 / s / 1e9;  // 4 floats × 2 flops per FMA
}
#endif
// [peak]

// [naive]
// Step 1: the definition, C[i][j] = Σ_k A[i][k]·B[k][j]. The inner loop walks down a *column* of
// B: consecutive k are n floats apart in memory, so every multiply-add touches a new cache line.
void matmul_ijk(const float* A, const float* B, float* C, i64 n) {
    for (i64 i = 0; i < n; ++i)
        for (i64 j = 0; j < n; ++j) {
            float sum = 0;
            for (i64 k = 0; k < n; ++k) sum += A[i * n + k] * B[k * n + j];
            C[i * n + j] = sum;
        }
}
// [naive]

// [ikj]
// Step 2: the same sums in another order. For each A[i][k], add A[i][k]·(row k of B) to row i of
// C. The inner loop now reads B and writes C *contiguously*, and its iterations are independent,
// so the compiler turns it into SIMD code (4 floats per instruction for baseline x86-64).
void matmul_ikj(const float* A, const float* B, float* C, i64 n) {
    for (i64 i = 0; i < n; ++i) {
        float* c = C + i * n;
        std::fill(c, c + n, 0.0f);
        for (i64 k = 0; k < n; ++k) {
            const float a = A[i * n + k];
            const float* b = B + k * n;
            for (i64 j = 0; j < n; ++j) c[j] += a * b[j];
        }
    }
}
// [ikj]

// [blocked]
// Step 3: blocking. Work on a kBlockK × kBlockJ tile of B (128 KB: it stays in the L2 cache) for
// all rows of A before moving on, and take 4 rows of C at a time so that each element of B, once
// loaded, is used for 4 multiply-adds instead of 1.
constexpr i64 kBlockK = 256, kBlockJ = 128, kRows = 4;

void matmul_blocked(const float* A, const float* B, float* C, i64 n) {
    std::fill(C, C + n * n, 0.0f);
    for (i64 j0 = 0; j0 < n; j0 += kBlockJ) {
        const i64 nj = std::min(kBlockJ, n - j0);
        for (i64 k0 = 0; k0 < n; k0 += kBlockK) {
            const i64 k1 = std::min(k0 + kBlockK, n);
            i64 i = 0;
            for (; i + kRows <= n; i += kRows) {  // 4 rows of C at a time
                float* c0 = C + i * n + j0;
                float* c1 = c0 + n;
                float* c2 = c1 + n;
                float* c3 = c2 + n;
                for (i64 k = k0; k < k1; ++k) {
                    const float a0 = A[i * n + k], a1 = A[(i + 1) * n + k];
                    const float a2 = A[(i + 2) * n + k], a3 = A[(i + 3) * n + k];
                    const float* b = B + k * n + j0;
                    for (i64 j = 0; j < nj; ++j) {
                        const float bj = b[j];
                        c0[j] += a0 * bj;
                        c1[j] += a1 * bj;
                        c2[j] += a2 * bj;
                        c3[j] += a3 * bj;
                    }
                }
            }
            for (; i < n; ++i)  // leftover rows when n is not a multiple of 4
                for (i64 k = k0; k < k1; ++k)
                    for (i64 j = 0; j < nj; ++j) C[i * n + j0 + j] += A[i * n + k] * B[k * n + j0 + j];
        }
    }
}
// [blocked]

}  // namespace

int main(int argc, char** argv) {
    // [setup]
    const i64 n = argc > 1 ? std::atoll(argv[1]) : 512;
    if (n < 1 || n > 4096) {
        fmt::print(stderr, "usage: 04_matmul [n]   (1 <= n <= 4096; default 512)\n");
        return 2;
    }
    const double flops = 2.0 * double(n) * double(n) * double(n);  // n² outputs, n multiply-adds each
    fmt::print("C = A·B with A, B: {}×{} float32, {:.1f} MFLOP per product (2·n³)\n\n", n, n, flops / 1e6);

    Generator gen(4);
    const Tensor At = uniform({n, n}, -1, 1, gen), Bt = uniform({n, n}, -1, 1, gen);
    const float* A = At.data<float>();
    const float* B = Bt.data<float>();
    std::vector<float> C(std::size_t(n * n));

    // The yardstick: qkv's reference kernel in float64 (three plain loops, exact enough to judge
    // float32 results by). Entries of C are sums of n products of numbers in [-1, 1].
    const Tensor A64 = At.to(f64), B64 = Bt.to(f64);
    std::vector<double> C_ref(std::size_t(n * n));
    kernels::gemm_reference(false, false, n, n, n, 1.0, A64.data<double>(), n, B64.data<double>(), n, 0.0,
                            C_ref.data(), n);
    auto max_error = [&] {
        double worst = 0;
        for (std::size_t i = 0; i < C.size(); ++i) worst = std::max(worst, std::abs(double(C[i]) - C_ref[i]));
        return worst;
    };
    const double kTolerance = 1e-3;  // float32 keeps ~7 digits of entries of size ~10
    // [setup]

    // [measure-peak]
    double peak = 0;  // one core, GFLOP/s
    const bool avx2 = kernels::cpu_has_avx2_fma();
    fmt::print("one core's FMA throughput, measured with independent chains of 8-float FMAs:\n");
#if defined(__x86_64__)
    if (avx2) {
        const double g[5] = {fma_gflops<1>(), fma_gflops<2>(), fma_gflops<4>(), fma_gflops<8>(), fma_gflops<12>()};
        const int chains[5] = {1, 2, 4, 8, 12};
        for (int c = 0; c < 5; ++c) {
            fmt::print("  {:2} chain{} {:7.1f} GFLOP/s\n", chains[c], c == 0 ? ": " : "s:", g[c]);
            peak = std::max(peak, g[c]);
        }
        // The clock, if the core starts 2 FMAs of 8 floats (2 flops each) per cycle: 32 flops/cycle.
        const double ghz = peak / 32;
        fmt::print("peak of one core: {:.1f} GFLOP/s = 32 flops/cycle × {:.2f} GHz\n", peak, ghz);
        // One chain starts an FMA only when the previous one has finished: its rate, in FMAs (16
        // flops each) per cycle, is 1 / latency. The pipes' throughput is the peak in FMAs per cycle.
        // To keep them busy, latency × throughput independent FMAs must be in flight.
        const double latency = ghz / (g[0] / 16), throughput = peak / 16 / ghz;
        fmt::print("one chain reaches 1/{:.1f} of it: an FMA takes {:.1f} cycles (latency), the pipes start {:.0f} "
                   "per cycle (throughput),\nso {:.1f} × {:.0f} ≈ {} FMAs must be in flight at once\n\n",
                   peak / g[0], latency, throughput, latency, throughput, std::lround(latency * throughput));
    }
#endif
#if defined(__aarch64__)
    // NEON: cores have 2 to 4 FMA pipes of 4 floats, so the flops per cycle (and the number of
    // chains needed) vary from core to core; the clock is not printed.
    const bool neon = kernels::cpu_has_neon();
    if (neon) {
        fmt::print("(NEON: chains of 4-float FMAs)\n");
        const double g[5] = {fma_gflops<1>(), fma_gflops<2>(), fma_gflops<4>(), fma_gflops<8>(), fma_gflops<12>()};
        const int chains[5] = {1, 2, 4, 8, 12};
        for (int c = 0; c < 5; ++c) {
            fmt::print("  {:2} chain{} {:7.1f} GFLOP/s\n", chains[c], c == 0 ? ": " : "s:", g[c]);
            peak = std::max(peak, g[c]);
        }
        fmt::print("peak of one core: {:.1f} GFLOP/s = 8 flops per FMA × {:.2f} billion FMAs/s\n", peak, peak / 8);
        fmt::print("one chain reaches 1/{:.1f} of it: latency × pipes FMAs must be in flight at once\n\n", peak / g[0]);
    }
#else
    const bool neon = false;
#endif
    if (!avx2 && !neon) fmt::print("  (this CPU has no AVX2/FMA: peak not measured)\n\n");
    // With AVX-512 the registers and the FMAs are twice as wide: 16 floats per instruction.
    double peak512 = 0;
    const bool avx512 = kernels::cpu_has_avx512();
#if defined(__x86_64__)
    if (avx512) {
        peak512 = fma_gflops_512();
        fmt::print("AVX-512, 16-float FMAs, 12 chains: {:.1f} GFLOP/s, {:.2f}× the AVX2 peak\n\n", peak512,
                   peak512 / peak);
    }
#endif
    if (!avx512) fmt::print("AVX-512, 16-float FMAs, 12 chains: skipped, no AVX-512 on this CPU\n\n");
    // [measure-peak]

    // [ladder]
    bool all_ok = true;
    // `of_peak`: the peak the step is measured against (the AVX-512 steps: the AVX-512 peak).
    auto report = [&](const std::string& name, double seconds, int threads, double of_peak = 0) {
        const double gflops = flops / seconds / 1e9, err = max_error();
        const bool ok = err <= kTolerance;
        all_ok = all_ok && ok;
        if (of_peak == 0) of_peak = peak;
        const std::string pct =
            of_peak > 0 ? fmt::format("{:5.1f}%", 100 * gflops / (of_peak * threads)) : "    -";
        fmt::print("{:<32} {:9.1f} ms {:8.2f} GFLOP/s {} of peak   max |C - C_ref| {:.1e} {}\n", name,
                   seconds * 1e3, gflops, pct, err, ok ? "ok" : "WRONG");
    };
    auto skipped = [](const std::string& name, const char* what = "AVX2/FMA") {
        fmt::print("{:<32} skipped: no {} on this CPU\n", name, what);
    };

    report("1. naive i-j-k", best_seconds([&] { matmul_ijk(A, B, C.data(), n); }), 1);
    report("2. loop order i-k-j", best_seconds([&] { matmul_ikj(A, B, C.data(), n); }), 1);
    report("3. blocked, 4 rows at a time", best_seconds([&] { matmul_blocked(A, B, C.data(), n); }), 1);
    // qkv's own kernels, through the BLAS-style interface C = α·A·B + β·C.
    report("4. qkv gemm_reference", best_seconds([&] {
               kernels::gemm_reference(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C.data(), n);
           }), 1);
    // [ladder]

    // [fast]
    auto qkv_gemm = [&] { kernels::gemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C.data(), n); };
    if (avx2) {
        kernels::set_gemm_backend(kernels::GemmBackend::avx2);
        set_num_threads(1);
        report("5. qkv AVX2 kernel, 1 thread", best_seconds(qkv_gemm), 1);
        set_num_threads(2);  // each thread computes its own block of C
        report("6. qkv AVX2 kernel, 2 threads", best_seconds(qkv_gemm), 2);
    } else if (neon) {
        // AArch64: the same algorithm with NEON's 12 × 8 register tile (src/kernels/gemm_neon.cpp).
        kernels::set_gemm_backend(kernels::GemmBackend::neon);
        set_num_threads(1);
        report("5. qkv NEON kernel, 1 thread", best_seconds(qkv_gemm), 1);
        set_num_threads(2);
        report("6. qkv NEON kernel, 2 threads", best_seconds(qkv_gemm), 2);
    } else {
        skipped("5. qkv AVX2 kernel, 1 thread");
        skipped("6. qkv AVX2 kernel, 2 threads");
    }
    // The same algorithm, compiled for 512-bit vectors: a 6×32 tile, twice the work per FMA.
    if (avx512) {
        kernels::set_gemm_backend(kernels::GemmBackend::avx512);
        set_num_threads(1);
        report("7. qkv AVX-512 kernel, 1 thread", best_seconds(qkv_gemm), 1, peak512);
        set_num_threads(2);
        report("8. qkv AVX-512 kernel, 2 threads", best_seconds(qkv_gemm), 2, peak512);
    } else {
        skipped("7. qkv AVX-512 kernel, 1 thread", "AVX-512");
        skipped("8. qkv AVX-512 kernel, 2 threads", "AVX-512");
    }
    fmt::print("\nevery result matches the float64 reference (max error <= {:.0e}): {}\n", kTolerance,
               all_ok ? "yes" : "NO");
    // [fast]
    return all_ok ? 0 : 1;
}
