/// \file
/// \brief Checkpoints on top of safetensors: names, metadata encoding, and loading that checks
/// everything before changing anything.
///
/// A reader learns here how to make a load all-or-nothing: first match every tensor in the file
/// to its destination and check shapes and dtypes, then restore the optimizer (which validates its
/// own state before adopting it), and only then copy the weights — a step that cannot fail.
#include <array>
#include <charconv>
#include <cstring>
#include <map>
#include <set>
#include <type_traits>

#include "io_detail.hpp"
#include "qkv/io/checkpoint.hpp"

namespace qkv::io {
namespace {

constexpr std::string_view kOptPrefix = "optimizer.";
constexpr std::string_view kTrainStep = "train.step";
constexpr std::string_view kTrainRng = "train.rng";
constexpr std::string_view kTrainCurve = "train.curve";

// The curve's table: (N, K) f64 with K >= 1. Its columns are the training loop's to define and to
// check when it reads them back (TaskTrainer keeps 4, TextTrainer 5).
void check_curve(const Tensor& c, std::string_view ctx) {
    if (c.dtype() != f64 || c.dim() != 2 || c.size(1) < 1 || c.size(1) > 64)
        fail("{}: the training curve '{}' must be an (N, K) f64 table with 1 <= K <= 64 columns, got {} {}", ctx,
             kTrainCurve, shape_str(c.shape()), dtype_name(c.dtype()));
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// ---- numbers in metadata strings ------------------------------------------------------------------
// fmt prints doubles in the shortest form that reads back to the same bits, and reading them back
// rounds correctly, so hyper-parameters survive the trip through text unchanged.

// The whole of s as a number of type T, or false. Integers through std::from_chars; doubles through
// qkv::parse_double_prefix (floating-point from_chars is missing from clang 14's libc++).
template <class T>
bool read_number(const std::string& s, T& value) {
    if constexpr (std::is_integral_v<T>) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
        return ec == std::errc() && end == s.data() + s.size();
    } else {
        return !s.empty() && parse_double_prefix(s, value) == s.size();
    }
}

template <class T>
T parse_number(const Metadata& meta, const std::string& key, std::string_view ctx) {
    const auto it = meta.find(key);
    if (it == meta.end()) fail("{}: metadata '{}' is missing", ctx, key);
    const std::string& s = it->second;
    T value{};
    if (s.empty() || !read_number(s, value)) fail("{}: metadata '{}' is not a valid number: \"{}\"", ctx, key, s);
    return value;
}

std::array<std::uint64_t, 4> parse_rng(const Metadata& meta, std::string_view ctx) {
    const auto it = meta.find(std::string(kTrainRng));
    if (it == meta.end()) fail("{}: metadata '{}' is missing (the checkpoint has no training state)", ctx, kTrainRng);
    const std::string& s = it->second;
    std::array<std::uint64_t, 4> words{};
    const char* p = s.data();
    const char* end = s.data() + s.size();
    for (std::size_t i = 0; i < 4; ++i) {
        const auto r = std::from_chars(p, end, words[i]);
        const bool sep_ok = i < 3 ? (r.ptr != end && *r.ptr == ',') : r.ptr == end;
        if (r.ec != std::errc() || !sep_ok) fail("{}: metadata '{}' must be four comma-separated integers, got \"{}\"", ctx, kTrainRng, s);
        if (i < 3) p = r.ptr + 1;  // skip the comma (never step past the end)
    }
    if (words == std::array<std::uint64_t, 4>{}) fail("{}: metadata '{}' is the all-zero state, which is invalid", ctx, kTrainRng);
    return words;
}

// The optimizer's part of the file, as an OptimizerState (validated by Optimizer::load_state).
optim::OptimizerState optimizer_state(const SafeTensors& file, const optim::Optimizer& opt, std::string_view ctx) {
    const auto kind = file.metadata.find("optimizer.kind");
    if (kind == file.metadata.end()) fail("{}: the checkpoint has no optimizer state (metadata 'optimizer.kind' is missing)", ctx);
    optim::OptimizerState s;
    s.kind = kind->second;
    if (s.kind != opt.kind()) fail("{}: the checkpoint holds a {} optimizer, not {}", ctx, s.kind, opt.kind());
    s.step = parse_number<std::int64_t>(file.metadata, "optimizer.step", ctx);
    for (const auto& [name, value] : opt.hyper())
        s.hyper[name] = parse_number<double>(file.metadata, std::string(kOptPrefix) + name, ctx);
    for (const auto& [name, t] : file.tensors)
        if (starts_with(name, kOptPrefix)) s.tensors.emplace_back(name.substr(kOptPrefix.size()), t);
    return s;
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const TrainState* train, const Metadata& extra) {
    Metadata meta;
    for (const auto& [key, value] : extra) {
        if (starts_with(key, kOptPrefix) || starts_with(key, "train.") || starts_with(key, "qkv."))
            fail("save_checkpoint: metadata key '{}' is reserved (prefixes 'optimizer.', 'train.', 'qkv.')", key);
        meta[key] = value;
    }
    std::vector<NamedTensor> tensors = model.named_parameters();
    for (const auto& [name, t] : tensors)
        if (starts_with(name, kOptPrefix))
            fail("save_checkpoint: parameter '{}' would clash with the optimizer's names (prefix 'optimizer.')", name);
    if (optimizer) {
        const optim::OptimizerState s = optimizer->state_view();  // written out at once: no copy needed
        meta["optimizer.kind"] = s.kind;
        meta["optimizer.step"] = fmt::format("{}", s.step);
        for (const auto& [name, value] : s.hyper) meta[std::string(kOptPrefix) + name] = fmt::format("{}", value);
        for (const auto& [name, t] : s.tensors) tensors.emplace_back(std::string(kOptPrefix) + name, t);
    }
    if (train) {
        meta[std::string(kTrainStep)] = fmt::format("{}", train->step);
        meta[std::string(kTrainRng)] = fmt::format("{}", fmt::join(train->rng.state(), ","));
        if (train->curve.defined()) {
            check_curve(train->curve, "save_checkpoint");
            tensors.emplace_back(std::string(kTrainCurve), train->curve);
        }
    }
    save_safetensors(path, tensors, meta);
}

Metadata load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer, TrainState* train,
                         bool strict) {
    return load_checkpoint(load_safetensors(path), path, model, optimizer, train, strict);
}

Metadata load_checkpoint(const SafeTensors& file, const std::string& source, nn::Module& model,
                         optim::Optimizer* optimizer, TrainState* train, bool strict) {
    const std::string ctx = fmt::format("load_checkpoint: '{}'", source);
    // Only qkv writes optimizer and training state, and it always adds its CRC: without one, the file
    // was written by something else or edited by hand, and its state cannot be trusted.
    if ((optimizer || train) && !file.crc_verified)
        fail("{}: the file has no qkv checksum (metadata 'qkv.crc32' and 'qkv.format', which every file qkv saves "
             "carries): it was edited or written by another program, so its {} cannot be trusted; load only its "
             "weights, or save it again with qkv",
             ctx, optimizer ? "optimizer state" : "training state");

    // 1. Match the model's parameters; check shapes and dtypes. Nothing is modified yet. (By name
    // through a map: a crafted file may list tens of thousands of tensors.)
    std::map<std::string_view, const Tensor*> in_file;
    for (const auto& [n, t] : file.tensors) in_file.emplace(n, &t);
    std::vector<std::pair<Tensor, const Tensor*>> copies;  // (destination, source)
    const auto params = model.named_parameters();
    std::set<std::string_view> param_names;
    for (const auto& [name, p] : params) param_names.insert(name);
    for (const auto& [name, p] : params) {
        const auto found = in_file.find(name);
        const Tensor* src = found == in_file.end() ? nullptr : found->second;
        if (!src) {
            if (strict) fail("{}: missing tensor '{}' (the model has it, the file does not)", ctx, name);
            continue;
        }
        detail::check_loadable(ctx, fmt::format("'{}'", name), *src, p);
        copies.emplace_back(p, src);
    }
    if (strict)
        for (const auto& [n, t] : file.tensors) {
            if (starts_with(n, kOptPrefix) || n == kTrainCurve) continue;
            if (!param_names.count(n)) fail("{}: unexpected tensor '{}' (the file has it, the model does not)", ctx, n);
        }

    // 2. Training state and optimizer: parse and check everything, then adopt.
    std::int64_t step = 0;
    std::array<std::uint64_t, 4> rng{};
    Tensor curve;
    if (train) {
        step = parse_number<std::int64_t>(file.metadata, std::string(kTrainStep), ctx);
        if (step < 0) fail("{}: metadata '{}' must be >= 0, got {}", ctx, kTrainStep, step);
        rng = parse_rng(file.metadata, ctx);
        const auto found = in_file.find(kTrainCurve);
        if (found != in_file.end()) {
            check_curve(*found->second, ctx);
            curve = found->second->clone();
        }
    }
    if (optimizer) {
        const optim::OptimizerState s = optimizer_state(file, *optimizer, ctx);
        try {
            optimizer->load_state(s);  // all-or-nothing by itself
        } catch (const Error& e) {
            fail("{}: {}", ctx, e.what());
        }
    }

    // 3. Adopt: copy the weights (shapes and dtypes checked above, so this cannot fail).
    for (auto& [dst, src] : copies)
        std::memcpy(dst.raw_data(), src->raw_data(), std::size_t(src->numel()) * dtype_size(src->dtype()));
    if (train) {
        train->step = step;
        train->rng.set_state(rng);
        train->curve = curve;
    }
    return file.metadata;
}

}  // namespace qkv::io
