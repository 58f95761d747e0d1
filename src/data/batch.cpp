/// \file
/// \brief Train/held-out splits, training batches with masked targets, evaluation sets, and
/// exact-match scoring.
///
/// A reader learns here two ideas. First, how to keep test problems out of training without
/// storing a list: hash the prompt and let the hash decide, so the split is the same in every run
/// and every program. Second, how "predict only the answer" becomes a tensor: the targets are the
/// inputs shifted by one, and every position whose next token is not part of the answer gets the
/// ignore index −100, which cross_entropy skips.
#include <set>

#include "qkv/data/tasks.hpp"
#include "qkv/error.hpp"

namespace qkv::data {
namespace {

// FNV-1a, 64-bit: a simple byte hash. Its low bits are weak (the lowest bit is just the parity of
// the bytes' lowest bits), so we finish with splitmix64's mixer before taking "% 10": otherwise
// the held-out split would favour, say, prompts with an even count of odd digits.
std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001B3ull;
    }
    return h;
}

std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace

std::string_view split_name(Split split) { return split == Split::train ? "train" : "heldout"; }

Split split_of(std::string_view prompt) { return mix64(fnv1a64(prompt)) % 10 == 0 ? Split::heldout : Split::train; }

std::vector<std::int32_t> Example::context() const {
    return {tokens.begin(), tokens.begin() + answer_start()};
}

std::vector<std::int32_t> Example::answer() const { return {tokens.begin() + answer_start(), tokens.end()}; }

bool exact_match(const std::vector<std::int32_t>& predicted_answer, const Example& example) {
    return predicted_answer == example.answer();
}

// Row b of the batch: inputs[t] = tokens[t], targets[t] = tokens[t+1] when tokens[t+1] is an
// answer token, else kIgnoreIndex. So the separator's position predicts the first answer digit
// and the last input position predicts the last one.
Batch batch_from_examples(const std::vector<Example>& examples) {
    if (examples.empty()) fail("batch_from_examples: need at least one example");
    const auto T = static_cast<std::int64_t>(examples[0].tokens.size());
    const std::int64_t P = examples[0].prompt_length;
    if (T < 2 || P < 0 || P + 1 >= T)
        fail("batch_from_examples: example 0 has {} tokens and prompt length {}: need a prompt, a separator and an "
             "answer", T, P);
    const auto B = static_cast<std::int64_t>(examples.size());
    Batch batch{empty({B, T - 1}, i32), empty({B, T - 1}, i32), {}};
    std::int32_t* in = batch.inputs.data<std::int32_t>();
    std::int32_t* tg = batch.targets.data<std::int32_t>();
    for (std::int64_t b = 0; b < B; ++b) {
        const Example& ex = examples[static_cast<std::size_t>(b)];
        if (static_cast<std::int64_t>(ex.tokens.size()) != T || ex.prompt_length != P)
            fail("batch_from_examples: example {} has {} tokens and prompt length {}, example 0 has {} and {}", b,
                 ex.tokens.size(), ex.prompt_length, T, P);
        for (std::int64_t t = 0; t + 1 < T; ++t) {
            in[b * (T - 1) + t] = ex.tokens[static_cast<std::size_t>(t)];
            const std::int32_t next = ex.tokens[static_cast<std::size_t>(t + 1)];
            tg[b * (T - 1) + t] = t + 1 >= ex.answer_start() ? next : kIgnoreIndex;
        }
        batch.answers.push_back(ex.answer());
    }
    return batch;
}

Batch make_batch(const Task& task, std::int64_t batch_size, Split split, Generator& gen) {
    if (batch_size < 1) fail("make_batch: batch size must be >= 1, got {}", batch_size);
    std::vector<Example> examples;
    examples.reserve(static_cast<std::size_t>(batch_size));
    for (std::int64_t b = 0; b < batch_size; ++b) examples.push_back(task.sample(split, gen));
    return batch_from_examples(examples);
}

// Distinct prompts by rejection: draw held-out examples and skip the ones already taken. Asking
// for at most half of the ~10% held-out problems keeps the expected number of draws small.
std::vector<Example> heldout_set(const Task& task, std::int64_t n, std::uint64_t seed) {
    const double available = task.problem_count() / 10;
    if (n < 0) fail("heldout_set: n must be >= 0, got {}", n);
    if (static_cast<double>(n) > available / 2)
        fail("heldout_set: asked for {} distinct held-out examples of {} length {}, but it has only about {} held-out "
             "problems; ask for at most half of them ({})",
             n, task.name(), task.length(), available, static_cast<std::int64_t>(available / 2));
    Generator gen(seed);
    std::set<std::vector<std::int32_t>> seen;
    std::vector<Example> set;
    set.reserve(static_cast<std::size_t>(n));
    while (static_cast<std::int64_t>(set.size()) < n) {
        Example ex = task.sample(Split::heldout, gen);
        if (seen.insert(ex.tokens).second) set.push_back(std::move(ex));
    }
    return set;
}

}  // namespace qkv::data
