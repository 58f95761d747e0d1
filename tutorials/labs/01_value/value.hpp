/// \file
/// \brief Lab 1: automatic differentiation of scalars, from scratch — a `Value` that remembers how
/// it was computed, and a `backward()` that walks the graph in topological order.
///
/// The data structure is given (here); you write the five operations and backward() in lab.cpp.
/// This is qkv's autograd (src/core/autograd.cpp) in miniature: one number instead of a tensor, the same
/// graph, the same order, the same accumulation.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/lab.hpp"

namespace lab {

/// \brief One node of the graph: a number, its gradient, and how to pass the gradient back.
struct ValueNode {
    double data = 0;  ///< the number
    double grad = 0;  ///< \f$ \partial L / \partial (\text{this}) \f$, filled in by Value::backward()
    /// The inputs of the operation that produced this node (empty for a leaf). Owning them keeps
    /// the whole graph alive as long as its output is.
    std::vector<std::shared_ptr<ValueNode>> parents;
    /// Adds this node's grad, times the local derivative, into each parent's grad. Empty for a leaf.
    /// It must not own this node (a shared_ptr to itself would be a cycle that is never freed):
    /// capture raw pointers, which the graph keeps alive.
    std::function<void()> backward_step;
    std::string op;  ///< "+", "*", "pow", "exp", "tanh" ("" for a leaf), for printing and debugging
};

/// \brief A scalar that takes part in a graph: a handle (shared pointer) to a ValueNode.
///
/// Copies are handles to the same node, like qkv::Tensor: `Value b = a;` is the same value, so
/// `a * a` uses one node twice — and its gradient must receive both uses.
class Value {
public:
    /// \brief A leaf: a number you give, not computed from other Values. Implicit, so `x * 2.0` works.
    /// \param data the number
    Value(double data) : node_(std::make_shared<ValueNode>()) { node_->data = data; }  // NOLINT(google-explicit-constructor)

    /// \brief A node computed by an operation: the number, and the Values it was computed from.
    /// Its backward_step is set by the operation (in lab.cpp).
    /// \param data the result \param parents the operation's inputs \param op the operation's name
    /// \return the new Value
    static Value make(double data, const std::vector<Value>& parents, std::string op) {
        Value out(data);
        for (const Value& p : parents) out.node_->parents.push_back(p.node_);
        out.node_->op = std::move(op);
        return out;
    }

    /// \brief The number. \return the number
    double data() const { return node_->data; }
    /// \brief \f$ \partial L / \partial (\text{this}) \f$ after backward() (0 before).
    /// \return the accumulated gradient
    double grad() const { return node_->grad; }
    /// \brief The node (to set its backward_step, or read its parents).
    /// \return the shared node
    const std::shared_ptr<ValueNode>& node() const { return node_; }

    /// \brief Backpropagate from this value, L = this: set this node's grad to 1, then run every
    /// node's backward_step once, each node only after every node that uses it (reverse
    /// topological order). Gradients *add* into grad, so leaves used twice get both contributions.
    void backward();  // you write this, in lab.cpp

private:
    std::shared_ptr<ValueNode> node_;
};

/// \brief \f$ a + b \f$; \f$ \partial/\partial a = 1 \f$, \f$ \partial/\partial b = 1 \f$.
/// \param a left \param b right \return the sum
Value operator+(const Value& a, const Value& b);
/// \brief \f$ a \cdot b \f$; \f$ \partial/\partial a = b \f$, \f$ \partial/\partial b = a \f$.
/// \param a left \param b right \return the product
Value operator*(const Value& a, const Value& b);
/// \brief \f$ x^p \f$ for a constant p; \f$ \partial/\partial x = p\,x^{p-1} \f$.
/// \param x base \param p exponent (a plain number, not a Value) \return x to the power p
Value pow(const Value& x, double p);
/// \brief \f$ e^x \f$; \f$ \partial/\partial x = e^x \f$ (the output itself).
/// \param x exponent \return e to the power x
Value exp(const Value& x);
/// \brief \f$ \tanh x \f$; \f$ \partial/\partial x = 1 - \tanh^2 x \f$ (from the output).
/// \param x input \return tanh x
Value tanh(const Value& x);

// Given: the other operations, built from yours (so their gradients come for free).
/// \brief \f$ -x = x \cdot (-1) \f$. \param x input \return −x
inline Value operator-(const Value& x) { return x * -1.0; }
/// \brief \f$ a - b = a + (-b) \f$. \param a left \param b right \return the difference
inline Value operator-(const Value& a, const Value& b) { return a + (-b); }
/// \brief \f$ a / b = a \cdot b^{-1} \f$. \param a numerator \param b denominator \return the quotient
inline Value operator/(const Value& a, const Value& b) { return a * pow(b, -1.0); }

}  // namespace lab
