// Autograd that cannot quietly go wrong: a second backward through a freed graph is an error (not
// doubled gradients), and anomaly mode names the op and the module where the first NaN or
// infinity appeared, forward or backward.
#include <catch2/catch.hpp>

#include "qkv/qkv.hpp"

using namespace qkv;
using Catch::Contains;

TEST_CASE("backward twice through the same graph is an error, as in PyTorch", "[autograd][errors]") {
    Tensor w = from({1.0, 2.0, 3.0}, {3}, f64).requires_grad_();
    const Tensor loss = sum(tanh(w * w));
    loss.backward();
    const std::vector<double> once = w.grad().to_vector<double>();
    CHECK_THROWS_WITH(loss.backward(), Contains("backward: trying to backward through the graph a second time") &&
                                           Contains("retain_graph"));
    // The refused backward changed nothing (it is checked before any node runs).
    CHECK(w.grad().to_vector<double>() == once);
    // Part of a freed graph, reached from another loss, is refused as well.
    Tensor v = from({0.5, 0.25}, {2}, f64).requires_grad_();
    const Tensor h = exp(v);
    sum(h).backward();
    CHECK_THROWS_WITH(sum(h * 2.0).backward(), Contains("a second time"));
}

TEST_CASE("backward(retain_graph = true) keeps the graph, and the second backward accumulates", "[autograd]") {
    Tensor w = from({1.0, 2.0, 3.0}, {3}, f64).requires_grad_();
    const Tensor loss = sum(tanh(w * w));
    loss.backward(/*retain_graph=*/true);
    const std::vector<double> once = w.grad().to_vector<double>();
    loss.backward();  // allowed: the first one retained the graph; this one frees it
    const std::vector<double> twice = w.grad().to_vector<double>();
    for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == 2 * once[i]);
    CHECK_THROWS_WITH(loss.backward(), Contains("a second time"));
    // With an explicit upstream gradient too.
    Tensor x = from({1.0, -1.0}, {2}, f64).requires_grad_();
    const Tensor y = x * x;
    y.backward(ones_like(y), true);
    y.backward(ones_like(y), true);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{4.0, -4.0});
}
