// ddpmkit — AVX2 + FMA specializations of the SIMD primitives (8 floats a vector).
// Included by kernels/simd.hpp only; nothing else uses intrinsics.
#pragma once

#include <immintrin.h>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

using vfloat = __m256;
constexpr int kWidth = 8;

inline vfloat load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vfloat v) { _mm256_storeu_ps(p, v); }
inline vfloat set1(float x) { return _mm256_set1_ps(x); }
inline vfloat zero() { return _mm256_setzero_ps(); }
inline vfloat add(vfloat a, vfloat b) { return _mm256_add_ps(a, b); }
inline vfloat sub(vfloat a, vfloat b) { return _mm256_sub_ps(a, b); }
inline vfloat mul(vfloat a, vfloat b) { return _mm256_mul_ps(a, b); }
inline vfloat div(vfloat a, vfloat b) { return _mm256_div_ps(a, b); }
inline vfloat fmadd(vfloat a, vfloat b, vfloat c) { return _mm256_fmadd_ps(a, b, c); }  // a*b + c
// min/max return the second operand when either is NaN: callers pass the data second.
inline vfloat min(vfloat a, vfloat b) { return _mm256_min_ps(a, b); }
inline vfloat max(vfloat a, vfloat b) { return _mm256_max_ps(a, b); }
inline vfloat sqrt(vfloat a) { return _mm256_sqrt_ps(a); }
inline vfloat round(vfloat a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for integral n in [-126, 127].
inline vfloat pow2(vfloat n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
// x = mantissa * 2^exponent with mantissa in [0.5, 1), for finite x > 0 (normal numbers).
inline vfloat frexp_mantissa(vfloat x) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i m = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000));
    return _mm256_castsi256_ps(m);
}
inline vfloat frexp_exponent(vfloat x) {
    const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0xff)), _mm256_set1_epi32(126)));
}
// Lanes where a < b take `if_less`, the others `otherwise`.
inline vfloat select_less(vfloat a, vfloat b, vfloat if_less, vfloat otherwise) {
    return _mm256_blendv_ps(otherwise, if_less, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
inline float reduce_add(vfloat v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline float reduce_max(vfloat v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace simd
DDPMKIT_END_NAMESPACE
