/// \file
/// \brief Training a GPT on a toy sequence task: the loop behind `qkv train` and tutorials 10–12.
///
/// A reader learns here what a complete training run consists of: a task that draws batches, a
/// model, an optimizer (AdamW), the step (forward, loss, backward, update), and an evaluation that
/// decodes answers greedily for a fixed held-out set and counts exact matches — plus saving and
/// resuming the whole state so a run can continue bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "qkv/data/tasks.hpp"
#include "qkv/io/checkpoint.hpp"
#include "qkv/nn/transformer.hpp"
#include "qkv/optim/optim.hpp"
#include "qkv/train/memory.hpp"
#include "qkv/train/run_guard.hpp"

namespace qkv {

/// \brief Seed of the fixed held-out evaluation set: TaskTrainer::heldout() and `qkv eval` both
/// draw data::heldout_set() from it, so every run of a task is measured on the same sequences.
inline constexpr std::uint64_t kHeldoutSeed = 20261124;

/// \brief Everything that defines a training run on a toy task.
///
/// TaskTrainer checks every setting against the range given here (a qkv::Error names the setting
/// and the value), and TaskTrainer::load() checks a checkpoint's settings field by field against
/// the same ranges before it builds anything from them. (`qkv train`'s flags have narrower ranges.)
struct TaskTrainConfig {
    data::TaskConfig task;            ///< which task (name, length, answer order)
    std::int64_t layers = 2;          ///< transformer blocks, in [1, 1024]
    std::int64_t heads = 4;           ///< attention heads, in [1, 1024]; they divide dim
    std::int64_t dim = 64;            ///< d_model, in [1, 65536]
    std::int64_t batch = 32;          ///< sequences per step, in [1, 10^6]
    std::int64_t max_steps = 3000;    ///< step budget (a total, counted from step 0), in [1, 10^12]
    double lr = 1e-3;                 ///< AdamW learning rate (constant, as in the reference recipe), finite, > 0
    double weight_decay = 0.01;       ///< AdamW decoupled weight decay, finite, >= 0
    std::uint64_t seed = 0;           ///< model initialisation and batch sampling (any 64-bit value)
    std::int64_t eval_every = 100;    ///< evaluate every this many steps, in [1, 10^12]
    std::int64_t eval_size = 1000;    ///< held-out sequences per evaluation, in [1, 10^6]
    std::int64_t log_every = 10;      ///< steps between points of the training curve, in [1, 10^12]
    double target_accuracy = 1.0;     ///< stop once held-out exact match reaches this
    DType dtype = f32;                ///< train in f32 (fast) or f64
};

/// One evaluation during training.
struct EvalPoint {
    std::int64_t step = 0;   ///< steps completed
    double loss = 0;         ///< mean training loss since the previous evaluation
    double accuracy = 0;     ///< held-out exact-match accuracy, in [0, 1]
    double seconds = 0;      ///< wall time since the start of this run (evaluation included)
};

/// \brief One point of the training curve, recorded every TaskTrainConfig::log_every steps, at every
/// evaluation and at the last step: so even a run that stops at its first evaluation has a curve.
struct CurvePoint {
    std::int64_t step = 0;  ///< steps completed
    double loss = 0;        ///< mean training loss of the steps since the previous point
    /// held-out exact-match accuracy in [0, 1] when an evaluation ran at this step, else NaN
    double accuracy = std::numeric_limits<double>::quiet_NaN();
    double seconds = 0;     ///< wall time of the run so far (evaluation included), continued across resumes
};

/// \brief A GPT, its task, its optimizer and its progress, with one method per part of the loop.
class TaskTrainer {
public:
    /// \brief Build a fresh model and optimizer for \p config. Throws qkv::Error on bad settings, and
    /// qkv::OutOfMemory — before allocating anything — when the estimated memory of training
    /// (memory_estimate()) exceeds what available_memory() reports, naming both.
    /// \param config the run's settings
    explicit TaskTrainer(const TaskTrainConfig& config);
    /// \brief Rebuild a run saved by save(): settings from the checkpoint's metadata, then the
    /// model, optimizer, step and RNG state. \param path checkpoint file
    /// \return the restored trainer (never null), ready to continue at steps_done()
    static std::unique_ptr<TaskTrainer> load(const std::string& path);
    /// \brief Save model, optimizer, step, RNG state, settings and the curve so far (atomically).
    /// Refuses (qkv::Error, the file untouched) when a weight or optimizer value is not finite, so a
    /// good checkpoint is never replaced by a broken one.
    /// \param path checkpoint file (safetensors)
    void save(const std::string& path) const;

    /// \brief One training step on a fresh batch; returns its loss. The loss and the gradients are
    /// checked before the update: when one is not finite, the step is not applied and
    /// TrainingDiverged names the op and layer where the first NaN or infinity appeared (the step is
    /// repeated under anomaly mode to find it), or the parameter that already held one.
    /// \return the batch's mean loss, computed before the update
    double step();
    /// \brief Exact-match accuracy of greedy decoding (with the key/value cache) on \p examples.
    /// \param examples held-out examples
    /// \return the fraction of examples answered exactly right, in [0, 1] (0 for an empty list)
    double evaluate(const std::vector<data::Example>& examples);
    /// \brief The model's answer for one prompt (greedy). \param prompt the prompt text, e.g. "1234"
    /// \return the generated answer text (Task::answer_length() tokens)
    std::string answer(const std::string& prompt);
    /// \brief The fixed held-out evaluation set (eval_size examples, same for every run of this task).
    /// \return the held-out examples
    const std::vector<data::Example>& heldout() const { return heldout_; }

    /// \brief Train until the target accuracy or the step budget, evaluating every eval_every steps
    /// and at the last step of the budget, and adding a point to curve() every log_every steps and at
    /// every evaluation.
    /// With a \p guard, it also saves a checkpoint every guard->options().checkpoint_every steps, and
    /// after a stop request (SIGINT, SIGTERM) it completes the current step (and its evaluation, if
    /// one is due), saves, and returns; guard->stop_signal() then tells why.
    /// \param on_eval called after every evaluation (for progress output); may be empty
    /// \param on_step called after every step with (step, loss); may be empty
    /// \param guard periodic checkpoints and stop requests, or null for neither
    /// \return the evaluations made by this call, in order (none if max_steps was already reached)
    std::vector<EvalPoint> run(const std::function<void(const EvalPoint&)>& on_eval = {},
                               const std::function<void(std::int64_t, double)>& on_step = {},
                               RunGuard* guard = nullptr);
    /// \brief The training curve so far: saved in checkpoints, so after load() it holds the points
    /// of the runs before, and run() appends to it.
    /// \return the points in step order: the loss every log_every steps and at every evaluation,
    /// with the accuracy where an evaluation ran
    const std::vector<CurvePoint>& curve() const { return curve_; }
    /// \brief Change the step budget, e.g. to continue a loaded run further: \p steps is the
    /// *total* number of steps the run ends at (counted from step 0, like a fresh run's max_steps),
    /// not a number of additional steps.
    /// \param steps the new budget, in [1, 10^12]
    void set_max_steps(std::int64_t steps);
    /// \brief Change the learning rate from the next step on (e.g. for a resumed run that diverged).
    /// \param lr the new rate, finite and > 0
    void set_lr(double lr);

    /// \brief The settings.
    /// \return the configuration the run was built with (or loaded with)
    const TaskTrainConfig& config() const { return cfg_; }
    /// \brief The task.
    /// \return the task, owned by the trainer
    const data::Task& task() const { return *task_; }
    /// \brief The model.
    /// \return the model, owned by the trainer
    nn::GPT& model() { return *model_; }
    /// \brief Steps completed so far (continues across save/load).
    /// \return the number of completed steps
    std::int64_t steps_done() const { return state_.step; }
    /// \brief What training this model takes in memory (see estimate_training_memory()).
    /// \return the estimate the constructor checked
    const MemoryEstimate& memory_estimate() const { return memory_; }

private:
    double step_unguarded();
    double evaluate_unguarded(const std::vector<data::Example>& examples);
    TaskTrainConfig cfg_;
    MemoryEstimate memory_;
    std::unique_ptr<data::Task> task_;
    std::unique_ptr<nn::GPT> model_;
    std::vector<NamedTensor> params_;  // model_->named_parameters(), computed once
    std::unique_ptr<optim::AdamW> opt_;
    io::TrainState state_;
    std::vector<data::Example> heldout_;
    std::vector<CurvePoint> curve_;
};

}  // namespace qkv
