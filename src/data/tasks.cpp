/// \file
/// \brief The five toy tasks — copy, reverse, sort, add, recall — and make_task().
///
/// A reader learns here what each task asks of a model and why it is a good test. Each task is a
/// row of a table (a `TaskKind`): its vocabulary, how long its prompt and answer are, how to draw
/// a random prompt, how to check a prompt someone typed, and how to solve one. Everything works
/// on plain text ("045+678" → "3270"), which keeps the rules readable; Task turns text into
/// token ids at the end.
///
/// - **copy**: repeat the digits. Attention only has to look back a fixed distance.
/// - **reverse**: write them backwards. Answer digit i looks at prompt digit L−1−i: the
///   anti-diagonal attention pattern of `qkv attention`.
/// - **sort**: write them in ascending order. Each output needs a count over the whole prompt.
/// - **add**: n-digit addition with carries. Reversed answers (least significant digit first)
///   let the model produce each digit after the carry that feeds it; plain order is much harder.
/// - **recall**: "c7a2f9?a=2": find the queried key among the pairs and output the digit after
///   it. The model must match a key anywhere in the sequence and copy its neighbour — the
///   induction-head mechanism behind in-context learning.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "qkv/data/tasks.hpp"
#include "qkv/error.hpp"

namespace qkv::data {
namespace detail {

/// One row of the task table. Functions receive the task's size parameter L (digits, digits per
/// operand, or pairs). `check` returns an empty string for a valid prompt, otherwise the reason.
struct TaskKind {
    std::string_view name;
    std::string_view symbols;         // the vocabulary, in id order
    std::string_view unit;            // what the length counts, for messages: "digits", ...
    std::string_view rule;            // what the answer is, for description()
    std::int64_t default_length;
    std::int64_t max_length;
    double (*problem_count)(std::int64_t L);
    std::int64_t (*prompt_length)(std::int64_t L);
    std::int64_t (*answer_length)(std::int64_t L);
    std::string (*draw)(std::int64_t L, Generator& gen);
    std::string (*check)(std::string_view prompt, std::int64_t L);
    std::string (*solve)(std::string_view prompt, bool reversed);
};

}  // namespace detail

namespace {

using detail::TaskKind;

constexpr std::string_view kDigitSymbols = "0123456789=_";
constexpr std::string_view kAddSymbols = "0123456789+=_";
constexpr std::string_view kRecallSymbols = "0123456789abcdefghijklmnopqrstuvwxyz?=_";
constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyz";
// Fewer distinct problems than this and a 10% held-out split is a handful of examples.
constexpr double kMinProblems = 1000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return c >= 'a' && c <= 'z'; }

std::string random_digits(std::int64_t n, Generator& gen) {
    std::string s(static_cast<std::size_t>(n), '0');
    for (char& c : s) c = static_cast<char>('0' + gen.below(10));
    return s;
}

// "" when s is exactly n digits, else why not.
std::string check_digits(std::string_view s, std::int64_t n, std::string_view what) {
    if (static_cast<std::int64_t>(s.size()) != n)
        return fmt::format("{} must have {} digits, got {}", what, n, s.size());
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!is_digit(s[i])) return fmt::format("{} has '{}' at position {}, expected a digit", what, s[i], i);
    return "";
}

// ---- copy, reverse, sort: L digits in, L digits out ------------------------------------------

double digits_count(std::int64_t L) { return std::pow(10.0, static_cast<double>(L)); }
std::int64_t same_length(std::int64_t L) { return L; }
std::string draw_digits(std::int64_t L, Generator& gen) { return random_digits(L, gen); }
std::string check_plain_digits(std::string_view p, std::int64_t L) { return check_digits(p, L, "the prompt"); }

std::string solve_copy(std::string_view p, bool) { return std::string(p); }
std::string solve_reverse(std::string_view p, bool) { return std::string(p.rbegin(), p.rend()); }
std::string solve_sort(std::string_view p, bool) {
    std::string s(p);
    std::sort(s.begin(), s.end());  // '0' < '1' < ... < '9' in ASCII, so this sorts by value
    return s;
}

// ---- add: "a+b" with n-digit operands, answer n+1 digits -------------------------------------

double add_count(std::int64_t n) { return std::pow(10.0, 2.0 * static_cast<double>(n)); }
std::int64_t add_prompt_length(std::int64_t n) { return 2 * n + 1; }
std::int64_t add_answer_length(std::int64_t n) { return n + 1; }
std::string draw_add(std::int64_t n, Generator& gen) {
    // Two draws, in an order fixed by two statements: in `draw() + '+' + draw()` the order of the
    // calls is unspecified, and g++ picked the right operand first on x86-64 but the left one on
    // AArch64, so the same seed gave other problems there. This is x86-64's order, kept so that
    // every recorded sample and result stays as it was.
    const std::string right = random_digits(n, gen);
    const std::string left = random_digits(n, gen);
    return left + '+' + right;
}

std::string check_add(std::string_view p, std::int64_t n) {
    const auto plus = static_cast<std::size_t>(n);
    if (static_cast<std::int64_t>(p.size()) != 2 * n + 1 || p[plus] != '+')
        return fmt::format("the prompt must be {} digits, '+', {} digits", n, n);
    const std::string a = check_digits(p.substr(0, plus), n, "the first operand");
    return a.empty() ? check_digits(p.substr(plus + 1), n, "the second operand") : a;
}

// Schoolbook addition from the right, so operands of any width add exactly (no integer overflow).
// The sum is padded to n+1 digits: every example then has the same length.
std::string solve_add(std::string_view p, bool reversed) {
    const std::size_t n = p.size() / 2;
    const std::string_view a = p.substr(0, n), b = p.substr(n + 1);
    std::string sum(n + 1, '0');
    int carry = 0;
    for (std::size_t i = n; i-- > 0;) {
        const int d = (a[i] - '0') + (b[i] - '0') + carry;
        sum[i + 1] = static_cast<char>('0' + d % 10);
        carry = d / 10;
    }
    sum[0] = static_cast<char>('0' + carry);
    if (reversed) std::reverse(sum.begin(), sum.end());
    return sum;
}

// ---- recall: "k1v1k2v2...kKvK?k" → the value stored under k -----------------------------------

// Ordered choices of K distinct keys out of 26, times 10^K values, times K possible queries.
double recall_count(std::int64_t K) {
    double keys = 1;
    for (std::int64_t i = 0; i < K; ++i) keys *= static_cast<double>(26 - i);
    return keys * std::pow(10.0, static_cast<double>(K)) * static_cast<double>(K);
}
std::int64_t recall_prompt_length(std::int64_t K) { return 2 * K + 2; }
std::int64_t one_token(std::int64_t) { return 1; }

std::string draw_recall(std::int64_t K, Generator& gen) {
    // A partial Fisher–Yates shuffle picks K distinct letters, uniformly and in random order.
    std::string letters(kLetters);
    std::string p;
    for (std::int64_t i = 0; i < K; ++i) {
        const auto j = static_cast<std::size_t>(i) + gen.below(static_cast<std::uint64_t>(26 - i));
        std::swap(letters[static_cast<std::size_t>(i)], letters[j]);
        p += letters[static_cast<std::size_t>(i)];
        p += static_cast<char>('0' + gen.below(10));
    }
    p += '?';
    p += letters[gen.below(static_cast<std::uint64_t>(K))];
    return p;
}

std::string check_recall(std::string_view p, std::int64_t K) {
    const auto pairs = static_cast<std::size_t>(2 * K);
    if (static_cast<std::int64_t>(p.size()) != 2 * K + 2 || p[pairs] != '?')
        return fmt::format("the prompt must be {} letter-digit pairs, '?', a letter", K);
    std::array<bool, 26> seen{};
    for (std::size_t i = 0; i < pairs; i += 2) {
        if (!is_letter(p[i]) || !is_digit(p[i + 1]))
            return fmt::format("pair {} is \"{}\", expected a letter a-z then a digit", i / 2, p.substr(i, 2));
        if (std::exchange(seen[static_cast<std::size_t>(p[i] - 'a')], true))
            return fmt::format("key '{}' appears twice; keys must be distinct", p[i]);
    }
    const char query = p[pairs + 1];
    if (!is_letter(query) || !seen[static_cast<std::size_t>(query - 'a')])
        return fmt::format("the queried key '{}' is not among the keys", query);
    return "";
}

std::string solve_recall(std::string_view p, bool) {
    const char query = p.back();
    for (std::size_t i = 0; i + 1 < p.size(); i += 2)
        if (p[i] == query) return std::string(1, p[i + 1]);
    fail("recall: the queried key '{}' is not among the keys of \"{}\"", query, p);
}

// The table. Maximum lengths keep sequences within what a toy model can hold (and 26 letters).
const std::array<TaskKind, 5> kKinds = {{
    {"copy", kDigitSymbols, "digits", "repeat the digits", 16, 256, digits_count, same_length, same_length,
     draw_digits, check_plain_digits, solve_copy},
    {"reverse", kDigitSymbols, "digits", "write the digits in reverse order", 16, 256, digits_count, same_length,
     same_length, draw_digits, check_plain_digits, solve_reverse},
    {"sort", kDigitSymbols, "digits", "write the digits in ascending order", 6, 256, digits_count, same_length,
     same_length, draw_digits, check_plain_digits, solve_sort},
    {"add", kAddSymbols, "digits per operand", "", 3, 64, add_count, add_prompt_length, add_answer_length, draw_add,
     check_add, solve_add},
    {"recall", kRecallSymbols, "key-value pairs", "the digit stored under the queried key", 8, 26, recall_count,
     recall_prompt_length, one_token, draw_recall, check_recall, solve_recall},
}};

std::string valid_names() {
    std::string s;
    for (const auto& k : kKinds) s += fmt::format("{}{}", s.empty() ? "" : ", ", k.name);
    return s;
}

const TaskKind& find_kind(std::string_view who, std::string_view name) {
    for (const auto& k : kKinds)
        if (k.name == name) return k;
    fail("{}: unknown task '{}'; valid tasks are: {}", who, name, valid_names());
}

// Smallest length with enough problems to split; used to suggest a fix in the error message.
std::int64_t min_length(const TaskKind& k) {
    std::int64_t L = 1;
    while (L < k.max_length && k.problem_count(L) < kMinProblems) ++L;
    return L;
}

}  // namespace

const std::vector<std::string>& task_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& k : kKinds) v.emplace_back(k.name);
        return v;
    }();
    return names;
}

std::int64_t default_length(std::string_view name) { return find_kind("default_length", name).default_length; }

std::unique_ptr<Task> make_task(const TaskConfig& config) {
    const TaskKind& kind = find_kind("make_task", config.name);
    TaskConfig c = config;
    if (c.length == 0) c.length = kind.default_length;
    if (c.length < 0 || c.length > kind.max_length)
        fail("make_task: {} length {} is out of range: it counts {} and must be in [{}, {}] (0 = default {})",
             c.name, c.length, kind.unit, min_length(kind), kind.max_length, kind.default_length);
    if (const double count = kind.problem_count(c.length); count < kMinProblems)
        fail("make_task: {} with length {} has only {} distinct problems; a train/held-out split needs at least {} "
             "(use length >= {})",
             c.name, c.length, count, kMinProblems, min_length(kind));
    return std::make_unique<Task>(c, kind);
}

// ---- Task -------------------------------------------------------------------------------------

/// \cond INTERNAL
Task::Task(TaskConfig config, const detail::TaskKind& kind)
    : config_(std::move(config)),
      kind_(&kind),
      vocab_(kind.symbols),
      prompt_length_(kind.prompt_length(config_.length)),
      answer_length_(kind.answer_length(config_.length)) {}
/// \endcond

double Task::problem_count() const { return kind_->problem_count(config_.length); }

std::string Task::description() const {
    // The example comes from a fixed seed, so the description never changes between runs.
    Generator gen(0);
    const std::string prompt = draw_prompt(gen);
    const std::string rule =
        kind_->name != "add" ? std::string(kind_->rule)
        : config_.reversed   ? fmt::format("their sum in {} digits, least significant digit first", length() + 1)
                             : fmt::format("their sum in {} digits, most significant digit first", length() + 1);
    return fmt::format("{} {} {}: {} (e.g. {}{}{})", name(), length(), kind_->unit, rule, prompt, kSep, solve(prompt));
}

std::string Task::draw_prompt(Generator& gen) const { return kind_->draw(config_.length, gen); }

std::string Task::solve(std::string_view prompt) const {
    if (const std::string why = kind_->check(prompt, config_.length); !why.empty())
        fail("{}: invalid prompt \"{}\": {}", name(), prompt, why);
    return kind_->solve(prompt, config_.reversed);
}

Example Task::example(std::string_view prompt) const {
    Example ex;
    ex.tokens = vocab_.encode(std::string(prompt) + kSep + solve(prompt));
    ex.prompt_length = prompt_length_;
    return ex;
}

// Rejection sampling: drawing uniformly and discarding the other split's prompts leaves a
// uniform draw from this split. Held-out is ~10% of problems, so ~10 tries on average.
Example Task::sample(Split split, Generator& gen) const {
    for (;;) {
        const std::string prompt = draw_prompt(gen);
        if (split_of(prompt) == split) return example(prompt);
    }
}

}  // namespace qkv::data
