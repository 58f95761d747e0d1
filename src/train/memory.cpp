/// \file
/// \brief The memory estimate of a training step, the memory the machine (and its limits) allow,
/// and the messages when the two do not match.
///
/// A reader learns here that "how much memory is there" has several answers on Linux and the
/// smallest one wins: what the kernel can hand out without swapping everything else away
/// (MemAvailable), a container's cgroup limit, and the process's own resource limits. With
/// overcommit, a too-large model does not even fail to allocate: the kernel promises the memory and
/// kills the process when the pages are touched, long after training began. So the check runs
/// first, on an estimate.
#include "qkv/train/memory.hpp"

#include <sys/resource.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

namespace qkv {

std::string MemoryEstimate::breakdown() const {
    std::vector<std::string> parts;
    auto add = [&](const char* what, double bytes, const char* prefix = "") {
        if (bytes > 0) parts.push_back(fmt::format("{} {}{}", what, prefix, format_bytes(bytes)));
    };
    add("parameters", parameters);
    add("gradients", gradients);
    add("AdamW state", optimizer);
    add("activations", activations, "~");
    add("data", data);
    return fmt::format("{}", fmt::join(parts, ", "));
}

MemoryEstimate estimate_training_memory(const nn::GPTConfig& model, std::int64_t batch, std::int64_t tokens,
                                        DType dtype, double extra) {
    const double b = double(dtype_size(dtype));
    const double P = nn::GPT::parameter_count(model);
    const double N = double(batch) * double(tokens);  // tokens per step
    const double C = double(model.dim), H = double(model.heads), T = double(tokens), V = double(model.vocab);
    MemoryEstimate m;
    m.parameters = P * b;
    m.gradients = P * b;
    m.optimizer = 2 * P * b;
    // Per layer and token: the inputs and outputs of the layer norms, the Q/K/V projection, attention,
    // W_O, the MLP's 4C-wide hidden layer before and after GELU, the residuals, and the gradients the
    // backward pass holds while it runs — about 30·C values (measured peaks of qkv train fit this) —
    // plus each head's attention weights over T keys, kept and differentiated. Per token: the logits,
    // their softmax and gradient, and the embeddings.
    m.activations = b * (double(model.layers) * N * (30 * C + 3 * H * T) + N * (4 * V + 4 * C));
    m.data = extra;
    return m;
}

namespace {

// "16G", "512M", "1073741824": a byte count with an optional binary suffix; nothing for junk.
std::optional<double> parse_size(const std::string& s) {
    double v = 0;
    const std::size_t used = parse_double_prefix(s, v);
    if (used == 0 || !(v >= 0) || !std::isfinite(v)) return std::nullopt;
    const std::string unit = s.substr(used);
    const std::string units = "KMGT";
    if (unit.empty()) return v;
    const auto u = units.find(char(std::toupper(static_cast<unsigned char>(unit[0]))));
    if (u == std::string::npos || unit.size() > 3) return std::nullopt;
    return v * std::pow(1024.0, double(u + 1));
}

// A number from a file such as /sys/fs/cgroup/memory.max ("max" when there is no limit).
std::optional<double> read_number(const char* path) {
    std::ifstream in(path);
    std::string word;
    if (!(in >> word) || word == "max") return std::nullopt;
    return parse_size(word);
}

// MemAvailable + SwapFree, in bytes (the file gives kB).
std::optional<double> meminfo_available() {
    std::ifstream in("/proc/meminfo");
    if (!in) return std::nullopt;
    std::string line;
    double available = -1, swap = 0;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string key;
        double kb = 0;
        fields >> key >> kb;
        if (key == "MemAvailable:") available = kb * 1024;
        if (key == "SwapFree:") swap = kb * 1024;
    }
    if (available < 0) return std::nullopt;
    return available + swap;
}

}  // namespace

std::optional<AvailableMemory> available_memory() {
    std::optional<AvailableMemory> best;
    auto consider = [&](std::optional<double> bytes, std::string source) {
        if (bytes && (!best || *bytes < best->bytes)) best = AvailableMemory{*bytes, std::move(source)};
    };
    consider(meminfo_available(), "MemAvailable + SwapFree in /proc/meminfo");
    if (const auto limit = read_number("/sys/fs/cgroup/memory.max")) {
        const double used = read_number("/sys/fs/cgroup/memory.current").value_or(0);
        consider(*limit > used ? *limit - used : 0, "the cgroup's memory.max");
    }
    for (const auto& [resource, name] : {std::pair{RLIMIT_AS, "RLIMIT_AS (ulimit -v)"}, std::pair{RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)"}}) {
        rlimit r{};
        if (::getrlimit(resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY) consider(double(r.rlim_cur), name);
    }
    if (const char* env = std::getenv("QKV_MEMORY_LIMIT"); env && *env) {
        const auto v = parse_size(env);
        if (!v) fail("QKV_MEMORY_LIMIT: expected a size in bytes, optionally with K, M, G or T (e.g. 16G), got '{}'", env);
        consider(v, fmt::format("QKV_MEMORY_LIMIT={}", env));
    }
    return best;
}

namespace {
std::string need_text(const MemoryEstimate& need, std::string_view who) {
    return fmt::format("{}: this model needs about {} of memory to train ({})", who, format_bytes(need.total()),
                       need.breakdown());
}
}  // namespace

void check_fits_in_memory(const MemoryEstimate& need, std::string_view who, std::string_view what_to_change) {
    const auto have = available_memory();
    if (!have || need.total() <= have->bytes) return;
    throw OutOfMemory(fmt::format("{}, but only {} is available ({}): make it smaller — {}", need_text(need, who),
                                  format_bytes(have->bytes), have->source, what_to_change),
                      std::uint64_t(std::min(need.total(), 1.8e19)));
}

OutOfMemory out_of_memory_error(const MemoryEstimate& need, std::string_view who, std::string_view what_to_change) {
    const auto have = available_memory();
    const std::string available =
        have ? fmt::format("{} is available ({})", format_bytes(have->bytes), have->source) : "the system refused more";
    return OutOfMemory(fmt::format("{}, and ran out of memory; {}: make it smaller — {}", need_text(need, who), available,
                                   what_to_change),
                       std::uint64_t(std::min(need.total(), 1.8e19)));
}

}  // namespace qkv
