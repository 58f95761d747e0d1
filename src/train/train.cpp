/// \file
/// \brief The toy-task training loop, evaluation and checkpointing.
///
/// A reader learns here the whole recipe for training a GPT on a toy task: check the settings, build
/// the task, model and AdamW, then repeat step() — draw a batch, zero_grad, forward, loss, backward,
/// update — and every eval_every steps measure greedy exact-match accuracy (with the key/value cache)
/// on a held-out set drawn from a fixed seed, stopping at the target accuracy. Batches come from a
/// generator of their own, so a run is reproducible; the settings go into the checkpoint's metadata as
/// strings, so load() rebuilds the same trainer before restoring weights, optimizer state and step.
#include "qkv/train/train.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

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

// ---- the settings' ranges ------------------------------------------------------------------------
// One table for the integer settings: validate() checks a config against it and from_metadata() a
// checkpoint's strings, so the two cannot drift apart. The upper bounds keep every size computed
// from the settings far from overflowing; whether the model fits in memory is checked separately.

struct IntSetting {
    const char* name;                          // as in messages: "dim"
    const char* key;                           // in a checkpoint's metadata: "run.dim"
    std::int64_t TaskTrainConfig::*field;
    std::int64_t min, max;
};
constexpr std::int64_t kTrillion = 1'000'000'000'000;
constexpr IntSetting kIntSettings[] = {
    {"layers", "run.layers", &TaskTrainConfig::layers, 1, 1024},
    {"heads", "run.heads", &TaskTrainConfig::heads, 1, 1024},
    {"dim", "run.dim", &TaskTrainConfig::dim, 1, 65536},
    {"batch", "run.batch", &TaskTrainConfig::batch, 1, 1'000'000},
    {"steps", "run.max_steps", &TaskTrainConfig::max_steps, 1, kTrillion},
    {"eval_every", "run.eval_every", &TaskTrainConfig::eval_every, 1, kTrillion},
    {"eval_size", "run.eval_size", &TaskTrainConfig::eval_size, 1, 1'000'000},
};

void validate(const TaskTrainConfig& c) {
    for (const auto& s : kIntSettings) {
        const std::int64_t v = c.*s.field;
        if (v < s.min) fail("train: {} must be >= {}, got {}", s.name, s.min, v);
        if (v > s.max) fail("train: {} must be <= {}, got {}", s.name, s.max, v);
    }
    if (c.log_every < 1) fail("train: log_every must be >= 1, got {}", c.log_every);
    if (c.log_every > kTrillion) fail("train: log_every must be <= {}, got {}", kTrillion, c.log_every);
    if (c.dim % c.heads != 0) fail("train: heads ({}) must divide dim ({})", c.heads, c.dim);
    if (!(c.lr > 0) || !std::isfinite(c.lr)) fail("train: learning rate must be a finite number > 0, got {}", c.lr);
    if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay))
        fail("train: weight decay must be a finite number >= 0, got {}", c.weight_decay);
    if (std::isnan(c.target_accuracy)) fail("train: target_accuracy must be a number, got NaN");
    if (!is_floating(c.dtype)) fail("train: dtype must be f32 or f64, got {}", dtype_name(c.dtype));
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

// Reads the run's settings back out of a checkpoint's metadata, one field at a time, trusting
// nothing: a number must be written out in full in the field's type (64.9 is not an integer, -1 is
// not a seed, nan is not a learning rate) and lie in the field's range, and every message names the
// file, the key and the value as found, so the user knows what is wrong and where.
class SettingsReader {
public:
    SettingsReader(const io::Metadata& m, const std::string& path) : m_(m), ctx_(fmt::format("load: '{}'", path)) {}

    const std::string& text(const char* key) const {
        const auto it = m_.find(key);
        if (it == m_.end()) fail("{}: not a qkv training checkpoint (metadata '{}' missing)", ctx_, key);
        return it->second;
    }
    template <class T>
    T integer(const char* key, T lo, T hi) const {
        const std::string& s = text(key);
        T v{};
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
            fail("{}: metadata '{}' must be an integer in [{}, {}], got '{}'", ctx_, key, lo, hi, s);
        return v;
    }
    double real(const char* key, double lo, bool lo_open) const {
        const std::string& s = text(key);
        double v = 0;
        const bool whole = !s.empty() && parse_double_prefix(s, v) == s.size();
        const bool in_range = lo_open ? v > lo : v >= lo;
        if (!whole || !std::isfinite(v) || !in_range)
            fail("{}: metadata '{}' must be a finite number {} {}, got '{}'", ctx_, key, lo_open ? ">" : ">=", lo, s);
        return v;
    }
    const std::string& one_of(const char* key, std::initializer_list<const char*> allowed) const {
        const std::string& s = text(key);
        for (const char* a : allowed)
            if (s == a) return s;
        fail("{}: metadata '{}' must be one of {}, got '{}'", ctx_, key, fmt::join(allowed, ", "), s);
    }
    const std::string& context() const { return ctx_; }

private:
    const io::Metadata& m_;
    std::string ctx_;
};

TaskTrainConfig from_metadata(const io::Metadata& m, const std::string& path) {
    const SettingsReader r(m, path);
    TaskTrainConfig c;
    c.task.name = r.text("run.task");
    const auto& names = data::task_names();
    if (std::find(names.begin(), names.end(), c.task.name) == names.end())
        fail("{}: metadata 'run.task' must be one of {}, got '{}'", r.context(), fmt::join(names, ", "), c.task.name);
    c.task.length = r.integer<std::int64_t>("run.length", 1, 1'000'000);
    c.task.reversed = r.one_of("run.reversed", {"0", "1"}) == "1";
    for (const auto& s : kIntSettings) c.*s.field = r.integer<std::int64_t>(s.key, s.min, s.max);
    if (c.dim % c.heads != 0)
        fail("{}: metadata 'run.heads' ({}) must divide 'run.dim' ({})", r.context(), c.heads, c.dim);
    c.lr = r.real("run.lr", 0, true);
    c.weight_decay = r.real("run.weight_decay", 0, false);
    // The seed is a 64-bit integer and is read as one: through a double, seeds above 2^53 changed.
    c.seed = r.integer<std::uint64_t>("run.seed", 0, std::numeric_limits<std::uint64_t>::max());
    c.dtype = r.one_of("run.dtype", {"f32", "f64"}) == "f64" ? f64 : f32;
    // The task checks its own length (each task has its range); say which metadata it came from.
    try {
        (void)data::make_task(c.task);
    } catch (const Error& e) {
        fail("{}: metadata 'run.task' and 'run.length' do not make a valid task: {}", r.context(), e.what());
    }
    return c;
}

// The curve as the checkpoint's (N, 4) f64 table, and back (checking what a file could get wrong).
Tensor curve_table(const std::vector<CurvePoint>& curve) {
    std::vector<double> v;
    for (const auto& p : curve) v.insert(v.end(), {double(p.step), p.loss, p.accuracy, p.seconds});
    return from(v, {std::int64_t(curve.size()), 4});
}

std::vector<CurvePoint> curve_points(const Tensor& table, std::int64_t steps, const std::string& path) {
    std::vector<CurvePoint> out;
    if (!table.defined()) return out;
    if (table.size(1) != 4)  // the checkpoint layer checked the rest: (N, K) f64
        fail("'{}': train.curve must have 4 columns (step, loss, accuracy, seconds), got shape {}", path,
             shape_str(table.shape()));
    const auto v = table.to_vector<double>();
    for (std::int64_t i = 0; i < table.size(0); ++i) {
        CurvePoint p;
        const double step = v[std::size_t(4 * i)];
        p.loss = v[std::size_t(4 * i + 1)];
        p.accuracy = v[std::size_t(4 * i + 2)];
        p.seconds = v[std::size_t(4 * i + 3)];
        const double previous = out.empty() ? 0 : double(out.back().step);
        if (!(step > previous && step <= double(steps) && step == std::floor(step)) ||
            !(std::isnan(p.accuracy) || (p.accuracy >= 0 && p.accuracy <= 1)) || !std::isfinite(p.seconds))
            fail("load: '{}': row {} of the training curve 'train.curve' is not a valid point (step {}, accuracy {}, "
                 "seconds {})",
                 path, i, step, p.accuracy, p.seconds);
        p.step = std::int64_t(step);
        out.push_back(p);
    }
    return out;
}

}  // namespace

TaskTrainer::TaskTrainer(const TaskTrainConfig& config) : cfg_(config) {
    validate(cfg_);
    task_ = data::make_task(cfg_.task);
    cfg_.task = task_->config();  // with the default length filled in
    // Will it fit? Asked before the first allocation: with overcommit, a model too large for the
    // machine is not refused by the allocator but killed by the kernel once its pages are touched.
    const double T = double(task_->sequence_length());
    const double heldout_bytes = double(cfg_.eval_size) * (12 * T + 160);  // tokens, a set of them, bookkeeping
    memory_ = estimate_training_memory(gpt_config(cfg_, *task_), cfg_.batch, task_->sequence_length() - 1, cfg_.dtype,
                                       heldout_bytes);
    check_fits_in_memory(memory_, "train");
    try {
        model_ = std::make_unique<nn::GPT>(gpt_config(cfg_, *task_));
        if (cfg_.dtype != f32) model_->to(cfg_.dtype);
        optim::AdamWOptions o;
        o.lr = cfg_.lr;
        o.weight_decay = cfg_.weight_decay;
        params_ = model_->named_parameters();
        opt_ = std::make_unique<optim::AdamW>(params_, o);
        state_.rng.manual_seed(cfg_.seed + 7);  // batches: a stream of their own
        heldout_ = data::heldout_set(*task_, cfg_.eval_size, kHeldoutSeed);
    } catch (const std::bad_alloc&) {  // the estimate fit, but the system had less (other programs, ...)
        throw out_of_memory_error(memory_, "train");
    } catch (const OutOfMemory&) {
        throw out_of_memory_error(memory_, "train");
    }
}

std::unique_ptr<TaskTrainer> TaskTrainer::load(const std::string& path) {
    const io::SafeTensors file = io::load_safetensors(path);
    // The settings decide every size that is allocated next, so they must come from a file qkv
    // wrote: one without its checksum was edited or made elsewhere (see load_checkpoint).
    if (!file.crc_verified)
        fail("load: '{}': the file has no qkv checksum (metadata 'qkv.crc32' and 'qkv.format', which every "
             "checkpoint qkv saves carries): it was edited or written by another program; train it again, or "
             "load its weights into a model with io::load_checkpoint",
             path);
    auto t = std::make_unique<TaskTrainer>(from_metadata(file.metadata, path));
    io::load_checkpoint(file, path, *t->model_, t->opt_.get(), &t->state_);
    // qkv never saves weights that are not finite; such a file was edited (with its checksum redone).
    std::vector<NamedTensor> everything = t->params_;
    for (auto& [name, p] : t->opt_->state_view().tensors) everything.emplace_back("optimizer." + name, p);
    if (const std::string bad = find_non_finite(everything); !bad.empty())
        fail("load: '{}': {}: a training state that is not finite cannot be used; go back to an earlier checkpoint", path,
             bad);
    t->curve_ = curve_points(t->state_.curve, t->state_.step, path);
    t->state_.curve = Tensor();
    return t;
}

void TaskTrainer::save(const std::string& path) const {
    // Never save a broken state over a good file: checked first, so the file keeps what it had.
    std::vector<NamedTensor> everything = params_;
    for (auto& [name, t] : opt_->state_view().tensors) everything.emplace_back("optimizer." + name, t);
    check_finite_for_saving(everything, path);
    io::TrainState state = state_;
    state.curve = curve_table(curve_);
    io::save_checkpoint(path, *model_, opt_.get(), &state, to_metadata(cfg_));
}

// One step: forward, loss on the answer positions only, backward, AdamW update.
double TaskTrainer::step() {
    try {
        return step_unguarded();
    } catch (const std::bad_alloc&) {
        throw out_of_memory_error(memory_, "train");
    } catch (const OutOfMemory&) {
        throw out_of_memory_error(memory_, "train");
    }
}

// The loss and every gradient are checked before the update, so a NaN never reaches the weights:
// the step is then not applied, and TrainingDiverged says which op made the first non-finite value
// (the step is repeated under anomaly mode to find it — same batch, same weights, same values).
double TaskTrainer::step_unguarded() {
    const data::Batch b = data::make_batch(*task_, cfg_.batch, data::Split::train, state_.rng);
    const std::int64_t this_step = state_.step + 1;
    try {
        opt_->zero_grad();
        const Tensor loss = model_->loss(b.inputs, b.targets);
        const double value = loss.item();
        if (std::isfinite(value)) loss.backward();
        check_finite_step(value, params_, this_step, [&] {
            opt_->zero_grad();
            model_->loss(b.inputs, b.targets).backward();
        });
        opt_->step();
        ++state_.step;
        return value;
    } catch (const AnomalyError& e) {  // anomaly mode was on already (qkv train --detect-anomaly)
        throw TrainingDiverged(fmt::format("step {}: {}", this_step, e.what()), this_step);
    }
}

double TaskTrainer::evaluate(const std::vector<data::Example>& examples) {
    try {
        return evaluate_unguarded(examples);
    } catch (const std::bad_alloc&) {
        throw out_of_memory_error(memory_, "evaluate");
    } catch (const OutOfMemory&) {
        throw out_of_memory_error(memory_, "evaluate");
    }
}

double TaskTrainer::evaluate_unguarded(const std::vector<data::Example>& examples) {
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
                                        const std::function<void(std::int64_t, double)>& on_step, RunGuard* guard) {
    std::vector<EvalPoint> history;
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    // A resumed run's curve continues the saved one, in time too.
    const double offset = curve_.empty() ? 0 : curve_.back().seconds;
    double loss_sum = 0, curve_sum = 0;  // since the last evaluation, since the last curve point
    std::int64_t loss_count = 0, curve_count = 0;
    while (state_.step < cfg_.max_steps) {
        const double loss = step();
        loss_sum += loss, curve_sum += loss;
        ++loss_count, ++curve_count;
        if (on_step) on_step(state_.step, loss);
        // A stop request (Ctrl-C, SIGTERM) ends the run after this step — with its evaluation, if
        // one is due, so that a resumed run decides exactly as an uninterrupted one would.
        const bool stop = guard && guard->stop_requested();
        const bool evaluate_now = state_.step % cfg_.eval_every == 0 || state_.step == cfg_.max_steps;
        // The curve gets the mean loss every log_every steps, whether or not an evaluation follows,
        // so that a run stopping at its first evaluation still has a curve to draw (and at a stop,
        // so that the saved curve covers every step).
        CurvePoint c;
        c.step = state_.step;
        c.loss = curve_sum / double(curve_count);
        bool done = false;
        if (!evaluate_now) {
            if (state_.step % cfg_.log_every == 0 || stop) {
                c.seconds = offset + seconds();
                curve_.push_back(c);
                curve_sum = 0, curve_count = 0;
            }
        } else {
            EvalPoint p;
            p.step = state_.step;
            p.loss = loss_sum / double(loss_count);
            p.accuracy = evaluate(heldout_);
            p.seconds = seconds();
            c.accuracy = p.accuracy;
            c.seconds = offset + p.seconds;
            curve_.push_back(c);
            loss_sum = 0, curve_sum = 0;
            loss_count = 0, curve_count = 0;
            history.push_back(p);
            if (on_eval) on_eval(p);
            done = p.accuracy >= cfg_.target_accuracy;
        }
        if (guard) {
            if (stop) {
                guard->save(state_.step);
                break;
            }
            guard->after_step(state_.step);
        }
        if (done) break;
    }
    return history;
}

void TaskTrainer::set_max_steps(std::int64_t steps) {
    if (steps < 1 || steps > kTrillion) fail("train: steps must be in [1, {}], got {}", kTrillion, steps);
    cfg_.max_steps = steps;
}

void TaskTrainer::set_lr(double lr) {
    if (!(lr > 0) || !std::isfinite(lr)) fail("train: learning rate must be a finite number > 0, got {}", lr);
    opt_->set_lr(lr);
    cfg_.lr = lr;
}

}  // namespace qkv
