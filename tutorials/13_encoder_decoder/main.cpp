/// \file
/// \brief Tutorial 13: cross-attention and an encoder–decoder Transformer, trained to reverse
/// digit strings of different lengths.
///
/// The original Transformer reads the source with an *encoder* and writes the target with a
/// *decoder* that looks back at the source through *cross-attention*. Here the sources have 4 to
/// 12 digits, so a batch needs padding — and a padding mask so that nothing attends to it. The
/// program trains nn::Transformer, decodes held-out problems greedily, and shows where the
/// decoder's cross-attention looks. See README.md.
#include <qkv/qkv.hpp>

#include "../steps.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

using namespace qkv;

namespace {

constexpr std::int64_t kMin = 4, kMax = 12;  // source lengths
const data::Vocab kVocab("0123456789=_");     // digits, '=' starts the answer, '_' pads

// [data]
// A problem: a random digit string of 4–12 digits. The held-out ones are those data::split_of()
// puts in the held-out split (a fixed hash of the text, ~10%); training never sees them.
std::string draw(data::Split split, Generator& gen) {
    for (;;) {
        std::string s(kMin + std::int64_t(gen.below(kMax - kMin + 1)), '0');
        for (auto& ch : s) ch = char('0' + gen.below(10));
        if (data::split_of(s) == split) return s;
    }
}

// A batch of problems as tensors, everything padded with '_' to kMax positions:
//   src          (B, 12) the digits                            e.g. 31415_______
//   src_padding  (B, 12) b8, true where src is padding          (here: from position 5 on)
//   tgt_in       (B, 12) '=' then the answer, shifted right     =51413_______
//   tgt_out      (B, 12) the answer, then '_' to the end        51413________
// The decoder reads tgt_in and must predict tgt_out at every position — including the padding
// after the answer: writing '_' is how it says "done".
struct Seq2SeqBatch {
    Tensor src, src_padding, tgt_in, tgt_out;
};

Seq2SeqBatch make_batch(const std::vector<std::string>& problems) {
    const auto B = std::int64_t(problems.size());
    std::vector<std::int32_t> src, tin, tout;
    std::vector<std::uint8_t> pad;
    for (const auto& p : problems) {
        const std::string answer(p.rbegin(), p.rend());
        std::string s = p, o = answer;
        s.resize(kMax, '_');
        o.resize(kMax, '_');
        const std::string i = ("=" + o).substr(0, kMax);
        for (auto id : kVocab.encode(s)) src.push_back(id);
        for (auto id : kVocab.encode(i)) tin.push_back(id);
        for (auto id : kVocab.encode(o)) tout.push_back(id);
        for (std::int64_t k = 0; k < kMax; ++k) pad.push_back(k >= std::int64_t(p.size()));
    }
    return {from(src, {B, kMax}), from(pad, {B, kMax}), from(tin, {B, kMax}), from(tout, {B, kMax})};
}
// [data]

// [evaluate]
// Greedy decoding: encode the source once, then start from '=' and append the most likely token
// 12 times. Right means all 12 tokens right (the answer and the padding after it).
double evaluate(nn::Transformer& model, const std::vector<std::string>& problems) {
    model.eval();
    const Seq2SeqBatch b = make_batch(problems);
    const auto out = model.greedy_decode(b.src, kVocab.sep(), kMax, b.src_padding).to_vector<std::int32_t>();
    const auto want = b.tgt_out.to_vector<std::int32_t>();
    std::int64_t right = 0;
    for (std::size_t n = 0; n < problems.size(); ++n)
        right += std::equal(out.begin() + std::ptrdiff_t(n * kMax), out.begin() + std::ptrdiff_t((n + 1) * kMax),
                            want.begin() + std::ptrdiff_t(n * kMax));
    model.train();
    return double(right) / double(problems.size());
}
// [evaluate]

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::int64_t budget = tutorial::training_steps(argc, argv, 3000);  // or --steps N

        // [model]
        // Encoder 2 blocks, decoder 2 blocks, d_model 64, 4 heads: the sizes of config S.
        nn::Seq2SeqConfig mc;
        mc.src_vocab = mc.tgt_vocab = kVocab.size();
        mc.max_len = kMax + 1;  // greedy_decode holds the start token and 12 outputs
        mc.dim = 64;
        mc.heads = 4;
        mc.encoder_layers = mc.decoder_layers = 2;
        mc.seed = 0;
        nn::Transformer model(mc);
        fmt::print("encoder-decoder Transformer: {} + {} blocks, {} heads, d_model {}, {} parameters\n",
                   mc.encoder_layers, mc.decoder_layers, mc.heads, mc.dim, model.num_parameters());
        optim::AdamWOptions ao;
        ao.lr = 1e-3;
        ao.weight_decay = 0.01;
        optim::AdamW opt(model.named_parameters(), ao);
        // [model]

        // 500 held-out problems, drawn once (the same every run), and one row of a batch.
        Generator gen(1);
        std::vector<std::string> heldout;
        for (int i = 0; i < 500; ++i) heldout.push_back(draw(data::Split::heldout, gen));
        const Seq2SeqBatch example = make_batch({heldout[0]});
        fmt::print("a batch row: src {}  tgt_in {}  tgt_out {}\n\n",
                   kVocab.decode(example.src.to_vector<std::int32_t>()),
                   kVocab.decode(example.tgt_in.to_vector<std::int32_t>()),
                   kVocab.decode(example.tgt_out.to_vector<std::int32_t>()));

        // [train]
        // The loop of tutorial 10, with the two inputs of an encoder-decoder.
        const auto t0 = std::chrono::steady_clock::now();
        double loss_sum = 0;
        std::int64_t since = 0;  // steps since the last evaluation
        for (std::int64_t step = 1; step <= budget; ++step) {
            std::vector<std::string> problems;
            for (int i = 0; i < 32; ++i) problems.push_back(draw(data::Split::train, gen));
            const Seq2SeqBatch b = make_batch(problems);
            opt.zero_grad();
            const Tensor logits = model.forward(b.src, b.tgt_in, b.src_padding);  // (32, 12, V)
            const Tensor loss = cross_entropy(reshape(logits, {-1, kVocab.size()}), reshape(b.tgt_out, {-1}));
            loss.backward();
            opt.step();
            loss_sum += loss.item();
            ++since;
            if (step % 100 == 0 || step == budget) {
                const double acc = evaluate(model, heldout);
                fmt::print("step {:>4}  loss {:.4f}  held-out exact match {:5.1f}%  ({:.1f} s)\n", step,
                           loss_sum / double(since), 100 * acc,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
                loss_sum = 0;
                since = 0;
                if (acc == 1.0) break;
            }
        }
        fmt::print("\n");
        // [train]

        // [cross]
        // Cross-attention: decoder position t (a query) looks at every source position s (a key)
        // and takes a weighted average of what the encoder wrote there. The weights of one head
        // form a (T, S) matrix. Decoder step t writes answer digit t, which is source digit
        // n − 1 − t for a source of n digits: an anti-diagonal over the real digits.
        model.eval();
        const std::string problem = heldout[0];
        const auto n = std::int64_t(problem.size());
        const Seq2SeqBatch one = make_batch({problem});
        const Tensor decoded = model.greedy_decode(one.src, kVocab.sep(), kMax, one.src_padding);
        fmt::print("source {}  ->  decoded {}  (correct: {})\n", problem,
                   kVocab.decode(decoded.to_vector<std::int32_t>()), std::string(problem.rbegin(), problem.rend()));
        {
            NoGradGuard no_grad;
            model.forward(one.src, one.tgt_in, one.src_padding);  // teacher-forced, to read the weights
        }
        // For each decoder layer and head: the share of weight on the mirror digit (over the n
        // answer-writing positions), and the largest weight on any padding position.
        int best_layer = 0;
        std::int64_t best_head = 0;
        double best = -1;
        for (std::size_t l = 0; l < model.decoder().size(); ++l) {
            const Tensor w = model.decoder()[l]->cross->last_weights();  // (1, H, 12, 12)
            for (std::int64_t h = 0; h < w.size(1); ++h) {
                double mirror = 0, on_padding = 0;
                for (std::int64_t t = 0; t < kMax; ++t)
                    for (std::int64_t s = 0; s < kMax; ++s) {
                        const double x = w.at({0, h, t, s});
                        if (s >= n) on_padding = std::max(on_padding, x);
                        else if (t < n && s == n - 1 - t) mirror += x / double(n);
                    }
                fmt::print("decoder layer {}, head {}: {:5.1f}% of the weight on the mirror digit, "
                           "largest weight on padding {}\n", l, h, 100 * mirror, on_padding);
                if (mirror > best) best = mirror, best_layer = int(l), best_head = h;
            }
        }
        std::vector<std::string> rows, cols;
        for (auto id : one.tgt_in.to_vector<std::int32_t>()) rows.push_back(kVocab.token(id));
        for (auto id : one.src.to_vector<std::int32_t>()) cols.push_back(kVocab.token(id));
        const Tensor w = model.decoder()[std::size_t(best_layer)]->cross->last_weights();
        fmt::print("\n");
        const viz::Heatmap hm{fmt::format("cross-attention, decoder layer {}, head {}: decoder input (rows) x source (columns)",
                                          best_layer, best_head),
                              reshape(narrow(w, 1, best_head, 1), {kMax, kMax}), rows, cols};
        fmt::print("{}\n", viz::terminal_heatmap(hm, isatty(STDOUT_FILENO)));
        const auto svg = (std::filesystem::path(argv[0]).parent_path() / "13_cross_attention.svg").string();
        std::vector<viz::Heatmap> panels;
        for (std::size_t l = 0; l < model.decoder().size(); ++l) {
            const Tensor wl = model.decoder()[l]->cross->last_weights();
            for (std::int64_t h = 0; h < wl.size(1); ++h)
                panels.push_back({fmt::format("decoder layer {}, head {}", l, h),
                                  reshape(narrow(wl, 1, h, 1), {kMax, kMax}), rows, cols});
        }
        viz::write_heatmaps(svg, panels, 4);
        fmt::print("every cross-attention head written to {}\n", svg);
        // [cross]
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
