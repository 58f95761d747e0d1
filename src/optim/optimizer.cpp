/// \file
/// \brief The Optimizer base: parameter checks, the step loop, lazily created state buffers, and
/// saving/restoring that state by name.
///
/// A reader learns here how an optimizer's memory is organised: one small table per parameter,
/// holding the buffers its rule needs (a momentum buffer, Adam's two moment estimates, ...). The
/// buffers are created the first time a parameter is updated, never before — a parameter that never
/// receives a gradient costs no memory — and never again, so a training step allocates nothing.
#include <cmath>
#include <cstring>
#include <set>

#include "checks.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::optim {

Optimizer::Optimizer(const std::string& who, std::vector<NamedTensor> params, double lr,
                     std::vector<Slot> slots)
    : lr_(lr), who_(who), params_(std::move(params)), slots_(std::move(slots)) {
    detail::check_non_negative(who_, "lr", lr);
    if (params_.empty()) fail("{}: got an empty parameter list", who_);
    std::set<std::string> names;
    std::set<const TensorImpl*> tensors;
    for (const auto& [name, p] : params_) {
        if (name.empty()) fail("{}: a parameter has an empty name (names key the optimizer state)", who_);
        if (!p.defined()) fail("{}: parameter '{}' is an undefined tensor", who_, name);
        if (!is_floating(p.dtype()))
            fail("{}: parameter '{}' is {}, only f32/f64 tensors can be optimised", who_, name, dtype_name(p.dtype()));
        if (!p.is_leaf()) fail("{}: parameter '{}' is not a leaf tensor (it was computed by an op)", who_, name);
        if (!names.insert(name).second) fail("{}: parameter name '{}' appears twice", who_, name);
        // The same tensor under two names would be updated twice per step.
        if (!tensors.insert(p.impl()).second) fail("{}: parameter '{}' is the same tensor as an earlier one", who_, name);
    }
    buffers_.assign(params_.size(), std::vector<Tensor>(slots_.size()));
}

void Optimizer::set_lr(double lr) {
    detail::check_non_negative(who_, "lr", lr);
    lr_ = lr;
}

void Optimizer::step() {
    // The update writes into the parameters' memory; it must not become part of any graph.
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor g = params_[i].second.grad();
        if (!g.defined()) continue;  // not reached by the last backward: leave it and its state alone
        if (g.numel() != params_[i].second.numel() || g.dtype() != params_[i].second.dtype())
            fail("{}: gradient of '{}' is {} {}, parameter is {} {}", who_, params_[i].first, shape_str(g.shape()),
                 dtype_name(g.dtype()), shape_str(params_[i].second.shape()), dtype_name(params_[i].second.dtype()));
        update(i);
    }
    ++step_;
}

void Optimizer::zero_grad() {
    for (auto& [name, p] : params_) p.zero_grad();
}

Tensor& Optimizer::buffer(std::size_t i, std::size_t slot) {
    Tensor& b = buffers_[i][slot];
    const Tensor& p = params_[i].second;
    if (!b.defined()) {
        b = slots_[slot].scalar ? zeros({}, f64) : zeros_like(p);
    } else if (!slots_[slot].scalar && b.dtype() != p.dtype()) {
        fail("{}: state '{}.{}' is {} but the parameter is now {} (converted after the first step?)", who_,
             params_[i].first, slots_[slot].name, dtype_name(b.dtype()), dtype_name(p.dtype()));
    }
    return b;
}

void Optimizer::expect_keys(const std::map<std::string, double>& hyper, const std::vector<std::string>& names) const {
    for (const auto& n : names)
        if (!hyper.count(n)) fail("{}: hyper-parameter '{}' is missing", who_, n);
    for (const auto& [k, v] : hyper) {
        bool known = false;
        for (const auto& n : names) known = known || n == k;
        if (!known) fail("{}: unknown hyper-parameter '{}'", who_, k);
    }
}

OptimizerState Optimizer::state() const {
    OptimizerState s = state_view();
    for (auto& [name, t] : s.tensors) t = t.clone();
    return s;
}

OptimizerState Optimizer::state_view() const {
    OptimizerState s{kind(), step_, hyper(), {}};
    for (std::size_t i = 0; i < params_.size(); ++i)
        for (std::size_t k = 0; k < slots_.size(); ++k)
            if (buffers_[i][k].defined()) s.tensors.emplace_back(params_[i].first + "." + slots_[k].name, buffers_[i][k]);
    return s;
}

namespace {

// Copy the values of src into dst (same dtype and element count, checked by the caller).
void copy_values(const Tensor& src, Tensor& dst) {
    std::memcpy(dst.raw_data(), src.raw_data(), std::size_t(src.numel()) * dtype_size(src.dtype()));
}

}  // namespace

void Optimizer::load_state(const OptimizerState& state) {
    if (state.kind != kind()) fail("{}: cannot load the state of a {} optimizer", who_, state.kind);
    if (state.step < 0) fail("{}: step must be >= 0, got {}", who_, state.step);

    // 1. Match every tensor to (parameter, slot) and check it, before changing anything.
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < params_.size(); ++i) index[params_[i].first] = i;
    std::vector<std::vector<const Tensor*>> found(params_.size(), std::vector<const Tensor*>(slots_.size(), nullptr));
    for (const auto& [name, t] : state.tensors) {
        bool matched = false;
        for (std::size_t k = 0; k < slots_.size() && !matched; ++k) {
            const std::string suffix = "." + slots_[k].name;
            if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
                continue;
            auto it = index.find(name.substr(0, name.size() - suffix.size()));
            if (it == index.end()) continue;
            matched = true;
            const Tensor& p = params_[it->second].second;
            const Shape want = slots_[k].scalar ? Shape{} : p.shape();
            const DType want_dtype = slots_[k].scalar ? f64 : p.dtype();
            if (!t.defined()) fail("{}: state '{}' is an undefined tensor", who_, name);
            if (t.shape() != want)
                fail("{}: state '{}' has shape {}, expected {}", who_, name, shape_str(t.shape()), shape_str(want));
            if (t.dtype() != want_dtype)
                fail("{}: state '{}' is {}, expected {}", who_, name, dtype_name(t.dtype()), dtype_name(want_dtype));
            if (found[it->second][k]) fail("{}: state '{}' appears twice", who_, name);
            // Scalar slots are step counts: a negative or fractional one would skew bias corrections.
            if (slots_[k].scalar) {
                const double count = t.item();
                if (!(count >= 0.0) || !std::isfinite(count) || count != std::floor(count))
                    fail("{}: state '{}' must be a whole number >= 0, got {}", who_, name, count);
            }
            found[it->second][k] = &t;
        }
        if (!matched) fail("{}: unexpected state tensor '{}' (no such parameter and slot)", who_, name);
    }
    // A parameter's slots belong together: half of Adam's state would silently restart the other half.
    for (std::size_t i = 0; i < params_.size(); ++i)
        for (std::size_t k = 0; k < slots_.size(); ++k)
            if ((found[i][k] == nullptr) != (found[i][0] == nullptr))
                fail("{}: state of '{}' is incomplete: '{}' is {}", who_, params_[i].first,
                     params_[i].first + "." + slots_[k].name, found[i][k] ? "present without the others" : "missing");

    // 2. Hyper-parameters (set_hyper checks them all before adopting any).
    set_hyper(state.hyper);

    // 3. Adopt: fresh buffers for the loaded parameters, none for the others.
    for (std::size_t i = 0; i < params_.size(); ++i)
        for (std::size_t k = 0; k < slots_.size(); ++k) {
            buffers_[i][k] = Tensor();
            if (found[i][k]) copy_values(*found[i][k], buffer(i, k));
        }
    step_ = state.step;
}

}  // namespace qkv::optim
