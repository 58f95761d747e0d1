/// \file
/// \brief The thread count and parallel_for() on a tiny thread pool of its own.
///
/// A reader learns here how a small threading layer avoids the classic mistakes: spawning
/// threads for work that takes less time than waking them (the `grain`), nested parallel regions
/// that oversubscribe the cores (a thread inside a region runs inner loops serially), exceptions
/// escaping a worker thread (which would call std::terminate: they are caught and rethrown in the
/// caller), and idle workers that burn a core. That last one is why qkv does not use OpenMP's
/// pool here: after a region, libgomp's workers keep spinning for a long while, and on a 2-core
/// machine that steals a whole core from whatever runs next (another library's threads, the
/// data loader, the next op). qkv's workers spin for only 0.1 ms — long enough to catch the
/// next GEMM of a training step without a wake-up (well under a microsecond), short enough not to
/// matter to anybody else — then sleep on a futex (std::atomic::wait), which costs some tens of
/// microseconds to wake. Spinning with sched_yield instead was tried and rejected: when another
/// process keeps the second core busy, a yielding worker hands it its core and never gets to run.
/// Two more defences against a busy machine: chunks are claimed dynamically (a late worker takes
/// fewer), and workers are kept off the caller's CPU, because Linux likes to wake a sleeping
/// thread right next to the thread that woke it, where it can only wait.
#include "qkv/kernels/parallel.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef __linux__
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#endif

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

namespace {

// A range is cut into up to this many chunks per thread, which the threads claim one at a time.
// Were there exactly one chunk per thread, a thread that starts late (its core busy with another
// process) would make everybody wait for its chunk; with 4, the others take over its share.
constexpr int kChunksPerThread = 4;

// True on a thread while it runs a chunk of a parallel_for (workers and the calling thread).
thread_local bool t_in_region = false;

/// One parallel_for in flight: the range, the chunking, the body, and the bookkeeping that
/// tells the caller when every chunk is done.
struct Job {
    std::int64_t begin = 0, length = 0, chunks = 0;
    void (*fn)(void*, std::int64_t, std::int64_t) = nullptr;
    void* ctx = nullptr;
    std::atomic<std::int64_t> next{0};      // next chunk to hand out
    std::atomic<std::int64_t> finished{0};  // chunks done
    std::exception_ptr error;               // first exception, guarded by error_mutex
    std::mutex error_mutex;

    // Runs chunks until none are left. Chunk c covers [begin + c·length/chunks, begin +
    // (c+1)·length/chunks): sizes differ by at most one and the chunks tile the range exactly.
    void work() {
        for (std::int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
            const std::int64_t lo = begin + c * length / chunks;
            const std::int64_t hi = begin + (c + 1) * length / chunks;
            try {
                fn(ctx, lo, hi);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
            }
            finished.fetch_add(1, std::memory_order_release);
        }
    }
};

// One spin-wait step: tells the core we are busy-waiting (saves power, frees resources for a
// sibling hyper-thread) without giving up the time slice.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
}

// The caller's wait for the last chunks: spin briefly, then yield the core, in case the worker
// it waits for has been placed on the caller's own core.
template <class Done>
void wait_until(Done done) {
    for (int spin = 0; !done(); ++spin) {
        if (spin < 4096)
            spin_pause();
        else
            std::this_thread::yield();
    }
}

// Spins for about 0.1 ms, then sleeps until `word` differs from `seen`. Returns the new value.
std::uint64_t await_change(const std::atomic<std::uint64_t>& word, std::uint64_t seen) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
    for (int spin = 0;; ++spin) {
        const std::uint64_t now = word.load(std::memory_order_acquire);
        if (now != seen) return now;
        if ((spin & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
        spin_pause();
    }
    word.wait(seen, std::memory_order_acquire);
    return word.load(std::memory_order_acquire);
}

/// The worker threads. A job is published by storing its address and bumping `generation`,
/// which every worker watches; the caller works on the job too, so T threads need T-1 workers.
class Pool {
public:
    ~Pool() {
        job_.store(nullptr);
        stop_.store(true);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        for (auto& t : workers_) t.join();
    }

    // Runs the job on the caller and up to job.chunks - 1 workers; returns when all chunks are
    // done. Only one job at a time: a second concurrent caller gets `false` and runs serially.
    bool run(Job& job) {
        const std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        const auto helpers = job.chunks < num_threads() ? job.chunks - 1 : num_threads() - 1;
        grow(static_cast<int>(helpers));
        keep_workers_off_caller_cpu();
        job_.store(&job);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        t_in_region = true;
        job.work();
        t_in_region = false;
        // Wait for chunks still running on workers; then wait until
        // no worker still holds a pointer to the job (it lives on the caller's stack).
        // (Sequentially consistent order matters here: a worker increments active_ before it
        // reads job_, the caller clears job_ before it reads active_, so a late worker either
        // is counted or finds no job.)
        wait_until([&] { return job.finished.load(std::memory_order_acquire) >= job.chunks; });
        job_.store(nullptr);
        wait_until([&] { return active_.load() == 0; });
        return true;
    }

private:
    void grow(int wanted) {
        if (static_cast<int>(workers_.size()) >= wanted) return;
        while (static_cast<int>(workers_.size()) < wanted)
            workers_.emplace_back([this] { loop(); });
        kept_off_ = -1;  // the new workers may run anywhere yet
    }

    // Why this exists: Linux tends to wake a sleeping thread on the CPU of the thread that woke
    // it (here, on a 2-vCPU VM, measured: most wake-ups after a pause). The worker then waits
    // behind the caller, which is busy computing, and the caller ends up doing every chunk
    // alone. So the workers are kept off the caller's current CPU with an affinity mask. It
    // costs one system call per worker, and only when the caller has moved to another CPU.
    void keep_workers_off_caller_cpu() {
#ifdef __linux__
        const int cpu = sched_getcpu();
        if (cpu < 0 || cpu == kept_off_ || cpu >= CPU_SETSIZE) return;
        if (!allowed_known_) {
            allowed_known_ = sched_getaffinity(0, sizeof allowed_, &allowed_) == 0;
            if (!allowed_known_) return;
        }
        cpu_set_t mask = allowed_;
        CPU_CLR(cpu, &mask);
        if (CPU_COUNT(&mask) == 0) return;  // only one CPU allowed: nothing to choose
        for (auto& t : workers_) pthread_setaffinity_np(t.native_handle(), sizeof mask, &mask);
        kept_off_ = cpu;
#endif
    }

    void loop() {
        // Signals sent to the process (Ctrl-C, SIGTERM, ...) go to the thread that started the work,
        // never to a worker: that thread is the one that can finish a step, save and stop, and
        // the one that blocks them while a file is being saved (io/file.cpp).
#ifdef __linux__
        sigset_t async;
        sigemptyset(&async);
        for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM}) sigaddset(&async, s);
        pthread_sigmask(SIG_BLOCK, &async, nullptr);
#endif
        std::uint64_t seen = 0;
        for (;;) {
            seen = await_change(generation_, seen);
            if (stop_.load()) return;
            active_.fetch_add(1);
            Job* job = job_.load();
            if (job != nullptr) {
                t_in_region = true;
                job->work();
                t_in_region = false;
            }
            active_.fetch_sub(1);
        }
    }

    std::mutex busy_;
    std::vector<std::thread> workers_;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<Job*> job_{nullptr};
    std::atomic<int> active_{0};
    std::atomic<bool> stop_{false};
    int kept_off_ = -1;  // the CPU the workers' affinity currently excludes (-1: none)
#ifdef __linux__
    cpu_set_t allowed_{};  // the CPUs this process may use, read once
    bool allowed_known_ = false;
#endif
};

Pool& pool() {
    static Pool instance;
    return instance;
}

}  // namespace

// A program may call qkv from inside its own OpenMP parallel region; then qkv's loops must run
// serially too, or the cores are oversubscribed. qkv itself needs no OpenMP, so it asks the OpenMP
// runtime only if the program linked one: omp_in_parallel is a *weak* reference, which the linker
// leaves null when no OpenMP runtime is linked — and then no OpenMP region can exist. (That keeps
// `g++ main.cpp libqkv.a -lfmt` working.) Where weak references are not available (non-ELF
// platforms), only qkv's own regions are seen.
#if defined(__ELF__)
extern "C" int omp_in_parallel() __attribute__((weak));
static bool in_openmp_region() { return omp_in_parallel != nullptr && omp_in_parallel() != 0; }
#else
static bool in_openmp_region() { return false; }
#endif

bool in_parallel_region() { return t_in_region || in_openmp_region(); }

namespace detail {

void parallel_for_impl(std::int64_t begin, std::int64_t end, std::int64_t grain,
                       void (*fn)(void*, std::int64_t, std::int64_t), void* ctx) {
    if (end <= begin) return;
    if (grain < 1) grain = 1;
    const std::int64_t length = end - begin;
    std::int64_t chunks = length / grain;  // every chunk gets at least `grain` indices
    const int threads = num_threads();
    if (chunks > kChunksPerThread * threads) chunks = kChunksPerThread * threads;
    // A multiple of the thread count, so that threads running at the same speed finish together
    // (5 chunks on 2 threads would leave one thread idle for a fifth of the time).
    if (chunks > threads) chunks -= chunks % threads;
    if (threads < 2 || chunks < 2 || in_parallel_region()) {
        fn(ctx, begin, end);
        return;
    }
    Job job;
    job.begin = begin;
    job.length = length;
    job.chunks = chunks;
    job.fn = fn;
    job.ctx = ctx;
    if (!pool().run(job)) {
        fn(ctx, begin, end);  // another thread is using the pool: do not oversubscribe
        return;
    }
    if (job.error) std::rethrow_exception(job.error);
}

}  // namespace detail
}  // namespace qkv
