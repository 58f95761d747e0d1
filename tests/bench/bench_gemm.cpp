/// \file
/// \brief Benchmark: GFLOP/s of qkv's GEMM (AVX-512 and AVX2 at 1 and 2 threads, reference)
/// against OpenBLAS.
///
/// A reader learns here how to time a kernel honestly on a small shared machine. Every
/// contender runs on the same data in the same process; measurements are *interleaved* (sample 1
/// of every contender, then sample 2, ...) so that a burst of background load or a frequency
/// change hits all of them alike; each sample repeats the product until it lasts a few
/// milliseconds (timer resolution and call overhead vanish); and the reported number is the
/// *median* of the samples, which ignores the occasional interrupted one. The shapes are the
/// ones a small transformer runs: squares for reference, tall-skinny linear layers, and the
/// attention products with the transposes backward uses.
///
/// Two more traps on a 2-core VM, both measured here. After a multi-threaded call, OpenBLAS's
/// worker keeps spinning for about 130 ms, holding a whole core; and a thread that has gone to
/// sleep is often woken on the *caller's* core, where it waits behind the caller (qkv's pool
/// counters this by keeping its workers off the caller's core, see parallel.cpp; OpenBLAS does
/// not). So letting OpenBLAS's workers fall asleep between its samples (`--settle MS` sleeps
/// after each multi-threaded OpenBLAS sample) makes OpenBLAS slower, not fairer: the default
/// is 0, which keeps its workers spinning through the interleaved qkv samples, as they would in
/// a loop of back-to-back calls.
///
/// Contenders: `q512-1t`, `q512-2t` (the AVX-512 backend, when the CPU has it), `avx2-1t`,
/// `avx2-2t`, `blas1t`, `blas2t` and `ref1t`. The ratio columns compare the fastest qkv backend
/// this CPU runs (the one `QKV_GEMM=auto` picks) with OpenBLAS at the same thread count, or the
/// AVX2 backend when `--only` leaves that one out. On an AVX-512 CPU, OpenBLAS uses its AVX-512
/// kernel; `OPENBLAS_CORETYPE=Haswell bench_gemm --only avx2-1t,avx2-2t,blas1t,blas2t` holds it
/// to its AVX2 one, so the two AVX2 kernels meet on equal terms.
///
/// Usage: `bench_gemm [--quick] [--samples N] [--filter TEXT] [--only q512-1t,blas1t,...]
/// [--cputime] [--settle MS] [--shape M,N,K[,OP]]...`; each `--shape` (repeatable) replaces the
/// built-in table, e.g. `--shape 2048,384,128,NT` for a linear layer's forward product.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include "qkv/error.hpp"
#include "qkv/kernels/gemm.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/kernels/peak.hpp"

#ifdef QKV_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

using i64 = std::int64_t;
using Clock = std::chrono::steady_clock;

/// One row of the table: C(M×N) = op(A)·op(B) with inner dimension K.
struct Shape {
    std::string group;  ///< what the product is in a model
    i64 M, N, K;
    bool ta, tb;
};

std::vector<Shape> shape_table() {
    std::vector<Shape> shapes;
    for (i64 n : {32, 64, 128, 256, 512, 1024, 2048})
        shapes.push_back({"square", n, n, n, false, false});
    // A linear layer on 1024 tokens: forward X·W, and backward dX = dY·Wᵀ, dW = Xᵀ·dY.
    for (i64 k : {64, 256})
        for (i64 n : {64, 256}) shapes.push_back({"linear", 1024, n, k, false, false});
    shapes.push_back({"linear dX", 1024, 256, 256, false, true});
    shapes.push_back({"linear dW", 256, 256, 1024, true, false});
    // Attention for one head, T tokens, head size D: S = Q·Kᵀ (and dP = dO·Vᵀ), O = P·V (and
    // dQ = dS·K), dV = Pᵀ·dO (and dK = dSᵀ·Q).
    for (i64 t : {16, 32, 64, 128})
        for (i64 d : {16, 32, 64}) {
            shapes.push_back({"attn Q.Kt", t, t, d, false, true});
            shapes.push_back({"attn P.V", t, d, t, false, false});
            shapes.push_back({"attn Pt.dO", t, d, t, true, false});
        }
    return shapes;
}

/// The operands of one shape, random, with C overwritten (β = 0) by every call.
struct Data {
    std::vector<float> A, B, C;
    i64 lda, ldb, ldc;
};

Data make_data(const Shape& s, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    Data d;
    d.lda = s.ta ? s.M : s.K;
    d.ldb = s.tb ? s.K : s.N;
    d.ldc = s.N;
    d.A.resize(static_cast<std::size_t>(s.M * s.K));
    d.B.resize(static_cast<std::size_t>(s.K * s.N));
    d.C.resize(static_cast<std::size_t>(s.M * s.N));
    for (auto* v : {&d.A, &d.B, &d.C})
        for (float& x : *v) x = dist(rng);
    return d;
}

/// A contender: a name, the thread count it runs with, and how to run one product.
struct Contender {
    std::string name;
    std::function<void(const Shape&, Data&)> run;
    std::function<bool(const Shape&)> applies;
    bool spins_after = false;  ///< leaves threads spinning after a call (OpenBLAS with 2 threads)
};

void run_qkv(const Shape& s, Data& d) {
    qkv::kernels::gemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.0f,
                       d.C.data(), d.ldc);
}

// The contender name of a qkv SIMD backend at a thread count: "q512-1t", "avx2-2t".
std::string qkv_name(qkv::kernels::GemmBackend b, int threads) {
    return std::string(b == qkv::kernels::GemmBackend::avx512 ? "q512" : "avx2") + "-" +
           std::to_string(threads) + "t";
}

std::vector<Contender> contenders() {
    std::vector<Contender> list;
    auto always = [](const Shape&) { return true; };
    for (int threads : {1, 2}) {
        for (const auto backend : {qkv::kernels::GemmBackend::avx512, qkv::kernels::GemmBackend::avx2}) {
            if (!qkv::kernels::gemm_backend_available(backend)) continue;
            list.push_back({qkv_name(backend, threads),
                            [threads, backend](const Shape& s, Data& d) {
                                qkv::kernels::set_gemm_backend(backend);
                                qkv::set_num_threads(threads);
                                run_qkv(s, d);
                            },
                            always});
        }
#ifdef QKV_BENCH_OPENBLAS
        list.push_back({"blas" + std::to_string(threads) + "t",
                        [threads](const Shape& s, Data& d) {
                            openblas_set_num_threads(threads);
                            cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans,
                                        s.tb ? CblasTrans : CblasNoTrans, static_cast<int>(s.M),
                                        static_cast<int>(s.N), static_cast<int>(s.K), 1.0f,
                                        d.A.data(), static_cast<int>(d.lda), d.B.data(),
                                        static_cast<int>(d.ldb), 0.0f, d.C.data(),
                                        static_cast<int>(d.ldc));
                        },
                        always, threads > 1});
#endif
    }
    // The reference loop is ~100× slower: only small shapes, to keep the run short.
    list.push_back({"ref1t",
                    [](const Shape& s, Data& d) {
                        qkv::kernels::set_gemm_backend(qkv::kernels::GemmBackend::reference);
                        qkv::set_num_threads(1);
                        run_qkv(s, d);
                    },
                    [](const Shape& s) { return s.M * s.N * s.K <= 128 * 128 * 128; }});
    return list;
}

// Wall-clock time by default. With --cputime, the calling thread's CPU time instead: on a busy
// machine that excludes the time the thread waited for a core, which makes single-thread
// numbers comparable between runs (it is meaningless for 2-thread contenders).
bool g_cpu_time = false;

double now_seconds() {
    if (g_cpu_time) {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    }
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

/// Repetitions that make one sample last about \p target seconds (at least 1).
int calibrate(const Contender& c, const Shape& s, Data& d, double target) {
    c.run(s, d);  // warm up: caches, thread pool, scratch buffers
    int reps = 1;
    for (;;) {
        const double start = now_seconds();
        for (int r = 0; r < reps; ++r) c.run(s, d);
        const double t = (now_seconds() - start);
        if (t >= target / 4 || reps >= (1 << 24))
            return std::max(1, static_cast<int>(reps * target / std::max(t, 1e-9)));
        reps *= 4;
    }
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Median GFLOP/s of every applicable contender on one shape (0 where it does not apply).
std::vector<double> measure(const Shape& s, const std::vector<Contender>& list, int samples,
                            double target, int settle_ms, std::mt19937& rng) {
    Data d = make_data(s, rng);
    std::vector<int> reps(list.size(), 0);
    for (std::size_t c = 0; c < list.size(); ++c)
        if (list[c].applies(s)) {
            reps[c] = calibrate(list[c], s, d, target);
            if (list[c].spins_after)
                std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        }
    std::vector<std::vector<double>> rates(list.size());
    const double flops = 2.0 * static_cast<double>(s.M * s.N * s.K);
    for (int sample = 0; sample < samples; ++sample)
        for (std::size_t c = 0; c < list.size(); ++c) {
            if (reps[c] == 0) continue;
            list[c].run(s, d);  // settles the thread count/backend switch outside the timing
            const double start = now_seconds();
            for (int r = 0; r < reps[c]; ++r) list[c].run(s, d);
            rates[c].push_back(flops * reps[c] / (now_seconds() - start) / 1e9);
            if (list[c].spins_after)
                std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        }
    std::vector<double> result(list.size(), 0.0);
    for (std::size_t c = 0; c < list.size(); ++c)
        if (!rates[c].empty()) result[c] = median(rates[c]);
    return result;
}

struct Options {
    int samples = 9;
    double target = 0.004;  // seconds per sample
    std::string filter;
    std::string only;  // comma-separated contender names; empty: all
    int settle_ms = 0;  // sleep after each multi-threaded OpenBLAS sample
    std::vector<Shape> shapes;  // from --shape; empty: the built-in table
};

// "M,N,K" or "M,N,K,OP" with OP two letters of N/T (op(A), op(B)), e.g. "2048,384,128,NT".
Shape parse_shape(const std::string& text) {
    long long m = 0, n = 0, k = 0;
    char op[3] = {'N', 'N', 0};
    const int got = std::sscanf(text.c_str(), "%lld,%lld,%lld,%2c", &m, &n, &k, op);
    const bool op_ok = (op[0] == 'N' || op[0] == 'T') && (op[1] == 'N' || op[1] == 'T');
    if (got < 3 || m < 1 || n < 1 || k < 1 || !op_ok)
        qkv::fail("bench_gemm: --shape expects M,N,K[,NN|NT|TN|TT] with sizes >= 1, got '{}'", text);
    return {"custom", m, n, k, op[0] == 'T', op[1] == 'T'};
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") {
            o.samples = 3;
            o.target = 0.002;
        } else if (arg == "--samples" && i + 1 < argc) {
            o.samples = std::max(1, std::atoi(argv[++i]));
        } else if (arg == "--settle" && i + 1 < argc) {
            o.settle_ms = std::max(0, std::atoi(argv[++i]));
        } else if (arg == "--cputime") {
            g_cpu_time = true;
        } else if (arg == "--only" && i + 1 < argc) {
            // Wrapped in commas so that a name is found only as a whole item.
            o.only.assign(1, ',').append(argv[++i]).append(1, ',');
        } else if (arg == "--filter" && i + 1 < argc) {
            o.filter = argv[++i];
        } else if (arg == "--shape" && i + 1 < argc) {
            o.shapes.push_back(parse_shape(argv[++i]));
        } else {
            qkv::fail("usage: bench_gemm [--quick] [--samples N] [--filter TEXT] "
                      "[--only NAME,...] [--cputime] [--settle MS] [--shape M,N,K[,OP]]...; "
                      "bad argument '{}'",
                      arg);
        }
    }
    return o;
}

int index_of(const std::vector<Contender>& list, const std::string& name) {
    for (std::size_t i = 0; i < list.size(); ++i)
        if (list[i].name == name) return static_cast<int>(i);
    return -1;
}

void print_ratio(const std::vector<double>& r, int a, int b) {
    if (a >= 0 && b >= 0 && r[static_cast<std::size_t>(b)] > 0)
        std::printf(" %6.2f", r[static_cast<std::size_t>(a)] / r[static_cast<std::size_t>(b)]);
    else
        std::printf(" %6s", "-");
}

int run(int argc, char** argv) {
    const Options options = parse(argc, argv);
    if (!qkv::kernels::cpu_has_avx2_fma()) qkv::fail("bench_gemm: this CPU has no AVX2+FMA");
    auto list = contenders();
    if (!options.only.empty())
        std::erase_if(list, [&](const Contender& c) {
            std::string item(1, ',');
            item.append(c.name).append(1, ',');
            return options.only.find(item) == std::string::npos;
        });
    // Compare the backend `auto` picks; if --only left it out, the AVX2 one.
    auto best = qkv::kernels::cpu_has_avx512() ? qkv::kernels::GemmBackend::avx512
                                                : qkv::kernels::GemmBackend::avx2;
    if (index_of(list, qkv_name(best, 1)) < 0 && index_of(list, qkv_name(best, 2)) < 0)
        best = qkv::kernels::GemmBackend::avx2;
    const int q1 = index_of(list, qkv_name(best, 1)), q2 = index_of(list, qkv_name(best, 2));
    const int b1 = index_of(list, "blas1t"), b2 = index_of(list, "blas2t");
    // The ceiling of the compared backend on one core, measured now by the FMA probe (tutorial 04's
    // method): "%pk" is qkv's one-thread GFLOP/s as a share of it.
    const double peak = qkv::kernels::measure_fma_peak(best);
    std::printf("GFLOP/s, median of %d interleaved samples; ratio = qkv %s / OpenBLAS; %%pk = qkv %s 1 thread / "
                "one core's %s FMA peak, measured: %.1f GFLOP/s\n",
                options.samples, qkv::kernels::gemm_backend_name(best), qkv::kernels::gemm_backend_name(best),
                qkv::kernels::gemm_backend_name(best), peak);
#ifdef QKV_BENCH_OPENBLAS
    // Which of its kernels OpenBLAS runs: its own choice for this CPU, or what OPENBLAS_CORETYPE
    // forces (an environment may set it: a forced "Haswell" on an AVX-512 CPU halves OpenBLAS).
    const char* forced = std::getenv("OPENBLAS_CORETYPE");
    std::printf("OpenBLAS runs its %s kernels%s%s%s\n", openblas_get_corename(), forced ? " (forced: OPENBLAS_CORETYPE=" : "",
                forced ? forced : "", forced ? ")" : "");
#endif
    std::printf("%-11s %5s %5s %5s %2s", "group", "M", "N", "K", "op");
    for (const auto& c : list) std::printf(" %7s", c.name.c_str());
    std::printf(" %6s %6s %5s\n", "r1t", "r2t", "%pk");
    std::mt19937 rng(1);
    std::vector<double> ratios1, ratios2;
    for (const Shape& s : options.shapes.empty() ? shape_table() : options.shapes) {
        const std::string label = s.group + " " + std::to_string(s.M);
        if (!options.filter.empty() && label.find(options.filter) == std::string::npos) continue;
        const auto r = measure(s, list, options.samples, options.target, options.settle_ms, rng);
        std::printf("%-11s %5lld %5lld %5lld %c%c", s.group.c_str(), static_cast<long long>(s.M),
                    static_cast<long long>(s.N), static_cast<long long>(s.K), s.ta ? 'T' : 'N',
                    s.tb ? 'T' : 'N');
        for (double x : r) x > 0 ? std::printf(" %7.1f", x) : std::printf(" %7s", "-");
        print_ratio(r, q1, b1);
        print_ratio(r, q2, b2);
        if (q1 >= 0 && peak > 0) std::printf(" %4.0f%%", 100 * r[static_cast<std::size_t>(q1)] / peak);
        std::printf("\n");
        std::fflush(stdout);
        auto at = [&](int i) { return r[static_cast<std::size_t>(i)]; };
        if (q1 >= 0 && b1 >= 0) ratios1.push_back(at(q1) / at(b1));
        if (q2 >= 0 && b2 >= 0) ratios2.push_back(at(q2) / at(b2));
    }
    if (!ratios1.empty())
        std::printf("median ratio qkv/OpenBLAS, 1 thread: %.3f\n", median(ratios1));
    if (!ratios2.empty())
        std::printf("median ratio qkv/OpenBLAS, 2 threads: %.3f\n", median(ratios2));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const qkv::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
