// SPOILER: the reference solution of lab 1 (scalar autograd). Try the lab first.
// The test suite grades it (it must pass) and, with QKV_LAB_MUTANT set, turns it into a plausible
// wrong solution at each `mutant(...)` to prove the grader catches that mistake.
#include "01_value/value.hpp"

#include <cmath>
#include <unordered_set>

#include "solutions/mutant.hpp"

namespace lab {

namespace {

// Every backward_step adds: a node used twice (a * a) receives a contribution from each use.
void add_grad(ValueNode* parent, double g) {
    if (mutant("assign_grad")) parent->grad = g;  // the second use overwrites the first
    else parent->grad += g;
}

// The mistake of propagating depth-first without an order: a node reached along two paths runs its
// backward_step twice, the first time before all of its gradient has arrived.
void propagate_without_order(ValueNode* n) {
    if (n->backward_step) n->backward_step();
    for (const auto& p : n->parents) propagate_without_order(p.get());
}

}  // namespace

Value operator+(const Value& a, const Value& b) {
    Value out = Value::make(a.data() + b.data(), {a, b}, "+");
    ValueNode *o = out.node().get(), *pa = a.node().get(), *pb = b.node().get();
    o->backward_step = [o, pa, pb] {  // ∂(a+b)/∂a = ∂(a+b)/∂b = 1
        add_grad(pa, o->grad);
        add_grad(pb, o->grad);
    };
    return out;
}

Value operator*(const Value& a, const Value& b) {
    Value out = Value::make(a.data() * b.data(), {a, b}, "*");
    ValueNode *o = out.node().get(), *pa = a.node().get(), *pb = b.node().get();
    o->backward_step = [o, pa, pb] {  // ∂(ab)/∂a = b, ∂(ab)/∂b = a
        add_grad(pa, pb->data * o->grad);
        add_grad(pb, pa->data * o->grad);
    };
    return out;
}

Value pow(const Value& x, double p) {
    Value out = Value::make(std::pow(x.data(), p), {x}, "pow");
    ValueNode *o = out.node().get(), *px = x.node().get();
    o->backward_step = [o, px, p] { add_grad(px, p * std::pow(px->data, p - 1) * o->grad); };  // p·x^(p−1)
    return out;
}

Value exp(const Value& x) {
    Value out = Value::make(std::exp(x.data()), {x}, "exp");
    ValueNode *o = out.node().get(), *px = x.node().get();
    o->backward_step = [o, px] { add_grad(px, o->data * o->grad); };  // (e^x)' = e^x, the output
    return out;
}

Value tanh(const Value& x) {
    Value out = Value::make(std::tanh(x.data()), {x}, "tanh");
    ValueNode *o = out.node().get(), *px = x.node().get();
    o->backward_step = [o, px] { add_grad(px, (1 - o->data * o->data) * o->grad); };  // 1 − tanh²x
    return out;
}

void Value::backward() {
    if (mutant("no_topo")) {
        node_->grad = 1;
        propagate_without_order(node_.get());
        return;
    }
    // Topological order by an iterative depth-first search: a node is appended once all of its
    // parents are (post-order), so walking the list backwards visits every node after all of its
    // users — by then its grad is complete. An explicit stack: deep graphs cannot overflow it.
    std::vector<ValueNode*> order;
    std::unordered_set<ValueNode*> seen{node_.get()};
    std::vector<std::pair<ValueNode*, std::size_t>> stack{{node_.get(), 0}};  // (node, next parent)
    while (!stack.empty()) {
        ValueNode* n = stack.back().first;
        const std::size_t next = stack.back().second++;
        if (next < n->parents.size()) {
            ValueNode* p = n->parents[next].get();
            if (seen.insert(p).second) stack.push_back({p, 0});
        } else {
            order.push_back(n);
            stack.pop_back();
        }
    }
    node_->grad = 1;  // dL/dL
    for (auto it = order.rbegin(); it != order.rend(); ++it)
        if ((*it)->backward_step) (*it)->backward_step();
}

}  // namespace lab
