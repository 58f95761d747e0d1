/// \file
/// \brief Benchmark: the materialising attention kernel against the tiled one (online softmax),
/// forward + backward, time and memory, over sequence lengths.
///
/// Usage: `bench_attention [--T 64,128,...] [--batch B] [--heads H] [--dim D] [--runs N]
/// [--threads N] [--kernel both|materialize|tiled] [--no-causal]`
///
/// For each T it times forward + backward of qkv::attention on (B, H, T, D) queries, keys and
/// values (causal unless --no-causal), the two kernels alternately in the same process (so both see
/// the same drift of a shared machine), and prints the median and range of the runs, the peak of
/// tensor memory during forward + backward beyond the inputs (qkv::memory_stats(), exact and the
/// same on every machine), and how far the tiled results are from the materialising ones. Run one
/// kernel at one length under `/usr/bin/time -v` to see the process's peak resident memory:
/// `/usr/bin/time -v build/tests/bench/bench_attention --T 4096 --kernel tiled --runs 1`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {

struct Options {
    std::vector<std::int64_t> lengths{64, 128, 256, 512, 1024, 2048, 4096};
    std::int64_t batch = 1, heads = 4, dim = 64, runs = 5;
    int threads = 0;
    bool causal = true;
    std::vector<AttentionKernel> kernels{AttentionKernel::materialize, AttentionKernel::tiled};
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "bench_attention: %s\nusage: bench_attention [--T 64,128,...] [--batch B] [--heads H] [--dim D] "
                 "[--runs N] [--threads N] [--kernel both|materialize|tiled] [--no-causal]\n",
                 why.c_str());
    std::exit(2);
}

std::int64_t positive(const char* flag, const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1) usage(std::string(flag) + ": expected a positive integer, got '" + text + "'");
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--T") {
            o.lengths.clear();
            std::string list = value();
            std::size_t start = 0;
            while (start <= list.size()) {
                const std::size_t comma = std::min(list.find(',', start), list.size());
                o.lengths.push_back(positive("--T", list.substr(start, comma - start).c_str()));
                start = comma + 1;
            }
        } else if (a == "--batch") o.batch = positive("--batch", value());
        else if (a == "--heads") o.heads = positive("--heads", value());
        else if (a == "--dim") o.dim = positive("--dim", value());
        else if (a == "--runs") o.runs = positive("--runs", value());
        else if (a == "--threads") o.threads = int(positive("--threads", value()));
        else if (a == "--no-causal") o.causal = false;
        else if (a == "--kernel") {
            const std::string k = value();
            if (k == "both") o.kernels = {AttentionKernel::materialize, AttentionKernel::tiled};
            else if (k == "materialize") o.kernels = {AttentionKernel::materialize};
            else if (k == "tiled") o.kernels = {AttentionKernel::tiled};
            else usage("--kernel: expected both, materialize or tiled, got '" + k + "'");
        } else usage("unknown option '" + a + "'");
    }
    return o;
}

struct Run {
    double ms = 0;
    std::int64_t peak_bytes = 0;  // beyond the inputs
    Tensor out, dq;
};

Run forward_backward(Tensor q, Tensor k, Tensor v, const Tensor& dout, AttentionKernel kernel,
                     bool causal) {
    q.set_grad(Tensor());
    k.set_grad(Tensor());
    v.set_grad(Tensor());
    AttentionOptions o;
    o.causal = causal;
    o.kernel = kernel;
    reset_peak_memory();
    const std::int64_t base = memory_stats().live_bytes;
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = attention(q, k, v, o);
    out.backward(dout);
    const auto t1 = std::chrono::steady_clock::now();
    Run r;
    r.ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    r.peak_bytes = memory_stats().peak_bytes - base;
    r.out = out.detach();
    r.dq = q.grad();
    return r;
}

double relative_diff(const Tensor& a, const Tensor& b) {
    return max_abs_diff(a, b) / std::max(max_abs_diff(b, zeros_like(b)), 1e-300);
}

const char* name(AttentionKernel k) { return k == AttentionKernel::tiled ? "tiled" : "materialize"; }

}  // namespace

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    if (o.threads > 0) set_num_threads(o.threads);
    fmt::print("attention forward + backward, (B, H, T, D) = ({}, {}, T, {}), {}, f32, {} thread{}, {} runs each "
               "(alternating), GEMM {}\n",
               o.batch, o.heads, o.dim, o.causal ? "causal" : "not causal", num_threads(), num_threads() == 1 ? "" : "s",
               o.runs, kernels::gemm_backend_name(kernels::gemm_backend()));
    fmt::print("{:>6}  {:<12} {:>10} {:>19}  {:>14}  {}\n", "T", "kernel", "median ms", "range ms", "peak MiB",
               "tiled vs materialize (max rel. diff)");
    for (const std::int64_t T : o.lengths) {
        Generator g(7);
        const Shape s{o.batch, o.heads, T, o.dim};
        const Tensor q = randn(s, g).requires_grad_(), k = randn(s, g).requires_grad_(), v = randn(s, g).requires_grad_();
        const Tensor dout = randn(s, g);
        std::vector<std::vector<Run>> runs(o.kernels.size());
        for (std::int64_t r = 0; r < o.runs; ++r)
            for (std::size_t i = 0; i < o.kernels.size(); ++i) {
                runs[i].push_back(forward_backward(q, k, v, dout, o.kernels[i], o.causal));
                // Only the first run's results are compared. Keeping every run's would hold their
                // memory, so each later run would get fresh pages from the system and time their
                // page faults too (at T = 64 that was most of the time measured).
                if (r > 0) runs[i].back().out = runs[i].back().dq = Tensor();
            }
        for (std::size_t i = 0; i < o.kernels.size(); ++i) {
            std::vector<double> ms;
            for (const Run& r : runs[i]) ms.push_back(r.ms);
            std::sort(ms.begin(), ms.end());
            std::string accuracy;
            if (o.kernels.size() == 2 && i == 1)
                accuracy = fmt::format("output {:.1e}, dQ {:.1e}", relative_diff(runs[1][0].out, runs[0][0].out),
                                       relative_diff(runs[1][0].dq, runs[0][0].dq));
            fmt::print("{:>6}  {:<12} {:>10.2f} {:>9.2f} – {:<8.2f} {:>10.1f}  {}\n", T, name(o.kernels[i]),
                       ms[ms.size() / 2], ms.front(), ms.back(), double(runs[i][0].peak_bytes) / (1 << 20), accuracy);
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 1;
}
