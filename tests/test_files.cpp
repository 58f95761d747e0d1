// Saving files the way a user expects: through a symbolic link (not over it), keeping a file's
// permissions, refusing a directory, knowing before a long run whether a path can be written, and
// never leaving a temporary file behind when Ctrl-C arrives in the middle of a save.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <random>
#include <thread>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qkv/io/file.hpp"
#include "qkv/io/safetensors.hpp"
#include "support.hpp"

using namespace qkv;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}
bool any_temporary(const test::TempDir& dir) {
    for (const auto& name : dir.files())
        if (name.find(".tmp.") != std::string::npos) return true;
    return false;
}
}  // namespace

TEST_CASE("saving onto a symbolic link writes through it: the link stays, its target changes", "[files]") {
    const test::TempDir dir("files_link");
    fs::create_directories(dir.path / "store");
    const std::string real = dir / "store/run7.safetensors";
    io::save_safetensors(real, {{"w", zeros({2})}});
    fs::create_symlink("store/run7.safetensors", dir.path / "best.safetensors");  // relative to the link's directory
    io::save_safetensors(dir / "best.safetensors", {{"w", ones({3})}});
    CHECK(fs::is_symlink(dir.path / "best.safetensors"));
    CHECK(io::load_safetensors(real).tensors.at(0).second.shape() == Shape{3});
    CHECK(dir.files() == std::vector<std::string>{"best.safetensors", "store"});
    // A chain of links, and a dangling one: the file is created where the chain ends.
    fs::create_symlink("best.safetensors", dir.path / "latest");
    io::write_text_file(dir / "latest", "not a checkpoint any more\n", "test");
    CHECK(test::read_bytes(real) == "not a checkpoint any more\n");
    fs::create_symlink("store/new.txt", dir.path / "dangling");
    io::write_text_file(dir / "dangling", "hello\n", "test");
    CHECK(fs::is_symlink(dir.path / "dangling"));
    CHECK(test::read_bytes(dir / "store/new.txt") == "hello\n");
}

TEST_CASE("a saved-over file keeps its permissions, a new one gets 0666 less the umask", "[files]") {
    const test::TempDir dir("files_mode");
    const std::string path = dir / "private.safetensors";
    io::save_safetensors(path, {{"w", zeros({2})}});
    const mode_t old_umask = ::umask(022);
    CHECK(mode_of(path) == 0644);
    ::chmod(path.c_str(), 0600);
    io::save_safetensors(path, {{"w", ones({2})}});
    CHECK(mode_of(path) == 0600);
    ::chmod(path.c_str(), 0640);
    io::write_text_file(path, "x", "test");
    CHECK(mode_of(path) == 0640);
    ::umask(077);
    io::write_text_file(dir / "new.txt", "x", "test");
    CHECK(mode_of(dir / "new.txt") == 0600);
    ::umask(old_umask);
}

TEST_CASE("saving over a directory or a device is refused with a clear error", "[files]") {
    const test::TempDir dir("files_dir");
    fs::create_directories(dir.path / "sub");
    CHECK_THROWS_WITH(io::save_safetensors(dir / "sub", {{"w", zeros({1})}}),
                      Contains("exists and is not a regular file"));
    CHECK(fs::is_directory(dir.path / "sub"));
    // A named pipe stands for devices here (a test must not risk /dev/null: as root, the old code
    // renamed a regular file over it).
    const std::string fifo = dir / "pipe";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(io::write_text_file(fifo, "x", "test"), Contains("pipe' exists and is not a regular file"));
    CHECK(fs::is_fifo(fifo));
    CHECK_FALSE(any_temporary(dir));
}

TEST_CASE("check_writable tells before a long run whether a file can be saved there", "[files]") {
    const test::TempDir dir("files_check");
    CHECK_NOTHROW(io::check_writable(dir / "a.safetensors", "train"));
    CHECK(dir.files().empty());  // the probe file is gone again
    CHECK_THROWS_WITH(io::check_writable(dir / "missing/a.safetensors", "train"),
                      Contains("train: cannot write '") && Contains("the directory '") && Contains("does not exist"));
    // /sys takes no new files, not even from root.
    CHECK_THROWS_WITH(io::check_writable("/sys/qkv_check.safetensors", "train"),
                      Contains("train: cannot write '/sys/qkv_check.safetensors': cannot create a file in '/sys'"));
    fs::create_directories(dir.path / "sub");
    CHECK_THROWS_WITH(io::check_writable(dir / "sub", "train"), Contains("is not a regular file"));
}

TEST_CASE("Ctrl-C in the middle of a save leaves no temporary file behind", "[files][signals]") {
    // A child process saves a 32 MB file over and over (so a signal almost always arrives while a
    // save is in progress) until SIGINT, sent after a random delay, ends it with the default action.
    // The signal is held back until the file being written is complete, so neither a temporary
    // file nor a half-written target can remain.
    const test::TempDir dir("files_sigint");
    const std::string path = dir / "big.safetensors";
    std::mt19937 rng(std::random_device{}());
    for (int trial = 0; trial < 6; ++trial) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            std::signal(SIGINT, SIG_DFL);
            const Tensor big = zeros({8 << 20});
            for (;;) io::save_safetensors(path, {{"w", big}});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 200));
        ::kill(child, SIGINT);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGINT);
        CHECK_FALSE(any_temporary(dir));
        if (fs::exists(path)) CHECK(io::load_safetensors(path).tensors.at(0).second.numel() == (8 << 20));
    }
}
