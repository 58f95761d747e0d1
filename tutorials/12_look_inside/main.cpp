/// \file
/// \brief Tutorial 12: look inside a trained model — attention heatmaps, and a measurement of
/// which head attends where.
///
/// Trains the reverse model of tutorial 10 (16 digits, config S), runs it on held-out problems and
/// reads every head's attention weights: as a heatmap in the terminal, as an SVG with every head,
/// and as numbers — for each head, how much of its attention lands on the *mirror* digit, the one
/// the answer needs next. See README.md.
#include <qkv/qkv.hpp>

#include "../steps.hpp"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

using namespace qkv;

int main(int argc, char** argv) {
    try {
        // [train]
        // The model of tutorial 10: reverse 16 digits, config S, seed 0, trained to 100% (or for
        // N steps with --steps N).
        TaskTrainConfig c;
        c.task = {"reverse", 16, true};
        c.seed = 0;
        c.max_steps = tutorial::training_steps(argc, argv, 3000);
        TaskTrainer trainer(c);
        const auto history = trainer.run();
        fmt::print("trained: reverse 16 digits, {:.1f}% held-out exact match at step {}\n\n",
                   100 * history.back().accuracy, history.back().step);
        nn::GPT& model = trainer.model();
        model.eval();
        // [train]

        // [forward]
        // The sequence as the model sees it in training: 16 prompt digits, '=', and the answer
        // without its last digit (T = 32 positions). Position q predicts token q + 1, so the
        // positions that write the answer are q = 16 ('=') … 31, and the digit position q must
        // write is prompt digit 31 − q: its mirror image. We run 200 held-out problems at once.
        const std::int64_t L = 16, T = 2 * L, N = 200;
        std::vector<std::int32_t> ids;
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& tokens = trainer.heldout()[std::size_t(n)].tokens;
            ids.insert(ids.end(), tokens.begin(), tokens.end() - 1);
        }
        {
            NoGradGuard no_grad;
            model(from(ids, {N, T}));
        }
        // [forward]

        // [where]
        // For every head: of the attention that the 16 answer-writing positions pay, what share
        // goes to the mirror digit, to its two neighbours, to the other prompt digits, and to the
        // separator and answer positions? Averaged over the 200 problems; each row sums to 100%.
        fmt::print("share of attention from the answer-writing positions (mean over {} held-out problems)\n", N);
        fmt::print("{:<16} {:>7} {:>11} {:>13} {:>13}\n", "", "mirror", "neighbours", "other digits",
                   "'=' & answer");
        std::int64_t best_layer = 0, best_head = 0;
        double best_mirror = -1;
        for (std::size_t l = 0; l < model.blocks().size(); ++l) {
            const Tensor w = model.blocks()[l]->attn.last_weights();  // (N, H, T, T)
            const auto wv = w.to_vector<float>();
            const std::int64_t H = w.size(1);
            for (std::int64_t h = 0; h < H; ++h) {
                double mirror = 0, neighbours = 0, prompt = 0, rest = 0;
                for (std::int64_t n = 0; n < N; ++n)
                    for (std::int64_t q = L; q < T; ++q) {
                        const float* row = wv.data() + ((n * H + h) * T + q) * T;  // weights of query q
                        const std::int64_t m = T - 1 - q;                         // its mirror
                        for (std::int64_t k = 0; k <= q; ++k) {                   // causal: keys 0..q
                            if (k == m) mirror += row[k];
                            else if (k == m - 1 || k == m + 1) (k < L ? neighbours : rest) += row[k];
                            else (k < L ? prompt : rest) += row[k];
                        }
                    }
                const double total = double(N * L);
                fmt::print("layer {}, head {}   {:>6.1f}% {:>10.1f}% {:>12.1f}% {:>12.1f}%\n", l, h,
                           100 * mirror / total, 100 * neighbours / total, 100 * prompt / total, 100 * rest / total);
                if (mirror > best_mirror) best_mirror = mirror, best_layer = std::int64_t(l), best_head = h;
            }
        }
        // For comparison: a head that spreads its attention evenly over the q + 1 positions it may
        // see gives the mirror 1/(q + 1) of it.
        double even = 0;
        for (std::int64_t q = L; q < T; ++q) even += 1.0 / double(q + 1) / double(L);
        fmt::print("(attention spread evenly would give the mirror {:.1f}%)\n\n", 100 * even);
        // [where]

        // [heatmap]
        // The head that attends most to the mirror, on the first problem: rows are the 16
        // positions that write the answer (labelled with their input token), columns the 16 prompt
        // digits. Each cell is the weight, shown as a digit 0–9 (tenths; a coloured square when
        // the output is a terminal). The anti-diagonal is the mirror.
        const auto& vocab = trainer.task().vocab();
        auto labels = [&](std::int64_t from_pos, std::int64_t count) {
            std::vector<std::string> out;
            for (std::int64_t i = 0; i < count; ++i) out.push_back(vocab.token(ids[std::size_t(from_pos + i)]));
            return out;
        };
        const bool color = isatty(STDOUT_FILENO);
        const Tensor best = model.blocks()[std::size_t(best_layer)]->attn.last_weights();  // (N, H, T, T)
        auto head_matrix = [&](const Tensor& w, std::int64_t h) {  // problem 0, head h: (T, T)
            return reshape(narrow(narrow(w, 0, 0, 1), 1, h, 1), {T, T});
        };
        const viz::Heatmap cropped{fmt::format("layer {}, head {}: answer positions (rows) x prompt digits (columns)",
                                               best_layer, best_head),
                                   narrow(narrow(head_matrix(best, best_head), 0, L, L), 1, 0, L), labels(L, L),
                                   labels(0, L)};
        fmt::print("{}\n", viz::terminal_heatmap(cropped, color));
        // [heatmap]

        // [svg]
        // Every head, full T × T, in one SVG file next to this program.
        std::vector<viz::Heatmap> panels;
        for (std::size_t l = 0; l < model.blocks().size(); ++l) {
            const Tensor w = model.blocks()[l]->attn.last_weights();
            for (std::int64_t h = 0; h < w.size(1); ++h)
                panels.push_back({fmt::format("layer {}, head {}", l, h), head_matrix(w, h), labels(0, T), labels(0, T)});
        }
        const auto svg = (std::filesystem::path(argv[0]).parent_path() / "12_attention.svg").string();
        viz::write_heatmaps(svg, panels, 4);
        fmt::print("all {} heads written to {}\n", panels.size(), svg);
        // [svg]
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
