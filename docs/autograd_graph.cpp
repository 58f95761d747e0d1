/// \file
/// \brief Draws the picture on the "How autograd works" page: the graph of a tiny network's loss.
///
/// Run by the docs build as `qkv_docs_autograd_graph <out.dot>`; Graphviz turns the file into
/// autograd_graph.svg. The expression is one neuron layer and a squared error,
/// \f$ L = \mathrm{mean}\big((\tanh(xW + b) - y)^2\big) \f$, with x (1, 3), W (3, 2), b (2) and
/// y (1, 2), after backward() so the picture shows W's and b's gradients.
#include <cstdio>
#include <fstream>

#include "qkv/qkv.hpp"

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <out.dot>\n", argv[0]);
        return 2;
    }
    // [graph]
    qkv::Tensor x = qkv::from({1.0, -0.5, 2.0}, {1, 3});                            // an input
    qkv::Tensor W = qkv::from({0.2, -0.1, 0.4, 0.3, -0.2, 0.1}, {3, 2}).requires_grad_();
    qkv::Tensor b = qkv::from({0.1, -0.1}, {2}).requires_grad_();
    qkv::Tensor y = qkv::from({0.5, -0.5}, {1, 2});                                 // the target
    qkv::Tensor h = qkv::tanh(qkv::matmul(x, W) + b);
    qkv::Tensor err = h - y;
    qkv::Tensor L = qkv::mean(err * err);
    L.backward();
    std::string dot = qkv::to_dot(L, {.show_values = true,
                                      .show_grads = true,
                                      .precision = 3,
                                      .names = {{"x", x}, {"W", W}, {"b", b}, {"y", y}, {"L", L}}});
    // [graph]
    std::ofstream out(argv[1]);
    out << dot;
    if (!out) throw qkv::Error(std::string("cannot write ") + argv[1]);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
