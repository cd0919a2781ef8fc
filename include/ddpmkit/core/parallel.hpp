// ddpmkit — parallel loops: OpenMP where it is enabled, a plain loop without it.
//
// Work is split into contiguous ranges. Each thread first runs, in order, the block of ranges
// a static schedule would give it, so that from one op to the next it works on the same part
// of a tensor, which its own cache still holds; then it helps with what is left of the
// others' blocks, since the cores of a shared machine do not all run at one speed. Which
// thread runs which range never changes the result: reductions combine fixed chunks in index
// order.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"

#if defined(DDPMKIT_HAS_OPENMP)
#include <omp.h>
#endif

DDPMKIT_BEGIN_NAMESPACE

inline int num_threads() {
#if defined(DDPMKIT_HAS_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline void set_num_threads(int n) {
#if defined(DDPMKIT_HAS_OPENMP)
    omp_set_num_threads(n < 1 ? 1 : n);
#else
    (void)n;
#endif
}

// Ranges per thread, unless the grain allows fewer: the thread that finishes its block first
// then waits for at most about one range, a sixteenth of a share.
constexpr int64_t kRangesPerThread = 16;

// Calls fn(b, e) on disjoint ranges covering [begin, end), of at least `grain` items where
// there are enough. Runs on the calling thread when the range is smaller than `grain` items
// or when already inside a parallel region.
template <class Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
    const int64_t n = end - begin;
    if (n <= 0) return;
#if defined(DDPMKIT_HAS_OPENMP)
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
    if (threads > 1 && !omp_in_parallel()) {
        const int64_t ranges = std::min<int64_t>(max_chunks, kRangesPerThread * threads);
        std::vector<std::atomic<int64_t>> next(static_cast<size_t>(threads));  // each block's next range
        for (int block = 0; block < threads; ++block) next[static_cast<size_t>(block)] = ranges * block / threads;
#pragma omp parallel num_threads(threads)
        {
            const int id = omp_get_thread_num();
            for (int k = 0; k < threads; ++k) {  // its own block, then the others' (also of threads not started)
                const int block = (id + k) % threads;
                const int64_t last = ranges * (block + 1) / threads;
                for (int64_t r; (r = next[static_cast<size_t>(block)].fetch_add(1, std::memory_order_relaxed)) < last;)
                    fn(begin + n * r / ranges, begin + n * (r + 1) / ranges);
            }
        }
        return;
    }
#else
    (void)grain;
#endif
    fn(begin, end);
}

// Sums partial(b, e) over fixed chunks of [0, n) and adds the chunk results in index
// order: bitwise the same for every thread count.
template <class T, class Fn>
T deterministic_sum(int64_t n, int64_t chunk, const Fn& partial) {
    if (n <= 0) return T(0);
    const int64_t chunks = (n + chunk - 1) / chunk;
    std::vector<T> parts(static_cast<size_t>(chunks));
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) parts[static_cast<size_t>(c)] = partial(c * chunk, std::min(n, (c + 1) * chunk));
    });
    T total = 0;
    for (const T& p : parts) total += p;
    return total;
}

DDPMKIT_END_NAMESPACE
