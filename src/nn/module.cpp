/// \file
/// \brief Module bookkeeping: registration, the dotted-name walk, train/eval, dtype conversion.
///
/// A reader learns here how a tree of modules becomes the flat, named list of weights that optimizers
/// and checkpoints use. Each module stores only its own parameters and pointers to its children;
/// named_parameters() walks the tree depth-first, joining names with dots, and lists a tensor
/// registered twice (tied weights) once, under its first name, so it is never updated twice. train()
/// and eval() pass the flag down the tree. to() converts in place by swapping the storage inside
/// each shared TensorImpl, so every handle to a parameter sees the new dtype; gradients are dropped.
#include "qkv/nn/module.hpp"

#include <cstring>

#include "qkv/core/autograd.hpp"

namespace qkv::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
    if (name.empty() || name.find('.') != std::string::npos)
        fail("register_parameter: name '{}' must be non-empty and contain no '.'", name);
    for (const auto& [n, p] : params_)
        if (n == name) fail("register_parameter: '{}' is already registered", name);
    t.requires_grad_(true);
    params_.emplace_back(name, t);
    return t;
}

void Module::collect(const std::string& prefix, std::vector<NamedTensor>& out) const {
    for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<NamedTensor> Module::named_parameters() const {
    std::vector<NamedTensor> all, out;
    collect("", all);
    // A tensor registered twice (tied weights) is listed once, under its first name, so an
    // optimizer never updates it twice.
    for (auto& np : all) {
        bool seen = false;
        for (const auto& o : out) seen = seen || o.second.impl() == np.second.impl();
        if (!seen) out.push_back(std::move(np));
    }
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
}

std::int64_t Module::num_parameters() const {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
    for (auto& p : parameters()) p.zero_grad();
}

void Module::to(DType dtype) {
    // Parameters take gradients, so they must stay floating point; check before converting any.
    if (dtype != f32 && dtype != f64) fail("Module::to: parameters must be f32 or f64, got {}", dtype_name(dtype));
    for (auto& p : parameters()) {
        if (p.dtype() == dtype) continue;
        // Swap the storage inside the shared TensorImpl, so every handle (the module's member and
        // the registry entry) sees the converted values.
        const Tensor converted = p.to(dtype);
        TensorImpl* impl = p.impl();
        impl->storage = converted.impl()->storage;
        impl->dtype = dtype;
        impl->grad = Tensor();
    }
}

}  // namespace qkv::nn
