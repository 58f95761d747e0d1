/// \file
/// \brief import_gpt(): a GPT's weights from another framework's file into a qkv checkpoint.
#include "qkv/train/import.hpp"

#include <fmt/core.h>

#include <limits>
#include <map>
#include <string_view>
#include <memory>
#include <optional>

#include "meta_reader.hpp"
#include "qkv/data/tokenizer.hpp"
#include "qkv/io/checkpoint.hpp"
#include "qkv/io/gpt2.hpp"

namespace qkv {

namespace {

// The file's tensors under qkv's names (through the map), for looking up shapes.
std::map<std::string, const Tensor*> by_model_name(const io::SafeTensors& file, const io::NameMap& map) {
    std::map<std::string, const Tensor*> out;
    for (const auto& [name, t] : file.tensors) out[io::map_name(map, name)] = &t;
    return out;
}

const Tensor& need(const std::map<std::string, const Tensor*>& tensors, const std::string& name,
                   const std::string& source, std::int64_t dims) {
    const auto it = tensors.find(name);
    if (it == tensors.end())
        fail("{}: no tensor maps to '{}': not a GPT of this layout (wrong --from, or another model)", source, name);
    if (it->second->dim() != dims)
        fail("{}: '{}' should have {} dimensions, has shape {}", source, name, dims, shape_str(it->second->shape()));
    return *it->second;
}

}  // namespace

nn::GPTConfig infer_gpt_config(const io::SafeTensors& file, const std::string& source, const io::NameMap& map,
                               std::int64_t heads) {
    const std::string ctx = fmt::format("'{}'", source);
    const auto tensors = by_model_name(file, map);
    nn::GPTConfig g;
    const Tensor& tok = need(tensors, "tok_emb.weight", ctx, 2);
    g.vocab = tok.size(0);
    g.dim = tok.size(1);
    const Tensor& pos = need(tensors, "pos_emb.weight", ctx, 2);
    g.block_size = pos.size(0);
    if (pos.size(1) != g.dim)
        fail("{}: the position embedding is {} but the token embedding {}: their widths must agree", ctx,
             shape_str(pos.shape()), shape_str(tok.shape()));
    g.layers = 0;
    while (tensors.count(fmt::format("blocks.{}.mlp.fc1.weight", g.layers))) ++g.layers;
    if (g.layers == 0) fail("{}: no blocks (no tensor maps to 'blocks.0.mlp.fc1.weight')", ctx);
    g.hidden = need(tensors, "blocks.0.mlp.fc1.weight", ctx, 2).size(0);
    g.seed = 0;

    // The metadata may state the configuration too (a text model's model.*): it must agree.
    const detail::MetaReader meta(file.metadata, ctx);
    const auto agree = [&](const char* key, std::int64_t from_tensors, const char* what) {
        if (!file.metadata.count(key)) return;
        std::int64_t stated = meta.integer(key, 0, std::numeric_limits<std::int64_t>::max());
        if (stated == 0 && std::string_view(key) == "model.hidden") stated = 4 * g.dim;  // GPTConfig: 0 means 4·C
        if (stated != from_tensors)
            fail("{}: metadata '{}' says {}, but the tensors have {} = {}", ctx, key, stated, what, from_tensors);
    };
    agree("model.vocab", g.vocab, "vocab (rows of the token embedding)");
    agree("model.block_size", g.block_size, "block_size (rows of the position embedding)");
    agree("model.dim", g.dim, "dim (columns of the token embedding)");
    agree("model.layers", g.layers, "layers (blocks present)");
    agree("model.hidden", g.hidden, "hidden (rows of blocks.0's first MLP layer)");

    if (heads > 0) {
        g.heads = heads;
    } else if (file.metadata.count("model.heads")) {
        g.heads = meta.integer("model.heads", 1, 1 << 16);
    } else if (file.metadata.count("run.heads")) {
        g.heads = meta.integer("run.heads", 1, 1 << 16);
    } else {
        fail("{}: the number of heads is not in the file's metadata (model.heads or run.heads) and cannot be seen "
             "in the weights' shapes: give it (--heads H)",
             ctx);
    }
    if (g.dim % g.heads != 0) fail("{}: {} heads do not divide dim {}", ctx, g.heads, g.dim);
    detail::read_gpt_options(meta, g);
    return g;
}

ImportResult import_gpt(const std::string& in, const std::string& out, const ImportOptions& options) {
    const io::SafeTensors file = io::load_safetensors(in);
    ImportResult r;
    r.config = infer_gpt_config(file, in, options.map, options.heads);
    r.dtype = by_model_name(file, options.map).at("tok_emb.weight")->dtype() == f64 ? f64 : f32;

    std::unique_ptr<data::Tokenizer> tokenizer;
    if (!options.tokenizer.empty())
        tokenizer = data::Tokenizer::load(options.tokenizer);
    else if (const auto it = file.metadata.find("tokenizer"); it != file.metadata.end())
        tokenizer = data::Tokenizer::parse(it->second, fmt::format("'{}' metadata", in));
    if (tokenizer && tokenizer->vocab_size() != r.config.vocab)
        fail("'{}': the tokenizer has {} tokens, the model's embedding {} rows", options.tokenizer.empty() ? in : options.tokenizer,
             tokenizer->vocab_size(), r.config.vocab);

    std::unique_ptr<nn::GPT> model;
    {
        // A strict load overwrites every weight, so drawing initial values would be wasted; a partial
        // one keeps the random initialisation for what the file lacks.
        std::optional<nn::SkipInit> skip;
        if (options.strict) skip.emplace();
        model = std::make_unique<nn::GPT>(r.config);
    }
    model->to(r.dtype);
    r.report = io::load_state_dict(file, in, *model, options.map, options.strict);
    io::Metadata meta = tokenizer ? text_metadata(r.config, *tokenizer) : gpt_metadata(r.config);
    r.has_tokenizer = tokenizer != nullptr;
    meta["model.imported_from"] = in;
    io::save_checkpoint(out, *model, nullptr, nullptr, meta);
    return r;
}

namespace {

// The model of a GPT-2 directory, and what loading it matched.
TextModel read_gpt2(const std::string& dir, io::LoadReport* report) {
    const std::string config = dir + "/config.json", weights = dir + "/model.safetensors";
    const nn::GPTConfig g = io::read_gpt2_config(config);
    TextModel out;
    out.tokenizer = std::make_unique<data::BpeTokenizer>(io::read_gpt2_tokenizer(dir + "/vocab.json", dir + "/merges.txt"));
    if (out.tokenizer->vocab_size() != g.vocab)
        fail("'{}': vocab_size is {}, but vocab.json has {} tokens", config, g.vocab, out.tokenizer->vocab_size());
    const io::SafeTensors file = io::gpt2_to_qkv(io::load_safetensors(weights), weights, g);
    {
        const nn::SkipInit skip;  // the strict load below overwrites every weight
        out.model = std::make_unique<nn::GPT>(g);
    }
    for (const auto& [name, t] : file.tensors)
        if (name == "tok_emb.weight" && t.dtype() == f64) out.model->to(f64);
    const io::LoadReport r = io::load_state_dict(file, weights, *out.model, {}, true);
    if (report) *report = r;
    out.model->eval();
    return out;
}

}  // namespace

TextModel load_gpt2(const std::string& dir) { return read_gpt2(dir, nullptr); }

ImportResult import_gpt2(const std::string& dir, const std::string& out) {
    ImportResult r;
    const TextModel m = read_gpt2(dir, &r.report);
    r.config = m.model->config();
    r.dtype = m.model->named_parameters().front().second.dtype();
    r.has_tokenizer = true;
    io::Metadata meta = text_metadata(r.config, *m.tokenizer);
    meta["model.imported_from"] = dir;
    io::save_checkpoint(out, *m.model, nullptr, nullptr, meta);
    return r;
}

}  // namespace qkv
