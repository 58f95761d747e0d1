/// \file
/// \brief What `qkv train` says when a run ends early — a NaN stopped it, or Ctrl-C did — for the
/// toy tasks (train.cpp) and for text (text.cpp) alike: where the run is saved, and what to do next.
#include <fmt/format.h>

#include "commands.hpp"
#include "qkv/train/run_guard.hpp"

namespace qkv::cli {

Error diverged_error(const TrainingDiverged& e, const RunGuard& guard, const DivergedContext& run) {
    // The failed step was not applied and nothing was saved after it: say what is where.
    std::string kept;
    if (guard.last_saved_step() >= 0)
        kept = fmt::format("{} holds the run at step {}, its last checkpoint", run.save_path, guard.last_saved_step());
    else if (run.resumed_in_place)
        kept = fmt::format("{} still holds the run at step {}, as it was resumed", run.save_path, run.start_step);
    else
        kept = fmt::format("nothing was saved (the first checkpoint was due at step {})",
                           guard.options().checkpoint_every > 0 ? guard.options().checkpoint_every : run.max_steps);
    const bool can_continue = guard.last_saved_step() >= 0 || run.resumed;
    return Error(fmt::format("{}\ntraining stopped before step {} was applied; {}, and nothing was written over it.\n"
                             "what to change: a smaller learning rate usually cures this — train again with a lower "
                             "--lr (now {}){}",
                             e.what(), e.step(), kept, run.lr,
                             can_continue ? fmt::format(", or continue from the checkpoint: qkv train --resume {} --lr {}",
                                                        run.save_path, run.lr / 2)
                                          : ""));
}

int report_interrupted(int signal, std::int64_t steps_done, double seconds, const std::string& save_path,
                       const std::string& curve_stem) {
    say("interrupted by {} after step {} ({:.1f} s); the run is saved in {}\n", StopSignals::name(signal), steps_done,
        seconds, save_path);
    say("continue it with: qkv train --resume {}\n", save_path);
    if (!curve_stem.empty()) say("training curve so far: {}.svg (data: {}.csv)\n", curve_stem, curve_stem);
    return 128 + signal;  // the shell's convention for "ended by a signal"
}

}  // namespace qkv::cli
