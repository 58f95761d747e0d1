/// \file
/// \brief Name maps and load_state_dict(): match by name, check everything, then copy.
#include "qkv/io/state_dict.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "io_detail.hpp"

namespace qkv::io {
namespace {

std::size_t stars(const std::string& s) { return std::size_t(std::count(s.begin(), s.end(), '*')); }

// Matches `name` against `pattern` from positions p and n on, appending what each `*` matched.
// A `*` takes one or more characters other than '.'; it tries the shortest first (backtracking),
// so `*.weight` and `a*b` both work as one expects.
bool match(const std::string& pattern, std::size_t p, const std::string& name, std::size_t n,
           std::vector<std::string>& captured) {
    if (p == pattern.size()) return n == name.size();
    if (pattern[p] != '*') return n < name.size() && name[n] == pattern[p] && match(pattern, p + 1, name, n + 1, captured);
    for (std::size_t end = n + 1; end <= name.size() && name[end - 1] != '.'; ++end) {
        captured.push_back(name.substr(n, end - n));
        if (match(pattern, p + 1, name, end, captured)) return true;
        captured.pop_back();
    }
    return false;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

void detail::check_loadable(std::string_view ctx, std::string_view shown, const Tensor& in_file, const Tensor& param) {
    if (in_file.shape() != param.shape())
        fail("{}: tensor {} has shape {} in the file, but the model expects {}", ctx, shown, shape_str(in_file.shape()),
             shape_str(param.shape()));
    if (in_file.dtype() != param.dtype())
        fail("{}: tensor {} is {} in the file, but the model expects {}", ctx, shown, dtype_name(in_file.dtype()),
             dtype_name(param.dtype()));
}

NameMap pytorch_gpt_names() {
    return {
        {"tok.weight", "tok_emb.weight"},
        {"pos.weight", "pos_emb.weight"},
        {"blocks.*.attn.qkv.*", "blocks.*.attn.qkv_proj.*"},
        {"blocks.*.attn.proj.*", "blocks.*.attn.out_proj.*"},
        {"blocks.*.fc1.*", "blocks.*.mlp.fc1.*"},
        {"blocks.*.fc2.*", "blocks.*.mlp.fc2.*"},
        {"head.weight", "lm_head.weight"},
    };
}

NameMap reversed(const NameMap& map) {
    NameMap out;
    for (const auto& r : map) out.push_back({r.to, r.from});
    return out;
}

std::string map_name(const NameMap& map, const std::string& name) {
    for (const auto& rule : map) {
        if (stars(rule.from) != stars(rule.to))
            fail("map_name: rule '{}' -> '{}' has {} '*' on the left but {} on the right", rule.from, rule.to,
                 stars(rule.from), stars(rule.to));
        std::vector<std::string> captured;
        if (!match(rule.from, 0, name, 0, captured)) continue;
        std::string out;
        std::size_t next = 0;
        for (const char c : rule.to) {
            if (c == '*') out += captured[next++];
            else out += c;
        }
        return out;
    }
    return name;
}

LoadReport load_state_dict(const SafeTensors& file, const std::string& source, nn::Module& model, const NameMap& map,
                           bool strict) {
    const std::string ctx = fmt::format("load_state_dict: '{}'", source);
    // 1. The file's weights under the model's names (each mapped name at most once).
    std::map<std::string, std::pair<std::string, const Tensor*>> by_model_name;  // model name -> (file name, tensor)
    std::vector<std::string> file_order;
    for (const auto& [name, t] : file.tensors) {
        if (starts_with(name, "optimizer.") || name == "train.curve") continue;  // training state, not weights
        std::string mapped = map_name(map, name);
        const auto [it, fresh] = by_model_name.emplace(mapped, std::make_pair(name, &t));
        if (!fresh)
            fail("{}: tensors '{}' and '{}' both map to '{}'", ctx, it->second.first, name, mapped);
        file_order.push_back(name);
    }
    // 2. Match the model's parameters; check shapes and dtypes. Nothing is modified yet.
    LoadReport report;
    std::vector<std::pair<Tensor, const Tensor*>> copies;  // (destination, source)
    std::set<std::string> used;                            // file names matched
    for (const auto& [name, p] : model.named_parameters()) {
        const auto found = by_model_name.find(name);
        if (found == by_model_name.end()) {
            report.missing.push_back(name);
            continue;
        }
        const auto& [file_name, src] = found->second;
        const std::string shown = file_name == name ? fmt::format("'{}'", name) : fmt::format("'{}' (the model's '{}')", file_name, name);
        detail::check_loadable(ctx, shown, *src, p);
        copies.emplace_back(p, src);
        used.insert(file_name);
        report.loaded.push_back(name);
    }
    for (const auto& name : file_order)
        if (!used.count(name)) report.unexpected.push_back(name);
    // 3. Decide, then copy (shapes and dtypes checked above, so this cannot fail half-way).
    if (report.loaded.empty())
        fail("{}: none of the file's {} tensors matches a parameter of the model ({} parameters, e.g. '{}'; the file "
             "has e.g. '{}'): wrong name map or wrong file",
             ctx, file_order.size(), report.missing.size(), report.missing.empty() ? "" : report.missing.front(),
             file_order.empty() ? "" : file_order.front());
    if (strict && !report.missing.empty())
        fail("{}: missing tensor '{}' (the model has it, the file does not){}", ctx, report.missing.front(),
             report.missing.size() > 1 ? fmt::format(", and {} more", report.missing.size() - 1) : "");
    if (strict && !report.unexpected.empty())
        fail("{}: unexpected tensor '{}' (the file has it, the model does not, under the name '{}'){}", ctx,
             report.unexpected.front(), map_name(map, report.unexpected.front()),
             report.unexpected.size() > 1 ? fmt::format(", and {} more", report.unexpected.size() - 1) : "");
    for (auto& [dst, src] : copies)
        std::memcpy(dst.raw_data(), src->raw_data(), std::size_t(src->numel()) * dtype_size(src->dtype()));
    return report;
}

std::vector<std::string> export_weights(const std::string& checkpoint, const std::string& out, const NameMap& to_names) {
    const SafeTensors file = load_safetensors(checkpoint);
    std::vector<NamedTensor> weights;
    std::vector<std::string> names;
    std::map<std::string, std::string> seen;  // new name -> old name
    for (const auto& [name, t] : file.tensors) {
        if (starts_with(name, "optimizer.") || name == "train.curve") continue;
        std::string renamed = map_name(to_names, name);
        const auto [it, fresh] = seen.emplace(renamed, name);
        if (!fresh) fail("export_weights: '{}' and '{}' would both be written as '{}'", it->second, name, renamed);
        weights.emplace_back(renamed, t);
        names.push_back(std::move(renamed));
    }
    if (weights.empty()) fail("export_weights: '{}' holds no weights", checkpoint);
    Metadata meta;
    for (const auto& [key, value] : file.metadata)
        if (!starts_with(key, "optimizer.") && !starts_with(key, "train.")) meta[key] = value;
    meta["format"] = "pt";
    save_safetensors(out, weights, meta);
    return names;
}

}  // namespace qkv::io
