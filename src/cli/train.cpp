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
#include <limits>
#include <optional>

#include <fmt/core.h>
#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/core/profiler.hpp"
#include "qkv/io/file.hpp"
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
  --steps N          step budget: the total, counted from step 0 (default 3000)
  --batch N          sequences per step (default 32)
  --lr X             AdamW learning rate (default 0.001, constant)
  --wd X             AdamW weight decay (default 0.01)
  --seed N           random seed, any 64-bit value (default 0)
  --dtype f32|f64    precision (default f32)
  --eval-every N     steps between evaluations (default 100)
  --eval-size N      held-out sequences per evaluation (default 1000)
  --threads N        threads (default: all cores)
  --detect-anomaly   check every op's output and gradient for NaN/inf as it is computed
                     (slower; without it, a non-finite loss or gradient still stops training
                     at once, and the step is then repeated with these checks to name the op)
output:
  --out DIR          where DIR/last goes (default runs); it records the checkpoint's path,
                     which eval, sample and attention open by default
  --save PATH        checkpoint path (default DIR/TASK-seedN.safetensors); the curve goes
                     next to it (.csv, .svg). Checked before training starts
  --checkpoint-every N
                     also save the checkpoint every N steps, atomically (default 1000; 0: only
                     at the end). Ctrl-C or SIGTERM finishes the current step, saves, and stops
  --resume PATH      continue a run saved by --save: its settings come from the checkpoint
                     (only --steps, the new total, and --lr may change); the curve continues
  --quiet            print only the final summary
  --profile          time every op, forward and backward, and print the table at the end
                     (calls, ms, % of the run, GFLOP/s, MiB allocated; QKV_PROFILE=1 does the same
                     for any program)
  --help             show this message

Your own text instead of a task: qkv train --text FILE [options] trains a language model on it
('qkv train --text FILE --help' lists the options; e.g. qkv train --text data/corpus.txt).
)";

const std::vector<Flag> kFlags{{"task"},  {"length"}, {"plain", false}, {"layers"},    {"heads"},     {"dim"},
                               {"steps"}, {"batch"},  {"lr"},           {"wd"},        {"seed"},      {"dtype"},
                               {"eval-every"}, {"eval-size"}, {"threads"}, {"out"}, {"save"}, {"resume"}, {"quiet", false},
                               {"checkpoint-every"}, {"detect-anomaly", false}, {"profile", false}};

// A resumed run takes its settings from its checkpoint. Repeating a flag with the same value is
// fine (the original command line plus --resume works); a different value is an error, never
// silently ignored. Only --steps (the new total) and --lr may change.
void check_same_settings(const Args& a, const TaskTrainConfig& c) {
    auto differs = [](const char* flag, const std::string& given, const std::string& saved) {
        throw UsageError(fmt::format("--{} {} differs from the resumed run's {}: a run's settings come from its "
                                     "checkpoint (on --resume, only --steps and --lr may change)",
                                     flag, given, saved));
    };
    if (a.has("task") && a.str("task", "") != c.task.name) differs("task", a.str("task", ""), c.task.name);
    if (a.has("plain") && c.task.reversed) differs("plain", "(given)", "reversed answers");
    const std::pair<const char*, std::int64_t> ints[] = {{"length", c.task.length}, {"layers", c.layers},
                                                         {"heads", c.heads},        {"dim", c.dim},
                                                         {"batch", c.batch},        {"eval-every", c.eval_every},
                                                         {"eval-size", c.eval_size}};
    for (const auto& [flag, saved] : ints)
        if (a.has(flag) && a.integer(flag, 0, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max()) != saved)
            differs(flag, a.str(flag, ""), std::to_string(saved));
    if (a.has("wd") && a.real("wd", 0, -1e300, 1e300) != c.weight_decay)
        differs("wd", a.str("wd", ""), fmt::format("{}", c.weight_decay));
    if (a.has("seed") && a.unsigned_integer("seed", 0) != c.seed) differs("seed", a.str("seed", ""), std::to_string(c.seed));
    if (a.has("dtype") && a.str("dtype", "") != dtype_name(c.dtype))
        differs("dtype", a.str("dtype", ""), std::string(dtype_name(c.dtype)));
}

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
    c.seed = a.unsigned_integer("seed", 0);
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

// The curve's files sit next to the checkpoint: runs/reverse-seed0.safetensors → runs/reverse-seed0.csv, .svg.
std::string curve_stem(const std::string& save_path) {
    constexpr std::string_view kExt = ".safetensors";
    if (save_path.size() > kExt.size() && save_path.compare(save_path.size() - kExt.size(), kExt.size(), kExt) == 0)
        return save_path.substr(0, save_path.size() - kExt.size());
    return save_path;
}

}  // namespace

int train_command(const std::vector<std::string>& argv) {
    if (is_text_run(argv)) return train_text_command(argv);  // a language model on a text: text.cpp
    if (wants_help(argv)) {
        say("{}", kHelp);
        return 0;
    }
    const Args a("train", argv, kFlags);
    if (a.has("threads")) set_num_threads(int(a.integer("threads", 1, 1, 1024)));
    const bool quiet = a.has("quiet");
    const bool resume = a.has("resume");

    // Where everything will go is known — and checked — before any work: a run must not end with
    // nowhere to put its result.
    const std::string out_dir = a.str("out", kRunsDir);
    TaskTrainConfig fresh;
    std::string save_path;
    if (resume) {
        save_path = a.str("save", a.str("resume", ""));
    } else {
        fresh = config_from(a);
        save_path = a.str("save", fmt::format("{}/{}-seed{}.safetensors", out_dir, fresh.task.name, fresh.seed));
    }
    const std::string stem = curve_stem(save_path);
    std::unique_ptr<TaskTrainer> trainer;
    RunGuard guard({save_path, a.integer("checkpoint-every", kDefaultCheckpointEvery, 0, 1'000'000'000'000), true},
                   [&](const std::string& path) { trainer->save(path); });
    guard.check_output();
    std::filesystem::create_directories(out_dir);
    for (const std::string& path : {stem + ".csv", stem + ".svg", last_run_file(out_dir)}) io::check_writable(path, "train");

    trainer = resume ? TaskTrainer::load(a.str("resume", "")) : std::make_unique<TaskTrainer>(fresh);
    if (resume) {
        check_same_settings(a, trainer->config());
        if (a.has("steps")) trainer->set_max_steps(a.integer("steps", 0, 1, 100000000));
        if (a.has("lr")) trainer->set_lr(a.real("lr", 0, 1e-12, 10));
        if (trainer->steps_done() >= trainer->config().max_steps)
            throw UsageError(fmt::format(
                "--resume: the run in {} is already at step {}, and its budget is {} steps (--steps is the total, counted "
                "from step 0): pass --steps greater than {} to train further",
                a.str("resume", ""), trainer->steps_done(), trainer->config().max_steps, trainer->steps_done()));
    }
    std::optional<AnomalyMode> anomaly;
    if (a.has("detect-anomaly")) anomaly.emplace(true);
    const TaskTrainConfig& c = trainer->config();

    say("qkv train: {} ({})\n", c.task.name, trainer->task().description());
    say("model: GPT, {} layers x {} heads, d_model {}, {} parameters ({})\n", c.layers, c.heads, c.dim,
               trainer->model().num_parameters(), dtype_name(c.dtype));
    say("training: batch {}, AdamW lr {} wd {}, seed {}, {} thread{}, budget {} steps{}\n", c.batch, c.lr,
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
    auto write_curve = [&] {
        const auto& curve = trainer->curve();
        if (curve.empty()) return;
        std::vector<double> steps, loss, acc;
        for (const auto& p : curve) steps.push_back(double(p.step)), loss.push_back(p.loss), acc.push_back(p.accuracy);
        write_csv(stem + ".csv", curve);
        viz::write_line_chart(stem + ".svg", fmt::format("qkv train: {} (seed {})", c.task.name, c.seed), steps,
                              {{fmt::format("train loss (mean of {} steps)", c.log_every), loss, false},
                               {"held-out exact match", acc, true}});
    };
    std::optional<Profiler> profile;  // --profile: every op of the run, training and evaluation
    if (a.has("profile")) profile.emplace();
    const std::vector<EvalPoint> history = run_with_progress(
        *trainer,
        [&](const EvalPoint& p) {
            last_acc = p.accuracy;
            const bool finished = p.accuracy >= c.target_accuracy || p.step >= c.max_steps;
            if (!quiet) say("{}{}\n", live ? "\r" : "", status(p.step, p.loss, finished));
            std::fflush(stdout);
        },
        status, live, c.eval_every, guard, write_curve,
        {.save_path = save_path, .resumed = resume, .resumed_in_place = resume && save_path == a.str("resume", ""),
         .start_step = start_step, .max_steps = c.max_steps, .lr = c.lr});
    const double secs = elapsed();
    if (profile) profile->stop();
    const int stop_signal = guard.stop_signal();
    if (guard.last_saved_step() != trainer->steps_done()) guard.save(trainer->steps_done());
    record_last_run(out_dir, save_path);
    write_curve();
    const auto& curve = trainer->curve();
    const bool reached = !history.empty() && history.back().accuracy >= c.target_accuracy;
    const double final_acc = history.empty() ? 0 : history.back().accuracy;
    if (stop_signal != 0) {
        if (live) say("\n");
        return report_interrupted(stop_signal, trainer->steps_done(), secs, save_path, curve.empty() ? "" : stem);
    }
    if (reached)
        say("reached {:.1f}% held-out exact match at step {} in {:.1f} s (evaluation included)\n", 100 * final_acc,
                   trainer->steps_done(), secs);
    else
        say("stopped at the budget of {} steps after {:.1f} s with {:.1f}% held-out exact match\n",
                   trainer->steps_done(), secs, 100 * final_acc);
    say("model saved to {}\n", save_path);
    if (!curve.empty()) say("training curve: {}.svg (data: {}.csv)\n", stem, stem);
    // The exact command to look at this model; by default the others open the run named in runs/last.
    say("look at it: qkv sample --checkpoint {}   (or eval, attention)\n", save_path);
    if (std::filesystem::weakly_canonical(out_dir) == std::filesystem::weakly_canonical(kRunsDir))
        say("without --checkpoint, qkv eval, sample and attention open it: {} names it\n", last_run_file(out_dir));
    if (profile) say("\nprofile of the run ({} steps, evaluations included):\n{}", trainer->steps_done() - start_step,
                     profile->table());
    return reached ? 0 : 1;
}

bool wants_help(const std::vector<std::string>& argv) {
    for (const auto& a : argv)
        if (a == "--help" || a == "-h") return true;
    return false;
}

}  // namespace qkv::cli
