/// \file
/// \brief Loading weights saved under other names: name maps, and a load that reports what it
/// matched, as PyTorch's `load_state_dict` does.
///
/// A reader learns here what stands between two frameworks that compute the same model: only the
/// names. PyTorch calls the token embedding of the benchmark model `tok.weight`, qkv calls it
/// `tok_emb.weight`; the numbers and their layout are the same (a Linear's weight is (out, in) in
/// both). A name map is a short list of rules that rewrites the file's names into the model's; the
/// load then checks every matched tensor's shape and dtype before it changes anything, and reports
/// the model's parameters the file lacked (missing) and the file's tensors the model has no place
/// for (unexpected). Strict loading makes either list an error; non-strict loading returns them —
/// but a load that matches nothing at all is always an error, never a silent no-op.
#pragma once

#include <string>
#include <vector>

#include "qkv/io/safetensors.hpp"
#include "qkv/nn/module.hpp"

namespace qkv::io {

/// \brief One renaming rule: a file name matching \p from becomes \p to.
///
/// In \p from, each `*` matches one or more characters other than `.` (one segment of a dotted
/// name, or part of one); the texts it matched are put, in order, in place of the `*`s of \p to,
/// which must have as many. Example: `{"blocks.*.fc1.*", "blocks.*.mlp.fc1.*"}` renames
/// `blocks.3.fc1.bias` to `blocks.3.mlp.fc1.bias`.
struct NameRule {
    std::string from;  ///< the pattern a file name must match, whole
    std::string to;    ///< the model's name, with the matched texts substituted for its `*`s
};

/// A list of renaming rules; the first rule that matches a name applies, and a name that no rule
/// matches is kept as it is (so the empty map is qkv's own names).
using NameMap = std::vector<NameRule>;

/// \brief The map from the plain PyTorch GPT of `tests/bench/bench_train_torch.py` (the model
/// whose numbers qkv's GPT matches) to qkv's GPT: `tok`→`tok_emb`, `pos`→`pos_emb`, `attn.qkv`→
/// `attn.qkv_proj`, `attn.proj`→`attn.out_proj`, `fc1`/`fc2`→`mlp.fc1`/`mlp.fc2`, `head`→`lm_head`;
/// the layer norms' names are the same in both.
/// \return the rules
NameMap pytorch_gpt_names();

/// \brief The inverse of \p map for the names it renames: rules that turn the model's names back
/// into the file's (for exporting under the other framework's names).
/// \param map a map whose rules each have as many `*` on both sides
/// \return the reversed rules, in the same order
NameMap reversed(const NameMap& map);

/// \brief A file name under \p map: the first matching rule's result, or \p name unchanged.
/// \param map the rules
/// \param name a tensor name from a file
/// \return the model's name for it
/// \throws qkv::Error when a rule's two sides have different numbers of `*`
std::string map_name(const NameMap& map, const std::string& name);

/// What load_state_dict() matched, in the model's parameter order (loaded, missing) and the file's
/// order (unexpected, under the file's own names).
struct LoadReport {
    std::vector<std::string> loaded;      ///< the model's parameters that received the file's values
    std::vector<std::string> missing;     ///< the model's parameters the file does not have (unchanged)
    std::vector<std::string> unexpected;  ///< the file's tensors that match no parameter (ignored)
};

/// \brief Copy the tensors of \p file into \p model's parameters, renaming the file's names with
/// \p map; all or nothing.
///
/// Every matched tensor's shape and dtype is checked against its parameter first, and two file
/// tensors that map to the same parameter are an error; only when everything is right are the
/// values copied. With \p strict, a missing or an unexpected name is an error naming it; without,
/// they are returned (the missing parameters keep their values). Either way, a file of which no
/// tensor matches is an error. A qkv checkpoint's training state (tensors named `optimizer.…` and
/// `train.curve`) is not weights and is passed over: load_checkpoint() is what restores it.
/// \param file the tensors (e.g. from load_safetensors())
/// \param source how to name the file in error messages
/// \param model the model to load into
/// \param map the renaming rules (empty: qkv's own names)
/// \param strict require the names to match exactly (after renaming)
/// \return what was loaded, what was missing and what was unexpected
LoadReport load_state_dict(const SafeTensors& file, const std::string& source, nn::Module& model,
                           const NameMap& map = {}, bool strict = true);

/// \brief Write the weights of a qkv checkpoint under another framework's names: the bridge out.
///
/// Reads \p checkpoint (any file qkv saved, task or text model), leaves out the training state
/// (the `optimizer.…` tensors, `train.curve` and the `optimizer.`/`train.` metadata), renames
/// every weight with \p to_names (e.g. reversed(pytorch_gpt_names())), and writes them to \p out
/// (atomically), with the rest of the metadata — the model's configuration (`run.…`) and, for a
/// text model, its tokenizer — and `"format": "pt"`, as PyTorch's safetensors writer marks its
/// files. Two weights that would get the same name are an error, and \p out is not written.
/// \param checkpoint the qkv checkpoint to read
/// \param out the file to write
/// \param to_names the renaming rules from qkv's names to the other framework's
/// \return the names written, in the checkpoint's order
std::vector<std::string> export_weights(const std::string& checkpoint, const std::string& out, const NameMap& to_names);

}  // namespace qkv::io
