/// \file
/// \brief The graders' toolkit: call the learner's code safely, compare its answer element by
/// element with qkv's, and when it is wrong, say where and why.
///
/// Every lab's `grade.cpp` is a Catch2 file whose checks go through two functions:
///
/// - `call("softmax_forward", [&] { return softmax_forward(x); })` runs your function and turns
///   anything it throws into a clear failure: `NotImplemented` becomes "not implemented yet"
///   (counted apart from wrong answers), a qkv::Error or another exception is reported with its
///   message. Nothing you write can crash the grader by throwing.
/// - `check(actual, Expect{...})` compares your tensor with the expected one (computed by qkv's own
///   ops, autograd or optimizers), element by element. When they differ it reports the first wrong
///   element (its index, the expected and the actual value) and a hint.
///
/// Hints are data next to the checks: each Expect lists the known mistakes for that check as
/// (hint, answer) pairs, where the answer is what the *mistaken* code would return, computed from
/// qkv's ops with the mistake made on purpose (attention without the 1/√D scale, softmax without the
/// maximum subtracted, ...). If your output equals a mistake's answer, you get that mistake's hint.
/// Otherwise generic detectors try: NaN or infinity, a wrong shape, every element off by the same
/// factor, a transposed matrix.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <qkv/qkv.hpp>

#include "support/lab.hpp"

namespace lab::grading {

/// \brief Where a check was called from, for the report: a file and a line.
///
/// What SourceLocation gives, built from the compiler's `__builtin_FILE()` and
/// `__builtin_LINE()` (GCC and clang both have them), because the libc++ of clang 14 has no
/// `<source_location>` yet. As a default argument, `SourceLocation where = SourceLocation::current()`
/// records the line of the call, exactly like SourceLocation::current().
class SourceLocation {
public:
    /// The location of the expression that calls current() (through the default arguments).
    static constexpr SourceLocation current(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
        return SourceLocation(file, line);
    }
    /// The source file's name.
    constexpr const char* file_name() const { return file_; }
    /// The line number (1-based).
    constexpr std::size_t line() const { return static_cast<std::size_t>(line_); }

private:
    constexpr SourceLocation(const char* file, int line) : file_(file), line_(line) {}
    const char* file_;
    int line_;
};

/// \brief Which lab a grader grades: `kLab`, defined below from the lab's qkv_lab() call in CMake.
struct LabInfo {
    const char* number;  ///< "05"
    const char* title;   ///< "numerically stable softmax"
    const char* folder;  ///< "05_softmax" (the learner's file is tutorials/labs/<folder>/lab.cpp)
};
/// \brief The lab this executable grades.
extern const LabInfo kLab;

/// \brief A known wrong answer: when the learner's output equals `answer()`, show `hint`.
/// The answer is computed only when the output is wrong, so listing many mistakes costs nothing
/// for a correct solution.
struct Mistake {
    std::string hint;                     ///< what probably went wrong, and how to fix it
    std::function<qkv::Tensor()> answer;  ///< what the mistaken code returns
};

/// \brief One graded output: what it is, the expected tensor, the tolerance and the hints.
struct Expect {
    std::string what{};         ///< names the call and its inputs, e.g. "softmax_forward(x), x (4,6)"
    qkv::Tensor expected{};     ///< the right answer, from qkv
    double rtol = 1e-8;         ///< pass when |actual − expected| ≤ atol + rtol·|expected| everywhere
    double atol = 1e-10;        ///< (f64 results computed in another order differ by ~1e-15)
    /// Optional per-element absolute tolerance (the expected tensor's shape), replacing
    /// atol + rtol·|expected| — for results whose rounding error is known element by element,
    /// like a float32 matrix product's.
    qkv::Tensor tolerance{};
    std::vector<Mistake> mistakes{};  ///< known mistakes, tried in order
    std::string nan_hint{};     ///< shown when the output has NaN/inf where the answer is finite
    std::string hint{};         ///< shown when no known mistake and no generic detector matches
};

/// \brief Compare \p actual with \p e.expected; Catch2 FAIL with the full report, or SUCCEED.
/// \param actual the learner's output
/// \param e what is expected and the hints
/// \param where the check's line in grade.cpp (filled in by the compiler), shown with a failure
void check(const qkv::Tensor& actual, const Expect& e, SourceLocation where = SourceLocation::current());

/// \brief Compare one number (wrapped as a 0-d f64 tensor, so the same report and hints apply).
/// \param actual the learner's value
/// \param e what is expected (e.expected a one-element tensor) and the hints
/// \param where the check's line in grade.cpp
void check(double actual, const Expect& e, SourceLocation where = SourceLocation::current());

/// \brief FAIL unless \p ok; \p message says what was expected and, ideally, a hint.
/// \param ok the condition
/// \param message the report when it does not hold
/// \param where the check's line in grade.cpp
void require(bool ok, const std::string& message, SourceLocation where = SourceLocation::current());

/// \brief Build an f64 0-d tensor (for Expect::expected and Mistake answers of scalar checks).
/// \param value the value
/// \return a 0-d f64 tensor
qkv::Tensor number(double value);

/// \brief The report of a failed call: classify the exception, note "not implemented", FAIL.
/// \param function the learner's function that was called
/// \param error the exception it threw
/// \param where the call's line in grade.cpp
[[noreturn]] void learner_threw(const std::string& function, std::exception_ptr error, SourceLocation where);

/// \brief Run the learner's code; whatever it throws becomes a clear Catch2 failure (never a crash).
/// \param function the name of the learner's function (for the report)
/// \param f a lambda calling it
/// \param where the call's line in grade.cpp
/// \return what \p f returns
template <class F>
decltype(auto) call(const std::string& function, F&& f, SourceLocation where = SourceLocation::current()) {
    try {
        return std::forward<F>(f)();
    } catch (...) {
        learner_threw(function, std::current_exception(), where);
    }
}

/// \cond INTERNAL
#ifdef QKV_LAB_NUMBER
// Only a lab's grade.cpp is compiled with these (from qkv_lab() in tutorials/labs/CMakeLists.txt), so
// kLab is defined once per grader, and the lab's number and title live in one place.
const LabInfo kLab{QKV_LAB_NUMBER, QKV_LAB_TITLE, QKV_LAB_FOLDER};
#endif

// Bookkeeping for the scoreboard (support/catch_main.cpp): whether the current part stopped at a
// NotImplemented.
namespace detail {
extern bool part_not_implemented;
}
/// \endcond

}  // namespace lab::grading
