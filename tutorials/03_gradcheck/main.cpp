/// \file
/// \brief Tutorial 3: gradient checking, and catching a broken backward.
///
/// Compares analytic gradients with central finite differences: first for a small network made
/// of qkv ops, then for a hand-written op whose backward has a deliberate mistake. See README.md.
#include <qkv/qkv.hpp>

using namespace qkv;

// [broken]
// A custom op: y = x³, with a backward that "forgets" the factor 3 (dy/dx should be 3x²).
Tensor cube_wrong(const Tensor& x) {
    static const OpDef kCube{"cube_wrong", /*builtin=*/false};
    Tensor y = empty(x.shape(), x.dtype());
    const double* px = x.data<double>();
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = px[i] * px[i] * px[i];
    return record(kCube, y, {x}, [x](const Tensor& dy, BackwardContext& ctx) {
        Tensor* dx = ctx.grad(0);
        if (!dx) return;
        for (std::int64_t i = 0; i < x.numel(); ++i) {
            const double xi = x.data<double>()[i];
            dx->data<double>()[i] += xi * xi * dy.data<double>()[i];  // BUG: should be 3·xi²·dy
        }
    });
}
// [broken]

int main() {
    Generator gen(0);

    // [finite]
    // The idea, on one number: f(x) = tanh(x) at x = 0.5.
    //   numeric  (f(x+ε) − f(x−ε)) / 2ε      with ε = 1e-6
    //   analytic 1 − tanh²(x)                 from backward
    Tensor x = scalar(0.5, f64).requires_grad_();
    tanh(x).backward();
    const double eps = 1e-6;
    const double numeric = (std::tanh(0.5 + eps) - std::tanh(0.5 - eps)) / (2 * eps);
    fmt::print("d tanh/dx at 0.5: analytic {:.10f}, numeric {:.10f}\n\n", x.grad().item(), numeric);
    // [finite]

    // [network]
    // gradcheck does this for every element of every input. Here: a two-layer network
    // f(X, W1, W2) = softmax(tanh(X·W1)·W2), checked at random f64 inputs.
    const Tensor X = randn({4, 3}, gen, f64);
    const Tensor W1 = randn({3, 5}, gen, f64);
    const Tensor W2 = randn({5, 2}, gen, f64);
    auto net = [](const std::vector<Tensor>& in) { return softmax(matmul(tanh(matmul(in[0], in[1])), in[2]), -1); };
    const GradcheckReport good = gradcheck(net, {X, W1, W2});
    fmt::print("{}\n", good.summary());
    fmt::print("ops in the checked graph: {}\n\n", fmt::join(good.ops, ", "));
    // [network]

    // [catch]
    // Now the broken op. gradcheck reports the worst element: which input, which index, and the
    // two values; the analytic one is a third of the numeric one, the missing factor 3.
    const GradcheckReport bad = gradcheck([](const std::vector<Tensor>& in) { return cube_wrong(in[0]); },
                                          {from({0.5, -1.0, 2.0}, {3}, f64)});
    fmt::print("{}\n", bad.summary());
    fmt::print("ratio analytic/numeric = {:.4f}\n", bad.analytic / bad.numeric);
    // [catch]
    return good.ok && !bad.ok ? 0 : 1;
}
