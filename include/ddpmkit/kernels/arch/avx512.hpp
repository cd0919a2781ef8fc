// ddpmkit — AVX-512 specializations of the SIMD primitives (16 floats a vector).
// Included by kernels/simd.hpp only; nothing else uses intrinsics.
#pragma once

// GCC 12's AVX-512 intrinsics trip its own -W(maybe-)uninitialized (GCC bug 105593); the
// diagnostic state is taken at the header's lines, so silence it around the include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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
// GEMM register tile (kernels/gemm.hpp): rows broadcast from A x vectors loaded from B;
// 24 accumulators + 3 B vectors + 1 broadcast of the 32 registers.
constexpr int kGemmRows = 8, kGemmVectors = 3;

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
// x 2^n for integral n in [-126, 127], in one instruction (the exponent built by integer
// shifts and multiplied in cost SiLU 5 % more time).
inline vfloat scale2(vfloat x, vfloat n) { return _mm512_scalef_ps(x, n); }
// x = mantissa * 2^exponent with mantissa in [0.5, 1), for finite x > 0.
inline vfloat frexp_mantissa(vfloat x) {
    return _mm512_mul_ps(_mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero), _mm512_set1_ps(0.5f));
}
inline vfloat frexp_exponent(vfloat x) { return _mm512_add_ps(_mm512_getexp_ps(x), _mm512_set1_ps(1.0f)); }
// Lanes where a < b take `if_less`, the others `otherwise`.
inline vfloat select_less(vfloat a, vfloat b, vfloat if_less, vfloat otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_less);
}
// The first n lanes (0 <= n <= 16) of p; the other lanes are 0 on load, untouched on
// store, and never accessed (no fault past the end of an array).
inline vfloat load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p); }
inline void store_partial(float* p, vfloat v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v); }
// unzip: even = the even lanes of a then b, odd = the odd ones (a0 a2 .. b0 b2 .. and a1 a3 ..);
// zip, its inverse: lo, hi = a0 b0 a1 b1 .. then the second halves.
inline void unzip(vfloat a, vfloat b, vfloat& even, vfloat& odd) {
    const __m512i e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    even = _mm512_permutex2var_ps(a, e, b);
    odd = _mm512_permutex2var_ps(a, _mm512_add_epi32(e, _mm512_set1_epi32(1)), b);
}
inline void zip(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
    const __m512i l = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    lo = _mm512_permutex2var_ps(a, l, b);
    hi = _mm512_permutex2var_ps(a, _mm512_add_epi32(l, _mm512_set1_epi32(8)), b);
}
// slide_down(a, b) = a1 a2 .. a_last b0 and slide_up(a, b) = a_last b0 b1 .. b_(last - 1): the
// lanes moved down (up) by one, the lane that comes in taken from the other vector.
inline vfloat slide_down(vfloat a, vfloat b) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b), _mm512_castps_si512(a), 1));
}
inline vfloat slide_up(vfloat a, vfloat b) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b), _mm512_castps_si512(a), 15));
}
// In-register transpose of a kWidth x kWidth block: r[i] lane j <-> r[j] lane i.
inline void transpose(vfloat r[16]) {
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // per 128-bit lane: x0 y0 x1 y1
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  // x2 y2 x3 y3
    }
    for (int i = 0; i < 16; i += 4) {  // b[i + m], lane L: rows i..i+3 at column 4 L + m
        b[i] = _mm512_shuffle_ps(a[i], a[i + 2], 0x44);
        b[i + 1] = _mm512_shuffle_ps(a[i], a[i + 2], 0xEE);
        b[i + 2] = _mm512_shuffle_ps(a[i + 1], a[i + 3], 0x44);
        b[i + 3] = _mm512_shuffle_ps(a[i + 1], a[i + 3], 0xEE);
    }
    for (int m = 0; m < 4; ++m) {  // gather lane L of b[m], b[4 + m], b[8 + m], b[12 + m]
        const __m512 p0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x88), p1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xDD);
        const __m512 p2 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x88), p3 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xDD);
        r[m] = _mm512_shuffle_f32x4(p0, p2, 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
        r[4 + m] = _mm512_shuffle_f32x4(p1, p3, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
    }
}
inline float reduce_add(vfloat v) { return _mm512_reduce_add_ps(v); }
inline float reduce_max(vfloat v) { return _mm512_reduce_max_ps(v); }

}  // namespace simd
DDPMKIT_END_NAMESPACE
