/// \file
/// \brief SPOILER support: switches that turn a reference solution into a plausible wrong one.
///
/// The test suite proves every grader can fail: it runs the reference solution with the
/// environment variable `QKV_LAB_MUTANT` naming one known mistake (`no_max`, `no_scale`, ...), and
/// the solution then makes exactly that mistake, at the line marked `mutant("no_max")`. The grader
/// must reject it *with the hint written for that mistake*. A runtime switch, rather than one
/// compiled variant per mistake, keeps the build to one object per solution.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

namespace lab {

/// \brief True when the tests asked this solution to make the mistake \p name.
/// \param name the mistake, as listed in tutorials/labs/CMakeLists.txt
/// \return whether `QKV_LAB_MUTANT` equals \p name
inline bool mutant(std::string_view name) {
    static const std::string chosen = [] {
        const char* m = std::getenv("QKV_LAB_MUTANT");
        return std::string(m ? m : "");
    }();
    return chosen == name;
}

}  // namespace lab
