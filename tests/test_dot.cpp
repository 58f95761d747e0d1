// to_dot: the Graphviz text of an autograd graph — nodes, edges in data-flow order, labels,
// values and gradients, determinism, deep graphs, errors.
#include <catch2/catch.hpp>

#include <string>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {

// How many times `needle` occurs in `text`.
std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("to_dot draws ops, leaves and data-flow edges of a small expression", "[dot]") {
    // loss = mean(tanh(x @ W + b)): ops matmul, add, tanh, mean; leaves x, W, b.
    Generator gen(0);
    Tensor x = randn({1, 3}, gen);
    Tensor W = randn({3, 2}, gen).requires_grad_();
    Tensor b = zeros({2}).requires_grad_();
    Tensor loss = mean(tanh(matmul(x, W) + b));

    const std::string dot = to_dot(loss, {.names = {{"x", x}, {"W", W}, {"b", b}}});
    INFO(dot);
    CHECK(dot.rfind("digraph qkv {\n", 0) == 0);
    CHECK(dot.substr(dot.size() - 2) == "}\n");
    // One ellipse per op, labelled with the op name and its output shape.
    CHECK(count(dot, "shape=ellipse") == 4);
    CHECK(contains(dot, "label=\"mean\\n()\""));
    CHECK(contains(dot, "label=\"tanh\\n(1,2)\""));
    CHECK(contains(dot, "label=\"add\\n(1,2)\""));
    CHECK(contains(dot, "label=\"matmul\\n(1,2)\""));
    // One box per leaf plus the result; parameters filled, the constant input dashed.
    CHECK(contains(dot, "label=\"W (3,2) f32\""));
    CHECK(contains(dot, "label=\"b (2) f32\""));
    CHECK(contains(dot, "style=dashed, label=\"x (1,3) f32\""));
    CHECK(count(dot, "style=filled, fillcolor=\"#cfe2f3\"") == 2);
    CHECK(contains(dot, "result [shape=box, peripheries=2"));
    // Edges: 2 into matmul, 2 into add, 1 into tanh, 1 into mean, 1 to the result.
    CHECK(count(dot, " -> ") == 7);
    CHECK(contains(dot, "op0 -> result;"));  // op0 is the op that produced the root (mean)
}

TEST_CASE("to_dot edges point from inputs to the ops that use them", "[dot]") {
    Tensor a = scalar(2, f64).requires_grad_();
    Tensor y = tanh(a);
    const std::string dot = to_dot(y);
    // a is t0, tanh is op0: the arrow goes a -> tanh -> result.
    CHECK(contains(dot, "t0 -> op0;"));
    CHECK(contains(dot, "op0 -> result;"));
    CHECK_FALSE(contains(dot, "op0 -> t0"));
}

TEST_CASE("to_dot shows values and gradients on request", "[dot]") {
    Tensor w = from({1.5, -2}, {2}, f64).requires_grad_();
    Tensor loss = sum(w * w);
    loss.backward();  // d/dw sum(w²) = 2w = [3, -4]

    const std::string plain = to_dot(loss);
    CHECK_FALSE(contains(plain, "= [1.5, -2]"));
    CHECK_FALSE(contains(plain, "grad "));

    const std::string full = to_dot(loss, {.show_values = true, .show_grads = true, .names = {{"w", w}}});
    INFO(full);
    CHECK(contains(full, "label=\"w (2) f64\\n= [1.5, -2]\\ngrad [3, -4]\""));
    CHECK(contains(full, "() f64\\n= 6.25\""));  // the root, a 0-d tensor, prints its bare value
    // w is used twice by mul: one box, two arrows into the op.
    CHECK(count(full, "t0 -> op1;") == 2);

    // Tensors larger than max_elements show their shape only.
    const std::string small = to_dot(loss, {.show_values = true, .max_elements = 1});
    CHECK_FALSE(contains(small, "[1.5, -2]"));
    CHECK(contains(small, "= 6.25"));
}

TEST_CASE("to_dot is deterministic and shares nodes used by several ops", "[dot]") {
    auto build = [] {
        Tensor x = scalar(0.5, f64).requires_grad_();
        Tensor h = tanh(x);
        return std::make_pair(x, h * h + exp(h));  // diamond: h feeds mul (twice) and exp
    };
    auto [x1, y1] = build();
    auto [x2, y2] = build();
    const std::string d1 = to_dot(y1);
    CHECK(d1 == to_dot(y2));
    CHECK(count(d1, "label=\"tanh\\n()\"") == 1);  // one tanh node, however many users
    CHECK(count(d1, "shape=ellipse") == 4);        // tanh, mul, exp, add
}

TEST_CASE("to_dot of a leaf, of a deep chain, and its errors", "[dot]") {
    Tensor leaf = from({1, 2}, {2});
    const std::string one = to_dot(leaf, {.show_values = true, .names = {{"v", leaf}}});
    CHECK(contains(one, "result [shape=box"));
    CHECK(contains(one, "v (2) f32\\n= [1, 2]"));
    CHECK(count(one, " -> ") == 0);

    // A long chain must not overflow the stack (the walk is iterative).
    Tensor x = scalar(1, f64).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 20000; ++i) y = add(y, 1.0);
    CHECK(count(to_dot(y), "shape=ellipse") == 20000);

    CHECK_THROWS_WITH(to_dot(Tensor()), Catch::Contains("to_dot: root is an undefined tensor"));
    CHECK_THROWS_WITH(to_dot(x, {.rankdir = "XY"}), Catch::Contains("rankdir must be"));

    // Names with quotes are escaped for DOT.
    const std::string quoted = to_dot(leaf, {.names = {{"say \"hi\"", leaf}}});
    CHECK(contains(quoted, "say \\\"hi\\\" (2) f32"));
}
