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
#include <unistd.h>

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

}  // namespace qkv::test
