/// \file
/// \brief The toy-task training loop, evaluation and checkpointing.
///
/// A reader learns here the whole recipe for training a GPT on a toy task: check the settings, build
/// the task, model and AdamW, then repeat step() — draw a batch, zero_grad, forward, loss, backward,
/// update — and every eval_every steps measure greedy exact-match accuracy (with the key/value cache)
/// on a held-out set drawn from a fixed seed, stopping at the target accuracy. Batches come from a
/// generator of their own, so a run is reproducible; the settings go into the checkpoint's metadata as
/// strings, so load() rebuilds the same trainer before restoring weights, optimizer state and step.
#include <algorithm>
#include "qkv/train/train.hpp"

#include <chrono>

#include "qkv/core/autograd.hpp"
#include "qkv/io/safetensors.hpp"

namespace qkv {

namespace {

nn::GPTConfig gpt_config(const TaskTrainConfig& c, const data::Task& task) {
    nn::GPTConfig g;
    g.vocab = task.vocab().size();
    g.block_size = task.sequence_length();
    g.dim = c.dim;
    g.heads = c.heads;
    g.layers = c.layers;
    g.seed = c.seed;
    return g;
}

void validate(const TaskTrainConfig& c) {
    auto positive = [](const char* what, std::int64_t v) {
        if (v < 1) fail("train: {} must be >= 1, got {}", what, v);
    };
    positive("layers", c.layers);
    positive("heads", c.heads);
    positive("dim", c.dim);
    positive("batch", c.batch);
    positive("steps", c.max_steps);
    positive("eval_every", c.eval_every);
    positive("eval_size", c.eval_size);
    positive("log_every", c.log_every);
    if (c.dim % c.heads != 0) fail("train: heads ({}) must divide dim ({})", c.heads, c.dim);
    if (!(c.lr > 0)) fail("train: learning rate must be > 0, got {}", c.lr);
    if (c.weight_decay < 0) fail("train: weight decay must be >= 0, got {}", c.weight_decay);
    if (!is_floating(c.dtype)) fail("train: dtype must be f32 or f64");
}

// Settings ↔ checkpoint metadata (strings), so a saved run can be rebuilt exactly.
io::Metadata to_metadata(const TaskTrainConfig& c) {
    return {{"run.task", c.task.name},           {"run.length", std::to_string(c.task.length)},
            {"run.reversed", c.task.reversed ? "1" : "0"}, {"run.layers", std::to_string(c.layers)},
            {"run.heads", std::to_string(c.heads)}, {"run.dim", std::to_string(c.dim)},
            {"run.batch", std::to_string(c.batch)}, {"run.max_steps", std::to_string(c.max_steps)},
            {"run.lr", fmt::format("{:.17g}", c.lr)}, {"run.weight_decay", fmt::format("{:.17g}", c.weight_decay)},
            {"run.seed", std::to_string(c.seed)},   {"run.eval_every", std::to_string(c.eval_every)},
            {"run.eval_size", std::to_string(c.eval_size)}, {"run.dtype", std::string(dtype_name(c.dtype))}};
}

TaskTrainConfig from_metadata(const io::Metadata& m, const std::string& path) {
    auto get = [&](const char* key) -> const std::string& {
        const auto it = m.find(key);
        if (it == m.end()) fail("{}: not a qkv training checkpoint (metadata '{}' missing)", path, key);
        return it->second;
    };
    auto num = [&](const char* key) {
        try {
            return std::stod(get(key));
        } catch (const std::logic_error&) {
            fail("{}: metadata '{}' is not a number: '{}'", path, key, get(key));
        }
    };
    TaskTrainConfig c;
    c.task.name = get("run.task");
    c.task.length = std::int64_t(num("run.length"));
    c.task.reversed = get("run.reversed") == "1";
    c.layers = std::int64_t(num("run.layers"));
    c.heads = std::int64_t(num("run.heads"));
    c.dim = std::int64_t(num("run.dim"));
    c.batch = std::int64_t(num("run.batch"));
    c.max_steps = std::int64_t(num("run.max_steps"));
    c.lr = num("run.lr");
    c.weight_decay = num("run.weight_decay");
    c.seed = std::uint64_t(num("run.seed"));
    c.eval_every = std::int64_t(num("run.eval_every"));
    c.eval_size = std::int64_t(num("run.eval_size"));
    c.dtype = get("run.dtype") == "f64" ? f64 : f32;
    return c;
}

}  // namespace

TaskTrainer::TaskTrainer(const TaskTrainConfig& config) : cfg_(config) {
    validate(cfg_);
    task_ = data::make_task(cfg_.task);
    cfg_.task = task_->config();  // with the default length filled in
    model_ = std::make_unique<nn::GPT>(gpt_config(cfg_, *task_));
    if (cfg_.dtype != f32) model_->to(cfg_.dtype);
    optim::AdamWOptions o;
    o.lr = cfg_.lr;
    o.weight_decay = cfg_.weight_decay;
    opt_ = std::make_unique<optim::AdamW>(model_->named_parameters(), o);
    state_.rng.manual_seed(cfg_.seed + 7);  // batches: a stream of their own
    heldout_ = data::heldout_set(*task_, cfg_.eval_size, kHeldoutSeed);
}

std::unique_ptr<TaskTrainer> TaskTrainer::load(const std::string& path) {
    const auto meta = io::load_safetensors(path).metadata;
    auto t = std::make_unique<TaskTrainer>(from_metadata(meta, path));
    io::load_checkpoint(path, *t->model_, t->opt_.get(), &t->state_);
    return t;
}

void TaskTrainer::save(const std::string& path) const {
    io::save_checkpoint(path, *model_, opt_.get(), &state_, to_metadata(cfg_));
}

// One step: forward, loss on the answer positions only, backward, AdamW update.
double TaskTrainer::step() {
    const data::Batch b = data::make_batch(*task_, cfg_.batch, data::Split::train, state_.rng);
    opt_->zero_grad();
    const Tensor loss = model_->loss(b.inputs, b.targets);
    loss.backward();
    opt_->step();
    ++state_.step;
    return loss.item();
}

double TaskTrainer::evaluate(const std::vector<data::Example>& examples) {
    if (examples.empty()) return 0;
    const bool was_training = model_->is_training();
    model_->eval();
    // Greedy decoding, kEvalChunk sequences at a time: every chunk allocates the same tensor sizes,
    // which the allocator's cache then hands out again (one batch of 1 000 faulted in hundreds of
    // MB of fresh pages). Sequences do not interact, so the answers are the same as in one batch.
    constexpr std::size_t kEvalChunk = 256;
    std::int64_t correct = 0;
    for (std::size_t first = 0; first < examples.size(); first += kEvalChunk) {
        const std::size_t last = std::min(examples.size(), first + kEvalChunk);
        std::vector<std::int32_t> contexts;
        for (std::size_t i = first; i < last; ++i) {
            const auto c = examples[i].context();
            contexts.insert(contexts.end(), c.begin(), c.end());
        }
        const auto B = std::int64_t(last - first);
        const std::int64_t ctx_len = std::int64_t(contexts.size()) / B;
        Generator unused(0);
        const Tensor out = model_->generate(from(contexts, {B, ctx_len}), task_->answer_length(), nn::SampleOptions{},
                                            unused, /*use_cache=*/true);
        const auto flat = out.to_vector<std::int32_t>();
        const std::int64_t width = out.size(1);
        for (std::int64_t b = 0; b < B; ++b) {
            std::vector<std::int32_t> predicted(flat.begin() + b * width + ctx_len, flat.begin() + (b + 1) * width);
            if (data::exact_match(predicted, examples[first + std::size_t(b)])) ++correct;
        }
    }
    model_->train(was_training);
    return double(correct) / double(examples.size());
}

std::string TaskTrainer::answer(const std::string& prompt) {
    const data::Example e = task_->example(prompt);
    const auto ctx = e.context();
    Generator unused(0);
    const bool was_training = model_->is_training();
    model_->eval();
    const Tensor out = model_->generate(from(ctx, {1, std::int64_t(ctx.size())}), task_->answer_length(),
                                        nn::SampleOptions{}, unused, true);
    model_->train(was_training);
    const auto flat = out.to_vector<std::int32_t>();
    return task_->vocab().decode(std::vector<std::int32_t>(flat.begin() + std::int64_t(ctx.size()), flat.end()));
}

std::vector<EvalPoint> TaskTrainer::run(const std::function<void(const EvalPoint&)>& on_eval,
                                        const std::function<void(std::int64_t, double)>& on_step) {
    std::vector<EvalPoint> history;
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    double loss_sum = 0, curve_sum = 0;  // since the last evaluation, since the last curve point
    std::int64_t loss_count = 0, curve_count = 0;
    while (state_.step < cfg_.max_steps) {
        const double loss = step();
        loss_sum += loss, curve_sum += loss;
        ++loss_count, ++curve_count;
        if (on_step) on_step(state_.step, loss);
        const bool evaluate_now = state_.step % cfg_.eval_every == 0 || state_.step == cfg_.max_steps;
        // The curve gets the mean loss every log_every steps, whether or not an evaluation follows,
        // so that a run stopping at its first evaluation still has a curve to draw.
        CurvePoint c;
        c.step = state_.step;
        c.loss = curve_sum / double(curve_count);
        if (!evaluate_now) {
            if (state_.step % cfg_.log_every == 0) {
                c.seconds = seconds();
                curve_.push_back(c);
                curve_sum = 0, curve_count = 0;
            }
            continue;
        }
        EvalPoint p;
        p.step = state_.step;
        p.loss = loss_sum / double(loss_count);
        p.accuracy = evaluate(heldout_);
        p.seconds = seconds();
        c.accuracy = p.accuracy;
        c.seconds = p.seconds;
        curve_.push_back(c);
        loss_sum = 0, curve_sum = 0;
        loss_count = 0, curve_count = 0;
        history.push_back(p);
        if (on_eval) on_eval(p);
        if (p.accuracy >= cfg_.target_accuracy) break;
    }
    return history;
}

}  // namespace qkv
