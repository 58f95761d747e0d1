/// \file
/// \brief Tutorial 11: 3-digit addition — a task that takes real training, and why writing the
/// answer backwards makes it easier.
///
/// Trains the same tiny GPT as tutorial 10 (now through qkv::TaskTrainer, which is that loop in a
/// class) on `abc+def`, once with the answer written least significant digit first and once in
/// the usual order, and measures held-out accuracy digit by digit. `--short` trains each for 600
/// steps (what ctest runs); without it each run goes on to 100% or its budget. See README.md.
#include <qkv/qkv.hpp>

#include "../steps.hpp"

#include <string>
#include <vector>

using namespace qkv;

namespace {

// [per_digit]
// Held-out accuracy of each answer position on its own, and of whole answers. One batch of
// greedy decoding with the key/value cache, like TaskTrainer::evaluate(), but scored per digit.
std::vector<double> per_digit_accuracy(TaskTrainer& trainer) {
    const auto& heldout = trainer.heldout();
    const data::Task& task = trainer.task();
    std::vector<std::int32_t> contexts;
    for (const auto& e : heldout) {
        const auto c = e.context();
        contexts.insert(contexts.end(), c.begin(), c.end());
    }
    const auto B = std::int64_t(heldout.size());
    const std::int64_t ctx = task.prompt_length() + 1, A = task.answer_length();
    Generator unused(0);
    trainer.model().eval();
    const auto out = trainer.model().generate(from(contexts, {B, ctx}), A, nn::SampleOptions{}, unused, true)
                         .to_vector<std::int32_t>();
    trainer.model().train();
    std::vector<double> right(std::size_t(A), 0.0);
    for (std::int64_t b = 0; b < B; ++b) {
        const auto answer = heldout[std::size_t(b)].answer();
        for (std::int64_t i = 0; i < A; ++i)
            right[std::size_t(i)] += out[std::size_t(b * (ctx + A) + ctx + i)] == answer[std::size_t(i)];
    }
    for (auto& r : right) r /= double(B);
    return right;
}
// [per_digit]

// [chains]
// The hardest problems: a carry made in the ones column must ripple through the tens and the
// hundreds into the thousands (ones sum >= 10, tens sum = 9, hundreds sum = 9, as in 358+647 or
// 999+001). There are 45 * 10 * 10 = 4 500 such problems; random problems are rarely like this
// (0.45%), so a random held-out set barely tests them. Exact-match accuracy on all of them
// (training and held-out problems alike: the question is whether the rule is learned).
double carry_chain_accuracy(TaskTrainer& trainer) {
    std::vector<data::Example> chains;
    for (int a = 0; a < 1000; ++a)
        for (int b = 0; b < 1000; ++b)
            if (a % 10 + b % 10 >= 10 && a / 10 % 10 + b / 10 % 10 == 9 && a / 100 + b / 100 == 9)
                chains.push_back(trainer.task().example(fmt::format("{:03}+{:03}", a, b)));
    return trainer.evaluate(chains);
}
// [chains]

// [train]
// Train config S on 3-digit addition with the answer reversed or not; print the curve, then the
// accuracy of every answer digit. Returns the step at which it reached 100% (0 if it did not).
std::int64_t train(bool reversed, std::int64_t budget, std::int64_t print_every) {
    TaskTrainConfig c;  // config S: 2 layers, 4 heads, d_model 64, batch 32, AdamW 1e-3 wd 0.01
    c.task = {"add", 3, reversed};
    c.max_steps = budget;
    c.seed = 0;
    TaskTrainer trainer(c);
    fmt::print("{}\n", trainer.task().description());
    std::int64_t reached = 0;
    trainer.run([&](const EvalPoint& p) {
        if (p.accuracy >= 1.0) reached = p.step;
        if (p.step % print_every == 0 || p.accuracy >= 1.0 || p.step == budget)
            fmt::print("step {:>5}  loss {:.4f}  held-out exact match {:5.1f}%  ({:.0f} s)\n", p.step, p.loss,
                       100 * p.accuracy, p.seconds);
    });
    // Which answer digits does it get right? Position 0 is the first digit the model writes.
    const auto digits = per_digit_accuracy(trainer);
    fmt::print("held-out accuracy of each answer digit, in the order written ({}):",
               reversed ? "ones, tens, hundreds, thousands" : "thousands, hundreds, tens, ones");
    for (double d : digits) fmt::print(" {:.1f}%", 100 * d);
    fmt::print("\n");
    fmt::print("exact match on the 4500 problems with a carry rippling through every column: {:.1f}%\n",
               100 * carry_chain_accuracy(trainer));
    for (const char* prompt : {"358+647", "999+001"})
        fmt::print("  {} = {}  (correct: {})\n", prompt, trainer.answer(prompt), trainer.task().solve(prompt));
    fmt::print("{}\n\n", reached ? fmt::format("reached 100% at step {}", reached)
                                 : fmt::format("not at 100% after {} steps", trainer.steps_done()));
    return reached;
}
// [train]

}  // namespace

int main(int argc, char** argv) {
    try {
        // A budget of 20 000 steps per run, 600 with --short, N with --steps N.
        const std::int64_t budget = tutorial::training_steps(argc, argv, 20000, 600);

        // [layout]
        // The same problem in the two layouts. Reversed, the ones digit comes first.
        for (const bool reversed : {true, false}) {
            const auto task = data::make_task({"add", 3, reversed});
            const auto e = task->example("358+647");
            fmt::print("{:<8}  {}   ({} tokens: {} prompt, 1 separator, {} answer)\n", reversed ? "reversed" : "plain",
                       task->vocab().decode(e.tokens), task->sequence_length(), task->prompt_length(),
                       task->answer_length());
        }
        fmt::print("\n");
        // [layout]

        // [run]
        const std::int64_t print_every = budget == 20000 ? 1000 : 100;
        train(/*reversed=*/true, budget, print_every);
        train(/*reversed=*/false, budget, print_every);
        // [run]
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
