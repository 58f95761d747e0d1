/// \file
/// \brief The `qkv` command. For now one job: `qkv train` fits a tiny neural network with autograd.
///
/// The demo learns y = sin(x) on [−π, π] with a two-layer perceptron (1 → 32 → 1, tanh), plain
/// gradient descent on the mean squared error, every gradient computed by qkv's autograd. It is
/// the smallest complete training loop: forward, loss, backward, update, repeat.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "qkv/qkv.hpp"

namespace {

struct TrainArgs {
    std::int64_t steps = 3000;
    double lr = 0.05;
    std::uint64_t seed = 0;
    std::int64_t hidden = 32;
    bool quiet = false;
};

constexpr const char* kUsage = R"(usage: qkv <command> [options]

commands:
  train     fit a tiny two-layer network to y = sin(x) with autograd (the demo)
  help      show this message

run 'qkv <command> --help' for the options of a command
)";

constexpr const char* kTrainUsage = R"(usage: qkv train [options]

Fit y = sin(x) on [-pi, pi] with a 1 -> H -> 1 tanh network and gradient descent.

options:
  --steps N    training steps (default 3000)
  --lr X       learning rate (default 0.05)
  --hidden H   hidden units (default 32)
  --seed S     random seed (default 0)
  --quiet      print only the final summary
  --help       show this message
)";

// Parse a whole string as a number, or explain which flag got what.
template <class T>
T parse_number(const std::string& flag, const std::string& text) {
    try {
        std::size_t used = 0;
        T v;
        if constexpr (std::is_floating_point_v<T>) v = T(std::stod(text, &used));
        else v = T(std::stoll(text, &used));
        if (used != text.size()) throw std::invalid_argument(text);
        return v;
    } catch (const std::exception&) {
        throw qkv::Error(fmt::format("{}: expected a number, got '{}'", flag, text));
    }
}

TrainArgs parse_train(const std::vector<std::string>& args) {
    TrainArgs a;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& f = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size()) throw qkv::Error(fmt::format("{}: missing value", f));
            return args[++i];
        };
        if (f == "--steps") a.steps = parse_number<std::int64_t>(f, value());
        else if (f == "--lr") a.lr = parse_number<double>(f, value());
        else if (f == "--hidden") a.hidden = parse_number<std::int64_t>(f, value());
        else if (f == "--seed") a.seed = parse_number<std::uint64_t>(f, value());
        else if (f == "--quiet") a.quiet = true;
        else throw qkv::Error(fmt::format("unknown option '{}' (see 'qkv train --help')", f));
    }
    if (a.steps < 1) throw qkv::Error(fmt::format("--steps: must be >= 1, got {}", a.steps));
    if (a.hidden < 1) throw qkv::Error(fmt::format("--hidden: must be >= 1, got {}", a.hidden));
    if (!(a.lr > 0)) throw qkv::Error(fmt::format("--lr: must be > 0, got {}", a.lr));
    return a;
}

int train(const TrainArgs& a) {
    using namespace qkv;
    Generator gen(a.seed);
    // Data: 64 points on [-π, π] and their sines, as (N, 1) columns.
    const Tensor x = reshape(arange(-std::numbers::pi, std::numbers::pi, 2 * std::numbers::pi / 64), {-1, 1});
    Tensor y = empty(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = std::sin(x.data<float>()[i]);
    // Parameters, scaled like PyTorch's default init: U(−1/√fan_in, 1/√fan_in).
    const double s1 = 1.0, s2 = 1.0 / std::sqrt(double(a.hidden));
    Tensor W1 = uniform({1, a.hidden}, -s1, s1, gen).requires_grad_();
    Tensor b1 = uniform({a.hidden}, -s1, s1, gen).requires_grad_();
    Tensor W2 = uniform({a.hidden, 1}, -s2, s2, gen).requires_grad_();
    Tensor b2 = uniform({1}, -s2, s2, gen).requires_grad_();
    std::vector<Tensor> params{W1, b1, W2, b2};

    const auto t0 = std::chrono::steady_clock::now();
    double loss_value = 0;
    for (std::int64_t step = 1; step <= a.steps; ++step) {
        const Tensor h = tanh(matmul(x, W1) + b1);           // (N, H)
        const Tensor pred = matmul(h, W2) + b2;              // (N, 1)
        const Tensor loss = mean(pow(pred - y, 2.0));        // mean squared error
        for (auto& p : params) p.zero_grad();
        loss.backward();
        {
            NoGradGuard no_grad;  // the update itself is not part of the model
            for (auto& p : params) {
                float* w = p.data<float>();
                const float* g = p.grad().data<float>();
                for (std::int64_t i = 0; i < p.numel(); ++i) w[i] -= float(a.lr) * g[i];
            }
        }
        loss_value = loss.item();
        if (!std::isfinite(loss_value)) {
            fmt::print(stderr, "qkv train: loss became {} at step {}: the learning rate {} is too large\n", loss_value,
                       step, a.lr);
            return 1;
        }
        if (!a.quiet && (step == 1 || step % 200 == 0 || step == a.steps))
            fmt::print("step {:5d}  loss {:.6f}\n", step, loss_value);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("trained 1-{}-1 tanh network on sin(x): final mse {:.6f} after {} steps in {:.2f} s\n", a.hidden,
               loss_value, a.steps, secs);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
            fmt::print(args.empty() ? stderr : stdout, "{}", kUsage);
            return args.empty() ? 2 : 0;
        }
        const std::string cmd = args[0];
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        if (cmd == "train") {
            for (const auto& r : rest) {
                if (r == "--help" || r == "-h") {
                    fmt::print("{}", kTrainUsage);
                    return 0;
                }
            }
            TrainArgs a;
            try {
                a = parse_train(rest);
            } catch (const qkv::Error& e) {
                fmt::print(stderr, "qkv train: {}\n", e.what());
                return 2;
            }
            return train(a);
        }
        fmt::print(stderr, "qkv: unknown command '{}'\n\n{}", cmd, kUsage);
        return 2;
    } catch (const qkv::Error& e) {
        fmt::print(stderr, "qkv: error: {}\n", e.what());
        return 1;
    }
}
