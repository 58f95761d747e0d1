// SPOILER: the reference solution of lab 9 (embeddings and cross-entropy). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "09_embed_loss/embed_loss.hpp"

#include <algorithm>
#include <cmath>

#include "solutions/mutant.hpp"

namespace lab {

using qkv::Tensor;

Tensor embed_forward(const Tensor& tok, const Tensor& pos, const Tensor& ids) {
    const std::int64_t B = ids.size(0), T = ids.size(1), C = tok.size(1);
    Tensor h = qkv::empty({B, T, C}, qkv::f64);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < T; ++t) {
            const std::int64_t v = ids.data<std::int32_t>()[b * T + t];
            for (std::int64_t c = 0; c < C; ++c)
                h.data<double>()[(b * T + t) * C + c] = tok.data<double>()[v * C + c] + pos.data<double>()[t * C + c];
        }
    return h;
}

EmbedGrads embed_backward(const Tensor& ids, const Tensor& dh, std::int64_t vocab, std::int64_t max_len) {
    const std::int64_t B = ids.size(0), T = ids.size(1), C = dh.size(2);
    EmbedGrads g{qkv::zeros({vocab, C}, qkv::f64), qkv::zeros({max_len, C}, qkv::f64)};
    // A lookup is a copy, so its gradient is a scatter-add: a token used at several positions,
    // and a position used by every sequence of the batch, collect all their gradients.
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < T; ++t) {
            const std::int64_t v = ids.data<std::int32_t>()[b * T + t];
            for (std::int64_t c = 0; c < C; ++c) {
                const double d = dh.data<double>()[(b * T + t) * C + c];
                double& dt = g.dtok.data<double>()[v * C + c];
                dt = mutant("tok_assign") ? d : dt + d;
                g.dpos.data<double>()[t * C + c] += d;
            }
        }
    return g;
}

namespace {
// log Σ_v e^{z_v}, as m + log Σ_v e^{z_v − m}: no exponent is positive, nothing overflows.
double log_sum_exp(const double* z, std::int64_t V) {
    const double m = mutant("ce_no_max") ? 0.0 : *std::max_element(z, z + V);
    double s = 0;
    for (std::int64_t v = 0; v < V; ++v) s += std::exp(z[v] - m);
    return m + std::log(s);
}
}  // namespace

double cross_entropy_forward(const Tensor& logits, const Tensor& targets) {
    const std::int64_t N = logits.size(0), V = logits.size(1);
    double total = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const double* z = logits.data<double>() + n * V;
        total += log_sum_exp(z, V) - z[targets.data<std::int32_t>()[n]];  // −log softmax(z)[t]
    }
    return total / double(N);
}

Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets) {
    const std::int64_t N = logits.size(0), V = logits.size(1);
    Tensor dz = qkv::empty({N, V}, qkv::f64);
    const double scale = mutant("ce_no_mean") ? 1.0 : 1.0 / double(N);  // the loss is a mean
    for (std::int64_t n = 0; n < N; ++n) {
        const double* z = logits.data<double>() + n * V;
        const double lse = log_sum_exp(z, V);
        // ∂/∂z_v (lse − z_t) = softmax(z)_v − [v = t]
        for (std::int64_t v = 0; v < V; ++v)
            dz.data<double>()[n * V + v] = (std::exp(z[v] - lse) - (v == targets.data<std::int32_t>()[n])) * scale;
    }
    return dz;
}

}  // namespace lab
