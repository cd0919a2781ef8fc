// ddpmkit — the SIMD primitive set, and vector math written once on top of it.
//
// Each arch file specializes the same primitives (load, store, load_partial,
// store_partial, set1, add, mul, fmadd, min, max, round, scale2, frexp_*, select_less,
// unzip, zip, slide_down, slide_up, transpose, reduce_*) and the GEMM's register tile for
// one instruction set; the kernels use only these names, never intrinsics, and are written
// once for all of them. The scalar architecture is a vector of one float (arch/scalar.hpp).
#pragma once

#include <cstdint>

#include "ddpmkit/config.hpp"

#if defined(DDPMKIT_ARCH_AVX512)
#include "ddpmkit/kernels/arch/avx512.hpp"
#elif defined(DDPMKIT_ARCH_AVX2)
#include "ddpmkit/kernels/arch/avx2.hpp"
#elif defined(DDPMKIT_ARCH_NEON)
#include "ddpmkit/kernels/arch/neon.hpp"
#else
#include "ddpmkit/kernels/arch/scalar.hpp"
#endif

#if !defined(DDPMKIT_AS_WRITTEN)
#define DDPMKIT_AS_WRITTEN  // an arch file sets it on a kernel its compilers must not vectorize
#endif

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

// exp(x): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial (the Cephes
// expf coefficients), times 2^n. Relative error ~2 ulp; NaN propagates; x < -87.3 gives
// ~1e-38 rather than 0.
inline vfloat exp(vfloat x) {
    x = max(set1(-87.3f), min(set1(88.3f), x));  // data second: NaN passes through
    const vfloat n = round(mul(x, set1(1.44269504088896341f)));
    vfloat r = fmadd(n, set1(-0.693359375f), x);  // ln2 split in two for an exact product
    r = fmadd(n, set1(2.12194440e-4f), r);
    vfloat p = set1(1.9875691500e-4f);
    p = fmadd(p, r, set1(1.3981999507e-3f));
    p = fmadd(p, r, set1(8.3334519073e-3f));
    p = fmadd(p, r, set1(4.1665795894e-2f));
    p = fmadd(p, r, set1(1.6666665459e-1f));
    p = fmadd(p, r, set1(5.0000001201e-1f));
    p = fmadd(mul(p, r), r, add(r, set1(1.0f)));
    return scale2(p, n);
}

// log(x) for finite x > 0 (callers route other inputs to the scalar reference):
// x = m 2^e, m in [sqrt(1/2), sqrt(2)), log(m) by the Cephes logf polynomial.
inline vfloat log(vfloat x) {
    vfloat m = frexp_mantissa(x), e = frexp_exponent(x);
    const vfloat small = set1(0.707106781186547524f);
    e = select_less(m, small, sub(e, set1(1.0f)), e);
    m = sub(select_less(m, small, add(m, m), m), set1(1.0f));
    const vfloat z = mul(m, m);
    vfloat p = set1(7.0376836292e-2f);
    p = fmadd(p, m, set1(-1.1514610310e-1f));
    p = fmadd(p, m, set1(1.1676998740e-1f));
    p = fmadd(p, m, set1(-1.2420140846e-1f));
    p = fmadd(p, m, set1(1.4249322787e-1f));
    p = fmadd(p, m, set1(-1.6668057665e-1f));
    p = fmadd(p, m, set1(2.0000714765e-1f));
    p = fmadd(p, m, set1(-2.4999993993e-1f));
    p = fmadd(p, m, set1(3.3333331174e-1f));
    vfloat y = mul(mul(p, m), z);
    y = fmadd(e, set1(-2.12194440e-4f), y);
    y = fmadd(z, set1(-0.5f), y);
    return fmadd(e, set1(0.693359375f), add(m, y));
}

// A hint to load p's cache line ahead of its use (nothing where the compiler has no builtin).
inline void prefetch(const float* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

inline vfloat sigmoid(vfloat x) {  // 1 / (1 + e^-x)
    return div(set1(1.0f), add(set1(1.0f), exp(sub(zero(), x))));
}
inline vfloat silu(vfloat x) { return mul(x, sigmoid(x)); }  // x sigma(x)

// dst[0..n) = src[0..n) and dst[0..n) += src[0..n), whole vectors then one partial one.
inline void copy(const float* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + kWidth <= n; i += kWidth) store(dst + i, load(src + i));
    if (i < n) store_partial(dst + i, load_partial(src + i, static_cast<int>(n - i)), static_cast<int>(n - i));
}
inline void accumulate(const float* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + kWidth <= n; i += kWidth) store(dst + i, add(load(dst + i), load(src + i)));
    if (i < n) {
        const int r = static_cast<int>(n - i);
        store_partial(dst + i, add(load_partial(dst + i, r), load_partial(src + i, r)), r);
    }
}
inline void fill_zero(float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + kWidth <= n; i += kWidth) store(dst + i, zero());
    if (i < n) store_partial(dst + i, zero(), static_cast<int>(n - i));
}
inline vfloat tanh(vfloat x) {  // 1 - 2 / (e^2x + 1): exact limits +-1, abs error ~1e-7 near 0
    return sub(set1(1.0f), div(set1(2.0f), add(exp(add(x, x)), set1(1.0f))));
}

}  // namespace simd
DDPMKIT_END_NAMESPACE
