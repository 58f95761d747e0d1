/// \file
/// \brief The subcommands of the `qkv` program.
///
/// A reader learns here the shape of the program: each subcommand is one function from its argument
/// words to an exit status, defined in train.cpp or inspect.cpp (the three that load a checkpoint)
/// and called by main.cpp; last_run.cpp keeps the record of the last trained model between them. The functions print their own `--help` and throw on errors rather than
/// printing them, so every error message and exit code (1 for errors, 2 for bad command-line use)
/// comes from one place, main().
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

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

}  // namespace qkv::cli
