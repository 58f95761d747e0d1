/// \file
/// \brief Where the last trained model is: `qkv train` records it, the other commands open it.
///
/// A reader learns here a small convenience with a careful edge: after `qkv train --task sort`, the
/// user's next `qkv sample` should look at the sort model, not at some default file. So `qkv train`
/// writes the path of the checkpoint it saved into `DIR/last` (DIR is its `--out`, `runs` by
/// default) — atomically, like every file qkv writes, so a reader never sees half a path — and
/// `qkv eval`, `sample` and `attention` open the checkpoint named in `runs/last` when no
/// `--checkpoint` is given, and say which file that was.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

#include "commands.hpp"
#include "qkv/error.hpp"
#include "qkv/io/file.hpp"

namespace qkv::cli {

std::string last_run_file(const std::string& out_dir) { return (std::filesystem::path(out_dir) / "last").string(); }

void record_last_run(const std::string& out_dir, const std::string& checkpoint) {
    // Absolute, so that the record stays right whatever the directory of the command that reads it.
    const std::string path = std::filesystem::absolute(checkpoint).lexically_normal().string();
    io::write_text_file(last_run_file(out_dir), path + "\n", "qkv train");
}

std::string checkpoint_to_open(const std::string& given) {
    if (!given.empty()) return given;
    const std::string record = last_run_file(kRunsDir);
    std::ifstream in(record);
    if (!in)
        fail("no --checkpoint given, and {} (written by 'qkv train') does not exist: train a model first "
             "('qkv train') or pass --checkpoint PATH",
             record);
    std::stringstream text;
    text << in.rdbuf();
    std::string path = text.str();
    while (!path.empty() && std::isspace(static_cast<unsigned char>(path.back()))) path.pop_back();
    if (path.empty()) fail("{} is empty: run 'qkv train' again, or pass --checkpoint PATH", record);
    say("checkpoint: {} (the last model 'qkv train' saved, named in {})\n", path, record);
    return path;
}

}  // namespace qkv::cli
