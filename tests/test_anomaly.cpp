// Autograd that cannot quietly go wrong: a second backward through a freed graph is an error (not
// doubled gradients), and anomaly mode names the op and the module where the first NaN or
// infinity appeared, forward or backward.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "qkv/qkv.hpp"

using namespace qkv;
using Catch::Contains;

TEST_CASE("backward twice through the same graph is an error, as in PyTorch", "[autograd][errors]") {
    Tensor w = from({1.0, 2.0, 3.0}, {3}, f64).requires_grad_();
    const Tensor loss = sum(tanh(w * w));
    loss.backward();
    const std::vector<double> once = w.grad().to_vector<double>();
    CHECK_THROWS_WITH(loss.backward(), Contains("backward: trying to backward through the graph a second time") &&
                                           Contains("retain_graph"));
    // The refused backward changed nothing (it is checked before any node runs).
    CHECK(w.grad().to_vector<double>() == once);
    // Part of a freed graph, reached from another loss, is refused as well.
    Tensor v = from({0.5, 0.25}, {2}, f64).requires_grad_();
    const Tensor h = exp(v);
    sum(h).backward();
    CHECK_THROWS_WITH(sum(h * 2.0).backward(), Contains("a second time"));
}

TEST_CASE("backward(retain_graph = true) keeps the graph, and the second backward accumulates", "[autograd]") {
    Tensor w = from({1.0, 2.0, 3.0}, {3}, f64).requires_grad_();
    const Tensor loss = sum(tanh(w * w));
    loss.backward(/*retain_graph=*/true);
    const std::vector<double> once = w.grad().to_vector<double>();
    loss.backward();  // allowed: the first one retained the graph; this one frees it
    const std::vector<double> twice = w.grad().to_vector<double>();
    for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == 2 * once[i]);
    CHECK_THROWS_WITH(loss.backward(), Contains("a second time"));
    // With an explicit upstream gradient too.
    Tensor x = from({1.0, -1.0}, {2}, f64).requires_grad_();
    const Tensor y = x * x;
    y.backward(ones_like(y), true);
    y.backward(ones_like(y), true);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{4.0, -4.0});
}

namespace {
// A tiny GPT and a batch for it.
nn::GPTConfig tiny_gpt(bool fused = true) {
    nn::GPTConfig c;
    c.vocab = 11;
    c.block_size = 8;
    c.dim = 16;
    c.heads = 2;
    c.layers = 2;
    c.fused = fused;
    return c;
}
Tensor ids() { return from(std::vector<std::int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 6, 8}, {2, 6}); }
Tensor targets() { return from(std::vector<std::int32_t>{2, 3, 4, 5, 6, 7, 4, 6, 8, 10, 1, 3}, {2, 6}); }

Tensor& parameter(nn::Module& m, const std::string& name) {
    static std::vector<NamedTensor> params;
    params = m.named_parameters();
    for (auto& [n, p] : params)
        if (n == name) return p;
    FAIL("no parameter " << name);
    return params.front().second;
}
}  // namespace

TEST_CASE("modules know their dotted path, and each forward enters it", "[anomaly]") {
    nn::GPT gpt(tiny_gpt());
    CHECK(gpt.scope_path().empty());
    CHECK(gpt.blocks().at(1)->attn.scope_path() == "blocks.1.attn");
    CHECK(gpt.blocks().at(0)->mlp.fc2.scope_path() == "blocks.0.mlp.fc2");
    CHECK(current_scope() == nullptr);
    {
        const ScopeGuard in(gpt.blocks().at(0)->mlp);
        CHECK(current_scope() == &gpt.blocks().at(0)->mlp);
    }
    CHECK(current_scope() == nullptr);
}

TEST_CASE("anomaly mode is off by default and costs nothing when off", "[anomaly]") {
    CHECK_FALSE(detect_anomaly_enabled());
    CHECK(std::isinf(exp(from({1000.0}, {1})).item()));  // no check, no error
    {
        const AnomalyMode on;
        CHECK(detect_anomaly_enabled());
        {
            const AnomalyMode off(false);
            CHECK_FALSE(detect_anomaly_enabled());
        }
        CHECK(detect_anomaly_enabled());
    }
    CHECK_FALSE(detect_anomaly_enabled());
}

TEST_CASE("anomaly mode: a NaN parameter is named at the first op that reads it, with the module", "[anomaly]") {
    nn::GPT gpt(tiny_gpt());
    parameter(gpt, "blocks.1.mlp.fc1.weight").data<float>()[5] = std::nanf("");
    // Without anomaly mode the NaN just flows into the loss.
    CHECK(std::isnan(gpt.loss(ids(), targets()).item()));
    const AnomalyMode on;
    try {
        (void)gpt.loss(ids(), targets());
        FAIL("no anomaly reported");
    } catch (const AnomalyError& e) {
        CHECK(e.op() == "linear_gelu");  // fc1 and its GELU, one op (nn::FeedForward)
        CHECK(e.scope() == "blocks.1.mlp.fc1");
        CHECK_FALSE(e.in_backward());
        CHECK_THAT(std::string(e.what()),
                   Contains("anomaly: the forward of 'linear_gelu' (in blocks.1.mlp.fc1) produced NaN (first at index") &&
                       Contains("its input 1 already held NaN (first at index 5 of (64,16)), a leaf that requires grad: a parameter"));
    }
}

TEST_CASE("anomaly mode: an infinity or NaN made from finite inputs is reported where it is made", "[anomaly]") {
    const AnomalyMode on;
    const Tensor big = from({1.0, 1000.0}, {2}).requires_grad_();
    CHECK_THROWS_WITH(exp(big), Contains("anomaly: the forward of 'exp' (outside any module) produced inf (first at "
                                         "index 1 of (2)) from finite inputs"));
    CHECK_THROWS_WITH(log(from({2.0, -1.0}, {2})), Contains("the forward of 'log' (outside any module) produced NaN"));
    // An infinity passing through later ops is not reported again (only where it first appeared).
    const Tensor inf_in = from({1.0, std::numeric_limits<double>::infinity()}, {2});
    CHECK_NOTHROW(inf_in * 2.0);
    // But a NaN made from it is, naming where the infinity came from.
    CHECK_THROWS_WITH(inf_in - inf_in, Contains("the forward of 'sub' (outside any module) produced NaN") &&
                                           Contains("its input 0 already held inf"));
}

TEST_CASE("anomaly mode: masked_fill's -inf is intended, and passes through softmax", "[anomaly]") {
    const AnomalyMode on;
    // The composed attention path masks scores with -inf, then softmax: no anomaly.
    nn::GPT composed(tiny_gpt(/*fused=*/false));
    const Tensor loss = composed.loss(ids(), targets());
    CHECK(std::isfinite(loss.item()));
    CHECK_NOTHROW(loss.backward());
    // A row with every position masked: qkv's softmax gives zeros there (no 0/0), and log_softmax
    // passes the -inf through; neither is an anomaly.
    const Tensor scores = zeros({2, 3});
    const Tensor all = from(std::vector<bool>{true, true, true, false, false, true}, {2, 3});
    const Tensor masked = masked_fill(scores, all, -std::numeric_limits<double>::infinity());
    CHECK(softmax(masked, -1).to_vector<float>() == std::vector<float>{0, 0, 0, 0.5f, 0.5f, 0});
    CHECK_NOTHROW(log_softmax(masked, -1));
    // Another op that makes -inf from finite inputs is reported: only masked_fill means to.
    CHECK_THROWS_WITH(log(zeros({2})), Contains("the forward of 'log' (outside any module) produced -inf (first at index "
                                                "0 of (2)) from finite inputs"));
}

TEST_CASE("anomaly mode: a backward that makes a non-finite gradient is named", "[anomaly]") {
    // sqrt(0) = 0 is fine, its derivative 1/(2·sqrt(0)) is not.
    const Tensor x = from({4.0, 0.0}, {2}, f64).requires_grad_();
    Tensor y;
    {
        const AnomalyMode on;
        y = sum(sqrt(x) * 3.0);
        try {
            y.backward();
            FAIL("no anomaly reported");
        } catch (const AnomalyError& e) {
            CHECK(e.op() == "sqrt");
            CHECK(e.in_backward());
            CHECK_THAT(std::string(e.what()), Contains("anomaly: the backward of 'sqrt' (recorded outside any module) "
                                                       "produced inf (first at index 1 of (2)) in the gradient of its "
                                                       "input 0, from a finite upstream gradient"));
        }
    }
    // In a module, the report names it.
    nn::GPT gpt(tiny_gpt());
    const AnomalyMode on;
    const Tensor loss = gpt.loss(ids(), targets());
    CHECK_THROWS_WITH(loss.backward(from({std::nan("")}, {})), Contains("backward was given a gradient that holds NaN"));
}
