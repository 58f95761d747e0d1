/// \file
/// \brief Tutorial 14: a character-level language model — train it on a small text, sample from
/// it with temperature and top-k, and time generation with and without the key/value cache.
///
/// The GPT of tutorials 10–12, but the task is now plain text: predict the next character at
/// every position of data/corpus.txt (a set of short stories written for qkv). Then the model
/// writes: greedily, and by sampling. Finally the same sampling runs twice — recomputing the whole
/// sequence for every new character, and with a cache of the keys and values already computed —
/// to show that the outputs are identical and the cached one is faster. `--short` trains for
/// 200 steps instead of 1 000 (what ctest runs); `--steps N` for N. See README.md.
#include <qkv/qkv.hpp>

#include "../steps.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace qkv;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// [validation]
// Mean loss on 4 fixed batches of the validation text (the last 10% of the file, never trained on).
double validation_loss(nn::GPT& model, const data::Corpus& corpus, std::int64_t context) {
    NoGradGuard no_grad;
    model.eval();
    Generator gen(123);  // the same 4 batches every time
    double sum = 0;
    for (int i = 0; i < 4; ++i) {
        const data::Batch b = data::corpus_batch(corpus, 32, context, data::Split::heldout, gen);
        sum += model.loss(b.inputs, b.targets).item();
    }
    model.train();
    return sum / 4;
}
// [validation]

// [write]
// Continue a prompt by `steps` characters and return the text.
std::string write(nn::GPT& model, const data::Corpus& corpus, const std::string& prompt, std::int64_t steps,
                  const nn::SampleOptions& options, std::uint64_t seed, bool use_cache = true) {
    model.eval();
    const auto ids = corpus.vocab.encode(prompt);
    Generator gen(seed);
    const Tensor out = model.generate(from(ids, {1, std::int64_t(ids.size())}), steps, options, gen, use_cache);
    return corpus.vocab.decode(out.to_vector<std::int32_t>());
}
// [write]

// One line per printed sample: newlines shown as "\n" so a sample stays on one line.
std::string one_line(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        // Training steps: 1 000, or 200 with --short, or N with --steps N.
        const std::int64_t steps = tutorial::training_steps(argc, argv, 1000, 200);

        // [corpus]
        // Every distinct character of the text is a token; the first 90% is for training.
        const data::Corpus corpus = data::load_corpus(data::data_file("corpus.txt"));
        fmt::print("corpus: {} characters, {} distinct, {} for training, {} for validation\n",
                   corpus.train.size() + corpus.validation.size(), corpus.vocab.size(), corpus.train.size(),
                   corpus.validation.size());
        // [corpus]

        // [model]
        // Config S again, reading 64 characters at a time (the longest text it can see or write).
        const std::int64_t context = 64;
        nn::GPTConfig gc;
        gc.vocab = corpus.vocab.size();
        gc.block_size = context;
        gc.dim = 64;
        gc.heads = 4;
        gc.layers = 2;
        gc.seed = 0;
        nn::GPT model(gc);
        optim::AdamWOptions ao;
        ao.lr = 1e-3;
        ao.weight_decay = 0.01;
        optim::AdamW opt(model.named_parameters(), ao);
        fmt::print("model: GPT, {} layers x {} heads, d_model {}, context {}, {} parameters\n", gc.layers, gc.heads,
                   gc.dim, context, model.num_parameters());
        fmt::print("before training: validation loss {:.3f} (a uniform guess over {} characters: ln {} = {:.3f})\n\n",
                   validation_loss(model, corpus, context), corpus.vocab.size(), corpus.vocab.size(),
                   std::log(double(corpus.vocab.size())));
        // [model]

        // [train]
        // The loop of tutorial 10; every position's next character counts in the loss.
        Generator batches(7);
        const auto t0 = Clock::now();
        double loss_sum = 0;
        std::int64_t since = 0;  // steps since the last report
        for (std::int64_t step = 1; step <= steps; ++step) {
            const data::Batch b = data::corpus_batch(corpus, 32, context, data::Split::train, batches);
            opt.zero_grad();
            const Tensor loss = model.loss(b.inputs, b.targets);
            loss.backward();
            opt.step();
            loss_sum += loss.item();
            ++since;
            if (step % 100 == 0 || step == steps) {
                fmt::print("step {:>4}  train loss {:.3f}  validation loss {:.3f}  ({:.0f} s)\n", step,
                           loss_sum / double(since), validation_loss(model, corpus, context), seconds_since(t0));
                loss_sum = 0;
                since = 0;
            }
        }
        fmt::print("\n");
        // [train]

        // [sample]
        // Greedy always takes the most likely character; sampling draws from the softmax of
        // logits / temperature, optionally among the top k characters only.
        const std::string prompt = "The fox ";
        nn::SampleOptions greedy;
        nn::SampleOptions warm{false, 0.8, 10};
        nn::SampleOptions hot{false, 1.5, 0};
        fmt::print("greedy:                  \"{}\"\n", one_line(write(model, corpus, prompt, 56, greedy, 1)));
        fmt::print("temperature 0.8, top 10: \"{}\"\n", one_line(write(model, corpus, prompt, 56, warm, 1)));
        fmt::print("temperature 1.5:         \"{}\"\n\n", one_line(write(model, corpus, prompt, 56, hot, 1)));
        // [sample]

        // [cache]
        // The same sampling (same seed) with and without the key/value cache: 56 characters.
        // Without the cache, each new character re-runs the model over the whole sequence so far;
        // with it, each step feeds only the newest character and reuses the keys and values that
        // every layer computed for the earlier ones.
        auto timed = [&](bool use_cache, std::string& text) {
            const auto t = Clock::now();
            text = write(model, corpus, prompt, 56, warm, 42, use_cache);
            return seconds_since(t);
        };
        std::string with_cache, without_cache;
        const double slow = timed(false, without_cache);
        const double fast = timed(true, with_cache);
        fmt::print("56 characters without the cache: {:.4f} s\n", slow);
        fmt::print("56 characters with the cache:    {:.4f} s  ({:.1f}x faster)\n", fast, slow / fast);
        fmt::print("identical text: {}\n", with_cache == without_cache);
        fmt::print("\"{}\"\n", one_line(with_cache));
        // [cache]
        return with_cache == without_cache ? 0 : 1;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
