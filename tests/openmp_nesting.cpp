/// \file
/// \brief A program with its own OpenMP parallel region calls qkv: qkv must notice and run serially.
///
/// qkv has no OpenMP of its own; kernels/parallel.cpp asks the OpenMP runtime, through a weak
/// reference to omp_in_parallel(), whether the caller is already inside a parallel region. This
/// program links OpenMP, so the reference resolves and the answer must be yes inside the region and
/// no outside it — and a parallel_for issued inside must run on the calling thread only.
#include <omp.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include <qkv/qkv.hpp>

int main() {
    qkv::set_num_threads(2);
    const bool outside = qkv::in_parallel_region();
    std::atomic<int> inside{0}, team{0}, foreign_threads{0};
#pragma omp parallel num_threads(2)
    {
        team.fetch_add(1);
        if (qkv::in_parallel_region()) inside.fetch_add(1);
        const auto me = std::this_thread::get_id();
        qkv::parallel_for(0, 1 << 16, 1, [&](std::int64_t, std::int64_t) {
            if (std::this_thread::get_id() != me) foreign_threads.fetch_add(1);
        });
    }
    const bool ok = !outside && inside.load() == team.load() && team.load() == 2 && foreign_threads.load() == 0;
    std::printf("outside a region: %s; inside an OpenMP region: %s (%d of %d threads saw it, %d chunks ran elsewhere)\n",
                outside ? "parallel (WRONG)" : "not parallel", ok ? "serial" : "NOT SERIAL", inside.load(),
                team.load(), foreign_threads.load());
    return ok ? 0 : 1;
}
