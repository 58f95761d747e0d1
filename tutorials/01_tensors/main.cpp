/// \file
/// \brief Tutorial 1: tensors and broadcasting.
///
/// Creates tensors, looks at their shapes and memory, and shows the broadcasting rule that lets a
/// (2, 3) matrix and a (3) vector be added. See README.md next to this file.
#include <qkv/qkv.hpp>

using namespace qkv;

int main() {
    // [create]
    // A tensor is a shape, a dtype and a block of numbers in row-major order.
    Tensor a = from({1, 2, 3, 4, 5, 6}, {2, 3});
    fmt::print("a = {}\n", a);
    fmt::print("shape {}, {} elements, dtype {}\n", shape_str(a.shape()), a.numel(), dtype_name(a.dtype()));
    fmt::print("a[1, 2] = {}  (row 1, column 2 sits at offset 1*3 + 2 = 5)\n\n", a.at({1, 2}));
    // [create]

    // [reshape]
    // reshape reinterprets the same memory: no copy. Writing through one handle shows in the other.
    Tensor flat = reshape(a, {6});
    flat.set({5}, 60);
    fmt::print("after flat[5] = 60, a = {}\n", a);
    fmt::print("shares storage: {}\n", flat.shares_storage(a));
    // transpose must move elements (row-major order changes), so it copies.
    fmt::print("a transposed = {}\n\n", transpose(a, 0, 1));
    // [reshape]

    // [broadcast]
    // Broadcasting: align shapes at the right; a dimension of size 1 (or a missing one) stretches.
    // (2, 3) + (3): the vector is added to every row.
    Tensor bias = from({10, 20, 30}, {3});
    fmt::print("a + bias = {}\n", a + bias);
    // (2, 1) * (1, 3) -> (2, 3): an outer product without a loop.
    Tensor col = from({1, 2}, {2, 1});
    Tensor row = from({1, 10, 100}, {1, 3});
    fmt::print("col * row = {}\n", col * row);
    // Incompatible shapes are an error that names both shapes.
    try {
        add(a, zeros({2}));
    } catch (const Error& e) {
        fmt::print("error: {}\n\n", e.what());
    }
    // [broadcast]

    // [random]
    // Random tensors come from an explicit, seeded generator: same seed, same numbers.
    Generator g1(42), g2(42);
    Tensor r1 = randn({2, 2}, g1);
    Tensor r2 = randn({2, 2}, g2);
    fmt::print("randn with seed 42 = {}\n", r1);
    fmt::print("same seed, same numbers: {}\n", r1.to_vector<float>() == r2.to_vector<float>());
    // Reductions collapse a dimension: sum over columns (dim 1) leaves one number per row.
    fmt::print("row sums of a = {}, mean of a = {}\n", sum(a, 1), mean(a));
    // float64 is there when you need exact numbers (gradient checks use it).
    fmt::print("a in f64 = {}\n", a.to(f64));
    // [random]
}
