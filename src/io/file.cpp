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
#include <pthread.h>
#include <signal.h>
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

}  // namespace qkv::io::detail

namespace qkv::io {

std::string read_file(const std::string& path, std::string_view context, std::size_t limit) {
    detail::Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) fail("{}: cannot open '{}': {}", context, path, std::strerror(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) fail("{}: cannot stat '{}': {}", context, path, std::strerror(errno));
    if (S_ISDIR(st.st_mode)) fail("{}: '{}' is a directory, not a file", context, path);
    // A regular file announces its size, so an oversized one is refused before any byte is read;
    // a pipe (e.g. /dev/stdin) does not, and is counted while it is read.
    if (S_ISREG(st.st_mode) && std::uint64_t(st.st_size) > limit)
        fail("{}: '{}' has {} bytes, more than the {} allowed", context, path, std::uint64_t(st.st_size), limit);
    std::string bytes;
    if (S_ISREG(st.st_mode)) bytes.reserve(std::size_t(st.st_size));
    char buffer[1 << 16];
    for (;;) {
        const ssize_t r = ::read(f.fd, buffer, sizeof buffer);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail("{}: cannot read '{}': {}", context, path, std::strerror(errno));
        if (r == 0) break;
        if (bytes.size() + std::size_t(r) > limit)
            fail("{}: '{}' has more than the {} bytes allowed", context, path, limit);
        bytes.append(buffer, std::size_t(r));
    }
    return bytes;
}

}  // namespace qkv::io

namespace qkv::io::detail {

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

// Where the bytes really go. When `path` is a symbolic link (say runs/best -> run7.safetensors),
// renaming a new file over `path` would replace the link itself; the user meant the file it points
// to. So the chain of links is followed (as open() would follow it), relative targets being
// relative to the link's own directory. `existing` receives the target's status when it exists.
struct Target {
    std::string path;        // the file to replace (no longer a link)
    bool exists = false;     // whether it exists now
    struct stat st {};       // its status, when it exists
};

Target resolve_target(const std::string& path, std::string_view context) {
    Target t;
    t.path = path;
    for (int hops = 0;; ++hops) {
        if (::lstat(t.path.c_str(), &t.st) != 0) {
            if (errno != ENOENT) fail("{}: cannot inspect '{}': {}", context, t.path, std::strerror(errno));
            return t;  // a new file (possibly at the end of a dangling link)
        }
        if (!S_ISLNK(t.st.st_mode)) break;
        if (hops == 40) fail("{}: '{}': too many levels of symbolic links", context, path);
        std::string link(4096, '\0');
        const ssize_t n = ::readlink(t.path.c_str(), link.data(), link.size());
        if (n < 0) fail("{}: cannot read the link '{}': {}", context, t.path, std::strerror(errno));
        link.resize(std::size_t(n));
        t.path = link.front() == '/' || t.path.find('/') == std::string::npos ? link : directory_of(t.path) + "/" + link;
    }
    t.exists = true;
    // Replacing a directory, a device or a pipe by a regular file is never what a save means.
    if (!S_ISREG(t.st.st_mode))
        fail("{}: '{}' exists and is not a regular file (a directory, a device, ...); choose another path", context,
             t.path);
    return t;
}

// While a file is being written, the usual ways of stopping a program (Ctrl-C, SIGTERM, SIGHUP,
// SIGQUIT) are held back on this thread: one arriving then would leave the temporary file behind.
// They are delivered as soon as the file is complete (renamed or removed). qkv's own worker threads
// block them for good (kernels/parallel.cpp), so the process's signals come to this thread.
class HoldSignals {
public:
    HoldSignals() {
        sigset_t held;
        sigemptyset(&held);
        for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&held, s);
        ::pthread_sigmask(SIG_BLOCK, &held, &previous_);
    }
    ~HoldSignals() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
    HoldSignals(const HoldSignals&) = delete;
    HoldSignals& operator=(const HoldSignals&) = delete;

private:
    sigset_t previous_;
};

}  // namespace

void check_writable_path(const std::string& path, std::string_view context) {
    const Target target = resolve_target(path, context);
    const std::string dir = directory_of(target.path);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        fail("{}: cannot write '{}': the directory '{}' does not exist", context, path, dir);
    // The only reliable test is to do it: create (and remove) a file next to the target, the way a
    // save will. It catches permissions, read-only file systems and ACLs alike.
    const std::string probe = temp_name(target.path);
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("{}: cannot write '{}': cannot create a file in '{}': {}", context, path, dir, std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces, std::string_view context) {
    const HoldSignals hold;
    const Target target = resolve_target(path, context);
    const std::string tmp = temp_name(target.path);
    // O_EXCL: never follow or clobber something already at the temporary name. A new file gets the
    // usual 0666 less the umask, as any program's would; a replaced one keeps its mode (a 0600
    // checkpoint stays private) and, where the system allows, its owner.
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)};
    if (f.fd < 0) fail("{}: cannot create '{}': {}", context, tmp, std::strerror(errno));
    try {
        if (target.exists) {
            if (::fchmod(f.fd, target.st.st_mode & 07777) != 0)
                fail("{}: cannot give '{}' the mode of '{}': {}", context, tmp, target.path, std::strerror(errno));
            if (target.st.st_uid != ::geteuid() || target.st.st_gid != ::getegid()) {
                // Best effort: only root may give a file away; the mode above is what protects it.
                [[maybe_unused]] const int ignored = ::fchown(f.fd, target.st.st_uid, target.st.st_gid);
            }
        }
        std::int64_t written = 0;
        for (const auto piece : pieces) write_all(f.fd, piece, written, context, tmp);
        // fsync before rename: otherwise after a power cut the rename may be on disk but the data not.
        if (::fsync(f.fd) != 0) fail("{}: cannot flush '{}': {}", context, tmp, std::strerror(errno));
        const int fd = f.fd;
        f.fd = -1;
        if (::close(fd) != 0) fail("{}: cannot close '{}': {}", context, tmp, std::strerror(errno));
        if (std::rename(tmp.c_str(), target.path.c_str()) != 0)
            fail("{}: cannot rename '{}' to '{}': {}", context, tmp, target.path, std::strerror(errno));
    } catch (...) {
        if (f.fd >= 0) {
            ::close(f.fd);
            f.fd = -1;
        }
        std::remove(tmp.c_str());
        throw;
    }
    // Make the rename itself durable. Best effort: the new file is complete either way.
    Fd dir{::open(directory_of(target.path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0 && ::fsync(dir.fd) != 0) {
        // Nothing to do: some file systems cannot fsync a directory; the data itself is safe.
    }
}

}  // namespace qkv::io::detail

namespace qkv::io {

void write_text_file(const std::string& path, std::string_view text, std::string_view context) {
    detail::write_file_atomic(path, {text}, context);
}

void check_writable(const std::string& path, std::string_view context) { detail::check_writable_path(path, context); }

}  // namespace qkv::io
