/// \file
/// \brief Tutorial 5: softmax and attention scores on the sentence "I love you".
///
/// Three words with hand-picked 4-number embeddings, hand-picked query/key/value projections, the
/// score matrix QKᵀ/√D, a numerically stable row softmax (and what goes wrong without it), the
/// attention weights of each word, the output vectors, and the causal (decoder) version.
/// See README.md.
#include <qkv/qkv.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace qkv;

namespace {

const std::vector<std::string> kWords = {"I", "love", "you"};

// Prints a (rows, cols) tensor as a table with the words as row labels.
void print_table(const std::string& title, const Tensor& t, const std::vector<std::string>& columns) {
    fmt::print("{}\n       ", title);
    for (const auto& c : columns) fmt::print("{:>8}", c);
    fmt::print("\n");
    for (std::int64_t i = 0; i < t.size(0); ++i) {
        fmt::print("{:<7}", kWords[std::size_t(i)]);
        for (std::int64_t j = 0; j < t.size(1); ++j) fmt::print("{:>8.3f}", t.at({i, j}));
        fmt::print("\n");
    }
    fmt::print("\n");
}

// [naive-softmax]
// Softmax as the textbook writes it, exp(x_j) / Σ exp(x), in float32: no protection at all.
std::vector<float> naive_softmax(const std::vector<float>& x) {
    float total = 0;
    for (float v : x) total += std::exp(v);
    std::vector<float> y;
    for (float v : x) y.push_back(std::exp(v) / total);
    return y;
}
// [naive-softmax]

}  // namespace

int main() {
    // [embed]
    // Each word is a vector of C = 4 numbers. Real embeddings are learned; ours are picked by hand
    // so that each number means something:      person  action  feeling  speaker(+1)/listener(-1)
    const Tensor X = from({1, 0, 0, 1,     // I     a person, the one speaking
                           0, 1, 1, 0,     // love  an action, and a feeling
                           1, 0, 0, -1},   // you   a person, the one spoken to
                          {3, 4}, f64);
    const std::vector<std::string> features = {"person", "action", "feeling", "speaker"};
    print_table("embeddings X (3 words × C = 4)", X, features);
    // [embed]

    // [project]
    // Each word asks a question (query), advertises what it is (key) and offers content (value).
    // Keys (D = 2): "am I a person?", "am I an action?" — the first two features.
    const Tensor W_K = from({1, 0,
                             0, 1,
                             0, 0,
                             0, 0}, {4, 2}, f64);
    // Queries (D = 2): a person looks for an action, an action looks for persons (strength 2).
    const Tensor W_Q = from({0, 2,
                             2, 0,
                             0, 0,
                             0, 0}, {4, 2}, f64);
    // Values: the embedding itself (W_V = identity), so the output is an average of words.
    const Tensor W_V = from({1, 0, 0, 0,
                             0, 1, 0, 0,
                             0, 0, 1, 0,
                             0, 0, 0, 1}, {4, 4}, f64);
    const Tensor Q = matmul(X, W_Q), K = matmul(X, W_K), V = matmul(X, W_V);
    print_table("queries Q = X·W_Q", Q, {"q0", "q1"});
    print_table("keys K = X·W_K", K, {"k0", "k1"});
    // [project]

    // [scores]
    // Score of word j for word i: how well j's key answers i's query, q_i·k_j, divided by √D.
    const double D = double(Q.size(1));
    const Tensor S = matmul(Q, transpose(K, 0, 1)) / std::sqrt(D);
    print_table("scores S = Q·Kᵀ/√D (row: the word asking, column: the word answering)", S, kWords);

    // Why √D: for q and k with independent, zero-mean, unit-variance entries, q·k is a sum of D
    // independent products of variance 1, so its variance is D and its spread √D. Measured on
    // 10 000 random pairs per head size:
    fmt::print("q·k for 10000 random pairs, entries independent N(0, 1):\n");
    Generator gen(5);
    for (const std::int64_t d : {2, 16, 64}) {
        const Tensor dots = sum(randn({10000, d}, gen, f64) * randn({10000, d}, gen, f64), 1);
        const auto v = dots.to_vector<double>();
        double sq = 0;
        for (double x : v) sq += x * x;  // spread around the true mean, 0: the root mean square
        const double spread = std::sqrt(sq / double(v.size()));
        fmt::print("  D = {:2}: std of q·k {:5.2f} (√D = {:4.2f}), of q·k/√D {:4.2f}\n", d, spread,
                   std::sqrt(double(d)), spread / std::sqrt(double(d)));
    }
    fmt::print("\n");
    // [scores]

    // [stable]
    // Softmax turns each row of scores into weights that are positive and sum to 1. Computed as
    // written, e^x overflows float32 once x > 88.7. Scores that large are ordinary (sharper
    // queries, larger D), so take the row of "love" ×100:
    std::vector<float> big;
    for (std::int64_t j = 0; j < 3; ++j) big.push_back(float(100 * S.at({1, j})));
    fmt::print("row of love ×100: [{:.1f}, {:.1f}, {:.1f}]\n", big[0], big[1], big[2]);
    fmt::print("e^{:.1f} in float32 = {}\n", big[0], std::exp(big[0]));
    const auto bad = naive_softmax(big);
    // inf / inf is "not a number" (printed as nan, whatever its sign bit).
    auto show = [](float v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); };
    fmt::print("naive softmax:  [{}, {}, {}]\n", show(bad[0]), show(bad[1]), show(bad[2]));
    // Subtracting the row's maximum m first changes nothing mathematically,
    // e^(x_j − m) / Σ e^(x − m) = e^x_j / Σ e^x, but now every exponent is ≤ 0 and the largest is
    // e^0 = 1: nothing overflows, and the sum is at least 1. qkv's softmax does this.
    const Tensor good = softmax(from(big, {3}), -1);
    fmt::print("stable softmax: [{}, {}, {}]\n\n", good.at({0}), good.at({1}), good.at({2}));
    // [stable]

    // [weights]
    const Tensor P = softmax(S, -1);
    print_table("attention weights P = softmax(S) by row (who each word listens to)", P, kWords);
    fmt::print("each row sums to 1: {:.3f} {:.3f} {:.3f}\n\n", sum(P, 1).at({0}), sum(P, 1).at({1}),
               sum(P, 1).at({2}));
    // [weights]

    // [output]
    // The output of word i is the weighted average of the values: O = P·V.
    const Tensor O = matmul(P, V);
    print_table("outputs O = P·V (each word, rewritten by what it listened to)", O, features);
    // The same in one call: qkv's fused attention op computes softmax(QKᵀ/√D)·V in one pass.
    const Tensor O_fused = attention(Q, K, V);
    fmt::print("fused attention(Q, K, V) equals P·V: max |difference| = {:.1e}\n\n", max_abs_diff(O, O_fused));
    // [output]

    // [causal]
    // A decoder writes left to right, so word i may only look at words j ≤ i. Mask the scores
    // above the diagonal with −∞ before the softmax: e^−∞ = 0, so those words get zero weight and
    // the rest share the whole weight.
    const Tensor blocked = logical_not(tril_mask(3, 3));  // true above the diagonal
    const Tensor S_causal = masked_fill(S, blocked, -std::numeric_limits<double>::infinity());
    print_table("causal scores (−∞ above the diagonal)", S_causal, kWords);
    const Tensor P_causal = softmax(S_causal, -1);
    print_table("causal attention weights", P_causal, kWords);
    AttentionOptions causal;
    causal.causal = true;
    Tensor fused_weights;
    causal.weights = &fused_weights;
    const Tensor O_causal = attention(Q, K, V, causal);
    print_table("causal outputs", O_causal, features);
    fmt::print("fused causal weights equal the masked softmax: max |difference| = {:.1e}\n",
               max_abs_diff(P_causal, fused_weights));
    // [causal]
}
