/// \file
/// \brief The graders' toolkit (see grader.hpp): element-by-element comparison, the report of the
/// first wrong element, known-mistake hints and generic detectors, and safe calls.
#include "support/grader.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <fmt/format.h>

namespace lab::grading {

namespace detail {
bool part_not_implemented = false;
}

namespace {

// The report with every line longer than ~110 characters broken at spaces, the continuation lines
// indented under the text (under "hint: " for a hint), so that Catch2 never breaks a word.
// Characters on screen, not bytes: the reports are full of UTF-8 (−, ·, ², Σ).
std::size_t width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string wrap(const std::string& message) {
    std::string out;
    std::size_t start = 0;
    while (start <= message.size()) {
        std::size_t stop = message.find('\n', start);
        if (stop == std::string::npos) stop = message.size();
        const std::string text = message.substr(start, stop - start);
        std::size_t lead = text.find_first_not_of(' ');
        if (lead == std::string::npos) lead = 0;
        const std::string indent(text.compare(lead, 6, "hint: ") == 0 ? lead + 6 : lead + 2, ' ');
        std::string line;
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t end = text.find(' ', pos + 1);
            if (end == std::string::npos) end = text.size();
            const std::string word = text.substr(pos, end - pos);  // with its leading space, if any
            if (width(line) + width(word) > 110 && line.find_first_not_of(' ') != std::string::npos) {
                out += line + "\n";
                line = indent + word.substr(word.find_first_not_of(' ') == std::string::npos ? 0 : word.find_first_not_of(' '));
            } else {
                line += word;
            }
            pos = end;
        }
        out += line;
        if (stop == message.size()) break;
        out += "\n";
        start = stop + 1;
    }
    return out;
}

// Catch2's FAIL / SUCCEED, reported at the grader's line rather than at this file's: that is the
// line a learner wants to read (which inputs, which check). This is what FAIL expands to in v2.13.
void report(bool ok, const std::string& message, const lab::grading::SourceLocation& where) {
    Catch::AssertionHandler handler(ok ? "SUCCEED" : "FAIL", Catch::SourceLineInfo(where.file_name(), where.line()),
                                    Catch::StringRef(), Catch::ResultDisposition::Normal);
    handler.handleMessage(ok ? Catch::ResultWas::Ok : Catch::ResultWas::ExplicitFailure, message);
    handler.complete();  // throws Catch's TestFailureException when !ok: the part stops here
}

[[noreturn]] void fail(const std::string& message, const lab::grading::SourceLocation& where) {
    report(false, wrap(message), where);
    throw std::logic_error("unreachable: a failed assertion returned");  // report() always throws
}

// "(1, 0, 2)" for flat index 6 of shape (2, 1, 3): the index a learner would write.
std::string index_str(const qkv::Shape& shape, std::int64_t flat) {
    if (shape.empty()) return "()";
    std::vector<std::int64_t> idx(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    return fmt::format("({})", fmt::join(idx, ", "));
}

std::string num(double x) { return std::isnan(x) ? "NaN" : fmt::format("{:.10g}", x); }


bool close(double a, double e, double rtol, double atol) {
    if (std::isnan(a) || std::isnan(e)) return false;
    if (std::isinf(a) || std::isinf(e)) return a == e;
    return std::abs(a - e) <= atol + rtol * std::abs(e);
}

// The tolerances of one check: atol + rtol·|expected|, or the per-element bound when given.
struct Tolerance {
    double rtol, atol;
    std::vector<double> per_element;
    bool ok(std::size_t i, double a, double e) const {
        return per_element.empty() ? close(a, e, rtol, atol) : close(a, e, 0, per_element[i]);
    }
    explicit Tolerance(const Expect& x)
        : rtol(x.rtol), atol(x.atol),
          per_element(x.tolerance.defined() ? x.tolerance.to_vector<double>() : std::vector<double>()) {}
};

bool all_close(const std::vector<double>& a, const std::vector<double>& e, const Tolerance& tol) {
    if (a.size() != e.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!tol.ok(i, a[i], e[i])) return false;
    return true;
}

bool finite(const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// The first known mistake whose answer the learner's output equals, or nullptr.
const Mistake* matching_mistake(const qkv::Tensor& actual, const std::vector<double>& a, const Expect& e) {
    for (const Mistake& m : e.mistakes) {
        qkv::Tensor answer;
        try {
            answer = m.answer();
        } catch (const std::exception&) {
            continue;  // a mistake that cannot even be computed for these inputs is not the one made
        }
        if (answer.defined() && answer.shape() == actual.shape() && all_close(a, answer.to_vector<double>(), Tolerance(e)))
            return &m;
    }
    return nullptr;
}

// Generic detectors, for outputs of the right shape that match no listed mistake: "" if none fires.
std::string generic_hint(const qkv::Tensor& expected, const std::vector<double>& a, const std::vector<double>& x,
                         const Expect& e) {
    if (std::all_of(a.begin(), a.end(), [](double v) { return v == 0; }))
        return "every element is 0: did you forget to write the result, or to add into it?";
    // The same factor everywhere: a missing or extra constant (a scale, a 1/N, a sign).
    double big = 0;
    for (double v : x) big = std::max(big, std::abs(v));
    double ratio = 0;
    int seen = 0;  // one element always has "a constant ratio": it takes two to say anything
    bool constant = big > 0;
    for (std::size_t i = 0; i < x.size() && constant; ++i) {
        if (std::abs(x[i]) < 1e-6 * big) continue;
        const double r = a[i] / x[i];
        if (seen++ == 0) ratio = r;
        else if (!close(r, ratio, 1e-6, 0)) constant = false;
    }
    if (constant && seen >= 2) {
        std::vector<double> scaled(x);
        for (double& v : scaled) v *= ratio;
        if (all_close(a, scaled, Tolerance(e))) {
            if (close(ratio, -1, 1e-9, 0)) return "every element has the wrong sign: a minus sign too many (or too few)?";
            return fmt::format("every element is {} times the expected value (1/{}): a constant factor is missing "
                               "or extra somewhere",
                               num(ratio), num(1 / ratio));
        }
    }
    // A transposed matrix (same shape only when the last two sizes are equal).
    if (expected.dim() >= 2 && expected.size(-1) == expected.size(-2) && expected.size(-1) > 1) {
        const qkv::Tensor t = qkv::transpose(expected, -2, -1);
        if (all_close(a, t.to_vector<double>(), Tolerance(e)))
            return "your result is the transpose of the expected one: check which index is the row";
    }
    return "";
}

}  // namespace

qkv::Tensor number(double value) { return qkv::scalar(value, qkv::f64); }

void require(bool ok, const std::string& message, lab::grading::SourceLocation where) {
    if (!ok) fail(message, where);
    report(true, "", where);
}

void check(double actual, const Expect& e, lab::grading::SourceLocation where) { check(number(actual), e, where); }

void check(const qkv::Tensor& actual, const Expect& e, lab::grading::SourceLocation where) {
    const qkv::Tensor& x = e.expected;
    if (!actual.defined())
        fail(fmt::format("{}:\n  returned an undefined Tensor (did you forget to return the result?)", e.what), where);
    if (actual.dtype() != x.dtype())
        fail(fmt::format("{}:\n  returned a tensor of dtype {}; expected {} (this lab computes in {})", e.what,
                         qkv::dtype_name(actual.dtype()), qkv::dtype_name(x.dtype()), qkv::dtype_name(x.dtype())), where);
    const std::vector<double> a = actual.to_vector<double>();
    if (actual.shape() != x.shape()) {
        std::string msg = fmt::format("{}:\n  returned shape {}; expected shape {}", e.what, qkv::shape_str(actual.shape()),
                                      qkv::shape_str(x.shape()));
        if (const Mistake* m = matching_mistake(actual, a, e)) msg += "\n  hint: " + m->hint;
        else if (x.dim() >= 2 && actual.dim() == x.dim() && actual.size(-1) == x.size(-2) && actual.size(-2) == x.size(-1))
            msg += "\n  hint: the last two sizes are swapped: is the result transposed?";
        fail(msg, where);
    }
    const std::vector<double> want = x.to_vector<double>();
    const Tolerance tol(e);
    std::int64_t first = -1, wrong = 0, worst = -1;
    double worst_err = -1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (tol.ok(i, a[i], want[i])) continue;
        ++wrong;
        if (first < 0) first = std::int64_t(i);
        const double err = std::isnan(a[i]) ? INFINITY : std::abs(a[i] - want[i]);
        if (err > worst_err) worst_err = err, worst = std::int64_t(i);
    }
    if (wrong == 0) return report(true, "", where);
    const auto f = std::size_t(first);
    std::string msg = e.what + ":\n";
    if (x.dim() == 0) {
        msg += fmt::format("  expected {}, got {}\n", num(want[0]), num(a[0]));
    } else {
        msg += fmt::format("  first wrong element at {}: expected {}, got {}\n", index_str(x.shape(), first),
                           num(want[f]), num(a[f]));
        msg += fmt::format("  {} of {} elements are wrong", wrong, a.size());
        if (wrong > 1 && worst != first) msg += fmt::format("; the largest error is at {}", index_str(x.shape(), worst));
        if (tol.per_element.empty())
            msg += fmt::format(" (tolerance: |got − expected| ≤ {} + {}·|expected|)\n", num(e.atol), num(e.rtol));
        else
            msg += fmt::format(" (tolerance at the first wrong element: {})\n", num(tol.per_element[f]));
    }
    std::string hint;
    if (const Mistake* m = matching_mistake(actual, a, e)) hint = m->hint;
    else if (!finite(a) && finite(want))
        hint = e.nan_hint.empty()
                   ? "NaN or infinity where a finite number was expected: an overflow (exp of a large number?), "
                     "a division by zero, or an element never written?"
                   : e.nan_hint;
    else {
        // The check's own hint was written for this check; a generic finding is added as a fact.
        const std::string found = generic_hint(x, a, want, e);
        hint = e.hint.empty() ? found : found.empty() ? e.hint : e.hint + "\n  also: " + found;
    }
    if (!hint.empty()) msg += "  hint: " + hint;
    fail(msg, where);
}

void learner_threw(const std::string& function, std::exception_ptr error, lab::grading::SourceLocation where) {
    std::string msg;
    try {
        std::rethrow_exception(error);
    } catch (const NotImplemented& e) {
        detail::part_not_implemented = true;
        msg = fmt::format("not implemented yet: {} (write it in tutorials/labs/{}/lab.cpp)", e.function(), kLab.folder);
    } catch (const qkv::Error& e) {
        msg = fmt::format("{} threw qkv::Error: {}\n  hint: qkv checks every op's arguments; the message names the op "
                          "and the shapes or dtypes it was given",
                          function, e.what());
    } catch (const std::exception& e) {
        msg = fmt::format("{} threw an exception: {}", function, e.what());
    } catch (...) {
        msg = fmt::format("{} threw something that is not a std::exception", function);
    }
    fail(msg, where);
}

}  // namespace lab::grading
