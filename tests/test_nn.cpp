// Layers, attention in its three forms, blocks and models: values, agreement between the fused and
// composed attention, gradient checks of whole modules in f64, masks, caches, errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "qkv/nn/transformer.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/qkv.hpp"

using namespace qkv;
using namespace qkv::nn;

namespace {
Tensor rnd(const Shape& s, std::uint64_t seed) {
    Generator g(seed);
    return randn(s, g, f64);
}

AttentionOptions opts(const Tensor& mask, bool causal) {
    AttentionOptions o;
    o.mask = mask;
    o.causal = causal;
    return o;
}

// Gradient-check a module (already in f64) with respect to its parameters and, if given, its input.
void check_module(const std::string& label, Module& m, const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
    GradcheckOptions o;
    o.label = label;
    const auto rep = gradcheck_params([&] { return f(x); }, m.parameters(), o);
    INFO(rep.summary());
    CHECK(rep.ok);
    const auto rep_x = gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x}, o);
    INFO(rep_x.summary());
    CHECK(rep_x.ok);
}
}  // namespace

TEST_CASE("fused attention equals attention composed from primitives, forward and backward", "[nn][attention]") {
    struct Case {
        const char* name;
        Shape q, k, v;
        Tensor mask;
        bool causal;
    };
    const Tensor pad = from(std::vector<bool>{0, 0, 0, 1, 1, 0, 0, 0}, {2, 1, 1, 4});
    const Tensor blocked_row = from(std::vector<bool>{1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0}, {3, 4});
    std::vector<bool> pad18_bits(36, false);  // batch 0 pads its last 3 keys, batch 1 its first 2
    for (int j : {15, 16, 17}) pad18_bits[std::size_t(j)] = true;
    for (int j : {18, 19}) pad18_bits[std::size_t(j)] = true;
    const Tensor pad18 = from(pad18_bits, {2, 1, 1, 18});
    const std::vector<Case> cases{
        {"self (2,3,5,4)", {2, 3, 5, 4}, {2, 3, 5, 4}, {2, 3, 5, 4}, Tensor(), false},
        {"causal (2,2,6,3)", {2, 2, 6, 3}, {2, 2, 6, 3}, {2, 2, 6, 3}, Tensor(), true},
        {"cross with padding", {2, 1, 3, 4}, {2, 1, 4, 4}, {2, 1, 4, 2}, pad, false},
        {"causal, fewer queries than keys (cache)", {1, 2, 2, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}, Tensor(), true},
        {"a fully blocked row", {3, 2}, {4, 2}, {4, 3}, blocked_row, false},
        // The fused op runs causal rows in blocks of 16 (see attention.cpp): several blocks, a
        // partial last one, and the cache layout with queries at the end of a longer sequence.
        {"causal, three row blocks (1,2,37,5)", {1, 2, 37, 5}, {1, 2, 37, 5}, {1, 2, 37, 3}, Tensor(), true},
        {"causal, 20 queries at the end of 45 keys", {1, 1, 20, 4}, {1, 1, 45, 4}, {1, 1, 45, 4}, Tensor(), true},
        {"causal and padding together", {2, 1, 18, 3}, {2, 1, 18, 3}, {2, 1, 18, 3}, pad18, true},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            Tensor q1 = rnd(c.q, 1).requires_grad_(), k1 = rnd(c.k, 2).requires_grad_(), v1 = rnd(c.v, 3).requires_grad_();
            Tensor q2 = rnd(c.q, 1).requires_grad_(), k2 = rnd(c.k, 2).requires_grad_(), v2 = rnd(c.v, 3).requires_grad_();
            Tensor w1, w2;
            AttentionOptions o1 = opts(c.mask, c.causal), o2 = opts(c.mask, c.causal);
            o1.weights = &w1;
            o2.weights = &w2;
            const Tensor fused = attention(q1, k1, v1, o1);
            const Tensor composed = scaled_dot_product_attention(q2, k2, v2, o2);
            CHECK(max_abs_diff(fused, composed) < 1e-12);
            CHECK(max_abs_diff(w1, w2) < 1e-12);
            const Tensor up = rnd(fused.shape(), 4);
            fused.backward(up);
            composed.backward(up);
            CHECK(max_abs_diff(q1.grad(), q2.grad()) < 1e-10);
            CHECK(max_abs_diff(k1.grad(), k2.grad()) < 1e-10);
            CHECK(max_abs_diff(v1.grad(), v2.grad()) < 1e-10);
            for (double x : fused.to_vector<double>()) CHECK(std::isfinite(x));
        }
    }
}

TEST_CASE("f32 causal attention gives the same weights as the same rule spelled out as a mask", "[nn][attention]") {
    // Causal rows take the fast path (row blocks, rows padded to one width and their softmax run
    // several at a time); a boolean mask takes the row-by-row path over all keys. Adding zero
    // terms changes no sum, so the weights must agree to the bit and the outputs in value.
    struct Case {
        const char* name;
        std::int64_t Tq, Tk, D;
    };
    for (const Case c : {Case{"64 queries, head size 32", 64, 64, 32}, Case{"37: partial blocks and groups", 37, 37, 5},
                         Case{"20 queries at the end of 45 keys", 20, 45, 4},
                         Case{"more queries than keys: rows that see nothing", 23, 7, 3}}) {
        DYNAMIC_SECTION(c.name) {
            Generator g(11);
            const Tensor q = randn({2, 3, c.Tq, c.D}, g), k = randn({2, 3, c.Tk, c.D}, g), v = randn({2, 3, c.Tk, c.D}, g);
            Tensor w1, w2;
            AttentionOptions causal = opts(Tensor(), true);
            causal.weights = &w1;
            AttentionOptions masked = opts(logical_not(tril_mask(c.Tq, c.Tk, c.Tk - c.Tq)), false);
            masked.weights = &w2;
            const Tensor a = attention(q, k, v, causal), b = attention(q, k, v, masked);
            CHECK(w1.to_vector<float>() == w2.to_vector<float>());
            CHECK(a.to_vector<float>() == b.to_vector<float>());
            for (float x : a.to_vector<float>()) CHECK(std::isfinite(x));
        }
    }
}

TEST_CASE("head_attention equals split heads + attention + concat", "[nn][attention]") {
    const std::int64_t B = 2, T = 5, H = 3, D = 4;
    const Tensor q = rnd({B, T, H * D}, 1), k = rnd({B, T, H * D}, 2), v = rnd({B, T, H * D}, 3);
    Tensor w;
    AttentionOptions o = opts(Tensor(), true);
    o.weights = &w;
    const Tensor packed = head_attention(q, k, v, H, o);
    auto split = [&](const Tensor& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
    const Tensor ref = reshape(permute(attention(split(q), split(k), split(v), opts(Tensor(), true)), {0, 2, 1, 3}), {B, T, H * D});
    CHECK(max_abs_diff(packed, ref) < 1e-12);
    CHECK(w.shape() == Shape{B, H, T, T});
    // causal: every row of weights sums to 1 and puts nothing on the future
    CHECK(w.at({1, 2, 1, 3}) == 0.0);
    const Tensor rows = sum(w, -1);
    for (double r : rows.to_vector<double>()) CHECK(r == Approx(1.0));
}

TEST_CASE("head_attention_qkv equals head_attention on the split projection", "[nn][attention]") {
    const Tensor qkv = rnd({2, 5, 12}, 7);
    const auto parts = split(qkv, 4, -1);
    AttentionOptions o = opts(Tensor(), true);
    Tensor w1, w2;
    o.weights = &w1;
    const Tensor a = head_attention_qkv(qkv, 2, o);
    o.weights = &w2;
    const Tensor b = head_attention(parts[0], parts[1], parts[2], 2, o);
    CHECK(max_abs_diff(a, b) < 1e-14);
    CHECK(max_abs_diff(w1, w2) < 1e-14);
    CHECK_THROWS_WITH(head_attention_qkv(zeros({1, 2, 7}), 1), Catch::Contains("expected (B, T, 3*C)"));
}

TEST_CASE("layers compute what their formulas say", "[nn]") {
    Generator g(0);
    Linear lin(3, 2, g);
    const Tensor x = from({1, 2, 3}, {1, 3});
    const Tensor y = lin(x);
    for (std::int64_t j = 0; j < 2; ++j) {
        double e = lin.bias.at({j});
        for (std::int64_t i = 0; i < 3; ++i) e += x.at({0, i}) * lin.weight.at({j, i});
        CHECK(y.at({0, j}) == Approx(e).epsilon(1e-6));
    }
    for (double w : lin.weight.to_vector<double>()) CHECK(std::fabs(w) <= 1 / std::sqrt(3.0));
    LayerNorm ln(4);
    const Tensor n = ln(from({1, 2, 3, 4}, {4}, f32));
    CHECK(mean(n).item() == Approx(0).margin(1e-6));
    CHECK(var(n, 0, false, false).item() == Approx(1).epsilon(1e-4));
    SinusoidalPositions pe(10, 4);
    const Tensor p = pe.forward(3, 1, f64);  // positions 1..3
    CHECK(p.at({0, 0}) == Approx(std::sin(1.0)));
    CHECK(p.at({0, 1}) == Approx(std::cos(1.0)));
    CHECK(p.at({1, 2}) == Approx(std::sin(2.0 / 100.0)));  // 10000^(2/4) = 100
    CHECK_THROWS_WITH(pe.forward(10, 1), Catch::Contains("exceed the table of 10"));
}

TEST_CASE("dropout: active in training, identity in eval, expectation preserved", "[nn]") {
    Dropout d(0.25, 1);
    const Tensor x = ones({20000});
    const Tensor y = d(x);
    std::int64_t zeros = 0;
    for (float v : y.to_vector<float>()) {
        if (v == 0) ++zeros;
        else CHECK(v == Approx(1 / 0.75));
    }
    CHECK(std::fabs(double(zeros) / 20000 - 0.25) < 0.02);
    CHECK(mean(y).item() == Approx(1.0).epsilon(0.03));
    d.eval();
    CHECK(d(x).to_vector<float>() == x.to_vector<float>());
    CHECK_THROWS_WITH(Dropout(1.0), Catch::Contains("p must be in [0, 1)"));
}

TEST_CASE("models with dropout: eval() turns off every dropout inside, train() turns it back on", "[nn]") {
    // The dropouts of GPT (after the embeddings, in each block) and of attention are modules of
    // their own; eval() reaches them only if they are registered.
    GPTConfig c;
    c.vocab = 9;
    c.block_size = 8;
    c.dim = 16;
    c.heads = 2;
    c.layers = 2;
    c.dropout = 0.5;
    GPT m(c);
    const Tensor ids = from(std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}, {1, 6});
    NoGradGuard no_grad;
    m.eval();
    const auto a = m(ids).to_vector<float>();
    CHECK(m(ids).to_vector<float>() == a);  // deterministic: no masks drawn
    m.train();
    CHECK(m(ids).to_vector<float>() != a);
    MultiHeadAttentionConfig ac;
    ac.dim = 8;
    ac.heads = 2;
    ac.dropout = 0.5;
    Generator g(1);
    MultiHeadAttention attn(ac, g);
    attn.eval();
    const Tensor x = rnd({1, 4, 8}, 2).to(f32);
    CHECK(attn.forward(x).to_vector<float>() == attn.forward(x).to_vector<float>());
}

TEST_CASE("gradient checks of whole modules in f64", "[nn][gradcheck]") {
    Generator g(3);
    SECTION("Linear") {
        Linear m(4, 3, g);
        m.to(f64);
        check_module("Linear", m, [&](const Tensor& x) { return m(x); }, rnd({2, 4}, 5));
    }
    SECTION("LayerNorm") {
        LayerNorm m(5);
        m.to(f64);
        init_normal(m.weight, 1.0, g);
        init_normal(m.bias, 1.0, g);
        check_module("LayerNorm", m, [&](const Tensor& x) { return m(x); }, rnd({3, 5}, 6));
    }
    SECTION("FeedForward") {
        FeedForward m(4, 8, g);
        m.to(f64);
        check_module("FeedForward", m, [&](const Tensor& x) { return m(x); }, rnd({2, 3, 4}, 7));
    }
    for (bool fused : {true, false}) {
        DYNAMIC_SECTION("SelfAttention, one head, " << (fused ? "fused" : "composed")) {
            SelfAttention m(6, 4, g, true, fused);
            m.to(f64);
            check_module("SelfAttention", m, [&](const Tensor& x) { return m(x); }, rnd({2, 4, 6}, 8));
        }
        DYNAMIC_SECTION("MultiHeadAttention, " << (fused ? "fused" : "composed")) {
            MultiHeadAttentionConfig c;
            c.dim = 6;
            c.heads = 3;
            c.fused = fused;
            MultiHeadAttention m(c, g);
            m.to(f64);
            check_module("MultiHeadAttention", m, [&](const Tensor& x) { return m.forward(x, opts(Tensor(), true)); },
                         rnd({2, 4, 6}, 9));
            const Tensor memory = rnd({2, 5, 6}, 10);
            check_module("cross-attention", m, [&](const Tensor& x) { return m.forward(x, memory); }, rnd({2, 3, 6}, 11));
        }
    }
    for (bool pre : {true, false}) {
        DYNAMIC_SECTION("TransformerBlock with cross-attention, " << (pre ? "pre-LN" : "post-LN")) {
            BlockConfig c;
            c.dim = 4;
            c.heads = 2;
            c.hidden = 8;
            c.pre_ln = pre;
            c.cross_attention = true;
            TransformerBlock m(c, g);
            m.to(f64);
            const Tensor memory = rnd({1, 3, 4}, 12);
            check_module("TransformerBlock", m,
                         [&](const Tensor& x) { return m.forward(x, opts(Tensor(), true), memory); }, rnd({1, 3, 4}, 13));
        }
    }
}

TEST_CASE("a whole tiny GPT and a tiny encoder-decoder pass gradcheck in f64", "[nn][gradcheck][models]") {
    SECTION("GPT, tied weights") {
        GPTConfig c;
        c.vocab = 5;
        c.block_size = 4;
        c.dim = 4;
        c.heads = 2;
        c.layers = 2;
        c.tie_weights = true;
        GPT m(c);
        m.to(f64);
        const Tensor ids = from(std::vector<std::int32_t>{1, 4, 0, 2, 3, 3}, {2, 3});
        const Tensor tgt = from(std::vector<std::int32_t>{4, 0, 2, 3, -100, 1}, {2, 3});
        GradcheckOptions o;
        o.label = "GPT";
        const auto rep = gradcheck_params([&] { return m.loss(ids, tgt); }, m.parameters(), o);
        INFO(rep.summary());
        CHECK(rep.ok);
        CHECK(rep.checked == m.num_parameters());
    }
    SECTION("encoder-decoder Transformer, post-LN, with source padding") {
        Seq2SeqConfig c;
        c.src_vocab = 5;
        c.tgt_vocab = 4;
        c.max_len = 5;
        c.dim = 4;
        c.heads = 2;
        c.encoder_layers = 1;
        c.decoder_layers = 1;
        c.hidden = 6;
        c.pre_ln = false;
        Transformer m(c);
        m.to(f64);
        const Tensor src = from(std::vector<std::int32_t>{1, 2, 3, 4, 0, 0}, {2, 3});
        const Tensor pad = from(std::vector<bool>{0, 0, 0, 0, 1, 1}, {2, 3});
        const Tensor tgt = from(std::vector<std::int32_t>{0, 1, 2, 0, 3, 3}, {2, 3});
        GradcheckOptions o;
        o.label = "Transformer";
        const auto rep = gradcheck_params([&] { return m.forward(src, tgt, pad); }, m.parameters(), o);
        INFO(rep.summary());
        CHECK(rep.ok);
    }
}

TEST_CASE("attention layers keep their last weights per head", "[nn][attention]") {
    Generator g(1);
    MultiHeadAttentionConfig c;
    c.dim = 8;
    c.heads = 2;
    MultiHeadAttention m(c, g);
    const Tensor x = randn({3, 5, 8}, g);
    m.forward(x, opts(Tensor(), true));
    CHECK(m.last_weights().shape() == Shape{3, 2, 5, 5});
    m.forward(x, randn({3, 7, 8}, g));
    CHECK(m.last_weights().shape() == Shape{3, 2, 5, 7});
    SelfAttention s(8, 4, g);
    s(x);
    CHECK(s.last_weights().shape() == Shape{3, 1, 5, 5});
}

TEST_CASE("padding in the source changes nothing the decoder sees", "[nn][models]") {
    Seq2SeqConfig c;
    c.src_vocab = 6;
    c.tgt_vocab = 6;
    c.max_len = 6;
    c.dim = 8;
    c.heads = 2;
    Transformer m(c);
    const Tensor pad = from(std::vector<bool>{0, 0, 1, 1}, {1, 4});
    const Tensor tgt = from(std::vector<std::int32_t>{0, 1, 2}, {1, 3});
    const Tensor a = m.forward(from(std::vector<std::int32_t>{3, 4, 0, 0}, {1, 4}), tgt, pad);
    const Tensor b = m.forward(from(std::vector<std::int32_t>{3, 4, 5, 1}, {1, 4}), tgt, pad);
    CHECK(max_abs_diff(a, b) < 1e-6);
    const Tensor out = m.greedy_decode(from(std::vector<std::int32_t>{3, 4, 0, 0}, {1, 4}), 0, 4, pad);
    CHECK(out.shape() == Shape{1, 4});
}

TEST_CASE("GPT generation with the key/value cache equals full recomputation", "[nn][models][generate]") {
    GPTConfig c;
    c.vocab = 11;
    c.block_size = 16;
    c.dim = 16;
    c.heads = 4;
    c.layers = 2;
    GPT m(c);
    m.eval();
    const Tensor prompt = from(std::vector<std::int32_t>{1, 2, 3, 7, 7, 0}, {2, 3});
    for (bool greedy : {true, false}) {
        SampleOptions s;
        s.greedy = greedy;
        s.temperature = 1.5;
        s.top_k = 5;
        Generator g1(9), g2(9);
        const Tensor with = m.generate(prompt, 10, s, g1, true);
        const Tensor without = m.generate(prompt, 10, s, g2, false);
        CHECK(with.shape() == Shape{2, 13});
        CHECK(with.to_vector<std::int32_t>() == without.to_vector<std::int32_t>());
    }
    // The cached logits themselves match the full forward at every position.
    KVCache cache[2];
    NoGradGuard ng;
    const Tensor ids = from(std::vector<std::int32_t>{1, 5, 2, 9, 4}, {1, 5});
    const Tensor full_logits = m(ids);
    for (std::int64_t t = 0; t < 5; ++t) {
        Tensor h = m.tok_emb(narrow(ids, 1, t, 1)) + m.pos_emb.forward(1, t);
        for (std::size_t l = 0; l < 2; ++l) h = m.blocks()[l]->forward_cached(h, cache[l]);
        const Tensor logits = linear(m.ln_f(h), m.lm_head->weight);
        CHECK(max_abs_diff(logits.to(f64), narrow(full_logits, 1, t, 1).to(f64)) < 1e-5);
    }
}

TEST_CASE("GPT generation past the context slides the window, cached and uncached alike", "[nn][models][generate]") {
    GPTConfig c;
    c.vocab = 7;
    c.block_size = 5;
    c.dim = 16;
    c.heads = 2;
    c.layers = 2;
    GPT m(c);
    m.eval();
    // Prompt 3 + 9 new tokens = 12 > block_size 5: the last 7 steps run past the context.
    const Tensor prompt = from(std::vector<std::int32_t>{1, 2, 3, 6, 0, 4}, {2, 3});
    for (bool greedy : {true, false}) {
        SampleOptions s;
        s.greedy = greedy;
        s.temperature = 2.0;  // hot, so that sampling picks many different tokens
        Generator g1(3), g2(3);
        const Tensor with = m.generate(prompt, 9, s, g1, true);
        const Tensor without = m.generate(prompt, 9, s, g2, false);
        REQUIRE(with.shape() == Shape{2, 12});
        CHECK(with.to_vector<std::int32_t>() == without.to_vector<std::int32_t>());
    }
    // Greedy, step by step by hand: each token is the argmax of the model's last position over the
    // last block_size tokens, read at positions 0 … 4 (a fresh forward of the window).
    Generator g(0);
    const auto out = m.generate(prompt, 9, SampleOptions{}, g, true).to_vector<std::int32_t>();
    NoGradGuard ng;
    for (std::int64_t b = 0; b < 2; ++b) {
        std::vector<std::int32_t> seq(out.begin() + b * 12, out.begin() + b * 12 + 3);
        for (int step = 0; step < 9; ++step) {
            const auto len = std::min<std::int64_t>(std::int64_t(seq.size()), c.block_size);
            const std::vector<std::int32_t> window(seq.end() - len, seq.end());
            const Tensor logits = m(from(window, {1, len}));
            seq.push_back(std::int32_t(argmax(narrow(logits, 1, len - 1, 1), -1).at({0, 0})));
        }
        CHECK(seq == std::vector<std::int32_t>(out.begin() + b * 12, out.begin() + (b + 1) * 12));
    }
    // A prompt longer than the context is read through the same window.
    Generator g3(0), g4(0);
    const Tensor long_prompt = from(std::vector<std::int32_t>{5, 1, 2, 3, 4, 5, 6, 0}, {1, 8});
    const Tensor a = m.generate(long_prompt, 4, SampleOptions{}, g3, true);
    const Tensor b = m.generate(narrow(long_prompt, 1, 3, 5), 4, SampleOptions{}, g4, true);
    CHECK(narrow(a, 1, 8, 4).to_vector<std::int32_t>() == narrow(b, 1, 5, 4).to_vector<std::int32_t>());
}

TEST_CASE("sampling: greedy, temperature and top-k", "[nn][generate]") {
    Generator g(4);
    const Tensor logits = from({0.0, 3.0, 1.0, 2.9}, {4});
    SampleOptions greedy;
    CHECK(sample_token(logits, greedy, g) == 1);
    SampleOptions top2;
    top2.greedy = false;
    top2.top_k = 2;
    int counts[4] = {0, 0, 0, 0};
    for (int i = 0; i < 2000; ++i) counts[sample_token(logits, top2, g)]++;
    CHECK(counts[0] == 0);
    CHECK(counts[2] == 0);
    CHECK(counts[1] > 900);  // e^3 vs e^2.9: about 52% / 48%
    CHECK(counts[3] > 800);
    SampleOptions cold = top2;
    cold.top_k = 0;
    cold.temperature = 0.01;
    CHECK(sample_token(logits, cold, g) == 1);
    cold.temperature = 0;
    CHECK_THROWS_WITH(sample_token(logits, cold, g), Catch::Contains("temperature must be > 0"));
}

TEST_CASE("sampling: top-p keeps the smallest set of likely tokens that holds p of the mass", "[nn][generate]") {
    // softmax(0, 3, 1, 2.9) = (0.024, 0.478, 0.065, 0.433): sorted, the mass adds up to 0.478, 0.911, 0.976, 1.
    Generator g(9);
    const Tensor logits = from({0.0, 3.0, 1.0, 2.9}, {4});
    auto counts = [&](double top_p, std::int64_t top_k = 0) {
        SampleOptions o;
        o.greedy = false;
        o.top_p = top_p;
        o.top_k = top_k;
        std::vector<int> c(4, 0);
        for (int i = 0; i < 3000; ++i) c[std::size_t(sample_token(logits, o, g))]++;
        return c;
    };
    CHECK(counts(0.4) == std::vector<int>{0, 3000, 0, 0});  // the first token alone holds 0.478 ≥ 0.4
    const auto half = counts(0.5);                          // 0.478 < 0.5: the second joins
    CHECK(half[0] == 0);
    CHECK(half[2] == 0);
    CHECK(half[1] > 1400);  // 0.478 / 0.911 = 52%
    CHECK(half[3] > 1250);
    const auto most = counts(0.95);  // three tokens: 0.976
    CHECK(most[0] == 0);
    CHECK(most[2] > 100);  // 0.065 / 0.976 = 6.7%
    CHECK(counts(1.0)[0] > 30);  // everything (2.4%)
    CHECK(counts(0.95, 1) == std::vector<int>{0, 3000, 0, 0});  // top-k first, then top-p
    SampleOptions bad;
    bad.greedy = false;
    bad.top_p = 0;
    CHECK_THROWS_WITH(sample_token(logits, bad, g), Catch::Contains("top_p must be in (0, 1], got 0"));
    bad.top_p = 1.5;
    CHECK_THROWS_WITH(sample_token(logits, bad, g), Catch::Contains("top_p must be in (0, 1], got 1.5"));
}

TEST_CASE("GPT generation streams: the callback sees every new token as it is made, and can stop", "[nn][models][generate]") {
    GPTConfig c;
    c.vocab = 11;
    c.block_size = 6;
    c.dim = 16;
    c.heads = 2;
    c.layers = 2;
    GPT m(c);
    m.eval();
    const Tensor prompt = from(std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}, {2, 3});
    SampleOptions s;
    s.greedy = false;
    Generator g1(5), g2(5), g3(5);
    const Tensor plain = m.generate(prompt, 9, s, g1);  // past the context of 6: the window slides
    std::vector<std::int32_t> streamed;
    const Tensor with = m.generate(prompt, 9, s, g2, true, [&](const std::vector<std::int32_t>& next) {
        REQUIRE(next.size() == 2);
        streamed.insert(streamed.end(), next.begin(), next.end());
        return true;
    });
    CHECK(with.to_vector<std::int32_t>() == plain.to_vector<std::int32_t>());
    const auto all = plain.to_vector<std::int32_t>();  // (2, 12)
    for (std::size_t step = 0; step < 9; ++step) {
        CHECK(streamed[2 * step] == all[3 + step]);
        CHECK(streamed[2 * step + 1] == all[12 + 3 + step]);
    }
    int calls = 0;
    const Tensor stopped = m.generate(prompt, 9, s, g3, true, [&](const std::vector<std::int32_t>&) { return ++calls < 4; });
    CHECK(calls == 4);
    CHECK(stopped.shape() == Shape{2, 7});
    CHECK(stopped.to_vector<std::int32_t>() == narrow(plain, 1, 0, 7).to_vector<std::int32_t>());
}

TEST_CASE("bad model input gets clear errors", "[nn][errors]") {
    Generator g(0);
    MultiHeadAttentionConfig c;
    c.dim = 10;
    c.heads = 3;
    CHECK_THROWS_WITH(MultiHeadAttention(c, g), Catch::Contains("3 heads must divide d_model 10"));
    c.heads = 2;
    MultiHeadAttention m(c, g);
    CHECK_THROWS_WITH(m.forward(zeros({2, 3, 8})), Catch::Contains("expected x of shape (B, T, 10), got (2,3,8)"));
    GPTConfig gc;
    gc.vocab = 5;
    gc.block_size = 4;
    gc.dim = 8;
    gc.heads = 2;
    GPT gpt(gc);
    CHECK_THROWS_WITH(gpt(from(std::vector<std::int32_t>{1, 7}, {1, 2})), Catch::Contains("token id 7"));
    CHECK_THROWS_WITH(gpt(zeros({1, 5}, i32)), Catch::Contains("sequence length 5 exceeds the model's maximum 4"));
    CHECK_THROWS_WITH(gpt(zeros({1, 2})), Catch::Contains("dtype i32"));
    Generator s(0);
    CHECK_THROWS_WITH(gpt.generate(zeros({1, 2}, i32), -1, SampleOptions{}, s), Catch::Contains("steps must be >= 0, got -1"));
    CHECK_THROWS_WITH(gpt.generate(zeros({1, 0}, i32), 3, SampleOptions{}, s), Catch::Contains("at least one token"));
    CHECK_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 5})), Catch::Contains("linear: input (2,3) does not match weight (4,5)"));
    CHECK_THROWS_WITH(layer_norm(zeros({2, 3}), ones({4}), zeros({4})), Catch::Contains("must both be (3)"));
    CHECK_THROWS_WITH(attention(zeros({2, 3, 4}), zeros({2, 3, 5}), zeros({2, 3, 4})), Catch::Contains("differ in head size"));
    CHECK_THROWS_WITH(head_attention(zeros({1, 2, 6}), zeros({1, 2, 6}), zeros({1, 2, 6}), 4), Catch::Contains("4 heads do not divide"));
    CHECK_THROWS_WITH(attention(zeros({2, 3}), zeros({3, 3}), zeros({3, 3}), opts(zeros({2, 3}), false)),
                      Catch::Contains("mask must be a b8 tensor"));
}

TEST_CASE("one thread and two threads give the same training step", "[nn][threads]") {
    auto run = [](int threads) {
        set_num_threads(threads);
        GPTConfig c;
        c.vocab = 32;
        c.block_size = 64;
        c.dim = 128;
        c.heads = 4;
        c.layers = 2;
        GPT m(c);
        Generator g(5);
        std::vector<std::int32_t> ids(16 * 64);
        for (auto& x : ids) x = std::int32_t(g.below(32));
        const Tensor x = from(ids, {16, 64});
        const Tensor loss = m.loss(x, x);
        loss.backward();
        std::vector<float> out{float(loss.item())};
        for (const auto& p : m.parameters()) {
            const auto v = p.grad().to_vector<float>();
            out.insert(out.end(), v.begin(), v.end());
        }
        return out;
    };
    const int before = num_threads();
    const auto one = run(1), two = run(2);
    set_num_threads(before);
    REQUIRE(one.size() == two.size());
    // Threads split rows, columns and heads, never a sum, so the results are bit-identical.
    CHECK(one == two);
}

TEST_CASE("SkipInit builds layers with zero parameters and leaves later models as they were", "[nn]") {
    GPTConfig c;
    c.vocab = 11;
    c.block_size = 8;
    c.dim = 16;
    c.heads = 2;
    c.layers = 2;
    c.seed = 5;
    const GPT reference(c);
    {
        const SkipInit outer;
        CHECK(SkipInit::active());
        {
            const SkipInit inner;  // guards nest: the inner one ending does not end the outer one
        }
        CHECK(SkipInit::active());
        GPT skipped(c);
        for (const auto& [name, p] : skipped.named_parameters()) {
            INFO(name);
            const auto v = p.to_vector<double>();
            const bool layer_norm_weight = name.find("ln") != std::string::npos && name.ends_with(".weight");
            // LayerNorm's γ starts at 1 (not drawn); everything drawn starts at 0.
            for (const double x : v) REQUIRE(x == (layer_norm_weight ? 1.0 : 0.0));
        }
    }
    CHECK_FALSE(SkipInit::active());
    // After the guard, construction draws again, and from the same streams as before.
    const GPT again(c);
    const auto a = reference.named_parameters(), b = again.named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
}
