/// \file
/// \brief GPT-2's files: `config.json`, the weights in `model.safetensors`, and the tokenizer's
/// `vocab.json` and `merges.txt`, read into qkv's GPT and BPE tokenizer.
///
/// A reader learns here that GPT-2 is the model qkv builds — pre-LN blocks, one fused QKV
/// projection, learned positions — and that what differs is bookkeeping:
/// - **names**: `wte`/`wpe` for the embeddings, `h.N` for block N, `ln_1`/`ln_2`, `attn.c_attn` (the
///   fused Q, K, V projection), `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`, `ln_f` (gpt2_names());
/// - **layout**: GPT-2's projections are "Conv1D" modules that store their weight as (in, out) and
///   compute x·W + b, where a Linear (qkv's, PyTorch's) stores (out, in) and computes x·Wᵀ + b: the
///   same numbers, transposed (gpt2_to_qkv() transposes them);
/// - **a tied head**: the logits are h·wteᵀ, so the file has no head of its own (GPTConfig::tie_weights);
/// - **the tanh approximation of GELU** (`"activation_function": "gelu_new"`) and layer norm ε 1e-5,
///   both read from config.json (read_gpt2_config());
/// - **the tokenizer's numbering**: the same byte-level BPE as qkv's, but GPT-2 writes each byte as a
///   printable character (its byte-to-unicode table: bytes that are printable stand for themselves,
///   the others are moved to U+0100 and up, so a space is `Ġ`) and numbers the 256 bytes in that
///   table's order (read_gpt2_tokenizer()).
///
/// Everything is checked: config.json against the tensors, every token of vocab.json against the
/// merges, every merge against the vocabulary; each problem is a qkv::Error naming the file and
/// what disagrees.
#pragma once

#include <string>

#include "qkv/data/tokenizer.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/io/state_dict.hpp"
#include "qkv/nn/transformer.hpp"

namespace qkv::io {

/// \brief The names of GPT-2's checkpoints in qkv's: `wte`→`tok_emb`, `wpe`→`pos_emb`,
/// `h.N.ln_1`→`blocks.N.ln1`, `h.N.attn.c_attn`→`blocks.N.attn.qkv_proj`, `h.N.attn.c_proj`→
/// `blocks.N.attn.out_proj`, `h.N.ln_2`→`blocks.N.ln2`, `h.N.mlp.c_fc`→`blocks.N.mlp.fc1`,
/// `h.N.mlp.c_proj`→`blocks.N.mlp.fc2`, `ln_f`→`ln_f`; each also with the prefix `transformer.`
/// that Hugging Face's GPT2LMHeadModel adds.
/// \return the rules
NameMap gpt2_names();

/// \brief The GPT configuration of a GPT-2 `config.json`: `vocab_size`, `n_positions` (or `n_ctx`),
/// `n_embd`, `n_layer`, `n_head`, `n_inner` (null: 4·n_embd), `layer_norm_epsilon` (default 1e-5),
/// `activation_function` (`gelu_new` or `gelu_pytorch_tanh`: tanh GELU; `gelu`: exact), the head tied
/// to the token embedding. Throws qkv::Error naming the file and key for a missing or malformed
/// entry, an activation qkv does not have, or `tie_word_embeddings` false.
/// \param path the config.json file
/// \return the configuration (seed 0, no dropout)
nn::GPTConfig read_gpt2_config(const std::string& path);

/// \brief A GPT-2 checkpoint's tensors as qkv's GPT names them: renamed with gpt2_names(), the
/// Conv1D weights (`c_attn`, `c_proj`, `c_fc`) transposed from (in, out) to (out, in), the attention
/// masks some files carry as buffers (`h.N.attn.bias`, `h.N.attn.masked_bias`: not weights)
/// dropped, and an `lm_head.weight` dropped when it equals `wte.weight` (tied). Every tensor's shape
/// is checked against \p config first, naming the tensor and both shapes.
/// \param file the checkpoint (model.safetensors)
/// \param source how to name it in messages (its path)
/// \param config the configuration read_gpt2_config() read
/// \return the tensors under qkv's names, ready for load_state_dict() without a map
SafeTensors gpt2_to_qkv(const SafeTensors& file, const std::string& source, const nn::GPTConfig& config);

/// \brief GPT-2's tokenizer from its two files: `vocab.json` (each token's text, in GPT-2's
/// byte-to-character spelling, and its id) and `merges.txt` (after a `#version` line, one merge
/// per line, "left right", in the order learned). The result is qkv's byte-level BPE with GPT-2's
/// pre-split and GPT-2's ids (data::BpeTokenizer::ids()). Every vocabulary entry must be one of the
/// 256 bytes, a merge's result, or `<|endoftext|>`, and every merge must join two known tokens.
/// (One difference from GPT-2 remains: qkv's pre-split cuts runs longer than data::kMaxChunkBytes,
/// so a run of more than 64 letters, digits or spaces may be encoded with other ids; decoding is
/// exact either way.)
/// \param vocab_json path of vocab.json
/// \param merges_txt path of merges.txt
/// \return the tokenizer
data::BpeTokenizer read_gpt2_tokenizer(const std::string& vocab_json, const std::string& merges_txt);

}  // namespace qkv::io
