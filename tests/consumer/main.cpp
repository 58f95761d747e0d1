// Uses the installed headers and library: a matmul with a gradient.
#include <qkv/qkv.hpp>

int main() {
    qkv::Tensor a = qkv::from({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
    qkv::Tensor b = qkv::ones({3, 2});
    qkv::Tensor c = qkv::matmul(a, b);
    qkv::sum(c).backward();
    const bool ok = c.at({1, 1}) == 15.0 && a.grad().at({0, 0}) == 2.0;
    fmt::print("consumer: 2x3 @ 3x2 {}\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
