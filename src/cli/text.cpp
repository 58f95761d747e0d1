/// \file
/// \brief `qkv train --text FILE` and `qkv sample --prompt` for text models: a language model on a
/// text of your own, and text streamed out of it token by token.
///
/// A reader learns here how the command side of a language model looks. Training: the flags become a
/// TextTrainConfig (on top of nanoGPT's "baby" recipe with `--recipe baby`), TextTrainer runs the loop
/// and two callbacks report — a line at every evaluation with the training and validation loss, the
/// perplexity, bits per byte, tokens per second and the time left, and on a terminal a status line
/// redrawn every 10 steps. The checkpoint carries its tokenizer, its path goes into `DIR/last`, the
/// curve into CSV and SVG. Sampling: the checkpoint's metadata rebuilds tokenizer and model, the prompt
/// is encoded (a character the tokenizer never saw is bad usage, exit 2), and GPT::generate() calls
/// back after every token, which is written to stdout and flushed at once — the text appears as it is
/// made, and the key/value cache keeps each step to one token's work inside the context.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "args.hpp"
#include "commands.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/io/file.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/train/import.hpp"
#include "qkv/train/text.hpp"
#include "qkv/viz/plot.hpp"

namespace qkv::cli {

namespace {

constexpr const char* kTrainHelp = R"(usage: qkv train --text FILE [options]

Train a GPT language model on FILE: at every position, predict the next token. The first 90% of
FILE trains the model and the last 10% (contiguous, never trained on) validates it: the validation
loss is the mean cross-entropy per token there, with its perplexity e^loss and bits per byte of text
(comparable between tokenizers). Saves the model with its tokenizer, so that 'qkv sample --prompt
TEXT' writes with it, and the training curve as CSV and SVG. The defaults suit data/corpus.txt.

data:
  --text FILE           the text: UTF-8 for --tokenizer char, any bytes for bpe
  --tokenizer char|bpe  one token per character (default), or byte-level BPE learned from the
                        training part
  --vocab-size N        bpe: 256 byte tokens + N-256 merges (default 512); the end-of-text token
                        comes on top (id N)
model:
  --layers N            transformer blocks (default 3)
  --heads N             attention heads (default 4)
  --dim N               d_model (default 96)
  --context N           tokens per window, the longest text the model sees at once (default 64)
  --dropout X           dropout after the embeddings and in each residual branch (default 0.1)
training:
  --steps N             steps (default 1500)
  --batch N             windows per step (default 16)
  --lr X                peak learning rate of AdamW (default 0.002)
  --min-lr X            where the cosine ends (default lr / 10)
  --warmup N            steps of linear warm-up (default 100)
  --schedule S          cosine: warm-up, then cosine decay to --min-lr at the last step (default);
                        constant: --lr throughout
  --wd X                AdamW weight decay (default 0.1)
  --beta2 X             AdamW beta2 (default 0.99)
  --clip X              clip the gradients' global norm to X; 0 turns it off (default 1)
  --seed N              random seed: initialisation, batches, dropout (default 0)
  --eval-every N        steps between evaluations (default 100)
  --eval-tokens N       validation tokens per evaluation, at most (default 16384)
  --detect-anomaly      check every op's output and gradient for NaN/inf as it is computed
                        (slower; without it, a non-finite loss or gradient still stops training
                        at once, and the step is then repeated with these checks to name the op)
  --recipe baby         start from nanoGPT's CPU "baby" recipe: 4 layers, 4 heads, d_model 128,
                        context 64, batch 12, 2000 steps, lr 1e-3 to 1e-4, warm-up 100, no
                        dropout (other flags still apply on top, e.g. --seed)
  --threads N           threads (default: all cores)
  --init PATH           fine-tune: start from the weights of a text model (saved by 'qkv train
                        --text', or made by 'qkv import') instead of random ones. Its shape and
                        tokenizer are kept (so --layers, --heads, --dim, --context, --tokenizer,
                        --vocab-size and --recipe do not apply); the training flags above do
output:
  --out DIR             where the checkpoint and curve go (default runs); DIR/last records the
                        checkpoint's path, which 'qkv sample' opens by default
  --save PATH           checkpoint path (default DIR/NAME-TOKENIZER-seedN.safetensors); checked
                        before training starts
  --checkpoint-every N  also save the checkpoint every N steps, atomically (default 1000; 0: only
                        at the end). Ctrl-C or SIGTERM finishes the current step, saves, and stops
  --resume PATH         continue a run saved by --save: its settings and tokenizer are in the
                        checkpoint; --steps N sets a new total budget, counted from step 0 (the
                        cosine then ends there), the curve continues, and --text defaults to the
                        file it trained on, which must be unchanged
  --quiet               print only the final summary
  --help                show this message
)";

const std::vector<Flag> kTrainFlags{
    {"text"},  {"tokenizer"}, {"vocab-size"}, {"layers"}, {"heads"},      {"dim"},         {"context"},
    {"dropout"}, {"steps"},   {"batch"},      {"lr"},     {"min-lr"},     {"warmup"},      {"schedule"},
    {"wd"},    {"beta2"},     {"clip"},       {"seed"},   {"eval-every"}, {"eval-tokens"}, {"recipe"},
    {"threads"}, {"out"},     {"save"},       {"resume"}, {"quiet", false}, {"checkpoint-every"},
    {"detect-anomaly", false}, {"init"}};

TextTrainConfig config_from(const Args& a) {
    TextTrainConfig c;
    if (a.has("recipe")) {
        const std::string r = a.str("recipe", "");
        if (r != "baby") throw UsageError(fmt::format("--recipe: unknown recipe '{}' (the one there is: baby)", r));
        c = TextTrainConfig::baby();
    }
    c.tokenizer = a.str("tokenizer", c.tokenizer);
    if (c.tokenizer != "char" && c.tokenizer != "bpe")
        throw UsageError(fmt::format("--tokenizer: expected char or bpe, got '{}'", c.tokenizer));
    c.vocab_size = a.integer("vocab-size", c.vocab_size, 256, data::kMaxBpeVocab);
    if (a.has("vocab-size") && c.tokenizer != "bpe")
        throw UsageError("--vocab-size goes with --tokenizer bpe (the character tokenizer's vocabulary is the "
                         "text's characters)");
    c.layers = a.integer("layers", c.layers, 1, 256);
    c.heads = a.integer("heads", c.heads, 1, 256);
    c.dim = a.integer("dim", c.dim, 1, 16384);
    c.context = a.integer("context", c.context, 1, 65536);
    c.dropout = a.real("dropout", c.dropout, 0, 0.99);
    c.max_steps = a.integer("steps", c.max_steps, 1, 1'000'000'000);
    c.batch = a.integer("batch", c.batch, 1, 1 << 20);
    const bool lr_given = a.has("lr");
    c.lr = a.real("lr", c.lr, 1e-12, 10);
    // min-lr follows the peak (a tenth of it) unless given.
    c.min_lr = a.real("min-lr", lr_given ? c.lr / 10 : c.min_lr, 0, c.lr);
    c.warmup = a.integer("warmup", c.warmup, 0, 1'000'000'000);
    const std::string schedule = a.str("schedule", "cosine");
    if (schedule != "cosine" && schedule != "constant")
        throw UsageError(fmt::format("--schedule: expected cosine or constant, got '{}'", schedule));
    c.cosine = schedule == "cosine";
    c.weight_decay = a.real("wd", c.weight_decay, 0, 10);
    c.beta2 = a.real("beta2", c.beta2, 0, 0.999999);
    c.grad_clip = a.real("clip", c.grad_clip, 0, 1e9);
    c.seed = a.unsigned_integer("seed", 0);
    c.eval_every = a.integer("eval-every", c.eval_every, 1, 1'000'000'000);
    c.eval_tokens = a.integer("eval-tokens", c.eval_tokens, 1, 1'000'000'000);
    if (c.dim % c.heads != 0) throw UsageError(fmt::format("--heads {} must divide --dim {}", c.heads, c.dim));
    return c;
}

// One row per point of the curve; validation columns are empty where no evaluation ran.
void write_csv(const std::string& path, const std::vector<TextCurvePoint>& curve, const TextTrainer& t) {
    std::string text = "step,train_loss,validation_loss,perplexity,bits_per_byte,lr,seconds\n";
    for (const auto& p : curve) {
        const bool v = !std::isnan(p.validation_loss);
        text += fmt::format("{},{:.6f},{},{},{},{:.6g},{:.3f}\n", p.step, p.train_loss,
                            v ? fmt::format("{:.6f}", p.validation_loss) : "",
                            v ? fmt::format("{:.4f}", std::exp(p.validation_loss)) : "",
                            v ? fmt::format("{:.4f}", t.bits_per_byte(p.validation_loss)) : "", p.lr, p.seconds);
    }
    io::write_text_file(path, text, "qkv train --text");
}

std::string fmt_seconds(double s) { return s < 120 ? fmt::format("{:.0f} s", s) : fmt::format("{:.1f} min", s / 60); }

// The file name without directories and extension, for the checkpoint's default name.
std::string stem_of(const std::string& path) {
    std::string s = std::filesystem::path(path).stem().string();
    for (char& c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
    return s.empty() ? std::string("text") : s;
}

}  // namespace

bool is_text_run(const std::vector<std::string>& argv) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "--text") return true;
        // A resumed text run: its checkpoint carries a tokenizer (a file we cannot read is left to
        // the task path, which reports it).
        if (argv[i] == "--resume" && i + 1 < argv.size()) {
            try {
                if (is_text_checkpoint(io::load_safetensors(argv[i + 1]).metadata)) return true;
            } catch (const Error&) {
            }
        }
    }
    return false;
}

int train_text_command(const std::vector<std::string>& argv) {
    if (wants_help(argv)) {
        say("{}", kTrainHelp);
        return 0;
    }
    const Args a("train", argv, kTrainFlags);
    if (a.has("threads")) set_num_threads(int(a.integer("threads", 1, 1, 1024)));
    const bool quiet = a.has("quiet");
    std::unique_ptr<TextTrainer> trainer;
    std::string text_path = a.str("text", "");
    const bool resume = a.has("resume");
    const std::string out_dir = a.str("out", kRunsDir);
    std::string save_path;
    TextTrainConfig fresh;
    if (resume) {
        // The run's settings are in the checkpoint; only the budget, the output and threads may change.
        for (const Flag& f : kTrainFlags)
            if (a.has(f.name) && f.name != "resume" && f.name != "steps" && f.name != "text" && f.name != "threads" &&
                f.name != "out" && f.name != "save" && f.name != "quiet" && f.name != "checkpoint-every" &&
                f.name != "detect-anomaly")
                throw UsageError(fmt::format("--{} cannot change a resumed run: its settings are in the checkpoint "
                                             "(only --steps, --text, --threads, --out, --save, --checkpoint-every, "
                                             "--detect-anomaly and --quiet go with --resume)",
                                             f.name));
        save_path = a.str("save", a.str("resume", ""));
    } else {
        if (text_path.empty()) throw UsageError("--text needs a file");
        if (a.has("init"))
            for (const char* shape : {"layers", "heads", "dim", "context", "tokenizer", "vocab-size", "recipe", "resume"})
                if (a.has(shape))
                    throw UsageError(fmt::format("--{} cannot go with --init: the model's shape and tokenizer are the "
                                                 "checkpoint's (and --resume continues a run, --init starts one)",
                                                 shape));
        fresh = config_from(a);
        const std::string kind = a.has("init") ? "from-" + stem_of(a.str("init", "")) : fresh.tokenizer;
        save_path = a.str("save", fmt::format("{}/{}-{}-seed{}.safetensors", out_dir, stem_of(text_path), kind, fresh.seed));
    }
    // Where the run will be saved is checked before any work (BPE training included).
    RunGuard guard({save_path, a.integer("checkpoint-every", kDefaultCheckpointEvery, 0, 1'000'000'000'000), true},
                   [&](const std::string& path) { trainer->save(path); });
    guard.check_output();
    if (resume) {
        const std::string from_path = a.str("resume", "");
        if (text_path.empty()) {
            const auto meta = io::load_safetensors(from_path).metadata;
            const auto it = meta.find("text.source");
            if (it == meta.end()) fail("'{}': the checkpoint does not name its text (metadata 'text.source'): pass --text FILE", from_path);
            text_path = it->second;
        }
        trainer = TextTrainer::load(from_path, io::read_file(text_path, "text"), text_path);
        if (a.has("steps")) trainer->set_max_steps(a.integer("steps", 1, 1, 1'000'000'000));
        if (trainer->steps_done() >= trainer->config().max_steps)
            throw UsageError(fmt::format(
                "--resume: the run in {} is already at step {}, and its budget is {} steps (--steps is the total, counted "
                "from step 0): pass --steps greater than {} to train further",
                from_path, trainer->steps_done(), trainer->config().max_steps, trainer->steps_done()));
    } else {
        const std::string text = io::read_file(text_path, "text");
        try {
            if (a.has("init"))
                trainer = TextTrainer::fine_tune(a.str("init", ""), fresh, text, text_path);
            else
                trainer = std::make_unique<TextTrainer>(fresh, text, text_path);
        } catch (const VocabSizeError& e) {
            throw UsageError(fmt::format("--vocab-size: {}", e.what()));  // the flag asks too much of the file
        }
    }
    std::optional<AnomalyMode> anomaly;
    if (a.has("detect-anomaly")) anomaly.emplace(true);
    const TextTrainConfig& c = trainer->config();
    const TokenizedText& data = trainer->text();
    const std::string kind = a.has("init") ? "from-" + stem_of(a.str("init", "")) : c.tokenizer;  // as the save path
    const std::string stem = fmt::format("{}/{}-{}-seed{}", out_dir, stem_of(text_path), kind, c.seed);
    std::filesystem::create_directories(out_dir);
    for (const std::string& path : {stem + ".csv", stem + ".svg", last_run_file(out_dir)})
        io::check_writable(path, "train --text");

    const std::int64_t V = trainer->tokenizer().vocab_size();
    say("qkv train --text {}: {} bytes; {} tokenizer, {} tokens{}\n", text_path,
               data.train_bytes + data.validation_bytes, c.tokenizer, V,
               c.tokenizer == "bpe" ? fmt::format(" (256 bytes, {} merges, <|endoftext|>)", V - 257) : "");
    say("data: {} tokens for training, {} for validation (the last 10%, {:.2f} bytes per token)\n",
               data.train.size(), data.validation.size(),
               double(data.train_bytes + data.validation_bytes) / double(data.train.size() + data.validation.size()));
    say("model: GPT, {} layers x {} heads, d_model {}, context {}, {} parameters{}\n", c.layers, c.heads, c.dim,
               c.context, trainer->model().num_parameters(),
               a.has("init") ? fmt::format(", starting from the weights of '{}'", a.str("init", "")) : "");
    say("training: {} steps of {} x {} tokens, AdamW lr {} ({}) wd {} beta2 {}, dropout {}, clip {}, seed {}, "
               "{} thread{}{}\n",
               c.max_steps, c.batch, c.context, c.lr,
               c.cosine ? fmt::format("warm-up {}, cosine to {}", std::min(c.warmup, c.max_steps), c.min_lr) : "constant",
               c.weight_decay, c.beta2, c.dropout, c.grad_clip > 0 ? fmt::format("{}", c.grad_clip) : "off", c.seed,
               num_threads(), num_threads() == 1 ? "" : "s",
               trainer->steps_done() ? fmt::format(" (resuming at step {})", trainer->steps_done()) : "");
    if (trainer->steps_done() == 0 && !quiet) {
        const double v0 = trainer->evaluate();
        say("before training: validation loss {:.3f} (a uniform guess over {} tokens: ln {} = {:.3f})\n", v0, V,
                   V, std::log(double(V)));
    }
    std::fflush(stdout);

    const bool live = !quiet && isatty(STDOUT_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t start_step = trainer->steps_done();
    const double tokens_per_step = double(c.batch * c.context);
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    double last_val = std::nan("");
    // tok/s counts training steps only; the ETA is the rest of the budget at the pace so far
    // (evaluations included). Once the last step is done the line says so instead.
    auto status = [&](std::int64_t step, double train_loss, bool finished) {
        const double rate = double(step - start_step) / std::max(elapsed(), 1e-9);
        const double tps = double(step - start_step) * tokens_per_step / std::max(trainer->step_seconds(), 1e-9);
        return fmt::format("step {:>6}/{}  train {:.3f}  val {}  {:>7.0f} tok/s  {}", step, c.max_steps, train_loss,
                           std::isnan(last_val) ? std::string("    -")
                                                : fmt::format("{:.3f}  ppl {:.2f}  {:.3f} bits/byte", last_val,
                                                              std::exp(last_val), trainer->bits_per_byte(last_val)),
                           tps,
                           finished ? std::string("done")
                                    : fmt::format("ETA {}", fmt_seconds(double(c.max_steps - step) / std::max(rate, 1e-9))));
    };
    auto write_curve = [&] {
        const auto& curve = trainer->curve();
        if (curve.empty()) return;
        write_csv(stem + ".csv", curve, *trainer);
        std::vector<double> steps, train, val;
        for (const auto& p : curve) steps.push_back(double(p.step)), train.push_back(p.train_loss), val.push_back(p.validation_loss);
        viz::write_line_chart(stem + ".svg", fmt::format("qkv train --text {} ({} tokenizer, seed {})", stem_of(text_path), c.tokenizer, c.seed),
                              steps, {{fmt::format("train loss (mean of {} steps)", c.log_every), train, false},
                                      {"validation loss", val, false}});
    };
    const std::vector<TextEvalPoint> history = run_with_progress(
        *trainer,
        [&](const TextEvalPoint& p) {
            last_val = p.validation_loss;
            if (!quiet) say("{}{}\n", live ? "\r" : "", status(p.step, p.train_loss, p.step >= c.max_steps));
            std::fflush(stdout);
        },
        status, live, c.eval_every, guard, write_curve,
        {.save_path = save_path, .resumed = resume, .resumed_in_place = resume && save_path == a.str("resume", ""),
         .start_step = start_step, .max_steps = c.max_steps, .lr = c.lr});
    const double secs = elapsed();
    const int stop_signal = guard.stop_signal();
    if (guard.last_saved_step() != trainer->steps_done()) guard.save(trainer->steps_done());
    record_last_run(out_dir, save_path);
    write_curve();
    const auto& curve = trainer->curve();
    if (stop_signal != 0) {
        if (live) say("\n");
        return report_interrupted(stop_signal, trainer->steps_done(), secs, save_path, curve.empty() ? "" : stem);
    }
    if (!history.empty()) {
        const auto& last = history.back();
        say("finished {} steps in {:.1f} s ({:.0f} tokens/s in training): validation loss {:.3f}, perplexity "
                   "{:.2f}, {:.3f} bits/byte\n",
                   trainer->steps_done(), secs, double(trainer->steps_done() - start_step) * tokens_per_step / trainer->step_seconds(),
                   last.validation_loss, std::exp(last.validation_loss), last.bits_per_byte);
    }
    say("model saved to {} (with its tokenizer)\n", save_path);
    if (!curve.empty()) say("training curve: {}.svg (data: {}.csv)\n", stem, stem);
    say("write with it: qkv sample --checkpoint {} --prompt \"...\"\n", save_path);
    if (std::filesystem::weakly_canonical(out_dir) == std::filesystem::weakly_canonical(kRunsDir))
        say("without --checkpoint, qkv sample opens it: {} names it\n", last_run_file(out_dir));
    return 0;
}

// ---- sampling -------------------------------------------------------------------------------------

int sample_text(const Args& a, const std::string& path, bool gpt2_dir) {
    for (const char* task_only : {"count"})
        if (a.has(task_only))
            throw UsageError(fmt::format("--{} is for task models; '{}' is a text model (use --tokens)", task_only, path));
    const TextModel m = gpt2_dir ? load_gpt2(path) : load_text_model(path);
    const data::Tokenizer& tok = *m.tokenizer;
    nn::SampleOptions o;
    o.greedy = a.has("greedy");
    o.temperature = a.real("temperature", 0.8, 1e-6, 100);
    o.top_k = a.integer("top-k", 0, 0, tok.vocab_size());
    o.top_p = a.real("top-p", 1.0, 1e-9, 1.0);
    const auto tokens = a.integer("tokens", 500, 0, 1'000'000);
    const auto seed = std::uint64_t(a.integer("seed", 0, 0, (1LL << 62)));
    const bool quiet = a.has("quiet");
    const std::string prompt = a.str("prompt", "\n");
    if (prompt.empty()) throw UsageError("--prompt is empty: give some text, or leave --prompt out to start from a newline");
    std::vector<std::int32_t> ids;
    try {
        ids = tok.encode_with_specials(prompt);
    } catch (const Error& e) {
        // A character the tokenizer never saw: the prompt (a flag) is the problem.
        throw UsageError(fmt::format("--prompt: {}{}", e.what(),
                                     tok.kind() == std::string_view("char") ? " (a character-level model knows only the "
                                                                              "characters of its training text)"
                                                                            : ""));
    }
    // The prompt, then each token as it is made: written and flushed at once. (Byte-level tokens may
    // end in the middle of a UTF-8 character; the terminal puts it together when the rest arrives.)
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
    const std::int32_t eot = tok.end_of_text();
    std::int64_t made = 0;
    Generator gen(seed);
    const auto t0 = std::chrono::steady_clock::now();
    m.model->generate(from(ids, {1, std::int64_t(ids.size())}), tokens, o, gen, !a.has("no-cache"),
                      [&](const std::vector<std::int32_t>& next) {
                          ++made;
                          if (next[0] == eot) return false;  // the model ended the text
                          const std::string bytes = tok.token_bytes(next[0]);
                          std::fwrite(bytes.data(), 1, bytes.size(), stdout);
                          std::fflush(stdout);
                          return true;
                      });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!quiet)
        fmt::print(stderr, "[{} tokens in {:.3f} s: {:.0f} tokens/s; {} thread{}, seed {}, {}]\n", made, secs,
                   double(made) / std::max(secs, 1e-9), num_threads(), num_threads() == 1 ? "" : "s", seed,
                   o.greedy ? std::string("greedy")
                            : fmt::format("temperature {}{}{}", o.temperature,
                                          o.top_k ? fmt::format(", top-k {}", o.top_k) : "",
                                          o.top_p < 1 ? fmt::format(", top-p {}", o.top_p) : ""));
    return 0;
}

}  // namespace qkv::cli
