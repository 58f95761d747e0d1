/// \file
/// \brief What every lab shares: the exception a stub throws until you write the function.
///
/// Each lab's header includes this file. A stub's body is one line,
/// `throw NotImplemented("softmax_forward");`; the grader catches it and reports the part as
/// "not implemented yet" (not as a failure), so you can solve a lab one function at a time and
/// watch the scoreboard fill up.
#pragma once

#include <string>

#include <qkv/qkv.hpp>

namespace lab {

/// \brief Thrown by a function you have not written yet. Replace the `throw` with your code.
///
/// It derives from qkv::Error so that a program which catches qkv's errors also catches it.
class NotImplemented : public qkv::Error {
public:
    /// \param function the name of the unwritten function, as the grader will report it
    explicit NotImplemented(const std::string& function)
        : qkv::Error("not implemented yet: " + function), function_(function) {}
    /// \brief The unwritten function's name.
    /// \return the name given to the constructor
    const std::string& function() const { return function_; }

private:
    std::string function_;
};

}  // namespace lab
