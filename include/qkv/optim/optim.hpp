/// \file
/// \brief Optimizers (SGD, Adam, AdamW), gradient clipping and learning-rate schedules.
///
/// A reader learns here what happens between `loss.backward()` and the next forward pass: an
/// optimizer reads each parameter's gradient \f$ g = \partial L/\partial \theta \f$ and moves the
/// parameter a little against it. Plain SGD moves by \f$ \eta g \f$; momentum keeps a running
/// velocity so steps in a consistent direction grow; Adam divides by a running estimate of the
/// gradient's magnitude so that every parameter moves at a similar speed; AdamW takes weight decay
/// out of that division ("decoupled"), which is what modern transformers are trained with. Each
/// update rule is written as math next to the loop that runs it (src/optim/).
///
/// Optimizers work on the named parameters of a module (`module.named_parameters()`), so their
/// per-parameter state — momentum buffers, Adam's moment estimates — is named too
/// (`blocks.0.attn.qkv_proj.weight.exp_avg`) and a checkpoint can save and restore it exactly.
/// The updates run in place on raw data pointers, with no graph recorded and no allocation after
/// the first step: state buffers are created once, the first time a parameter is updated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv::optim {

/// \brief Everything an optimizer needs to continue exactly where it stopped.
///
/// This is what checkpoints store (io/checkpoint.hpp): the kind and hyper-parameters as numbers,
/// and the per-parameter buffers as tensors named `<param>.<slot>`.
struct OptimizerState {
    std::string kind;                            ///< "SGD", "Adam" or "AdamW"
    std::int64_t step = 0;                       ///< number of step() calls so far
    std::map<std::string, double> hyper;         ///< hyper-parameters by name ("lr", "beta1", ...)
    std::vector<NamedTensor> tensors;        ///< buffers named `<param>.<slot>`
};

/// \brief The common part of every optimizer: the parameters, the learning rate, the step counter
/// and named per-parameter state buffers.
///
/// A derived class names its state slots (for example `exp_avg`, `exp_avg_sq`, `step`) and
/// implements update(), which applies the rule to one parameter. step() walks the parameters,
/// skips those without a gradient, and calls update() once per parameter — one virtual call per
/// tensor, never per element.
class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    /// \brief Apply one update to every parameter that has a gradient. Parameters whose grad() is
    /// undefined (not reached by the last backward) are left alone and their state does not
    /// advance. Runs without recording a graph. Increments step_count(). Throws qkv::Error when a
    /// gradient's size or dtype differs from its parameter's, or a parameter's dtype has changed
    /// since its state was created (Module::to() after a step); the parameters before it in the list
    /// have then been updated already, and step_count() is unchanged.
    void step();
    /// \brief Zero every parameter's gradient (the buffers are kept, so the next backward does not
    /// allocate). Note that a zeroed gradient is still *defined*: step() then updates with g = 0.
    void zero_grad();
    /// \brief The current learning rate \f$ \eta \f$.
    /// \return \f$ \eta \f$, as last set by the constructor, set_lr() or load_state()
    double lr() const { return lr_; }
    /// \brief Change the learning rate (what a schedule does before each step). Throws
    /// qkv::Error, keeping the old rate, unless \p lr is finite and ≥ 0.
    /// \param lr the new learning rate
    void set_lr(double lr);
    /// \brief Number of step() calls so far (restored by load_state()).
    /// \return the number of completed step() calls
    std::int64_t step_count() const { return step_; }
    /// \brief The parameters being optimised, with their names.
    /// \return the (name, tensor) pairs given to the constructor, in order
    const std::vector<NamedTensor>& params() const { return params_; }
    /// \brief The optimizer's name: "SGD", "Adam" or "AdamW".
    /// \return the kind, as stored in OptimizerState::kind
    virtual std::string kind() const = 0;
    /// \brief Hyper-parameters by name, including "lr" (what checkpoints store in their metadata).
    /// \return the hyper-parameters, keyed by name
    virtual std::map<std::string, double> hyper() const = 0;

    /// \brief A snapshot of the state: kind, step, hyper-parameters and *copies* of the buffers of
    /// every parameter updated so far, named `<param>.<slot>`.
    /// \return the state; its tensors are copies, so later steps do not change it
    OptimizerState state() const;
    /// \brief The same as state(), but with handles to the live buffers rather than copies: for a
    /// caller that reads them at once, as saving a checkpoint does (a copy would double the
    /// optimizer's memory for the moment of the save).
    /// \return the state; its tensors are the optimizer's own buffers, changed by the next step
    OptimizerState state_view() const;
    /// \brief Restore a state from state() (typically read back from a checkpoint). Checks
    /// everything first and changes nothing when it throws: the kind must match, the
    /// hyper-parameters must be exactly this optimizer's and valid, and every tensor must be named
    /// `<param>.<slot>` for a known parameter and slot, with the expected shape and dtype, with all
    /// slots of a parameter present together. Values are copied in.
    /// \param state the state to restore
    void load_state(const OptimizerState& state);

protected:
    /// \brief One named state buffer per parameter: either shaped like the parameter, or a 0-d
    /// f64 scalar (per-parameter step counts).
    struct Slot {
        std::string name;  ///< suffix of the buffer's name, e.g. "exp_avg"
        bool scalar;       ///< true: 0-d f64; false: same shape and dtype as the parameter
    };
    /// \brief Check and take the parameters; \p who names the optimizer in messages. Throws
    /// qkv::Error when \p lr is negative or not finite, \p params is empty, or a parameter has an
    /// empty or repeated name or is undefined, not f32/f64, not a leaf, or the same tensor as another.
    /// \param who the optimizer's name for error messages
    /// \param params named parameters (defined, f32/f64 leaves, unique non-empty names, unique tensors)
    /// \param lr the learning rate
    /// \param slots the names of the per-parameter state buffers
    Optimizer(const std::string& who, std::vector<NamedTensor> params, double lr, std::vector<Slot> slots);
    /// \brief Apply the update rule to parameter \p i (its gradient is defined). Called under
    /// NoGradGuard.
    /// \param i index into params()
    virtual void update(std::size_t i) = 0;
    /// \brief Check \p hyper for validity and adopt it (including "lr"). Must throw without
    /// changing anything if a value is invalid or a name is missing or unknown.
    /// \param hyper hyper-parameters by name
    virtual void set_hyper(const std::map<std::string, double>& hyper) = 0;
    /// \brief Buffer \p slot of parameter \p i, created (zero-filled) on first use. Throws
    /// qkv::Error when the parameter's dtype is no longer the buffer's.
    /// \param i index into params()
    /// \param slot index into the slots given to the constructor
    /// \return the buffer: a 0-d f64 tensor () for a scalar slot, else shaped like the parameter
    Tensor& buffer(std::size_t i, std::size_t slot);
    /// \brief True when buffer \p slot of parameter \p i exists already.
    /// \param i index into params()
    /// \param slot index into the slots
    /// \return whether the buffer has been created
    bool has_buffer(std::size_t i, std::size_t slot) const { return buffers_[i][slot].defined(); }
    /// \brief Throw qkv::Error unless \p hyper has exactly the keys \p names (for set_hyper()).
    /// \param hyper the map to check
    /// \param names the expected keys
    void expect_keys(const std::map<std::string, double>& hyper, const std::vector<std::string>& names) const;

    double lr_;  ///< learning rate \f$ \eta \f$

private:
    std::string who_;
    std::vector<NamedTensor> params_;
    std::vector<Slot> slots_;
    std::vector<std::vector<Tensor>> buffers_;  // [param][slot]; undefined until first update
    std::int64_t step_ = 0;
};

/// Hyper-parameters of SGD. The defaults are PyTorch's except lr, which PyTorch requires.
struct SGDOptions {
    double lr = 1e-2;           ///< learning rate \f$ \eta \f$ (≥ 0)
    double momentum = 0.0;      ///< momentum \f$ \mu \f$ (≥ 0); 0 turns momentum off
    double dampening = 0.0;     ///< dampening \f$ \tau \f$ in [0, 1]: the new gradient is scaled by 1 − τ
    double weight_decay = 0.0;  ///< L2 penalty \f$ \lambda \f$ (≥ 0), added to the gradient as λθ
    bool nesterov = false;      ///< Nesterov momentum (needs μ > 0 and τ = 0)
};

/// \brief Stochastic gradient descent with optional momentum, dampening, L2 weight decay and
/// Nesterov momentum — the same rule as `torch.optim.SGD`:
/// \f[ g \leftarrow g + \lambda\theta,\quad b \leftarrow \mu b + (1-\tau) g \;(b_1 = g),\quad
///     \theta \leftarrow \theta - \eta\,(\text{nesterov} ? g + \mu b : b) \f]
/// State per parameter: `momentum_buffer` (only when μ > 0).
class SGD : public Optimizer {
public:
    /// \brief Create the optimizer. Throws qkv::Error on invalid options (outside the ranges given
    /// with them) or parameters (see the Optimizer constructor: empty list, repeated names, ...).
    /// \param params the parameters, e.g. `model.named_parameters()`
    /// \param options hyper-parameters
    explicit SGD(std::vector<NamedTensor> params, SGDOptions options = {});
    /// \brief "SGD"
    /// \return "SGD"
    std::string kind() const override { return "SGD"; }
    /// \brief lr, momentum, dampening, weight_decay, nesterov (0 or 1)
    /// \return the five values keyed by those names
    std::map<std::string, double> hyper() const override;
    /// \brief The options in use (lr as set by set_lr()).
    /// \return a copy of the options, with lr equal to lr()
    SGDOptions options() const;

private:
    void update(std::size_t i) override;
    void set_hyper(const std::map<std::string, double>& hyper) override;
    SGDOptions opt_;
};

/// Hyper-parameters of Adam (PyTorch's defaults).
struct AdamOptions {
    double lr = 1e-3;           ///< learning rate \f$ \eta \f$ (≥ 0)
    double beta1 = 0.9;         ///< decay of the first-moment average \f$ \beta_1 \f$ in [0, 1)
    double beta2 = 0.999;       ///< decay of the second-moment average \f$ \beta_2 \f$ in [0, 1)
    double eps = 1e-8;          ///< \f$ \epsilon \f$ (≥ 0), keeps the division finite
    double weight_decay = 0.0;  ///< L2 penalty \f$ \lambda \f$ (≥ 0), added to the gradient
};

/// Hyper-parameters of AdamW: Adam's, with PyTorch's AdamW default weight decay 0.01.
struct AdamWOptions {
    double lr = 1e-3;            ///< learning rate \f$ \eta \f$ (≥ 0)
    double beta1 = 0.9;          ///< \f$ \beta_1 \f$ in [0, 1)
    double beta2 = 0.999;        ///< \f$ \beta_2 \f$ in [0, 1)
    double eps = 1e-8;           ///< \f$ \epsilon \f$ (≥ 0)
    double weight_decay = 1e-2;  ///< decoupled decay \f$ \lambda \f$ (≥ 0): θ ← θ − ηλθ
};

/// \brief Adam (Kingma & Ba, 2015), as in `torch.optim.Adam`, with t the parameter's own step:
/// \f[ g \leftarrow g + \lambda\theta,\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
///     v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
///     \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon} \f]
/// State per parameter: `exp_avg` (m), `exp_avg_sq` (v) and `step` (t, a 0-d f64).
class Adam : public Optimizer {
public:
    /// \brief Create the optimizer. Throws qkv::Error on invalid options (outside the ranges given
    /// with them) or parameters (see the Optimizer constructor: empty list, repeated names, ...).
    /// \param params the parameters, e.g. `model.named_parameters()`
    /// \param options hyper-parameters
    explicit Adam(std::vector<NamedTensor> params, AdamOptions options = {});
    /// \brief "Adam" (or "AdamW" for the derived class)
    /// \return "Adam", or "AdamW" when the weight decay is decoupled
    std::string kind() const override { return decoupled_ ? "AdamW" : "Adam"; }
    /// \brief lr, beta1, beta2, eps, weight_decay
    /// \return the five values keyed by those names
    std::map<std::string, double> hyper() const override;
    /// \brief The options in use (lr as set by set_lr()).
    /// \return a copy of the options, with lr equal to lr()
    AdamOptions options() const;

protected:
    /// \brief For AdamW: the same moments, with weight decay applied to θ directly.
    /// \param who name for messages
    /// \param params the parameters
    /// \param options hyper-parameters
    /// \param decoupled true for AdamW's decoupled weight decay
    Adam(const std::string& who, std::vector<NamedTensor> params, AdamOptions options, bool decoupled);

private:
    void update(std::size_t i) override;
    void set_hyper(const std::map<std::string, double>& hyper) override;
    AdamOptions opt_;
    bool decoupled_;
};

/// \brief AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019), as in
/// `torch.optim.AdamW`: first shrink the weights, \f$ \theta \leftarrow \theta(1 - \eta\lambda) \f$,
/// then take the Adam step on the *raw* gradient. With plain Adam the decay term λθ is divided by
/// \f$ \sqrt{\hat v} \f$ like the rest of the gradient, so weights with large gradients are barely
/// decayed; AdamW decays every weight at the same rate.
class AdamW : public Adam {
public:
    /// \brief Create the optimizer. Throws qkv::Error on invalid options (outside the ranges given
    /// with them) or parameters (see the Optimizer constructor: empty list, repeated names, ...).
    /// \param params the parameters, e.g. `model.named_parameters()`
    /// \param options hyper-parameters (weight decay 0.01 by default)
    explicit AdamW(std::vector<NamedTensor> params, AdamWOptions options = {});
};

/// \brief Clip gradients by their global L2 norm, as `torch.nn.utils.clip_grad_norm_` does.
///
/// Computes \f$ n = \sqrt{\sum_p \sum_i g_{p,i}^2} \f$ over every defined gradient (in double);
/// if \f$ c = \text{max\_norm}/(n + 10^{-6}) < 1 \f$, multiplies every gradient by c, so the
/// direction is kept and the norm becomes (just under) max_norm. A non-finite norm (an inf or NaN
/// gradient) is returned without touching the gradients: scaling would only spread the NaN; the
/// caller should skip that step. Returns n, the norm *before* clipping (worth logging).
/// Throws qkv::Error unless max_norm is finite and > 0.
/// \param params the parameters whose gradients to clip
/// \param max_norm the largest allowed norm (> 0)
/// \return n, the global norm of the gradients before clipping (0 when none is defined; inf or NaN
/// when a gradient is not finite)
double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm);
/// \brief The same for unnamed parameters (`module.parameters()`). Throws qkv::Error unless
/// \p max_norm is finite and > 0.
/// \param params the parameters whose gradients to clip
/// \param max_norm the largest allowed norm (> 0)
/// \return n, the global norm of the gradients before clipping
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

/// \brief A constant learning rate: lr_at(s) = lr for every step s.
struct ConstantLR {
    double lr = 1e-3;  ///< the learning rate (finite, ≥ 0)
    /// \brief The learning rate for step \p step (counted from 0). Throws qkv::Error when lr is
    /// negative or not finite, or \p step is negative.
    /// \param step the step about to run (≥ 0)
    /// \return lr, whatever the step
    double lr_at(std::int64_t step) const;
};

/// \brief Linear warmup, then cosine decay to a floor — the usual schedule for transformers.
///
/// With s the step about to run (from 0), W = warmup_steps, S = total_steps, η = peak_lr and
/// η_min = min_lr:
/// \f[ \text{lr}(s) = \begin{cases}
///   \eta \,\frac{s+1}{W} & s < W \quad\text{(linear warmup; the first step is not wasted at 0)}
///   \\ \eta_{min} + \tfrac12(\eta - \eta_{min})\bigl(1 + \cos(\pi \frac{s - W}{S - W})\bigr) & W \le s < S
///   \\ \eta_{min} & s \ge S \end{cases} \f]
/// so lr(W−1) = lr(W) = η, and the cosine reaches η_min at s = S. Warmup keeps Adam's first
/// updates small while its second-moment estimate is still noisy.
struct WarmupCosineLR {
    double peak_lr = 1e-3;          ///< η, reached at the end of warmup (≥ 0)
    double min_lr = 0.0;            ///< η_min, the floor (0 ≤ η_min ≤ η)
    std::int64_t warmup_steps = 0;  ///< W (≥ 0)
    std::int64_t total_steps = 1;   ///< S (≥ W): where the decay ends
    /// \brief The learning rate for step \p step (counted from 0). Throws qkv::Error when a field
    /// is out of its range (peak_lr and min_lr must be finite, 0 ≤ min_lr ≤ peak_lr,
    /// 0 ≤ warmup_steps ≤ total_steps) or \p step is negative.
    /// \param step the step about to run (≥ 0)
    /// \return lr(step), by the formula above
    double lr_at(std::int64_t step) const;
};

}  // namespace qkv::optim
