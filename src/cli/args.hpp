/// \file
/// \brief A small command-line flag parser for the `qkv` command: `--name value` and `--switch`.
///
/// A reader learns here how little a command-line parser needs: each subcommand lists the flags it
/// accepts (a name, and whether a value follows), Args checks argv against that list once, and typed
/// accessors read a value with a fallback and an allowed range. Only `--name value` and `--switch`
/// are understood (no `--name=value`, no short options; wants_help() looks for `-h` and `--help`
/// before parsing). Bad use throws UsageError, which main() reports with exit status 2, not 1.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qkv/error.hpp"

namespace qkv::cli {

/// Thrown for bad command-line use; the program prints it and exits with status 2.
struct UsageError : Error {
    using Error::Error;
};

/// One flag a subcommand accepts.
struct Flag {
    std::string name;         ///< without the dashes, e.g. "steps"
    bool takes_value = true;  ///< `--steps 100` (true) or `--quiet` (false)
};

/// The parsed flags of one subcommand.
class Args {
public:
    /// \brief Parse \p argv against \p flags; unknown flags, missing values and stray words are
    /// UsageError naming the flag and pointing at `qkv <command> --help`.
    /// \param command the subcommand (for messages) \param argv its arguments \param flags accepted flags
    Args(const std::string& command, const std::vector<std::string>& argv, const std::vector<Flag>& flags);
    /// \brief True when the flag was given. \param name flag name
    /// \return whether `--name` appeared on the command line
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    /// \brief String value or \p fallback. \param name flag name \param fallback default
    /// \return the flag's value, or \p fallback when it was not given
    std::string str(const std::string& name, const std::string& fallback) const;
    /// \brief Integer value in [lo, hi] or \p fallback. \param name flag \param fallback default
    /// \param lo smallest allowed \param hi largest allowed
    /// \return the flag's value, or \p fallback when it was not given (UsageError when it is not a
    /// whole number or outside [lo, hi])
    long long integer(const std::string& name, long long fallback, long long lo, long long hi) const;
    /// \brief Unsigned 64-bit value (any, from 0 to 2^64 − 1) or \p fallback: for seeds.
    /// \param name flag \param fallback default
    /// \return the flag's value, or \p fallback when it was not given (UsageError when it is not a
    /// whole number in that range)
    std::uint64_t unsigned_integer(const std::string& name, std::uint64_t fallback) const;
    /// \brief Real value in [lo, hi] or \p fallback. \param name flag \param fallback default
    /// \param lo smallest allowed \param hi largest allowed
    /// \return the flag's value, or \p fallback when it was not given (UsageError when it is not a
    /// number or outside [lo, hi])
    double real(const std::string& name, double fallback, double lo, double hi) const;

private:
    std::string command_;
    std::map<std::string, std::string> values_;
};

}  // namespace qkv::cli
