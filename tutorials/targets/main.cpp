/// \file
/// \brief The training targets of the project, reproduced: reverse, sort and 3-digit addition,
/// three seeds each, printed as one table.
///
/// This program is the evidence behind the numbers quoted in tutorials 10 and 11. It trains the
/// reference recipe ("config S": a GPT with d_model 64, 4 heads, 2 layers; batch 32; AdamW with a
/// constant learning rate of 1e-3 and weight decay 0.01; greedy exact-match evaluation on 1 000
/// held-out sequences every 100 steps) with qkv::TaskTrainer, once per task and seed, and reports
/// the step at which the held-out accuracy first reached 100% and the wall time it took.
/// `--short` trains only reverse with seed 0 (what ctest runs). See README.md.
#include <qkv/qkv.hpp>

#include <string>
#include <vector>

using namespace qkv;

namespace {

// [recipe]
// One row of the table: a task, its step budget, and the seeds to train it with.
struct Target {
    std::string task;        // reverse (16 digits), sort (6 digits), add (3 digits, answer reversed)
    std::int64_t budget;     // give up after this many steps
};

// Config S. Every field not set here keeps TaskTrainConfig's default, which is the same recipe:
// 2 layers, 4 heads, d_model 64, batch 32, AdamW lr 1e-3 (constant) wd 0.01, evaluation of 1 000
// held-out sequences every 100 steps, stop at 100%.
TaskTrainConfig config_s(const Target& t, std::uint64_t seed) {
    TaskTrainConfig c;
    c.task.name = t.task;  // length 0: the task's default (16, 6, 3)
    c.max_steps = t.budget;
    c.seed = seed;
    return c;
}
// [recipe]

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (argc > 2 || (argc == 2 && mode != "--short")) {
            fmt::print(stderr, "usage: targets [--short]\n");
            return 2;
        }
        const bool short_mode = mode == "--short";

        // The budgets are generous: PyTorch needs ~100 steps for reverse, 500–1 400 for sort
        // and 1 400–5 500 for addition with the same recipe.
        const std::vector<Target> targets = short_mode
            ? std::vector<Target>{{"reverse", 3000}}
            : std::vector<Target>{{"reverse", 3000}, {"sort", 5000}, {"add", 20000}};
        const std::vector<std::uint64_t> seeds = short_mode ? std::vector<std::uint64_t>{0}
                                                            : std::vector<std::uint64_t>{0, 1, 2};

        fmt::print("config S: GPT 2 layers x 4 heads, d_model 64; batch 32; AdamW lr 0.001 (constant), wd 0.01\n");
        fmt::print("evaluation: greedy exact match on 1000 held-out sequences every 100 steps; {} thread{}\n\n",
                   num_threads(), num_threads() == 1 ? "" : "s");

        // [table]
        fmt::print("{:<8} {:>4} {:>14} {:>9} {:>9}\n", "task", "seed", "steps to 100%", "held-out", "seconds");
        int met = 0, runs = 0;
        double total_seconds = 0;
        for (const auto& t : targets) {
            for (const auto seed : seeds) {
                TaskTrainer trainer(config_s(t, seed));
                const std::vector<EvalPoint> history = trainer.run();
                const EvalPoint& last = history.back();
                const bool reached = last.accuracy >= 1.0;
                fmt::print("{:<8} {:>4} {:>14} {:>8.1f}% {:>9.1f}\n", t.task, seed,
                           reached ? std::to_string(last.step) : fmt::format("not in {}", t.budget),
                           100 * last.accuracy, last.seconds);
                std::fflush(stdout);
                met += reached;
                ++runs;
                total_seconds += last.seconds;
            }
        }
        fmt::print("\n{} of {} runs reached 100% held-out exact match ({:.0f} s in all)\n", met, runs, total_seconds);
        // [table]
        return met == runs ? 0 : 1;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
