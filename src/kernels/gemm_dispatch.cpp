/// \file
/// \brief The GEMM entry points: argument checks, backend choice, threads and batches.
///
/// A reader learns here everything around the fast kernel that is *not* arithmetic: how the
/// backend is chosen at run time (CPU features, the `QKV_GEMM` environment variable,
/// set_gemm_backend()), how the BLAS corner cases are settled once for every backend (K = 0 or
/// α = 0 give C ← βC without touching A or B; β = 0 never reads C), when a product is big enough
/// to split between cores and how it is split, and where the kernel's scratch memory comes from.
/// This file is portable C++; it calls into gemm_avx2.cpp only after cpu_has_avx2_fma(), into
/// gemm_avx512.cpp only after cpu_has_avx512(), and into gemm_neon.cpp only on AArch64.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "qkv/error.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/kernels/parallel.hpp"

#if defined(QKV_HAVE_AVX2_KERNEL) || defined(QKV_HAVE_AVX512_KERNEL) || defined(QKV_HAVE_NEON_KERNEL)
#define QKV_HAVE_SIMD_KERNEL 1
#include "gemm_simd.hpp"
#endif

namespace qkv::kernels {
namespace {

using i64 = std::int64_t;

// Below this many flops (2·M·N·K) per thread, waking a second core costs more than it saves:
// an OpenMP region costs a few microseconds, and 2 MFLOP take ≈ 20 µs on one core. So products
// up to ≈ 100³ stay on one thread, and attention-sized products always do.
constexpr double kMinFlopsPerThread = 2.0e6;

// The per-core L2 of the machine the block sizes were chosen for (AMD Zen 5: 1 MB).
constexpr double kL2Bytes = 1024.0 * 1024.0;

// -1: not chosen yet. The environment is read on first use, so that a bad QKV_GEMM becomes a
// qkv::Error the program can catch instead of an abort before main().
std::atomic<int> g_backend{-1};

constexpr GemmBackend kAllBackends[] = {GemmBackend::reference, GemmBackend::avx2, GemmBackend::avx512,
                                         GemmBackend::neon};

// The fastest backend this CPU runs: wider vectors first.
GemmBackend best_backend() {
    if (cpu_has_avx512()) return GemmBackend::avx512;
    if (cpu_has_avx2_fma()) return GemmBackend::avx2;
    if (cpu_has_neon()) return GemmBackend::neon;
    return GemmBackend::reference;
}

// What a SIMD backend needs, for error messages.
const char* needs(GemmBackend b) {
    switch (b) {
        case GemmBackend::avx2: return "AVX2+FMA";
        case GemmBackend::avx512: return "AVX-512";
        case GemmBackend::neon: return "NEON (AArch64)";
        case GemmBackend::reference: break;
    }
    return "reference";
}

GemmBackend backend_from_environment() {
    const char* env = std::getenv("QKV_GEMM");
    if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return best_backend();
    for (const GemmBackend b : kAllBackends) {
        if (std::strcmp(env, gemm_backend_name(b)) != 0) continue;
        if (!gemm_backend_available(b))
            fail("QKV_GEMM={}: this CPU (or this build) has no {} kernel; use QKV_GEMM=auto or "
                 "QKV_GEMM=reference",
                 env, needs(b));
        return b;
    }
    fail("QKV_GEMM: expected 'reference', 'avx2', 'avx512', 'neon' or 'auto', got '{}'", env);
}

// The checks every entry point shares. Strides are checked against the stored shapes: a
// stored (rows, cols) matrix needs ld ≥ cols, and ld ≥ 1 even when empty (the BLAS rule).
void check_operand(const char* name, const void* p, i64 ld, i64 rows, i64 cols) {
    if (ld < 1 || ld < cols)
        fail("gemm: ld{} = {} is too small for a stored ({}, {}) matrix", name, ld, rows, cols);
    if (p == nullptr && rows > 0 && cols > 0) fail("gemm: {} is null", name);
}

void check_args(bool ta, bool tb, i64 M, i64 N, i64 K, const void* A, i64 lda, const void* B,
                i64 ldb, const void* C, i64 ldc) {
    if (M < 0 || N < 0 || K < 0) fail("gemm: negative size M={} N={} K={}", M, N, K);
    check_operand("a", A, lda, ta ? K : M, ta ? M : K);
    check_operand("b", B, ldb, tb ? N : K, tb ? K : N);
    check_operand("c", C, ldc, M, N);
}

// A bias takes the place of the old C (see gemm()), so there must be no old C to scale.
void check_bias(bool has_bias, double beta) {
    if (has_bias && beta != 0.0)
        fail("gemm: a bias row replaces the old C, so beta must be 0 (got beta = {})", beta);
}

// C ← βC, for K = 0 or α = 0. β = 0 writes zeros without reading (NaN in C must not survive).
template <class T>
void scale_c(i64 M, i64 N, T beta, T* C, i64 ldc) {
    for (i64 i = 0; i < M; ++i)
        for (i64 j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

#ifdef QKV_HAVE_SIMD_KERNEL

// Per-thread scratch for the packed panels, 64-byte aligned (one cache line; also what the
// aligned AVX-512 stores need). It only grows, so steady-state calls never allocate.
float* scratch(i64 floats) {
    struct Buffer {
        float* data = nullptr;
        i64 size = 0;
        ~Buffer() { ::operator delete[](data, std::align_val_t{64}); }
    };
    thread_local Buffer buffer;
    if (buffer.size < floats) {
        ::operator delete[](buffer.data, std::align_val_t{64});
        buffer.data = nullptr;
        buffer.size = 0;
        buffer.data = static_cast<float*>(
            ::operator new[](static_cast<std::size_t>(floats) * sizeof(float), std::align_val_t{64}));
        buffer.size = floats;
    }
    return buffer.data;
}

// The kernel of a SIMD backend. Asked for only after the CPU check (the ISA file may use its
// instructions even in the function that describes the kernel).
const detail::GemmKernel& simd_kernel(GemmBackend backend) {
#if defined(QKV_HAVE_NEON_KERNEL)
    (void)backend;  // the only SIMD kernel of an AArch64 build
    static const detail::GemmKernel k = detail::gemm_neon_kernel();
    return k;
#else
    if (backend == GemmBackend::avx512) {
        static const detail::GemmKernel k = detail::gemm_avx512_kernel();
        return k;
    }
    static const detail::GemmKernel k = detail::gemm_avx2_kernel();
    return k;
#endif
}

void simd_serial(const detail::GemmKernel& kernel, const detail::GemmF32& g) {
    kernel.run(g, scratch(kernel.scratch_floats(g)));
}

// Splits C into blocks, of rows when C is tall, of columns when it is wide, in whole micro-tiles
// (MR = 6 rows (x86) or 12 (NEON), or NR = 16 (AVX2) / 32 (AVX-512) / 8 (NEON) columns); parallel_for hands the blocks to the
// threads and each block runs the serial algorithm with the thread's own packed buffers: no
// synchronisation at all, at the price of packing the shared operand once per block (see below
// for what that costs). (Sharing one packed B between the threads instead was measured on Intel
// Sapphire Rapids, 2 threads: no gain at 512³–1024³ or the models' shapes — packing B is a few
// percent of the time, and reading panels the other core packed costs cross-core traffic.)
void simd_threaded(const detail::GemmKernel& kernel, const detail::GemmF32& g) {
    const double flops = 2.0 * static_cast<double>(g.M) * static_cast<double>(g.N) *
                         static_cast<double>(g.K);
    if (num_threads() < 2 || flops < 2 * kMinFlopsPerThread || in_parallel_region()) {
        simd_serial(kernel, g);
        return;
    }
    const bool split_rows = g.M >= g.N;
    const i64 unit = split_rows ? kernel.mr : kernel.nr;
    const i64 extent = split_rows ? g.M : g.N;
    const i64 count = (extent + unit - 1) / unit;
    const double flops_per_unit = flops / static_cast<double>(count);
    // Every block packs the whole shared operand (B when splitting rows, A when splitting
    // columns) again. While that operand fits easily in L2, the copy is cheap and blocks of 96 rows or
    // columns keep it to a few percent; then there are several blocks per thread, claimed
    // dynamically, so a thread slowed by another program takes fewer. A larger shared operand is
    // copied from L3 or memory, about 30 times slower than multiplying with it: then each thread
    // gets exactly one block (measured at 2048³: 8 blocks ≈ 170 GFLOP/s, 2 blocks ≈ 205).
    const double shared_bytes = 4.0 * static_cast<double>(g.K) *
                                static_cast<double>(split_rows ? g.N : g.M);
    const i64 per_thread = std::max<i64>(1, count / num_threads());
    const i64 min_units =
        shared_bytes > kL2Bytes / 2 ? per_thread : std::min<i64>(96 / unit, per_thread);
    const i64 grain =
        std::max(static_cast<i64>(kMinFlopsPerThread / flops_per_unit) + 1, min_units);
    parallel_for(0, count, grain, [&](i64 lo, i64 hi) {
        detail::GemmF32 part = g;
        const i64 first = lo * unit;
        const i64 last = hi * unit < extent ? hi * unit : extent;
        if (split_rows) {
            part.M = last - first;
            part.A = g.trans_a ? g.A + first : g.A + first * g.lda;
            part.C = g.C + first * g.ldc;
        } else {
            part.N = last - first;
            part.B = g.trans_b ? g.B + first * g.ldb : g.B + first;
            part.C = g.C + first;
            if (g.bias != nullptr) part.bias = g.bias + first;
        }
        simd_serial(kernel, part);
    });
}

#endif

// Every row of C ← the bias row: what a bias stands for (the old C, with beta = 1) on the paths
// that have no bias write-back of their own.
template <class T>
void fill_rows(i64 M, i64 N, const T* bias, T* C, i64 ldc) {
    for (i64 i = 0; i < M; ++i) std::memcpy(C + i * ldc, bias, static_cast<std::size_t>(N) * sizeof(T));
}

// The portable path, f32 and f64 alike: a bias becomes the old C (copied in, beta = 1), then
// K = 0 / alpha = 0 only scale C, and anything else runs the reference's sums, row-wise
// (gemm_rowwise: the triple loop's bits, faster).
template <class T>
void gemm_portable(bool ta, bool tb, i64 M, i64 N, i64 K, T alpha, const T* A, i64 lda, const T* B,
                   i64 ldb, T beta, T* C, i64 ldc, const T* bias) {
    if (bias != nullptr) {
        fill_rows(M, N, bias, C, ldc);
        beta = T(1);
    }
    if (K == 0 || alpha == T(0)) return scale_c(M, N, beta, C, ldc);
    gemm_rowwise(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Decides nothing about arithmetic: settles the corner cases, then hands over to a backend. The
// SIMD kernels apply an epilogue tile by tile; the portable path, to all of C at the end.
void gemm_f32_epilogue(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
                       const float* B, i64 ldb, float beta, float* C, i64 ldc, const float* bias,
                       const GemmEpilogue& epilogue) {
    if (M == 0 || N == 0) return;
#ifdef QKV_HAVE_SIMD_KERNEL
    if (GemmBackend backend = gemm_backend(); backend != GemmBackend::reference && K > 0 && alpha != 0.0f) {
        const detail::GemmF32 g{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, epilogue};
        // Narrow products fit AVX2's tiles better: at most 8 columns, its 12×8 narrow tile
        // (AVX-512's 12×16 would be half empty); at most 16 on the packed path, its 6×16 tile
        // (AVX-512's 6×32 would be). Both kernels give bit-identical results, so switching is
        // invisible except in the time.
        if (backend == GemmBackend::avx512 && (N <= 8 || (N <= 16 && simd_kernel(backend).packs(g))))
            backend = GemmBackend::avx2;
        return simd_threaded(simd_kernel(backend), g);
    }
#endif
    gemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    if (epilogue.apply != nullptr) epilogue.apply(epilogue.ctx, C, ldc, M, N);
}

void gemm_f32(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
              const float* B, i64 ldb, float beta, float* C, i64 ldc, const float* bias) {
    gemm_f32_epilogue(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, {});
}

void gemm_f64(bool ta, bool tb, i64 M, i64 N, i64 K, double alpha, const double* A, i64 lda,
              const double* B, i64 ldb, double beta, double* C, i64 ldc, const double* bias) {
    if (M == 0 || N == 0) return;
    gemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
}

// Batches of small products (attention: one per head) are spread over the cores one whole
// product per task; batches of large products run one after another, each using all cores.
template <class T, class Gemm>
void batched(Gemm gemm_one, bool ta, bool tb, i64 M, i64 N, i64 K, T alpha, const T* A, i64 lda,
             i64 sa, const T* B, i64 ldb, i64 sb, T beta, T* C, i64 ldc, i64 sc, i64 batch) {
    check_args(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    if (batch < 0) fail("gemm_batched: negative batch count {}", batch);
    if (sa < 0 || sb < 0 || sc < 0)
        fail("gemm_batched: negative stride (a {}, b {}, c {})", sa, sb, sc);
    if (batch > 1 && M > 0 && N > 0 && sc < (M - 1) * ldc + N)
        fail("gemm_batched: stride_c = {} makes the ({}, {}) results with ldc = {} overlap", sc, M,
             N, ldc);
    const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                         static_cast<double>(K);
    auto one_by_one = [&](i64 lo, i64 hi) {
        for (i64 b = lo; b < hi; ++b)
            gemm_one(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc,
                     nullptr);
    };
    // A product big enough for gemm to split between threads (f32, SIMD) is split there:
    // splitting the batch instead would leave cores idle whenever the batch count is not a
    // multiple of the thread count.
    if (flops >= 2 * kMinFlopsPerThread) return one_by_one(0, batch);
    const auto grain = static_cast<i64>(kMinFlopsPerThread / (flops + 1.0)) + 1;
    parallel_for(0, batch, grain, one_by_one);
}

}  // namespace

GemmBackend gemm_backend() {
    int b = g_backend.load(std::memory_order_relaxed);
    if (b < 0) {
        b = static_cast<int>(backend_from_environment());
        g_backend.store(b, std::memory_order_relaxed);
    }
    return static_cast<GemmBackend>(b);
}

const char* gemm_backend_name(GemmBackend backend) {
    switch (backend) {
        case GemmBackend::reference: return "reference";
        case GemmBackend::avx2: return "avx2";
        case GemmBackend::avx512: return "avx512";
        case GemmBackend::neon: return "neon";
    }
    return "unknown";
}

bool gemm_backend_available(GemmBackend backend) {
    switch (backend) {
        case GemmBackend::reference: return true;
        case GemmBackend::avx2: return cpu_has_avx2_fma();
        case GemmBackend::avx512: return cpu_has_avx512();
        case GemmBackend::neon: return cpu_has_neon();
    }
    return false;
}

void set_gemm_backend(GemmBackend backend) {
    if (backend != GemmBackend::reference && backend != GemmBackend::avx2 &&
        backend != GemmBackend::avx512 && backend != GemmBackend::neon)
        fail("set_gemm_backend: unknown backend {}", static_cast<int>(backend));
    if (!gemm_backend_available(backend))
        fail("set_gemm_backend: this CPU (or this build) has no {} kernel", needs(backend));
    g_backend.store(static_cast<int>(backend), std::memory_order_relaxed);
}

void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc, const float* bias) {
    check_args(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    check_bias(bias != nullptr, beta);
    gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
}

void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc, const float* bias, const GemmEpilogue& epilogue) {
    check_args(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    check_bias(bias != nullptr, beta);
    gemm_f32_epilogue(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, epilogue);
}

void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
          const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
          double* C, std::int64_t ldc, const double* bias) {
    check_args(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    check_bias(bias != nullptr, beta);
    gemm_f64(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
}

void gemm_batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                  const float* A, std::int64_t lda, std::int64_t sa, const float* B,
                  std::int64_t ldb, std::int64_t sb, float beta, float* C, std::int64_t ldc,
                  std::int64_t sc, std::int64_t batch) {
    batched(gemm_f32, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

void gemm_batched(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                  const double* A, std::int64_t lda, std::int64_t sa, const double* B,
                  std::int64_t ldb, std::int64_t sb, double beta, double* C, std::int64_t ldc,
                  std::int64_t sc, std::int64_t batch) {
    batched(gemm_f64, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

}  // namespace qkv::kernels
