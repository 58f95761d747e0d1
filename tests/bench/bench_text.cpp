/// \file
/// \brief Language-model benchmark: nanoGPT's CPU "baby" recipe (TextTrainConfig::baby()) on a text,
/// as `qkv train --text FILE --recipe baby` runs it — the validation loss after the 2000 steps and the
/// time per step; or, with `--time N`, only the median time of N steps. bench_text_torch.py is the
/// same recipe in PyTorch and compare_text_torch.py runs the two alternately. Not run by ctest.
///
/// Usage: bench_text [--text FILE] [--seed N] [--threads N] [--steps N] [--time N]
///
/// Prints progress lines, then one line for compare_text_torch.py:
/// `result val_loss=… ms_step_mean=… ms_step_median=… steps=… threads=… seed=…` (val_loss is
/// absent with --time).
#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/io/file.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/train/text.hpp"

using namespace qkv;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    std::string path = "data/corpus.txt";
    std::uint64_t seed = 0;
    int threads = 0, time_steps = 0;
    std::int64_t steps = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--text" && i + 1 < argc) path = argv[++i];
        else if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
        else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
        else if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
        else if (a == "--time" && i + 1 < argc) time_steps = std::stoi(argv[++i]);
        else {
            fmt::print(stderr, "usage: bench_text [--text FILE] [--seed N] [--threads N] [--steps N] [--time N]\n");
            return 2;
        }
    }
    try {
        if (threads > 0) set_num_threads(threads);
        TextTrainConfig c = TextTrainConfig::baby();
        c.seed = seed;
        if (steps > 0) c.max_steps = steps;
        TextTrainer t(c, io::read_file(path, "text"), path);
        fmt::print("qkv: baby recipe on {} ({} training tokens, V {}), seed {}, {} thread{}\n", path, t.text().train.size(), t.tokenizer().vocab_size(), seed, num_threads(),
                   num_threads() == 1 ? "" : "s");
        std::vector<double> ms;
        auto timed_step = [&] {
            const auto t0 = std::chrono::steady_clock::now();
            const double loss = t.step();
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            return loss;
        };
        if (time_steps > 0) {
            for (int i = 0; i < 5; ++i) t.step();  // warm-up: buffers allocated, caches warm
            for (int i = 0; i < time_steps; ++i) timed_step();
            fmt::print("result ms_step_mean={:.3f} ms_step_median={:.3f} steps={} threads={} seed={}\n",
                       std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size()), median(ms), time_steps,
                       num_threads(), seed);
            return 0;
        }
        double sum = 0;
        while (t.steps_done() < c.max_steps) {
            sum += timed_step();
            if (t.steps_done() % c.eval_every == 0 || t.steps_done() == c.max_steps) {
                fmt::print("step {:>5}  train {:.4f}  val {:.4f}\n", t.steps_done(), sum / double(c.eval_every),
                           t.evaluate());
                std::fflush(stdout);
                sum = 0;
            }
        }
        fmt::print("result val_loss={:.4f} ms_step_mean={:.3f} ms_step_median={:.3f} steps={} threads={} seed={}\n",
                   t.evaluate(), std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size()), median(ms),
                   t.steps_done(), num_threads(), seed);
    } catch (const Error& e) {
        fmt::print(stderr, "bench_text: {}\n", e.what());
        return 1;
    }
}
