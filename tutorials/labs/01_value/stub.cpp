// Lab 1: scalar autograd from scratch. Your file: replace each `throw NotImplemented(...)` with
// your code, then run `build/tutorials/labs/grade 1`. README.md has the math and a worked example.
//
// Each operation does two things:
//   1. compute the result and make its node:   Value out = Value::make(result, {a, b}, "*");
//   2. say how to pass a gradient back:        out.node()->backward_step = [...] { ... };
//      The step adds  out's grad × (∂out/∂input)  into each input's grad. Capture raw pointers
//      (a.node().get(), out.node().get()), not Values: a node must not own itself.
#include "value.hpp"

#include <cmath>

namespace lab {

Value operator+(const Value& a, const Value& b) {
    throw NotImplemented("operator+");
}

Value operator*(const Value& a, const Value& b) {
    throw NotImplemented("operator*");
}

Value pow(const Value& x, double p) {
    throw NotImplemented("pow");
}

Value exp(const Value& x) {
    throw NotImplemented("exp");
}

Value tanh(const Value& x) {
    throw NotImplemented("tanh");
}

void Value::backward() {
    // 1. List every node reachable from this one so that each node comes after all of its
    //    parents (a topological order): a depth-first search that appends a node after its parents.
    // 2. Set this node's grad to 1 (dL/dL).
    // 3. Walk the list backwards, running each node's backward_step.
    throw NotImplemented("Value::backward");
}

}  // namespace lab
