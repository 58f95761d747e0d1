/// \file
/// \brief Tutorial 2: autograd by hand, and inside the engine.
///
/// Builds a four-op graph for one step of a linear model, runs backward, and checks every
/// gradient against the chain rule worked out with pencil and paper; derives the gradient of a
/// matrix product and checks it; then looks inside the engine: nodes, a tensor used twice, a chain
/// of 100 000 ops, and a graph that frees itself. See README.md.
#include <qkv/qkv.hpp>

using namespace qkv;

int main() {
    // [graph]
    // One prediction of a linear model and its squared error:
    //   pred = w·x + b,   err = pred − y,   L = err²
    // with w = 2, x = 3, b = 1, y = 5.  Exact numbers: use f64.
    Tensor w = scalar(2, f64).requires_grad_();  // parameters: we want dL/dw and dL/db
    Tensor b = scalar(1, f64).requires_grad_();
    Tensor x = scalar(3, f64).requires_grad_();  // we may ask for dL/dx too
    Tensor y = scalar(5, f64);                   // a target: no gradient needed

    Tensor pred = w * x + b;  // 2·3 + 1 = 7
    Tensor err = pred - y;    // 7 − 5 = 2
    Tensor L = err * err;     // 4
    fmt::print("pred = {}, err = {}, L = {}\n", pred.item(), err.item(), L.item());
    fmt::print("the graph, from L back to the inputs: {}\n\n", fmt::join(graph_ops(L), " <- "));
    // [graph]

    // [backward]
    L.backward();
    // Chain rule by hand:
    //   dL/derr  = 2·err          = 4
    //   dL/dpred = dL/derr · 1    = 4
    //   dL/dw    = dL/dpred · x   = 4·3 = 12
    //   dL/db    = dL/dpred · 1   = 4
    //   dL/dx    = dL/dpred · w   = 4·2 = 8
    fmt::print("dL/dw = {}  (by hand: 2·err·x = 12)\n", w.grad().item());
    fmt::print("dL/db = {}  (by hand: 2·err   = 4)\n", b.grad().item());
    fmt::print("dL/dx = {}  (by hand: 2·err·w = 8)\n", x.grad().item());
    fmt::print("y needs no gradient, so it has none: {}\n\n", y.grad().defined() ? "defined" : "undefined");
    // [backward]

    // [accumulate]
    // Gradients ADD UP across backward calls. That is what lets a tensor used twice get both
    // contributions, and it is why training loops call zero_grad() before each backward.
    Tensor L2 = (w * x + b - y) * (w * x + b - y);
    L2.backward();
    fmt::print("after a second backward without zero_grad: dL/dw = {} (12 + 12)\n", w.grad().item());
    w.zero_grad();
    fmt::print("after zero_grad: dL/dw = {}\n\n", w.grad().item());
    // [accumulate]

    // [nograd]
    // Inside NoGradGuard nothing is recorded: use it for evaluation and for parameter updates.
    {
        NoGradGuard no_grad;
        Tensor p = w * x + b;
        fmt::print("under NoGradGuard: requires_grad = {}\n", p.requires_grad());
    }
    // A whole vector at once: d/dv sum(v²) = 2v.
    Tensor v = from({1, -2, 3}, {3}, f64).requires_grad_();
    sum(v * v).backward();
    fmt::print("d/dv sum(v*v) = {}  (2v)\n\n", v.grad());
    // [nograd]

    // [matmul]
    // The gradient of a matrix product C = A·B (derived in the README):  dA = dC·Bᵀ,  dB = Aᵀ·dC.
    // With L = Σ G ⊙ C for a fixed G, dC = G.
    Tensor A = from({1, 2, 3, 4, 5, 6}, {2, 3}, f64).requires_grad_();
    Tensor B = from({1, 0, 0, 1, 1, 1}, {3, 2}, f64).requires_grad_();
    const Tensor G = from({1, -1, 2, 0}, {2, 2}, f64);
    sum(matmul(A, B) * G).backward();
    const Tensor dA = matmul(G, transpose(B.detach(), 0, 1)), dB = matmul(transpose(A.detach(), 0, 1), G);
    fmt::print("C = A·B, A (2,3), B (3,2); L = sum(G ⊙ C), so dC = G\n");
    fmt::print("dA by autograd:\n{}\ndC·Bᵀ:\n{}\n", A.grad(), dA);
    fmt::print("dB by autograd:\n{}\nAᵀ·dC:\n{}\n", B.grad(), dB);
    fmt::print("max |difference|: dA {}, dB {}\n\n", max_abs_diff(A.grad(), dA), max_abs_diff(B.grad(), dB));
    // [matmul]

    // [inside]
    // Inside the engine (src/core/autograd.cpp). Every op records a Node: its name, its inputs and
    // its backward function. L = err·err is one node, `mul`, whose two inputs are the same tensor.
    const Node& node = *L.grad_fn();
    fmt::print("L's node: {}, {} inputs, the same tensor twice: {}\n", node.op->name, node.inputs.size(),
               node.inputs[0].impl() == node.inputs[1].impl() ? "yes" : "no");
    // mul's backward adds into the gradient of each input in turn: for a tensor used twice, both
    // contributions land in one buffer. A leaf shows it: d(e·e)/de = e + e.
    Tensor e = scalar(2, f64).requires_grad_();
    (e * e).backward();
    fmt::print("e = 2 used twice in e·e: de = e + e = {}\n", e.grad().item());

    // The topological sort is iterative (an explicit stack, no recursion), so a graph as deep as
    // you like neither overflows the call stack in backward nor when it is freed.
    Tensor x0 = scalar(1, f64).requires_grad_();
    Tensor chain = x0;
    for (int i = 0; i < 100000; ++i) chain = chain * 1.0;
    chain.backward();
    fmt::print("a chain of {} ops: backward ran, d(chain)/dx = {}\n", graph_ops(chain).size(), x0.grad().item());
    chain = Tensor();  // frees the 100 000 nodes, again without recursion

    // No reference cycles: a node owns its inputs, a tensor owns the node that made it, and a
    // backward function that needs the op's output keeps a detached handle. So when the last
    // tensor of a graph goes away, its nodes go too.
    std::weak_ptr<Node> watch;
    {
        Tensor t = scalar(0.5, f64).requires_grad_();
        Tensor u = tanh(t);  // tanh's backward needs u: it keeps u.detach(), not u
        watch = u.grad_fn();
        fmt::print("while u = tanh(t) exists, its node is alive: {}\n", watch.expired() ? "no" : "yes");
    }
    fmt::print("once u is gone, so is its node: {}\n", watch.expired() ? "yes" : "no");
    // [inside]
}
