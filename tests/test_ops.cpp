// Forward values of the ops (gradients are in test_gradcheck_ops.cpp), and the fused ops checked
// against the same math composed from primitives, forward and backward.
#include <catch2/catch.hpp>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "qkv/qkv.hpp"

using namespace qkv;
using V = std::vector<double>;

static V vals(const Tensor& t) { return t.to_vector<double>(); }

static void check_close(const Tensor& a, const Tensor& b, double tol) {
    REQUIRE(a.shape() == b.shape());
    const V x = vals(a), y = vals(b);
    for (std::size_t i = 0; i < x.size(); ++i) {
        INFO("element " << i << ": " << x[i] << " vs " << y[i]);
        CHECK(std::fabs(x[i] - y[i]) <= tol * (1 + std::fabs(y[i])));
    }
}

TEST_CASE("elementwise ops broadcast like NumPy", "[ops]") {
    const Tensor a = from({1, 2, 3, 4, 5, 6}, {2, 3}, f64);
    CHECK(vals(a + from({10, 20, 30}, {3}, f64)) == V{11, 22, 33, 14, 25, 36});
    CHECK(vals(a * from({2, 3}, {2, 1}, f64)) == V{2, 4, 6, 12, 15, 18});
    CHECK(vals(a - scalar(1, f64)) == V{0, 1, 2, 3, 4, 5});
    CHECK(vals(a / from({1, 2, 4}, {3}, f64)) == V{1, 1, 0.75, 4, 2.5, 1.5});
    const Tensor outer = from({1, 2}, {2, 1}, f64) + from({10, 20, 30}, {1, 3}, f64);
    CHECK(outer.shape() == Shape{2, 3});
    CHECK(vals(outer) == V{11, 21, 31, 12, 22, 32});
    CHECK((zeros({4, 1, 3}) + zeros({2, 1})).shape() == Shape{4, 2, 3});
    CHECK(vals(2.0 - a) == V{1, 0, -1, -2, -3, -4});
    CHECK(vals(6.0 / a) == V{6, 3, 2, 1.5, 1.2, 1});
    CHECK(vals(pow(a, 2.0)) == V{1, 4, 9, 16, 25, 36});
}

TEST_CASE("unary ops compute the textbook functions", "[ops]") {
    const Tensor x = from({-2, -0.5, 0, 0.5, 2}, {5}, f64);
    const V xs{-2, -0.5, 0, 0.5, 2};
    const V r = vals(relu(x)), s = vals(sigmoid(x)), g = vals(gelu_erf(x)), gt = vals(gelu(x));
    for (std::size_t i = 0; i < xs.size(); ++i) {
        CHECK(r[i] == std::max(0.0, xs[i]));
        CHECK(s[i] == Approx(1 / (1 + std::exp(-xs[i]))).epsilon(1e-15));
        CHECK(g[i] == Approx(0.5 * xs[i] * (1 + std::erf(xs[i] / std::sqrt(2.0)))).epsilon(1e-15));
        CHECK(gt[i] == Approx(g[i]).margin(1e-3));  // the tanh form approximates the exact one
    }
    // sigmoid does not overflow in either tail
    const V tails = vals(sigmoid(from({-1000, 1000}, {2}, f64)));
    CHECK(tails == V{0, 1});
    CHECK(vals(exp(from({0, 1}, {2}, f64)))[1] == Approx(std::exp(1.0)));
    CHECK(vals(log(from({1, std::exp(2.0)}, {2}, f64)))[1] == Approx(2.0));
    CHECK(vals(sqrt(from({9}, {1}, f64)))[0] == 3.0);
    CHECK(vals(neg(x))[0] == 2.0);
}

TEST_CASE("reductions", "[ops]") {
    const Tensor t = from({1, 5, 3, 4, 2, 6}, {2, 3}, f64);
    CHECK(sum(t).item() == 21);
    CHECK(sum(t).dim() == 0);
    CHECK(vals(sum(t, 0)) == V{5, 7, 9});
    CHECK(vals(sum(t, -1)) == V{9, 12});
    CHECK(sum(t, 1, true).shape() == Shape{2, 1});
    CHECK(mean(t).item() == 3.5);
    CHECK(vals(mean(t, 1)) == V{3, 4});
    CHECK(max(t).item() == 6);
    CHECK(vals(max(t, 1)) == V{5, 6});
    CHECK(vals(max(t, 0, true)) == V{4, 5, 6});
    CHECK(argmax(t, 1).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 2});
    CHECK(vals(var(t, 1)) == V{4, 4});                     // unbiased: ((1-3)² + (5-3)² + 0)/2
    CHECK(vals(var(t, 1, false, false))[0] == Approx(8.0 / 3));  // biased
    CHECK(sum(zeros({0})).item() == 0);
}

TEST_CASE("long f32 sums keep their digits, and every reduction layout sums the same fibres", "[ops]") {
    // 100 003 copies of 0.1f: a running float sum drifts by ~1e-3 relative; the double partial
    // sums give the float nearest the exact total (the length is not a multiple of 16 lanes).
    const std::int64_t n = 100003;
    const Tensor ones_tenth = full({n}, 0.1, f32);
    CHECK(sum(ones_tenth).item() == double(float(double(n) * double(0.1f))));
    CHECK(mean(ones_tenth).item() == double(float(double(0.1f))));

    // (2, 19, 3): the sum over each dim against plain loops over the same elements.
    Generator gen(3);
    const Tensor x = randn({2, 19, 3}, gen, f64);
    const V v = vals(x);
    auto at = [&](std::int64_t a, std::int64_t b, std::int64_t c) { return v[std::size_t((a * 19 + b) * 3 + c)]; };
    V s0(19 * 3, 0), s1(2 * 3, 0), s2(2 * 19, 0);
    for (std::int64_t a = 0; a < 2; ++a)
        for (std::int64_t b = 0; b < 19; ++b)
            for (std::int64_t c = 0; c < 3; ++c) {
                s0[std::size_t(b * 3 + c)] += at(a, b, c);
                s1[std::size_t(a * 3 + c)] += at(a, b, c);
                s2[std::size_t(a * 19 + b)] += at(a, b, c);
            }
    for (auto [dim, want] : {std::pair{0, s0}, std::pair{1, s1}, std::pair{2, s2}}) {
        const V got = vals(sum(x, dim));
        REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-14));
    }

    // Backward of a whole-tensor sum adds dy to every element (onto what is already there).
    const Tensor y = full({37}, 2.0, f32).requires_grad_();
    (sum(y) * 3.0).backward();
    (sum(y) * 3.0).backward();
    for (const double g : vals(y.grad())) CHECK(g == 6.0);
}

TEST_CASE("shape ops move the right elements", "[ops]") {
    const Tensor t = reshape(arange(6, f64), {2, 3});
    CHECK(vals(transpose(t, 0, 1)) == V{0, 3, 1, 4, 2, 5});
    CHECK(transpose(t, 0, 1).shape() == Shape{3, 2});
    const Tensor c = reshape(arange(24, f64), {2, 3, 4});
    const Tensor p = permute(c, {2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.at({3, 1, 2}) == c.at({1, 2, 3}));
    CHECK(vals(narrow(t, 1, 1, 2)) == V{1, 2, 4, 5});
    CHECK(vals(slice(arange(10, f64), 0, 1, 8, 3)) == V{1, 4, 7});
    CHECK(vals(slice(arange(10, f64), 0, -3, 100)) == V{7, 8, 9});
    CHECK(slice(arange(10, f64), 0, 5, 2).numel() == 0);
    CHECK(vals(concat({t, t * 10.0}, 0)) == V{0, 1, 2, 3, 4, 5, 0, 10, 20, 30, 40, 50});
    CHECK(vals(concat({t, from({9, 9}, {2, 1}, f64)}, 1)) == V{0, 1, 2, 9, 3, 4, 5, 9});
    const auto parts = split(arange(7, f64), 3, 0);
    REQUIRE(parts.size() == 3);
    CHECK(vals(parts[2]) == V{6});
    const auto parts2 = split(t, {1, 2}, 1);
    CHECK(vals(parts2[1]) == V{1, 2, 4, 5});
    CHECK(unsqueeze(t, 0).shape() == Shape{1, 2, 3});
    CHECK(unsqueeze(t, -1).shape() == Shape{2, 3, 1});
    CHECK(squeeze(zeros({1, 3, 1})).shape() == Shape{3});
    CHECK(squeeze(zeros({1, 3, 1}), 0).shape() == Shape{3, 1});
    CHECK(vals(expand(from({1, 2}, {2, 1}, f64), {2, 3})) == V{1, 1, 1, 2, 2, 2});
    CHECK(expand(zeros({3}), {2, -1}).shape() == Shape{2, 3});
    CHECK(reshape(t, {-1}).shape() == Shape{6});
    CHECK(view(t, {3, -1}).shape() == Shape{3, 2});
    // Integer tensors can be reshaped and sliced too (token ids).
    const Tensor ids = from(std::vector<std::int32_t>{1, 2, 3, 4}, {2, 2});
    CHECK(reshape(ids, {4}).dtype() == i32);
    CHECK(narrow(ids, 1, 1, 1).to_vector<std::int32_t>() == std::vector<std::int32_t>{2, 4});
}

TEST_CASE("matmul: 2-D, folded, batched and broadcast batches", "[ops]") {
    const Tensor a = from({1, 2, 3, 4, 5, 6}, {2, 3}, f64);
    const Tensor b = from({7, 8, 9, 10, 11, 12}, {3, 2}, f64);
    CHECK(vals(matmul(a, b)) == V{58, 64, 139, 154});
    // Folded: a batch of the same rows gives the same rows.
    const Tensor a3 = concat({unsqueeze(a, 0), unsqueeze(a * 2.0, 0)}, 0);  // (2,2,3)
    CHECK(vals(matmul(a3, b)) == V{58, 64, 139, 154, 116, 128, 278, 308});
    // Batched with a shared right operand and with broadcast batch dims.
    const Tensor b3 = concat({unsqueeze(b, 0), unsqueeze(b, 0)}, 0);  // (2,3,2)
    CHECK(vals(matmul(a3, b3)) == vals(matmul(a3, b)));
    CHECK(vals(matmul(a, b3)) == V{58, 64, 139, 154, 58, 64, 139, 154});
    const Tensor x = reshape(arange(12, f64), {2, 1, 2, 3});
    const Tensor y = reshape(arange(18, f64), {1, 3, 3, 2});
    const Tensor z = matmul(x, y);
    CHECK(z.shape() == Shape{2, 3, 2, 2});
    CHECK(vals(reshape(reshape(z, {2, 3, 4}), {-1})).size() == 24);
    CHECK(z.at({1, 2, 1, 0}) == vals(matmul(reshape(narrow(x, 0, 1, 1), {2, 3}), reshape(narrow(y, 1, 2, 1), {3, 2})))[2]);
    CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector<float>() == std::vector<float>(6, 0.0f));  // K = 0
    CHECK(matmul(zeros({0, 4}), zeros({4, 3})).numel() == 0);
}

TEST_CASE("softmax is stable and normalised - log_softmax is its log", "[ops][fused]") {
    const Tensor x = from({1000, 1001, 1002, -5, 0, 5}, {2, 3}, f64);
    const Tensor p = softmax(x, -1);
    CHECK(vals(sum(p, -1))[0] == Approx(1.0));
    CHECK(vals(sum(p, -1))[1] == Approx(1.0));
    CHECK(p.at({0, 2}) == Approx(std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0))));
    check_close(log_softmax(x, -1), log(p), 1e-12);
    const V lp = vals(log_softmax(from({0, -2000}, {2}, f64), 0));
    CHECK(std::isfinite(lp[1]));  // log(softmax) would give -inf here
    CHECK(lp[1] == Approx(-2000));
    // A row of −inf (everything masked) gives zeros rather than NaN, with zero gradient.
    const double inf = std::numeric_limits<double>::infinity();
    Tensor masked = from({-inf, -inf}, {2}, f64).requires_grad_();
    const Tensor u = softmax(masked, 0);
    CHECK(vals(u) == V{0, 0});
    sum(u * from({1, 2}, {2}, f64)).backward();
    CHECK(vals(masked.grad()) == V{0, 0});
    CHECK(vals(log_softmax(from({-inf, -inf}, {2}, f64), 0)) == V{-inf, -inf});
}

TEST_CASE("fused softmax and log_softmax equal their composed forms, forward and backward", "[ops][fused]") {
    Generator g(5);
    const Tensor x0 = randn({3, 4, 5}, g, f64);
    const Tensor w = randn({3, 4, 5}, g, f64);
    for (std::int64_t dim : {-1, 1, 0}) {
        for (bool log_space : {false, true}) {
            Tensor a = x0.clone().requires_grad_();
            Tensor b = x0.clone().requires_grad_();
            const Tensor fused = log_space ? log_softmax(a, dim) : softmax(a, dim);
            const Tensor shifted = b - max(b, dim, true);  // the same stabilisation, from primitives
            const Tensor e = exp(shifted);
            const Tensor composed = log_space ? shifted - log(sum(e, dim, true)) : e / sum(e, dim, true);
            check_close(fused, composed, 1e-12);
            sum(fused * w).backward();
            sum(composed * w).backward();
            check_close(a.grad(), b.grad(), 1e-12);
        }
    }
}

TEST_CASE("fused cross_entropy equals -mean(log_softmax picked at the targets)", "[ops][fused]") {
    Generator g(9);
    const Tensor z0 = randn({6, 5}, g, f64);
    const std::vector<std::int32_t> tv{4, 0, -100, 2, 2, 1};
    const Tensor t = from(tv, {6});
    Tensor a = z0.clone().requires_grad_();
    Tensor b = z0.clone().requires_grad_();
    const Tensor fused = cross_entropy(a, t);
    // Composed: a one-hot mask (with the ignored row all zero) picks log-probabilities.
    std::vector<double> onehot(30, 0.0);
    for (std::size_t r = 0; r < tv.size(); ++r)
        if (tv[r] >= 0) onehot[r * 5 + std::size_t(tv[r])] = 1.0;
    const Tensor composed = neg(sum(log_softmax(b, -1) * from(onehot, {6, 5}))) / 5.0;
    CHECK(fused.item() == Approx(composed.item()).epsilon(1e-13));
    fused.backward();
    composed.backward();
    check_close(a.grad(), b.grad(), 1e-12);
    CHECK(vals(a.grad()).at(10) == 0.0);  // the ignored row gets no gradient
    // sum and none reductions agree with mean
    CHECK(cross_entropy(z0, t, -100, Reduction::sum).item() == Approx(fused.item() * 5));
    const Tensor per = cross_entropy(z0, t, -100, Reduction::none);
    CHECK(per.shape() == Shape{6});
    CHECK(per.at({2}) == 0.0);
    // All positions ignored: 0, not NaN.
    CHECK(cross_entropy(z0, full({6}, -100, i32)).item() == 0.0);
    // Perfect confident predictions give ~0 loss, uniform logits give log V.
    CHECK(cross_entropy(zeros({2, 5}, f64), from(std::vector<std::int32_t>{1, 3}, {2})).item() == Approx(std::log(5.0)));
}

TEST_CASE("embedding gathers rows - repeated ids accumulate gradient", "[ops]") {
    const Tensor w = reshape(arange(12, f64), {4, 3});
    const Tensor ids = from(std::vector<std::int32_t>{2, 0, 2}, {3});
    Tensor wv = w.clone().requires_grad_();
    const Tensor e = embedding(wv, ids);
    CHECK(e.shape() == Shape{3, 3});
    CHECK(vals(e) == V{6, 7, 8, 0, 1, 2, 6, 7, 8});
    sum(e).backward();
    CHECK(vals(wv.grad()) == V{1, 1, 1, 0, 0, 0, 2, 2, 2, 0, 0, 0});
    CHECK(embedding(w, from(std::vector<std::int32_t>{1, 2, 3, 0}, {2, 2})).shape() == Shape{2, 2, 3});
}

TEST_CASE("masked_fill, where and mask helpers", "[ops]") {
    const Tensor x = reshape(arange(6, f64), {2, 3});
    const Tensor causal = logical_not(tril_mask(2, 3));  // true above the diagonal
    CHECK(causal.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{0, 1, 1, 0, 0, 1});
    CHECK(vals(masked_fill(x, causal, -1)) == V{0, -1, -1, 3, 4, -1});
    CHECK(vals(masked_fill(x, from(std::vector<bool>{1, 0, 0}, {3}), 9)) == V{9, 1, 2, 9, 4, 5});
    CHECK(vals(where(gt(x, 2.5), x, scalar(0, f64))) == V{0, 0, 0, 3, 4, 5});
    CHECK(eq(x, 4.0).to_vector<std::uint8_t>() == std::vector<std::uint8_t>{0, 0, 0, 0, 1, 0});
    CHECK(lt(x, 1.0).to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 0, 0, 0, 0, 0});
    CHECK(eq(from(std::vector<std::int32_t>{1, 2}, {2}), from(std::vector<std::int32_t>{1, 3}, {2}))
              .to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 0});
    // A fully masked softmax row (masked_fill with -inf) is all zeros, not NaN.
    const Tensor scores = masked_fill(zeros({2, 3}, f64), from(std::vector<bool>{1, 1, 1, 0, 1, 0}, {2, 3}), -INFINITY);
    CHECK(vals(softmax(scores, -1)) == V{0, 0, 0, 0.5, 0, 0.5});
}

TEST_CASE("the fast f32 GELU matches the exact f64 one to float precision", "[ops]") {
    const Tensor x = arange(-9.0, 9.0, 0.001, f64);
    Tensor x32 = x.to(f32).requires_grad_();
    Tensor x64 = x.clone().requires_grad_();
    const Tensor y32 = gelu_erf(x32), y64 = gelu_erf(x64);
    sum(y32).backward();
    sum(y64).backward();
    const auto a = y32.to_vector<double>(), b = y64.to_vector<double>();
    const auto ga = x32.grad().to_vector<double>(), gb = x64.grad().to_vector<double>();
    double worst = 0, worst_slope = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::fabs(a[i] - b[i]) / (1 + std::fabs(b[i])));
        worst_slope = std::max(worst_slope, std::fabs(ga[i] - gb[i]));
    }
    // Budget: the erf approximation (< 1.5e-7), plus rounding x and y to float (~6e-8 each).
    CHECK(worst < 3e-7);
    CHECK(worst_slope < 1e-6);
    // Far tails: exactly x and 0, no overflow.
    const auto tails = gelu_erf(from({-100, 100}, {2})).to_vector<float>();
    CHECK(tails[0] == 0.0f);
    CHECK(tails[1] == 100.0f);
}

namespace {
// The same bytes: the two tensors hold bit-identical floats.
bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.shape() == b.shape() &&
           std::memcmp(a.raw_data(), b.raw_data(), std::size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}
}  // namespace

TEST_CASE("linear_gelu equals gelu_erf(linear(...)) bit for bit, forward and backward, on every GEMM path", "[ops]") {
    using qkv::kernels::GemmBackend;
    const GemmBackend backend_before = qkv::kernels::gemm_backend();
    const int threads_before = num_threads();
    // (rows, in, out): the narrow path (out ≤ 16), the direct path (K ≤ 384, small), the packed path
    // with two K blocks (in = 400 > 384: the epilogue must wait for the last one), and a product
    // large enough to be split between threads.
    const std::vector<std::array<std::int64_t, 3>> shapes{{7, 5, 3}, {64, 32, 48}, {300, 400, 200}, {1024, 128, 512}};
    for (const GemmBackend backend : {GemmBackend::reference, GemmBackend::avx2, GemmBackend::avx512, GemmBackend::neon}) {
        if (!qkv::kernels::gemm_backend_available(backend)) continue;
        qkv::kernels::set_gemm_backend(backend);
        for (const int threads : {1, 2}) {
            set_num_threads(threads);
            for (const auto& [rows, in, out] : shapes) {
                for (const bool with_bias : {true, false}) {
                    INFO(qkv::kernels::gemm_backend_name(backend) << ", " << threads << " thread(s), (" << rows << ", " << in
                                                                  << ") x (" << out << ", " << in << ")"
                                                                  << (with_bias ? " + bias" : ""));
                    Generator g(std::uint64_t(rows * 1000 + in + out));
                    const Tensor x0 = randn({rows, in}, g), w0 = mul(randn({out, in}, g), 0.2);
                    const Tensor b0 = with_bias ? randn({out}, g) : Tensor();
                    const Tensor r = randn({rows, out}, g);  // d(loss)/dy
                    std::array<Tensor, 2> y, dx, dw, db;
                    for (int fused = 0; fused < 2; ++fused) {
                        Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
                        Tensor b = with_bias ? b0.clone().requires_grad_() : Tensor();
                        y[fused] = fused ? linear_gelu(x, w, b) : gelu_erf(linear(x, w, b));
                        y[fused].backward(r);
                        dx[fused] = x.grad();
                        dw[fused] = w.grad();
                        if (with_bias) db[fused] = b.grad();
                    }
                    CHECK(same_bits(y[0], y[1]));
                    CHECK(same_bits(dx[0], dx[1]));
                    CHECK(same_bits(dw[0], dw[1]));
                    if (with_bias) CHECK(same_bits(db[0], db[1]));
                }
            }
        }
    }
    qkv::kernels::set_gemm_backend(backend_before);
    set_num_threads(threads_before);
    // f64 too (the gradient-check path): the same values.
    Generator g(3);
    const Tensor x = randn({5, 7}, g, f64), w = randn({4, 7}, g, f64), b = randn({4}, g, f64);
    CHECK(same_bits(linear_gelu(x, w, b), gelu_erf(linear(x, w, b))));
    // Bad input is named under the op's own name.
    CHECK_THROWS_WITH(linear_gelu(randn({2, 3}, g), randn({4, 5}, g)),
                      "linear_gelu: input (2,3) does not match weight (4,5) (expected last dim 5)");
}
