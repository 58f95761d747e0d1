// nn::Module: registration, dotted names, train/eval, dtype conversion, tied weights.
#include <catch2/catch.hpp>

#include "qkv/nn/module.hpp"
#include "qkv/qkv.hpp"

using namespace qkv;

namespace {
struct Leaf : nn::Module {
    Tensor w = register_parameter("weight", ones({2, 3}));
    Tensor b = register_parameter("bias", zeros({3}));
};
struct Tree : nn::Module {
    Leaf first, second;
    Tensor scale = register_parameter("scale", ones({1}));
    Tree() {
        register_module("first", first);
        register_module("second", second);
    }
};
}  // namespace

TEST_CASE("named_parameters walks the tree with dotted names", "[nn][module]") {
    Tree t;
    std::vector<std::string> names;
    for (const auto& [n, p] : t.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"scale", "first.weight", "first.bias", "second.weight", "second.bias"});
    CHECK(t.num_parameters() == 1 + 2 * 9);
    for (const auto& p : t.parameters()) CHECK(p.requires_grad());
    // The registry holds handles to the members themselves.
    t.first.w.set({0, 0}, 5);
    CHECK(t.named_parameters()[1].second.at({0, 0}) == 5.0);
}

TEST_CASE("train/eval reach every submodule - zero_grad clears every gradient", "[nn][module]") {
    Tree t;
    CHECK(t.second.is_training());
    t.eval();
    CHECK_FALSE(t.first.is_training());
    CHECK_FALSE(t.second.is_training());
    t.train();
    CHECK(t.second.is_training());
    sum(matmul(ones({1, 2}), t.first.w) * t.scale).backward();
    CHECK(t.first.w.grad().at({0, 0}) == 1.0);
    t.zero_grad();
    CHECK(t.first.w.grad().at({0, 0}) == 0.0);
}

TEST_CASE("to(f64) converts parameters in place", "[nn][module]") {
    Tree t;
    t.to(f64);
    CHECK(t.first.w.dtype() == f64);
    CHECK(t.named_parameters()[1].second.dtype() == f64);
    CHECK(t.first.w.at({1, 2}) == 1.0);
    CHECK(t.first.w.requires_grad());
}

TEST_CASE("to() rejects non-floating dtypes and leaves the parameters as they were", "[nn][module][errors]") {
    using Catch::Matchers::Contains;
    Tree t;
    CHECK_THROWS_WITH(t.to(i32), "Module::to: parameters must be f32 or f64, got i32");
    CHECK_THROWS_WITH(t.to(b8), "Module::to: parameters must be f32 or f64, got b8");
    CHECK(t.first.w.dtype() == f32);
    CHECK(t.first.w.requires_grad());
    t.to(f64);  // a model in f64 is still refused an integer dtype
    CHECK_THROWS_WITH(t.to(i32), Contains("got i32"));
    CHECK(t.scale.dtype() == f64);
}

TEST_CASE("tied weights are listed once, bad names are rejected", "[nn][module]") {
    struct Tied : nn::Module {
        Leaf a;
        Tensor shared;
        Tied() {
            register_module("a", a);
            shared = register_parameter("shared", a.w);  // the same tensor under a second name
        }
    } t;
    CHECK(t.named_parameters().size() == 2);
    struct Bad : nn::Module {
        Bad() { register_parameter("x.y", ones({1})); }
    };
    CHECK_THROWS_WITH(Bad(), Catch::Contains("must be non-empty and contain no '.'"));
}
