// ddpmkit — AVX2 + FMA specializations of the SIMD primitives (8 floats a vector).
// Included by kernels/simd.hpp only; nothing else uses intrinsics.
#pragma once

#include <immintrin.h>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

using vfloat = __m256;
constexpr int kWidth = 8;
// GEMM register tile (kernels/gemm.hpp): rows broadcast from A x vectors loaded from B;
// 12 accumulators + 2 B vectors + 1 broadcast of the 16 registers.
constexpr int kGemmRows = 6, kGemmVectors = 2;

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
// x 2^n for integral n in [-126, 127]: times 2^n built in the exponent bits.
inline vfloat scale2(vfloat x, vfloat n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(x, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
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
// The first n lanes (0 <= n <= 8) of p; the other lanes are 0 on load, untouched on
// store, and never accessed (no fault past the end of an array).
inline __m256i lanes_below(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
inline vfloat load_partial(const float* p, int n) { return _mm256_maskload_ps(p, lanes_below(n)); }
inline void store_partial(float* p, vfloat v, int n) { _mm256_maskstore_ps(p, lanes_below(n), v); }
// unzip: even = the even lanes of a then b, odd = the odd ones (a0 a2 .. b0 b2 .. and a1 a3 ..);
// zip, its inverse: lo, hi = a0 b0 a1 b1 .. then the second halves.
inline void unzip(vfloat a, vfloat b, vfloat& even, vfloat& odd) {  // in-lane shuffles, then the 64-bit pairs in order
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline void zip(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
    const vfloat l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);  // a0 b0 a1 b1 | a4 b4 a5 b5 and a2 .. | a6 ..
    lo = _mm256_permute2f128_ps(l, h, 0x20);
    hi = _mm256_permute2f128_ps(l, h, 0x31);
}
// slide_down(a, b) = a1 a2 .. a_last b0 and slide_up(a, b) = a_last b0 b1 .. b_(last - 1): the
// lanes moved down (up) by one, the lane that comes in taken from the other vector.
inline vfloat slide_down(vfloat a, vfloat b) {  // a4..a7 b0..b3 bridges the halves; alignr moves bytes within each
    const __m256i bridge = _mm256_castps_si256(_mm256_permute2f128_ps(a, b, 0x21));
    return _mm256_castsi256_ps(_mm256_alignr_epi8(bridge, _mm256_castps_si256(a), 4));
}
inline vfloat slide_up(vfloat a, vfloat b) {
    const __m256i bridge = _mm256_castps_si256(_mm256_permute2f128_ps(a, b, 0x21));
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(b), bridge, 12));
}
// In-register transpose of a kWidth x kWidth block: r[i] lane j <-> r[j] lane i.
inline void transpose(vfloat r[8]) {
    __m256 a[8], b[8];
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {  // b[i + m], lane L: rows i..i+3 at column 4 L + m
        b[i] = _mm256_shuffle_ps(a[i], a[i + 2], 0x44);
        b[i + 1] = _mm256_shuffle_ps(a[i], a[i + 2], 0xEE);
        b[i + 2] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0x44);
        b[i + 3] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0xEE);
    }
    for (int m = 0; m < 4; ++m) {
        r[m] = _mm256_permute2f128_ps(b[m], b[4 + m], 0x20);
        r[4 + m] = _mm256_permute2f128_ps(b[m], b[4 + m], 0x31);
    }
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
