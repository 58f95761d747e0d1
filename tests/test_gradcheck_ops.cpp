// Gradient checks of every op in ops.hpp: several shapes each, including broadcasting and size-1
// dims, in f64 with PyTorch's default tolerances (eps 1e-6, atol 1e-5, rtol 1e-3).
#include "gradcheck_cases.hpp"

using namespace qkv;
using namespace qkv::test;
using Ins = std::vector<Tensor>;

namespace {
// Cases for a binary broadcasting op; `positive_b` keeps the right operand away from 0 (for div).
CaseList binary_cases(Tensor (*op)(const Tensor&, const Tensor&), bool positive_b = false) {
    auto b = [&](const Shape& s, std::uint64_t seed) { return positive_b ? un(s, 0.5, 2.0, seed) : rn(s, seed); };
    auto f = [op](const Ins& in) { return op(in[0], in[1]); };
    return {
        {"same shape (3,4)", {rn({3, 4}, 1), b({3, 4}, 2)}, f},
        {"bias (2,3,4) and (4)", {rn({2, 3, 4}, 3), b({4}, 4)}, f},
        {"both broadcast (2,1,4) and (3,1)", {rn({2, 1, 4}, 5), b({3, 1}, 6)}, f},
        {"0-d and (2,3)", {rn({}, 7), b({2, 3}, 8)}, f},
        {"size-1 (1) and (5)", {rn({1}, 9), b({5}, 10)}, f},
    };
}

// Cases for a unary op on inputs drawn from a generator of f64 tensors.
template <class Make>
CaseList unary_cases(Tensor (*op)(const Tensor&), Make make) {
    auto f = [op](const Ins& in) { return op(in[0]); };
    return {
        {"(7)", {make(Shape{7}, 11)}, f},
        {"(2,3)", {make(Shape{2, 3}, 12)}, f},
        {"(1,1,4)", {make(Shape{1, 1, 4}, 13)}, f},
        {"0-d", {make(Shape{}, 14)}, f},
    };
}
auto normal = [](const Shape& s, std::uint64_t seed) { return rn(s, seed); };
auto positive = [](const Shape& s, std::uint64_t seed) { return un(s, 0.3, 3.0, seed); };
auto wide = [](const Shape& s, std::uint64_t seed) { return mul(rn(s, seed), 4.0); };  // tails of sigmoid/tanh
}  // namespace

// ---- elementwise ------------------------------------------------------------------------------------
GRADCHECK_OP("add") { return binary_cases(add); }
GRADCHECK_OP("sub") { return binary_cases(sub); }
GRADCHECK_OP("mul") { return binary_cases(mul); }
GRADCHECK_OP("div") { return binary_cases(div, true); }
GRADCHECK_OP("add_scalar") {
    return {{"x + 2.5", {rn({3, 4})}, [](const Ins& in) { return in[0] + 2.5; }},
            {"1 - x (neg then add)", {rn({5})}, [](const Ins& in) { return 1.0 - in[0]; }}};
}
GRADCHECK_OP("mul_scalar") {
    return {{"x * -3", {rn({3, 4})}, [](const Ins& in) { return in[0] * -3.0; }},
            {"x / 4", {rn({2, 1, 3})}, [](const Ins& in) { return in[0] / 4.0; }}};
}
GRADCHECK_OP("rdiv_scalar") {
    return {{"2 / x", {un({3, 4}, 0.5, 2, 3)}, [](const Ins& in) { return 2.0 / in[0]; }},
            {"-1 / x, 0-d", {un({}, 0.5, 2, 4)}, [](const Ins& in) { return rdiv(-1.0, in[0]); }}};
}
GRADCHECK_OP("pow") {
    return {{"x^2", {rn({3, 4})}, [](const Ins& in) { return pow(in[0], 2.0); }},
            {"x^3 (1,5)", {rn({1, 5}, 2)}, [](const Ins& in) { return pow(in[0], 3.0); }},
            {"x^0.5", {un({6}, 0.3, 3, 3)}, [](const Ins& in) { return pow(in[0], 0.5); }},
            {"x^-1.5", {un({2, 3}, 0.3, 3, 4)}, [](const Ins& in) { return pow(in[0], -1.5); }}};
}
GRADCHECK_OP("neg") { return unary_cases(neg, normal); }
GRADCHECK_OP("exp") { return unary_cases(exp, normal); }
GRADCHECK_OP("log") { return unary_cases(log, positive); }
GRADCHECK_OP("sqrt") { return unary_cases(sqrt, positive); }
GRADCHECK_OP("tanh") { return unary_cases(tanh, wide); }
GRADCHECK_OP("sigmoid") { return unary_cases(sigmoid, wide); }
GRADCHECK_OP("relu") { return unary_cases(relu, normal); }
GRADCHECK_OP("gelu") { return unary_cases(gelu, wide); }
GRADCHECK_OP("gelu_erf") { return unary_cases(gelu_erf, wide); }

// ---- reductions -----------------------------------------------------------------------------------
GRADCHECK_OP("sum") {
    return {{"all of (3,4)", {rn({3, 4})}, [](const Ins& in) { return sum(in[0]); }},
            {"dim 1 of (2,3,4)", {rn({2, 3, 4})}, [](const Ins& in) { return sum(in[0], 1); }},
            {"dim -1 keepdim", {rn({2, 3})}, [](const Ins& in) { return sum(in[0], -1, true); }},
            {"size-1 dim", {rn({3, 1})}, [](const Ins& in) { return sum(in[0], 1); }}};
}
GRADCHECK_OP("mean") {
    return {{"all of (3,4)", {rn({3, 4})}, [](const Ins& in) { return mean(in[0]); }},
            {"dim 0 of (2,3,4)", {rn({2, 3, 4})}, [](const Ins& in) { return mean(in[0], 0); }},
            {"dim -1 keepdim", {rn({4, 5})}, [](const Ins& in) { return mean(in[0], -1, true); }}};
}
GRADCHECK_OP("max") {
    return {{"all of (3,4)", {rn({3, 4})}, [](const Ins& in) { return max(in[0]); }},
            {"dim 1 of (2,3,4)", {rn({2, 3, 4})}, [](const Ins& in) { return max(in[0], 1); }},
            {"dim -1 keepdim", {rn({4, 5})}, [](const Ins& in) { return max(in[0], -1, true); }}};
}
GRADCHECK_OP("var") {
    return {{"unbiased dim -1 of (3,5)", {rn({3, 5})}, [](const Ins& in) { return var(in[0], -1); }},
            {"biased dim 1 keepdim (2,4,3)", {rn({2, 4, 3})}, [](const Ins& in) { return var(in[0], 1, true, false); }},
            {"biased, 1 element", {rn({4, 1})}, [](const Ins& in) { return var(in[0], 1, false, false); }}};
}

// ---- shape ----------------------------------------------------------------------------------------
// Shape ops only move elements; multiplying by a fixed random tensor afterwards makes every output
// position carry a different weight, so a gradient routed to the wrong place cannot pass.
GRADCHECK_OP("reshape") {
    return {{"(2,3,4) -> (6,-1)", {rn({2, 3, 4})}, [](const Ins& in) { return reshape(in[0], {6, -1}); }},
            {"(5) -> (1,5,1)", {rn({5})}, [](const Ins& in) { return reshape(in[0], {1, 5, 1}); }}};
}
GRADCHECK_OP("view") {
    return {{"(2,6) -> (3,4)", {rn({2, 6})}, [](const Ins& in) { return view(in[0], {3, 4}); }},
            {"(4) -> (2,2)", {rn({4})}, [](const Ins& in) { return view(in[0], {2, -1}); }}};
}
GRADCHECK_OP("permute") {
    return {{"(2,3,4) by (2,0,1)", {rn({2, 3, 4})}, [](const Ins& in) { return permute(in[0], {2, 0, 1}); }},
            {"(3,1,2) by (1,2,0)", {rn({3, 1, 2})}, [](const Ins& in) { return permute(in[0], {1, 2, 0}); }}};
}
GRADCHECK_OP("transpose") {
    return {{"(3,4) 0<->1", {rn({3, 4})}, [](const Ins& in) { return transpose(in[0], 0, 1); }},
            {"(2,3,4) 0<->-1", {rn({2, 3, 4})}, [](const Ins& in) { return transpose(in[0], 0, -1); }}};
}
GRADCHECK_OP("narrow") {
    return {{"(4,5) dim 1 [1,4)", {rn({4, 5})}, [](const Ins& in) { return narrow(in[0], 1, 1, 3); }},
            {"(3,2,2) dim 0 [2,3)", {rn({3, 2, 2})}, [](const Ins& in) { return narrow(in[0], 0, 2, 1); }}};
}
GRADCHECK_OP("slice") {
    return {{"(6,3) dim 0 ::2", {rn({6, 3})}, [](const Ins& in) { return slice(in[0], 0, 0, 6, 2); }},
            {"(2,7) dim 1 -5:-1:3", {rn({2, 7})}, [](const Ins& in) { return slice(in[0], 1, -5, -1, 3); }}};
}
GRADCHECK_OP("split") {
    return {{"(5,3) sizes {2,3} dim 0", {rn({5, 3})},
             [](const Ins& in) {
                 auto p = split(in[0], {2, 3}, 0);
                 return concat({p[1] * 2.0, p[0]}, 0);
             }},
            {"(2,5) size 2 dim 1", {rn({2, 5})}, [](const Ins& in) {
                 auto p = split(in[0], 2, 1);  // pieces of 2, 2, 1
                 return concat({p[2], p[0] * 3.0, p[1]}, 1);
             }}};
}
GRADCHECK_OP("concat") {
    return {{"three along dim 1", {rn({2, 1}), rn({2, 3}, 2), rn({2, 2}, 3)},
             [](const Ins& in) { return concat({in[0], in[1], in[2]}, 1); }},
            {"two along dim 0 (3-d)", {rn({1, 2, 2}), rn({2, 2, 2}, 2)},
             [](const Ins& in) { return concat({in[0], in[1]}, 0); }},
            {"same tensor twice", {rn({3})}, [](const Ins& in) { return concat({in[0], in[0]}, 0); }}};
}
GRADCHECK_OP("unsqueeze") {
    return {{"(3,4) at 1", {rn({3, 4})}, [](const Ins& in) { return unsqueeze(in[0], 1); }},
            {"0-d at 0", {rn({})}, [](const Ins& in) { return unsqueeze(in[0], 0); }}};
}
GRADCHECK_OP("squeeze") {
    return {{"(3,1,4) dim 1", {rn({3, 1, 4})}, [](const Ins& in) { return squeeze(in[0], 1); }},
            {"(1,3,1) all", {rn({1, 3, 1})}, [](const Ins& in) { return squeeze(in[0]); }}};
}
GRADCHECK_OP("expand") {
    return {{"(3,1) -> (2,3,4)", {rn({3, 1})}, [](const Ins& in) { return expand(in[0], {2, 3, 4}); }},
            {"(1,4) -> (-1... 5,4)", {rn({1, 4})}, [](const Ins& in) { return expand(in[0], {5, -1}); }}};
}

// ---- matmul -----------------------------------------------------------------------------------------
GRADCHECK_OP("matmul") {
    auto f = [](const Ins& in) { return matmul(in[0], in[1]); };
    return {{"(3,4)@(4,5)", {rn({3, 4}), rn({4, 5}, 2)}, f},
            {"(2,3,4)@(4,5) folded", {rn({2, 3, 4}), rn({4, 5}, 2)}, f},
            {"(2,3,4)@(2,4,5) batched", {rn({2, 3, 4}), rn({2, 4, 5}, 2)}, f},
            {"(3,4)@(2,4,5) shared left", {rn({3, 4}), rn({2, 4, 5}, 2)}, f},
            {"(2,1,3,2)@(1,3,2,2) broadcast", {rn({2, 1, 3, 2}), rn({1, 3, 2, 2}, 2)}, f},
            {"(1,1)@(1,1)", {rn({1, 1}), rn({1, 1}, 2)}, f},
            {"K=1 outer product", {rn({3, 1}), rn({1, 4}, 2)}, f}};
}

// ---- softmax, losses, lookup, masks ---------------------------------------------------------------
GRADCHECK_OP("softmax") {
    return {{"(3,4) dim -1", {rn({3, 4})}, [](const Ins& in) { return softmax(in[0], -1); }},
            {"(3,4) dim 0", {rn({3, 4})}, [](const Ins& in) { return softmax(in[0], 0); }},
            {"(2,3,4) dim 1, large logits", {mul(rn({2, 3, 4}), 10.0)}, [](const Ins& in) { return softmax(in[0], 1); }},
            {"single element", {rn({2, 1})}, [](const Ins& in) { return softmax(in[0], -1); }}};
}
GRADCHECK_OP("log_softmax") {
    return {{"(3,4) dim -1", {rn({3, 4})}, [](const Ins& in) { return log_softmax(in[0], -1); }},
            {"(2,3,4) dim 1", {rn({2, 3, 4})}, [](const Ins& in) { return log_softmax(in[0], 1); }},
            {"large logits", {mul(rn({2, 5}), 30.0)}, [](const Ins& in) { return log_softmax(in[0]); }}};
}
GRADCHECK_OP("cross_entropy") {
    const Tensor t1 = from(std::vector<std::int32_t>{0, 3, -100, 6, 2}, {5});
    const Tensor t2 = from(std::vector<std::int32_t>{1, 0, 3, 3, -1, 2}, {2, 3});
    return {{"(5,7) mean with an ignored row", {rn({5, 7})}, [t1](const Ins& in) { return cross_entropy(in[0], t1); }},
            {"(2,3,4) sum, ignore -1", {rn({2, 3, 4})},
             [t2](const Ins& in) { return cross_entropy(in[0], t2, -1, Reduction::sum); }},
            {"(5,7) none", {rn({5, 7})},
             [t1](const Ins& in) { return cross_entropy(in[0], t1, -100, Reduction::none); }}};
}
GRADCHECK_OP("embedding") {
    const Tensor ids = from(std::vector<std::int32_t>{0, 5, 2, 5, 1, 0, 0, 3}, {2, 4});
    const Tensor one = from(std::vector<std::int32_t>{2}, {1});
    return {{"(6,3) table, (2,4) ids with repeats", {rn({6, 3})}, [ids](const Ins& in) { return embedding(in[0], ids); }},
            {"one id", {rn({4, 2})}, [one](const Ins& in) { return embedding(in[0], one); }}};
}
GRADCHECK_OP("masked_fill") {
    const Tensor m34 = from(std::vector<bool>{1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0}, {3, 4});
    const Tensor m4 = from(std::vector<bool>{0, 1, 0, 0}, {4});
    const Tensor m31 = from(std::vector<bool>{0, 1, 0}, {3, 1});
    return {{"same shape", {rn({3, 4})}, [m34](const Ins& in) { return masked_fill(in[0], m34, -5.0); }},
            {"mask (4) broadcast", {rn({3, 4})}, [m4](const Ins& in) { return masked_fill(in[0], m4, 0.5); }},
            {"mask (3,1) broadcast", {rn({3, 4})}, [m31](const Ins& in) { return masked_fill(in[0], m31, 0.0); }}};
}
GRADCHECK_OP("where") {
    const Tensor c34 = from(std::vector<bool>{1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1}, {3, 4});
    const Tensor c31 = from(std::vector<bool>{0, 1, 1}, {3, 1});
    return {{"cond (3,4), a (3,4), b (4)", {rn({3, 4}), rn({4}, 2)},
             [c34](const Ins& in) { return where(c34, in[0], in[1]); }},
            {"cond (3,1), a (1,4), b 0-d", {rn({1, 4}), rn({}, 2)},
             [c31](const Ins& in) { return where(c31, in[0], in[1]); }}};
}

// ---- neural-network ops -----------------------------------------------------------------------
namespace {
AttentionOptions causal_opt() {
    AttentionOptions o;
    o.causal = true;
    return o;
}
AttentionOptions mask_opt(const Tensor& m) {
    AttentionOptions o;
    o.mask = m;
    return o;
}
// The same options, computed by the tiled kernel (online softmax; no stored weights).
AttentionOptions tiled(AttentionOptions o) {
    o.kernel = AttentionKernel::tiled;
    return o;
}
}  // namespace

GRADCHECK_OP("linear") {
    return {{"(2,3,4) x (5,4) + (5)", {rn({2, 3, 4}), rn({5, 4}, 2), rn({5}, 3)},
             [](const Ins& in) { return linear(in[0], in[1], in[2]); }},
            {"(3,4) x (2,4), no bias", {rn({3, 4}), rn({2, 4}, 2)}, [](const Ins& in) { return linear(in[0], in[1]); }},
            {"one row, one output", {rn({1, 3}), rn({1, 3}, 2), rn({1}, 3)},
             [](const Ins& in) { return linear(in[0], in[1], in[2]); }}};
}
GRADCHECK_OP("linear_gelu") {
    // Inputs around 0, where GELU bends most (its slope goes from 0 to 1 within a few units).
    return {{"(2,3,4) x (5,4) + (5)", {rn({2, 3, 4}), rn({5, 4}, 2), rn({5}, 3)},
             [](const Ins& in) { return linear_gelu(in[0], in[1], in[2]); }},
            {"(3,4) x (6,4), no bias", {rn({3, 4}), rn({6, 4}, 2)}, [](const Ins& in) { return linear_gelu(in[0], in[1]); }},
            {"one row, one output", {rn({1, 3}), rn({1, 3}, 2), rn({1}, 3)},
             [](const Ins& in) { return linear_gelu(in[0], in[1], in[2]); }}};
}
GRADCHECK_OP("layer_norm") {
    return {{"(2,3,5)", {rn({2, 3, 5}), un({5}, 0.5, 1.5, 2), rn({5}, 3)},
             [](const Ins& in) { return layer_norm(in[0], in[1], in[2]); }},
            {"(4,8) large offset", {add(rn({4, 8}), 10.0), un({8}, 0.5, 1.5, 2), rn({8}, 3)},
             [](const Ins& in) { return layer_norm(in[0], in[1], in[2]); }},
            {"(3,2) eps 1e-2", {rn({3, 2}), un({2}, 0.5, 1.5, 2), rn({2}, 3)},
             [](const Ins& in) { return layer_norm(in[0], in[1], in[2], 1e-2); }}};
}
GRADCHECK_OP("dropout") {
    // A fresh generator with the same seed inside f: the same mask on every evaluation.
    return {{"(4,5) p=0.3", {rn({4, 5})},
             [](const Ins& in) {
                 Generator g(11);
                 return dropout(in[0], 0.3, g);
             }},
            {"(2,3,2) p=0.5", {rn({2, 3, 2})}, [](const Ins& in) {
                 Generator g(12);
                 return dropout(in[0], 0.5, g);
             }}};
}
GRADCHECK_OP("attention") {
    const Tensor pad = from(std::vector<bool>{0, 0, 1, 1, 0, 0, 0, 1}, {2, 1, 1, 4});  // key padding
    const Tensor all = from(std::vector<bool>{1, 1, 1, 0, 0, 1, 0, 0, 0}, {3, 3});    // row 0 fully blocked
    return {{"(2,3,4) self, no mask", {rn({2, 3, 4}), rn({2, 3, 4}, 2), rn({2, 3, 4}, 3)},
             [](const Ins& in) { return attention(in[0], in[1], in[2]); }},
            {"(2,2,4,3) causal", {rn({2, 2, 4, 3}), rn({2, 2, 4, 3}, 2), rn({2, 2, 4, 3}, 3)},
             [](const Ins& in) { return attention(in[0], in[1], in[2], causal_opt()); }},
            {"(1,1,18,2) causal: two row blocks", {rn({1, 1, 18, 2}), rn({1, 1, 18, 2}, 2), rn({1, 1, 18, 2}, 3)},
             [](const Ins& in) { return attention(in[0], in[1], in[2], causal_opt()); }},
            {"(2,1,3,2) q, (2,1,4,2) k, (2,1,4,5) v, key padding", {rn({2, 1, 3, 2}), rn({2, 1, 4, 2}, 2), rn({2, 1, 4, 5}, 3)},
             [pad](const Ins& in) { return attention(in[0], in[1], in[2], mask_opt(pad)); }},
            {"(3,2) fully blocked row", {rn({3, 2}), rn({3, 2}, 2), rn({3, 2}, 3)},
             [all](const Ins& in) { return attention(in[0], in[1], in[2], mask_opt(all)); }},
            // The tiled kernel: 70 queries and keys are two blocks of each (64 + 6), so the online
            // softmax corrects its running maximum across blocks and the causal diagonal cuts a tile.
            {"tiled (1,70,2) causal: two query and key blocks", {rn({1, 70, 2}), rn({1, 70, 2}, 2), rn({1, 70, 2}, 3)},
             [](const Ins& in) { return attention(in[0], in[1], in[2], tiled(causal_opt())); }},
            {"tiled (2,1,3,2) q, (2,1,4,2) k, (2,1,4,5) v, key padding", {rn({2, 1, 3, 2}), rn({2, 1, 4, 2}, 2), rn({2, 1, 4, 5}, 3)},
             [pad](const Ins& in) { return attention(in[0], in[1], in[2], tiled(mask_opt(pad))); }},
            {"tiled (3,2) fully blocked row", {rn({3, 2}), rn({3, 2}, 2), rn({3, 2}, 3)},
             [all](const Ins& in) { return attention(in[0], in[1], in[2], tiled(mask_opt(all))); }},
            {"tiled (4,2) q, (67,2) k, v: queries at the end of the keys, causal", {rn({4, 2}), rn({67, 2}, 2), rn({67, 3}, 3)},
             [](const Ins& in) { return attention(in[0], in[1], in[2], tiled(causal_opt())); }}};
}
GRADCHECK_OP("head_attention") {
    return {{"(2,4,6) 3 heads causal", {rn({2, 4, 6}), rn({2, 4, 6}, 2), rn({2, 4, 6}, 3)},
             [](const Ins& in) { return head_attention(in[0], in[1], in[2], 3, causal_opt()); }},
            {"cross: (1,2,4) q, (1,5,4) kv, 2 heads", {rn({1, 2, 4}), rn({1, 5, 4}, 2), rn({1, 5, 4}, 3)},
             [](const Ins& in) { return head_attention(in[0], in[1], in[2], 2); }},
            {"tiled (1,66,4) 2 heads causal", {rn({1, 66, 4}), rn({1, 66, 4}, 2), rn({1, 66, 4}, 3)},
             [](const Ins& in) { return head_attention(in[0], in[1], in[2], 2, tiled(causal_opt())); }}};
}
GRADCHECK_OP("head_attention_qkv") {
    return {{"(2,4,6) packed, 1 head... (C=2), causal", {rn({2, 4, 6})},
             [](const Ins& in) { return head_attention_qkv(in[0], 1, causal_opt()); }},
            {"(1,3,12) packed, 2 heads", {rn({1, 3, 12})}, [](const Ins& in) { return head_attention_qkv(in[0], 2); }},
            {"tiled (1,65,6) packed, 2 heads, causal", {rn({1, 65, 6})},
             [](const Ins& in) { return head_attention_qkv(in[0], 2, tiled(causal_opt())); }}};
}
