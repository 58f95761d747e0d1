/// \file
/// \brief Flag parsing with clear messages for every mistake.
///
/// A reader learns here how to read flags without ever guessing. Each word must be a known `--name`;
/// a flag that takes a value consumes the next word; anything else — a stray word, an unknown or
/// misspelled flag, a missing value — is a UsageError that names it and points at
/// `qkv <command> --help`. Numbers must be parsed in full (`12x` is an error, not 12) and lie in the
/// range the caller gives, and the message names the flag, the value and that range.
#include "args.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace qkv::cli {

Args::Args(const std::string& command, const std::vector<std::string>& argv, const std::vector<Flag>& flags)
    : command_(command) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.rfind("--", 0) != 0)
            throw UsageError(fmt::format("unexpected argument '{}' (see 'qkv {} --help')", a, command));
        const std::string name(a.begin() + 2, a.end());
        const auto f = std::find_if(flags.begin(), flags.end(), [&](const Flag& x) { return x.name == name; });
        if (f == flags.end()) throw UsageError(fmt::format("unknown option '{}' (see 'qkv {} --help')", a, command));
        if (!f->takes_value) {
            values_.insert_or_assign(name, std::string(1, '1'));  // (= "1" trips a GCC 12 -Wrestrict false positive)
            continue;
        }
        if (i + 1 >= argv.size()) throw UsageError(fmt::format("option '{}' needs a value", a));
        values_[name] = argv[++i];
    }
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

long long Args::integer(const std::string& name, long long fallback, long long lo, long long hi) const {
    if (!has(name)) return fallback;
    const std::string& s = values_.at(name);
    long long v = 0;
    try {
        std::size_t used = 0;
        v = std::stoll(s, &used);
        if (used != s.size()) throw std::invalid_argument(s);
    } catch (const std::exception&) {
        throw UsageError(fmt::format("--{}: expected an integer, got '{}'", name, s));
    }
    if (v < lo || v > hi) throw UsageError(fmt::format("--{}: {} is out of range [{}, {}]", name, v, lo, hi));
    return v;
}

std::uint64_t Args::unsigned_integer(const std::string& name, std::uint64_t fallback) const {
    if (!has(name)) return fallback;
    const std::string& s = values_.at(name);
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
        throw UsageError(fmt::format("--{}: expected an integer in [0, {}], got '{}'", name,
                                     std::numeric_limits<std::uint64_t>::max(), s));
    return v;
}

double Args::real(const std::string& name, double fallback, double lo, double hi) const {
    if (!has(name)) return fallback;
    const std::string& s = values_.at(name);
    double v = 0;
    try {
        std::size_t used = 0;
        v = std::stod(s, &used);
        if (used != s.size()) throw std::invalid_argument(s);
    } catch (const std::exception&) {
        throw UsageError(fmt::format("--{}: expected a number, got '{}'", name, s));
    }
    if (!(v >= lo && v <= hi)) throw UsageError(fmt::format("--{}: {} is out of range [{}, {}]", name, v, lo, hi));
    return v;
}

}  // namespace qkv::cli
