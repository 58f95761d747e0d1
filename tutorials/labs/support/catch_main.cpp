/// \file
/// \brief The main of every lab grader: runs Catch2, then prints where the lab stands.
///
/// Each TEST_CASE of a grader is one *part* of the lab. A listener sorts the parts into three
/// piles — passed, not implemented yet (the part stopped at a stub's NotImplemented), failing (a
/// wrong answer or another exception) — and main prints a one-line summary and a machine-readable
/// `LAB RESULT:` line that the scoreboard (`build/tutorials/labs/grade`) reads.
/// Compiled once and linked into every grader, because Catch2's implementation is slow to compile.
#define CATCH_CONFIG_RUNNER
// Wide enough that a report line (a path, a hint) is not broken in the middle of a word.
#define CATCH_CONFIG_CONSOLE_WIDTH 120
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/grader.hpp"

namespace {

struct Tally {
    int passed = 0, not_implemented = 0, failing = 0;
    std::string first_failure;  // "05.2 softmax backward: <first line of the report>"
};
Tally tally;

// The line of a report that says what is wrong: the first, unless it only names the check ("...:").
std::string headline(const std::string& message) {
    std::string first = message.substr(0, message.find('\n'));
    if (!first.empty() && first.back() == ':' && first.size() < message.size()) {
        const auto from = first.size() + 1;
        std::string second = message.substr(from, message.find('\n', from) - from);
        second.erase(0, second.find_first_not_of(' '));
        return second;
    }
    return first;
}

class Scoreboard : public Catch::TestEventListenerBase {
public:
    using TestEventListenerBase::TestEventListenerBase;

    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        lab::grading::detail::part_not_implemented = false;
        part_ = info.name;
        message_.clear();
    }
    bool assertionEnded(const Catch::AssertionStats& stats) override {
        if (!stats.assertionResult.isOk() && message_.empty()) {
            message_ = stats.assertionResult.hasMessage() ? stats.assertionResult.getMessage()
                                                          : stats.assertionResult.getExpandedExpression();
            if (message_.empty()) message_ = "an assertion failed";
        }
        return true;
    }
    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        if (stats.totals.assertions.failed == 0) {
            ++tally.passed;
        } else if (lab::grading::detail::part_not_implemented) {
            ++tally.not_implemented;
        } else {
            ++tally.failing;
            if (tally.first_failure.empty()) tally.first_failure = part_ + ": " + headline(message_);
        }
    }

private:
    std::string part_, message_;
};

}  // namespace

CATCH_REGISTER_LISTENER(Scoreboard)

int main(int argc, char** argv) {
    const int failed = Catch::Session().run(argc, argv);
    const auto& lab = lab::grading::kLab;
    const int total = tally.passed + tally.not_implemented + tally.failing;
    std::string status = tally.failing > 0 ? "failing" : tally.not_implemented > 0 ? "not yet" : "passed";
    if (total == 0) status = "no parts ran";
    fmt::print("\nlab {} ({}): {} of {} parts pass", lab.number, lab.title, tally.passed, total);
    if (tally.not_implemented > 0) fmt::print(", {} not implemented yet", tally.not_implemented);
    if (tally.failing > 0) fmt::print(", {} failing", tally.failing);
    fmt::print("\nLAB RESULT: {}, {}/{} parts pass\n", status, tally.passed, total);
    if (!tally.first_failure.empty()) fmt::print("LAB FIRST FAILURE: {}\n", tally.first_failure);
    return failed == 0 && total > 0 ? 0 : 1;
}
