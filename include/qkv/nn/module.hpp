/// \file
/// \brief nn::Module: the base of every layer and model — parameters, submodules, train/eval.
///
/// A reader learns here how a framework keeps track of a model's weights. A module *registers* the
/// tensors it learns (`register_parameter`) and the modules it is built from (`register_module`);
/// `named_parameters()` then walks that tree and returns every weight with a PyTorch-style dotted
/// name such as `blocks.0.attn.qkv_proj.weight` — the names optimizers iterate over and checkpoints are
/// keyed by. Modules are ordinary C++ classes with a `forward`; they are neither copyable nor
/// movable, because parents keep pointers to their registered children.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qkv/core/autograd.hpp"
#include "qkv/core/tensor.hpp"

namespace qkv::nn {

/// \brief Base class of all layers and models. A module is also a Scope: registered under a parent,
/// it knows its dotted path ("blocks.1.mlp.fc2"), and each forward enters it (a ScopeGuard), so that
/// anomaly mode can say in which layer an op ran.
class Module : public Scope {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    Module(Module&&) = delete;
    Module& operator=(Module&&) = delete;

    /// \brief Every parameter of this module and its submodules, in registration order (depth first).
    /// \return the parameter handles (each tensor once, even when registered under two names)
    std::vector<Tensor> parameters() const;
    /// Every parameter with its dotted name, e.g. `blocks.1.mlp.fc1.weight`. A tensor registered
    /// under two names (tied weights) appears once, under the first.
    /// \return (dotted name, tensor) pairs, depth first in registration order
    std::vector<NamedTensor> named_parameters() const;
    /// \brief Total number of scalar parameters.
    /// \return the sum of numel() over parameters()
    std::int64_t num_parameters() const;
    /// \brief Training mode (dropout active) or not, for this module and all submodules.
    /// \param on true for training mode
    void train(bool on = true);
    /// Evaluation mode: same as train(false).
    void eval() { train(false); }
    /// \brief True in training mode (the default).
    /// \return whether this module is in training mode
    bool is_training() const { return training_; }
    /// Zero the gradients of every parameter.
    void zero_grad();
    /// \brief Convert every parameter to \p dtype in place (handles held elsewhere see the change).
    /// Used to run a whole model in f64 for gradient checks. Gradients are dropped. Throws
    /// qkv::Error, converting nothing, for any other dtype (parameters must take gradients).
    /// \param dtype f32 or f64
    void to(DType dtype);

protected:
    /// \brief Register a learnable tensor under \p name (marks it requires_grad). Returns it.
    /// \param name the parameter's name within this module (no dots)
    /// \param t the tensor (a leaf, f32 or f64)
    /// \return \p t, now requiring grad
    Tensor register_parameter(const std::string& name, Tensor t);
    /// \brief Register a child module under \p name. Returns the child.
    /// \param name the child's name within this module
    /// \param child the child (must outlive this module's use; usually a member)
    /// \tparam M the child's type, derived from Module
    /// \return \p child
    template <class M>
    M& register_module(const std::string& name, M& child) {
        children_.emplace_back(name, &child);
        static_cast<Module&>(child).set_scope_parent(this, name);
        return child;
    }

private:
    void collect(const std::string& prefix, std::vector<NamedTensor>& out) const;
    std::vector<NamedTensor> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
};

}  // namespace qkv::nn
