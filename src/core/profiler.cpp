/// \file
/// \brief The op profiler's bookkeeping: scopes, the table, QKV_PROFILE.
///
/// See profiler.hpp. The rows live in one table keyed by (op, direction), behind a mutex: only the
/// outermost scope of a thread adds to it, once per op call, so the lock is taken a few hundred
/// times per training step at most — and never when profiling is off.
#include "qkv/core/profiler.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "qkv/core/autograd.hpp"
#include "qkv/core/tensor.hpp"
#include "qkv/kernels/parallel.hpp"

namespace qkv {

namespace detail {
std::atomic<bool> g_profiling{false};
}  // namespace detail

namespace {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Table {
    std::mutex mu;
    std::map<std::pair<const OpDef*, bool>, OpProfile> rows;  // (op, backward) → totals
    bool owned = false;  // a Profiler (or QKV_PROFILE) is collecting
};

Table& table() {
    static Table* t = new Table;  // never destroyed: QKV_PROFILE's report runs at exit
    return *t;
}

thread_local detail::OpScope* t_innermost = nullptr;  // the innermost active scope of this thread
thread_local int t_depth = 0;                         // active scopes on this thread

std::vector<OpProfile> sorted_rows() {
    Table& t = table();
    std::vector<OpProfile> out;
    {
        std::lock_guard<std::mutex> lock(t.mu);
        for (const auto& [key, row] : t.rows) out.push_back(row);
    }
    std::stable_sort(out.begin(), out.end(), [](const OpProfile& a, const OpProfile& b) { return a.seconds > b.seconds; });
    return out;
}

std::string format_table(const std::vector<OpProfile>& rows, double wall) {
    std::string s = fmt::format("{:<28} {:>7} {:>10} {:>7} {:>9} {:>9} {:>10}\n", "op", "calls", "total ms", "% time",
                                "GFLOP", "GFLOP/s", "MiB alloc");
    double in_ops = 0;
    for (const OpProfile& r : rows) {
        in_ops += r.seconds;
        const std::string gflop = r.flops > 0 ? fmt::format("{:.3f}", r.flops * 1e-9) : "-";
        const std::string rate = r.flops > 0 && r.seconds > 0 ? fmt::format("{:.1f}", r.flops * 1e-9 / r.seconds) : "-";
        s += fmt::format("{:<28} {:>7} {:>10.3f} {:>6.1f}% {:>9} {:>9} {:>10.2f}\n", r.name, r.calls, r.seconds * 1e3,
                         wall > 0 ? 100 * r.seconds / wall : 0.0, gflop, rate, double(r.bytes) / (1 << 20));
    }
    // What no op accounts for: the optimizer's loop over parameters, data, the graph's bookkeeping.
    const double outside = std::max(0.0, wall - in_ops);
    s += fmt::format("{:<28} {:>7} {:>10.3f} {:>6.1f}%\n", "(outside ops)", "", outside * 1e3,
                     wall > 0 ? 100 * outside / wall : 0.0);
    s += fmt::format("{:<28} {:>7} {:>10.3f} {:>6.1f}%   ({} thread{})\n", "total (wall)", "", wall * 1e3, 100.0,
                     num_threads(), num_threads() == 1 ? "" : "s");
    return s;
}

void start_collecting(const char* who) {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    if (t.owned) fail("{}: a profiler is already running (one at a time; QKV_PROFILE=1 profiles the whole program)", who);
    t.owned = true;
    t.rows.clear();
    detail::g_profiling.store(true, std::memory_order_relaxed);
}

void stop_collecting() {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    detail::g_profiling.store(false, std::memory_order_relaxed);
    t.owned = false;
}

// QKV_PROFILE=1: profile the whole program and print the table to stderr when it exits.
struct EnvironmentProfile {
    double start = 0;
    EnvironmentProfile() {
        const char* v = std::getenv("QKV_PROFILE");
        if (v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0) return;
        start_collecting("QKV_PROFILE");
        start = now_seconds();
        std::atexit([] {
            const double wall = now_seconds() - environment_profile().start;
            stop_collecting();
            std::fprintf(stderr, "\nqkv profile (QKV_PROFILE=1), the whole program:\n%s",
                         format_table(sorted_rows(), wall).c_str());
        });
    }
    static EnvironmentProfile& environment_profile();
};

EnvironmentProfile& EnvironmentProfile::environment_profile() {
    static EnvironmentProfile p;
    return p;
}

// Read the environment when the library is loaded, before main().
[[maybe_unused]] const bool g_env_checked = (EnvironmentProfile::environment_profile(), true);

}  // namespace

// ---- scopes -------------------------------------------------------------------------------------------

namespace detail {

void OpScope::begin(const OpDef& op, bool backward, double flops) {
    op_ = &op;
    backward_ = backward;
    flops_ = flops;
    active_ = true;
    outer_ = t_innermost;
    t_innermost = this;
    outermost_ = t_depth++ == 0;
    if (outermost_) {
        bytes0_ = memory_stats().allocated_bytes;
        start_ = now_seconds();
    }
}

void OpScope::end() {
    t_innermost = outer_;
    --t_depth;
    if (!outermost_) return;  // nested: the outer op's time already includes it
    const double seconds = now_seconds() - start_;
    const std::int64_t bytes = memory_stats().allocated_bytes - bytes0_;
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    if (!t.owned) return;  // profiling stopped while the op ran
    OpProfile& row = t.rows[{op_, backward_}];
    if (row.calls == 0) row.name = backward_ ? std::string(op_->name) + " backward" : op_->name;
    ++row.calls;
    row.seconds += seconds;
    row.flops += flops_;
    row.bytes += bytes;
}

double OpScope::pending_backward_flops() { return t_innermost ? t_innermost->backward_flops_ : 0.0; }

}  // namespace detail

// ---- Profiler ---------------------------------------------------------------------------------------

Profiler::Profiler() {
    start_collecting("Profiler");
    start_ = now_seconds();
}

Profiler::~Profiler() {
    if (stop_ < 0) stop();
}

void Profiler::stop() {
    if (stop_ >= 0) return;
    stop_ = now_seconds();
    stop_collecting();
}

std::vector<OpProfile> Profiler::ops() const { return sorted_rows(); }

double Profiler::seconds() const { return (stop_ >= 0 ? stop_ : now_seconds()) - start_; }

std::string Profiler::table() const { return format_table(sorted_rows(), seconds()); }

}  // namespace qkv
