/// \file
/// \brief Construction and initialisation of the basic layers.
///
/// A reader learns here how the basic layers start out, and why. Constructors check their sizes and
/// register their weights (the forward passes are one-liners over ops, in the header). Linear uses
/// PyTorch's default, weight and bias uniform in ±1/√in, which keeps the output's variance near the
/// input's; Embedding draws N(0, 1); LayerNorm starts as the identity (γ = 1, β = 0).
/// SinusoidalPositions computes the fixed table of Vaswani et al. once, in f64, and converts on use.
/// init_normal() and init_constant() let a model (GPT) re-initialise weights in place.
#include "qkv/nn/layers.hpp"

#include <cmath>
#include <cstring>

#include "qkv/core/autograd.hpp"

namespace qkv::nn {

namespace {
void check_positive(const char* who, const char* what, std::int64_t v) {
    if (v < 1) fail("{}: {} must be >= 1, got {}", who, what, v);
}
}  // namespace

// ---- skipping the initialisation --------------------------------------------------------------
// A flag per thread, so that a model being loaded on one thread does not change a model built on
// another. Every place below that draws random values asks it first.
namespace {
thread_local bool g_skip_init = false;

// The tensor the constructors below register: drawn by `draw`, or zeros while a SkipInit is alive.
template <class Draw>
Tensor initial(const Shape& shape, Draw draw) {
    return g_skip_init ? zeros(shape) : draw();
}
}  // namespace

SkipInit::SkipInit() : previous_(g_skip_init) { g_skip_init = true; }
SkipInit::~SkipInit() { g_skip_init = previous_; }
bool SkipInit::active() { return g_skip_init; }

void init_normal(Tensor& t, double std, Generator& gen) {
    if (g_skip_init) return;
    const Tensor r = randn(t.shape(), gen, t.dtype());
    std::memcpy(t.raw_data(), r.raw_data(), std::size_t(t.numel()) * dtype_size(t.dtype()));
    for (std::int64_t i = 0; i < t.numel(); ++i) {
        if (t.dtype() == f32) t.data<float>()[i] *= float(std);
        else t.data<double>()[i] *= std;
    }
}

void init_constant(Tensor& t, double value) {
    const Tensor f = full(t.shape(), value, t.dtype());
    std::memcpy(t.raw_data(), f.raw_data(), std::size_t(t.numel()) * dtype_size(t.dtype()));
}

// PyTorch's default for Linear: weight and bias uniform in ±1/√in, which keeps the output
// variance roughly that of the input at the start of training.
Linear::Linear(std::int64_t in, std::int64_t out, Generator& gen, bool with_bias) {
    check_positive("Linear", "in", in);
    check_positive("Linear", "out", out);
    const double bound = 1.0 / std::sqrt(double(in));
    weight = register_parameter("weight", initial({out, in}, [&] { return uniform({out, in}, -bound, bound, gen); }));
    if (with_bias) bias = register_parameter("bias", initial({out}, [&] { return uniform({out}, -bound, bound, gen); }));
}

Embedding::Embedding(std::int64_t num, std::int64_t dim, Generator& gen) {
    check_positive("Embedding", "num", num);
    check_positive("Embedding", "dim", dim);
    weight = register_parameter("weight", initial({num, dim}, [&] { return randn({num, dim}, gen); }));
}

LayerNorm::LayerNorm(std::int64_t dim, double e) : eps(e) {
    check_positive("LayerNorm", "dim", dim);
    weight = register_parameter("weight", ones({dim}));
    bias = register_parameter("bias", zeros({dim}));
}

Dropout::Dropout(double prob, std::uint64_t seed) : p(prob), gen(seed) {
    if (!(p >= 0 && p < 1)) fail("Dropout: p must be in [0, 1), got {}", p);
}

FeedForward::FeedForward(std::int64_t dim, std::int64_t hidden, Generator& gen, bool bias, bool tanh_gelu)
    : fc1(dim, hidden, gen, bias), act(tanh_gelu), fc2(hidden, dim, gen, bias) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
}

SinusoidalPositions::SinusoidalPositions(std::int64_t max_len, std::int64_t dim) {
    check_positive("SinusoidalPositions", "max_len", max_len);
    check_positive("SinusoidalPositions", "dim", dim);
    table = empty({max_len, dim}, f64);
    double* p = table.data<double>();
    for (std::int64_t t = 0; t < max_len; ++t)
        for (std::int64_t i = 0; i < dim; ++i) {
            // Pair (2i, 2i+1) shares the frequency 1/10000^(2i/C): wavelengths from 2π to 10000·2π.
            const double freq = std::pow(10000.0, -double(i - i % 2) / double(dim));
            p[t * dim + i] = i % 2 == 0 ? std::sin(double(t) * freq) : std::cos(double(t) * freq);
        }
}

Tensor SinusoidalPositions::forward(std::int64_t T, std::int64_t start, DType dtype) const {
    const ScopeGuard scope(*this);
    if (start < 0 || T < 0 || start + T > table.size(0))
        fail("SinusoidalPositions: positions [{}, {}) exceed the table of {}", start, start + T, table.size(0));
    return narrow(table, 0, start, T).to(dtype);
}

LearnedPositions::LearnedPositions(std::int64_t max_len, std::int64_t dim, Generator& gen) {
    check_positive("LearnedPositions", "max_len", max_len);
    check_positive("LearnedPositions", "dim", dim);
    weight = register_parameter("weight", initial({max_len, dim}, [&] { return randn({max_len, dim}, gen); }));
}

Tensor LearnedPositions::forward(std::int64_t T, std::int64_t start) const {
    const ScopeGuard scope(*this);
    if (start < 0 || T < 0 || start + T > weight.size(0))
        fail("LearnedPositions: positions [{}, {}) exceed the {} learned positions", start, start + T, weight.size(0));
    return narrow(weight, 0, start, T);
}

}  // namespace qkv::nn
