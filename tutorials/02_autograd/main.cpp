/// \file
/// \brief Tutorial 2: autograd by hand.
///
/// Builds a four-op graph for one step of a linear model, runs backward, and checks every
/// gradient against the chain rule worked out with pencil and paper. See README.md.
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
    fmt::print("d/dv sum(v*v) = {}  (2v)\n", v.grad());
    // [nograd]
}
