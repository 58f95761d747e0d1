/// \file
/// \brief qkv::Error, the one exception type qkv throws for bad input.
///
/// Every op checks its arguments before touching memory and, when they are wrong, throws
/// qkv::Error with a message that names the op and the offending shapes, dtypes or values, for
/// example `matmul: inner dimensions differ: (2,3) @ (4,5)`. Programs catch it in `main`, print the
/// message and exit non-zero; nothing asserts or aborts on user input.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace qkv {

/// The exception thrown for every user-facing error (bad shapes, dtypes, values, files, flags).
class Error : public std::runtime_error {
public:
    /// \param message what went wrong, starting with the op or function name
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// \brief Thrown when memory cannot be allocated (a tensor, a model): a qkv::Error whose message
/// says how much was asked for and what to change, instead of a bare `std::bad_alloc`.
class OutOfMemory : public Error {
public:
    /// \param message what could not be allocated, how much, and what to change
    /// \param bytes the size of the allocation that failed
    OutOfMemory(const std::string& message, std::uint64_t bytes) : Error(message), bytes_(bytes) {}
    /// \brief The size of the allocation that failed.
    /// \return the number of bytes asked for
    std::uint64_t bytes() const { return bytes_; }

private:
    std::uint64_t bytes_;
};

/// \brief Throw qkv::Error with a fmt-formatted message.
/// \param format fmt format string
/// \param args values to format
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace qkv
