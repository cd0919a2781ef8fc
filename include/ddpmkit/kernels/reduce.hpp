// ddpmkit — reductions along one axis of a row-major array viewed as [outer, n, inner].
// Each output is summed by one thread in a fixed order: results do not depend on the
// thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

namespace detail {
// Sum (or max) of a contiguous row x[0..n).
template <bool IsMax, class T>
T reduce_row(const T* x, int64_t n) {
    int64_t k = 0;
    T acc = IsMax ? x[0] : T(0);
    if constexpr (use_simd<T>()) {
        constexpr int W = simd::kWidth;
        if (n >= 2 * W) {
            simd::vfloat v0 = simd::load(x), v1 = simd::load(x + W);  // two chains hide latency
            for (k = 2 * W; k + 2 * W <= n; k += 2 * W) {
                v0 = IsMax ? simd::max(v0, simd::load(x + k)) : simd::add(v0, simd::load(x + k));
                v1 = IsMax ? simd::max(v1, simd::load(x + k + W)) : simd::add(v1, simd::load(x + k + W));
            }
            acc = IsMax ? simd::reduce_max(simd::max(v0, v1)) : simd::reduce_add(simd::add(v0, v1));
        }
    }
    for (; k < n; ++k) acc = IsMax ? std::max(acc, x[k]) : acc + x[k];  // leftovers
    return acc;
}

template <bool IsMax, class T>
void reduce_axis(const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
    if (inner == 1) {
        parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t o0, int64_t o1) {
            for (int64_t o = o0; o < o1; ++o) out[o] = n == 0 ? T(0) : reduce_row<IsMax>(x + o * n, n);
        });
        return;
    }
    // Rows of `inner` contiguous elements are combined with vector adds, k in order.
    parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n * inner, 1)), [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
            T* dst = out + o * inner;
            const T* src = x + o * n * inner;
            if (n == 0) {
                std::fill(dst, dst + inner, T(0));
                continue;
            }
            std::copy(src, src + inner, dst);
            for (int64_t k = 1; k < n; ++k) {
                const T* row = src + k * inner;
                int64_t i = 0;
                if constexpr (use_simd<T>()) {
                    for (; i + simd::kWidth <= inner; i += simd::kWidth) {
                        const simd::vfloat a = simd::load(dst + i), b = simd::load(row + i);
                        simd::store(dst + i, IsMax ? simd::max(a, b) : simd::add(a, b));
                    }
                }
                for (; i < inner; ++i) dst[i] = IsMax ? std::max(dst[i], row[i]) : dst[i] + row[i];  // leftovers
            }
        }
    });
}
}  // namespace detail

// out[o, i] = sum over k of x[o, k, i]
template <class T>
void sum_axis(const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
    detail::reduce_axis<false>(x, outer, n, inner, out);
}

// out[o, i] = max over k of x[o, k, i]; n > 0.
template <class T>
void max_axis(const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
    detail::reduce_axis<true>(x, outer, n, inner, out);
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
