/// \file
/// \brief `qkv export`: a checkpoint's weights under PyTorch's names, for a learner who moves on.
///
/// The numbers of qkv's GPT and of the plain PyTorch GPT in tests/bench/bench_train_torch.py are
/// the same computation; only the names differ (io/state_dict.hpp). Exporting writes the weights
/// under PyTorch's names, without the optimizer and training state, into a safetensors file that
/// PyTorch's `safetensors.torch.load_file` reads.
#include <fmt/core.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/io/file.hpp"
#include "qkv/io/state_dict.hpp"

namespace qkv::cli {

int export_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv export --to pytorch --out FILE [--checkpoint PATH]\n\n"
            "Write the weights of a checkpoint to FILE (safetensors) under the names of the plain PyTorch GPT of\n"
            "tests/bench/bench_train_torch.py: tok, pos, blocks.N.{{ln1,attn.qkv,attn.proj,ln2,fc1,fc2}}, ln_f,\n"
            "head. The optimizer and training state are left out; the model's configuration (run.*) and a text\n"
            "model's tokenizer stay in the file's metadata. Default checkpoint: the last one 'qkv train' saved\n"
            "(named in runs/last).\n");
        return 0;
    }
    const Args a("export", argv, {{"to"}, {"out"}, {"checkpoint"}});
    const std::string to = a.str("to", "");
    if (to != "pytorch") throw UsageError(fmt::format("--to: expected 'pytorch' (the one format qkv exports to), got '{}'", to));
    const std::string out = a.str("out", "");
    if (out.empty()) throw UsageError("--out FILE is required: where to write the exported weights");
    const std::string path = checkpoint_to_open(a.str("checkpoint", ""));
    io::check_writable(out, "export");
    const auto names = io::export_weights(path, out, io::reversed(io::pytorch_gpt_names()));
    say("exported {} weights of '{}' to '{}' under PyTorch's names ({}, ..., {})\n", names.size(), path, out,
        names.front(), names.back());
    return 0;
}

}  // namespace qkv::cli
