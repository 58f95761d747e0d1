/// \file
/// \brief `qkv train`: the main job — train, report progress, save the model and its curve.
///
/// A reader learns here how a long-running command keeps its user informed without slowing the work.
/// The flags become a TaskTrainConfig (with `--resume`, the checkpoint's own settings win), TaskTrainer
/// runs the loop, and two callbacks report: a line at every evaluation and, only when stdout is a
/// terminal, a status line redrawn every 10 steps with loss, held-out accuracy, tokens per second and
/// the time the step budget would take (once training has stopped, the line says "done" instead).
/// At the end the model is saved, its path recorded in `DIR/last` (so `qkv eval`, `sample` and
/// `attention` open it by default), and the curve — the training loss every 10 steps and the
/// held-out accuracy of every evaluation — written as CSV and SVG; the exit status is 0 only when
/// the target accuracy was reached.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/core.h>
#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/core/profiler.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/train/train.hpp"
#include "qkv/viz/plot.hpp"

namespace qkv::cli {

namespace {

constexpr const char* kHelp = R"(usage: qkv train [options]

Train a decoder-only transformer (GPT) on a toy sequence task with AdamW, evaluating greedy
exact-match accuracy on 1000 held-out sequences every 100 steps, until it reaches 100% or the
step budget runs out. Saves the model, a CSV of the curve and an SVG plot of it.

task:
  --task NAME        copy | reverse | sort | add | recall   (default reverse)
  --length N         task size: digits (copy/reverse/sort), digits per number (add),
                     pairs (recall); default 16, 16, 6, 3, 8
  --plain            add: answer digits in the usual order (default: reversed)
model and training:
  --layers N         transformer blocks (default 2)
  --heads N          attention heads (default 4)
  --dim N            d_model (default 64)
  --steps N          step budget (default 3000)
  --batch N          sequences per step (default 32)
  --lr X             AdamW learning rate (default 0.001, constant)
  --wd X             AdamW weight decay (default 0.01)
  --seed N           random seed (default 0)
  --dtype f32|f64    precision (default f32)
  --eval-every N     steps between evaluations (default 100)
  --eval-size N      held-out sequences per evaluation (default 1000)
  --threads N        threads (default: all cores)
output:
  --out DIR          where the checkpoint and curve go (default runs); DIR/last records the
                     checkpoint's path, which eval, sample and attention open by default
  --save PATH        checkpoint path (default DIR/TASK-seedN.safetensors)
  --resume PATH      continue a run saved by --save (its settings win)
  --quiet            print only the final summary
  --profile          time every op, forward and backward, and print the table at the end
                     (calls, ms, % of the run, GFLOP/s, MiB allocated; QKV_PROFILE=1 does the same
                     for any program)
  --help             show this message
)";

const std::vector<Flag> kFlags{{"task"},  {"length"}, {"plain", false}, {"layers"},    {"heads"},     {"dim"},
                               {"steps"}, {"batch"},  {"lr"},           {"wd"},        {"seed"},      {"dtype"},
                               {"eval-every"}, {"eval-size"}, {"threads"}, {"out"}, {"save"}, {"resume"}, {"quiet", false}, {"profile", false}};

TaskTrainConfig config_from(const Args& a) {
    TaskTrainConfig c;
    c.task.name = a.str("task", "reverse");
    const auto& names = data::task_names();
    if (std::find(names.begin(), names.end(), c.task.name) == names.end())
        throw UsageError(fmt::format("--task: unknown task '{}' (choose one of: {})", c.task.name, fmt::join(names, ", ")));
    c.task.length = a.integer("length", 0, 1, 1000);
    c.task.reversed = !a.has("plain");
    c.layers = a.integer("layers", 2, 1, 64);
    c.heads = a.integer("heads", 4, 1, 64);
    c.dim = a.integer("dim", 64, 1, 4096);
    c.max_steps = a.integer("steps", 3000, 1, 100000000);
    c.batch = a.integer("batch", 32, 1, 100000);
    c.lr = a.real("lr", 1e-3, 1e-12, 10);
    c.weight_decay = a.real("wd", 0.01, 0, 10);
    c.seed = std::uint64_t(a.integer("seed", 0, 0, (1LL << 62)));
    c.eval_every = a.integer("eval-every", 100, 1, 100000000);
    c.eval_size = a.integer("eval-size", 1000, 1, 100000);
    const std::string dt = a.str("dtype", "f32");
    if (dt != "f32" && dt != "f64") throw UsageError(fmt::format("--dtype: expected f32 or f64, got '{}'", dt));
    c.dtype = dt == "f64" ? f64 : f32;
    if (c.dim % c.heads != 0) throw UsageError(fmt::format("--heads {} must divide --dim {}", c.heads, c.dim));
    return c;
}

// One row per point of the curve; heldout_accuracy is empty where no evaluation ran.
void write_csv(const std::string& path, const std::vector<CurvePoint>& curve) {
    std::string text = "step,train_loss,heldout_accuracy,seconds\n";
    for (const auto& p : curve)
        text += fmt::format("{},{:.6f},{},{:.3f}\n", p.step, p.loss,
                            std::isnan(p.accuracy) ? std::string() : fmt::format("{:.4f}", p.accuracy), p.seconds);
    io::write_text_file(path, text, "qkv train");
}

std::string fmt_seconds(double s) { return s < 120 ? fmt::format("{:.0f} s", s) : fmt::format("{:.1f} min", s / 60); }

}  // namespace

int train_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        fmt::print("{}", kHelp);
        return 0;
    }
    const Args a("train", argv, kFlags);
    if (a.has("threads")) set_num_threads(int(a.integer("threads", 1, 1, 1024)));
    const bool quiet = a.has("quiet");
    std::unique_ptr<TaskTrainer> trainer;
    if (a.has("resume")) {
        trainer = TaskTrainer::load(a.str("resume", ""));
    } else {
        trainer = std::make_unique<TaskTrainer>(config_from(a));
    }
    const TaskTrainConfig& c = trainer->config();
    const std::string out_dir = a.str("out", kRunsDir);
    const std::string stem = fmt::format("{}/{}-seed{}", out_dir, c.task.name, c.seed);
    const std::string save_path = a.str("save", a.str("resume", stem + ".safetensors"));
    std::filesystem::create_directories(out_dir);
    if (a.has("save") || a.has("resume")) {
        const auto parent = std::filesystem::path(save_path).parent_path();
        if (!parent.empty()) std::filesystem::create_directories(parent);
    }

    fmt::print("qkv train: {} ({})\n", c.task.name, trainer->task().description());
    fmt::print("model: GPT, {} layers x {} heads, d_model {}, {} parameters ({})\n", c.layers, c.heads, c.dim,
               trainer->model().num_parameters(), dtype_name(c.dtype));
    fmt::print("training: batch {}, AdamW lr {} wd {}, seed {}, {} thread{}, budget {} steps{}\n", c.batch, c.lr,
               c.weight_decay, c.seed, num_threads(), num_threads() == 1 ? "" : "s", c.max_steps,
               trainer->steps_done() ? fmt::format(" (resuming at step {})", trainer->steps_done()) : "");
    std::fflush(stdout);

    const bool live = !quiet && isatty(STDOUT_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t start_step = trainer->steps_done();
    const double tokens_per_step = double(c.batch * (trainer->task().sequence_length() - 1));
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    double last_acc = 0;
    // The ETA is the time the rest of the step budget would take; once training has stopped (target
    // reached, or budget spent) the line says so instead.
    auto status = [&](std::int64_t step, double loss, bool finished) {
        const double secs = elapsed(), rate = double(step - start_step) / std::max(secs, 1e-9);
        return fmt::format("step {:>6}  loss {:.4f}  held-out {:5.1f}%  {:>7.0f} tok/s  {}", step, loss, 100 * last_acc,
                           rate * tokens_per_step,
                           finished ? std::string("done")
                                    : fmt::format("ETA {} (budget)", fmt_seconds(double(c.max_steps - step) / std::max(rate, 1e-9))));
    };
    std::optional<Profiler> profile;  // --profile: every op of the run, training and evaluation
    if (a.has("profile")) profile.emplace();
    const auto history = trainer->run(
        [&](const EvalPoint& p) {
            last_acc = p.accuracy;
            const bool finished = p.accuracy >= c.target_accuracy || p.step >= c.max_steps;
            if (!quiet) fmt::print("{}{}\n", live ? "\r" : "", status(p.step, p.loss, finished));
            std::fflush(stdout);
        },
        [&](std::int64_t step, double loss) {
            if (live && step % 10 == 0) {
                fmt::print("\r{}", status(step, loss, false));
                std::fflush(stdout);
            }
        });
    const double secs = elapsed();
    if (profile) profile->stop();
    trainer->save(save_path);
    record_last_run(out_dir, save_path);
    const auto& curve = trainer->curve();
    std::vector<double> steps, loss, acc;
    for (const auto& p : curve) steps.push_back(double(p.step)), loss.push_back(p.loss), acc.push_back(p.accuracy);
    const bool reached = !history.empty() && history.back().accuracy >= c.target_accuracy;
    if (!curve.empty()) {
        write_csv(stem + ".csv", curve);
        viz::write_line_chart(stem + ".svg", fmt::format("qkv train: {} (seed {})", c.task.name, c.seed), steps,
                              {{fmt::format("train loss (mean of {} steps)", c.log_every), loss, false},
                               {"held-out exact match", acc, true}});
    }
    const double final_acc = history.empty() ? 0 : history.back().accuracy;
    if (reached)
        fmt::print("reached {:.1f}% held-out exact match at step {} in {:.1f} s (evaluation included)\n", 100 * final_acc,
                   trainer->steps_done(), secs);
    else
        fmt::print("stopped at the budget of {} steps after {:.1f} s with {:.1f}% held-out exact match\n",
                   trainer->steps_done(), secs, 100 * final_acc);
    fmt::print("model saved to {}\n", save_path);
    if (!curve.empty()) fmt::print("training curve: {}.svg (data: {}.csv)\n", stem, stem);
    // The exact command to look at this model; by default the others open the run named in runs/last.
    fmt::print("look at it: qkv sample --checkpoint {}   (or eval, attention)\n", save_path);
    if (std::filesystem::weakly_canonical(out_dir) == std::filesystem::weakly_canonical(kRunsDir))
        fmt::print("without --checkpoint, qkv eval, sample and attention open it: {} names it\n", last_run_file(out_dir));
    if (profile) fmt::print("\nprofile of the run ({} steps, evaluations included):\n{}", trainer->steps_done() - start_step,
                            profile->table());
    return reached ? 0 : 1;
}

bool wants_help(const std::vector<std::string>& argv) {
    for (const auto& a : argv)
        if (a == "--help" || a == "-h") return true;
    return false;
}

}  // namespace qkv::cli
