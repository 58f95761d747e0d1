/// \file
/// \brief Training-step benchmark: forward + backward + AdamW of the GPT at three sizes, and one
/// causal multi-head attention layer alone. Prints median ms/step, tokens/s, effective GFLOP/s
/// (matmul and attention FLOPs / time) and that as a fraction of the FLOP floor — the step's FLOPs
/// at the peak of this CPU's cores, measured by an FMA probe in the same run
/// (qkv::kernels::measure_fma_peak(), the probe of tutorial 04) — at 1 and 2 threads. Not run by
/// ctest.
///
/// Usage: bench_train [--steps N] [--only S|M|L|attn] [--threads N] [--cputime]
///
/// `--cputime` times each step by the CPU time of the whole process instead of the wall clock.
/// On a busy machine that leaves out the time spent waiting for a core, so 1-thread numbers stay
/// comparable between runs; for more threads it is the sum over threads (cost, not latency).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <time.h>

#include <fmt/core.h>

#include "qkv/nn/transformer.hpp"
#include "qkv/optim/optim.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/kernels/peak.hpp"
#include "qkv/qkv.hpp"

using namespace qkv;

namespace {

struct Config {
    const char* name;
    std::int64_t vocab, dim, heads, layers, T, batch;
};

// FLOPs of one training step: forward matmuls (2·m·n·k each) and attention (QKᵀ and PV over the
// full T×T, as computed), times 3 for forward + backward (backward costs two products per one).
double step_flops(const Config& c) {
    const double tokens = double(c.batch * c.T);
    const double C = double(c.dim);
    const double per_token_linear = c.layers * (C * 3 * C + C * C + 2 * C * 4 * C) + C * double(c.vocab);
    const double attn = double(c.layers) * 2 * 2 * double(c.batch) * double(c.T) * double(c.T) * C;
    return 3 * (2 * tokens * per_token_linear + attn);
}

bool g_cpu_time = false;

// Milliseconds on the chosen clock.
double now_ms() {
    if (g_cpu_time) {
        timespec ts{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
double time_ms(F&& f, int warmup, int steps) {
    for (int i = 0; i < warmup; ++i) f();
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
        const double t0 = now_ms();
        f();
        ms.push_back(now_ms() - t0);
    }
    return median(ms);
}

double bench_gpt(const Config& c, int steps) {
    nn::GPTConfig g;
    g.vocab = c.vocab;
    g.block_size = c.T;
    g.dim = c.dim;
    g.heads = c.heads;
    g.layers = c.layers;
    nn::GPT model(g);
    optim::AdamW opt(model.named_parameters());
    Generator gen(1);
    std::vector<std::int32_t> ids(std::size_t(c.batch * c.T)), tgt(ids.size());
    for (auto& x : ids) x = std::int32_t(gen.below(std::uint64_t(c.vocab)));
    for (auto& x : tgt) x = std::int32_t(gen.below(std::uint64_t(c.vocab)));
    const Tensor x = from(ids, {c.batch, c.T}), y = from(tgt, {c.batch, c.T});
    return time_ms(
        [&] {
            opt.zero_grad();
            model.loss(x, y).backward();
            opt.step();
        },
        3, steps);
}

double bench_attention(int steps) {
    nn::MultiHeadAttentionConfig c;
    c.dim = 128;
    c.heads = 4;
    c.fused_qkv = true;
    Generator gen(2);
    nn::MultiHeadAttention layer(c, gen);
    Tensor x = randn({32, 64, 128}, gen).requires_grad_();
    AttentionOptions causal;
    causal.causal = true;
    return time_ms(
        [&] {
            layer.zero_grad();
            x.set_grad(Tensor());  // as the PyTorch reference does (x.grad = None): a fresh dx each step
            sum(layer.forward(x, causal)).backward();
        },
        3, steps);
}

}  // namespace

int main(int argc, char** argv) {
    int steps = 20;
    std::string only;
    std::vector<int> threads{1, 2};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
        else if (a == "--only" && i + 1 < argc) only = argv[++i];
        else if (a == "--threads" && i + 1 < argc) threads = {std::stoi(argv[++i])};
        else if (a == "--cputime") g_cpu_time = true;
        else {
            fmt::print(stderr, "usage: bench_train [--steps N] [--only S|M|L|attn] [--threads N] [--cputime]\n");
            return 2;
        }
    }
    const std::vector<Config> configs{{"S", 16, 64, 4, 2, 32, 32}, {"M", 64, 128, 4, 4, 64, 32}, {"L", 64, 256, 8, 4, 128, 16}};
    // The ceiling: one core's FMA peak, measured now (a shared VM's speed drifts; a ratio to a peak
    // measured in the same run drifts less than an absolute number).
    const double peak = kernels::measure_fma_peak();
    fmt::print("peak of one core: {:.1f} GFLOP/s (FMA probe, {})\n", peak,
               kernels::cpu_has_avx512() ? "AVX-512" : "AVX2");
    fmt::print("{:<6} {:>7} {:>12} {:>12} {:>10} {:>8}\n", "model", "threads", "ms/step", "tokens/s", "GFLOP/s", "% floor");
    // % of the FLOP floor: the time the step's FLOPs would take at the peak of `t` cores, over the time taken.
    auto floor_pct = [&](double gflops, int t) { return peak > 0 ? 100 * gflops / (peak * t) : 0.0; };
    for (int t : threads) {
        set_num_threads(t);
        for (const auto& c : configs) {
            if (!only.empty() && only != c.name) continue;
            const double ms = bench_gpt(c, c.name[0] == 'L' ? std::max(5, steps / 4) : steps);
            const double gflops = step_flops(c) / ms / 1e6;
            fmt::print("{:<6} {:>7} {:>12.2f} {:>12.0f} {:>10.1f} {:>7.1f}%\n", c.name, t, ms, double(c.batch * c.T) / ms * 1e3,
                       gflops, floor_pct(gflops, t));
        }
        if (only.empty() || only == "attn") {
            const double ms = bench_attention(steps);
            // projections (4 C×C matmuls) + QKᵀ + PV, forward and backward
            const double flops = 3 * (2.0 * 32 * 64 * 128 * 128 * 4 + 2 * 2.0 * 32 * 64 * 64 * 128);
            fmt::print("{:<6} {:>7} {:>12.2f} {:>12.0f} {:>10.1f} {:>7.1f}%\n", "attn", t, ms, 32 * 64 / ms * 1e3, flops / ms / 1e6,
                       floor_pct(flops / ms / 1e6, t));
        }
    }
}
