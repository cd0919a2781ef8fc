// ddpmkit — the SIMD primitives on a vector of one float, for targets without a supported
// instruction set and for DDPMKIT_NO_SIMD: every kernel is written once over the primitives
// and runs here as plain scalar code (the ref:: oracles of kernels/reference.hpp stay apart,
// for the tests). Included by kernels/simd.hpp only.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace simd {

using vfloat = float;
constexpr int kWidth = 1;
// GEMM register tile (kernels/gemm.hpp): 4 rows x 3 columns, 12 accumulators + 3 + 1 of the
// 16 floating-point registers an x86-64 has without AVX (AArch64 and RISC-V have 32).
constexpr int kGemmRows = 4, kGemmVectors = 3;

// GCC 12 with AVX-512 on (DDPMKIT_NO_SIMD beside -march=native on such a CPU) vectorizes the
// micro-kernel's loop over k into loads of rows past the end of its k block, which crashed
// when the block ended the matrix: kernels marked with this stay as written.
#if defined(__GNUC__) && !defined(__clang__)
#define DDPMKIT_AS_WRITTEN __attribute__((optimize("no-tree-vectorize")))
#endif

inline vfloat load(const float* p) { return *p; }
inline void store(float* p, vfloat v) { *p = v; }
inline vfloat set1(float x) { return x; }
inline vfloat zero() { return 0.0f; }
inline vfloat add(vfloat a, vfloat b) { return a + b; }
inline vfloat sub(vfloat a, vfloat b) { return a - b; }
inline vfloat mul(vfloat a, vfloat b) { return a * b; }
inline vfloat div(vfloat a, vfloat b) { return a / b; }
inline vfloat fmadd(vfloat a, vfloat b, vfloat c) { return a * b + c; }  // contracted to an FMA where the target has one
// min/max return the second operand when either is NaN, as on x86: callers pass the data second.
inline vfloat min(vfloat a, vfloat b) { return a < b ? a : b; }
inline vfloat max(vfloat a, vfloat b) { return a > b ? a : b; }
inline vfloat sqrt(vfloat a) { return std::sqrt(a); }
inline vfloat round(vfloat a) { return std::nearbyint(a); }  // ties to even, as the vector rounds
// x 2^n for integral n in [-126, 127]: times 2^n built in the exponent bits.
inline vfloat scale2(vfloat x, vfloat n) {
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float p;
    std::memcpy(&p, &bits, sizeof p);
    return x * p;
}
// x = mantissa * 2^exponent with mantissa in [0.5, 1), for finite x > 0.
inline vfloat frexp_mantissa(vfloat x) {
    int e;
    return std::frexp(x, &e);
}
inline vfloat frexp_exponent(vfloat x) {
    int e;
    std::frexp(x, &e);
    return static_cast<float>(e);
}
inline vfloat select_less(vfloat a, vfloat b, vfloat if_less, vfloat otherwise) { return a < b ? if_less : otherwise; }
// The first n lanes (0 <= n <= 1) of p; nothing is accessed when n is 0.
inline vfloat load_partial(const float* p, int n) { return n > 0 ? *p : 0.0f; }
inline void store_partial(float* p, vfloat v, int n) {
    if (n > 0) *p = v;
}
// unzip: even = the even lanes of a then b, odd = the odd ones (a0 a2 .. b0 b2 .. and a1 a3 ..);
// zip, its inverse: lo, hi = a0 b0 a1 b1 .. then the second halves.
inline void unzip(vfloat a, vfloat b, vfloat& even, vfloat& odd) { even = a, odd = b; }
inline void zip(vfloat a, vfloat b, vfloat& lo, vfloat& hi) { lo = a, hi = b; }
// slide_down(a, b) = a1 a2 .. a_last b0 and slide_up(a, b) = a_last b0 b1 .. b_(last - 1): the
// lanes moved down (up) by one, the lane that comes in taken from the other vector.
inline vfloat slide_down(vfloat, vfloat b) { return b; }
inline vfloat slide_up(vfloat a, vfloat) { return a; }
inline void transpose(vfloat*) {}  // a 1 x 1 block is its own transpose
inline float reduce_add(vfloat v) { return v; }
inline float reduce_max(vfloat v) { return v; }

}  // namespace simd
DDPMKIT_END_NAMESPACE
