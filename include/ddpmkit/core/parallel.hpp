// ddpmkit — parallel loops: OpenMP where it is enabled, a plain loop without it.
//
// Work is split into contiguous ranges with a static schedule, so which thread runs which
// range never changes the result: reductions combine fixed chunks in index order.
#pragma once

#include <algorithm>
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

// Calls fn(b, e) on disjoint ranges covering [begin, end). Runs on the calling thread when
// the range is smaller than `grain` items or when already inside a parallel region.
template <class Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
    const int64_t n = end - begin;
    if (n <= 0) return;
#if defined(DDPMKIT_HAS_OPENMP)
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
    if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
            const int64_t b = begin + n * id / count, e = begin + n * (id + 1) / count;
            if (b < e) fn(b, e);
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
