/// \file
/// \brief `qkv eval`, `qkv sample` and `qkv attention`: look at a trained model.
///
/// A reader learns here how to look at a trained model from outside and from inside. `eval` measures
/// greedy exact-match accuracy on the held-out set training used (same fixed seed) and on a sample of
/// training sequences, so over- or underfitting shows at a glance. `sample` prints answers next to the
/// correct ones. `attention` runs one forward pass over a prompt followed by the model's own answer —
/// the kind of sequence it saw in training — then reads every head's saved attention weights and
/// draws them as terminal heatmaps and as an SVG grid with one row of panels per layer, and with
/// `--html` as a page for a browser that switches between several held-out inputs. For a text model
/// (a checkpoint with a tokenizer) `sample` hands over to text.cpp, which streams generated text.
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <fmt/core.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/train/text.hpp"
#include "qkv/train/train.hpp"
#include "qkv/viz/attention_page.hpp"
#include "qkv/viz/plot.hpp"

namespace qkv::cli {

namespace {

// Without --checkpoint: the last model `qkv train` saved (runs/last names it). eval and attention
// work on task models; a text model gets a message that says where to go instead.
std::unique_ptr<TaskTrainer> open_model(const Args& a, const char* command) {
    if (a.has("threads")) set_num_threads(int(a.integer("threads", 1, 1, 1024)));
    const std::string path = checkpoint_to_open(a.str("checkpoint", ""));
    if (is_text_checkpoint(io::load_safetensors(path).metadata))
        fail("'{}' is a text model (saved by 'qkv train --text'): 'qkv {}' is for task models; write with it with "
             "'qkv sample --prompt TEXT' (its validation loss is in the training output)",
             path, command);
    return TaskTrainer::load(path);
}

constexpr const char* kCheckpointHelp = "Default checkpoint: the last one 'qkv train' saved (named in runs/last).\n";

// Token labels of a sequence, for heatmap rows and columns.
std::vector<std::string> labels(const data::Vocab& v, const std::vector<std::int32_t>& ids) {
    std::vector<std::string> out;
    for (auto id : ids) out.push_back(v.token(id));
    return out;
}

}  // namespace

int eval_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv eval [--checkpoint PATH] [--eval-size N] [--threads N]\n\n"
                   "Exact-match accuracy (greedy decoding) of a saved model on held-out and on training sequences.\n{}",
                   kCheckpointHelp);
        return 0;
    }
    const Args a("eval", argv, {{"checkpoint"}, {"eval-size"}, {"threads"}});
    auto t = open_model(a, "eval");
    const auto n = a.integer("eval-size", t->config().eval_size, 1, 100000);
    const auto held = data::heldout_set(t->task(), n, kHeldoutSeed);
    std::vector<data::Example> train;
    Generator g(99);
    for (std::int64_t i = 0; i < n; ++i) train.push_back(t->task().sample(data::Split::train, g));
    say("{} after {} steps: held-out exact match {:.1f}% ({} sequences), training {:.1f}%\n", t->task().name(),
               t->steps_done(), 100 * t->evaluate(held), n, 100 * t->evaluate(train));
    return 0;
}

int sample_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv sample [--checkpoint PATH | --model DIR] [--prompt TEXT] [--threads N]\n"
                   "                  text models: [--tokens N] [--temperature X] [--top-k N] [--top-p X] [--greedy]\n"
                   "                               [--seed N] [--no-cache] [--quiet]\n"
                   "                  task models: [--count N]\n\n"
                   "A text model (saved by 'qkv train --text'): continue --prompt (default: a newline) by --tokens\n"
                   "tokens (default 500), printing each token the moment it is made. Sampling draws from\n"
                   "softmax(logits / temperature) (default 0.8), among the --top-k most likely tokens (default 0:\n"
                   "all) and then the smallest set holding --top-p of the probability (default 1: all); --greedy\n"
                   "takes the most likely token instead. The same --seed (default 0) writes the same text, on any\n"
                   "number of threads. The key/value cache makes each token one position's work; past the model's\n"
                   "context the window slides (the last context tokens, recomputed for each new one). Generation\n"
                   "stops early if the model writes <|endoftext|>. A line on stderr gives tokens/s (not with --quiet).\n\n"
                   "--model DIR: GPT-2, from the directory of its files (config.json, model.safetensors, vocab.json,\n"
                   "merges.txt, as Hugging Face distributes them); sampled like a text model.\n\n"
                   "A task model (saved by 'qkv train'): print its answer (greedy) to --prompt, or to N random\n"
                   "held-out prompts, with the correct answer.\n{}",
                   kCheckpointHelp);
        return 0;
    }
    const Args a("sample", argv,
                 {{"checkpoint"}, {"prompt"}, {"count"}, {"threads"}, {"tokens"}, {"temperature"}, {"top-k"}, {"top-p"},
                  {"seed"}, {"greedy", false}, {"no-cache", false}, {"quiet", false}, {"model"}});
    if (a.has("threads")) set_num_threads(int(a.integer("threads", 1, 1, 1024)));
    if (a.has("model")) {  // a directory of GPT-2's files
        if (a.has("checkpoint")) throw UsageError("--model and --checkpoint: give one (a GPT-2 directory, or a qkv checkpoint)");
        return sample_text(a, a.str("model", ""), true);
    }
    const std::string path = checkpoint_to_open(a.str("checkpoint", ""));
    const io::Metadata meta = io::load_safetensors(path).metadata;
    if (is_text_checkpoint(meta)) return sample_text(a, path);
    if (!meta.count("run.task")) load_text_model(path);  // neither kind: throws, saying there is no tokenizer
    for (const char* text_only : {"tokens", "temperature", "top-k", "top-p", "seed", "greedy", "no-cache", "quiet"})
        if (a.has(text_only))
            throw UsageError(fmt::format("--{} is for text models; '{}' is a model of the task '{}'", text_only, path,
                                         meta.at("run.task").substr(0, 40)));
    auto t = TaskTrainer::load(path);
    std::vector<std::string> prompts;
    if (a.has("prompt")) {
        prompts.push_back(a.str("prompt", ""));
    } else {
        Generator g(std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
        for (long long i = 0, n = a.integer("count", 5, 1, 1000); i < n; ++i) {
            const auto e = t->task().sample(data::Split::heldout, g);
            prompts.push_back(t->task().vocab().decode(std::vector<std::int32_t>(e.tokens.begin(), e.tokens.begin() + e.prompt_length)));
        }
    }
    for (const auto& p : prompts) {
        const std::string got = t->answer(p);  // validates the prompt (clear error if malformed)
        const std::string want = t->task().solve(p);
        say("{} = {}   {}\n", p, got, got == want ? "correct" : fmt::format("WRONG (expected {})", want));
    }
    return 0;
}

namespace {

// One forward pass of the model over a prompt followed by its own answer — the kind of sequence it
// saw in training: prompt, separator, answer without its last token — and what attention did there.
struct Look {
    std::string answer;               // the model's answer (greedy)
    std::vector<std::int32_t> ids;    // the input
    std::vector<Tensor> weights;      // per layer, (H, T, T)
};
Look look_at(TaskTrainer& t, const std::string& prompt) {
    Look look;
    look.answer = t.answer(prompt);  // validates the prompt (clear error if malformed)
    look.ids = t.task().example(prompt).context();
    const auto ans = t.task().vocab().encode(look.answer);
    look.ids.insert(look.ids.end(), ans.begin(), ans.end() - 1);
    NoGradGuard no_grad;
    t.model().eval();
    t.model()(from(look.ids, {1, std::int64_t(look.ids.size())}));
    for (const auto& block : t.model().blocks()) {
        const Tensor& w = block->attn.last_weights();  // (1, H, T, T)
        look.weights.push_back(reshape(w, {w.size(1), w.size(2), w.size(3)}));
    }
    return look;
}

// A random held-out prompt.
std::string heldout_prompt(TaskTrainer& t, Generator& g) {
    const auto e = t.task().sample(data::Split::heldout, g);
    return t.task().vocab().decode(std::vector<std::int32_t>(e.tokens.begin(), e.tokens.begin() + e.prompt_length));
}

}  // namespace

int attention_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("usage: qkv attention [--checkpoint PATH] [--prompt TEXT] [--svg PATH] [--html PATH] [--examples N]\n"
                   "                     [--no-color] [--threads N]\n\n"
                   "Run the model on one input (a held-out prompt by default) followed by its own answer, and show\n"
                   "every layer's and head's attention weights: rows are the positions that attend (queries),\n"
                   "columns the positions attended to (keys). Also writes them all to an SVG file (default\n"
                   "runs/attention.svg), and with --html to one self-contained HTML page for a browser: every\n"
                   "layer and head as a heatmap, the weight under the mouse, and a menu of N inputs (--examples,\n"
                   "default 4: the one above and more held-out prompts).\n{}",
                   kCheckpointHelp);
        return 0;
    }
    const Args a("attention", argv,
                 {{"checkpoint"}, {"prompt"}, {"svg"}, {"html"}, {"examples"}, {"no-color", false}, {"threads"}});
    const auto examples = a.integer("examples", 4, 1, 100);
    if (a.has("examples") && !a.has("html")) throw UsageError("--examples goes with --html (the inputs of the page)");
    auto t = open_model(a, "attention");
    Generator g(1);  // the held-out prompts: the same ones every time
    std::string prompt = a.str("prompt", "");
    if (prompt.empty()) prompt = heldout_prompt(*t, g);
    const Look look = look_at(*t, prompt);
    say("input: {}={}  (model's answer {}, correct answer {})\n\n", prompt, look.answer, look.answer,
               t->task().solve(prompt));
    const auto lab = labels(t->task().vocab(), look.ids);
    std::vector<viz::Heatmap> panels;
    const bool color = !a.has("no-color") && isatty(STDOUT_FILENO);
    for (std::size_t l = 0; l < look.weights.size(); ++l) {
        const Tensor& w = look.weights[l];  // (H, T, T)
        for (std::int64_t h = 0; h < w.size(0); ++h) {
            viz::Heatmap hm{fmt::format("layer {}, head {}", l, h), reshape(narrow(w, 0, h, 1), {w.size(1), w.size(2)}), lab, lab};
            say("{}\n", viz::terminal_heatmap(hm, color));
            panels.push_back(std::move(hm));
        }
    }
    const std::string svg = a.str("svg", "runs/attention.svg");
    viz::write_heatmaps(svg, panels, int(t->model().blocks()[0]->attn.config().heads));
    say("heatmaps written to {}\n", svg);
    if (!a.has("html")) return 0;

    // The page: this input first, then other held-out prompts, each with its own weights.
    std::vector<viz::AttentionExample> page;
    std::vector<std::string> prompts{prompt};
    for (int tries = 0; std::int64_t(prompts.size()) < examples && tries < 1000; ++tries) {
        const std::string p = heldout_prompt(*t, g);
        if (std::find(prompts.begin(), prompts.end(), p) == prompts.end()) prompts.push_back(p);
    }
    for (const auto& p : prompts) {
        const Look l = p == prompt ? look : look_at(*t, p);
        const std::string want = t->task().solve(p);
        page.push_back({fmt::format("{} = {}  ({})", p, l.answer, l.answer == want ? "right" : "wrong: " + want),
                        labels(t->task().vocab(), l.ids), l.weights});
    }
    const std::string html = a.str("html", "");
    viz::write_attention_page(html, fmt::format("qkv attention: {} ({} layers × {} heads)", t->task().name(),
                                                look.weights.size(), look.weights[0].size(0)), page);
    say("page written to {} ({} inputs, {} layers × {} heads): open it in a browser\n", html, page.size(),
               look.weights.size(), look.weights[0].size(0));
    return 0;
}

}  // namespace qkv::cli
