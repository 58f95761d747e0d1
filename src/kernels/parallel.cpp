/// \file
/// \brief The thread count and parallel_for() on top of OpenMP's thread pool.
///
/// A reader learns here how a tiny threading layer avoids the three classic mistakes: spawning
/// threads for work that takes less time than waking them (the `grain`), nested parallel
/// regions that oversubscribe the cores (checked with omp_in_parallel()), and exceptions that
/// escape a worker thread (which would call std::terminate: they are caught and rethrown in the
/// caller). OpenMP keeps its workers alive between regions, so a region costs a few
/// microseconds, not a thread creation.
#include "qkv/parallel.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include <omp.h>

#include "qkv/error.hpp"

namespace qkv {
namespace {

// 0 means "not decided yet": the environment is read lazily on the first num_threads() call so
// that a bad QKV_NUM_THREADS becomes a catchable qkv::Error rather than a crash before main().
std::atomic<int> g_threads{0};

int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

// Parses QKV_NUM_THREADS strictly: a whole positive decimal number and nothing else.
int threads_from_environment() {
    const char* text = std::getenv("QKV_NUM_THREADS");
    if (text == nullptr || *text == '\0') return hardware_threads();
    errno = 0;
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 1 || value > 4096)
        fail("QKV_NUM_THREADS: expected a positive whole number of threads, got '{}'", text);
    return static_cast<int>(value);
}

}  // namespace

void set_num_threads(int n) {
    if (n < 1) fail("set_num_threads: the number of threads must be at least 1, got {}", n);
    g_threads.store(n, std::memory_order_relaxed);
}

int num_threads() {
    int n = g_threads.load(std::memory_order_relaxed);
    if (n == 0) {
        n = threads_from_environment();
        g_threads.store(n, std::memory_order_relaxed);
    }
    return n;
}

bool in_parallel_region() { return omp_in_parallel() != 0; }

namespace detail {

void parallel_for_impl(std::int64_t begin, std::int64_t end, std::int64_t grain,
                       void (*fn)(void*, std::int64_t, std::int64_t), void* ctx) {
    if (end <= begin) return;
    if (grain < 1) grain = 1;
    const std::int64_t length = end - begin;
    std::int64_t chunks = length / grain;  // every chunk gets at least `grain` indices
    const int threads = num_threads();
    if (chunks > threads) chunks = threads;
    if (chunks < 2 || in_parallel_region()) {
        fn(ctx, begin, end);
        return;
    }
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        // Chunk c covers [begin + c·length/chunks, begin + (c+1)·length/chunks): sizes differ by
        // at most one and the chunks tile the range exactly.
        const std::int64_t lo = begin + c * length / chunks;
        const std::int64_t hi = begin + (c + 1) * length / chunks;
        try {
            fn(ctx, lo, hi);
        } catch (...) {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace detail
}  // namespace qkv
