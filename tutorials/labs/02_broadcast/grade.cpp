/// \file
/// \brief Grader of lab 2: broadcast shapes and indices, then broadcast_mul and sum_dim forward and
/// backward — against qkv::mul, qkv::sum and qkv's autograd, element by element, and qkv::gradcheck.
#include <catch2/catch.hpp>

#include "02_broadcast/broadcast.hpp"
#include "support/grader.hpp"

using namespace lab::grading;
using qkv::Shape;
using qkv::Tensor;

namespace {

const std::vector<std::pair<Shape, Shape>> kPairs = {
    {{2, 3}, {3}}, {{4, 1, 3}, {5, 1}}, {{3, 1}, {1, 4}}, {{}, {2, 2}}, {{2, 2}, {2, 2}}};

std::string pair_str(const Shape& a, const Shape& b) {
    return "a " + qkv::shape_str(a) + ", b " + qkv::shape_str(b);
}

// qkv's answer for the source indices: broadcast the input's own flat indices to the output shape.
Tensor sources(const Shape& out, const Shape& in) {
    return qkv::expand(qkv::reshape(qkv::arange(qkv::shape_numel(in), qkv::f64), in), out);
}

// Sum a gradient of the output's shape back down to an input's shape (what broadcasting's backward does).
Tensor sum_to(Tensor t, const Shape& shape) {
    while (t.dim() > std::int64_t(shape.size())) t = qkv::sum(t, 0);
    for (std::size_t d = 0; d < shape.size(); ++d)
        if (shape[d] == 1 && t.size(std::int64_t(d)) != 1) t = qkv::sum(t, std::int64_t(d), true);
    return t;
}

// The gradient a backward that *assigns* leaves: for each input element, only the last output
// element that read it counts.
Tensor last_writer(const Tensor& dy_times_other, const Shape& in) {
    const Tensor src = sources(dy_times_other.shape(), in);
    Tensor g = qkv::zeros(in, qkv::f64);
    for (std::int64_t i = 0; i < src.numel(); ++i)
        g.data<double>()[std::int64_t(src.data<double>()[i])] = dy_times_other.data<double>()[i];
    return g;
}

Tensor input(const Shape& s, std::uint64_t seed) {
    qkv::Generator gen(seed);
    return qkv::randn(s, gen, qkv::f64);
}

// x.grad() after your backward, with a clear message when it never arrived.
Tensor grad_of(const Tensor& x, const std::string& name, const std::string& op) {
    require(x.grad().defined(),
            name + ".grad() is undefined after backward: " + op + "'s backward never added into ctx.grad() for " + name +
                " (or the op was not recorded: return qkv::record(op, y, inputs, backward), not y)");
    return x.grad();
}

const std::string kAccumulate =
    "add into the gradient (+=), never assign: several output elements read the same input element "
    "(broadcasting), and each adds its share";

}  // namespace

TEST_CASE("02.1 broadcast_shape") {
    for (const auto& pair : kPairs) {  // (named, not a structured binding: clang before 16 cannot capture bindings in lambdas)
        const Shape& a = pair.first;
        const Shape& b = pair.second;
        const Shape want = qkv::add(qkv::zeros(a), qkv::zeros(b)).shape();
        const Shape got = call("broadcast_shape", [&] { return lab::broadcast_shape(a, b); });
        require(got == want, "broadcast_shape(" + qkv::shape_str(a) + ", " + qkv::shape_str(b) + ") returned " + qkv::shape_str(got) + "; expected " +
                                 qkv::shape_str(want) +
                                 "\n  hint: align the shapes at their *last* dimension; a missing leading dimension "
                                 "counts as 1, and a size 1 stretches to the other size");
    }
    const bool threw = call("broadcast_shape", [] {
        try {
            lab::broadcast_shape({2, 3}, {2});
            return false;
        } catch (const lab::NotImplemented&) {
            throw;
        } catch (const qkv::Error&) {
            return true;
        }
    });
    require(threw, "broadcast_shape((2,3), (2)) must throw qkv::Error (sizes 3 and 2 cannot broadcast); it returned "
                   "a shape\n  hint: qkv::fail(\"broadcast_shape: ...\", ...) throws qkv::Error with a formatted message");
}

TEST_CASE("02.2 broadcast_source") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{2, 3}, {3}}, {{4, 5, 3}, {4, 1, 3}}, {{4, 5, 3}, {5, 1}}, {{3, 4}, {3, 1}}, {{2, 2}, {}}};
    for (const auto& pair : cases) {  // (named, not a structured binding: clang before 16 cannot capture bindings in lambdas)
        const Shape& out = pair.first;
        const Shape& in = pair.second;
        Tensor got = qkv::empty(out, qkv::f64);
        for (std::int64_t i = 0; i < got.numel(); ++i)
            got.data<double>()[i] = double(call("broadcast_source", [&] { return lab::broadcast_source(out, in, i); }));
        check(got, {.what = "broadcast_source(out " + qkv::shape_str(out) + ", in " + qkv::shape_str(in) +
                            ", i) for every output element i (shown at the output's multi-index)",
                    .expected = sources(out, in),
                    .atol = 0,
                    .mistakes = {{"flat % numel(in) is right only when the broadcast dimensions are leading ones: take "
                                  "the output's multi-index, then read index 0 wherever the input's size is 1",
                                  [out, in] {
                                      Tensor t = qkv::empty(out, qkv::f64);
                                      for (std::int64_t i = 0; i < t.numel(); ++i)
                                          t.data<double>()[i] = double(i % qkv::shape_numel(in));
                                      return t;
                                  }}}});
    }
}

TEST_CASE("02.3 broadcast_mul forward") {
    std::uint64_t seed = 20;
    for (const auto& pair : kPairs) {  // (named, not a structured binding: clang before 16 cannot capture bindings in lambdas)
        const Shape& sa = pair.first;
        const Shape& sb = pair.second;
        const Tensor a = input(sa, seed++), b = input(sb, seed++);
        const Tensor y = call("broadcast_mul", [&] { return lab::broadcast_mul(a, b); });
        check(y, {.what = "broadcast_mul(a, b), " + pair_str(sa, sb), .expected = qkv::mul(a, b)});
    }
}

TEST_CASE("02.4 broadcast_mul backward") {
    std::uint64_t seed = 40;
    for (const auto& pair : kPairs) {  // (named, not a structured binding: clang before 16 cannot capture bindings in lambdas)
        const Shape& sa = pair.first;
        const Shape& sb = pair.second;
        Tensor a = input(sa, seed++).requires_grad_(), b = input(sb, seed++).requires_grad_();
        const Tensor dy = input(qkv::mul(a, b).shape(), seed++);
        qkv::mul(a, b).backward(dy);  // the answer key
        const Tensor want_a = a.grad(), want_b = b.grad();
        a.set_grad(Tensor());
        b.set_grad(Tensor());
        const Tensor y = call("broadcast_mul", [&] { return lab::broadcast_mul(a, b); });
        require(y.grad_fn() != nullptr, "broadcast_mul's output has no grad_fn: return qkv::record(op, y, {a, b}, "
                                        "backward) so that autograd knows how to reach a and b");
        call("broadcast_mul's backward", [&] { y.backward(dy); });
        const std::string what = " after broadcast_mul(a, b).backward(dy), " + pair_str(sa, sb);
        const std::string swapped = "each input's gradient is dy times the *other* input: ∂(a·b)/∂a = b";
        check(grad_of(a, "a", "broadcast_mul"),
              {.what = "a.grad()" + what,
               .expected = want_a,
               .mistakes = {{swapped, [&] { return sum_to(dy * a.detach(), sa); }},
                            {kAccumulate, [&] { return last_writer(dy * b.detach(), sa); }}}});
        check(grad_of(b, "b", "broadcast_mul"),
              {.what = "b.grad()" + what,
               .expected = want_b,
               .mistakes = {{swapped, [&] { return sum_to(dy * b.detach(), sb); }},
                            {kAccumulate, [&] { return last_writer(dy * a.detach(), sb); }}}});
    }
    // One tensor in both places: its gradient is the sum of both uses, 2·a·dy.
    Tensor a = input({2, 3}, 60).requires_grad_();
    const Tensor dy = input({2, 3}, 61);
    call("broadcast_mul", [&] { return lab::broadcast_mul(a, a); }).backward(dy);
    check(grad_of(a, "a", "broadcast_mul"), {.what = "a.grad() after broadcast_mul(a, a).backward(dy), a (2, 3)",
                                             .expected = 2.0 * a.detach() * dy,
                                             .mistakes = {{kAccumulate, [&] { return a.detach() * dy; }}}});
    // And qkv's own checker: central differences against your backward, every element.
    const auto report = call("broadcast_mul", [] {
        return qkv::gradcheck([](const std::vector<Tensor>& in) { return lab::broadcast_mul(in[0], in[1]); },
                              {input({4, 1, 3}, 62), input({5, 1}, 63)});
    });
    require(report.ok, "qkv::gradcheck of broadcast_mul, a (4,1,3) and b (5,1):\n  " + report.summary());
}

TEST_CASE("02.5 sum_dim forward") {
    const Tensor x = input({2, 3, 4}, 70);
    for (std::int64_t dim = 0; dim < 3; ++dim)
        for (bool keepdim : {false, true}) {
            const Tensor y = call("sum_dim", [&] { return lab::sum_dim(x, dim, keepdim); });
            check(y, {.what = fmt::format("sum_dim(x, {}, {}), x (2, 3, 4)", dim, keepdim),
                      .expected = qkv::sum(x, dim, keepdim)});
        }
}

TEST_CASE("02.6 sum_dim backward") {
    for (std::int64_t dim = 0; dim < 3; ++dim)
        for (bool keepdim : {false, true}) {
            Tensor x = input({2, 3, 4}, 80).requires_grad_();
            const Tensor dy = input(qkv::sum(x, dim, keepdim).shape(), 81 + std::uint64_t(dim));
            qkv::sum(x, dim, keepdim).backward(dy);
            const Tensor want = x.grad();
            x.set_grad(Tensor());
            const Tensor y = call("sum_dim", [&] { return lab::sum_dim(x, dim, keepdim); });
            require(y.grad_fn() != nullptr, "sum_dim's output has no grad_fn: return qkv::record(op, y, {x}, backward)");
            call("sum_dim's backward", [&] { y.backward(dy); });
            check(grad_of(x, "x", "sum_dim"),
                  {.what = fmt::format("x.grad() after sum_dim(x, {}, {}).backward(dy), x (2, 3, 4)", dim, keepdim),
                   .expected = want,
                   .mistakes = {{"each x element's gradient is the dy of the sum it went into (∂y/∂x = 1, times dy), "
                                 "not 1",
                                 [&] { return qkv::ones_like(want); }}}});
        }
    const auto report = call("sum_dim", [] {
        return qkv::gradcheck([](const std::vector<Tensor>& in) { return lab::sum_dim(in[0], 1, false); },
                              {input({3, 4, 2}, 90)});
    });
    require(report.ok, "qkv::gradcheck of sum_dim(x, 1), x (3,4,2):\n  " + report.summary());
}
