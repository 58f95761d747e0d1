/// \file
/// \brief The bridge in: a GPT saved by PyTorch (or any file of named tensors) made into a qkv
/// checkpoint that `qkv sample`, `qkv train --text --init` and load_text_model() read.
///
/// A reader learns here what a checkpoint does not say about its model. The tensors' shapes give
/// almost the whole configuration — the vocabulary and width from the token embedding, the context
/// from the position embedding, the depth from how many blocks there are, the MLP width from its
/// first layer — but not the number of heads: splitting C channels into H heads of C/H changes no
/// weight's shape, only how attention reads them. So the heads come from the file's metadata or
/// from the user; everything the metadata states is checked against the tensors.
#pragma once

#include <cstdint>
#include <string>

#include "qkv/io/state_dict.hpp"
#include "qkv/nn/transformer.hpp"
#include "qkv/train/text.hpp"

namespace qkv {

/// \brief The GPT configuration a file of weights describes.
///
/// Names are first rewritten with \p map (e.g. io::pytorch_gpt_names()); then vocab and dim come
/// from `tok_emb.weight` (V, C), block_size from `pos_emb.weight`, layers from the blocks
/// `blocks.N.…` present, hidden from `blocks.0.mlp.fc1.weight`. The heads are \p heads when it is
/// positive, else the metadata's `model.heads` (text models, and files PyTorch's side of the bridge
/// writes) or `run.heads` (task models). Metadata `model.vocab`, `model.block_size`, `model.dim`,
/// `model.layers` and `model.hidden`, when present, must agree with the tensors; `model.tanh_gelu`,
/// `model.ln_eps` and `model.tie_weights` (a GPT-2 model exported by qkv) are taken as they are.
/// \param file the tensors and metadata
/// \param source how to name the file in messages (its path)
/// \param map the renaming rules into qkv's names
/// \param heads the number of heads, or 0 to read it from the metadata
/// \return the configuration (seed 0, no dropout)
/// \throws qkv::Error naming the tensor, the metadata key and both values when something is missing
/// or disagrees, or when the heads are unknown or do not divide dim
nn::GPTConfig infer_gpt_config(const io::SafeTensors& file, const std::string& source, const io::NameMap& map,
                               std::int64_t heads = 0);

/// How import_gpt() reads its input.
struct ImportOptions {
    io::NameMap map = io::pytorch_gpt_names();  ///< the file's names → qkv's
    std::int64_t heads = 0;                     ///< the number of heads (0: from the metadata)
    std::string tokenizer;                      ///< a tokenizer file to attach (empty: the file's own, if any)
    bool strict = true;                         ///< every parameter present, nothing left over
};

/// What import_gpt() did.
struct ImportResult {
    nn::GPTConfig config;              ///< the model's configuration
    DType dtype = f32;                 ///< f64 when the weights were f64, else f32
    io::LoadReport report;             ///< loaded, missing and unexpected names
    bool has_tokenizer = false;        ///< the checkpoint carries a tokenizer (sample can use it)
};

/// \brief Read a GPT's weights from \p in (safetensors), build qkv's GPT of the configuration they
/// describe (infer_gpt_config()), load them (io::load_state_dict(), all or nothing) and save the
/// model to \p out (atomically) as a qkv checkpoint with the configuration as `model.*` metadata
/// and the tokenizer — the file's metadata `tokenizer`, or \p options.tokenizer — when there is one.
/// F16 and BF16 weights become f32; f64 weights stay f64.
/// \param in the file to import
/// \param out the checkpoint to write
/// \param options name map, heads, tokenizer, strictness
/// \return the configuration and what was loaded
ImportResult import_gpt(const std::string& in, const std::string& out, const ImportOptions& options = {});

/// \brief A GPT-2 model from the directory of its files, as Hugging Face distributes them:
/// `config.json`, `model.safetensors`, `vocab.json` and `merges.txt` (io/gpt2.hpp reads each). The
/// model comes in eval mode, in the weights' dtype (F16/BF16 as f32), ready for generate().
/// Throws qkv::Error naming the file when one is missing or wrong, or when the vocabulary and the
/// model disagree.
/// \param dir the directory
/// \return the model and its tokenizer (steps 0)
TextModel load_gpt2(const std::string& dir);

/// \brief load_gpt2(), saved as a qkv text-model checkpoint (the tokenizer in its metadata), which
/// `qkv sample --checkpoint` and `qkv train --text FILE --init` then read like any other.
/// \param dir the directory of GPT-2's files
/// \param out the checkpoint to write
/// \return the configuration and what was loaded (everything: GPT-2's layout is loaded strictly)
ImportResult import_gpt2(const std::string& dir, const std::string& out);

}  // namespace qkv
