/// \file
/// \brief Threads in qkv: how many to use, and `parallel_for`, the one helper every kernel uses.
///
/// A reader learns here the whole threading policy of the library. There is a single knob, the
/// number of threads (`QKV_NUM_THREADS` or set_num_threads(), default: one per hardware core),
/// and a single primitive, parallel_for(), which cuts an index range into a few contiguous
/// chunks per thread that the threads claim one at a time. It deliberately refuses to
/// parallelise work that is too small to pay for waking the threads (below `grain`), and work
/// that is already running inside a parallel region: nested parallelism on a 2-core machine only
/// oversubscribes the cores and makes everything slower. The header is free of thread types, so
/// code including it needs no special flags; the body (src/kernels/parallel.cpp) keeps a small
/// pool of worker threads, and qkv needs no OpenMP.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace qkv {

/// \brief Set the number of threads qkv's kernels may use from now on.
/// \param n threads, at least 1 (qkv::Error otherwise)
void set_num_threads(int n);

/// \brief The number of threads qkv's kernels may use.
///
/// Until set_num_threads() is called this is the value of the environment variable
/// `QKV_NUM_THREADS` when it is set (a positive integer; anything else throws qkv::Error on the
/// first call), otherwise the number of hardware cores.
/// \return the thread count, at least 1
int num_threads();

/// \brief True while the calling thread is executing inside a qkv (or any OpenMP) parallel region.
/// \return whether the calling thread is inside a parallel region
bool in_parallel_region();

/// \brief The grain for work done row by row: how many rows of \p row_length elements make a
/// chunk worth a thread, about 8 192 elements (some microseconds of work, more than waking a
/// thread costs). Softmax, cross-entropy and layer norm split their rows this way.
/// \param row_length elements per row
/// \return rows per chunk, at least 1
constexpr std::int64_t rows_per_chunk(std::int64_t row_length) {
    constexpr std::int64_t kElementsPerChunk = 8192;
    return row_length >= kElementsPerChunk ? 1 : kElementsPerChunk / (row_length > 0 ? row_length : 1);
}

namespace detail {

/// Type-erased body of parallel_for(): calls `fn(ctx, lo, hi)` on the chunks of [begin, end).
/// Kept out of line so the header needs no thread types.
void parallel_for_impl(std::int64_t begin, std::int64_t end, std::int64_t grain,
                       void (*fn)(void*, std::int64_t, std::int64_t), void* ctx);

}  // namespace detail

/// \brief Run `f(lo, hi)` on contiguous chunks that together cover [begin, end) exactly once.
///
/// With T = num_threads(), the range is cut into at most 4·T near-equal chunks of at least
/// \p grain indices each, which T threads (the caller and T-1 pool workers) claim one at a time:
/// a thread that starts late, because another program holds its core, simply takes fewer.
/// `f` must therefore be safe to call from several threads at once on disjoint ranges, and
/// must not assume one call per thread. It runs as a single serial call `f(begin, end)` when the
/// range is shorter than 2·grain, when T is 1, or when the caller is already inside a parallel
/// region (no nested parallelism, no oversubscription). An exception thrown by `f` is rethrown
/// in the calling thread (the first one, if several chunks throw).
/// \param begin first index
/// \param end one past the last index (an empty range does nothing)
/// \param grain smallest chunk worth a thread of its own (values below 1 count as 1)
/// \param f callable as `f(std::int64_t lo, std::int64_t hi)`
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& f) {
    using Fn = std::remove_reference_t<F>;
    auto trampoline = [](void* ctx, std::int64_t lo, std::int64_t hi) {
        (*static_cast<Fn*>(ctx))(lo, hi);
    };
    // The address of f is only used during this call, so passing it as void* is safe.
    detail::parallel_for_impl(begin, end, grain, trampoline,
                              const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace qkv
