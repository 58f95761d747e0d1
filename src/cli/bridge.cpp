/// \file
/// \brief `qkv export` and `qkv import`: the bridge to PyTorch, both ways.
///
/// The numbers of qkv's GPT and of the plain PyTorch GPT in tests/pytorch/qkv_gpt.py (the model of
/// tests/bench/bench_train_torch.py) are the same computation; only the names differ
/// (io/state_dict.hpp). Exporting writes a checkpoint's weights under PyTorch's names, without the
/// optimizer and training state, into a safetensors file that PyTorch's `safetensors.torch.load_file`
/// (or qkv_gpt.load()) reads; importing reads such a file, works out the model's configuration from
/// the shapes (train/import.hpp) and writes a qkv checkpoint.
#include <fmt/core.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/io/file.hpp"
#include "qkv/io/state_dict.hpp"
#include "qkv/train/import.hpp"

namespace qkv::cli {

int export_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv export --to pytorch --out FILE [--checkpoint PATH]\n\n"
            "Write the weights of a checkpoint to FILE (safetensors) under the names of the plain PyTorch GPT of\n"
            "tests/bench/bench_train_torch.py: tok, pos, blocks.N.{{ln1,attn.qkv,attn.proj,ln2,fc1,fc2}}, ln_f,\n"
            "head. The optimizer and training state are left out; the model's configuration (run.*, model.*) and a\n"
            "text model's tokenizer stay in the file's metadata. Default checkpoint: the last one 'qkv train' saved\n"
            "(named in runs/last). In PyTorch, tests/pytorch/qkv_gpt.py rebuilds the model from FILE:\n"
            "  model, meta = qkv_gpt.load(FILE)\n");
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

namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

}  // namespace

int import_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv import --from pytorch --in FILE --out CHECKPOINT [--heads H] [--tokenizer FILE] [--partial]\n"
            "       qkv import --from gpt2 --in DIR --out CHECKPOINT\n\n"
            "Make a qkv checkpoint of a GPT saved by PyTorch (safetensors; F32, F64, F16 or BF16 weights) under the\n"
            "names of tests/pytorch/qkv_gpt.py (what 'qkv export --to pytorch' writes, and qkv_gpt.save()).\n"
            "The configuration comes from the tensors' shapes; the number of heads, which no shape shows, from\n"
            "the file's metadata (model.heads or run.heads) or --heads. The tokenizer is the file's own (metadata\n"
            "'tokenizer', as a qkv text model exported carries it) or --tokenizer FILE; with one, 'qkv sample\n"
            "--checkpoint CHECKPOINT' writes text with the model.\n"
            "Every parameter must be in the file and every tensor of the file must be used, unless --partial:\n"
            "then the missing parameters keep their initial values and the unused tensors are listed.\n\n"
            "--from gpt2: GPT-2 from the directory of its files (config.json, model.safetensors, vocab.json,\n"
            "merges.txt): its Conv1D weights transposed, its head tied, tanh GELU, its tokenizer with GPT-2's ids.\n");
        return 0;
    }
    const Args a("import", argv, {{"from"}, {"in"}, {"out"}, {"heads"}, {"tokenizer"}, {"partial", false}});
    const std::string from = a.str("from", "");
    if (from != "pytorch" && from != "gpt2")
        throw UsageError(fmt::format("--from: expected 'pytorch' or 'gpt2' (the layouts qkv imports), got '{}'", from));
    const std::string in = a.str("in", ""), out = a.str("out", "");
    if (in.empty()) throw UsageError("--in is required: the PyTorch file (or GPT-2 directory) to import");
    if (out.empty()) throw UsageError("--out CHECKPOINT is required: where to write the qkv checkpoint");
    if (from == "gpt2")
        for (const char* pytorch_only : {"heads", "tokenizer", "partial"})
            if (a.has(pytorch_only))
                throw UsageError(fmt::format("--{} is for --from pytorch: GPT-2's directory says everything", pytorch_only));
    ImportOptions o;
    o.heads = a.integer("heads", 0, 1, 65536);
    o.tokenizer = a.str("tokenizer", "");
    o.strict = !a.has("partial");
    io::check_writable(out, "import");
    const ImportResult r = from == "gpt2" ? import_gpt2(in, out) : import_gpt(in, out, o);
    const nn::GPTConfig& g = r.config;
    say("imported {} of {} parameters of '{}' into '{}': GPT of vocab {}, context {}, dim {}, heads {}, layers {}, "
        "MLP {}, {}\n",
        r.report.loaded.size(), r.report.loaded.size() + r.report.missing.size(), in, out, g.vocab, g.block_size,
        g.dim, g.heads, g.layers, g.hidden, dtype_name(r.dtype));
    if (!r.report.missing.empty())
        say("missing from the file (kept their initial values): {}\n", joined(r.report.missing));
    if (!r.report.unexpected.empty()) say("not used (no parameter of that name): {}\n", joined(r.report.unexpected));
    if (!r.has_tokenizer)
        say("no tokenizer in the file: give --tokenizer FILE for 'qkv sample' to write text with it\n");
    return 0;
}

}  // namespace qkv::cli
