// Bad input: every op throws qkv::Error naming itself and the offending shapes, dtypes or values.
#include <catch2/catch.hpp>

#include "qkv/qkv.hpp"

using namespace qkv;
using Catch::Contains;

TEST_CASE("shape mismatches name the op and both shapes", "[errors]") {
    CHECK_THROWS_AS(matmul(zeros({2, 3}), zeros({4, 5})), Error);
    CHECK_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: inner dimensions differ: (2,3) @ (4,5)");
    CHECK_THROWS_WITH(matmul(zeros({3}), zeros({3, 2})), Contains("at least 2 dims"));
    CHECK_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), Contains("matmul: shapes (2) and (3) cannot be broadcast"));
    CHECK_THROWS_WITH(add(zeros({2, 3}), zeros({4, 3})), Contains("add: shapes (2,3) and (4,3) cannot be broadcast"));
    CHECK_THROWS_WITH(mul(zeros({2}), zeros({3})), Contains("mul: shapes (2) and (3)"));
    CHECK_THROWS_WITH(reshape(zeros({2, 3}), {4, 2}), Contains("reshape: cannot reshape (2,3) (6 elements) into (4,2)"));
    CHECK_THROWS_WITH(reshape(zeros({2, 3}), {-1, -1}), Contains("more than one -1"));
    CHECK_THROWS_WITH(reshape(zeros({2, 3}), {-1, 4}), Contains("cannot reshape (2,3)"));
    CHECK_THROWS_WITH(concat({zeros({2, 3}), zeros({3, 3})}, 1), Contains("concat: shapes (2,3) and (3,3) differ outside dim 1"));
    CHECK_THROWS_WITH(concat({}, 0), Contains("at least one"));
    CHECK_THROWS_WITH(split(zeros({5}), {2, 2}, 0), Contains("add up to 4"));
    CHECK_THROWS_WITH(split(zeros({5}), 0, 0), Contains("piece size must be >= 1"));
    CHECK_THROWS_WITH(squeeze(zeros({2, 3}), 0), Contains("squeeze: dim 0 of (2,3) has size 2"));
    CHECK_THROWS_WITH(expand(zeros({2, 3}), {4, 3}), Contains("expand: cannot expand (2,3) to (4,3)"));
    CHECK_THROWS_WITH(expand(zeros({2, 3}), {3}), Contains("fewer dims"));
    CHECK_THROWS_WITH(permute(zeros({2, 3}), {0, 0}), Contains("not a permutation"));
    CHECK_THROWS_WITH(permute(zeros({2, 3}), {0}), Contains("got 1 dims"));
    CHECK_THROWS_WITH(narrow(zeros({4}), 0, 2, 3), Contains("narrow: [2, 5) out of range for dim 0 of size 4"));
    CHECK_THROWS_WITH(slice(zeros({4}), 0, 0, 4, 0), Contains("step must be >= 1"));
    CHECK_THROWS_WITH(masked_fill(zeros({2}), full({3, 2}, 1, b8), 0), Contains("must broadcast to the input's shape (2)"));
    CHECK_THROWS_WITH(where(full({3}, 1, b8), zeros({2}), zeros({2})), Contains("where: shapes (3) and (2) and (2)"));
}

TEST_CASE("dims out of range", "[errors]") {
    CHECK_THROWS_WITH(sum(zeros({2, 3}), 2), "sum: dim 2 out of range for a tensor with 2 dims");
    CHECK_THROWS_WITH(softmax(zeros({2, 3}), -3), Contains("softmax: dim -3 out of range"));
    CHECK_THROWS_WITH(transpose(zeros({2}), 0, 1), Contains("transpose: dim 1 out of range"));
    CHECK_THROWS_WITH(max(zeros({2}), 5), Contains("max: dim 5"));
    CHECK_THROWS_WITH(softmax(scalar(1), 0), Contains("softmax: dim 0 out of range for a tensor with 0 dims"));
    CHECK_THROWS_WITH(max(zeros({0})), Contains("empty dimension"));
    CHECK_THROWS_WITH(mean(zeros({0})), Contains("mean over an empty dimension"));
    CHECK_THROWS_WITH(var(zeros({3, 1}), 1), Contains("var: unbiased variance needs at least 2 elements"));
}

TEST_CASE("wrong dtypes are named, never silently converted", "[errors]") {
    const Tensor ids = from(std::vector<std::int32_t>{1, 2}, {2});
    CHECK_THROWS_WITH(exp(ids), "exp: input must be f32 or f64, got i32 (2)");
    CHECK_THROWS_WITH(add(zeros({2}), zeros({2}, f64)), Contains("add: dtypes differ: f32 (2) and f64 (2)"));
    CHECK_THROWS_WITH(matmul(zeros({2, 2}), zeros({2, 2}, f64)), Contains("matmul: dtypes differ"));
    CHECK_THROWS_WITH(cross_entropy(zeros({2, 3}), zeros({2})), Contains("targets must be i32 class indices, got f32"));
    CHECK_THROWS_WITH(embedding(zeros({4, 2}), zeros({3})), Contains("ids must be i32 token ids, got f32"));
    CHECK_THROWS_WITH(embedding(ids, ids), Contains("weight must be f32 or f64, got i32"));
    CHECK_THROWS_WITH(masked_fill(zeros({2}), zeros({2}), 0), Contains("mask must be a b8 (boolean) tensor, got f32"));
    CHECK_THROWS_WITH(randn({2}, *std::make_unique<Generator>(1), i32), Contains("randn: expected a floating-point"));
}

TEST_CASE("out-of-range token ids and targets", "[errors]") {
    const Tensor w = zeros({5, 3});
    CHECK_THROWS_WITH(embedding(w, from(std::vector<std::int32_t>{1, 5}, {2})),
                      "embedding: token id 5 at position 1 is out of range for a vocabulary of 5 (weight (5,3))");
    CHECK_THROWS_WITH(embedding(w, from(std::vector<std::int32_t>{-1}, {1})), Contains("token id -1"));
    CHECK_THROWS_WITH(cross_entropy(zeros({2, 4}), from(std::vector<std::int32_t>{0, 4}, {2})),
                      Contains("cross_entropy: target 4 at position 1 is out of range [0, 4)"));
    CHECK_THROWS_WITH(cross_entropy(zeros({2, 4}), from(std::vector<std::int32_t>{0, 1, 2}, {3})),
                      Contains("logits (2,4) need targets of shape (2), got (3)"));
    CHECK_THROWS_WITH(embedding(zeros({5}), from(std::vector<std::int32_t>{0}, {1})), Contains("weight must be (V, C)"));
}

TEST_CASE("bad creation arguments", "[errors]") {
    Generator g(1);
    CHECK_THROWS_WITH(from({1, 2, 3}, {2, 2}), "from: 3 values do not fill shape (2,2) (4 elements)");
    CHECK_THROWS_WITH(zeros({2, -1}), Contains("negative dimension in shape (2,-1)"));
    CHECK_THROWS_WITH(arange(-1), Contains("arange: n must be >= 0"));
    CHECK_THROWS_WITH(arange(0, 1, 0), Contains("step must be non-zero"));
    // non-finite bounds used to reach int64_t(inf), and huge i32 ranges static_cast<int32_t>(3e9)
    CHECK_THROWS_WITH(arange(0, INFINITY, 1), "arange: [0, inf) in steps of 1 does not give a finite, storable number of elements");
    CHECK_THROWS_WITH(arange(NAN, 1, 1), Contains("arange: [nan, 1) in steps of 1"));
    CHECK_THROWS_WITH(arange(3e9, 3e9 + 2, 1, i32), "arange: value 3000000000 does not fit in i32 (range [3000000000, 3000000002) in steps of 1)");
    CHECK_THROWS_WITH(arange(0, -4e9, -1.5e9, i32), Contains("arange: value -3000000000 does not fit in i32"));
    CHECK(arange(0, -3e9, -1e9, i32).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, -1000000000, -2000000000});
    CHECK_THROWS_WITH(uniform({2}, 1, 1, g), Contains("need low < high"));
    CHECK_THROWS_WITH(g.below(0), Contains("bound must be positive"));
}

TEST_CASE("undefined tensors are an error, not a crash", "[errors]") {
    const Tensor u;
    CHECK_FALSE(u.defined());
    CHECK_THROWS_WITH(u.shape(), Contains("undefined tensor"));
    CHECK_THROWS_WITH(tanh(u), Contains("tanh: input is an undefined tensor"));
    CHECK_THROWS_WITH(add(u, zeros({1})), Contains("add: left operand is an undefined tensor"));
    CHECK_THROWS_WITH(u.backward(), Contains("backward: called on an undefined tensor"));
    CHECK_THROWS_WITH(matmul(zeros({1, 1}), u), Contains("matmul: right operand is an undefined tensor"));
}

TEST_CASE("autograd misuse", "[errors]") {
    Tensor w = ones({2}).requires_grad_();
    CHECK_THROWS_WITH((w * 2.0).backward(), Contains("output has shape (2) (2 elements)"));
    CHECK_THROWS_WITH(w.set_grad(zeros({3})), Contains("set_grad: gradient (3) f32 does not match tensor (2) f32"));
    CHECK_THROWS_WITH(w.backward(ones({2}, f64)), Contains("grad_output (2) f64 does not match output (2) f32"));
}

namespace {
// Small, valid configurations; each check below breaks one field.
nn::GPTConfig small_gpt() {
    nn::GPTConfig c;
    c.vocab = 5;
    c.block_size = 4;
    c.dim = 8;
    c.heads = 2;
    c.layers = 1;
    return c;
}
nn::Seq2SeqConfig small_seq2seq() {
    nn::Seq2SeqConfig c;
    c.src_vocab = 5;
    c.tgt_vocab = 6;
    c.max_len = 4;
    c.dim = 8;
    c.heads = 2;
    c.encoder_layers = 1;
    c.decoder_layers = 1;
    return c;
}
template <class Model, class Config, class Edit>
void build(Config c, Edit edit) {
    edit(c);
    Model m(c);
}
}  // namespace

TEST_CASE("model configs are checked, naming the field, before any layer is built", "[errors][nn]") {
    using nn::GPT;
    using G = nn::GPTConfig&;
    const auto gpt = small_gpt();
    CHECK_NOTHROW(build<GPT>(gpt, [](G) {}));
    // 0 layers used to build a model whose cached generate() read caches[0] of an empty vector
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.layers = 0; }), "GPT: layers must be >= 1, got 0");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.layers = -2; }), "GPT: layers must be >= 1, got -2");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.heads = 0; }), "GPT: heads must be >= 1, got 0");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.heads = 3; }), "GPT: heads (3) must divide dim (8)");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.dim = 0; }), "GPT: dim must be >= 1, got 0");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.vocab = 0; }), "GPT: vocab must be >= 1, got 0");
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.block_size = 0; }), "GPT: block_size must be >= 1, got 0");
    // hidden 0 means 4 * dim; a negative width used to be silently treated the same way
    CHECK_NOTHROW(build<GPT>(gpt, [](G c) { c.hidden = 0; }));
    CHECK_NOTHROW(build<GPT>(gpt, [](G c) { c.hidden = 3; }));
    CHECK_THROWS_WITH(build<GPT>(gpt, [](G c) { c.hidden = -1; }), "GPT: hidden must be >= 0 (0 means 4 * dim), got -1");

    using nn::Transformer;
    using S = nn::Seq2SeqConfig&;
    const auto s2s = small_seq2seq();
    CHECK_NOTHROW(build<Transformer>(s2s, [](S) {}));
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.encoder_layers = 0; }),
                      "Transformer: encoder_layers must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.decoder_layers = 0; }),
                      "Transformer: decoder_layers must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.heads = 0; }), "Transformer: heads must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.heads = 3; }), "Transformer: heads (3) must divide dim (8)");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.dim = 0; }), "Transformer: dim must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.src_vocab = 0; }), "Transformer: src_vocab must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.tgt_vocab = 0; }), "Transformer: tgt_vocab must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.max_len = 0; }), "Transformer: max_len must be >= 1, got 0");
    CHECK_THROWS_WITH(build<Transformer>(s2s, [](S c) { c.hidden = -8; }),
                      "Transformer: hidden must be >= 0 (0 means 4 * dim), got -8");

    // A block built on its own checks its MLP width too.
    nn::BlockConfig bc;
    bc.dim = 8;
    bc.heads = 2;
    bc.hidden = -1;
    Generator gen(0);
    CHECK_THROWS_WITH(nn::TransformerBlock(bc, gen), "TransformerBlock: hidden must be >= 0 (0 means 4 * dim), got -1");
}
