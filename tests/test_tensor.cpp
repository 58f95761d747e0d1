// Tensors: creation, shapes, element access, dtypes, storage sharing, the RNG and printing.
#include <catch2/catch.hpp>
#include <cmath>

#include "qkv/qkv.hpp"

using namespace qkv;

TEST_CASE("creation functions give the right shape, dtype and values", "[tensor]") {
    const Tensor z = zeros({2, 3});
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.dim() == 2);
    CHECK(z.numel() == 6);
    CHECK(z.dtype() == f32);
    CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
    CHECK(ones({4}, f64).to_vector<double>() == std::vector<double>(4, 1.0));
    CHECK(full({2, 2}, 2.5).to_vector<float>() == std::vector<float>(4, 2.5f));
    CHECK(arange(5).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(arange(1.0, 2.0, 0.25, f64).to_vector<double>() == std::vector<double>{1.0, 1.25, 1.5, 1.75});
    CHECK(arange(3.0, 0.0, -1.0).to_vector<float>() == std::vector<float>{3, 2, 1});
    CHECK(arange(0).numel() == 0);
    const Tensor s = scalar(3.5, f64);
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.item() == 3.5);
    const Tensor f = from({1, 2, 3, 4, 5, 6}, {2, 3}, f64);
    CHECK(f.at({1, 2}) == 6.0);
    CHECK(f.at({-1, 0}) == 4.0);
    CHECK(from(std::vector<std::int32_t>{7, 8}, {2}).dtype() == i32);
    CHECK(from(std::vector<bool>{true, false}, {2}).dtype() == b8);
    CHECK(zeros({0, 3}).numel() == 0);
    CHECK(zeros_like(f).dtype() == f64);
    CHECK(ones_like(f).shape() == Shape{2, 3});
}

TEST_CASE("size() and element access check their indices", "[tensor]") {
    Tensor t = from({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(t.size(0) == 2);
    CHECK(t.size(-1) == 3);
    t.set({0, 1}, 20);
    CHECK(t.at({0, 1}) == 20.0);
    CHECK_THROWS_WITH(t.at({2, 0}), Catch::Contains("index 2 out of range for dim 0 of size 2"));
    CHECK_THROWS_WITH(t.at({0}), Catch::Contains("got 1 indices"));
    CHECK_THROWS_WITH(t.size(2), Catch::Contains("dim 2 out of range"));
    CHECK_THROWS_WITH(t.item(), Catch::Contains("6 elements"));
    CHECK_THROWS_WITH(t.data<double>(), Catch::Contains("tensor is f32, asked for f64"));
}

TEST_CASE("handles share storage - clone and to() copy", "[tensor]") {
    Tensor a = from({1, 2, 3, 4}, {2, 2});
    Tensor b = a;  // a handle
    b.set({0, 0}, 9);
    CHECK(a.at({0, 0}) == 9.0);
    Tensor r = reshape(a, {4});  // shares storage
    CHECK(r.shares_storage(a));
    r.set({3}, -1);
    CHECK(a.at({1, 1}) == -1.0);
    Tensor c = a.clone();
    CHECK_FALSE(c.shares_storage(a));
    c.set({0, 0}, 0);
    CHECK(a.at({0, 0}) == 9.0);
    const Tensor d = a.to(f64);
    CHECK(d.dtype() == f64);
    CHECK(d.to_vector<double>() == std::vector<double>{9, 2, 3, -1});
    CHECK(from({1.7, -1.7}, {2}).to(i32).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, -1});
    CHECK(transpose(a, 0, 1).shares_storage(a) == false);  // documented: transposes copy
}

TEST_CASE("conversion to b8 is a truth test: nonzero becomes 1", "[tensor]") {
    using B = std::vector<std::uint8_t>;
    // from f32, f64 and i32: 2, -1, 0.5 and NaN are all "true", exactly as bool(x) in C++
    CHECK(from({2, 0, -1, 0.5, NAN}, {5}).to(b8).to_vector<std::uint8_t>() == B{1, 0, 1, 1, 1});
    CHECK(from({2, 0, -3}, {3}, f64).to(b8).to_vector<std::uint8_t>() == B{1, 0, 1});
    CHECK(from(std::vector<std::int32_t>{2, 0, 300, -1}, {4}).to(b8).to_vector<std::uint8_t>() == B{1, 0, 1, 1});
    CHECK(from({2, 0}, {2}, b8).to_vector<std::uint8_t>() == B{1, 0});  // from() converts with to()
    // filling and setting convert the same way
    CHECK(full({2}, 2.0, b8).to_vector<std::uint8_t>() == B{1, 1});
    Tensor m = zeros({2}, b8);
    m.set({1}, 7);
    CHECK(m.to_vector<std::uint8_t>() == B{0, 1});
    // and back: b8 → f32 gives 0 and 1
    CHECK(from({2, 0}, {2}).to(b8).to(f32).to_vector<float>() == std::vector<float>{1, 0});
}

TEST_CASE("b8 creation stores only 0 or 1: from(uint8) maps nonzero to 1, arange refuses b8", "[tensor]") {
    using B = std::vector<std::uint8_t>;
    CHECK(from(B{2, 0, 1, 255}, {4}).to_vector<std::uint8_t>() == B{1, 0, 1, 1});
    CHECK(from(B{2}, {1}).to(f32).at({0}) == 1.0);  // reads back as true, not 2
    CHECK(from(std::vector<bool>{true, false}, {2}).to_vector<std::uint8_t>() == B{1, 0});
    // arange(3, b8) would be 0, 1, 1 (or 0, 1, 2 before): neither is a range
    CHECK_THROWS_WITH(arange(3, b8), "arange: dtype must be f32, f64 or i32, got b8 (b8 holds only 0 or 1)");
    CHECK_THROWS_WITH(arange(0.0, 4.0, 2.0, b8), "arange: dtype must be f32, f64 or i32, got b8 (b8 holds only 0 or 1)");
    CHECK(arange(3, i32).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1, 2});
}

TEST_CASE("tensor memory is 64-byte aligned", "[tensor]") {
    for (std::int64_t n : {1, 3, 17, 1000}) {
        const Tensor t = empty({n});
        CHECK(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64 == 0);
    }
}

TEST_CASE("Generator: same seed, same stream - state save and restore", "[tensor][rng]") {
    Generator g1(42), g2(42), g3(43);
    const Tensor a = randn({100}, g1);
    const Tensor b = randn({100}, g2);
    const Tensor c = randn({100}, g3);
    CHECK(a.to_vector<float>() == b.to_vector<float>());
    CHECK(a.to_vector<float>() != c.to_vector<float>());
    const auto state = g1.state();
    const double next = g1.normal();
    g2.set_state(state);
    CHECK(g2.normal() == next);
    CHECK_THROWS_WITH(g2.set_state({0, 0, 0, 0}), Catch::Contains("all-zero"));
    // below(n) stays in range and hits every value.
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 700; ++i) seen[g1.below(7)]++;
    for (int s : seen) CHECK(s > 50);
}

TEST_CASE("randn and uniform have the right statistics", "[tensor][rng]") {
    Generator g(7);
    const auto n = randn({20000}, g, f64).to_vector<double>();
    double m = 0, v = 0;
    for (double x : n) m += x;
    m /= double(n.size());
    for (double x : n) v += (x - m) * (x - m);
    v /= double(n.size());
    // Standard errors: mean 1/sqrt(20000) ≈ 0.007, variance ≈ 0.01; 5 sigma bounds.
    CHECK(std::fabs(m) < 0.035);
    CHECK(std::fabs(v - 1.0) < 0.05);
    const auto u = uniform({20000}, -2, 3, g, f64).to_vector<double>();
    double um = 0, lo = 1e9, hi = -1e9;
    for (double x : u) {
        um += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    CHECK(std::fabs(um / double(u.size()) - 0.5) < 0.05);
    CHECK(lo >= -2.0);
    CHECK(hi < 3.0);
}

TEST_CASE("printing looks like PyTorch", "[tensor][print]") {
    const Tensor t = from({1, -2.5, 3, 4}, {2, 2});
    CHECK(fmt::format("{}", t) == "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])");
    CHECK(fmt::format("{}", scalar(2, f64)) == "tensor(2.0000, dtype=f64)");
    CHECK(fmt::format("{}", from(std::vector<std::int32_t>{3, 14}, {2})) == "tensor([ 3, 14], dtype=i32)");
    CHECK(fmt::format("{}", from(std::vector<bool>{true, false}, {2})) == "tensor([ true, false], dtype=b8)");
    CHECK(fmt::format("{}", zeros({0, 3})) == "tensor([], shape=(0,3))");
    CHECK(fmt::format("{}", from({1e-6, 1}, {2})) == "tensor([1.0000e-06, 1.0000e+00])");
    Tensor w = ones({2}).requires_grad_();
    CHECK(fmt::format("{}", w) == "tensor([1.0000, 1.0000], requires_grad)");
    CHECK(fmt::format("{}", w * 2.0) == "tensor([2.0000, 2.0000], grad_fn=mul_scalar)");
    CHECK(fmt::format("{}", Tensor()) == "tensor(undefined)");
    // 3-d: a blank line between matrices.
    CHECK(fmt::format("{}", reshape(arange(8), {2, 2, 2})) ==
          "tensor([[[0.0000, 1.0000],\n         [2.0000, 3.0000]],\n\n        [[4.0000, 5.0000],\n         [6.0000, 7.0000]]])");
}

TEST_CASE("printing summarises large tensors", "[tensor][print]") {
    const std::string s = fmt::format("{}", reshape(arange(2000), {100, 20}));
    CHECK(s.find("...") != std::string::npos);
    CHECK(s.size() < 1200);
    CHECK(s.find("1999.0000") != std::string::npos);  // last element shown
    CHECK(s.find("1000.0000") == std::string::npos);  // a middle one is not
}

TEST_CASE("memory_stats counts tensor bytes alive, their peak and allocations", "[tensor][memory]") {
    const MemoryStats before = memory_stats();
    reset_peak_memory();
    CHECK(memory_stats().peak_bytes == before.live_bytes);
    {
        const Tensor a = zeros({1000}, f32);  // 4000 bytes
        const Tensor b = zeros({10, 10}, f64);  // 800 bytes
        const MemoryStats during = memory_stats();
        CHECK(during.live_bytes == before.live_bytes + 4800);
        CHECK(during.peak_bytes == before.live_bytes + 4800);
        CHECK(during.allocations == before.allocations + 2);
        const Tensor view = reshape(a, {10, 100});  // shares a's storage: no new bytes
        CHECK(memory_stats().live_bytes == during.live_bytes);
    }
    const MemoryStats after = memory_stats();
    CHECK(after.live_bytes == before.live_bytes);
    CHECK(after.peak_bytes == before.live_bytes + 4800);  // the peak remembers
    reset_peak_memory();
    CHECK(memory_stats().peak_bytes == before.live_bytes);
}
