// TaskTrainer: the training curve — a point every log_every steps and at every evaluation, so that a
// run which stops at its first evaluation still has a curve to draw.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "qkv/train/train.hpp"

using namespace qkv;

namespace {

// A tiny run: 1 layer, C = 16, copy 4 digits; 25 steps, evaluations at 20 and 25 (the budget).
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
    c.log_every = 10;
    c.target_accuracy = 2.0;  // never reached: the run goes to its budget
    return c;
}

}  // namespace

TEST_CASE("TaskTrainer's curve: the loss every log_every steps, the accuracy where an evaluation ran", "[train][curve]") {
    TaskTrainer t(tiny());
    std::vector<double> losses;
    const auto evals = t.run({}, [&](std::int64_t, double loss) { losses.push_back(loss); });
    REQUIRE(losses.size() == 25);
    auto mean = [&](std::size_t from, std::size_t to) {  // steps from … to, 1-based
        double s = 0;
        for (std::size_t i = from; i <= to; ++i) s += losses[i - 1];
        return s / double(to - from + 1);
    };
    const auto& curve = t.curve();
    REQUIRE(curve.size() == 3);
    CHECK(curve[0].step == 10);
    CHECK(curve[0].loss == Approx(mean(1, 10)).epsilon(1e-12));
    CHECK(std::isnan(curve[0].accuracy));  // no evaluation at step 10
    CHECK(curve[1].step == 20);
    CHECK(curve[1].loss == Approx(mean(11, 20)).epsilon(1e-12));
    CHECK(curve[2].step == 25);  // the last step of the budget is always evaluated
    CHECK(curve[2].loss == Approx(mean(21, 25)).epsilon(1e-12));
    REQUIRE(evals.size() == 2);
    CHECK(curve[1].accuracy == evals[0].accuracy);
    CHECK(curve[2].accuracy == evals[1].accuracy);
    CHECK(evals[0].loss == Approx(mean(1, 20)).epsilon(1e-12));  // evaluations keep their own mean
    CHECK(curve[0].seconds <= curve[1].seconds);
}

TEST_CASE("TaskTrainer's curve: a run that stops at its first evaluation still has one", "[train][curve]") {
    TaskTrainConfig c = tiny();
    c.target_accuracy = 0.0;  // reached at the first evaluation, step 20
    TaskTrainer t(c);
    const auto evals = t.run();
    REQUIRE(evals.size() == 1);
    REQUIRE(t.curve().size() == 2);
    CHECK(t.curve()[0].step == 10);
    CHECK(t.curve()[1].step == 20);
    CHECK(t.steps_done() == 20);
}

TEST_CASE("TaskTrainer checks log_every", "[train][errors]") {
    TaskTrainConfig c = tiny();
    c.log_every = 0;
    CHECK_THROWS_WITH(TaskTrainer(c), Catch::Contains("log_every must be >= 1, got 0"));
}
