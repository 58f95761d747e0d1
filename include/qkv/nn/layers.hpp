/// \file
/// \brief The basic layers: Linear, Embedding, LayerNorm, Dropout, activations, FeedForward,
/// and positional encodings.
///
/// A reader learns here what each building block of a transformer holds (its parameters, their
/// shapes and how they are initialised) and which op it runs. Shapes use B batch, T time
/// (sequence position), C channels (d_model), V vocabulary.
#pragma once

#include <cstdint>

#include "qkv/core/generator.hpp"
#include "qkv/nn/module.hpp"
#include "qkv/ops/ops.hpp"

namespace qkv::nn {

/// \brief \f$ y = xW^\top + b \f$ over the last dimension: (…, in) → (…, out).
/// weight (out, in) and bias (out) start uniform in \f$ \pm 1/\sqrt{in} \f$ (PyTorch's default).
class Linear : public Module {
public:
    /// \param in input features \param out output features \param gen initialisation randomness
    /// \param bias whether to learn a bias
    Linear(std::int64_t in, std::int64_t out, Generator& gen, bool bias = true);
    /// \brief Apply the layer. \param x (…, in)
    /// \return \f$ xW^\top + b \f$ (…, out)
    Tensor forward(const Tensor& x) const {
        const ScopeGuard scope(*this);
        return linear(x, weight, bias);
    }
    /// \brief Same as forward(). \param x (…, in)
    /// \return \f$ xW^\top + b \f$ (…, out)
    Tensor operator()(const Tensor& x) const { return forward(x); }
    Tensor weight;  ///< (out, in)
    Tensor bias;    ///< (out), undefined without bias
};

/// \brief A table of V learned vectors of size C: ids (…) → (…, C). Starts N(0, 1) (PyTorch's default).
class Embedding : public Module {
public:
    /// \param num V, the number of ids \param dim C, the vector size \param gen initialisation randomness
    Embedding(std::int64_t num, std::int64_t dim, Generator& gen);
    /// \brief Look up ids. \param ids i32 in [0, V)
    /// \return the rows of weight for \p ids (…, C)
    Tensor forward(const Tensor& ids) const {
        const ScopeGuard scope(*this);
        return embedding(weight, ids);
    }
    /// \brief Same as forward(). \param ids i32 in [0, V)
    /// \return the rows of weight for \p ids (…, C)
    Tensor operator()(const Tensor& ids) const { return forward(ids); }
    Tensor weight;  ///< (V, C)
};

/// \brief Layer normalisation over the last dimension with learned scale γ (ones) and shift β (zeros).
class LayerNorm : public Module {
public:
    /// \param dim C \param eps added to the variance
    explicit LayerNorm(std::int64_t dim, double eps = 1e-5);
    /// \brief Normalise. \param x (…, C)
    /// \return the normalised, scaled and shifted input (…, C)
    Tensor forward(const Tensor& x) const {
        const ScopeGuard scope(*this);
        return layer_norm(x, weight, bias, eps);
    }
    /// \brief Same as forward(). \param x (…, C)
    /// \return the normalised, scaled and shifted input (…, C)
    Tensor operator()(const Tensor& x) const { return forward(x); }
    Tensor weight;  ///< γ (C)
    Tensor bias;    ///< β (C)
    double eps;     ///< variance epsilon
};

/// \brief Dropout with its own seeded generator; active only in training mode.
class Dropout : public Module {
public:
    /// \param p drop probability in [0, 1) \param seed seed of the mask generator
    explicit Dropout(double p, std::uint64_t seed = 0);
    /// \brief Apply (identity in eval mode or when p = 0). \param x input
    /// \return \p x with dropped elements zeroed and the rest scaled by 1/(1−p) (x's shape)
    Tensor forward(const Tensor& x) {
        const ScopeGuard scope(*this);
        return dropout(x, p, gen, is_training());
    }
    /// \brief Same as forward(). \param x input
    /// \return \p x with dropped elements zeroed and the rest scaled by 1/(1−p) (x's shape)
    Tensor operator()(const Tensor& x) { return forward(x); }
    double p;       ///< drop probability
    Generator gen;  ///< draws the masks
};

/// GELU activation (exact erf form by default, the tanh approximation on request).
class GELU : public Module {
public:
    /// \param tanh_approximation use GPT-2's tanh form
    explicit GELU(bool tanh_approximation = false) : approx(tanh_approximation) {}
    /// \brief Apply. \param x input
    /// \return GELU of each element (x's shape)
    Tensor forward(const Tensor& x) const {
        const ScopeGuard scope(*this);
        return approx ? gelu(x) : gelu_erf(x);
    }
    /// \brief Same as forward(). \param x input
    /// \return GELU of each element (x's shape)
    Tensor operator()(const Tensor& x) const { return forward(x); }
    bool approx;  ///< tanh approximation?
};

/// ReLU activation.
class ReLU : public Module {
public:
    /// \brief Apply. \param x input
    /// \return \f$ \max(0, x) \f$ (x's shape)
    Tensor forward(const Tensor& x) const {
        const ScopeGuard scope(*this);
        return relu(x);
    }
    /// \brief Same as forward(). \param x input
    /// \return \f$ \max(0, x) \f$ (x's shape)
    Tensor operator()(const Tensor& x) const { return forward(x); }
};

/// \brief The position-wise MLP of a transformer block: Linear(C → hidden) → GELU → Linear(hidden → C).
class FeedForward : public Module {
public:
    /// \param dim C \param hidden inner width (4·C in GPT and the paper) \param gen initialisation
    /// \param bias learn biases \param tanh_gelu use the tanh GELU approximation
    FeedForward(std::int64_t dim, std::int64_t hidden, Generator& gen, bool bias = true, bool tanh_gelu = false);
    /// \brief Apply to every position. \param x (…, C)
    /// \return fc2(act(fc1(x))) (…, C)
    Tensor forward(const Tensor& x) const {
        const ScopeGuard scope(*this);
        if (!act.approx) {
            // fc1 and the exact GELU as one op (the same values: see linear_gelu), inside fc1's
            // scope, so that an anomaly in it names fc1's layer.
            Tensor h;
            {
                const ScopeGuard first(fc1);
                h = linear_gelu(x, fc1.weight, fc1.bias);
            }
            return fc2(h);
        }
        return fc2(act(fc1(x)));
    }
    /// \brief Same as forward(). \param x (…, C)
    /// \return fc2(act(fc1(x))) (…, C)
    Tensor operator()(const Tensor& x) const { return forward(x); }
    Linear fc1;  ///< C → hidden
    GELU act;    ///< the nonlinearity
    Linear fc2;  ///< hidden → C
};

/// \brief The fixed sinusoidal position table of "Attention Is All You Need":
/// \f$ PE_{t,2i} = \sin(t/10000^{2i/C}) \f$, \f$ PE_{t,2i+1} = \cos(t/10000^{2i/C}) \f$. No parameters.
class SinusoidalPositions : public Module {
public:
    /// \param max_len longest sequence \param dim C
    SinusoidalPositions(std::int64_t max_len, std::int64_t dim);
    /// \brief Rows [start, start + T) of the table, (T, C), in \p dtype.
    /// \param T number of positions \param start first position \param dtype f32 or f64
    /// \return a copy of the rows (T, C), not trainable
    Tensor forward(std::int64_t T, std::int64_t start = 0, DType dtype = f32) const;
    Tensor table;  ///< (max_len, C), f64
};

/// \brief Learned position embeddings: one trainable vector per position (as in GPT).
class LearnedPositions : public Module {
public:
    /// \param max_len longest sequence \param dim C \param gen initialisation (N(0, 1))
    LearnedPositions(std::int64_t max_len, std::int64_t dim, Generator& gen);
    /// \brief Rows [start, start + T), (T, C). \param T number of positions \param start first position
    /// \return the rows (T, C), copied; gradients flow back into weight
    Tensor forward(std::int64_t T, std::int64_t start = 0) const;
    Tensor weight;  ///< (max_len, C)
};

/// \brief While one is alive (on its thread), layers are built without drawing their random
/// initial values: their parameters start at zero and their generators are not advanced. For a
/// model whose every weight is about to be read from a file: building GPT-2 small (124 M
/// parameters) draws 250 M random numbers, 8 s of work here, all of it overwritten by the load.
/// (Hugging Face's `no_init_weights()` is the same idea.) Guards nest.
class SkipInit {
public:
    /// \brief Start skipping: layers built from now on (on this thread) draw nothing.
    SkipInit();
    /// \brief Stop: back to what was in force before this guard (an outer guard keeps skipping).
    ~SkipInit();
    SkipInit(const SkipInit&) = delete;
    SkipInit& operator=(const SkipInit&) = delete;
    /// \return whether a SkipInit is alive on this thread
    static bool active();

private:
    bool previous_;
};

/// \brief Re-initialise a tensor in place from N(0, std²) (GPT-2 uses std = 0.02 for weights).
/// \param t the tensor (f32 or f64) \param std standard deviation \param gen randomness
void init_normal(Tensor& t, double std, Generator& gen);
/// \brief Fill a tensor with a constant in place. \param t the tensor \param value the value
void init_constant(Tensor& t, double value);

}  // namespace qkv::nn
