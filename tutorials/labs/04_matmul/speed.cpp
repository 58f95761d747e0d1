/// \file
/// \brief Lab 4's speed test: your matmul_naive and matmul_fast next to qkv's kernel, in GFLOP/s.
///
/// `lab04_speed [--size N] [--runs R]` multiplies two N × N float32 matrices (default 256) with
/// each, on one thread, and prints the best of R runs (default 3) as GFLOP/s (2N³ floating-point
/// operations per product). The numbers depend on the machine; the ratios tell you what blocking
/// and register tiling bought. The grader (`grade 4`) runs this after your code passes.
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "04_matmul/matmul.hpp"

namespace {

using Fn = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, std::int64_t, const float*,
                    std::int64_t, float, float*, std::int64_t);

void qkv_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, std::int64_t lda,
              const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
    qkv::kernels::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Best time of `runs` products, in seconds.
double best_time(Fn fn, std::int64_t n, int runs, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c) {
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        fn(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    std::int64_t n = 256;
    int runs = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--size") n = std::atoll(argv[i + 1]);
        else if (flag == "--runs") runs = std::atoi(argv[i + 1]);
    }
    if (n < 1 || runs < 1 || argc % 2 == 0) {
        fmt::print(stderr, "usage: lab04_speed [--size N] [--runs R]   (N ≥ 1, R ≥ 1)\n");
        return 2;
    }
    qkv::set_num_threads(1);  // one thread each: the comparison is of the algorithms
    qkv::Generator gen(4);
    const std::vector<float> a = qkv::randn({n, n}, gen).to_vector<float>(), b = qkv::randn({n, n}, gen).to_vector<float>();
    std::vector<float> c(std::size_t(n * n));
    const double flops = 2.0 * double(n) * double(n) * double(n);
    try {
        const double naive = best_time(lab::matmul_naive, n, runs, a, b, c);
        const double fast = best_time(lab::matmul_fast, n, runs, a, b, c);
        const double kernel = best_time(qkv_gemm, n, runs, a, b, c);
        const std::string backend = qkv::kernels::gemm_backend_name(qkv::kernels::gemm_backend());
        fmt::print("matmul {0}×{0}×{0}, float32, one thread, best of {1} runs:\n", n, runs);
        fmt::print("  matmul_naive (yours)  {:8.2f} GFLOP/s\n", flops / naive / 1e9);
        fmt::print("  matmul_fast (yours)   {:8.2f} GFLOP/s  ({:.1f}× your naive loop)\n", flops / fast / 1e9, naive / fast);
        fmt::print("  qkv::kernels::gemm    {:8.2f} GFLOP/s  ({:.1f}× your matmul_fast; backend {})\n", flops / kernel / 1e9,
                   fast / kernel, backend);
    } catch (const lab::NotImplemented& e) {
        fmt::print(stderr, "lab04_speed: {} (write it in tutorials/labs/04_matmul/lab.cpp)\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "lab04_speed: {}\n", e.what());
        return 1;
    }
    return 0;
}
