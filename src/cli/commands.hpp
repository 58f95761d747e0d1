/// \file
/// \brief The subcommands of the `qkv` program.
#pragma once

#include <string>
#include <vector>

namespace qkv::cli {

/// `qkv train`: train a GPT on a toy task until it is perfect on held-out data. \param argv flags
int train_command(const std::vector<std::string>& argv);
/// `qkv eval`: held-out exact-match accuracy of a checkpoint. \param argv flags
int eval_command(const std::vector<std::string>& argv);
/// `qkv sample`: the model's answers to prompts. \param argv flags
int sample_command(const std::vector<std::string>& argv);
/// `qkv attention`: attention heatmaps of a trained model on one input. \param argv flags
int attention_command(const std::vector<std::string>& argv);

/// True when argv asks for help.
bool wants_help(const std::vector<std::string>& argv);

}  // namespace qkv::cli
