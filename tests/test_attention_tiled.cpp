// The tiled attention kernel (online softmax, kernels/attention.cpp) against the materialising one:
// the same outputs and gradients — to 1e-12 of each tensor's largest value in f64 and 1e-6 in f32 —
// for every layout (attention, head_attention, head_attention_qkv), block edges, causal and padding
// masks, fully masked rows; which kernel `automatic` picks; and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "qkv/qkv.hpp"

using namespace qkv;

namespace {

Tensor rnd(const Shape& s, std::uint64_t seed, DType dt) {
    Generator g(seed);
    return randn(s, g, dt).requires_grad_();
}

AttentionOptions with(AttentionKernel kernel, bool causal, const Tensor& mask = Tensor()) {
    AttentionOptions o;
    o.kernel = kernel;
    o.causal = causal;
    o.mask = mask;
    return o;
}

// |a − b| ≤ rel · max|b| elementwise: the closeness the issue asks for, relative to each tensor's
// largest value.
void check_close(const Tensor& a, const Tensor& b, double rel, const std::string& what) {
    const double scale = max_abs_diff(b, zeros_like(b));
    const double diff = max_abs_diff(a, b);
    INFO(what << ": max |tiled − materialised| = " << diff << ", max |materialised| = " << scale);
    CHECK(std::isfinite(diff));
    CHECK(diff <= rel * std::max(scale, 1e-300));
}

// Runs f (building the op from its inputs) with both kernels, backward with the same upstream
// gradient, and compares the outputs and every input's gradient.
void compare(const std::string& label, const std::vector<Tensor>& inputs, DType dt,
             const std::function<Tensor(const std::vector<Tensor>&, AttentionKernel)>& f) {
    const double rel = dt == f64 ? 1e-12 : 1e-6;
    std::vector<Tensor> outs, grads[2];
    for (int pass = 0; pass < 2; ++pass) {
        std::vector<Tensor> xs;
        for (const Tensor& t : inputs) xs.push_back(t.detach().clone().requires_grad_());
        const Tensor y = f(xs, pass == 0 ? AttentionKernel::materialize : AttentionKernel::tiled);
        Generator g(99);
        y.backward(randn(y.shape(), g, dt));
        outs.push_back(y.detach());
        for (const Tensor& x : xs) grads[pass].push_back(x.grad());
    }
    check_close(outs[1], outs[0], rel, label + ": output");
    for (std::size_t i = 0; i < inputs.size(); ++i)
        check_close(grads[1][i], grads[0][i], rel, label + ": gradient of input " + std::to_string(i));
}

}  // namespace

TEST_CASE("tiled attention equals the materialising kernel, forward and backward", "[attention][tiled]") {
    for (const DType dt : {f64, f32}) {
        DYNAMIC_SECTION(dtype_name(dt)) {
            // Lengths around the 64-row blocks: one partial block, exactly one, one and a bit, several.
            for (const std::int64_t T : {5, 64, 65, 130, 200}) {
                for (const bool causal : {false, true}) {
                    const auto label = fmt::format("attention (2,{},16), causal {}", T, causal);
                    compare(label, {rnd({2, T, 16}, 1, dt), rnd({2, T, 16}, 2, dt), rnd({2, T, 8}, 3, dt)}, dt,
                            [&](const std::vector<Tensor>& x, AttentionKernel kern) {
                                return attention(x[0], x[1], x[2], with(kern, causal));
                            });
                }
            }
            // Queries at the end of a longer key sequence (a cache): the causal rule shifts.
            compare("attention q (1,70,8), kv (1,150,8), causal", {rnd({1, 70, 8}, 4, dt), rnd({1, 150, 8}, 5, dt),
                                                                   rnd({1, 150, 8}, 6, dt)},
                    dt, [](const std::vector<Tensor>& x, AttentionKernel kern) {
                        return attention(x[0], x[1], x[2], with(kern, true));
                    });
            // A key-padding mask (B, 1, 1, T_k) read in place, and a full (T_q, T_k) mask with whole
            // rows blocked: those rows give zeros and no gradient, in both kernels.
            std::vector<bool> pad(2 * 100, false);
            for (int j = 90; j < 100; ++j) pad[std::size_t(j)] = true;          // batch 0: last 10 keys
            for (int j = 0; j < 100; j += 3) pad[std::size_t(100 + j)] = true;  // batch 1: every third
            const Tensor pad_mask = from(pad, {2, 1, 1, 100});
            compare("attention (2,2,100,8), key padding", {rnd({2, 2, 100, 8}, 7, dt), rnd({2, 2, 100, 8}, 8, dt),
                                                          rnd({2, 2, 100, 8}, 9, dt)},
                    dt, [&](const std::vector<Tensor>& x, AttentionKernel kern) {
                        return attention(x[0], x[1], x[2], with(kern, true, pad_mask));
                    });
            std::vector<bool> rows(70 * 80, false);
            for (int i = 0; i < 70; ++i)
                for (int j = 0; j < 80; ++j) rows[std::size_t(i * 80 + j)] = (i % 7 == 3) || (j * 13 + i) % 5 == 0;
            const Tensor row_mask = from(rows, {70, 80});
            compare("attention (1,70,4) q, (1,80,4) kv, rows 3, 10, ... fully blocked",
                    {rnd({1, 70, 4}, 10, dt), rnd({1, 80, 4}, 11, dt), rnd({1, 80, 4}, 12, dt)}, dt,
                    [&](const std::vector<Tensor>& x, AttentionKernel kern) {
                        const Tensor y = attention(x[0], x[1], x[2], with(kern, false, row_mask));
                        for (std::int64_t c = 0; c < 4; ++c) CHECK(y.at({0, 3, c}) == 0.0);  // a blocked row
                        return y;
                    });
            // The two layouts with heads side by side in the channels.
            compare("head_attention (2,130,24), 3 heads, causal",
                    {rnd({2, 130, 24}, 13, dt), rnd({2, 130, 24}, 14, dt), rnd({2, 130, 24}, 15, dt)}, dt,
                    [](const std::vector<Tensor>& x, AttentionKernel kern) {
                        return head_attention(x[0], x[1], x[2], 3, with(kern, true));
                    });
            compare("head_attention_qkv (2,97,3·32), 4 heads, causal", {rnd({2, 97, 96}, 16, dt)}, dt,
                    [](const std::vector<Tensor>& x, AttentionKernel kern) {
                        return head_attention_qkv(x[0], 4, with(kern, true));
                    });
        }
    }
}

TEST_CASE("tiled attention: one and two threads give the same bits", "[attention][tiled][threads]") {
    const int before = num_threads();
    std::vector<Tensor> outs, grads;
    for (const int threads : {1, 2}) {
        set_num_threads(threads);
        const Tensor qkv = rnd({2, 150, 96}, 21, f32);
        const Tensor y = head_attention_qkv(qkv, 4, with(AttentionKernel::tiled, true));
        Generator g(5);
        y.backward(randn(y.shape(), g));
        outs.push_back(y.detach());
        grads.push_back(qkv.grad());
    }
    set_num_threads(before);
    CHECK(max_abs_diff(outs[0], outs[1]) == 0.0);
    CHECK(max_abs_diff(grads[0], grads[1]) == 0.0);
}

TEST_CASE("automatic attention: tiled for long keys without weights, materialising otherwise", "[attention][tiled]") {
    const std::int64_t long_t = kTiledAttentionMinKeys, short_t = kTiledAttentionMinKeys - 1;
    for (const std::int64_t T : {short_t, long_t}) {
        const Tensor q = rnd({1, T, 8}, 31, f32), k = rnd({1, T, 8}, 32, f32), v = rnd({1, T, 8}, 33, f32);
        const Tensor autom = attention(q, k, v, with(AttentionKernel::automatic, true));
        const Tensor tiled = attention(q, k, v, with(AttentionKernel::tiled, true));
        const Tensor mat = attention(q, k, v, with(AttentionKernel::materialize, true));
        // The two kernels round differently, so the bits tell which one ran.
        REQUIRE(max_abs_diff(tiled, mat) > 0.0);
        INFO("T = " << T);
        CHECK(max_abs_diff(autom, T >= kTiledAttentionMinKeys ? tiled : mat) == 0.0);
        // Asking for the weights keeps the materialising kernel, whatever the length.
        Tensor weights;
        AttentionOptions o = with(AttentionKernel::automatic, true);
        o.weights = &weights;
        CHECK(max_abs_diff(attention(q, k, v, o), mat) == 0.0);
        CHECK(weights.shape() == Shape{1, T, T});
    }
}

TEST_CASE("tiled attention: errors name the problem", "[attention][tiled][errors]") {
    const Tensor q = rnd({1, 4, 2}, 1, f32), k = rnd({1, 4, 2}, 2, f32), v = rnd({1, 4, 2}, 3, f32);
    Tensor weights;
    AttentionOptions o = with(AttentionKernel::tiled, false);
    o.weights = &weights;
    CHECK_THROWS_WITH(attention(q, k, v, o), Catch::Contains("the tiled kernel keeps no attention weights"));
    o.weights = nullptr;
    o.mask = from(std::vector<bool>{0, 1, 0}, {1, 1, 3});
    CHECK_THROWS_WITH(attention(q, k, v, o), Catch::Contains("cannot be broadcast together"));
    o.mask = zeros({2, 4, 4}, b8);  // broadcasts with the scores, but to a larger shape
    CHECK_THROWS_WITH(attention(q, k, v, o), Catch::Contains("does not broadcast to the scores' shape (1,4,4)"));
    o.mask = ones({1, 4, 4});
    CHECK_THROWS_WITH(attention(q, k, v, o), Catch::Contains("mask must be a b8 tensor"));
}
