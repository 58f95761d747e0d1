/// \file
/// \brief Runs a grader under ctest and checks *both* its exit status and its output.
///
/// ctest's PASS_REGULAR_EXPRESSION ignores the exit status, so a test that expects a grader to fail
/// could pass on a grader that crashed after printing the right words, or on one that printed them
/// and then passed. This runner demands both: `lab_expect fail --contains "hint text" -- grader`
/// passes only when the grader exits non-zero (and was not killed by a signal) and its output holds
/// every given text (runs of whitespace, such as a wrapped line, count as one space);
/// `lab_expect pass ...` demands exit status 0.
#include <array>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

std::string quote(const std::string& arg) {
    std::string q = "'";
    for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Whitespace runs (line breaks and the indentation of wrapped report lines) count as one space, so
// a hint is found however the report wrapped it.
std::string squeeze(const std::string& s) {
    std::string out;
    for (char c : s) {
        const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
        if (!space) out += c;
        else if (!out.empty() && out.back() != ' ') out += ' ';
    }
    return out;
}

int usage() {
    std::cerr << "usage: lab_expect pass|fail [--contains TEXT]... -- program [args...]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return usage();
    const std::string want = argv[1];
    if (want != "pass" && want != "fail") return usage();
    std::vector<std::string> texts;
    int i = 2;
    for (; i < argc && std::string(argv[i]) != "--"; ++i) {
        if (std::string(argv[i]) != "--contains" || i + 1 >= argc) return usage();
        texts.emplace_back(argv[++i]);
    }
    if (i + 1 >= argc) return usage();
    std::string cmd;
    for (int j = i + 1; j < argc; ++j) cmd += quote(argv[j]) + " ";
    FILE* p = popen((cmd + "2>&1").c_str(), "r");
    if (!p) {
        std::cerr << "lab_expect: cannot run " << cmd << "\n";
        return 2;
    }
    std::string out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), int(buf.size()), p)) out += buf.data();
    const int status = pclose(p);
    std::cout << out;
    bool ok = true;
    if (!WIFEXITED(status)) {
        std::cout << "\nlab_expect: the program did not exit normally (killed by a signal?)\n";
        return 1;
    }
    const int code = WEXITSTATUS(status);
    if ((want == "pass") != (code == 0)) {
        std::cout << "\nlab_expect: expected the program to " << want << ", but its exit status is " << code << "\n";
        ok = false;
    }
    for (const auto& t : texts) {
        if (squeeze(out).find(squeeze(t)) == std::string::npos) {
            std::cout << "\nlab_expect: the output does not contain: " << t << "\n";
            ok = false;
        }
    }
    if (ok) std::cout << "\nlab_expect: exit status " << code << " and all " << texts.size() << " texts found, as expected\n";
    return ok ? 0 : 1;
}
