/// \file
/// \brief The subcommands of the `qkv` program.
///
/// A reader learns here the shape of the program: each subcommand is one function from its argument
/// words to an exit status, defined in train.cpp or inspect.cpp (the three that load a checkpoint),
/// with the text-model side of train and sample in text.cpp, and called by main.cpp; last_run.cpp keeps the record of the last trained model between them. The functions print their own `--help` and throw on errors rather than
/// printing them, so every error message and exit code (1 for errors, 2 for bad command-line use)
/// comes from one place, main().
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qkv/error.hpp"
#include "qkv/train/run_guard.hpp"

namespace qkv::cli {

/// \brief `qkv train`: train a GPT on a toy task until it is perfect on held-out data. \param argv flags
/// \return the exit status: 0 when the target accuracy was reached (or for `--help`), 1 when the
/// step budget ran out first
int train_command(const std::vector<std::string>& argv);
/// \brief `qkv eval`: held-out exact-match accuracy of a checkpoint. \param argv flags
/// \return the exit status, 0 (errors are thrown)
int eval_command(const std::vector<std::string>& argv);
/// \brief `qkv sample`: the model's answers to prompts. \param argv flags
/// \return the exit status, 0 (errors are thrown)
int sample_command(const std::vector<std::string>& argv);
/// \brief `qkv attention`: attention heatmaps of a trained model on one input. \param argv flags
/// \return the exit status, 0 (errors are thrown)
int attention_command(const std::vector<std::string>& argv);
/// \brief `qkv export`: a checkpoint's weights under PyTorch's names (bridge.cpp). \param argv flags
/// \return the exit status, 0 (errors are thrown)
int export_command(const std::vector<std::string>& argv);
/// \brief `qkv import`: a checkpoint from a GPT saved by PyTorch (bridge.cpp). \param argv flags
/// \return the exit status, 0 (errors are thrown)
int import_command(const std::vector<std::string>& argv);

/// \brief `qkv train --text FILE`: train a GPT language model on a text (text.cpp). \param argv flags
/// \return the exit status: 0 when the run finished (errors are thrown)
int train_text_command(const std::vector<std::string>& argv);
/// \brief True when `qkv train` was asked for a text run: `--text` is given, or `--resume` names a
/// checkpoint that carries a tokenizer. \param argv train's arguments \return whether it is a text run
bool is_text_run(const std::vector<std::string>& argv);

class Args;
/// \brief `qkv sample` on a text model: stream --tokens tokens after --prompt (text.cpp).
/// \param a sample's parsed flags \param path the checkpoint (a text model), or a directory of
/// GPT-2's files \param gpt2_dir whether \p path is such a directory (`--model DIR`)
/// \return the exit status, 0 (errors are thrown)
int sample_text(const Args& a, const std::string& path, bool gpt2_dir = false);

/// The directory `qkv train` writes to by default, where the other commands look for the last run.
inline constexpr const char* kRunsDir = "runs";

/// \brief The file naming the last checkpoint `qkv train` saved with `--out` \p out_dir.
/// \param out_dir the training output directory \return `out_dir/last`
std::string last_run_file(const std::string& out_dir);

/// \brief Record \p checkpoint, as an absolute path, in `out_dir/last` (atomically).
/// \param out_dir the training output directory \param checkpoint the checkpoint just saved
void record_last_run(const std::string& out_dir, const std::string& checkpoint);

/// \brief The checkpoint a command opens: \p given when not empty, else the one named in
/// `runs/last` (printing which file that is). Throws qkv::Error when there is no such record.
/// \param given the `--checkpoint` value, or empty
/// \return the path to open
std::string checkpoint_to_open(const std::string& given);

/// \brief Print to standard output without ever throwing. A failed write (a full disk, a closed
/// pipe) sets stdout's error flag, which main() checks at the end to report it with a non-zero exit
/// status — so a training run is not cut short because its progress could not be shown, and output
/// that was lost is never reported as success. (fmt::print would throw at the first failed write.)
/// \param format fmt format string \param args values to format
template <class... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    const std::string text = fmt::format(format, std::forward<Args>(args)...);
    std::fwrite(text.data(), 1, text.size(), stdout);
}

/// \brief True when argv asks for help.
/// \param argv a subcommand's arguments
/// \return whether any of them is `--help` or `-h`
bool wants_help(const std::vector<std::string>& argv);

/// \brief What a run that stopped on a NaN needs to say where it stands (run_report.cpp).
struct DivergedContext {
    std::string save_path;          ///< the run's checkpoint
    bool resumed = false;           ///< whether this run was resumed from a checkpoint
    bool resumed_in_place = false;  ///< resumed, and saving to the file it was resumed from
    std::int64_t start_step = 0;    ///< the step it started (or resumed) at
    std::int64_t max_steps = 0;     ///< its step budget
    double lr = 0;                  ///< its learning rate
};
/// \brief The error `qkv train` reports when a step's loss or gradient was not finite: the op and
/// layer (from \p e), which file holds which step, and what to change (a smaller --lr, or a resume).
/// \param e what the trainer threw \param guard the run's guard (its last save) \param run the run
/// \return the error to throw
Error diverged_error(const TrainingDiverged& e, const RunGuard& guard, const DivergedContext& run);
/// \brief Print that Ctrl-C or SIGTERM ended the run, where it is saved and how to continue it.
/// \param signal the signal \param steps_done steps completed \param seconds time the run took
/// \param save_path the checkpoint \param curve_stem the curve's path without extension (empty: none)
/// \return the exit status, 128 + the signal's number
int report_interrupted(int signal, std::int64_t steps_done, double seconds, const std::string& save_path,
                       const std::string& curve_stem);

/// \brief The training loop of `qkv train` and `qkv train --text`, as the command shows it: calls
/// the trainer's run() with \p on_eval, redraws the progress line in place every 10 steps when
/// \p live (a terminal; not on a step whose evaluation prints its own line), and when a step
/// diverges, ends the line, writes the curve so far and throws diverged_error().
/// \param trainer a TaskTrainer or TextTrainer
/// \param on_eval called after every evaluation (prints its line)
/// \param status the progress line for (step, loss, finished)
/// \param live whether the progress line is redrawn in place
/// \param eval_every the steps between evaluations
/// \param guard the run's guard \param write_curve writes the curve's SVG and CSV
/// \param context what diverged_error() needs to say where the run stands
/// \return what run() returns: the evaluations made
template <class Trainer, class OnEval>
auto run_with_progress(Trainer& trainer, const OnEval& on_eval,
                       const std::function<std::string(std::int64_t, double, bool)>& status, bool live,
                       std::int64_t eval_every, RunGuard& guard, const std::function<void()>& write_curve,
                       const DivergedContext& context) {
    try {
        return trainer.run(
            on_eval,
            [&](std::int64_t step, double loss) {
                if (live && step % 10 == 0 && step % eval_every != 0) {
                    say("\r{}", status(step, loss, false));
                    std::fflush(stdout);
                }
            },
            &guard);
    } catch (const TrainingDiverged& e) {
        if (live) say("\n");
        write_curve();
        throw diverged_error(e, guard, context);
    }
}

}  // namespace qkv::cli
