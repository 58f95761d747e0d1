/// \file
/// \brief The command line of the tutorials that train (10 to 14): `--steps N` stops training
/// after N steps.
///
/// A few steps are enough to watch a tutorial's program run from start to end, with every
/// evaluation, plot and analysis it makes, only on a barely trained model. That is also how the
/// test suite runs these programs under emulation (qemu, for the AArch64 build), where training
/// to the end would take hours: each of these tutorials' READMEs has a second expected output,
/// that of `--steps 20`, and ctest holds the program to it on every platform.
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace tutorial {

/// \brief The number of training steps the command line asks for.
///
/// No argument: \p full. `--short`: \p short_steps, for the tutorials that document a short mode
/// (those that pass short_steps > 0). `--steps N`: N, from 1 to 1 000 000. Anything else prints
/// the usage to stderr and exits with status 2 (bad usage).
/// \param argc,argv the arguments of main()
/// \param full the steps of the full run
/// \param short_steps the steps of `--short`, or 0 when the tutorial has no short mode
/// \return the step budget
inline std::int64_t training_steps(int argc, char** argv, std::int64_t full, std::int64_t short_steps = 0) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return full;
    if (args.size() == 1 && short_steps > 0 && args[0] == "--short") return short_steps;
    // Digits only (no sign, no spaces), at most 7 of them, so std::stoll cannot throw.
    if (args.size() == 2 && args[0] == "--steps" && !args[1].empty() && args[1].size() <= 7 &&
        args[1].find_first_not_of("0123456789") == std::string::npos) {
        const std::int64_t n = std::stoll(args[1]);
        if (n >= 1 && n <= 1'000'000) return n;
    }
    std::string program = argv[0];
    program = program.substr(program.find_last_of('/') + 1);
    fmt::print(stderr, "usage: {} [{}--steps N]   (N from 1 to 1000000; without a flag, {} steps)\n", program,
               short_steps > 0 ? fmt::format("--short ({} steps) | ", short_steps) : "", full);
    std::exit(2);
}

}  // namespace tutorial
