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
    explicit OpDef(const char* name, bool builtin = true);
    const char* name;  ///< the op's name
    bool builtin;      ///< part of qkv's registry
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
    BackwardFn backward;         ///< maps dL/dy to the inputs' gradients
    Shape shape;                 ///< shape of the output y
    DType dtype = DType::f32;    ///< dtype of the output y
    Tensor grad;                 ///< dL/dy, accumulated during a backward pass, then released
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
