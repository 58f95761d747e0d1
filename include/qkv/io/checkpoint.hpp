/// \file
/// \brief Checkpoints: a model's parameters — and, to resume training, the optimizer state, the
/// step and the random generator — in one safetensors file.
///
/// A reader learns here what "resuming exactly" takes. The weights alone are not enough: Adam's
/// moment estimates and per-parameter step counts, the learning rate the schedule had reached, the
/// step counter, and the state of the random generator that draws batches and dropout masks must
/// all come back bit for bit, or the resumed run drifts away from the one that never stopped.
///
/// Layout of the file (plain safetensors, so other tools can read the weights):
/// - each parameter under its PyTorch-style dotted name (`blocks.0.attn.qkv_proj.weight`);
/// - each optimizer buffer under `optimizer.<param>.<slot>` (`optimizer.fc.weight.exp_avg`);
/// - in `__metadata__`: `optimizer.kind`, `optimizer.step`, `optimizer.<hyper>` (`optimizer.lr`,
///   ...; doubles written in shortest round-trip form), `train.step`, and `train.rng` (the four
///   64-bit words of the Generator state, in decimal, comma-separated);
/// - the training loop's curve, when it keeps one, as the tensor `train.curve` (see TrainState).
#pragma once

#include <cstdint>
#include <string>

#include "qkv/core/generator.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/nn/module.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::io {

/// The training loop's own state, saved with a checkpoint so a run can resume exactly.
struct TrainState {
    std::int64_t step = 0;  ///< steps completed
    Generator rng;          ///< the generator that draws batches (and anything else random)
    /// The loop's record of the run so far, if it keeps one: an (N, K) f64 table, one row per point
    /// of its training curve, so that a resumed run's curve continues the old one. The loop defines
    /// the columns and checks them on loading: TaskTrainer's are step, loss, held-out accuracy (NaN
    /// where none ran), seconds; TextTrainer's step, train loss, validation loss (NaN where none
    /// ran), learning rate, seconds. Saved as the tensor `train.curve`; undefined (and not saved)
    /// when the loop keeps none.
    Tensor curve;
};

/// \brief Save \p model's parameters and, when given, the optimizer state and the training state
/// to \p path (safetensors, written atomically: a failure leaves any previous file intact).
/// \param path the file to write
/// \param model the model whose named_parameters() are saved
/// \param optimizer the optimizer to save, or nullptr
/// \param train the training state to save, or nullptr
/// \param extra more metadata to store (keys must not start with `optimizer.`, `train.` or `qkv.`)
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer = nullptr,
                     const TrainState* train = nullptr, const Metadata& extra = {});

/// \brief Load a checkpoint into existing objects, copying values into the parameters matched by
/// dotted name (and into the optimizer's state, and the training state, when given).
///
/// Everything is checked before anything is changed: on error nothing is modified. Throws
/// qkv::Error naming the file, the tensor and the problem for a missing tensor, an unexpected one
/// (when \p strict), a wrong shape or dtype, a missing optimizer or training state that was asked
/// for, an optimizer of a different kind, and every file-level problem load_safetensors() detects.
/// With \p strict false, missing parameters keep their values and unexpected tensors are ignored
/// (like PyTorch's `strict=False`). Optimizer tensors are ignored when \p optimizer is null.
/// Restoring optimizer or training state needs a file qkv wrote, unchanged: one without qkv's CRC-32
/// (`qkv.crc32`), as another program or a hand edit leaves it, is refused for that (its weights
/// alone still load, with \p optimizer and \p train null).
/// Returns the file's metadata, so callers can read their `extra` entries.
/// \param path the file to read
/// \param model the model to fill
/// \param optimizer the optimizer to restore, or nullptr
/// \param train the training state to restore, or nullptr
/// \param strict require the file's parameters to match the model's exactly
/// \return the file's `__metadata__`, every key included
Metadata load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer = nullptr,
                         TrainState* train = nullptr, bool strict = true);

/// \brief The same as load_checkpoint(path, ...), from a file already read with load_safetensors()
/// (so a caller that first reads the metadata parses the file once).
/// \param file the parsed file
/// \param source how to name the file in messages (its path)
/// \param model the model to fill
/// \param optimizer the optimizer to restore, or nullptr
/// \param train the training state to restore, or nullptr
/// \param strict require the file's parameters to match the model's exactly
/// \return the file's `__metadata__`, every key included
Metadata load_checkpoint(const SafeTensors& file, const std::string& source, nn::Module& model,
                         optim::Optimizer* optimizer = nullptr, TrainState* train = nullptr, bool strict = true);

}  // namespace qkv::io
