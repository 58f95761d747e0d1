/// \file
/// \brief GPT-2-small-sized inference speed: prompt processing and generation, tokens/s.
///
/// The model has GPT-2 small's shape (vocab 50 257, context 1024, d_model 768, 12 heads, 12 layers,
/// tanh GELU, head tied to the token embedding: 124 M parameters) with random weights — speed does not
/// depend on their values. Two numbers, the median of --repeats timings each:
/// - prompt: one forward pass over a prompt of --prompt tokens (no gradients), in tokens/s;
/// - generate: --tokens new tokens after a 16-token prompt, greedy, with the key/value cache, in new
///   tokens/s (the prompt's own pass included in the time).
/// tests/bench/bench_gpt2_torch.py does the same in PyTorch and compare_gpt2_torch.py runs both in turn.
///
///     bench_gpt2 [--threads N] [--prompt T] [--tokens N] [--repeats R]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
double seconds(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Tensor ids(std::int64_t n, std::uint64_t seed) {
    Generator gen(seed);
    std::vector<std::int32_t> v(static_cast<std::size_t>(n));
    for (auto& id : v) id = std::int32_t(gen.below(50257));
    return from(v, {1, n});
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    std::int64_t prompt = 128, tokens = 32, repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const long long v = std::atoll(argv[i + 1]);
        if (flag == "--threads") threads = int(v);
        else if (flag == "--prompt") prompt = v;
        else if (flag == "--tokens") tokens = v;
        else if (flag == "--repeats") repeats = v;
        else {
            fmt::print(stderr, "usage: bench_gpt2 [--threads N] [--prompt T] [--tokens N] [--repeats R]\n");
            return 2;
        }
    }
    set_num_threads(threads);
    nn::GPTConfig g;
    g.vocab = 50257;
    g.block_size = 1024;
    g.dim = 768;
    g.heads = 12;
    g.layers = 12;
    g.tanh_gelu = true;
    g.tie_weights = true;
    g.seed = 1;
    nn::GPT model(g);
    model.eval();
    const NoGradGuard no_grad;
    const Tensor long_prompt = ids(prompt, 2), short_prompt = ids(16, 3);
    Generator gen(0);
    model.forward(long_prompt);  // warm-up: buffers, page faults
    std::vector<double> prompt_tps, gen_tps;
    for (std::int64_t r = 0; r < repeats; ++r) {
        prompt_tps.push_back(double(prompt) / seconds([&] { model.forward(long_prompt); }));
        gen_tps.push_back(double(tokens) / seconds([&] { model.generate(short_prompt, tokens, nn::SampleOptions{}, gen, true); }));
    }
    fmt::print("qkv GPT-2 small shape ({:.1f} M parameters), {} thread{}: prompt of {} tokens {:.1f} tokens/s, "
               "{} generated {:.1f} tokens/s (medians of {})\n",
               model.num_parameters() / 1e6, threads, threads == 1 ? "" : "s", prompt, median(prompt_tps), tokens,
               median(gen_tps), repeats);
    fmt::print("result prompt_tps={:.3f} gen_tps={:.3f}\n", median(prompt_tps), median(gen_tps));
    return 0;
}
