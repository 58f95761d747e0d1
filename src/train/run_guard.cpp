/// \file
/// \brief The run-safety pieces: finiteness checks, the stop signals, periodic checkpoints.
///
/// A reader learns here how to handle Ctrl-C in a program that must not lose work. A signal handler
/// may do almost nothing — no allocation, no locks, no printing through stdio — so it only stores
/// which signal arrived in an atomic flag (and writes one line with write(2), which is allowed);
/// the training loop reads the flag between steps, where it is safe to save. A second Ctrl-C
/// restores the default action and raises the signal again, so an impatient user can still stop
/// the program at once.
#include "qkv/train/run_guard.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <mutex>

#include "kernels/finite.hpp"
#include "qkv/core/autograd.hpp"
#include "qkv/io/file.hpp"

namespace qkv {

// ---- finiteness -----------------------------------------------------------------------------------

std::string find_non_finite(const std::vector<NamedTensor>& tensors) {
    for (const auto& [name, t] : tensors) {
        if (!t.defined()) continue;
        std::int64_t i = -1;
        double v = 0;
        if (t.dtype() == f32) {
            i = kernels::first_non_finite(t.data<float>(), t.numel());
            if (i >= 0) v = t.data<float>()[i];
        } else if (t.dtype() == f64) {
            i = kernels::first_non_finite(t.data<double>(), t.numel());
            if (i >= 0) v = t.data<double>()[i];
        }
        if (i >= 0)
            return fmt::format("'{}' holds {} at index {} of {}", name, std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf", i,
                               shape_str(t.shape()));
    }
    return {};
}

void check_finite_step(double loss, const std::vector<NamedTensor>& params, std::int64_t step,
                       const std::function<void()>& replay) {
    std::vector<NamedTensor> grads;
    if (std::isfinite(loss)) {
        for (const auto& [name, p] : params) grads.emplace_back(name + " (its gradient)", p.grad());
        if (find_non_finite(grads).empty()) return;
    }
    const std::string what = std::isfinite(loss) ? fmt::format("the gradient {}", find_non_finite(grads))
                                                 : fmt::format("the loss is {}", std::isnan(loss) ? "NaN" : "infinite");
    // A weight that is already not finite explains everything after it; say so first.
    if (const std::string bad = find_non_finite(params); !bad.empty())
        throw TrainingDiverged(fmt::format("step {}: {}, because the parameter {}: the weights were not finite before "
                                           "this step; go back to a good checkpoint",
                                           step, what, bad),
                               step);
    // Otherwise repeat the step with anomaly detection on: the same batch and weights give the same
    // values, now checked op by op, forward and backward.
    std::string where = "anomaly mode found nothing when the step was repeated";
    if (replay) {
        try {
            const AnomalyMode on;
            replay();
        } catch (const AnomalyError& e) {
            where = e.what();
        }
    } else {
        where = "run with anomaly detection (qkv::AnomalyMode, qkv train --detect-anomaly) to find the op";
    }
    throw TrainingDiverged(fmt::format("step {}: {}; {}", step, what, where), step);
}

void check_finite_for_saving(const std::vector<NamedTensor>& tensors, const std::string& path) {
    if (const std::string bad = find_non_finite(tensors); !bad.empty())
        fail("save: refusing to save a state that is not finite to '{}' ({}); the file keeps its previous content",
             path, bad);
}

// ---- stop signals -----------------------------------------------------------------------------------

namespace {

std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");
std::mutex g_signals_mu;  // guards the two below (not touched by the handler)
int g_signals_users = 0;
struct sigaction g_previous_int {}, g_previous_term {};

extern "C" void on_stop_signal(int sig) {
    if (g_stop_signal.load() != 0) {  // the second time: stop now, the way the signal normally would
        std::signal(sig, SIG_DFL);
        std::raise(sig);
        return;
    }
    g_stop_signal.store(sig);
    const int saved_errno = errno;
    constexpr char kMessage[] = "\nqkv: stopping after this step, then saving (signal again to quit at once)\n";
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    errno = saved_errno;
}

}  // namespace

StopSignals::StopSignals() {
    const std::lock_guard<std::mutex> lock(g_signals_mu);
    if (g_signals_users++ > 0) return;
    g_stop_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // a read or write interrupted by the signal simply continues
    ::sigaction(SIGINT, &sa, &g_previous_int);
    ::sigaction(SIGTERM, &sa, &g_previous_term);
}

StopSignals::~StopSignals() {
    const std::lock_guard<std::mutex> lock(g_signals_mu);
    if (--g_signals_users > 0) return;
    ::sigaction(SIGINT, &g_previous_int, nullptr);
    ::sigaction(SIGTERM, &g_previous_term, nullptr);
}

bool StopSignals::requested() const { return g_stop_signal.load() != 0; }
int StopSignals::signal() const { return g_stop_signal.load(); }

std::string StopSignals::name(int sig) {
    switch (sig) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return fmt::format("signal {}", sig);
    }
}

// ---- the guard ------------------------------------------------------------------------------------

RunGuard::RunGuard(RunGuardOptions options, SaveFn save) : options_(std::move(options)), save_(std::move(save)) {
    if (options_.checkpoint_every < 0)
        fail("RunGuard: checkpoint_every must be >= 0 (0: no periodic checkpoints), got {}", options_.checkpoint_every);
    if (options_.save_path.empty()) fail("RunGuard: save_path is empty");
    if (!save_) fail("RunGuard: no save function");
    if (options_.handle_signals) signals_ = std::make_unique<StopSignals>();
}

void RunGuard::check_output() const {
    const auto parent = std::filesystem::path(options_.save_path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) fail("train: cannot create the directory '{}' for '{}': {}", parent.string(), options_.save_path, ec.message());
    }
    io::check_writable(options_.save_path, "train");
}

bool RunGuard::stop_requested() const { return signals_ && signals_->requested(); }
int RunGuard::stop_signal() const { return signals_ ? signals_->signal() : 0; }

void RunGuard::after_step(std::int64_t step) {
    if (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0 && step != last_saved_) save(step);
}

void RunGuard::save(std::int64_t step) {
    save_(options_.save_path);
    last_saved_ = step;
}

}  // namespace qkv
