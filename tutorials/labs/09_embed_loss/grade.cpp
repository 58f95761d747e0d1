/// \file
/// \brief Grader of lab 9: embeddings forward and backward (repeated tokens, a batch sharing
/// positions), cross-entropy forward (ordinary and huge logits) and backward, against qkv.
#include <cmath>

#include <catch2/catch.hpp>

#include "09_embed_loss/embed_loss.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

constexpr std::int64_t V = 7, C = 4, TMAX = 8, B = 2, T = 5;

Tensor randn(const qkv::Shape& s, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn(s, gen, qkv::f64);
}

// Token 3 appears three times and token 5 twice: their rows must collect several gradients.
Tensor ids() { return qkv::from(std::vector<std::int32_t>{3, 1, 3, 5, 0, 6, 3, 2, 5, 4}, {B, T}); }

Tensor targets() { return qkv::from(std::vector<std::int32_t>{2, 0, 6, 3, 3, 1}, {6}); }

// What a backward that *assigns* leaves: only the last position that read a row counts.
Tensor last_writer(const Tensor& dh, const std::vector<std::int64_t>& row_of, std::int64_t rows) {
    Tensor g = qkv::zeros({rows, C}, qkv::f64);
    for (std::size_t p = 0; p < row_of.size(); ++p)
        for (std::int64_t c = 0; c < C; ++c) g.set({row_of[p], c}, dh.data<double>()[std::int64_t(p) * C + c]);
    return g;
}

const std::string kLse =
    "exp overflowed: log Σ exp(z) must be computed as m + log Σ exp(z − m), m the row's maximum, so that "
    "no exponent is positive";

}  // namespace

TEST_CASE("09.1 embed_forward") {
    const Tensor tok = randn({V, C}, 1), pos = randn({TMAX, C}, 2), id = ids();
    const Tensor h = call("embed_forward", [&] { return lab::embed_forward(tok, pos, id); });
    const Tensor positions = qkv::narrow(pos, 0, 0, T);  // rows 0 … T−1
    check(h, {.what = "embed_forward(tok (7, 4), pos (8, 4), ids (2, 5))",
              .expected = qkv::embedding(tok, id) + positions,
              .mistakes = {{"you left out the position embeddings: h[b][t] = tok[ids[b][t]] + pos[t]",
                            [&] { return qkv::embedding(tok, id); }},
                           {"position t's vector is pos[t] (the row of the position), not pos[ids[b][t]]",
                            [&] { return qkv::embedding(tok, id) + qkv::embedding(pos, id); }}}});
}

TEST_CASE("09.2 embed_backward") {
    Tensor tok = randn({V, C}, 1).requires_grad_(), pos = randn({TMAX, C}, 2).requires_grad_();
    const Tensor id = ids(), dh = randn({B, T, C}, 3);
    (qkv::embedding(tok, id) + qkv::narrow(pos, 0, 0, T)).backward(dh);  // the answer key
    const lab::EmbedGrads got = call("embed_backward", [&] { return lab::embed_backward(id, dh, V, TMAX); });
    std::vector<std::int64_t> token_of, position_of;
    for (std::int64_t p = 0; p < B * T; ++p) {
        token_of.push_back(id.data<std::int32_t>()[p]);
        position_of.push_back(p % T);
    }
    check(got.dtok, {.what = "dtok from embed_backward(ids (2, 5), dh (2, 5, 4), 7, 8); ids = [[3,1,3,5,0],[6,3,2,5,4]]",
                     .expected = tok.grad(),
                     .mistakes = {{"token 3 is used at three positions and token 5 at two: each row must receive "
                                   "both gradients (+=), not the last one (=)",
                                   [&] { return last_writer(dh, token_of, V); }}}});
    check(got.dpos, {.what = "dpos from embed_backward(ids (2, 5), dh (2, 5, 4), 7, 8)",
                     .expected = pos.grad(),
                     .mistakes = {{"every sequence of the batch uses position t: dpos[t] sums dh[b][t] over b (+=)",
                                   [&] { return last_writer(dh, position_of, TMAX); }}}});
}

TEST_CASE("09.3 cross_entropy_forward") {
    const Tensor z = randn({6, V}, 4), t = targets();
    const double got = call("cross_entropy_forward", [&] { return lab::cross_entropy_forward(z, t); });
    const Tensor per_position = qkv::cross_entropy(z, t, -100, qkv::Reduction::none);
    check(got, {.what = "cross_entropy_forward(z (6, 7), targets (6))",
                .expected = qkv::cross_entropy(z, t),
                .mistakes = {{"the loss is the mean over the N = 6 positions, not the sum", [&] { return qkv::sum(per_position); }},
                             {"the sign: the loss is −log softmax(z)[target] (positive), not log softmax(z)[target]",
                              [&] { return -qkv::mean(per_position); }}}});
    // Logits near 1000: exp overflows unless each row's maximum is subtracted first.
    const Tensor big = z + 1000.0;
    const double got_big = call("cross_entropy_forward", [&] { return lab::cross_entropy_forward(big, t); });
    check(got_big, {.what = "cross_entropy_forward(z + 1000, targets): logits near 1000",
                    .expected = qkv::cross_entropy(big, t),
                    .nan_hint = kLse});
}

TEST_CASE("09.4 cross_entropy_backward") {
    for (double shift : {0.0, 1000.0}) {
        Tensor z = (randn({6, V}, 5) + shift).requires_grad_();
        const Tensor t = targets();
        qkv::cross_entropy(z, t).backward();  // the answer key
        const Tensor zd = z.detach();
        const Tensor got = call("cross_entropy_backward", [&] { return lab::cross_entropy_backward(zd, t); });
        const Tensor onehot = qkv::eq(qkv::unsqueeze(t, 1), qkv::arange(V, qkv::i32)).to(qkv::f64);
        const Tensor p = qkv::softmax(zd, -1);
        check(got, {.what = fmt::format("cross_entropy_backward(z (6, 7){}, targets (6))", shift != 0 ? " + 1000" : ""),
                    .expected = z.grad(),
                    .mistakes = {{"the loss is a mean over N = 6 positions, so divide the gradient by N: "
                                  "(softmax(z) − onehot(t)) / N",
                                  [=] { return p - onehot; }},
                                 {"the sign: ∂L/∂z = (softmax(z) − onehot(t)) / N; the target's logit goes *down*",
                                  [=] { return (onehot - p) / 6.0; }},
                                 {"∂/∂z of −z[target] is −1 at the target: subtract onehot(t) from softmax(z)",
                                  [=] { return p / 6.0; }}},
                    .nan_hint = kLse});
    }
}
