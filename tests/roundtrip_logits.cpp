/// \file
/// \brief Checkpoint round trip across processes: `roundtrip_logits save DIR` trains a small GPT in
/// f32 for a few steps, saves it and the logits it produces; `roundtrip_logits check DIR`, run as a
/// separate process, builds a model from a *different* seed, loads the checkpoint and requires
/// bit-identical logits.
#include <cstring>
#include <string>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {
nn::GPTConfig config(std::uint64_t seed) {
    nn::GPTConfig c;
    c.vocab = 13;
    c.block_size = 12;
    c.dim = 32;
    c.heads = 4;
    c.layers = 2;
    c.seed = seed;
    return c;
}
Tensor inputs() {
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 2 * 12; ++i) ids.push_back((i * 7 + 3) % 13);
    return from(ids, {2, 12});
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fmt::print(stderr, "usage: roundtrip_logits save|check DIR\n");
        return 2;
    }
    const std::string mode = argv[1], dir = argv[2];
    try {
        if (mode == "save") {
            nn::GPT model(config(1));
            optim::AdamW opt(model.named_parameters());
            for (int s = 0; s < 5; ++s) {  // train a little, so the weights are not the initial ones
                opt.zero_grad();
                model.loss(inputs(), inputs()).backward();
                opt.step();
            }
            io::save_checkpoint(dir + "/model.safetensors", model);
            NoGradGuard ng;
            io::save_safetensors(dir + "/logits.safetensors", {{"logits", model(inputs())}});
            fmt::print("saved model and logits\n");
            return 0;
        }
        if (mode == "check") {
            nn::GPT model(config(99));  // different initial weights: everything must come from the file
            io::load_checkpoint(dir + "/model.safetensors", model);
            NoGradGuard ng;
            const Tensor logits = model(inputs());
            const Tensor expected = io::load_safetensors(dir + "/logits.safetensors").tensors.at(0).second;
            const bool same = logits.shape() == expected.shape() &&
                              std::memcmp(logits.raw_data(), expected.raw_data(), std::size_t(logits.numel()) * 4) == 0;
            fmt::print("logits after reload: {}\n", same ? "bit-identical" : "DIFFERENT");
            return same ? 0 : 1;
        }
    } catch (const Error& e) {
        fmt::print(stderr, "roundtrip_logits: {}\n", e.what());
        return 1;
    }
    return 2;
}
