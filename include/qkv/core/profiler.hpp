/// \file
/// \brief The op profiler: where a training step's time goes, op by op, forward and backward.
///
/// A reader learns here how a framework's profiler works, and how to read one. Each differentiable
/// op opens a detail::OpScope as it starts; when profiling is on, the scope measures the op's wall
/// time and the tensor bytes it allocates, and adds them to a table keyed by the op — and so does
/// the autograd engine around every node's backward function, under "<op> backward". Ops that know
/// their arithmetic (matrix products, attention) report their floating-point operations, so the
/// table also shows GFLOP/s, to compare with the machine's peak (tutorial 4 measures it). Only the
/// outermost op on a thread is counted, so a backward function that calls other ops counts once.
/// When profiling is off, a scope costs one predictable branch.
///
/// Three ways to turn it on: a qkv::Profiler object (RAII: it profiles while it lives), the
/// environment variable `QKV_PROFILE=1` (the whole program; the table goes to stderr at exit), and
/// `qkv train --profile`. The table is modelled on PyTorch's
/// `torch.profiler.profile().key_averages()`.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct OpDef;

/// One row of the profile: an op's forward, or its backward.
struct OpProfile {
    std::string name;         ///< the op's name, with " backward" for its backward
    std::int64_t calls = 0;   ///< how many times it ran
    double seconds = 0;       ///< total wall time
    double flops = 0;         ///< total floating-point operations (0 when the op does not know them)
    std::int64_t bytes = 0;   ///< tensor bytes allocated while it ran
};

/// \brief Profiles every op while it lives (one Profiler at a time).
///
/// ```cpp
/// qkv::Profiler prof;
/// for (int i = 0; i < 10; ++i) trainer.step();
/// fmt::print("{}", prof.table());
/// ```
class Profiler {
public:
    /// Start profiling (clears what an earlier Profiler collected). Throws qkv::Error when another
    /// Profiler (or QKV_PROFILE) is already profiling.
    Profiler();
    /// Stop profiling, if stop() has not been called.
    ~Profiler();
    Profiler(const Profiler&) = delete;
    Profiler& operator=(const Profiler&) = delete;

    /// \brief Stop profiling now; the results stay readable.
    void stop();
    /// \brief The rows collected so far, the most expensive first.
    /// \return one row per op and direction that ran
    std::vector<OpProfile> ops() const;
    /// \brief Wall time since this Profiler started (until stop()).
    /// \return seconds
    double seconds() const;
    /// \brief The profile as a table: calls, total ms, % of the profiled time, GFLOP and GFLOP/s
    /// where the op knows its FLOPs, MiB allocated; and the time spent outside any op.
    /// \return the table, lines ending in newlines
    std::string table() const;

private:
    double start_ = 0, stop_ = -1;
};

namespace detail {
/// Set while profiling (read by every op; see profiling()).
extern std::atomic<bool> g_profiling;
}  // namespace detail

/// \brief True while a Profiler (or QKV_PROFILE=1) is profiling. Inline: one relaxed load, the
/// branch every op pays when profiling is off.
/// \return whether ops are being timed
inline bool profiling() { return detail::g_profiling.load(std::memory_order_relaxed); }

namespace detail {

/// \brief Times one op (or, with `backward`, one node's backward) when profiling is on: construct
/// it at the start of the op, let it go out of scope at the end. Costs one branch when off.
class OpScope {
public:
    /// \param op the op \param backward whether this is the op's backward
    /// \param flops floating-point operations, if known (0: unknown)
    explicit OpScope(const OpDef& op, bool backward = false, double flops = 0) {
        if (profiling()) begin(op, backward, flops);
    }
    ~OpScope() {
        if (active_) end();
    }
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;

    /// \brief Report the op's FLOPs once its shapes are known: \p forward for this call, and
    /// \p backward for its backward, which record() hands to the node it creates.
    /// \param forward FLOPs of this call \param backward FLOPs of the backward of this call
    void set_flops(double forward, double backward) {
        if (active_) {
            flops_ = forward;
            backward_flops_ = backward;
        }
    }
    /// \brief The backward FLOPs reported by the innermost active scope of this thread (0 if none).
    /// \return FLOPs for the node being recorded
    static double pending_backward_flops();

private:
    void begin(const OpDef& op, bool backward, double flops);
    void end();
    const OpDef* op_ = nullptr;
    bool backward_ = false, active_ = false, outermost_ = false;
    double start_ = 0, flops_ = 0, backward_flops_ = 0;
    std::int64_t bytes0_ = 0;
    OpScope* outer_ = nullptr;
};

}  // namespace detail
}  // namespace qkv
