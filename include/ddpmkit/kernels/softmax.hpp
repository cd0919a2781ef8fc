// ddpmkit — softmax along the last axis of [rows, n], and its backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

namespace detail {
inline void softmax_rows(const float* x, int64_t rows, int64_t n, float* y) {
    if (n == 0) return;
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* xr = x + r * n;
            float* yr = y + r * n;
            const float m = reduce_row<true>(xr, n);
            simd::vfloat vs = simd::zero();
            int64_t j = 0;
            for (; j + simd::kWidth <= n; j += simd::kWidth) {
                const simd::vfloat e = simd::exp(simd::sub(simd::load(xr + j), simd::set1(m)));
                simd::store(yr + j, e);
                vs = simd::add(vs, e);
            }
            float s = simd::reduce_add(vs);
            for (; j < n; ++j) s += (yr[j] = std::exp(xr[j] - m));  // leftovers
            const float inv = 1.0f / s;
            j = 0;
            for (; j + simd::kWidth <= n; j += simd::kWidth) simd::store(yr + j, simd::mul(simd::load(yr + j), simd::set1(inv)));
            for (; j < n; ++j) yr[j] *= inv;
        }
    });
}

inline void softmax_rows_backward(const float* y, const float* dy, int64_t rows, int64_t n, float* dx) {
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float *yr = y + r * n, *dyr = dy + r * n;
            float* dxr = dx + r * n;
            simd::vfloat vd = simd::zero();
            int64_t j = 0;
            for (; j + simd::kWidth <= n; j += simd::kWidth) vd = simd::fmadd(simd::load(yr + j), simd::load(dyr + j), vd);
            float dot = simd::reduce_add(vd);
            for (; j < n; ++j) dot += yr[j] * dyr[j];  // leftovers
            const simd::vfloat vdot = simd::set1(dot);
            j = 0;
            for (; j + simd::kWidth <= n; j += simd::kWidth) {
                const simd::vfloat g = simd::mul(simd::load(yr + j), simd::sub(simd::load(dyr + j), vdot));
                simd::store(dxr + j, simd::add(simd::load(dxr + j), g));
            }
            for (; j < n; ++j) dxr[j] += yr[j] * (dyr[j] - dot);
        }
    });
}
}  // namespace detail

// y_j = e^(x_j - max) / sum_k e^(x_k - max), row by row; y may alias x.
template <class T>
void softmax(const T* x, int64_t rows, int64_t n, T* y) {
    if constexpr (use_simd<T>())
        detail::softmax_rows(x, rows, n, y);
    else
        ref::softmax(x, rows, n, y);
}

// dx += y * (dy - sum_j dy_j y_j), row by row.
template <class T>
void softmax_backward(const T* y, const T* dy, int64_t rows, int64_t n, T* dx) {
    if constexpr (use_simd<T>())
        detail::softmax_rows_backward(y, dy, rows, n, dx);
    else
        ref::softmax_backward(y, dy, rows, n, dx);
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
