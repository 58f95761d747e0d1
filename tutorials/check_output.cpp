/// \file
/// \brief Runs a tutorial and checks its output against the "Expected output:" block of its README.
///
/// This is what keeps the tutorials honest: the output a page promises is the output the program
/// prints, or ctest fails. Usage: `check_output README.md program [args...]`.
/// In the expected block, a line `...` skips any number of output lines, and `<any>` inside a line
/// matches any text (for timings and other numbers that vary between machines). Every other line
/// must match the next output line exactly.
///
/// `check_output --first N README.md program [args...]` holds the program to the first N lines of
/// the block only: for a documented shorter run of a tutorial (tutorial 16 with `--max-t 512`, as
/// the suite under qemu runs it), whose output is the beginning of the full one.
///
/// `check_output --marker TEXT README.md program [args...]` uses the block after the line that
/// starts with TEXT instead of "Expected output:": a README's second expected output, for another
/// documented way to run the program (the training tutorials' `--steps 20`).
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> expected_block(const std::string& readme, const std::string& marker) {
    std::ifstream in(readme);
    if (!in) throw std::runtime_error("cannot open " + readme);
    std::vector<std::string> lines;
    std::string line;
    bool seen_marker = false, inside = false;
    while (std::getline(in, line)) {
        if (!seen_marker) {
            seen_marker = line.rfind(marker, 0) == 0;
        } else if (!inside) {
            inside = line.rfind("```", 0) == 0;
        } else {
            if (line.rfind("```", 0) == 0) return lines;
            lines.push_back(line);
        }
    }
    throw std::runtime_error(readme + ": no '" + marker + "' line followed by a ``` fenced block");
}

std::vector<std::string> run(const std::vector<std::string>& argv) {
    std::string cmd;
    for (const auto& a : argv) cmd += "'" + a + "' ";
    FILE* p = popen((cmd + "2>&1").c_str(), "r");
    if (!p) throw std::runtime_error("cannot run " + cmd);
    std::string out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), int(buf.size()), p)) out += buf.data();
    const int status = pclose(p);
    if (status != 0) {
        std::cerr << out << "\ncheck_output: the program exited with status " << status << "\n";
        std::exit(1);
    }
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= out.size(); ++i) {
        if (i == out.size() || out[i] == '\n') {
            if (i > start || i < out.size()) lines.push_back(out.substr(start, i - start));
            start = i + 1;
        }
    }
    return lines;
}

// An expected line with <any> wildcards: the literal pieces must appear in order, the first at the
// start of the line and the last at its end. (Plain string search: std::regex trips GCC 12's
// -Wmaybe-uninitialized under the sanitizers.)
bool line_matches(const std::string& expected, const std::string& actual) {
    std::vector<std::string> parts;
    for (std::size_t pos = 0;;) {
        const std::size_t at = expected.find("<any>", pos);
        parts.push_back(expected.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
        if (at == std::string::npos) break;
        pos = at + 5;
    }
    if (parts.size() == 1) return expected == actual;
    const std::string& first = parts.front();
    const std::string& last = parts.back();
    if (actual.size() < first.size() + last.size() || actual.compare(0, first.size(), first) != 0 ||
        actual.compare(actual.size() - last.size(), last.size(), last) != 0)
        return false;
    std::size_t at = first.size();
    const std::size_t limit = actual.size() - last.size();
    for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
        at = actual.find(parts[i], at);
        if (at == std::string::npos || at + parts[i].size() > limit) return false;
        at += parts[i].size();
    }
    return true;
}

// Match expected lines against actual lines; "..." skips. Returns the first unmatched expected line.
bool match_from(const std::vector<std::string>& exp, std::size_t e, const std::vector<std::string>& act,
                std::size_t a, std::size_t& worst) {
    worst = std::max(worst, e);
    if (e == exp.size()) return true;
    if (exp[e] == "...") {
        for (std::size_t k = a; k <= act.size(); ++k)
            if (match_from(exp, e + 1, act, k, worst)) return true;
        return false;
    }
    return a < act.size() && line_matches(exp[e], act[a]) && match_from(exp, e + 1, act, a + 1, worst);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t first = 0;  // 0: the whole block
    std::string marker = "Expected output:";
    int arg = 1;
    bool usage_ok = true;
    while (argc - arg >= 2 && (std::string(argv[arg]) == "--first" || std::string(argv[arg]) == "--marker")) {
        if (std::string(argv[arg]) == "--first") {
            char* end = nullptr;
            first = std::strtoul(argv[arg + 1], &end, 10);
            if (*end != '\0' || first == 0) usage_ok = false;  // not a positive number
        } else {
            marker = argv[arg + 1];
            if (marker.empty()) usage_ok = false;
        }
        arg += 2;
    }
    if (argc - arg < 2 || !usage_ok) {
        std::cerr << "usage: check_output [--first N] [--marker TEXT] README.md program [args...]\n";
        return 2;
    }
    try {
        auto exp = expected_block(argv[arg], marker);
        if (first > exp.size())
            throw std::runtime_error(std::string(argv[arg]) + ": --first " + std::to_string(first) +
                                     " but the expected block has " + std::to_string(exp.size()) + " lines");
        if (first > 0) exp.resize(first);
        const auto act = run(std::vector<std::string>(argv + arg + 1, argv + argc));
        std::size_t worst = 0;
        if (match_from(exp, 0, act, 0, worst)) {
            std::cout << "check_output: all " << exp.size() << " expected lines matched\n";
            return 0;
        }
        std::cerr << "check_output: output differs from " << argv[arg] << "\nfirst expected line not matched:\n  "
                  << (worst < exp.size() ? exp[worst] : "") << "\nactual output:\n";
        for (const auto& l : act) std::cerr << "  " << l << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "check_output: " << e.what() << "\n";
        return 2;
    }
}
