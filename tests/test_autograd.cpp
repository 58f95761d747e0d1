// Autograd: gradients by hand, accumulation, grad mode, detach, deep graphs, determinism.
#include <catch2/catch.hpp>

#include "qkv/qkv.hpp"

using namespace qkv;

TEST_CASE("backward of a small expression matches pencil and paper", "[autograd]") {
    // L = sum(w ⊙ x + b)² ... keep it tiny: y = (a·b + a)², a = 2, b = 3 → y = 64
    // dy/da = 2(ab + a)(b + 1) = 2·8·4 = 64,  dy/db = 2(ab + a)·a = 2·8·2 = 32
    Tensor a = scalar(2, f64).requires_grad_();
    Tensor b = scalar(3, f64).requires_grad_();
    Tensor y = pow(a * b + a, 2.0);
    CHECK(y.item() == 64.0);
    y.backward();
    CHECK(a.grad().item() == 64.0);
    CHECK(b.grad().item() == 32.0);
}

TEST_CASE("a tensor used twice receives the sum of both gradients", "[autograd]") {
    Tensor x = from({1, 2, 3}, {3}, f64).requires_grad_();
    Tensor y = sum(x * x + x);  // dy/dx = 2x + 1
    y.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 5, 7});
}

TEST_CASE("diamond graph: a shared intermediate gets both consumers' gradients first", "[autograd]") {
    Tensor x = scalar(0.5, f64).requires_grad_();
    Tensor h = tanh(x);
    Tensor y = h * h + exp(h);  // dy/dh = 2h + e^h ; dh/dx = 1 - h²
    y.backward();
    const double hv = std::tanh(0.5);
    CHECK(x.grad().item() == Approx((2 * hv + std::exp(hv)) * (1 - hv * hv)).epsilon(1e-14));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad", "[autograd]") {
    Tensor w = from({1, 2}, {2}, f64).requires_grad_();
    sum(w * 3.0).backward();
    CHECK(w.grad().to_vector<double>() == std::vector<double>{3, 3});
    sum(w * 3.0).backward();
    CHECK(w.grad().to_vector<double>() == std::vector<double>{6, 6});
    w.zero_grad();
    CHECK(w.grad().to_vector<double>() == std::vector<double>{0, 0});
    w.set_grad(Tensor());
    CHECK_FALSE(w.grad().defined());
}

TEST_CASE("backward with an explicit upstream gradient", "[autograd]") {
    Tensor x = from({1, 2, 3}, {3}, f64).requires_grad_();
    Tensor y = x * 2.0;
    y.backward(from({1, 10, 100}, {3}, f64));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 20, 200});
    // Only leaves keep .grad; intermediates release theirs.
    CHECK_FALSE(y.grad().defined());
    CHECK_THROWS_WITH(y.backward(ones({2}, f64)), Catch::Contains("does not match output (3)"));
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("3 elements"));
}

TEST_CASE("requires_grad propagates - NoGradGuard and detach stop it", "[autograd]") {
    Tensor w = ones({2}).requires_grad_();
    Tensor c = ones({2});
    CHECK((w + c).requires_grad());
    CHECK_FALSE((c + c).requires_grad());
    CHECK((w + c).grad_fn() != nullptr);
    CHECK(w.is_leaf());
    CHECK_FALSE((w + c).is_leaf());
    {
        NoGradGuard guard;
        CHECK_FALSE(grad_enabled());
        CHECK_FALSE((w + c).requires_grad());
    }
    CHECK(grad_enabled());
    Tensor d = (w * 2.0).detach();
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    CHECK_THROWS_WITH((c + c).backward(ones({2})), Catch::Contains("does not require grad"));
    CHECK_THROWS_WITH((w * 2.0).requires_grad_(), Catch::Contains("only leaf tensors"));
    CHECK_THROWS_WITH(from(std::vector<std::int32_t>{1}, {1}).requires_grad_(), Catch::Contains("i32"));
}

TEST_CASE("a branch that does not require grad is skipped", "[autograd]") {
    Tensor w = from({1, 2}, {2}, f64).requires_grad_();
    Tensor k = from({5, 6}, {2}, f64);
    sum(w * k).backward();
    CHECK(w.grad().to_vector<double>() == std::vector<double>{5, 6});
    CHECK_FALSE(k.grad().defined());
}

TEST_CASE("a chain of 100000 ops neither overflows the stack in backward nor in teardown", "[autograd]") {
    Tensor x = scalar(1, f64).requires_grad_();
    {
        Tensor y = x;
        for (int i = 0; i < 100000; ++i) y = y * 1.0;
        y = y * 2.0;
        y.backward();
    }  // the whole chain is destroyed here, iteratively
    CHECK(x.grad().item() == 2.0);
}

TEST_CASE("backward is deterministic: the same graph gives bit-identical gradients", "[autograd]") {
    auto run = [] {
        Generator g(3);
        Tensor w = randn({8, 8}, g).requires_grad_();
        Tensor x = randn({4, 8}, g);
        Tensor y = softmax(matmul(tanh(matmul(x, w)), w), -1);
        sum(y * y).backward();
        return w.grad().to_vector<float>();
    };
    CHECK(run() == run());
}

TEST_CASE("graph_ops lists the ops of a graph in backward order", "[autograd]") {
    Tensor w = ones({2}).requires_grad_();
    CHECK(graph_ops(sum(exp(w) * w)) == std::vector<std::string>{"sum", "mul", "exp"});
    CHECK(graph_ops(w).empty());
}

TEST_CASE("user-defined ops with record() take part in backward", "[autograd]") {
    static const OpDef kCube{"cube", false};
    auto cube = [](const Tensor& x) {
        Tensor y = empty(x.shape(), x.dtype());
        for (std::int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = std::pow(x.data<double>()[i], 3);
        return record(kCube, y, {x}, [x](const Tensor& dy, BackwardContext& ctx) {
            if (Tensor* dx = ctx.grad(0))
                for (std::int64_t i = 0; i < x.numel(); ++i)
                    dx->data<double>()[i] += 3 * x.data<double>()[i] * x.data<double>()[i] * dy.data<double>()[i];
        });
    };
    Tensor x = from({1, 2}, {2}, f64).requires_grad_();
    sum(cube(x)).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 12});
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return cube(in[0]); }, {from({0.5, -1.5}, {2}, f64)}).ok);
    // Custom ops stay out of the library's registry.
    for (const OpDef* op : op_registry()) CHECK(std::string(op->name) != "cube");
}

TEST_CASE("the graph frees itself: no node outlives its tensors", "[autograd]") {
    std::weak_ptr<Node> watch;
    {
        Tensor w = ones({3}).requires_grad_();
        Tensor y = sum(tanh(w) * w);
        watch = y.grad_fn();
        y.backward();
        CHECK_FALSE(watch.expired());
    }
    CHECK(watch.expired());
}
