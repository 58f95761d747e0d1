/// \file
/// \brief A training run that is never wasted: the output checked before it starts, checkpoints
/// saved as it goes, Ctrl-C and SIGTERM turned into "finish this step, save, stop", and a loss that
/// stops being a number stopping it at once — without saving over the last good checkpoint.
///
/// A reader learns here what a long-running job owes its user beyond the computation itself. Each
/// piece is small and independent of the model, so any training loop can use them; TaskTrainer::run
/// and `qkv train` do. A loop adopts them like this:
///
/// ```cpp
/// qkv::RunGuard guard({.save_path = path, .checkpoint_every = 1000},
///                     [&](const std::string& p) { my_trainer.save(p); });   // save() refuses NaN
/// guard.check_output();                          // before any work: can `path` be written?
/// while (step < max_steps) {
///     double loss = my_step();                   // throws TrainingDiverged on a NaN (see below)
///     ++step;
///     if (guard.stop_requested()) { guard.save(step); break; }   // Ctrl-C / SIGTERM
///     guard.after_step(step);                    // a checkpoint every checkpoint_every steps
/// }
/// ```
///
/// and, inside its step, checks the loss and the gradients before the optimizer touches the
/// weights: `check_finite_step(loss, params, replay)`, where `replay` repeats the step's forward
/// and backward (the same batch, weights unchanged) — it then runs under qkv::AnomalyMode, so the
/// error names the op and the layer where the first NaN or infinity appeared.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"
#include "qkv/error.hpp"

namespace qkv {

/// \brief Thrown when a training step produced a loss or gradient that is not a finite number. The
/// step was not applied: the weights in memory are those before it, and nothing was saved.
class TrainingDiverged : public Error {
public:
    /// \param message what happened and where \param step the step that failed (1-based)
    TrainingDiverged(const std::string& message, std::int64_t step) : Error(message), step_(step) {}
    /// \brief The step whose loss or gradient was not finite.
    /// \return its number (the count of steps completed before it, plus one)
    std::int64_t step() const { return step_; }

private:
    std::int64_t step_;
};

/// \brief The first tensor of \p tensors holding NaN or ±∞, as text for messages:
/// "'blocks.0.mlp.fc1.weight' holds NaN at index 5 of (64,16)"; empty when all are finite.
/// \param tensors named tensors (integer and bool tensors are skipped)
/// \return the description, or "" when every value is finite
std::string find_non_finite(const std::vector<NamedTensor>& tensors);

/// \brief The check a training step makes before its optimizer update. Does nothing when \p loss is
/// finite and every gradient of \p params is; otherwise throws TrainingDiverged naming the first
/// non-finite parameter, if a parameter itself is the cause, or else what \p replay reveals: it is
/// run under qkv::AnomalyMode, and should repeat the step's forward and backward on the same batch,
/// so that the first op to produce a NaN or infinity is named, with its layer.
/// \param loss the step's loss
/// \param params the model's named parameters (their gradients are checked)
/// \param step the step being made (1-based), for the message
/// \param replay repeats forward and backward; may be empty (then no op is named)
void check_finite_step(double loss, const std::vector<NamedTensor>& params, std::int64_t step,
                       const std::function<void()>& replay);

/// \brief Refuse to save a state that is not finite: throws qkv::Error naming the first NaN or ±∞
/// and \p path, which therefore keeps its previous (good) content.
/// \param tensors everything about to be saved
/// \param path the file that would have been written
void check_finite_for_saving(const std::vector<NamedTensor>& tensors, const std::string& path);

/// \brief Ctrl-C (SIGINT) and SIGTERM as a request to stop, while this object lives: the first
/// signal sets a flag the training loop polls between steps (and prints that the run will stop and
/// save after the current step); a second one ends the program at once, as if no handler were
/// installed (a file being saved is still completed first: see io/file.hpp). Nested objects share
/// one flag; the last one to go restores the previous handlers.
class StopSignals {
public:
    /// Install the handlers (the first object to be made does).
    StopSignals();
    /// Restore the handlers in force before the first object was made (the last object to go does).
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    /// \brief Whether SIGINT or SIGTERM has arrived since the first StopSignals was made.
    /// \return true after a stop request
    bool requested() const;
    /// \brief Which signal asked to stop.
    /// \return SIGINT or SIGTERM, or 0 when none arrived
    int signal() const;
    /// \brief The name of a signal for messages. \param sig a signal number
    /// \return "SIGINT", "SIGTERM" or "signal N"
    static std::string name(int sig);
};

/// \brief How many steps apart `qkv train` saves its checkpoint by default (`--checkpoint-every`):
/// runs shorter than this never pay for a save before their end.
inline constexpr std::int64_t kDefaultCheckpointEvery = 1000;

/// Settings of a RunGuard.
struct RunGuardOptions {
    std::string save_path;                                ///< where the checkpoint is saved (atomically, each time)
    std::int64_t checkpoint_every = kDefaultCheckpointEvery;  ///< save every this many steps; 0: only when asked
    bool handle_signals = true;                           ///< make SIGINT / SIGTERM a stop request (StopSignals)
};

/// \brief The run-safety pieces in one object for a training loop: output check, periodic
/// checkpoints, and Ctrl-C / SIGTERM as "finish the step, save, stop". See the file's example.
class RunGuard {
public:
    /// Saves the run to the given path (atomically, and refusing a non-finite state).
    using SaveFn = std::function<void(const std::string& path)>;
    /// \param options where and how often to save, and whether to handle signals
    /// \param save writes the whole run (model, optimizer, step, random state) to a path
    RunGuard(RunGuardOptions options, SaveFn save);
    /// \brief Throw qkv::Error, before any work, when the checkpoint could not be saved at
    /// save_path (see io::check_writable()); creates missing parent directories first.
    void check_output() const;
    /// \brief Whether SIGINT or SIGTERM asked the run to stop (always false without handle_signals).
    /// \return true once a stop was requested
    bool stop_requested() const;
    /// \brief The signal that asked to stop, 0 if none.
    /// \return SIGINT, SIGTERM or 0
    int stop_signal() const;
    /// \brief Call after every completed step: saves when \p step is a multiple of checkpoint_every.
    /// \param step steps completed
    void after_step(std::int64_t step);
    /// \brief Save now. \param step steps completed (recorded as last_saved_step())
    void save(std::int64_t step);
    /// \brief The step of the last checkpoint this guard saved.
    /// \return the step, or −1 when it has saved none
    std::int64_t last_saved_step() const { return last_saved_; }
    /// \brief The settings. \return the options given to the constructor
    const RunGuardOptions& options() const { return options_; }

private:
    RunGuardOptions options_;
    SaveFn save_;
    std::unique_ptr<StopSignals> signals_;
    std::int64_t last_saved_ = -1;
};

}  // namespace qkv
