/// \file
/// \brief Grader of lab 5: softmax forward (small and huge logits) and backward, against qkv.
#include <catch2/catch.hpp>

#include "05_softmax/softmax.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Tensor;

namespace {

// Rows of ordinary logits, and rows no naive exp survives: around +1000 (exp overflows to inf),
// around −1000 (every exp underflows to 0), and a row spanning 0 to 800.
Tensor small_logits() {
    qkv::Generator gen(5);
    return qkv::randn({3, 5}, gen, qkv::f64);
}
Tensor large_logits() {
    qkv::Generator gen(6);
    Tensor x = qkv::randn({3, 6}, gen, qkv::f64);
    for (std::int64_t j = 0; j < 6; ++j) {
        x.set({0, j}, x.at({0, j}) + 1000);
        x.set({1, j}, x.at({1, j}) - 1000);
        x.set({2, j}, 160.0 * double(j));
    }
    return x;
}

const std::string kNoMax =
    "exp overflowed (exp(x) is inf beyond x ≈ 709.8 in f64) or every exp underflowed to 0 (0/0 is NaN). "
    "Softmax does not change when a constant is subtracted from a row: subtract the row's maximum before "
    "exponentiating, so the largest exponent is exactly 0";

// The forward's known mistakes, as qkv computes them.
std::vector<Mistake> forward_mistakes(const Tensor& x) {
    return {
        {"each column sums to 1, not each row: normalise along the row (over j in x[r][j])",
         [x] { return qkv::softmax(x, 0); }},
        {"you divided by the sum over the whole tensor; each row has its own sum",
         [x] { return qkv::exp(x) / qkv::sum(qkv::exp(x)); }},
        {"you returned exp(x − max) without dividing by the row's sum",
         [x] { return qkv::exp(x - qkv::max(x, 1, true)); }},
    };
}

}  // namespace

TEST_CASE("05.1 softmax_forward on ordinary logits") {
    const Tensor x = small_logits();
    const Tensor y = call("softmax_forward", [&] { return lab::softmax_forward(x); });
    check(y, {.what = "softmax_forward(x), x (3, 5) with entries of N(0, 1)",
              .expected = qkv::softmax(x, -1),
              .mistakes = forward_mistakes(x)});
    require(qkv::allclose(x, small_logits(), 0, 0), "softmax_forward changed its input x: compute into a new tensor");
}

TEST_CASE("05.2 softmax_forward on huge logits (±1000)") {
    const Tensor x = large_logits();
    const Tensor y = call("softmax_forward", [&] { return lab::softmax_forward(x); });
    check(y, {.what = "softmax_forward(x), x (3, 6): row 0 near +1000, row 1 near −1000, row 2 from 0 to 800",
              .expected = qkv::softmax(x, -1),
              .mistakes = forward_mistakes(x),
              .nan_hint = kNoMax});
}

TEST_CASE("05.3 softmax_backward") {
    qkv::Generator gen(7);
    Tensor x = qkv::randn({4, 7}, gen, qkv::f64).requires_grad_();
    const Tensor dy = qkv::randn({4, 7}, gen, qkv::f64);
    Tensor y_graph = qkv::softmax(x, -1);
    y_graph.backward(dy);  // qkv's autograd gives the expected dx
    const Tensor y = y_graph.detach();
    const Tensor dx = call("softmax_backward", [&] { return lab::softmax_backward(y, dy); });
    check(dx, {.what = "softmax_backward(y, dy), y = softmax(x) and dy (4, 7)",
               .expected = x.grad(),
               .mistakes = {
                   {"dx = y ⊙ dy treats softmax as if y_j depended on x_j alone, but every y_j depends on every x_i "
                    "through the row's sum: dx_j = y_j (dy_j − Σ_i y_i dy_i)",
                    [&] { return y * dy; }},
                   {"you used only the diagonal of the Jacobian, y_j (1 − y_j); the off-diagonal terms −y_i y_j "
                    "add up to −y_j Σ_i y_i dy_i: dx_j = y_j (dy_j − Σ_i y_i dy_i)",
                    [&] { return y * (1.0 - y) * dy; }},
                   {"you forgot the factor y_j in front: dx_j = y_j (dy_j − Σ_i y_i dy_i)",
                    [&] { return dy - qkv::sum(y * dy, 1, true); }},
                   {"the sum Σ_i y_i dy_i runs along each row (the softmax's own dimension), not down the columns",
                    [&] { return y * (dy - qkv::sum(y * dy, 0, true)); }},
               }});
}
