/// \file
/// \brief Tutorial 10: train a tiny GPT on reverse and sort until it is right on 100% of held-out
/// problems.
///
/// The whole training loop, written out: draw a batch, compute the loss on the answer positions
/// only, backpropagate, take an AdamW step, and every 100 steps decode 1 000 held-out problems
/// greedily (with the key/value cache) and count exact matches. The same loop trains two tasks:
/// reversing 16 digits and sorting 6. The loss and accuracy curves are written as an SVG file.
/// See README.md.
#include <qkv/qkv.hpp>

#include "../steps.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

using namespace qkv;

namespace {

// [evaluate]
// Exact-match accuracy on a fixed held-out set. The model gets each prompt and the separator and
// must write the whole answer itself, one token at a time, always taking the most likely token
// (greedy decoding). generate() with use_cache = true keeps every layer's keys and values, so each
// new token costs one position of work instead of re-reading the whole sequence. All 1 000
// problems are decoded together as one batch.
double evaluate(nn::GPT& model, const data::Task& task, const std::vector<data::Example>& heldout) {
    model.eval();
    std::vector<std::int32_t> contexts;
    for (const auto& e : heldout) {
        const auto c = e.context();
        contexts.insert(contexts.end(), c.begin(), c.end());
    }
    const auto B = std::int64_t(heldout.size());
    const std::int64_t context_length = task.prompt_length() + 1;
    Generator unused(0);  // greedy decoding draws no random numbers
    const Tensor out = model.generate(from(contexts, {B, context_length}), task.answer_length(), nn::SampleOptions{},
                                      unused, /*use_cache=*/true);
    const auto tokens = out.to_vector<std::int32_t>();
    std::int64_t correct = 0;
    for (std::int64_t b = 0; b < B; ++b) {
        const auto row = tokens.begin() + b * out.size(1);
        const std::vector<std::int32_t> answer(row + context_length, row + out.size(1));
        correct += data::exact_match(answer, heldout[std::size_t(b)]);
    }
    model.train();
    return double(correct) / double(B);
}
// [evaluate]

// [train]
// Train a fresh GPT (config S: 2 layers, 4 heads, d_model 64) on one task until 100% held-out
// exact match or the step budget. Prints one line per evaluation, writes the curves to \p svg and
// returns the last held-out accuracy.
double train(const data::TaskConfig& task_config, std::int64_t budget, std::uint64_t seed, const std::string& svg) {
    const auto task = data::make_task(task_config);
    fmt::print("task: {}\n", task->description());

    // The model: sequences are T = prompt + separator + answer tokens long; V is the task's vocabulary.
    nn::GPTConfig gc;
    gc.vocab = task->vocab().size();
    gc.block_size = task->sequence_length();
    gc.dim = 64;
    gc.heads = 4;
    gc.layers = 2;
    gc.seed = seed;
    nn::GPT model(gc);
    fmt::print("model: GPT, {} layers x {} heads, d_model {}, {} parameters\n", gc.layers, gc.heads, gc.dim,
               model.num_parameters());

    // AdamW with a constant learning rate of 1e-3 and weight decay 0.01.
    optim::AdamWOptions ao;
    ao.lr = 1e-3;
    ao.weight_decay = 0.01;
    optim::AdamW opt(model.named_parameters(), ao);

    // 1 000 held-out problems, the same ones for every run; training never sees a held-out problem.
    const auto heldout = data::heldout_set(*task, 1000, 20261124);
    Generator batches(seed + 7);  // the training batches: a random stream of their own

    // For the plot, every 10 steps: the mean loss of those steps, and the held-out accuracy of the
    // latest evaluation (0 before the first).
    std::vector<double> steps, losses, accuracies;
    double loss_sum = 0, loss_10 = 0, accuracy = 0;
    std::int64_t since = 0;  // steps since the last evaluation
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t step = 1; step <= budget; ++step) {
        // 1. A batch of 32 fresh training problems. inputs (32, T-1) are tokens 0..T-2; targets
        //    (32, T-1) are tokens 1..T-1 — the next token at every position — with every
        //    position that is not an answer token set to kIgnoreIndex.
        const data::Batch batch = data::make_batch(*task, 32, data::Split::train, batches);
        // 2. Forward: logits (32, T-1, V), then cross-entropy against the targets. Positions
        //    marked kIgnoreIndex do not count: the loss is the answer's alone.
        opt.zero_grad();
        const Tensor loss = model.loss(batch.inputs, batch.targets);
        // 3. Backward: the gradient of the loss with respect to every parameter.
        loss.backward();
        // 4. AdamW update.
        opt.step();
        loss_sum += loss.item();
        loss_10 += loss.item();
        ++since;

        // 5. Every 100 steps (and after the last): how many held-out problems does the model
        //    solve exactly?
        if (step % 100 == 0 || step == budget) {
            accuracy = evaluate(model, *task, heldout);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            fmt::print("step {:>5}  loss {:.4f}  held-out exact match {:5.1f}%  ({:.1f} s)\n", step,
                       loss_sum / double(since), 100 * accuracy, seconds);
            loss_sum = 0;
            since = 0;
        }
        if (step % 10 == 0) {
            steps.push_back(double(step));
            losses.push_back(loss_10 / 10);
            accuracies.push_back(accuracy);
            loss_10 = 0;
        }
        if (accuracy == 1.0) {
            fmt::print("reached 100% at step {}\n", step);
            break;
        }
    }
    if (accuracy < 1.0) fmt::print("not at 100% after {} steps\n", budget);

    // The trained model on two held-out problems.
    model.eval();
    for (std::size_t i = 0; i < 2; ++i) {
        const data::Example& e = heldout[i];
        const auto ctx = e.context();
        Generator unused(0);
        const Tensor out = model.generate(from(ctx, {1, std::int64_t(ctx.size())}), task->answer_length(),
                                          nn::SampleOptions{}, unused, true);
        fmt::print("  {}\n", task->vocab().decode(out.to_vector<std::int32_t>()));
    }

    // [plot]
    // Loss (left axis, logarithmic) and held-out accuracy (right axis) against the step.
    const std::string title = task->description().substr(0, task->description().find(':'));
    viz::write_line_chart(svg, "tutorial 10: " + title, steps,
                          {{"train loss (mean of 10 steps)", losses, false},
                           {"held-out exact match (every 100 steps)", accuracies, true}});
    fmt::print("curve written to {}\n\n", svg);
    // [plot]
    return accuracy;
}
// [train]

// [profile]
// Where a step's time goes: 20 training steps of a fresh model of the same size, profiled op by op
// (qkv::Profiler; `qkv train --profile` and QKV_PROFILE=1 do the same). The rows are printed in
// alphabetical order, so that they line up from run to run; the times vary, the calls and FLOPs
// do not.
void profile_steps() {
    const auto task = data::make_task({"reverse", 16, true});
    nn::GPTConfig gc;
    gc.vocab = task->vocab().size();
    gc.block_size = task->sequence_length();
    nn::GPT model(gc);  // d_model 64, 4 heads, 2 layers: the defaults
    optim::AdamW opt(model.named_parameters(), optim::AdamWOptions{});
    Generator batches(7);
    Profiler prof;
    for (int step = 0; step < 20; ++step) {
        const data::Batch batch = data::make_batch(*task, 32, data::Split::train, batches);
        opt.zero_grad();
        model.loss(batch.inputs, batch.targets).backward();
        opt.step();
    }
    prof.stop();
    auto rows = prof.ops();
    std::sort(rows.begin(), rows.end(), [](const OpProfile& a, const OpProfile& b) { return a.name < b.name; });
    double in_ops = 0, flops = 0;
    fmt::print("profile of 20 training steps (reverse, batch 32):\n");
    fmt::print("  {:<28} {:>6} {:>8} {:>10} {:>8}\n", "op", "calls", "GFLOP", "ms", "GFLOP/s");
    for (const OpProfile& r : rows) {
        in_ops += r.seconds;
        flops += r.flops;
        fmt::print("  {:<28} {:>6} {:>8} {:>10.1f} {:>8}\n", r.name, r.calls, r.flops > 0 ? fmt::format("{:.3f}", r.flops * 1e-9) : "-",
                   r.seconds * 1e3, r.flops > 0 ? fmt::format("{:.1f}", r.flops * 1e-9 / r.seconds) : "-");
    }
    fmt::print("  {:<28} {:>6} {:>8} {:>10.1f}\n", "(outside ops: AdamW, batches)", "", "", (prof.seconds() - in_ops) * 1e3);
    fmt::print("  {:<28} {:>6} {:>8.3f} {:>10.1f} {:>8.1f}\n", "total", "", flops * 1e-9, prof.seconds() * 1e3,
               flops * 1e-9 / prof.seconds());
}
// [profile]

}  // namespace

int main(int argc, char** argv) {
    try {
        // [run]
        // A budget of 3 000 steps per task (or N with --steps N). The curves go next to this
        // program (build/tutorials/ when you built with the presets).
        const std::int64_t budget = tutorial::training_steps(argc, argv, 3000);
        const std::filesystem::path dir = std::filesystem::path(argv[0]).parent_path();
        const double reverse = train({"reverse", 16, true}, budget, 0, (dir / "10_reverse_curve.svg").string());
        const double sort = train({"sort", 6, true}, budget, 0, (dir / "10_sort_curve.svg").string());
        // [run]
        profile_steps();
        // The full run fails unless both tasks reached 100%; a run cut short by --steps does not.
        return budget < 3000 || (reverse == 1.0 && sort == 1.0) ? 0 : 1;
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
