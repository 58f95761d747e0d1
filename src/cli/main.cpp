/// \file
/// \brief The `qkv` command: train a tiny transformer on a toy task, then look inside it.
///
/// `qkv train` (no arguments) trains the default model — a 2-layer, 4-head GPT with d_model 64 —
/// to reverse strings of 16 digits, until it gets every held-out example right. `qkv eval`,
/// `qkv sample` and `qkv attention` load the checkpoint it saved. Errors in the command line exit
/// with status 2, other errors with status 1, always with a message on stderr.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include <fmt/core.h>

#include "args.hpp"
#include "commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: qkv <command> [options]

Train tiny transformers on toy sequence tasks or on your own text, and look inside them.

commands:
  train      train a GPT on a task (default: reverse 16 digits) until 100% held-out accuracy,
             or with --text FILE a language model on a text of your own
  eval       held-out exact-match accuracy of a saved model
  sample     show a saved model's answers to prompts, or stream text from a text model
  attention  show a saved model's attention weights (terminal heatmaps and an SVG file)
  export     write a saved model's weights under PyTorch's names
  import     make a checkpoint of a GPT saved by PyTorch
  help       show this message

Run 'qkv <command> --help' for the options of a command.
)";

}  // namespace

namespace {

// Run one subcommand; errors become a message on stderr and the exit status.
int run(const std::string& cmd, const std::vector<std::string>& rest) {
    try {
        if (cmd == "help" || cmd == "--help" || cmd == "-h") {
            qkv::cli::say("{}", kUsage);
            return 0;
        }
        if (cmd == "train") return qkv::cli::train_command(rest);
        if (cmd == "eval") return qkv::cli::eval_command(rest);
        if (cmd == "sample") return qkv::cli::sample_command(rest);
        if (cmd == "attention") return qkv::cli::attention_command(rest);
        if (cmd == "export") return qkv::cli::export_command(rest);
        if (cmd == "import") return qkv::cli::import_command(rest);
        fmt::print(stderr, "qkv: unknown command '{}'\n\n{}", cmd, kUsage);
        return 2;
    } catch (const qkv::cli::UsageError& e) {
        fmt::print(stderr, "qkv {}: {}\n", cmd, e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        // qkv's own allocations report themselves (qkv::OutOfMemory, with sizes); this is the rest.
        fmt::print(stderr, "qkv {}: error: out of memory (std::bad_alloc): make the model, batch or evaluation "
                           "smaller, or free memory\n", cmd);
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "qkv {}: error: {}\n", cmd, e.what());
        return 1;
    }
}

}  // namespace

/// \brief The `qkv` command: dispatch to a subcommand; qkv::Error exits 1, bad command-line use exits 2.
/// Output that could not be written (stdout closed, a full disk) is an error too (exit status 1).
/// \param argc number of entries of \p argv
/// \param argv the program name, the subcommand, then its arguments
/// \return the exit status: 0 on success, 1 on an error (or a training run that missed its target),
/// 2 on bad command-line use
int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        fmt::print(stderr, "{}", kUsage);
        return 2;
    }
    const std::string& cmd = args[0];
    // A closed standard output would lose every result, and the first file qkv opens would take its
    // number, 1, and receive the output meant for the terminal. Refuse at once, before any work.
    if (::fcntl(STDOUT_FILENO, F_GETFD) == -1 && errno == EBADF) {
        fmt::print(stderr, "qkv {}: error: standard output is closed, so nothing could be reported; run it with "
                           "standard output open (redirect it to /dev/null to discard it)\n", cmd);
        return 1;
    }
    int status = run(cmd, std::vector<std::string>(args.begin() + 1, args.end()));
    // Output still in the buffer is written now; a write that failed now or earlier (say() keeps
    // going, the error flag stays set) means the user did not get what the command printed.
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        fmt::print(stderr, "qkv {}: error: cannot write to standard output{}{}; its output is lost\n", cmd,
                   errno ? ": " : "", errno ? std::strerror(errno) : "");
        if (status == 0) status = 1;
    }
    return status;
}
