/// \file
/// \brief `build/tutorials/labs/grade`: where you stand in the labs, in one command.
///
///     grade          every lab: rebuild its grader from your lab.cpp, run it, print a scoreboard
///     grade 6        lab 6 only, in detail: every part, the first wrong element, the hint
///     grade --no-build [N]   run the graders as they are (do not invoke the build first)
///
/// Each lab's grader is its own executable (`labNN`), built from your `lab.cpp` on demand and left
/// out of the default build, so a lab you are half-way through — even one that does not compile —
/// never stops the others from being graded, nor the project's build and tests.
/// (`--variant solution` / `--variant stub` grade the reference solutions or the pristine stubs;
/// the test suite uses them to check this program.)
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vector>

#include <fmt/format.h>

namespace {

struct Lab {
    std::string number;  // "05"
    std::string folder;  // "05_softmax"
    std::string title;   // "numerically stable softmax"
};

struct Run {
    int status = 0;  // exit status, or 128 + signal
    std::string output;
};

std::string quote(const std::string& arg) {
    std::string q = "'";
    for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

int exit_status(int raw) {
    if (raw == -1) return 127;
    if (WIFEXITED(raw)) return WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
    return 1;
}

Run capture(const std::string& cmd) {
    Run r;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return {127, "cannot run " + cmd};
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), int(buf.size()), p)) r.output += buf.data();
    r.status = exit_status(pclose(p));
    return r;
}

bool exists(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0;
}

std::vector<Lab> read_labs(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read the list of labs " + path + " (re-run cmake)");
    std::vector<Lab> labs;
    std::string line;
    while (std::getline(in, line)) {
        const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
        if (t1 == std::string::npos || t2 == std::string::npos) continue;
        labs.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)});
    }
    return labs;
}

// The value after "KEY: " on the line that starts with it, or "".
std::string field(const std::string& out, const std::string& key) {
    const auto at = out.rfind(key + ": ");
    if (at == std::string::npos || (at > 0 && out[at - 1] != '\n')) return "";
    const auto from = at + key.size() + 2;
    return out.substr(from, out.find('\n', from) - from);
}

struct Options {
    bool build = true;
    std::string variant;  // "" = the learner's lab.cpp; else "solution", "stub", ...
    std::string only;     // lab number, or "" for all
};

std::string target_of(const Lab& lab, const Options& o) {
    return "lab" + lab.number + (o.variant.empty() ? "" : "_" + o.variant);
}

// How to run one of this build's programs: directly, or through the emulator of a cross-compiled
// build (QKV_LABS_RUNNER, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"; empty natively).
std::string run_command(const std::string& exe) {
    const std::string runner = QKV_LABS_RUNNER;
    return runner.empty() ? quote(exe) : runner + " " + quote(exe);
}

std::string build_command(const std::string& target) {
    return fmt::format("{} --build {} --target {}", quote(QKV_CMAKE_COMMAND), quote(QKV_BUILD_ROOT), target);
}

int usage() {
    std::cerr << "usage: grade [--no-build] [N]\n"
                 "  grade      every lab: a scoreboard (passed / not yet / failing)\n"
                 "  grade N    lab N in detail: the first wrong element of each part and a hint\n";
    return 2;
}

// One lab in detail: build (showing the compiler's messages), run with the grader's full output.
int detail(const Lab& lab, const Options& o) {
    const std::string target = target_of(lab, o);
    const std::string exe = std::string(QKV_LABS_BIN) + "/" + target;
    fmt::print("lab {}: {}  (tutorials/labs/{}/README.md)\n", lab.number, lab.title, lab.folder);
    if (o.build && o.variant.empty()) {
        std::fflush(stdout);
        if (exit_status(std::system(build_command(target).c_str())) != 0) {
            fmt::print("\nlab {}: your tutorials/labs/{}/lab.cpp does not compile (the compiler's messages are above)\n",
                       lab.number, lab.folder);
            return 1;
        }
    }
    if (!exists(exe)) {
        fmt::print("lab {}: not built; build it with\n  {}\n", lab.number, build_command(target));
        return 1;
    }
    std::fflush(stdout);
    const int status = exit_status(std::system(run_command(exe).c_str()));
    if (status > 128) fmt::print("\nlab {}: the grader was killed by signal {} (a crash in lab.cpp?)\n", lab.number, status - 128);
    // The matmul lab also measures speed, once the kernels are right.
    const std::string speed = std::string(QKV_LABS_BIN) + "/lab" + lab.number + "_speed" +
                              (o.variant.empty() ? "" : "_" + o.variant);
    if (status == 0 && exists(speed)) {
        fmt::print("\n");
        std::fflush(stdout);
        std::system(run_command(speed).c_str());
    }
    return status == 0 ? 0 : 1;
}

// Every lab, one row each.
int scoreboard(const std::vector<Lab>& labs, const Options& o) {
    fmt::print("qkv labs{}: where you stand\n\n", o.variant.empty() ? "" : " (" + o.variant + ")");
    fmt::print("  {:<4} {:<46} {:<18} {}\n", "lab", "topic", "status", "parts");
    int passed = 0;
    const Lab* next = nullptr;
    for (const Lab& lab : labs) {
        const std::string target = target_of(lab, o);
        const std::string exe = std::string(QKV_LABS_BIN) + "/" + target;
        std::string status, parts, note;
        if (o.build && o.variant.empty() && capture(build_command(target)).status != 0) {
            status = "does not compile";
            note = fmt::format("`grade {}` shows the compiler's messages", std::stoi(lab.number));
        } else if (!exists(exe)) {
            status = "not built";
            note = build_command(target);
        } else {
            const Run r = capture(run_command(exe));
            const std::string result = field(r.output, "LAB RESULT");
            const auto comma = result.find(", ");
            if (result.empty() || r.status > 128) {
                status = "crashed";
                note = r.status > 128 ? fmt::format("killed by signal {}", r.status - 128) : "no result line";
            } else {
                status = result.substr(0, comma);
                parts = comma == std::string::npos ? "" : result.substr(comma + 2);
                note = field(r.output, "LAB FIRST FAILURE");
            }
        }
        if (status == "passed") ++passed;
        else if (!next) next = &lab;
        fmt::print("  {:<4} {:<46} {:<18} {}\n", lab.number, lab.title, status, parts);
        if (!note.empty()) fmt::print("         {}\n", note.size() > 110 ? note.substr(0, 107) + "..." : note);
    }
    fmt::print("\n{} of {} labs pass.\n", passed, labs.size());
    if (next)
        fmt::print("Next: lab {}. Read tutorials/labs/{}/README.md, edit its lab.cpp, then run `grade {}`.\n",
                   std::stoi(next->number), next->folder, std::stoi(next->number));
    return passed == int(labs.size()) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--no-build") o.build = false;
        else if (a == "--variant" && i + 1 < argc) o.variant = argv[++i], o.build = false;
        else if (a == "-h" || a == "--help") return usage(), 0;
        else if (!a.empty() && a.find_first_not_of("0123456789") == std::string::npos && o.only.empty()) o.only = a;
        else return usage();
    }
    try {
        const std::vector<Lab> labs = read_labs(std::string(QKV_LABS_BIN) + "/labs.txt");
        if (o.only.empty()) return scoreboard(labs, o);
        for (const Lab& lab : labs)
            if (std::stoi(lab.number) == std::stoi(o.only)) return detail(lab, o);
        std::cerr << "grade: there is no lab " << o.only << " (labs 1 to " << labs.size() << ")\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "grade: " << e.what() << "\n";
        return 1;
    }
}
