/// \file
/// \brief The language-model training loop on a text: split, tokenize, random windows, warm-up +
/// cosine schedule, clipping, AdamW, validation loss on fixed windows, and checkpoints that carry the
/// tokenizer and the model's configuration.
///
/// A reader learns here the recipe nanoGPT popularised, step by step in plain C++: lr(step) first
/// (warm-up, then cosine), a batch of random windows, forward, loss, backward, clip the global
/// gradient norm, update. And how a checkpoint becomes self-contained: everything needed to rebuild
/// the model — its sizes and its tokenizer — is written as text into the safetensors metadata, and
/// read back with every value checked, because a checkpoint is a file from somewhere.
#include "qkv/train/text.hpp"

#include <charconv>
#include <chrono>
#include <cmath>

#include "qkv/core/autograd.hpp"
#include "qkv/io/safetensors.hpp"
#include "meta_reader.hpp"

namespace qkv {

using detail::MetaReader;

namespace {

// ---- small helpers --------------------------------------------------------------------------------

std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
    return h;
}

// splitmix64's finaliser: a seed for each step's dropout masks from (run seed, step).
std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void validate(const TextTrainConfig& c) {
    auto in_range = [](const char* what, std::int64_t v, std::int64_t lo, std::int64_t hi) {
        if (v < lo || v > hi) fail("train --text: {} must be in [{}, {}], got {}", what, lo, hi, v);
    };
    if (c.tokenizer != "char" && c.tokenizer != "bpe")
        fail("train --text: tokenizer must be 'char' or 'bpe', got '{}'", c.tokenizer);
    if (c.tokenizer == "bpe") in_range("vocab_size", c.vocab_size, 256, data::kMaxBpeVocab);
    in_range("hidden", c.hidden, 0, 1 << 18);
    in_range("layers", c.layers, 1, 256);
    in_range("heads", c.heads, 1, 256);
    in_range("dim", c.dim, 1, 16384);
    in_range("context", c.context, 1, 65536);
    in_range("batch", c.batch, 1, 1 << 20);
    in_range("steps", c.max_steps, 1, 1'000'000'000);
    in_range("warmup", c.warmup, 0, 1'000'000'000);
    in_range("eval_every", c.eval_every, 1, 1'000'000'000);
    in_range("eval_tokens", c.eval_tokens, 1, 1'000'000'000);
    in_range("log_every", c.log_every, 1, 1'000'000'000);
    if (c.dim % c.heads != 0) fail("train --text: heads ({}) must divide dim ({})", c.heads, c.dim);
    if (!(c.lr > 0 && std::isfinite(c.lr))) fail("train --text: learning rate must be > 0, got {}", c.lr);
    if (!(c.min_lr >= 0 && c.min_lr <= c.lr)) fail("train --text: min_lr must be in [0, lr = {}], got {}", c.lr, c.min_lr);
    if (!(c.weight_decay >= 0 && c.weight_decay <= 10)) fail("train --text: weight decay must be in [0, 10], got {}", c.weight_decay);
    if (!(c.beta2 >= 0 && c.beta2 < 1)) fail("train --text: beta2 must be in [0, 1), got {}", c.beta2);
    if (!(c.dropout >= 0 && c.dropout < 1)) fail("train --text: dropout must be in [0, 1), got {}", c.dropout);
    if (!(c.grad_clip >= 0 && std::isfinite(c.grad_clip)))
        fail("train --text: gradient clipping must be >= 0 (0: off), got {}", c.grad_clip);
}

nn::GPTConfig gpt_config(const TextTrainConfig& c, std::int64_t vocab) {
    nn::GPTConfig g;
    g.vocab = vocab;
    g.block_size = c.context;
    g.dim = c.dim;
    g.heads = c.heads;
    g.layers = c.layers;
    g.hidden = c.hidden;
    g.tanh_gelu = c.tanh_gelu;
    g.ln_eps = c.ln_eps;
    g.tie_weights = c.tie_weights;
    g.dropout = c.dropout;
    g.seed = c.seed;
    return g;
}

io::Metadata config_metadata(const TextTrainConfig& c) {
    auto num = [](double v) { return fmt::format("{}", v); };
    io::Metadata shape;  // GPT-2's options, written only when set (older files lack them)
    if (c.tanh_gelu) shape.emplace("text.tanh_gelu", "1");
    if (c.ln_eps != 1e-5) shape.emplace("text.ln_eps", num(c.ln_eps));
    if (c.tie_weights) shape.emplace("text.tie_weights", "1");
    io::Metadata m{{"text.tokenizer", c.tokenizer},
            {"text.vocab_size", std::to_string(c.vocab_size)},
            {"text.layers", std::to_string(c.layers)},
            {"text.heads", std::to_string(c.heads)},
            {"text.dim", std::to_string(c.dim)},
            {"text.hidden", std::to_string(c.hidden)},
            {"text.context", std::to_string(c.context)},
            {"text.batch", std::to_string(c.batch)},
            {"text.max_steps", std::to_string(c.max_steps)},
            {"text.lr", num(c.lr)},
            {"text.min_lr", num(c.min_lr)},
            {"text.warmup", std::to_string(c.warmup)},
            {"text.cosine", c.cosine ? "1" : "0"},
            {"text.weight_decay", num(c.weight_decay)},
            {"text.beta2", num(c.beta2)},
            {"text.dropout", num(c.dropout)},
            {"text.grad_clip", num(c.grad_clip)},
            {"text.seed", std::to_string(c.seed)},
            {"text.eval_every", std::to_string(c.eval_every)},
            {"text.eval_tokens", std::to_string(c.eval_tokens)}};
    m.merge(shape);
    return m;
}

TextTrainConfig config_from(const MetaReader& m) {
    TextTrainConfig c;
    c.tokenizer = m.str("text.tokenizer");
    c.vocab_size = m.integer("text.vocab_size", 0, data::kMaxBpeVocab);
    c.layers = m.integer("text.layers", 1, 256);
    c.heads = m.integer("text.heads", 1, 256);
    c.dim = m.integer("text.dim", 1, 16384);
    c.hidden = m.has("text.hidden") ? m.integer("text.hidden", 0, 1 << 18) : 0;  // (older checkpoints: 4·dim)
    c.tanh_gelu = m.has("text.tanh_gelu") && m.integer("text.tanh_gelu", 0, 1) == 1;
    c.ln_eps = m.has("text.ln_eps") ? m.real("text.ln_eps") : 1e-5;
    c.tie_weights = m.has("text.tie_weights") && m.integer("text.tie_weights", 0, 1) == 1;
    c.context = m.integer("text.context", 1, 65536);
    c.batch = m.integer("text.batch", 1, 1 << 20);
    c.max_steps = m.integer("text.max_steps", 1, 1'000'000'000);
    c.lr = m.real("text.lr");
    c.min_lr = m.real("text.min_lr");
    c.warmup = m.integer("text.warmup", 0, 1'000'000'000);
    c.cosine = m.integer("text.cosine", 0, 1) == 1;
    c.weight_decay = m.real("text.weight_decay");
    c.beta2 = m.real("text.beta2");
    c.dropout = m.real("text.dropout");
    c.grad_clip = m.real("text.grad_clip");
    c.seed = m.unsigned_integer("text.seed");
    c.eval_every = m.integer("text.eval_every", 1, 1'000'000'000);
    c.eval_tokens = m.integer("text.eval_tokens", 1, 1'000'000'000);
    validate(c);
    return c;
}

// ---- batches and validation windows ----------------------------------------------------------------

// B random windows of T + 1 tokens from ids: inputs are the first T, targets the last T.
std::pair<Tensor, Tensor> random_windows(const std::vector<std::int32_t>& ids, std::int64_t B, std::int64_t T,
                                         Generator& gen) {
    Tensor inputs = empty({B, T}, i32), targets = empty({B, T}, i32);
    std::int32_t* in = inputs.data<std::int32_t>();
    std::int32_t* tg = targets.data<std::int32_t>();
    const auto n = std::int64_t(ids.size());
    for (std::int64_t b = 0; b < B; ++b) {
        const auto s = std::int64_t(gen.below(std::uint64_t(n - T)));  // s + T ≤ n − 1
        std::copy_n(ids.begin() + s, T, in + b * T);
        std::copy_n(ids.begin() + s + 1, T, tg + b * T);
    }
    return {inputs, targets};
}

// The validation windows' starts (see TextTrainer::evaluate()).
std::vector<std::int64_t> validation_starts(std::int64_t n, std::int64_t T, std::int64_t eval_tokens) {
    const std::int64_t K = std::min((n - 1) / T, std::max<std::int64_t>(1, eval_tokens / T));
    std::vector<std::int64_t> starts;
    for (std::int64_t k = 0; k < K; ++k) starts.push_back(K == 1 ? 0 : k * (n - 1 - T) / (K - 1));
    return starts;
}

}  // namespace

// ---- the recipe -------------------------------------------------------------------------------------

TextTrainConfig TextTrainConfig::baby() {
    TextTrainConfig c;
    c.layers = 4;
    c.heads = 4;
    c.dim = 128;
    c.context = 64;
    c.batch = 12;
    c.max_steps = 2000;
    c.lr = 1e-3;
    c.min_lr = 1e-4;
    c.warmup = 100;
    c.weight_decay = 0.1;
    c.beta2 = 0.99;
    c.dropout = 0.0;
    c.grad_clip = 1.0;
    c.eval_every = 250;
    return c;
}

// ---- text in, ids out ---------------------------------------------------------------------------

TokenizedText tokenize_text(std::string_view text, const TextTrainConfig& c, std::string_view source,
                            std::unique_ptr<data::Tokenizer> tokenizer) {
    if (text.empty()) fail("{}: the file is empty: there is no text to learn from", source);
    if (c.context < 1) fail("{}: context must be >= 1, got {}", source, c.context);
    // The last 10% of the bytes validate; the cut moves back to the start of a UTF-8 character (at
    // most 3 bytes), so no character is split between the parts.
    std::size_t cut = text.size() * 9 / 10;
    for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80; ++k) --cut;
    const std::string_view train_text = text.substr(0, cut), validation_text = text.substr(cut);

    TokenizedText t;
    if (tokenizer) {
        t.tokenizer = std::move(tokenizer);
    } else if (c.tokenizer == "char") {
        try {
            t.tokenizer = std::make_unique<data::CharTokenizer>(data::CharTokenizer::train(text));
        } catch (const Error& e) {
            fail("{}: the character tokenizer needs UTF-8 text, and this is not ({}); '--tokenizer bpe' reads any "
                 "bytes",
                 source, e.what());
        }
    } else if (c.tokenizer == "bpe") {
        if (c.vocab_size < 256 || c.vocab_size > data::kMaxBpeVocab)
            fail("{}: vocab_size must be in [256, {}], got {}", source, data::kMaxBpeVocab, c.vocab_size);
        data::BpeTrainOptions o;
        o.stop_early = true;
        auto bpe = std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::train(train_text, c.vocab_size, o));
        const auto merges = std::int64_t(bpe->merges().size());
        if (256 + merges < c.vocab_size)
            throw VocabSizeError(fmt::format(
                "vocab_size {} is more than {} supports: after {} merges no pair of tokens occurs twice in its "
                "training part (the first 90%), so at most {}",
                c.vocab_size, source, merges, 256 + merges));
        t.tokenizer = std::move(bpe);
    } else {
        fail("{}: tokenizer must be 'char' or 'bpe', got '{}'", source, c.tokenizer);
    }
    t.train = t.tokenizer->encode_with_specials(train_text);
    t.validation = t.tokenizer->encode_with_specials(validation_text);
    t.train_bytes = std::int64_t(train_text.size());
    t.validation_bytes = std::int64_t(validation_text.size());
    auto enough = [&](const char* part, const std::vector<std::int32_t>& ids, std::int64_t bytes) {
        if (std::int64_t(ids.size()) < c.context + 1)
            fail("{}: the {} has {} tokens ({} bytes), fewer than one window of context + 1 = {} tokens: use a "
                 "longer text or a smaller context",
                 source, part, ids.size(), bytes, c.context + 1);
    };
    enough("training part (the first 90%)", t.train, t.train_bytes);
    enough("validation part (the last 10%)", t.validation, t.validation_bytes);
    return t;
}

// ---- checkpoints ------------------------------------------------------------------------------------

io::Metadata gpt_metadata(const nn::GPTConfig& g) {
    io::Metadata m{{"model.vocab", std::to_string(g.vocab)},
            {"model.block_size", std::to_string(g.block_size)},
            {"model.dim", std::to_string(g.dim)},
            {"model.heads", std::to_string(g.heads)},
            {"model.layers", std::to_string(g.layers)},
            {"model.hidden", std::to_string(g.hidden)},
            {"model.dropout", fmt::format("{}", g.dropout)},
            {"model.seed", std::to_string(g.seed)}};
    // GPT-2's options, only when set, so that other checkpoints stay as they were.
    if (g.tanh_gelu) m.emplace("model.tanh_gelu", "1");
    if (g.ln_eps != 1e-5) m.emplace("model.ln_eps", fmt::format("{}", g.ln_eps));
    if (g.tie_weights) m.emplace("model.tie_weights", "1");
    return m;
}

io::Metadata text_metadata(const nn::GPTConfig& g, const data::Tokenizer& tokenizer) {
    io::Metadata m = gpt_metadata(g);
    m["tokenizer"] = tokenizer.serialize();
    return m;
}

bool is_text_checkpoint(const io::Metadata& metadata) { return metadata.count("tokenizer") != 0; }

TextModel load_text_model(const std::string& path) {
    const io::SafeTensors file = io::load_safetensors(path);
    const std::string ctx = fmt::format("'{}'", path);
    if (!is_text_checkpoint(file.metadata)) {
        if (const auto task = file.metadata.find("run.task"); task != file.metadata.end())
            fail("{}: a model of the toy task '{}', not a text model: it has no tokenizer", ctx, task->second.substr(0, 40));
        fail("{}: the checkpoint has no tokenizer (metadata 'tokenizer' is missing): only checkpoints saved by 'qkv "
             "train --text' can write text",
             ctx);
    }
    const MetaReader m(file.metadata, ctx);
    TextModel out;
    out.tokenizer = data::Tokenizer::parse(m.str("tokenizer"), fmt::format("{} metadata", path));
    nn::GPTConfig g;
    g.vocab = m.integer("model.vocab", 1, data::kMaxCharVocab);
    g.block_size = m.integer("model.block_size", 1, 65536);
    g.dim = m.integer("model.dim", 1, 16384);
    g.heads = m.integer("model.heads", 1, 256);
    g.layers = m.integer("model.layers", 1, 256);
    g.hidden = m.integer("model.hidden", 0, 1 << 18);
    g.seed = m.unsigned_integer("model.seed");
    detail::read_gpt_options(m, g);
    if (g.dim % g.heads != 0) fail("{}: metadata: heads ({}) must divide dim ({})", ctx, g.heads, g.dim);
    if (g.vocab != out.tokenizer->vocab_size())
        fail("{}: metadata: the model has {} tokens, its tokenizer {}", ctx, g.vocab, out.tokenizer->vocab_size());
    // Check the sizes against the tensors actually in the file before building anything: forged
    // sizes could otherwise ask for gigabytes.
    std::int64_t held = 0;
    for (const auto& [name, t] : file.tensors)
        if (name.rfind("optimizer.", 0) != 0 && name.rfind("train.", 0) != 0) held += t.numel();  // the model's own
    if (nn::GPT::parameter_count(g) != double(held))
        fail("{}: the metadata describes a model of {} parameters, but the file holds {}", ctx,
             nn::GPT::parameter_count(g), held);
    {
        const nn::SkipInit skip;  // every weight comes from the file: drawing initial values would be wasted
        out.model = std::make_unique<nn::GPT>(g);
    }
    io::load_checkpoint(file, path, *out.model);
    out.model->eval();
    if (file.metadata.count("train.step")) out.steps = m.integer("train.step", 0, std::numeric_limits<std::int64_t>::max());
    return out;
}

// ---- the trainer ------------------------------------------------------------------------------------

namespace {

// The curve in the checkpoint (TrainState::curve, the tensor `train.curve`): one row per point,
// (step, train loss, validation loss or NaN, learning rate, seconds), in f64.
Tensor curve_table(const std::vector<TextCurvePoint>& curve) {
    std::vector<double> v;
    for (const auto& p : curve) v.insert(v.end(), {double(p.step), p.train_loss, p.validation_loss, p.lr, p.seconds});
    return from(v, {std::int64_t(curve.size()), 5});
}

// Read back what curve_table() wrote, checking it as anything from a file: five columns, steps
// increasing and within the run, losses finite or (validation only) NaN.
std::vector<TextCurvePoint> curve_points(const Tensor& table, std::int64_t steps, const std::string& path) {
    std::vector<TextCurvePoint> out;
    if (!table.defined()) return out;
    if (table.size(1) != 5)  // the checkpoint layer checked the rest: (N, K) f64
        fail("'{}': train.curve must have 5 columns (step, train loss, validation loss, lr, seconds), got shape {}",
             path, shape_str(table.shape()));
    const auto v = table.to_vector<double>();
    std::int64_t last = 0;
    for (std::size_t r = 0; r < v.size(); r += 5) {
        TextCurvePoint p;
        const double step = v[r];
        if (!(step > double(last) && step <= double(steps) && step == std::floor(step)))
            fail("'{}': train.curve: step {} out of order or beyond the run's {} steps", path, step, steps);
        p.step = last = std::int64_t(step);
        p.train_loss = v[r + 1], p.validation_loss = v[r + 2], p.lr = v[r + 3], p.seconds = v[r + 4];
        if (!std::isfinite(p.train_loss) || std::isinf(p.validation_loss) || !std::isfinite(p.lr) ||
            !std::isfinite(p.seconds))
            fail("'{}': train.curve: a value at step {} is not a finite number", path, p.step);
        out.push_back(p);
    }
    return out;
}

}  // namespace

TextTrainer::TextTrainer(const TextTrainConfig& config, std::string_view text, std::string source)
    : TextTrainer(config, text, std::move(source), nullptr) {}

TextTrainer::TextTrainer(const TextTrainConfig& config, std::string_view text, std::string source,
                         std::unique_ptr<data::Tokenizer> tokenizer)
    : cfg_(config), source_(std::move(source)) {
    validate(cfg_);
    data_ = tokenize_text(text, cfg_, source_, std::move(tokenizer));
    text_hash_ = fnv1a64(text);
    text_bytes_ = std::int64_t(text.size());
    // Will it fit? Asked before the first allocation (see TaskTrainer's constructor). The text's ids
    // are the loop's own memory besides the model.
    const nn::GPTConfig g = gpt_config(cfg_, data_.tokenizer->vocab_size());
    memory_ = estimate_training_memory(g, cfg_.batch, cfg_.context, f32,
                                       4.0 * double(data_.train.size() + data_.validation.size()));
    check_fits_in_memory(memory_, "train --text", "--layers, --dim, --context or --batch");
    try {
        model_ = std::make_unique<nn::GPT>(g);
        optim::AdamWOptions o;
        o.lr = cfg_.lr;
        o.weight_decay = cfg_.weight_decay;
        o.beta2 = cfg_.beta2;
        params_ = model_->named_parameters();
        opt_ = std::make_unique<optim::AdamW>(params_, o);
    } catch (const std::bad_alloc&) {  // the estimate fit, but the system had less
        throw out_of_memory_error(memory_, "train --text", "--layers, --dim, --context or --batch");
    } catch (const OutOfMemory&) {
        throw out_of_memory_error(memory_, "train --text", "--layers, --dim, --context or --batch");
    }
    state_.rng.manual_seed(cfg_.seed + 7);  // batches: a stream of their own
}

std::unique_ptr<TextTrainer> TextTrainer::load(const std::string& path, std::string_view text, std::string source) {
    const io::Metadata meta = io::load_safetensors(path).metadata;
    const std::string ctx = fmt::format("'{}'", path);
    if (!is_text_checkpoint(meta)) fail("{}: not a checkpoint of 'qkv train --text' (it has no tokenizer)", ctx);
    const MetaReader m(meta, ctx);
    TextTrainConfig c = config_from(m);
    const auto bytes = m.integer("text.bytes", 0, std::numeric_limits<std::int64_t>::max());
    const auto hash = m.unsigned_integer("text.fnv1a64");
    if (bytes != std::int64_t(text.size()) || hash != fnv1a64(text))
        fail("{}: this run trained on a text of {} bytes ({}), but {} has {} bytes or other content: resume with the "
             "same text",
             ctx, bytes, m.str("text.source").substr(0, 200), source, text.size());
    // The tokenizer is the saved one (BPE is not learned again), so the ids are the ones trained on.
    auto t = std::unique_ptr<TextTrainer>(new TextTrainer(c, std::move(source)));
    t->data_ = tokenize_text(text, c, t->source_, data::Tokenizer::parse(m.str("tokenizer"), ctx + " metadata"));
    t->text_hash_ = hash;
    t->text_bytes_ = bytes;
    if (m.has("text.init")) t->init_ = m.str("text.init");
    {
        const nn::SkipInit skip;  // the strict load below overwrites every weight
        t->model_ = std::make_unique<nn::GPT>(gpt_config(c, t->data_.tokenizer->vocab_size()));
    }
    optim::AdamWOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    o.beta2 = c.beta2;
    t->params_ = t->model_->named_parameters();
    t->opt_ = std::make_unique<optim::AdamW>(t->params_, o);
    io::load_checkpoint(path, *t->model_, t->opt_.get(), &t->state_);
    t->curve_ = curve_points(t->state_.curve, t->state_.step, path);
    t->state_.curve = Tensor();
    return t;
}

TextTrainer::TextTrainer(const TextTrainConfig& config, std::string source) : cfg_(config), source_(std::move(source)) {}

std::unique_ptr<TextTrainer> TextTrainer::fine_tune(const std::string& init, TextTrainConfig config,
                                                    std::string_view text, std::string source) {
    TextModel start = load_text_model(init);  // checks that it is a text model, its sizes and tensors
    const nn::GPTConfig& g = start.model->config();
    config.layers = g.layers;
    config.heads = g.heads;
    config.dim = g.dim;
    config.hidden = g.hidden;
    config.tanh_gelu = g.tanh_gelu;
    config.ln_eps = g.ln_eps;
    config.tie_weights = g.tie_weights;
    config.context = g.block_size;
    config.tokenizer = std::string(start.tokenizer->kind());
    if (config.tokenizer == "bpe") config.vocab_size = g.vocab - 1;  // 256 + merges; the end-of-text token on top
    auto t = std::unique_ptr<TextTrainer>(new TextTrainer(config, text, std::move(source), std::move(start.tokenizer)));
    // The checkpoint's weights replace the random ones (as f32: training runs in f32).
    const auto from = start.model->named_parameters();
    for (std::size_t i = 0; i < t->params_.size(); ++i) {
        auto& [name, p] = t->params_[i];
        if (from[i].first != name || from[i].second.shape() != p.shape())
            fail("'{}': parameter {} is '{}' {}, the new model's '{}' {}", init, i, from[i].first,
                 shape_str(from[i].second.shape()), name, shape_str(p.shape()));
        const Tensor w = from[i].second.to(f32);
        std::copy_n(w.data<float>(), w.numel(), p.data<float>());
    }
    t->init_ = init;
    return t;
}

void TextTrainer::set_max_steps(std::int64_t steps) {
    if (steps < 1 || steps > 1'000'000'000) fail("train --text: steps must be in [1, 1000000000], got {}", steps);
    cfg_.max_steps = steps;
}

void TextTrainer::save(const std::string& path) const {
    io::Metadata meta = config_metadata(cfg_);
    for (auto& [k, v] : text_metadata(model_->config(), *data_.tokenizer)) meta[k] = v;
    meta["text.source"] = source_;
    if (!init_.empty()) meta["text.init"] = init_;
    meta["text.bytes"] = std::to_string(text_bytes_);
    meta["text.fnv1a64"] = std::to_string(text_hash_);
    // Never save a broken state over a good file: checked first, so the file keeps what it had.
    std::vector<NamedTensor> everything = params_;
    for (auto& [name, t] : opt_->state_view().tensors) everything.emplace_back("optimizer." + name, t);
    check_finite_for_saving(everything, path);
    io::TrainState state = state_;
    state.curve = curve_table(curve_);  // so that a resumed run's curve continues this one
    io::save_checkpoint(path, *model_, opt_.get(), &state, meta);
}

// ---------------------------------------------------------------------------------------------------
// lr(s) = η (s + 1)/W                                         s < W          (warm-up)
//       = η_min + ½(η − η_min)(1 + cos(π (s − W)/(S − W)))     W ≤ s < S      (cosine)
// with S = max_steps (optim::WarmupCosineLR); or η throughout when the schedule is constant.
double TextTrainer::lr_at(std::int64_t step) const {
    if (!cfg_.cosine) return cfg_.lr;
    optim::WarmupCosineLR s;
    s.peak_lr = cfg_.lr;
    s.min_lr = cfg_.min_lr;
    s.total_steps = cfg_.max_steps;
    s.warmup_steps = std::min(cfg_.warmup, cfg_.max_steps);
    return s.lr_at(step);
}

double TextTrainer::step() {
    try {
        return step_unguarded();
    } catch (const std::bad_alloc&) {
        throw out_of_memory_error(memory_, "train --text", "--layers, --dim, --context or --batch");
    } catch (const OutOfMemory&) {
        throw out_of_memory_error(memory_, "train --text", "--layers, --dim, --context or --batch");
    }
}

// The loss and every gradient are checked before clipping and the update, so a NaN never reaches
// the weights: the step is then not applied, and TrainingDiverged names the op and the layer of the
// first non-finite value (the step is repeated under anomaly mode — same windows, same dropout
// masks, same weights — to find it).
double TextTrainer::step_unguarded() {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t this_step = state_.step + 1;
    opt_->set_lr(lr_at(state_.step));
    // Named tensors rather than a structured binding: the replay lambda below captures them, and
    // clang 14 cannot capture a structured binding.
    const std::pair<Tensor, Tensor> batch = random_windows(data_.train, cfg_.batch, cfg_.context, state_.rng);
    const Tensor& inputs = batch.first;
    const Tensor& targets = batch.second;
    // Each step's dropout masks depend on (seed, step) alone, so a resumed run draws the same ones.
    const std::uint64_t dropout_seed = mix64(cfg_.seed ^ mix64(std::uint64_t(state_.step) + 1));
    try {
        if (cfg_.dropout > 0) model_->reseed_dropout(dropout_seed);
        opt_->zero_grad();
        const Tensor loss = model_->loss(inputs, targets);
        const double value = loss.item();
        if (std::isfinite(value)) loss.backward();
        check_finite_step(value, params_, this_step, [&] {
            if (cfg_.dropout > 0) model_->reseed_dropout(dropout_seed);
            opt_->zero_grad();
            model_->loss(inputs, targets).backward();
        });
        // Clip: if the global norm n of all gradients exceeds c, scale them by c / n (direction kept).
        if (cfg_.grad_clip > 0) optim::clip_grad_norm(opt_->params(), cfg_.grad_clip);
        opt_->step();
        ++state_.step;
        step_seconds_ += seconds_since(t0);
        return value;
    } catch (const AnomalyError& e) {  // anomaly mode was on already (--detect-anomaly)
        throw TrainingDiverged(fmt::format("step {}: {}", this_step, e.what()), this_step);
    }
}

double TextTrainer::evaluate() {
    NoGradGuard no_grad;
    const bool was_training = model_->is_training();
    model_->eval();
    const std::int64_t T = cfg_.context;
    const auto starts = validation_starts(std::int64_t(data_.validation.size()), T, cfg_.eval_tokens);
    // Windows in chunks of at most 32 (the same tensor sizes each time, which the allocator reuses);
    // each chunk's mean loss is weighted by its number of windows.
    constexpr std::size_t kChunk = 32;
    double sum = 0;
    for (std::size_t first = 0; first < starts.size(); first += kChunk) {
        const std::size_t count = std::min(kChunk, starts.size() - first);
        Tensor inputs = empty({std::int64_t(count), T}, i32), targets = empty({std::int64_t(count), T}, i32);
        for (std::size_t k = 0; k < count; ++k) {
            const auto s = data_.validation.begin() + starts[first + k];
            std::copy_n(s, T, inputs.data<std::int32_t>() + std::int64_t(k) * T);
            std::copy_n(s + 1, T, targets.data<std::int32_t>() + std::int64_t(k) * T);
        }
        sum += model_->loss(inputs, targets).item() * double(count);
    }
    model_->train(was_training);
    return sum / double(starts.size());
}

double TextTrainer::bits_per_byte(double loss) const {
    return loss * double(data_.validation.size()) / double(data_.validation_bytes) / std::log(2.0);
}

std::vector<TextEvalPoint> TextTrainer::run(const std::function<void(const TextEvalPoint&)>& on_eval,
                                            const std::function<void(std::int64_t, double)>& on_step, RunGuard* guard) {
    std::vector<TextEvalPoint> history;
    const auto t0 = std::chrono::steady_clock::now();
    // A resumed run's curve continues the saved one, in time too.
    const double offset = curve_.empty() ? 0 : curve_.back().seconds;
    auto seconds = [&] { return offset + seconds_since(t0); };
    double eval_sum = 0, curve_sum = 0;  // since the last evaluation, since the last curve point
    std::int64_t eval_count = 0, curve_count = 0;
    // A point of the curve (and an evaluation when one is due) after the step just made.
    auto record = [&](bool evaluate_now) {
        TextCurvePoint c;
        c.step = state_.step;
        c.train_loss = curve_sum / double(curve_count);
        c.lr = lr_at(state_.step - 1);
        curve_sum = 0, curve_count = 0;
        if (evaluate_now) {
            TextEvalPoint p;
            p.step = state_.step;
            p.train_loss = eval_sum / double(eval_count);
            p.validation_loss = evaluate();
            p.bits_per_byte = bits_per_byte(p.validation_loss);
            p.lr = c.lr;
            p.seconds = seconds();
            c.validation_loss = p.validation_loss;
            eval_sum = 0, eval_count = 0;
            history.push_back(p);
            c.seconds = p.seconds;
            curve_.push_back(c);
            if (on_eval) on_eval(p);
        } else {
            c.seconds = seconds();
            curve_.push_back(c);
        }
    };
    while (state_.step < cfg_.max_steps) {
        const double loss = step();
        eval_sum += loss, curve_sum += loss;
        ++eval_count, ++curve_count;
        if (on_step) on_step(state_.step, loss);
        // A stop request (Ctrl-C, SIGTERM) ends the run after this step, with its evaluation if one
        // is due; the curve gets a point at the stop, so that the saved curve covers every step.
        const bool stop = guard && guard->stop_requested();
        const bool evaluate_now = state_.step % cfg_.eval_every == 0 || state_.step == cfg_.max_steps;
        if (evaluate_now || state_.step % cfg_.log_every == 0 || stop) record(evaluate_now);
        if (guard) {
            if (stop) {
                guard->save(state_.step);
                break;
            }
            guard->after_step(state_.step);
        }
    }
    return history;
}

}  // namespace qkv
