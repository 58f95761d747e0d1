/// \file
/// \brief Small helpers shared by the test files of issue 16 (limits, run safety, anomaly mode,
/// fuzz regressions): a temporary directory, whole-file reads and writes, a hand-made safetensors
/// file, and running the `qkv` command as a child process.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace qkv::test {

/// A fresh directory for one test, removed (with everything in it) afterwards.
struct TempDir {
    std::filesystem::path path;  ///< the directory
    /// \param tag distinguishes the directories of different test files
    explicit TempDir(const std::string& tag) {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() / fmt::format("qkv_{}_{}_{}", tag, ::getpid(), counter++);
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    /// \param name a file name \return the path of \p name inside the directory
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    /// \return the names of the entries, sorted
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

/// \param path a file \return its bytes ("" when it cannot be read)
inline std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// \param path the file to (over)write \param bytes its new content
inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

/// \brief A safetensors file from a JSON header and the data section, laid out as any writer
/// would (8-byte length, header padded with spaces to a multiple of 8), without qkv's checksum.
/// \param header the JSON header \param data the data section \return the file's bytes
inline std::string make_safetensors(std::string header, const std::string& data) {
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((header.size() >> (8 * i)) & 0xFF);
    return out + header + data;
}

/// \brief A child process (the `qkv` command, usually) whose stdout and stderr the test reads.
class Child {
public:
    /// \brief Start \p argv[0] with the arguments after it. \param argv the program and its arguments
    /// \param env extra environment entries, "NAME=value"
    explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::dup2(fds[1], STDERR_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        fd_ = fds[0];
    }
    ~Child() {
        if (pid_ > 0 && !waited_) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        if (fd_ >= 0) ::close(fd_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    /// \brief Read output until it contains \p needle or the output ends.
    /// \param needle the text to wait for \return whether it appeared
    bool read_until(const std::string& needle) {
        while (output_.find(needle) == std::string::npos)
            if (!read_some()) return false;
        return true;
    }
    /// \param sig the signal to send
    void signal(int sig) const { ::kill(pid_, sig); }
    /// \brief Read the rest of the output and wait for the process to end.
    /// \return its exit status (128 + N when a signal N ended it)
    int wait() {
        while (read_some()) {
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        waited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    /// \return everything it printed so far (stdout and stderr, interleaved)
    const std::string& output() const { return output_; }

private:
    bool read_some() {
        char buf[4096];
        for (;;) {
            const ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            output_.append(buf, std::size_t(n));
            return true;
        }
    }
    pid_t pid_ = -1;
    int fd_ = -1;
    bool waited_ = false;
    std::string output_;
};

/// \brief The `qkv` command to test: $QKV_CLI when set (to run these tests against another build),
/// else the one built with the tests. \return its path
inline std::string qkv_cli() {
    if (const char* p = std::getenv("QKV_CLI"); p && *p) return p;
    return QKV_CLI_PATH;
}

}  // namespace qkv::test
