// ddpmkit — AVX-512 specializations of the SIMD primitives (16 floats a vector).
// Included by kernels/simd.hpp only; nothing else uses intrinsics.
#pragma once

// GCC 12's AVX-512 intrinsics trip its own -Wmaybe-uninitialized (GCC bug 105593); the
// diagnostic state is taken at the header's lines, so silence it around the include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

using vfloat = __m512;
constexpr int kWidth = 16;

inline vfloat load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
inline vfloat set1(float x) { return _mm512_set1_ps(x); }
inline vfloat zero() { return _mm512_setzero_ps(); }
inline vfloat add(vfloat a, vfloat b) { return _mm512_add_ps(a, b); }
inline vfloat sub(vfloat a, vfloat b) { return _mm512_sub_ps(a, b); }
inline vfloat mul(vfloat a, vfloat b) { return _mm512_mul_ps(a, b); }
inline vfloat div(vfloat a, vfloat b) { return _mm512_div_ps(a, b); }
inline vfloat fmadd(vfloat a, vfloat b, vfloat c) { return _mm512_fmadd_ps(a, b, c); }  // a*b + c
// min/max return the second operand when either is NaN: callers pass the data second.
inline vfloat min(vfloat a, vfloat b) { return _mm512_min_ps(a, b); }
inline vfloat max(vfloat a, vfloat b) { return _mm512_max_ps(a, b); }
inline vfloat sqrt(vfloat a) { return _mm512_sqrt_ps(a); }
inline vfloat round(vfloat a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for integral n in [-126, 127].
inline vfloat pow2(vfloat n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
// x = mantissa * 2^exponent with mantissa in [0.5, 1), for finite x > 0.
inline vfloat frexp_mantissa(vfloat x) {
    return _mm512_mul_ps(_mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero), _mm512_set1_ps(0.5f));
}
inline vfloat frexp_exponent(vfloat x) { return _mm512_add_ps(_mm512_getexp_ps(x), _mm512_set1_ps(1.0f)); }
// Lanes where a < b take `if_less`, the others `otherwise`.
inline vfloat select_less(vfloat a, vfloat b, vfloat if_less, vfloat otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_less);
}
inline float reduce_add(vfloat v) { return _mm512_reduce_add_ps(v); }
inline float reduce_max(vfloat v) { return _mm512_reduce_max_ps(v); }

}  // namespace simd
DDPMKIT_END_NAMESPACE
