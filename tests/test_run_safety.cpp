// A training run is never wasted: checkpoints every N steps, Ctrl-C and SIGTERM finish the step,
// save and say how to resume (and the resumed run ends in the same bits as one never stopped), a
// NaN stops training at once naming the op and layer without overwriting the good checkpoint, and
// --resume continues to a new total of --steps with the curve appended. The command-line tests run
// the `qkv` program as a child process ($QKV_CLI picks another build, e.g. an old one, to compare).
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <random>
#include <thread>

#include "qkv/io/safetensors.hpp"
#include "qkv/train/train.hpp"
#include "support.hpp"

using namespace qkv;
using Catch::Contains;

namespace {

TaskTrainConfig tiny() {
    TaskTrainConfig c;
    c.task = {"copy", 4, true};
    c.layers = 1;
    c.heads = 2;
    c.dim = 16;
    c.batch = 8;
    c.max_steps = 25;
    c.eval_every = 20;
    c.eval_size = 20;
    c.log_every = 5;
    c.target_accuracy = 2.0;  // never reached: runs go to their budget
    return c;
}

Tensor& parameter(TaskTrainer& t, const std::string& name) {
    static std::vector<NamedTensor> params;
    params = t.model().named_parameters();
    for (auto& [n, p] : params)
        if (n == name) return p;
    FAIL("no parameter " << name);
    return params.front().second;
}

// Every tensor of two checkpoints, bit for bit (the curve's times aside).
void check_same_tensors(const std::string& a, const std::string& b) {
    const io::SafeTensors x = io::load_safetensors(a), y = io::load_safetensors(b);
    REQUIRE(x.tensors.size() == y.tensors.size());
    for (std::size_t i = 0; i < x.tensors.size(); ++i) {
        const auto& [name, t] = x.tensors[i];
        INFO(name);
        REQUIRE(y.tensors[i].first == name);
        if (name == "train.curve") continue;
        const Tensor& u = y.tensors[i].second;
        REQUIRE(t.shape() == u.shape());
        CHECK(std::memcmp(t.raw_data(), u.raw_data(), std::size_t(t.numel()) * dtype_size(t.dtype())) == 0);
    }
    CHECK(x.metadata.at("train.step") == y.metadata.at("train.step"));
    CHECK(x.metadata.at("train.rng") == y.metadata.at("train.rng"));
}

}  // namespace

TEST_CASE("RunGuard saves a checkpoint every N steps, and the step and the curve come back with it", "[run]") {
    const test::TempDir dir("run_every");
    const std::string path = dir / "run.safetensors";
    TaskTrainer t(tiny());
    std::vector<std::int64_t> saved;
    RunGuard guard({path, 10, false}, [&](const std::string& p) {
        t.save(p);
        saved.push_back(t.steps_done());
    });
    guard.check_output();
    t.run({}, {}, &guard);
    CHECK(saved == std::vector<std::int64_t>{10, 20});
    CHECK(guard.last_saved_step() == 20);
    guard.save(t.steps_done());
    const auto loaded = TaskTrainer::load(path);
    CHECK(loaded->steps_done() == 25);
    REQUIRE(loaded->curve().size() == t.curve().size());
    for (std::size_t i = 0; i < t.curve().size(); ++i) {
        CHECK(loaded->curve()[i].step == t.curve()[i].step);
        CHECK(loaded->curve()[i].loss == t.curve()[i].loss);
    }
    CHECK_THROWS_WITH(RunGuard({path, -1, false}, [](const std::string&) {}), Contains("checkpoint_every must be >= 0"));
}

TEST_CASE("a non-finite loss stops training at once, names the op and the layer, and saves nothing", "[run][anomaly]") {
    const test::TempDir dir("run_nan");
    const std::string path = dir / "run.safetensors";
    TaskTrainer t(tiny());
    RunGuard guard({path, 5, false}, [&](const std::string& p) { t.save(p); });
    t.set_max_steps(10);
    t.run({}, {}, &guard);
    const std::string good = test::read_bytes(path);
    REQUIRE(guard.last_saved_step() == 10);
    // A finite but enormous layer-norm gain: the attention that follows overflows to NaN.
    parameter(t, "blocks.0.ln1.weight").data<float>()[3] = 1e38f;
    t.set_max_steps(20);
    try {
        t.run({}, {}, &guard);
        FAIL("training went on");
    } catch (const TrainingDiverged& e) {
        CHECK(e.step() == 11);
        CHECK_THAT(std::string(e.what()), Contains("step 11: the loss is NaN; anomaly: the forward of 'head_attention_qkv' "
                                                   "(in blocks.0.attn) produced NaN") &&
                                              Contains("from finite inputs"));
    }
    CHECK(t.steps_done() == 10);  // the failed step was not applied
    CHECK(test::read_bytes(path) == good);
    // A NaN weight is named as such, and a state holding it is never saved over a good file.
    parameter(t, "blocks.0.mlp.fc2.weight").data<float>()[7] = std::nanf("");
    CHECK_THROWS_WITH(t.step(), Contains("step 11: the loss is NaN, because the parameter 'blocks.0.mlp.fc2.weight' holds "
                                         "NaN at index 7 of (16,64)"));
    CHECK_THROWS_WITH(t.save(path), Contains("save: refusing to save a state that is not finite") &&
                                        Contains("'blocks.0.mlp.fc2.weight' holds NaN at index 7"));
    CHECK(test::read_bytes(path) == good);
}

TEST_CASE("a non-finite gradient with a finite loss is caught before the update as well", "[run][anomaly]") {
    // sqrt-like blow-ups are rare in a GPT, so the gradient check is shown on its own: the loss is
    // finite, one gradient is not, and the weights must stay as they were.
    TaskTrainer t(tiny());
    std::vector<NamedTensor> params = t.model().named_parameters();
    const double loss = 1.0;
    params[0].second.set_grad(zeros_like(params[0].second));
    params[0].second.grad().data<float>()[2] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(check_finite_step(loss, params, 4, {}),
                      Contains("step 4: the gradient '" + params[0].first + " (its gradient)' holds inf at index 2"));
    params[0].second.zero_grad();
    CHECK_NOTHROW(check_finite_step(loss, params, 4, {}));
}

TEST_CASE("a checkpoint holding NaN is refused when loaded", "[run][checkpoint]") {
    const test::TempDir dir("run_nan_load");
    const std::string path = dir / "run.safetensors";
    TaskTrainer(tiny()).save(path);
    io::SafeTensors f = io::load_safetensors(path);
    for (auto& [name, tensor] : f.tensors)
        if (name == "blocks.0.attn.out_proj.bias") tensor.data<float>()[1] = std::nanf("");
    io::save_safetensors(path, f.tensors, f.metadata);  // with a fresh, valid checksum
    CHECK_THROWS_WITH(TaskTrainer::load(path), Contains("'blocks.0.attn.out_proj.bias' holds NaN at index 1") &&
                                                   Contains("go back to an earlier checkpoint"));
}

// ---- the qkv command ----------------------------------------------------------------------------

namespace {
// A run long enough to be interrupted (a few seconds), with one evaluation at its end.
std::vector<std::string> long_run(const std::string& save, std::int64_t steps = 300) {
    return {test::qkv_cli(), "train", "--steps", std::to_string(steps), "--batch", "16", "--eval-every", "1000",
            "--eval-size", "50", "--threads", "1", "--save", save, "--out", save + ".out"};
}
}  // namespace

TEST_CASE("qkv train: SIGINT or SIGTERM mid-run finishes the step, saves, and the resumed run ends in the same bits",
          "[run][signals][cli]") {
    const test::TempDir dir("run_signal");
    // The run that is never interrupted.
    const std::string whole = dir / "whole.safetensors";
    {
        test::Child run(long_run(whole));
        REQUIRE(run.wait() <= 1);
    }
    std::mt19937 rng(std::random_device{}());
    for (const int sig : {SIGINT, SIGTERM}) {
        DYNAMIC_SECTION("signal " << sig) {
            const std::string cut = dir / fmt::format("cut{}.safetensors", sig);
            test::Child run(long_run(cut));
            // The handlers are in place once the header is printed; then a random moment of training.
            REQUIRE(run.read_until("training: "));
            std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 600));
            run.signal(sig);
            const int status = run.wait();
            INFO(run.output());
            if (run.output().find("stopped at the budget") != std::string::npos) {
                WARN("the run ended before the signal arrived (a very fast machine); nothing to resume");
                check_same_tensors(whole, cut);
                continue;
            }
            CHECK(status == 128 + sig);
            CHECK_THAT(run.output(), Contains(fmt::format("interrupted by {} after step ", sig == SIGINT ? "SIGINT" : "SIGTERM")) &&
                                         Contains("continue it with: qkv train --resume " + cut));
            for (const auto& name : dir.files()) CHECK(name.find(".tmp.") == std::string::npos);
            const auto stopped = TaskTrainer::load(cut);
            CHECK(stopped->steps_done() > 0);
            CHECK(stopped->steps_done() < 300);
            test::Child resumed({test::qkv_cli(), "train", "--resume", cut, "--threads", "1", "--out", cut + ".out"});
            CHECK(resumed.wait() <= 1);
            check_same_tensors(whole, cut);
        }
    }
}

TEST_CASE("qkv train --resume takes --steps as the new total and appends to the curve", "[run][cli]") {
    const test::TempDir dir("run_resume");
    const std::string path = dir / "r.safetensors";
    const std::vector<std::string> common{"--eval-every", "10", "--eval-size", "20", "--threads", "1", "--out", dir / "out"};
    auto with = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {test::qkv_cli(), "train"});
        args.insert(args.end(), common.begin(), common.end());
        return args;
    };
    {
        test::Child run(with({"--steps", "20", "--save", path}));
        REQUIRE(run.wait() <= 1);
    }
    CHECK(test::read_bytes(dir / "r.csv").find("\n20,") != std::string::npos);
    {
        test::Child run(with({"--resume", path, "--steps", "40"}));
        CHECK(run.wait() <= 1);
        CHECK_THAT(run.output(), Contains("budget 40 steps (resuming at step 20)"));
    }
    CHECK(TaskTrainer::load(path)->steps_done() == 40);
    const std::string csv = test::read_bytes(dir / "r.csv");
    for (const char* row : {"\n10,", "\n20,", "\n30,", "\n40,"}) CHECK(csv.find(row) != std::string::npos);
    CHECK(test::read_bytes(dir / "r.svg").find("<svg") != std::string::npos);
    // Nothing left to do is said, with what to change — not a run of 0 steps that reports 0 %.
    test::Child again(with({"--resume", path, "--steps", "40"}));
    CHECK(again.wait() == 2);
    CHECK_THAT(again.output(), Contains("is already at step 40, and its budget is 40 steps (--steps is the total") &&
                                   Contains("pass --steps greater than 40"));
}

TEST_CASE("qkv train: a NaN mid-run stops it at once, names the op and layer, and keeps the checkpoint", "[run][anomaly][cli]") {
    const test::TempDir dir("run_nan_cli");
    const std::string path = dir / "r.safetensors";
    {
        test::Child run({test::qkv_cli(), "train", "--steps", "10", "--eval-every", "100", "--eval-size", "20", "--save",
                         path, "--out", dir / "out"});
        REQUIRE(run.wait() <= 1);
    }
    // A finite but enormous layer-norm gain (checksum redone): the next steps overflow to NaN.
    io::SafeTensors f = io::load_safetensors(path);
    for (auto& [name, t] : f.tensors)
        if (name == "blocks.0.ln1.weight") t.data<float>()[3] = 1e38f;
    io::save_safetensors(path, f.tensors, f.metadata);
    const std::string before = test::read_bytes(path);
    test::Child run({test::qkv_cli(), "train", "--resume", path, "--steps", "50", "--out", dir / "out"});
    CHECK(run.wait() == 1);
    CHECK_THAT(run.output(), Contains("step 11: the loss is NaN; anomaly: the forward of 'head_attention_qkv' (in "
                                      "blocks.0.attn) produced NaN") &&
                                 Contains("training stopped before step 11 was applied; " + path +
                                          " still holds the run at step 10") &&
                                 Contains("a lower --lr"));
    CHECK(test::read_bytes(path) == before);
}
