/// \file
/// \brief Reverse-mode automatic differentiation: nodes, the backward pass, and no-grad mode.
///
/// A reader learns here how "define-by-run" autograd works. Every differentiable op, as it runs,
/// records a Node: its name, its inputs, and a small backward function that turns the gradient of
/// the op's output, \f$ \partial L/\partial y \f$, into gradients of its inputs,
/// \f$ \partial L/\partial x_i = (\partial y/\partial x_i)^\top \partial L/\partial y \f$ (a
/// vector–Jacobian product). Calling `loss.backward()` sorts the recorded nodes so that every node
/// runs after all the nodes that use its output (reverse topological order), then runs their
/// backward functions once each, *adding* into each input's gradient buffer — adding, because a
/// tensor used twice receives gradient from both uses.
///
/// Two details matter for a real framework. The sort is iterative (an explicit stack), so a chain of
/// 100 000 ops does not overflow the call stack; and a node never owns its own output (it saves a
/// detached handle when it needs the output's values), so the graph has no reference cycles and
/// frees itself when the last tensor handle goes away.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qkv/core/tensor.hpp"

namespace qkv {

/// \brief The identity of a differentiable op: its name, registered once.
///
/// Every op in qkv defines one `static const OpDef` (for example `OpDef kTanh{"tanh"}`); the
/// library's OpDefs form the op registry that the gradient-check test walks, so an op without a
/// gradcheck case fails the suite. User-defined ops pass `builtin = false` and stay out of it.
struct OpDef {
    /// \brief Define (and, if builtin, register) an op.
    /// \param name the op's name as shown in graphs and error reports
    /// \param builtin true for qkv's own ops (registered); false for user-defined ones
    /// \param makes_infinities true for an op that writes ±∞ on purpose (masked_fill with −∞ for a
    /// mask): anomaly mode then flags only NaN in its output, not infinities
    explicit OpDef(const char* name, bool builtin = true, bool makes_infinities = false);
    const char* name;       ///< the op's name
    bool builtin;           ///< part of qkv's registry
    bool makes_infinities;  ///< writes ±∞ on purpose (see the constructor)
};

/// \brief Every builtin op, in registration order.
/// \return the builtin OpDefs (pointers to static objects, valid for the program's lifetime)
const std::vector<const OpDef*>& op_registry();

class BackwardContext;

/// \brief A backward function: given dL/dy, add each input's gradient into ctx.grad(i).
using BackwardFn = std::function<void(const Tensor& dy, BackwardContext& ctx)>;

/// \brief One recorded op in the graph: y = op(inputs...).
struct Node {
    const OpDef* op = nullptr;   ///< which op
    std::vector<Tensor> inputs;  ///< the op's inputs, in order (the graph's edges)
    /// maps dL/dy to the inputs' gradients; empty once a backward pass has run it and freed what it
    /// saved (unless that pass retained the graph)
    BackwardFn backward;
    Shape shape;                 ///< shape of the output y
    DType dtype = DType::f32;    ///< dtype of the output y
    Tensor grad;                 ///< dL/dy, accumulated during a backward pass, then released
    /// where the op was recorded: the dotted path of the innermost Scope (module), e.g.
    /// "blocks.1.mlp.fc2" — kept only in anomaly mode, for its reports (empty otherwise)
    std::string scope;
    bool in_scope = false;  ///< whether the op was recorded inside a Scope (anomaly mode only)
    double flops = 0;            ///< floating-point operations of the backward, for the profiler (0: unknown)
    /// \cond INTERNAL
    ~Node();
    /// \endcond
};

/// \brief What a backward function sees: where to add the gradient of each input.
class BackwardContext {
public:
    /// \brief The gradient buffer of input \p i, created as zeros on first use, or nullptr when
    /// input i does not require a gradient (then skip its work). Backward kernels *add* into it.
    /// \param i the input's position in Node::inputs
    /// \return the gradient buffer of input \p i (its shape and dtype), or nullptr
    Tensor* grad(std::size_t i);
    /// \brief For backward kernels that write *every* element of input \p i's gradient: when no
    /// gradient has reached that input yet, returns a fresh, uninitialised buffer and sets
    /// \p accumulate to false — the kernel then writes (`=`) instead of adding, which saves zeroing
    /// the buffer and reading it back. Otherwise returns the existing buffer with \p accumulate true.
    /// Returns nullptr when input i needs no gradient. (If the same tensor is also another input of
    /// this op, the buffer is zero-filled and accumulate is true, so both uses can add safely.)
    /// \param i the input's position \param accumulate set to whether the kernel must add
    /// \return the gradient buffer of input \p i (its shape and dtype), or nullptr
    Tensor* grad_overwrite(std::size_t i, bool& accumulate);
    /// \brief True when input \p i exists and requires a gradient.
    /// \param i the input's position
    /// \return whether input \p i needs a gradient
    bool needs(std::size_t i) const;
    /// \cond INTERNAL
    explicit BackwardContext(Node& node) : node_(node) {}
    /// \endcond
private:
    Node& node_;
};

/// \brief Record an op: if gradients are enabled and any input requires one, attach a Node to
/// \p out so backward() can reach the inputs. Returns \p out.
///
/// This is also the public way to add your own differentiable op (see tutorial 3).
/// The backward function must not capture \p out itself (that would be a reference cycle); capture
/// `out.detach()` if the backward needs the output's values.
/// \param op the op's identity
/// \param out the freshly computed output
/// \param inputs the op's inputs, in the order ctx.grad(i) refers to them
/// \param backward the backward function
/// \return \p out, with its grad_fn() set when a node was recorded
Tensor record(const OpDef& op, Tensor out, std::vector<Tensor> inputs, BackwardFn backward);

/// \brief True when gradients are being recorded (not inside a NoGradGuard).
/// \return false inside a NoGradGuard (on this thread), true otherwise
bool grad_enabled();

/// \brief Within its scope, ops record no graph (for evaluation and optimizer updates).
class NoGradGuard {
public:
    /// Turn recording off for the calling thread, remembering whether it was on.
    NoGradGuard();
    /// Restore the setting that was in force when this guard was made.
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// ---- where an op runs: scopes ------------------------------------------------------------------

/// \brief A named region of the forward pass — every nn::Module is one — so that anomaly mode (and
/// profilers) can say *where* an op ran: "blocks.1.mlp.fc2" rather than just "linear".
///
/// A scope knows its parent and its name under that parent (set when a module registers a child),
/// and a ScopeGuard makes it the current scope of the thread while a forward runs.
class Scope {
public:
    Scope() = default;
    /// \cond INTERNAL
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    virtual ~Scope() = default;
    /// \endcond
    /// \brief The dotted path from the outermost scope, e.g. "blocks.1.mlp.fc2" ("" for the outermost).
    /// \return the path
    std::string scope_path() const;

protected:
    /// \brief Place this scope under \p parent with the name \p name (nn::Module::register_module does).
    /// \param parent the enclosing scope (must outlive this one) \param name the name under it
    void set_scope_parent(const Scope* parent, std::string name);

private:
    const Scope* scope_parent_ = nullptr;
    std::string scope_name_;
};

/// \brief While alive, ops run on this thread are attributed to \p scope (nested guards restore
/// the enclosing scope). Costs two pointer writes; modules create one in each forward.
class ScopeGuard {
public:
    /// \param scope the scope entered
    explicit ScopeGuard(const Scope& scope);
    /// Return to the enclosing scope.
    ~ScopeGuard();
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

private:
    const Scope* previous_;
};

/// \brief The innermost scope entered on this thread, or null outside every scope.
/// \return the current scope
const Scope* current_scope();

// ---- anomaly mode --------------------------------------------------------------------------------

/// \brief Thrown in anomaly mode at the first NaN or infinity: names the op, the module it ran in,
/// forward or backward, and where the bad value came from.
class AnomalyError : public Error {
public:
    /// \param message the whole report \param op the op's name \param scope its module path
    /// \param backward true when its backward produced the value
    AnomalyError(const std::string& message, std::string op, std::string scope, bool backward)
        : Error(message), op_(std::move(op)), scope_(std::move(scope)), backward_(backward) {}
    /// \return the name of the op that produced the first non-finite value
    const std::string& op() const { return op_; }
    /// \return the module path it ran in ("" at the top level, or outside any module)
    const std::string& scope() const { return scope_; }
    /// \return true when the value appeared in the op's backward, false in its forward
    bool in_backward() const { return backward_; }

private:
    std::string op_, scope_;
    bool backward_;
};

/// \brief Anomaly detection, like `torch.autograd.detect_anomaly`: while on (on this thread), every
/// op's output is checked for NaN and ±∞ as it is computed, and every gradient as backward produces
/// it, and the first one found throws AnomalyError naming the op and its module. An infinity that
/// came in through an input is not reported again where it passes through (only where it first
/// appeared); masked_fill's −∞ for masked positions is intended and not reported either.
///
/// Off by default: the checks read every output once more, which costs about 30 % of a training step
/// of a small model (see docs/pages/guarantees.md). When off, recording an op pays one branch.
/// \param on true to turn anomaly detection on for this thread
void set_detect_anomaly(bool on);

/// \brief Whether anomaly detection is on for this thread.
/// \return true when set_detect_anomaly(true) or an AnomalyMode is in force
bool detect_anomaly_enabled();

/// \brief Within its scope, anomaly detection is on (or off), like `with torch.autograd.detect_anomaly():`.
class AnomalyMode {
public:
    /// \param on the setting to use within the scope (true: detect)
    explicit AnomalyMode(bool on = true);
    /// Restore the setting that was in force when this object was made.
    ~AnomalyMode();
    AnomalyMode(const AnomalyMode&) = delete;
    AnomalyMode& operator=(const AnomalyMode&) = delete;

private:
    bool previous_;
};

/// \brief Names of the nodes of the graph that produced \p t, one per node, in the order backward visits them.
/// \param t the graph's output
/// \return the op names (empty when \p t is undefined or a leaf)
std::vector<std::string> graph_ops(const Tensor& t);

namespace detail {
/// \brief Test-only hook: while set, the backward of every node of op \p op_name receives its
/// upstream gradient multiplied by \p scale — a deliberately wrong backward that gradcheck must
/// catch. An empty name turns the fault off.
/// \param op_name name of the op to break
/// \param scale factor applied to dL/dy
void set_backward_fault(const std::string& op_name, double scale = 1.01);
}  // namespace detail

}  // namespace qkv
