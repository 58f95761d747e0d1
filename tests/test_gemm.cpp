/// \file
/// \brief Tests of the GEMM kernels (every backend the CPU runs) and of qkv::parallel_for.
///
/// A reader learns here how to test a floating-point kernel without tautologies: every result
/// is compared with an independent float64 computation, and the allowed error is not a magic
/// constant but the classic bound for a sum of K products, \f$ |\hat c - c| \le \gamma_K
/// \sum_k |a_{ik} b_{kj}| \f$ with \f$ \gamma_K \approx K u \f$ (u = 2⁻²⁴). Shapes are chosen
/// to hit every edge of the blocked kernel (1, primes, K = 0, sizes just past a tile or a cache
/// block, both the direct and the packed path, one and two threads), the padding of strided
/// matrices is filled with NaN so that reading outside a matrix shows up, and C starts as NaN
/// when β = 0 so that reading it does too. A meta-test checks that the checker itself rejects a
/// slightly wrong result.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "qkv/error.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/kernels/parallel.hpp"

using qkv::kernels::GemmBackend;
using i64 = std::int64_t;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// A stored row-major matrix with padding columns (ld > cols) full of NaN.
struct Matrix {
    i64 rows = 0, cols = 0, ld = 1;
    std::vector<float> data;
    float at(i64 r, i64 c) const { return data[static_cast<std::size_t>(r * ld + c)]; }
};

Matrix random_matrix(std::mt19937& rng, i64 rows, i64 cols, i64 pad) {
    Matrix m{rows, cols, std::max<i64>(1, cols + pad), {}};
    m.data.assign(static_cast<std::size_t>(std::max<i64>(1, rows * m.ld)), kNaN);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (i64 r = 0; r < rows; ++r)
        for (i64 c = 0; c < cols; ++c) m.data[static_cast<std::size_t>(r * m.ld + c)] = dist(rng);
    return m;
}

/// One test problem: C ← α op(A) op(B) + β C.
struct Problem {
    bool ta = false, tb = false;
    i64 M = 0, N = 0, K = 0;
    float alpha = 1, beta = 0;
    i64 pad = 0;  // extra columns of every stored matrix
};

std::string describe(const Problem& p) {
    return "M=" + std::to_string(p.M) + " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
           " ta=" + std::to_string(p.ta) + " tb=" + std::to_string(p.tb) +
           " alpha=" + std::to_string(p.alpha) + " beta=" + std::to_string(p.beta) +
           " pad=" + std::to_string(p.pad);
}

/// The operands of a problem, filled with random numbers (C with NaN when β = 0).
struct Operands {
    Matrix A, B, C;
};

Operands make_operands(std::mt19937& rng, const Problem& p) {
    Operands o;
    o.A = p.ta ? random_matrix(rng, p.K, p.M, p.pad) : random_matrix(rng, p.M, p.K, p.pad);
    o.B = p.tb ? random_matrix(rng, p.N, p.K, p.pad) : random_matrix(rng, p.K, p.N, p.pad);
    o.C = random_matrix(rng, p.M, p.N, p.pad);
    if (p.beta == 0.0f)
        for (i64 r = 0; r < p.M; ++r)
            for (i64 c = 0; c < p.N; ++c) o.C.data[static_cast<std::size_t>(r * o.C.ld + c)] = kNaN;
    return o;
}

float op_at(const Matrix& m, bool trans, i64 r, i64 c) { return trans ? m.at(c, r) : m.at(r, c); }

/// Compares \p result (C after the kernel) with a float64 evaluation from the original operands.
/// Returns an empty string when every element is within the K-dependent bound, otherwise a
/// description of the worst element. Also checks that C's padding was left untouched.
std::string check_result(const Problem& p, const Operands& o, const Matrix& result) {
    const double u = std::ldexp(1.0, -24);
    // γ_{K+2}: K products and sums, plus the α scaling and the β C term; ×2 for slack.
    const double gamma = 2.0 * static_cast<double>(p.K + 2) * u;
    double worst = 0;
    std::string message;
    for (i64 i = 0; i < p.M; ++i) {
        for (i64 j = 0; j < p.N; ++j) {
            double sum = 0, magnitude = 0;
            for (i64 k = 0; k < p.K; ++k) {
                const double term = double(op_at(o.A, p.ta, i, k)) * double(op_at(o.B, p.tb, k, j));
                sum += term;
                magnitude += std::fabs(term);
            }
            double expected = double(p.alpha) * sum;
            double bound = std::fabs(double(p.alpha)) * magnitude;
            if (p.beta != 0.0f) {
                expected += double(p.beta) * double(o.C.at(i, j));
                bound += std::fabs(double(p.beta) * double(o.C.at(i, j)));
            }
            const double got = result.at(i, j);
            const double error = std::fabs(got - expected);
            const double allowed = gamma * bound + 1e-30;
            if (!(error <= allowed) && (message.empty() || error / allowed > worst)) {
                worst = error / allowed;
                message = "C(" + std::to_string(i) + "," + std::to_string(j) + ") = " +
                          std::to_string(got) + ", expected " + std::to_string(expected) +
                          " (error " + std::to_string(error) + " > bound " +
                          std::to_string(allowed) + ")";
            }
        }
        for (i64 j = p.N; j < result.ld; ++j)
            if (!std::isnan(result.at(i, j)))
                return "padding C(" + std::to_string(i) + "," + std::to_string(j) + ") was written";
    }
    return message;
}

/// Runs the library's gemm on a copy of C and returns the checker's verdict.
std::string run_and_check(const Problem& p, const Operands& o) {
    Matrix c = o.C;
    qkv::kernels::gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, o.A.data.data(), o.A.ld, o.B.data.data(),
                       o.B.ld, p.beta, c.data.data(), c.ld);
    return check_result(p, o, c);
}

/// Selects a backend and a thread count for one test and restores the previous ones afterwards.
class Setting {
public:
    Setting(GemmBackend backend, int threads)
        : backend_(qkv::kernels::gemm_backend()), threads_(qkv::num_threads()) {
        qkv::kernels::set_gemm_backend(backend);
        qkv::set_num_threads(threads);
    }
    ~Setting() {
        qkv::kernels::set_gemm_backend(backend_);
        qkv::set_num_threads(threads_);
    }
    Setting(const Setting&) = delete;
    Setting& operator=(const Setting&) = delete;

private:
    GemmBackend backend_;
    int threads_;
};

const char* name(GemmBackend b) { return qkv::kernels::gemm_backend_name(b); }

/// True when \p backend can run here; otherwise says why the section is skipped.
// True when the (M, N) results x and y are equal element by element (bit for bit, barring ±0).
bool same_bits(const Problem& p, const Matrix& x, const Matrix& y) {
    for (i64 i = 0; i < p.M; ++i)
        for (i64 j = 0; j < p.N; ++j)
            if (!(x.at(i, j) == y.at(i, j))) return false;
    return true;
}

bool available(GemmBackend backend) {
    if (!qkv::kernels::gemm_backend_available(backend)) {
        WARN("skipping the " << name(backend) << " backend: this CPU or build does not have it");
        return false;
    }
    return true;
}

// A test case that cannot run at all here says so with "SKIPPED: ", which ctest reports as skipped
// (tests/CMakeLists.txt), never as passed. (Catch2 2.13 has no skip of its own.)
#define SKIP_TEST(why) WARN("SKIPPED: " << why)

// Every backend of this architecture's build; the tests skip (with a warning) those this CPU
// cannot run (an x86-64 CPU without AVX-512, say).
#if defined(__aarch64__)
#define ALL_BACKENDS GemmBackend::reference, GemmBackend::neon
#else
#define ALL_BACKENDS GemmBackend::reference, GemmBackend::avx2, GemmBackend::avx512
#endif

// Shapes that hit the kernels' edges: 1, tiles (6×16 for AVX2, 6×32 for AVX-512, 12×8 for NEON)
// and one past them, primes, K = 0, K just past the KC blocks (384), M past the MC blocks (144,
// 192), shapes big enough for the packed path and for two threads (split by rows when M ≥ N, by
// columns otherwise).
const std::vector<std::vector<i64>> kShapes = {
    {1, 1, 1},     {1, 1, 0},     {3, 2, 0},      {1, 17, 5},     {7, 1, 3},      {6, 16, 8},
    {5, 15, 1},    {7, 17, 9},    {13, 17, 19},   {31, 29, 37},   {12, 32, 64},   {64, 64, 64},
    {97, 101, 103}, {6, 16, 385}, {11, 23, 400},  {150, 40, 390}, {1, 300, 1000}, {300, 1, 700},
    {20, 520, 300}, {310, 200, 513}, {145, 47, 64}, {700, 37, 200}, {6, 32, 257},
    {13, 33, 260},  {193, 31, 100}, {200, 65, 300}, {5, 48, 520},
    // At most one vector wide (the narrow 12-row tile): rows past 12 and 24, N = 1, 7, 8, 9, 15,
    // 16, K up to and past KC, and one big enough for two threads.
    {13, 16, 16},   {25, 8, 33},    {12, 9, 7},     {37, 15, 384},  {24, 1, 100},   {47, 7, 64},
    {130, 16, 400}, {2000, 16, 128},
    // NEON's 12×8 tile and its 4-wide narrow tile: 12 and 13 rows, 24 and 25, N = 4, 5, 8, 12, and
    // the packed path (K > 384) with a partial last A panel.
    {12, 8, 8},     {13, 4, 50},    {25, 5, 390},   {36, 12, 400},  {24, 9, 385},
};

}  // namespace

TEST_CASE("the result checker rejects a slightly wrong product", "[gemm]") {
    std::mt19937 rng(1);
    const Problem p{false, false, 9, 11, 40, 1.0f, 0.0f, 1};
    const Operands o = make_operands(rng, p);
    Matrix c = o.C;
    qkv::kernels::gemm_reference(false, false, p.M, p.N, p.K, 1.0f, o.A.data.data(), o.A.ld,
                                 o.B.data.data(), o.B.ld, 0.0f, c.data.data(), c.ld);
    CHECK(check_result(p, o, c).empty());
    c.data[static_cast<std::size_t>(4 * c.ld + 5)] += 1e-3f;  // one element off by 1e-3
    CHECK_FALSE(check_result(p, o, c).empty());
    c = o.C;  // a product that misses the last k term
    qkv::kernels::gemm_reference(false, false, p.M, p.N, p.K - 1, 1.0f, o.A.data.data(), o.A.ld,
                                 o.B.data.data(), o.B.ld, 0.0f, c.data.data(), c.ld);
    CHECK_FALSE(check_result(p, o, c).empty());
}

// gemm_rowwise (what f64 products and the reference backend run) promises the triple loop's
// bits exactly, not just a close result: every shape class, transposes, α, β and padding, in f32
// and f64, on 1 and 2 threads (rows split between threads must not change a bit). Padding
// columns of C must stay untouched (they hold NaN, so the comparison uses the bit patterns).
template <class T>
void check_rowwise_bits(const Problem& p, const Operands& o) {
    auto widen = [](const Matrix& m) { return std::vector<T>(m.data.begin(), m.data.end()); };
    const std::vector<T> A = widen(o.A), B = widen(o.B);
    std::vector<T> want = widen(o.C), got = widen(o.C);
    qkv::kernels::gemm_reference(p.ta, p.tb, p.M, p.N, p.K, T(p.alpha), A.data(), o.A.ld, B.data(),
                                 o.B.ld, T(p.beta), want.data(), o.C.ld);
    qkv::kernels::gemm_rowwise(p.ta, p.tb, p.M, p.N, p.K, T(p.alpha), A.data(), o.A.ld, B.data(),
                               o.B.ld, T(p.beta), got.data(), o.C.ld);
    CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(T)) == 0);
}

TEST_CASE("the row-wise loops give the reference's bits", "[gemm]") {
    const int threads = GENERATE(1, 2);
    const Setting setting(qkv::kernels::gemm_backend(), threads);
    std::mt19937 rng(7);
    const float alphas[] = {1.0f, -0.75f, 2.5f};
    const float betas[] = {0.0f, 1.0f, -1.5f};
    int index = 0;
    for (const auto& s : kShapes) {
        for (int t = 0; t < 4; ++t, ++index) {
            const Problem p{(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], alphas[index % 3],
                            betas[(index / 3) % 3], (index % 4 == 1) ? 3 : 0};
            const Operands o = make_operands(rng, p);
            INFO("threads=" << threads << " " << describe(p));
            check_rowwise_bits<float>(p, o);
            check_rowwise_bits<double>(p, o);
        }
    }
}

TEST_CASE("gemm matches a float64 reference on edge shapes", "[gemm]") {
    const auto backend = GENERATE(ALL_BACKENDS);
    const int threads = GENERATE(1, 2);
    if (!available(backend)) return;
    const Setting setting(backend, threads);
    std::mt19937 rng(42);
    const float alphas[] = {1.0f, -0.75f, 2.5f};
    const float betas[] = {0.0f, 1.0f, -1.5f};
    int index = 0;
    for (const auto& s : kShapes) {
        for (int t = 0; t < 4; ++t, ++index) {
            // Cycle α, β and padding with the shape index so every combination appears.
            const Problem p{(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], alphas[index % 3],
                            betas[(index / 3) % 3], (index % 4 == 1) ? 3 : 0};
            const Operands o = make_operands(rng, p);
            INFO(name(backend) << " threads=" << threads << " " << describe(p));
            CHECK(run_and_check(p, o) == "");
        }
    }
}

TEST_CASE("gemm matches a float64 reference on random shapes", "[gemm]") {
    const auto backend = GENERATE(ALL_BACKENDS);
    const int threads = GENERATE(1, 2);
    if (!available(backend)) return;
    const Setting setting(backend, threads);
    std::mt19937 rng(7 + threads);
    std::uniform_int_distribution<i64> size(1, 90), inner(0, 420), pad(0, 5);
    std::uniform_int_distribution<int> coin(0, 1), pick(0, 3);
    const float betas[] = {0.0f, 1.0f, 0.5f, -2.0f};
    for (int trial = 0; trial < 60; ++trial) {
        const Problem p{coin(rng) == 1, coin(rng) == 1, size(rng), size(rng), inner(rng),
                        trial % 5 == 0 ? -1.0f : 1.25f, betas[pick(rng)], pad(rng)};
        const Operands o = make_operands(rng, p);
        INFO(name(backend) << " threads=" << threads << " " << describe(p));
        CHECK(run_and_check(p, o) == "");
    }
}

TEST_CASE("the AVX2 and AVX-512 kernels give bit-identical results", "[gemm]") {
    // Both sum each element of C in the same order (one FMA chain per KC = 384 block of k), so
    // a training run does not depend on which kernel the CPU picks. (Across architectures, the
    // next test compares every SIMD kernel with results recorded on x86.)
    if (!qkv::kernels::gemm_backend_available(GemmBackend::avx2) ||
        !qkv::kernels::gemm_backend_available(GemmBackend::avx512)) {
        SKIP_TEST("needs both the AVX2 and the AVX-512 kernel, and this CPU or build lacks one");
        return;
    }
    const int threads = GENERATE(1, 2);
    std::mt19937 rng(11);
    std::uniform_int_distribution<i64> size(1, 300), inner(1, 900), pad(0, 3), narrow(1, 16);
    std::uniform_int_distribution<int> coin(0, 1);
    for (int trial = 0; trial < 40; ++trial) {
        // From trial 25 on, products at most 16 columns wide (AVX-512's narrow tile).
        const i64 n = trial < 25 ? size(rng) : narrow(rng);
        const Problem p{coin(rng) == 1, coin(rng) == 1, size(rng), n, inner(rng),
                        0.5f, trial % 2 == 0 ? 0.0f : 1.0f, pad(rng)};
        const Operands o = make_operands(rng, p);
        Matrix c2 = o.C, c512 = o.C;
        for (auto [backend, c] : {std::pair{GemmBackend::avx2, &c2}, {GemmBackend::avx512, &c512}}) {
            const Setting setting(backend, threads);
            qkv::kernels::gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, o.A.data.data(), o.A.ld,
                               o.B.data.data(), o.B.ld, p.beta, c->data.data(), c->ld);
        }
        INFO("threads=" << threads << " " << describe(p));
        CHECK(same_bits(p, c2, c512));
    }
}

// The products of the recorded-bits test, and their hash. Inputs come from an integer generator
// and exact conversions, not from <random>'s distributions (whose outputs differ between standard
// libraries), so every platform multiplies the very same numbers.
struct PortableRandom {
    std::uint64_t state;
    std::uint64_t next() { return state = state * 6364136223846793005ull + 1442695040888963407ull; }
    // [-1, 1) in steps of 2⁻²³: a 24-bit integer times a power of two, minus 1, all exact.
    float unit() { return float(i64(next() >> 40)) * (1.0f / 8388608.0f) - 1.0f; }
    i64 pick(i64 lo, i64 hi) { return lo + i64((next() >> 33) % std::uint64_t(hi - lo + 1)); }
};

// FNV-1a over the bytes of every float of C, padding included (it must stay as it was).
std::uint64_t hash_products(int count) {
    PortableRandom rng{2024};
    std::uint64_t h = 1469598103934665603ull;
    for (int t = 0; t < count; ++t) {
        // Shape classes, so that every ISA meets every kernel: the direct path (small K), the
        // narrow tiles (N ≤ 4, 8, 16: NEON, AVX2, AVX-512), the tall tile (AVX-512, ≥ 12 rows),
        // the packed path with K cut into KC blocks, and products big enough for two threads.
        const int cls = t % 5;
        i64 M, N, K;
        if (cls == 0) M = rng.pick(1, 40), N = rng.pick(1, 40), K = rng.pick(1, 80);
        else if (cls == 1) M = rng.pick(1, 100), N = rng.pick(1, 17), K = rng.pick(1, 420);
        else if (cls == 2) M = rng.pick(1, 120), N = rng.pick(1, 120), K = rng.pick(1, 150);
        else if (cls == 3) M = rng.pick(1, 150), N = rng.pick(1, 70), K = rng.pick(385, 800);
        else M = rng.pick(100, 200), N = rng.pick(100, 200), K = rng.pick(64, 200);
        const bool ta = (rng.next() >> 20) & 1, tb = (rng.next() >> 20) & 1;
        const int mode = int(rng.pick(0, 3));  // beta = 0, 1, -1.5, or a bias row
        const float alpha = t % 3 == 0 ? 1.0f : (t % 3 == 1 ? -0.75f : 2.5f);
        const i64 pad = rng.pick(0, 3);
        const i64 lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        std::vector<float> A(static_cast<std::size_t>((ta ? K : M) * lda)), B(static_cast<std::size_t>((tb ? N : K) * ldb));
        std::vector<float> C(static_cast<std::size_t>(M * ldc)), bias(static_cast<std::size_t>(N));
        for (auto* v : {&A, &B, &C, &bias})
            for (float& x : *v) x = rng.unit();
        const float beta = mode == 1 ? 1.0f : (mode == 2 ? -1.5f : 0.0f);
        qkv::kernels::gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc,
                           mode == 3 ? bias.data() : nullptr);
        for (const float x : C) {
            std::uint32_t bits = 0;
            std::memcpy(&bits, &x, sizeof bits);
            for (int shift = 0; shift < 32; shift += 8) h = (h ^ ((bits >> shift) & 0xffu)) * 1099511628211ull;
        }
    }
    return h;
}

TEST_CASE("every SIMD kernel gives the bits recorded with AVX2 on x86-64", "[gemm]") {
    // The promise across architectures: AVX2, AVX-512 and NEON compute each element of C as one
    // FMA chain over k in order, cut at KC = 384 and written back alike, so their results are the
    // same bits. The hash of 150 products (every path, transposes, beta 0 / 1 / -1.5, bias) was
    // recorded with the AVX2 kernel on x86-64; each SIMD kernel here must reproduce it, on one and
    // on two threads. (On ARM this runs under qemu in CI; qemu's FMA is exact IEEE arithmetic.)
    constexpr std::uint64_t kRecorded = 0xbe46a313eea241f3ull;
    int ran = 0;
    for (const GemmBackend backend : {GemmBackend::avx2, GemmBackend::avx512, GemmBackend::neon}) {
        if (!qkv::kernels::gemm_backend_available(backend)) continue;
        for (const int threads : {1, 2}) {
            const Setting setting(backend, threads);
            INFO(name(backend) << " threads=" << threads);
            CHECK(hash_products(150) == kRecorded);
            ++ran;
        }
    }
    if (ran == 0) SKIP_TEST("this CPU or build has no SIMD kernel");
}

TEST_CASE("gemm with a bias row equals copying the bias into C and accumulating onto it", "[gemm]") {
    // C ← α·op(A)·op(B) + bias (each row): the kernels add the bias as they write each tile. The
    // result must be the very bits of the old way (bias copied into C, then β = 1), and right.
    const auto backend = GENERATE(ALL_BACKENDS);
    const int threads = GENERATE(1, 2);
    if (!available(backend)) return;
    const Setting setting(backend, threads);
    std::mt19937 rng(5);
    int index = 0;
    for (const auto& s : kShapes) {
        for (int t = 0; t < 4; ++t, ++index) {
            const float alpha = index % 7 == 3 ? 0.0f : (index % 2 == 0 ? 1.0f : -0.5f);
            Problem p{(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], alpha, 1.0f, (index % 3 == 1) ? 2 : 0};
            Operands o = make_operands(rng, p);
            const Matrix bias = random_matrix(rng, 1, p.N, 0);
            for (i64 r = 0; r < p.M; ++r)  // o.C: the bias in every row (the old way's start)
                for (i64 c = 0; c < p.N; ++c) o.C.data[static_cast<std::size_t>(r * o.C.ld + c)] = bias.at(0, c);
            Matrix old_way = o.C, with_bias = o.C;
            for (i64 r = 0; r < p.M; ++r)  // the bias path must not read C: poison it
                for (i64 c = 0; c < p.N; ++c) with_bias.data[static_cast<std::size_t>(r * with_bias.ld + c)] = kNaN;
            qkv::kernels::gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, o.A.data.data(), o.A.ld, o.B.data.data(), o.B.ld,
                               1.0f, old_way.data.data(), old_way.ld);
            qkv::kernels::gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, o.A.data.data(), o.A.ld, o.B.data.data(), o.B.ld,
                               0.0f, with_bias.data.data(), with_bias.ld, bias.data.data());
            INFO(name(backend) << " threads=" << threads << " " << describe(p));
            CHECK(check_result(p, o, with_bias) == "");
            CHECK(same_bits(p, with_bias, old_way));
        }
    }
    float a = 1, b = 1, c = 0, bias = 2;
    CHECK_THROWS_WITH(qkv::kernels::gemm(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 1.0f, &c, 1, &bias),
                      Catch::Contains("beta must be 0"));
}

TEST_CASE("gemm follows the BLAS rules for alpha = 0, beta = 0 and K = 0", "[gemm]") {
    const auto backend = GENERATE(ALL_BACKENDS);
    if (!available(backend)) return;
    const Setting setting(backend, 1);
    const float nan = kNaN;
    std::vector<float> a = {nan, nan, nan, nan}, b = {1, 2, 3, 4}, c = {1, 2, 3, 4};
    SECTION("alpha = 0 never reads A or B: C <- beta C") {
        qkv::kernels::gemm(false, false, 2, 2, 2, 0.0f, a.data(), 2, b.data(), 2, 2.0f, c.data(), 2);
        CHECK(c == std::vector<float>{2, 4, 6, 8});
    }
    SECTION("K = 0 gives C <- beta C, and beta = 0 clears even NaN") {
        std::vector<float> c_nan = {nan, nan, nan, nan};
        qkv::kernels::gemm(false, false, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 2, 0.0f,
                           c_nan.data(), 2);
        CHECK(c_nan == std::vector<float>{0, 0, 0, 0});
    }
    SECTION("M = 0 or N = 0 does nothing") {
        qkv::kernels::gemm(false, false, 0, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2);
        qkv::kernels::gemm(false, false, 2, 0, 2, 1.0f, a.data(), 2, b.data(), 1, 0.0f, c.data(), 1);
        CHECK(c == std::vector<float>{1, 2, 3, 4});
    }
}

TEST_CASE("gemm_batched matches per-matrix references, including broadcast operands", "[gemm]") {
    const auto backend = GENERATE(ALL_BACKENDS);
    const int threads = GENERATE(1, 2);
    if (!available(backend)) return;
    const Setting setting(backend, threads);
    std::mt19937 rng(3);
    // Small products (spread over threads one per task) and one large enough to thread inside.
    const std::vector<Problem> problems = {
        {false, true, 16, 16, 32, 0.125f, 0.0f, 1},  // attention scores Q·Kᵀ
        {true, false, 24, 32, 17, 1.0f, 1.0f, 0},    // dV = Pᵀ·dO, accumulated
        {false, false, 7, 9, 5, -1.0f, 0.5f, 2},
        {true, true, 130, 120, 140, 1.0f, 0.0f, 0},
    };
    for (const Problem& p : problems) {
        const i64 batch = 5;
        const Operands base = make_operands(rng, p);
        // A is broadcast (stride 0); B and C are separate matrices with a gap between them.
        std::vector<Operands> items;
        for (i64 b = 0; b < batch; ++b) items.push_back(make_operands(rng, p));
        const i64 sb = static_cast<i64>(base.B.data.size()) + 7;
        const i64 sc = static_cast<i64>(base.C.data.size()) + 3;
        std::vector<float> B(static_cast<std::size_t>(batch * sb), kNaN);
        std::vector<float> C(static_cast<std::size_t>(batch * sc), kNaN);
        for (i64 b = 0; b < batch; ++b) {
            items[static_cast<std::size_t>(b)].A = base.A;
            std::copy(items[b].B.data.begin(), items[b].B.data.end(), B.begin() + b * sb);
            std::copy(items[b].C.data.begin(), items[b].C.data.end(), C.begin() + b * sc);
        }
        qkv::kernels::gemm_batched(p.ta, p.tb, p.M, p.N, p.K, p.alpha, base.A.data.data(),
                                   base.A.ld, 0, B.data(), base.B.ld, sb, p.beta, C.data(),
                                   base.C.ld, sc, batch);
        for (i64 b = 0; b < batch; ++b) {
            Matrix result = items[static_cast<std::size_t>(b)].C;
            std::copy(C.begin() + b * sc, C.begin() + b * sc + static_cast<i64>(result.data.size()),
                      result.data.begin());
            INFO(name(backend) << " threads=" << threads << " batch entry " << b << " "
                               << describe(p));
            CHECK(check_result(p, items[static_cast<std::size_t>(b)], result) == "");
        }
    }
}

TEST_CASE("gemm in float64 is exact on small integers", "[gemm]") {
    // op(A) = [[1,2,3],[4,5,6]], op(B) = [[1,0],[0,1],[1,1]]: A·B = [[4,5],[10,11]].
    const std::vector<double> a = {1, 2, 3, 4, 5, 6}, a_t = {1, 4, 2, 5, 3, 6};
    const std::vector<double> b = {1, 0, 0, 1, 1, 1}, b_t = {1, 0, 1, 0, 1, 1};
    const auto ta = GENERATE(false, true);
    const auto tb = GENERATE(false, true);
    std::vector<double> c = {1, 1, 1, 1};
    qkv::kernels::gemm(ta, tb, 2, 2, 3, 2.0, (ta ? a_t : a).data(), ta ? 2 : 3,
                       (tb ? b_t : b).data(), tb ? 3 : 2, -1.0, c.data(), 2);
    CHECK(c == std::vector<double>{7, 9, 19, 21});
    std::vector<double> batched(8, 1.0);
    qkv::kernels::gemm_batched(ta, tb, 2, 2, 3, 1.0, (ta ? a_t : a).data(), ta ? 2 : 3, 0,
                               (tb ? b_t : b).data(), tb ? 3 : 2, 0, 0.0, batched.data(), 2, 4, 2);
    CHECK(batched == std::vector<double>{4, 5, 10, 11, 4, 5, 10, 11});
}

TEST_CASE("gemm rejects bad arguments with qkv::Error", "[gemm]") {
    std::vector<float> x(64, 1.0f);
    float* p = x.data();
    using qkv::kernels::gemm;
    CHECK_THROWS_AS(gemm(false, false, -1, 2, 2, 1.0f, p, 2, p, 2, 0.0f, p, 2), qkv::Error);
    CHECK_THROWS_AS(gemm(false, false, 2, 2, 3, 1.0f, p, 2, p, 2, 0.0f, p, 2), qkv::Error);  // lda<K
    CHECK_THROWS_AS(gemm(true, false, 3, 2, 2, 1.0f, p, 2, p, 2, 0.0f, p, 3), qkv::Error);   // lda<M
    CHECK_THROWS_AS(gemm(false, true, 2, 3, 2, 1.0f, p, 2, p, 1, 0.0f, p, 3), qkv::Error);   // ldb<K
    CHECK_THROWS_AS(gemm(false, false, 2, 3, 2, 1.0f, p, 2, p, 3, 0.0f, p, 2), qkv::Error);  // ldc<N
    CHECK_THROWS_AS(gemm(false, false, 2, 2, 2, 1.0f, nullptr, 2, p, 2, 0.0f, p, 2), qkv::Error);
    CHECK_THROWS_WITH(gemm(false, false, 2, 2, 3, 1.0f, p, 2, p, 2, 0.0f, p, 2),
                      Catch::Contains("lda"));
    // Batched results that overlap would race between threads.
    CHECK_THROWS_AS(qkv::kernels::gemm_batched(false, false, 2, 2, 2, 1.0f, p, 2, 0, p, 2, 0, 0.0f,
                                               p, 2, 3, 2),
                    qkv::Error);
    CHECK_THROWS_AS(qkv::kernels::gemm_batched(false, false, 2, 2, 2, 1.0f, p, 2, 0, p, 2, 0, 0.0f,
                                               p, 2, 4, -1),
                    qkv::Error);
}

TEST_CASE("the backend can be switched and reports what it runs", "[gemm]") {
    const GemmBackend before = qkv::kernels::gemm_backend();
    // Chosen by CPU (unless QKV_GEMM forced one): the widest vectors the CPU has.
    const char* env = std::getenv("QKV_GEMM");
    if (env == nullptr || *env == '\0' || std::string(env) == "auto") {
        const GemmBackend best = qkv::kernels::cpu_has_avx512()     ? GemmBackend::avx512
                                 : qkv::kernels::cpu_has_avx2_fma() ? GemmBackend::avx2
                                 : qkv::kernels::cpu_has_neon()     ? GemmBackend::neon
                                                                    : GemmBackend::reference;
        CHECK(before == best);
    }
    qkv::kernels::set_gemm_backend(GemmBackend::reference);
    CHECK(qkv::kernels::gemm_backend() == GemmBackend::reference);
    CHECK(qkv::kernels::gemm_backend_available(GemmBackend::reference));
    CHECK(qkv::kernels::gemm_backend_available(GemmBackend::avx2) ==
          qkv::kernels::cpu_has_avx2_fma());
    CHECK(qkv::kernels::gemm_backend_available(GemmBackend::avx512) ==
          qkv::kernels::cpu_has_avx512());
    CHECK(qkv::kernels::gemm_backend_available(GemmBackend::neon) == qkv::kernels::cpu_has_neon());
    // One architecture's kernels at most: NEON on AArch64, AVX2 / AVX-512 on x86-64.
    CHECK_FALSE((qkv::kernels::cpu_has_neon() && qkv::kernels::cpu_has_avx2_fma()));
#if defined(__aarch64__)
    CHECK(qkv::kernels::cpu_has_neon());  // Advanced SIMD is part of every AArch64 CPU
#endif
    // Every AVX-512 CPU has AVX2 and FMA, and the kernel may use them.
    if (qkv::kernels::cpu_has_avx512()) CHECK(qkv::kernels::cpu_has_avx2_fma());
    for (const GemmBackend b : {GemmBackend::avx2, GemmBackend::avx512, GemmBackend::neon}) {
        INFO(name(b));
        if (qkv::kernels::gemm_backend_available(b)) {
            qkv::kernels::set_gemm_backend(b);
            CHECK(qkv::kernels::gemm_backend() == b);
        } else {
            CHECK_THROWS_AS(qkv::kernels::set_gemm_backend(b), qkv::Error);
        }
    }
    CHECK(std::string(name(GemmBackend::avx512)) == "avx512");
    CHECK(std::string(name(GemmBackend::neon)) == "neon");
    qkv::kernels::set_gemm_backend(before);
}

TEST_CASE("parallel_for covers the range exactly once and never nests", "[parallel]") {
    const int before = qkv::num_threads();
    const int threads = GENERATE(1, 2, 3);
    qkv::set_num_threads(threads);
    CHECK(qkv::num_threads() == threads);
    SECTION("every index exactly once, in at most 4 chunks per thread") {
        const i64 begin = GENERATE(as<i64>{}, 0, 5);
        const i64 end = GENERATE(as<i64>{}, 5, 6, 7, 1000);
        std::vector<std::atomic<int>> hits(1000);
        std::atomic<int> calls{0};
        qkv::parallel_for(begin, end, 1, [&](i64 lo, i64 hi) {
            ++calls;
            for (i64 i = lo; i < hi; ++i) ++hits[static_cast<std::size_t>(i)];
        });
        for (i64 i = 0; i < 1000; ++i)
            CHECK(hits[static_cast<std::size_t>(i)] == (i >= begin && i < end ? 1 : 0));
        CHECK(calls <= 4 * threads);
        if (threads == 1) CHECK(calls == (end > begin ? 1 : 0));
    }
    SECTION("a range below the grain runs as one serial call") {
        std::atomic<int> calls{0};
        qkv::parallel_for(0, 100, 64, [&](i64 lo, i64 hi) {
            ++calls;
            CHECK((lo == 0 && hi == 100));
        });
        CHECK(calls == 1);
    }
    SECTION("inside a parallel region the inner loop is serial") {
        std::atomic<int> inner_calls{0}, outer_calls{0};
        qkv::parallel_for(0, 2, 1, [&](i64, i64) {
            ++outer_calls;
            qkv::parallel_for(0, 1000, 1, [&](i64 lo, i64 hi) {
                ++inner_calls;
                CHECK((lo == 0 && hi == 1000));
            });
        });
        CHECK(inner_calls == outer_calls);
    }
    SECTION("an exception in a chunk reaches the caller") {
        CHECK_THROWS_AS(qkv::parallel_for(0, 10, 1,
                                          [](i64 lo, i64) {
                                              if (lo == 0) qkv::fail("chunk {} failed", lo);
                                          }),
                        qkv::Error);
    }
    qkv::set_num_threads(before);
}

TEST_CASE("set_num_threads rejects values below 1", "[parallel]") {
    CHECK_THROWS_AS(qkv::set_num_threads(0), qkv::Error);
    CHECK_THROWS_AS(qkv::set_num_threads(-3), qkv::Error);
    CHECK(qkv::num_threads() >= 1);
}
