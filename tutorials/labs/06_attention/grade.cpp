/// \file
/// \brief Grader of lab 6: attention forward (plain and causal) and backward, against
/// qkv::attention and its autograd, with the known mistakes computed by qkv with the mistake made.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include "06_attention/attention.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

struct Inputs {
    Tensor q, k, v, dout;
};

// Entries of size ~1.5: large enough that a missing 1/√D changes the softmax visibly.
Inputs inputs(std::int64_t tq, std::int64_t tk, std::int64_t d, std::int64_t dv, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return {qkv::randn({tq, d}, gen, qkv::f64) * 1.5, qkv::randn({tk, d}, gen, qkv::f64) * 1.5,
            qkv::randn({tk, dv}, gen, qkv::f64), qkv::randn({tq, dv}, gen, qkv::f64)};
}

// Attention with a chosen scale and mask rule, from qkv's primitive ops (so gradients come from
// qkv's autograd): the right answer and the answers of known mistakes alike.
enum class Mask { none, causal, strict, backwards, zero_score, after_softmax };
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Mask mask) {
    const std::int64_t tq = q.size(0), tk = k.size(0);
    Tensor s = qkv::matmul(q, qkv::transpose(k, 0, 1)) * scale;
    const Tensor future = qkv::logical_not(qkv::tril_mask(tq, tk));
    if (mask == Mask::causal) s = qkv::masked_fill(s, future, -kInf);
    if (mask == Mask::strict) s = qkv::masked_fill(s, qkv::logical_not(qkv::tril_mask(tq, tk, -1)), -kInf);
    if (mask == Mask::backwards) s = qkv::masked_fill(s, qkv::tril_mask(tq, tk, -1), -kInf);
    if (mask == Mask::zero_score) s = qkv::masked_fill(s, future, 0.0);
    Tensor p = qkv::softmax(s, -1);
    if (mask == Mask::after_softmax) p = qkv::masked_fill(p, future, 0.0);
    return qkv::matmul(p, v);
}

qkv::AttentionOptions options(bool causal) {
    qkv::AttentionOptions o;
    o.causal = causal;
    return o;
}

double scale_of(const Tensor& q) { return 1.0 / std::sqrt(double(q.size(1))); }

lab::AttentionGrads autograd(const Inputs& in, double scale, Mask mask) {
    Tensor q = in.q.clone().requires_grad_(), k = in.k.clone().requires_grad_(), v = in.v.clone().requires_grad_();
    attend(q, k, v, scale, mask).backward(in.dout);
    return {q.grad(), k.grad(), v.grad()};
}

// The forward's known mistakes.
std::vector<Mistake> forward_mistakes(const Inputs& in, bool causal) {
    const Mask m = causal ? Mask::causal : Mask::none;
    const double d = double(in.q.size(1)), s = scale_of(in.q);
    std::vector<Mistake> v = {
        {"off by a factor √D inside the softmax: did you scale the scores by 1/√D? (D = " + fmt::format("{}", d) + ")",
         [=] { return attend(in.q, in.k, in.v, 1.0, m); }},
        {"the scores are scaled by 1/D; the scale is 1/√D (dot products of D-dimensional vectors grow like √D)",
         [=] { return attend(in.q, in.k, in.v, 1.0 / d, m); }},
        {"the softmax must run along each row (over the keys j for query i), not down the columns",
         [=] { return qkv::matmul(qkv::softmax(qkv::matmul(in.q, qkv::transpose(in.k, 0, 1)) * s, 0), in.v); }},
    };
    if (causal) {
        v.push_back({"query i saw keys after it: the causal mask sets S_ij = −∞ for every j > i",
                     [=] { return attend(in.q, in.k, in.v, s, Mask::none); }});
        v.push_back({"query i may see key i itself: mask only j > i (row 0 sees key 0)",
                     [=] { return attend(in.q, in.k, in.v, s, Mask::strict); }});
        v.push_back({"the mask is the wrong way round: query i sees keys j ≤ i, and j > i are blocked",
                     [=] { return attend(in.q, in.k, in.v, s, Mask::backwards); }});
        v.push_back({"masked scores must be −∞ (weight e^−∞ = 0), not 0 (weight e⁰ = 1, as much as a real score of 0)",
                     [=] { return attend(in.q, in.k, in.v, s, Mask::zero_score); }});
        v.push_back({"you zeroed the weights after the softmax, so a row no longer sums to 1: mask the scores "
                     "before the softmax, with −∞",
                     [=] { return attend(in.q, in.k, in.v, s, Mask::after_softmax); }});
    }
    return v;
}

void grade_forward(const Inputs& in, bool causal, const std::string& what,
                   lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    const Tensor out = call("attention_forward", [&] {
        qkv::NoGradGuard no_autograd;
        return lab::attention_forward(in.q, in.k, in.v, causal);
    }, where);
    check(out, {.what = what,
                .expected = qkv::attention(in.q, in.k, in.v, options(causal)),
                .mistakes = forward_mistakes(in, causal)},
          where);
}

void grade_backward(const Inputs& in, bool causal, const std::string& shapes,
                    lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    const lab::AttentionGrads got = call("attention_backward", [&] {
        qkv::NoGradGuard no_autograd;
        return lab::attention_backward(in.q, in.k, in.v, causal, in.dout);
    }, where);
    const Mask m = causal ? Mask::causal : Mask::none;
    const double s = scale_of(in.q);
    const lab::AttentionGrads want = autograd(in, s, m), unscaled = autograd(in, 1.0, m),
                              unmasked = autograd(in, s, Mask::none);
    Tensor p;
    qkv::AttentionOptions with_weights = options(causal);
    with_weights.weights = &p;
    (void)qkv::attention(in.q, in.k, in.v, with_weights);
    // dS without the softmax's sum term, and with it (for the transposition mistake in dK).
    const Tensor dp = qkv::matmul(in.dout, qkv::transpose(in.v, 0, 1));
    const Tensor ds_diag = p * dp, ds = p * (dp - qkv::sum(dp * p, 1, true));
    const std::string scaled = "off by a factor √D: did you scale the scores by 1/√D (forward and backward alike)?";
    const std::string softmax = "the softmax's backward needs the row sum: dS = P ⊙ (dP − rowsum(dP ⊙ P)) (lab 5)";
    const std::string unmasked_hint = "the backward must use the same masked weights P as the forward (−∞ above the diagonal)";
    const std::string what = " from attention_backward(q, k, v, causal = " + fmt::format("{}", causal) + ", dO), " + shapes;
    check(got.dv, {.what = "dV" + what,
                   .expected = want.dv,
                   .mistakes = {{"O = P·V, so dV = Pᵀ·dO (the transpose of P, not P): a transposed gradient",
                                 [&] { return qkv::matmul(p, in.dout); }},
                                {scaled, [&] { return unscaled.dv; }},
                                {unmasked_hint, [&] { return unmasked.dv; }}}},
          where);
    check(got.dq, {.what = "dQ" + what,
                   .expected = want.dq,
                   .mistakes = {{"S = Q·Kᵀ/√D, so dQ = dS·K/√D: the factor 1/√D is missing", [&] { return want.dq / s; }},
                                {softmax, [&] { return qkv::matmul(ds_diag, in.k) * s; }},
                                {scaled, [&] { return unscaled.dq; }},
                                {unmasked_hint, [&] { return unmasked.dq; }}}},
          where);
    check(got.dk, {.what = "dK" + what,
                   .expected = want.dk,
                   .mistakes = {{"S = Q·Kᵀ/√D, so dK = dSᵀ·Q/√D: the factor 1/√D is missing", [&] { return want.dk / s; }},
                                {"dK = dSᵀ·Q/√D: dS must be transposed (S_ij pairs query i with key j)",
                                 [&] { return qkv::matmul(ds, in.q) * s; }},
                                {softmax, [&] { return qkv::matmul(qkv::transpose(ds_diag, 0, 1), in.q) * s; }},
                                {scaled, [&] { return unscaled.dk; }},
                                {unmasked_hint, [&] { return unmasked.dk; }}}},
          where);
}

}  // namespace

TEST_CASE("06.1 attention_forward") {
    grade_forward(inputs(5, 7, 4, 3, 1), false, "attention_forward(q, k, v, causal = false), q (5, 4), k (7, 4), v (7, 3)");
}

TEST_CASE("06.2 attention_forward with the causal mask") {
    grade_forward(inputs(6, 6, 4, 3, 2), true, "attention_forward(q, k, v, causal = true), q, k (6, 4), v (6, 3)");
}

TEST_CASE("06.3 attention_backward") {
    grade_backward(inputs(5, 7, 4, 3, 3), false, "q (5, 4), k (7, 4), v (7, 3), dO (5, 3)");
}

TEST_CASE("06.4 attention_backward with the causal mask") {
    grade_backward(inputs(6, 6, 4, 3, 4), true, "q, k (6, 4), v (6, 3), dO (6, 3)");
}
