/// \file
/// \brief What anomaly mode costs: the time of a training step of `qkv train`'s default model (a
/// GPT of 2 layers, d_model 64, batch 32, reversing 16 digits) with qkv::AnomalyMode off and on.
/// Not run by ctest; it prints numbers.
///
/// Usage: bench_anomaly [--steps N] [--rounds R]
///
/// It also times the check every step makes whether or not anomaly mode is on (the loss and every
/// gradient finite, qkv::check_finite_step).
///
/// Runs of N steps alternate — off, on, off, on, ... R times each — so that both settings see the
/// same drift of a shared machine, and the medians of the per-run ms/step are compared. The numbers
/// feed the decision written in docs/pages/guarantees.md (anomaly mode is off by default).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/core/autograd.hpp"
#include "qkv/train/train.hpp"

using namespace qkv;

namespace {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
}  // namespace

int main(int argc, char** argv) {
    std::int64_t steps = 100;
    int rounds = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--steps")) steps = std::stoll(argv[i + 1]);
        if (!std::strcmp(argv[i], "--rounds")) rounds = std::stoi(argv[i + 1]);
    }
    TaskTrainConfig c;  // qkv train's defaults
    c.eval_every = 1000000;
    c.max_steps = 1000000;
    TaskTrainer trainer(c);
    for (int i = 0; i < 20; ++i) trainer.step();  // warm up: caches, pages, thread pool
    std::vector<double> off, on;
    for (int r = 0; r < rounds; ++r)
        for (const bool anomaly : {false, true}) {
            const AnomalyMode mode(anomaly);
            const auto t0 = std::chrono::steady_clock::now();
            for (std::int64_t s = 0; s < steps; ++s) trainer.step();
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            (anomaly ? on : off).push_back(ms / double(steps));
        }
    const double m_off = median(off), m_on = median(on);
    fmt::print("default model, {} runs of {} steps each way, alternating\n", rounds, steps);
    fmt::print("anomaly mode off: median {:.2f} ms/step (runs {:.2f} .. {:.2f})\n", m_off,
               *std::min_element(off.begin(), off.end()), *std::max_element(off.begin(), off.end()));
    fmt::print("anomaly mode on:  median {:.2f} ms/step (runs {:.2f} .. {:.2f})\n", m_on,
               *std::min_element(on.begin(), on.end()), *std::max_element(on.begin(), on.end()));
    fmt::print("cost of anomaly mode: {:+.1f} %\n", 100 * (m_on / m_off - 1));
    // The check every step makes with anomaly mode off: loss and gradients finite (check_finite_step).
    const auto params = trainer.model().named_parameters();
    constexpr int kChecks = 2000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kChecks; ++i) check_finite_step(1.0, params, 1, {});
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kChecks;
    fmt::print("the always-on check of the loss and the gradients: {:.1f} us per step ({:.2f} % of a step)\n", us,
               100 * us / (1000 * m_off));
}
