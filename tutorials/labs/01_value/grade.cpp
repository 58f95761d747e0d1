/// \file
/// \brief Grader of lab 1: every Value operation's result and gradient, a value used twice, a
/// neuron, and a graph whose order matters — each against the same expression in qkv's autograd.
#include <cmath>

#include <catch2/catch.hpp>

#include "01_value/value.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using lab::Value;
using qkv::Tensor;

namespace {

const std::string kNoGradient =
    "no gradient arrived: does backward() set the output's own grad to 1 before walking the graph, and "
    "does every operation set out.node()->backward_step?";

// An expression and the point where it is evaluated. `f` is generic: it runs once on lab::Value
// (your code) and once on 0-d f64 qkv tensors (qkv's autograd, the answer key), because both have
// +, *, pow, exp and tanh.
template <class F>
struct Expression {
    std::string text;            // "a·b at a = 2, b = −3"
    F f;
    std::vector<double> inputs;  // the point
};

// qkv's answer: the value and the gradient of every input.
template <class F>
std::pair<Tensor, Tensor> reference(const Expression<F>& e) {
    std::vector<Tensor> xs;
    for (double v : e.inputs) xs.push_back(qkv::scalar(v, qkv::f64).requires_grad_());
    const Tensor y = e.f(xs);
    y.backward();
    std::vector<double> grads;
    for (const Tensor& x : xs) grads.push_back(x.grad().item());
    return {y.detach(), qkv::from(grads, {std::int64_t(grads.size())})};
}

// Your answer: the same expression on Values.
template <class F>
std::pair<double, Tensor> yours(const Expression<F>& e, lab::grading::SourceLocation where) {
    std::vector<Value> xs(e.inputs.begin(), e.inputs.end());
    const Value y = call("the operations in " + e.text, [&] { return e.f(xs); }, where);
    call("Value::backward", [&] { Value(y).backward(); }, where);
    std::vector<double> grads;
    for (const Value& x : xs) grads.push_back(x.grad());
    return {y.data(), qkv::from(grads, {std::int64_t(grads.size())})};
}

Tensor values(std::vector<double> v) { return qkv::from(v, {std::int64_t(v.size())}); }

// Check the value and the gradients of one expression; `mistakes` are wrong gradient vectors.
template <class F>
void check_expression(const Expression<F>& e, std::vector<Mistake> mistakes = {}, std::string hint = "",
                      lab::grading::SourceLocation where = lab::grading::SourceLocation::current()) {
    const auto [want_y, want_g] = reference(e);
    const auto [y, g] = yours(e, where);
    check(y, {.what = "the value of " + e.text, .expected = want_y}, where);
    mistakes.push_back({kNoGradient, [n = g.numel()] { return qkv::zeros({n}, qkv::f64); }});
    check(g, {.what = "the gradients (d/d each input, in order) of " + e.text,
              .expected = want_g,
              .mistakes = std::move(mistakes),
              .hint = std::move(hint)},
          where);
}

template <class F>
Expression<F> expr(std::string text, F f, std::vector<double> inputs) {
    return {std::move(text), std::move(f), std::move(inputs)};
}

}  // namespace

TEST_CASE("01.1 each operation's result") {
    const double a = 0.7, b = -1.3;
    const auto check_value = [](const std::string& text, auto f, double want) {
        const Value y = call(text, f);
        check(y.data(), {.what = text, .expected = number(want)});
    };
    check_value("Value(0.7) + Value(-1.3)", [&] { return Value(a) + Value(b); }, a + b);
    check_value("Value(0.7) * Value(-1.3)", [&] { return Value(a) * Value(b); }, a * b);
    check_value("pow(Value(0.7), 3)", [&] { return pow(Value(a), 3.0); }, std::pow(a, 3.0));
    check_value("exp(Value(0.7))", [&] { return exp(Value(a)); }, std::exp(a));
    check_value("tanh(Value(-1.3))", [&] { return tanh(Value(b)); }, std::tanh(b));
}

TEST_CASE("01.2 each operation's gradient") {
    check_expression(expr("a + b at a = 0.7, b = -1.3", [](const auto& x) { return x[0] + x[1]; }, {0.7, -1.3}));
    check_expression(expr("a * b at a = 0.7, b = -1.3", [](const auto& x) { return x[0] * x[1]; }, {0.7, -1.3}),
                     {{"∂(a·b)/∂a = b and ∂(a·b)/∂b = a: each input's gradient is out.grad times the *other* "
                       "input's data",
                       [] { return values({0.7, -1.3}); }}});
    check_expression(expr("pow(a, 3) at a = 0.7", [](const auto& x) { return pow(x[0], 3.0); }, {0.7}),
                     {{"d/dx x^p = p·x^(p−1): you left out the factor p", [] { return values({0.7 * 0.7}); }},
                      {"d/dx x^p = p·x^(p−1): the exponent drops by one", [] { return values({3 * 0.7 * 0.7 * 0.7}); }}});
    check_expression(expr("pow(a, -1) at a = 0.7", [](const auto& x) { return pow(x[0], -1.0); }, {0.7}));
    check_expression(expr("exp(a) at a = 0.7", [](const auto& x) { return exp(x[0]); }, {0.7}),
                     {{"d/dx e^x = e^x: multiply by the *output's* data, not the input's", [] { return values({0.7}); }}});
    check_expression(expr("tanh(a) at a = -1.3", [](const auto& x) { return tanh(x[0]); }, {-1.3}),
                     {{"d/dx tanh x = 1 − tanh²x: square the *output* (tanh x), not the input",
                       [] { return values({1 - 1.3 * 1.3}); }},
                      {"d/dx tanh x = 1 − tanh²x: the output is squared", [] { return values({1 - std::tanh(-1.3)}); }}});
}

TEST_CASE("01.3 a value used twice") {
    const std::string accumulate =
        "a value used twice must receive the gradient of both uses: add into grad (+=), never assign (=)";
    check_expression(expr("a * a at a = 3", [](const auto& x) { return x[0] * x[0]; }, {3.0}),
                     {{accumulate, [] { return values({3.0}); }}});
    check_expression(expr("a + a at a = 3", [](const auto& x) { return x[0] + x[0]; }, {3.0}),
                     {{accumulate, [] { return values({1.0}); }}});
    check_expression(expr("a * a * a at a = 0.5", [](const auto& x) { return x[0] * x[0] * x[0]; }, {0.5}),
                     {{accumulate, [] { return values({0.25}); }}}, accumulate);
}

TEST_CASE("01.4 a neuron: tanh(w1·x1 + w2·x2 + b)") {
    check_expression(expr("tanh(w1·x1 + w2·x2 + b) at x1 = 1.5, w1 = −2, x2 = 0.5, w2 = 1.2, b = 2.4",
                          [](const auto& x) { return tanh(x[0] * x[1] + x[2] * x[3] + x[4]); },
                          {1.5, -2.0, 0.5, 1.2, 2.4}),
                     {}, "the chain rule: every backward_step multiplies its local derivative by its own node's grad");
}

TEST_CASE("01.5 a graph where the order matters") {
    // h feeds y along two paths of different lengths (h·h and exp(h)·a), and L uses h once more:
    // h's backward_step may run only after all three contributions have arrived.
    check_expression(
        expr("h = tanh(a·b + c), y = h·h + exp(h)·a, L = y·y + h / a at a = 0.8, b = −0.6, c = 0.3",
             [](const auto& x) {
                 const auto h = tanh(x[0] * x[1] + x[2]);
                 const auto y = h * h + exp(h) * x[0];
                 return y * y + h / x[0];
             },
             {0.8, -0.6, 0.3}),
        {},
        "a node's backward_step ran before every node that uses it had added its gradient (or ran twice): "
        "collect the nodes in a topological order first, then run the steps in reverse topological order, "
        "each node exactly once");
}
