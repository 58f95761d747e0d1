/// \file
/// \brief SGD with momentum, dampening, L2 weight decay and Nesterov momentum.
///
/// A reader learns here the simplest optimizer and its most useful refinement. Plain gradient
/// descent steps by −ηg. Momentum keeps a velocity b, an exponentially decaying sum of past
/// gradients, and steps along it: in a long narrow valley the gradient's side-to-side components
/// cancel in b while the along-the-valley component accumulates, up to 1/(1 − μ) times larger.
/// Nesterov's variant steps along g + μb, "looking ahead" to where the velocity is taking us.
#include "checks.hpp"
#include "qkv/optim/optim.hpp"

namespace qkv::optim {
namespace {

constexpr std::size_t kMomentum = 0;  // slot index of momentum_buffer

void validate(const SGDOptions& o) {
    detail::check_non_negative("SGD", "lr", o.lr);
    detail::check_non_negative("SGD", "momentum", o.momentum);
    detail::check_non_negative("SGD", "weight_decay", o.weight_decay);
    if (!(o.dampening >= 0.0 && o.dampening <= 1.0)) fail("SGD: dampening must be in [0, 1], got {}", o.dampening);
    if (o.nesterov && (o.momentum == 0.0 || o.dampening != 0.0))
        fail("SGD: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}", o.momentum,
             o.dampening);
}

// -------------------------------------------------------------------------------------------------
// SGD     g ← g + λθ                                   (L2 weight decay; g is a local copy)
//         b ← g                      on the first step  (the velocity starts at the gradient)
//         b ← μb + (1 − τ)g          afterwards
//         d ← g + μb  (Nesterov)  or  d ← b
//         θ ← θ − η d                                    (without momentum d = g)
// Coefficients arrive already converted to T, so the loop is the same arithmetic PyTorch does
// in the parameter's own precision.
template <class T>
void sgd_kernel(T* theta, const T* grad, T* b, std::size_t n, T lr, T mu, T tau, T wd, bool nesterov, bool first) {
    for (std::size_t i = 0; i < n; ++i) {
        T g = grad[i] + wd * theta[i];
        if (b != nullptr) {
            b[i] = first ? g : mu * b[i] + (T(1) - tau) * g;
            g = nesterov ? g + mu * b[i] : b[i];
        }
        theta[i] -= lr * g;
    }
}

template <class T>
void sgd_update(Tensor& p, const Tensor& g, Tensor* b, bool first, const SGDOptions& o, double lr) {
    sgd_kernel<T>(p.data<T>(), g.data<T>(), b ? b->data<T>() : nullptr, std::size_t(p.numel()), T(lr), T(o.momentum),
                  T(o.dampening), T(o.weight_decay), o.nesterov, first);
}

}  // namespace

SGD::SGD(std::vector<NamedTensor> params, SGDOptions options)
    : Optimizer("SGD", std::move(params), options.lr, {{"momentum_buffer", false}}), opt_(options) {
    validate(opt_);
}

void SGD::update(std::size_t i) {
    Tensor p = params()[i].second;
    const Tensor g = p.grad();
    // Without momentum there is no buffer at all (no memory spent on a velocity never used).
    const bool first = opt_.momentum != 0.0 && !has_buffer(i, kMomentum);
    Tensor* b = opt_.momentum != 0.0 ? &buffer(i, kMomentum) : nullptr;
    if (p.dtype() == f32) sgd_update<float>(p, g, b, first, opt_, lr_);
    else sgd_update<double>(p, g, b, first, opt_, lr_);
}

std::map<std::string, double> SGD::hyper() const {
    return {{"lr", lr_},
            {"momentum", opt_.momentum},
            {"dampening", opt_.dampening},
            {"weight_decay", opt_.weight_decay},
            {"nesterov", opt_.nesterov ? 1.0 : 0.0}};
}

SGDOptions SGD::options() const {
    SGDOptions o = opt_;
    o.lr = lr_;
    return o;
}

void SGD::set_hyper(const std::map<std::string, double>& h) {
    expect_keys(h, {"lr", "momentum", "dampening", "weight_decay", "nesterov"});
    const double nesterov = h.at("nesterov");
    if (nesterov != 0.0 && nesterov != 1.0) fail("SGD: nesterov must be 0 or 1, got {}", nesterov);
    const SGDOptions o{h.at("lr"), h.at("momentum"), h.at("dampening"), h.at("weight_decay"), nesterov == 1.0};
    validate(o);
    opt_ = o;
    lr_ = o.lr;
}

}  // namespace qkv::optim
