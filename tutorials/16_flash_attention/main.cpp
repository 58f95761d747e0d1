// Tutorial 16: attention without the T × T matrix — online softmax and the tiled ("flash") kernel.
//
// 1. Online softmax on one row: a running maximum and sum, corrected block by block, give exactly
//    softmax's weights, and the weighted sum of values comes out right too.
// 2. The backward needs only one number per row: P is recomputed from lse = m + log ℓ, and the
//    softmax backward's row sum equals rowsum(dO ⊙ O).
// 3. qkv's two attention kernels side by side: the same results, and memory and time from T = 64 to
//    T_max (4096, or --max-t N).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <qkv/qkv.hpp>

using namespace qkv;

namespace {

// [online]
// Softmax of one row, and the weighted sum of values o = Σ_j p_j v_j, with the keys arriving in
// blocks: m is the largest score so far, l the sum of e^(s_j − m) so far, o the sum of
// e^(s_j − m)·v_j so far. A larger maximum rescales what was summed before by e^(m_old − m_new).
struct Online {
    double m = -INFINITY, l = 0, o = 0;
    void add_block(const std::vector<double>& s, const std::vector<double>& v, std::size_t begin, std::size_t end) {
        double m_new = m;
        for (std::size_t j = begin; j < end; ++j) m_new = std::max(m_new, s[j]);
        const double correction = std::exp(m - m_new);  // e^−∞ = 0 for the first block
        l *= correction;
        o *= correction;
        for (std::size_t j = begin; j < end; ++j) {
            l += std::exp(s[j] - m_new);
            o += std::exp(s[j] - m_new) * v[j];
        }
        m = m_new;
    }
};
// [online]

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Measured {
    double ms;
    double peak_mib;
    Tensor out, dq;
};

// Forward + backward of causal attention on (1, 4, T, 64), one kernel; peak tensor memory beyond the
// inputs, measured with qkv::memory_stats().
Measured run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, AttentionKernel kernel) {
    Tensor qq = q, kk = k, vv = v;
    qq.set_grad(Tensor());
    kk.set_grad(Tensor());
    vv.set_grad(Tensor());
    AttentionOptions o;
    o.causal = true;
    o.kernel = kernel;
    reset_peak_memory();
    const std::int64_t base = memory_stats().live_bytes;
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor out = attention(qq, kk, vv, o);
    out.backward(dout);
    const double ms = 1000 * seconds_since(t0);
    return {ms, double(memory_stats().peak_bytes - base) / (1 << 20), out.detach(), qq.grad()};
}

double relative(const Tensor& a, const Tensor& b) { return max_abs_diff(a, b) / max_abs_diff(b, zeros_like(b)); }

}  // namespace

int main(int argc, char** argv) {
    std::int64_t max_t = 4096;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--max-t" && i + 1 < argc) {
            max_t = std::atoll(argv[++i]);
        } else {
            fmt::print(stderr, "usage: 16_flash_attention [--max-t N]\n");
            return 2;
        }
    }
    // One thread: the memory column then does not depend on how many cores this machine has (the
    // materialising backward keeps one T×T scratch matrix per thread).
    set_num_threads(1);

    fmt::print("1. Online softmax on one row of 10 scores, keys in blocks of 4\n");
    const std::vector<double> s = {0.5, 2.0, -1.0, 0.3, 4.0, 1.5, -3.0, 0.0, 6.0, 2.5};
    const std::vector<double> v = {1, -2, 3, 0.5, -1, 2, 4, -0.5, 1.5, -3};
    Online row;
    for (std::size_t begin = 0; begin < s.size(); begin += 4) {
        const std::size_t end = std::min(begin + 4, s.size());
        row.add_block(s, v, begin, end);
        fmt::print("   after keys {}..{}: m = {:.1f}, l = {:.6f}\n", begin, end - 1, row.m, row.l);
    }
    // The direct way, all at once: softmax with the row's maximum (6.0) subtracted, then Σ p_j v_j.
    const Tensor p = softmax(from(s, {10}));  // a vector<double> gives an f64 tensor
    double direct_o = 0;
    for (int j = 0; j < 10; ++j) direct_o += p.at({j}) * v[std::size_t(j)];
    double direct_l = 0;
    for (double x : s) direct_l += std::exp(x - 6.0);
    fmt::print("   all at once:       m = 6.0, l = {:.6f}\n", direct_l);
    fmt::print("   o/l = {:.15f}   softmax(s)·v = {:.15f}   difference {:.1e}\n", row.o / row.l, direct_o,
               std::abs(row.o / row.l - direct_o));

    fmt::print("\n2. What the backward needs: lse = m + log l, one number per row\n");
    {
        Generator g(3);
        const Tensor S = randn({6, 9}, g, f64), V = randn({9, 4}, g, f64), dO = randn({6, 4}, g, f64);
        const Tensor P = softmax(S, -1);
        const Tensor O = matmul(P, V);
        // lse per row, and P rebuilt from it: e^(S − lse).
        const Tensor lse = add(max(S, 1, true), log(sum(exp(sub(S, max(S, 1, true))), 1, true)));
        const Tensor P_again = exp(sub(S, lse));
        fmt::print("   P from lse vs stored P: max difference {:.1e}\n", max_abs_diff(P_again, P));
        // The softmax backward's row sum, two ways: rowsum(dP ⊙ P) with dP = dO·Vᵀ, and rowsum(dO ⊙ O).
        const Tensor dP = matmul(dO, transpose(V, 0, 1));
        const Tensor delta_from_P = sum(mul(dP, P), 1);
        const Tensor delta_from_O = sum(mul(dO, O), 1);
        fmt::print("   rowsum(dP ⊙ P) vs rowsum(dO ⊙ O): max difference {:.1e}\n",
                   max_abs_diff(delta_from_P, delta_from_O));
    }

    fmt::print("\n3. Causal attention, (B, H, T, D) = (1, 4, T, 64), f32, forward + backward, 1 thread\n");
    fmt::print("   {:>5}  {:>15}  {:>10}  {:>15}  {:>10}  {:>11}\n", "T", "materialize MiB", "tiled MiB", "materialize ms",
               "tiled ms", "agree (1e-6)");
    for (std::int64_t T = 64; T <= max_t; T *= 2) {
        Generator g(7);
        const Shape shape{1, 4, T, 64};
        const Tensor q = randn(shape, g).requires_grad_(), k = randn(shape, g).requires_grad_();
        const Tensor v = randn(shape, g).requires_grad_(), dout = randn(shape, g);
        const Measured mat = run(q, k, v, dout, AttentionKernel::materialize);
        const Measured til = run(q, k, v, dout, AttentionKernel::tiled);
        const bool agree = relative(til.out, mat.out) <= 1e-6 && relative(til.dq, mat.dq) <= 1e-6;
        fmt::print("   {:>5}  {:>15.1f}  {:>10.1f}  {:>15.1f}  {:>10.1f}  {:>11}\n", T, mat.peak_mib, til.peak_mib, mat.ms,
                   til.ms, agree ? "yes" : "NO");
    }
    return 0;
}
