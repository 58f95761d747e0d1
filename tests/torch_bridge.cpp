/// \file
/// \brief qkv's half of the PyTorch bridge tests (tests/pytorch/bridge.cmake runs it with
/// tests/pytorch/qkv_gpt.py, PyTorch's half):
///
///     torch_bridge make DIR            train a small GPT for 3 steps, save it (DIR/qkv.safetensors),
///                                      a batch of ids (DIR/ids.safetensors) and its logits on them
///                                      (DIR/qkv_logits.safetensors)
///     torch_bridge ids FILE V B T      a (B, T) batch of ids below V, as the tensor "ids"
///     torch_bridge logits CKPT IDS OUT the logits of the GPT in CKPT (a checkpoint with model.*
///                                      metadata, as qkv import writes) on IDS, to OUT
#include <cstdlib>
#include <string>

#include "qkv/qkv.hpp"
#include "qkv/train/import.hpp"
#include "qkv/train/text.hpp"

using namespace qkv;

namespace {

Tensor batch(std::int64_t vocab, std::int64_t B, std::int64_t T, std::uint64_t seed) {
    Generator gen(seed);
    std::vector<std::int32_t> ids(std::size_t(B * T));
    for (auto& id : ids) id = std::int32_t(gen.below(std::uint64_t(vocab)));
    return from(ids, {B, T});
}

Tensor logits_of(nn::GPT& model, const Tensor& ids) {
    const NoGradGuard no_grad;
    return model(ids);
}

void save_logits(const std::string& path, const Tensor& ids, const Tensor& logits) {
    io::save_safetensors(path, {{"ids", ids}, {"logits", logits}});
}

int make(const std::string& dir) {
    nn::GPTConfig g;
    g.vocab = 13;
    g.block_size = 12;
    g.dim = 32;
    g.heads = 4;
    g.layers = 2;
    g.hidden = 48;  // not 4·C: the importer must read it from the shapes
    g.seed = 3;
    nn::GPT model(g);
    // A few steps, so that biases and norms are no longer 0 and 1: a tensor loaded into the wrong
    // place then shows in the logits.
    optim::AdamW opt(model.named_parameters(), {.lr = 1e-2});
    for (std::uint64_t step = 0; step < 3; ++step) {
        opt.zero_grad();
        model.loss(batch(g.vocab, 4, 12, 10 + step), batch(g.vocab, 4, 12, 20 + step)).backward();
        opt.step();
    }
    model.eval();
    io::save_checkpoint(dir + "/qkv.safetensors", model, nullptr, nullptr, gpt_metadata(g));
    const Tensor ids = batch(g.vocab, 2, 12, 99);
    io::save_safetensors(dir + "/ids.safetensors", {{"ids", ids}});
    save_logits(dir + "/qkv_logits.safetensors", ids, logits_of(model, ids));
    fmt::print("saved a {}-layer GPT (vocab {}, dim {}, MLP {}) trained for 3 steps, a (2, 12) batch and its logits in '{}'\n",
               g.layers, g.vocab, g.dim, g.hidden, dir);
    return 0;
}

int logits(const std::string& checkpoint, const std::string& ids_file, const std::string& out) {
    const io::SafeTensors file = io::load_safetensors(checkpoint);
    const nn::GPTConfig g = infer_gpt_config(file, checkpoint, {});  // qkv's own names
    nn::GPT model(g);
    for (const auto& [name, t] : file.tensors)
        if (name == "tok_emb.weight") model.to(t.dtype());
    io::load_checkpoint(file, checkpoint, model);
    model.eval();
    Tensor ids;
    for (const auto& [name, t] : io::load_safetensors(ids_file).tensors)
        if (name == "ids") ids = t;
    if (!ids.defined()) fail("'{}' has no tensor 'ids'", ids_file);
    const Tensor l = logits_of(model, ids);
    save_logits(out, ids, l);
    fmt::print("logits {} of '{}' written to '{}'\n", shape_str(l.shape()), checkpoint, out);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "make" && argc == 3) return make(argv[2]);
        if (mode == "ids" && argc == 6) {
            const Tensor ids = batch(std::atoll(argv[3]), std::atoll(argv[4]), std::atoll(argv[5]), 7);
            io::save_safetensors(argv[2], {{"ids", ids}});
            return 0;
        }
        if (mode == "logits" && argc == 5) return logits(argv[2], argv[3], argv[4]);
        fmt::print(stderr, "usage: torch_bridge make DIR | ids FILE V B T | logits CHECKPOINT IDS OUT\n");
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "torch_bridge: {}\n", e.what());
        return 1;
    }
}
