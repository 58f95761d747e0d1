/// \file
/// \brief Reading whole files, writing files atomically, and CRC-32.
///
/// A reader learns here how to save a file so that a crash can never destroy it. Writing over the
/// old checkpoint in place would leave half a file if the program dies midway. Instead we write a
/// temporary file next to it, ask the kernel to put its bytes on disk (fsync), and only then
/// rename it over the old name. POSIX rename is atomic: anyone opening the path sees either the
/// old file or the new one, never a mixture — and if anything fails before the rename, the old
/// file is untouched and the temporary one is deleted.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_detail.hpp"
#include "qkv/io/file.hpp"
#include "qkv/error.hpp"

namespace qkv::io::detail {

std::int64_t g_write_fault_after = -1;

// ---- CRC-32 -------------------------------------------------------------------------------------
// The reflected CRC-32 with polynomial 0xEDB88320: crc ← table[(crc ⊕ byte) & 0xFF] ⊕ (crc >> 8),
// with the register inverted before and after. It detects every single-bit and every two-bit
// error and every burst of up to 32 flipped bits, which is what we need to notice a corrupt file.
namespace {
struct Crc32Table {
    std::uint32_t t[256];
    constexpr Crc32Table() : t{} {
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
    }
};
constexpr Crc32Table kCrcTable;
}  // namespace

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = kCrcTable.t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

// ---- reading ------------------------------------------------------------------------------------

namespace {
// Closes a file descriptor on every path out of a function.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};
}  // namespace

std::string read_file(const std::string& path, std::string_view context) {
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) fail("{}: cannot open '{}': {}", context, path, std::strerror(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) fail("{}: cannot stat '{}': {}", context, path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail("{}: '{}' is not a regular file", context, path);
    std::string bytes(std::size_t(st.st_size), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t r = ::read(f.fd, bytes.data() + done, bytes.size() - done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail("{}: cannot read '{}': {}", context, path, std::strerror(errno));
        if (r == 0) fail("{}: '{}' shrank while being read", context, path);
        done += std::size_t(r);
    }
    return bytes;
}

// ---- writing ------------------------------------------------------------------------------------

namespace {

// A name no other writer uses: the process id keeps two processes apart, the counter two threads
// (or two saves) of one process.
std::string temp_name(const std::string& path) {
    static std::atomic<std::uint64_t> counter{0};
    return fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
}

// write() may write less than asked (signals, pipes): loop until everything is out.
void write_all(int fd, std::string_view bytes, std::int64_t& written, std::string_view context, const std::string& tmp) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        std::size_t chunk = bytes.size() - done;
        if (g_write_fault_after >= 0) {  // test hook: pretend the disk filled up here
            if (written >= g_write_fault_after) fail("{}: cannot write '{}': simulated write failure", context, tmp);
            chunk = std::min<std::size_t>(chunk, std::size_t(g_write_fault_after - written));
        }
        const ssize_t r = ::write(fd, bytes.data() + done, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail("{}: cannot write '{}': {}", context, tmp, std::strerror(errno));
        done += std::size_t(r);
        written += r;
    }
}

// The directory part of a path ("." for a bare file name), to fsync the rename itself.
std::string directory_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces, std::string_view context) {
    const std::string tmp = temp_name(path);
    // O_EXCL: never follow or clobber something already at the temporary name.
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (f.fd < 0) fail("{}: cannot create '{}': {}", context, tmp, std::strerror(errno));
    try {
        std::int64_t written = 0;
        for (const auto piece : pieces) write_all(f.fd, piece, written, context, tmp);
        // fsync before rename: otherwise after a power cut the rename may be on disk but the data not.
        if (::fsync(f.fd) != 0) fail("{}: cannot flush '{}': {}", context, tmp, std::strerror(errno));
        const int fd = f.fd;
        f.fd = -1;
        if (::close(fd) != 0) fail("{}: cannot close '{}': {}", context, tmp, std::strerror(errno));
        if (std::rename(tmp.c_str(), path.c_str()) != 0)
            fail("{}: cannot rename '{}' to '{}': {}", context, tmp, path, std::strerror(errno));
    } catch (...) {
        if (f.fd >= 0) {
            ::close(f.fd);
            f.fd = -1;
        }
        std::remove(tmp.c_str());
        throw;
    }
    // Make the rename itself durable. Best effort: the new file is complete either way.
    Fd dir{::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0 && ::fsync(dir.fd) != 0) {
        // Nothing to do: some file systems cannot fsync a directory; the data itself is safe.
    }
}

}  // namespace qkv::io::detail

namespace qkv::io {

void write_text_file(const std::string& path, std::string_view text, std::string_view context) {
    detail::write_file_atomic(path, {text}, context);
}

}  // namespace qkv::io
