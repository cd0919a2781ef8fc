// ddpmkit — AArch64 NEON specializations of the SIMD primitives (4 floats a vector).
// Included by kernels/simd.hpp only; nothing else uses intrinsics.
#pragma once

#include <arm_neon.h>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

using vfloat = float32x4_t;
constexpr int kWidth = 4;
// GEMM register tile (kernels/gemm.hpp): rows broadcast from A x vectors loaded from B;
// 16 accumulators + 2 B vectors + 1 broadcast of the 32 registers.
constexpr int kGemmRows = 8, kGemmVectors = 2;

inline vfloat load(const float* p) { return vld1q_f32(p); }
inline void store(float* p, vfloat v) { vst1q_f32(p, v); }
inline vfloat set1(float x) { return vdupq_n_f32(x); }
inline vfloat zero() { return vdupq_n_f32(0.0f); }
inline vfloat add(vfloat a, vfloat b) { return vaddq_f32(a, b); }
inline vfloat sub(vfloat a, vfloat b) { return vsubq_f32(a, b); }
inline vfloat mul(vfloat a, vfloat b) { return vmulq_f32(a, b); }
inline vfloat div(vfloat a, vfloat b) { return vdivq_f32(a, b); }
inline vfloat fmadd(vfloat a, vfloat b, vfloat c) { return vfmaq_f32(c, a, b); }  // a*b + c
// NEON min/max propagate NaN from either operand.
inline vfloat min(vfloat a, vfloat b) { return vminq_f32(a, b); }
inline vfloat max(vfloat a, vfloat b) { return vmaxq_f32(a, b); }
inline vfloat sqrt(vfloat a) { return vsqrtq_f32(a); }
inline vfloat round(vfloat a) { return vrndnq_f32(a); }
// x 2^n for integral n in [-126, 127]: times 2^n built in the exponent bits.
inline vfloat scale2(vfloat x, vfloat n) {
    const int32x4_t e = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
    return vmulq_f32(x, vreinterpretq_f32_s32(vshlq_n_s32(e, 23)));
}
// x = mantissa * 2^exponent with mantissa in [0.5, 1), for finite x > 0 (normal numbers).
inline vfloat frexp_mantissa(vfloat x) {
    const int32x4_t bits = vreinterpretq_s32_f32(x);
    return vreinterpretq_f32_s32(vorrq_s32(vandq_s32(bits, vdupq_n_s32(0x007fffff)), vdupq_n_s32(0x3f000000)));
}
inline vfloat frexp_exponent(vfloat x) {
    const int32x4_t e = vandq_s32(vshrq_n_s32(vreinterpretq_s32_f32(x), 23), vdupq_n_s32(0xff));
    return vcvtq_f32_s32(vsubq_s32(e, vdupq_n_s32(126)));
}
// Lanes where a < b take `if_less`, the others `otherwise`.
inline vfloat select_less(vfloat a, vfloat b, vfloat if_less, vfloat otherwise) {
    return vbslq_f32(vcltq_f32(a, b), if_less, otherwise);
}
// The first n lanes (0 <= n <= 4) of p; the other lanes are 0 on load, untouched on
// store, and never accessed (NEON has no masked access: through a small buffer).
inline vfloat load_partial(const float* p, int n) {
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; ++i) buf[i] = p[i];
    return vld1q_f32(buf);
}
inline void store_partial(float* p, vfloat v, int n) {
    float buf[4];
    vst1q_f32(buf, v);
    for (int i = 0; i < n; ++i) p[i] = buf[i];
}
// unzip: even = the even lanes of a then b, odd = the odd ones (a0 a2 .. b0 b2 .. and a1 a3 ..);
// zip, its inverse: lo, hi = a0 b0 a1 b1 .. then the second halves.
inline void unzip(vfloat a, vfloat b, vfloat& even, vfloat& odd) {
    even = vuzp1q_f32(a, b);
    odd = vuzp2q_f32(a, b);
}
inline void zip(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
    lo = vzip1q_f32(a, b);
    hi = vzip2q_f32(a, b);
}
// slide_down(a, b) = a1 a2 .. a_last b0 and slide_up(a, b) = a_last b0 b1 .. b_(last - 1): the
// lanes moved down (up) by one, the lane that comes in taken from the other vector.
inline vfloat slide_down(vfloat a, vfloat b) { return vextq_f32(a, b, 1); }
inline vfloat slide_up(vfloat a, vfloat b) { return vextq_f32(a, b, 3); }
// In-register transpose of a kWidth x kWidth block: r[i] lane j <-> r[j] lane i.
inline void transpose(vfloat r[4]) {
    const float32x4x2_t t0 = vtrnq_f32(r[0], r[1]), t1 = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(t0.val[0]), vget_low_f32(t1.val[0]));
    r[1] = vcombine_f32(vget_low_f32(t0.val[1]), vget_low_f32(t1.val[1]));
    r[2] = vcombine_f32(vget_high_f32(t0.val[0]), vget_high_f32(t1.val[0]));
    r[3] = vcombine_f32(vget_high_f32(t0.val[1]), vget_high_f32(t1.val[1]));
}
inline float reduce_add(vfloat v) { return vaddvq_f32(v); }
inline float reduce_max(vfloat v) { return vmaxvq_f32(v); }

}  // namespace simd
DDPMKIT_END_NAMESPACE
