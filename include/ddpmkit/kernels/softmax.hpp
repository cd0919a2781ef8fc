// ddpmkit — softmax along the last axis of [rows, n], and its backward.
#pragma once

#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

// y_j = e^(x_j - max) / sum_k e^(x_k - max), row by row; y may alias x.
template <class T>
void softmax(const T* x, int64_t rows, int64_t n, T* y) {
    if constexpr (!use_simd<T>()) {
        ref::softmax(x, rows, n, y);
    } else {
    if (n == 0) return;
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const T* xr = x + r * n;
            T* yr = y + r * n;
            const T m = detail::reduce_row<true>(xr, n);
            T s = 0;
            int64_t j = 0;
#if !defined(DDPMKIT_ARCH_SCALAR)
            simd::vfloat vs = simd::zero();
            for (; j + simd::kWidth <= n; j += simd::kWidth) {
                const simd::vfloat e = simd::exp(simd::sub(simd::load(xr + j), simd::set1(m)));
                simd::store(yr + j, e);
                vs = simd::add(vs, e);
            }
            s = simd::reduce_add(vs);
#endif
            for (; j < n; ++j) s += (yr[j] = std::exp(xr[j] - m));  // leftovers
            const T inv = T(1) / s;
            j = 0;
#if !defined(DDPMKIT_ARCH_SCALAR)
            for (; j + simd::kWidth <= n; j += simd::kWidth) simd::store(yr + j, simd::mul(simd::load(yr + j), simd::set1(inv)));
#endif
            for (; j < n; ++j) yr[j] *= inv;
        }
    });
    }
}

// dx += y * (dy - sum_j dy_j y_j), row by row.
template <class T>
void softmax_backward(const T* y, const T* dy, int64_t rows, int64_t n, T* dx) {
    if constexpr (!use_simd<T>()) {
        ref::softmax_backward(y, dy, rows, n, dx);
    } else {
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const T *yr = y + r * n, *dyr = dy + r * n;
            T* dxr = dx + r * n;
            T dot = 0;
            int64_t j = 0;
#if !defined(DDPMKIT_ARCH_SCALAR)
            simd::vfloat vd = simd::zero();
            for (; j + simd::kWidth <= n; j += simd::kWidth) vd = simd::fmadd(simd::load(yr + j), simd::load(dyr + j), vd);
            dot = simd::reduce_add(vd);
#endif
            for (; j < n; ++j) dot += yr[j] * dyr[j];  // leftovers
            j = 0;
#if !defined(DDPMKIT_ARCH_SCALAR)
            const simd::vfloat vdot = simd::set1(dot);
            for (; j + simd::kWidth <= n; j += simd::kWidth) {
                const simd::vfloat g = simd::mul(simd::load(yr + j), simd::sub(simd::load(dyr + j), vdot));
                simd::store(dxr + j, simd::add(simd::load(dxr + j), g));
            }
#endif
            for (; j < n; ++j) dxr[j] += yr[j] * (dyr[j] - dot);
        }
    });
    }
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
