// ddpmkit — every DDPMKIT_* switch with its default, and the ABI namespace.
#pragma once

#include "ddpmkit/version.hpp"

// DDPMKIT_NO_SIMD     force the scalar architecture: the same kernels on vectors of one float
// DDPMKIT_NO_OPENMP   run every parallel loop on the calling thread
// DDPMKIT_ARCH_*      exactly one is set: the instruction set the kernels are built for,
//                     chosen from the compiler's target flags (-mavx512f, -mavx2 -mfma, NEON).
#if defined(DDPMKIT_NO_SIMD)
#define DDPMKIT_ARCH_SCALAR 1
#define DDPMKIT_ARCH_NAME "scalar"
#elif defined(__AVX512F__)
#define DDPMKIT_ARCH_AVX512 1
#define DDPMKIT_ARCH_NAME "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#define DDPMKIT_ARCH_AVX2 1
#define DDPMKIT_ARCH_NAME "avx2"
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define DDPMKIT_ARCH_NEON 1
#define DDPMKIT_ARCH_NAME "neon"
#else
#define DDPMKIT_ARCH_SCALAR 1
#define DDPMKIT_ARCH_NAME "scalar"
#endif

#if defined(_OPENMP) && !defined(DDPMKIT_NO_OPENMP)
#define DDPMKIT_HAS_OPENMP 1
#endif

// Header-only code compiled with different -m flags in two translation units would give
// two different bodies to one inline function, and the linker would keep either (an ODR
// violation that can run AVX-512 code on a CPU without it). Every definition therefore
// lives in an inline namespace named after the instruction set: the two copies get
// different mangled names, and user code still spells ddpmkit::Tensor.
#if defined(DDPMKIT_ARCH_AVX512)
#define DDPMKIT_ABI v0_avx512
#elif defined(DDPMKIT_ARCH_AVX2)
#define DDPMKIT_ABI v0_avx2
#elif defined(DDPMKIT_ARCH_NEON)
#define DDPMKIT_ABI v0_neon
#else
#define DDPMKIT_ABI v0_scalar
#endif

#define DDPMKIT_BEGIN_NAMESPACE \
    namespace ddpmkit {         \
    inline namespace DDPMKIT_ABI {
#define DDPMKIT_END_NAMESPACE \
    }                         \
    }

DDPMKIT_BEGIN_NAMESPACE

// The kernels compiled into the calling translation unit: "avx512", "avx2", "neon" or
// "scalar" (DDPMKIT_ARCH_NAME), chosen by its compiler flags: a consumer built without
// -march flags on x86-64 gets "scalar" (README: Instruction sets, ddpmkit::native). In the
// ABI namespace, so each translation unit of a program built with mixed flags gets its own.
constexpr const char* arch_name() noexcept { return DDPMKIT_ARCH_NAME; }

// Whether the parallel loops of the calling translation unit use OpenMP (-fopenmp, and
// DDPMKIT_NO_OPENMP not defined); without it they run on the calling thread.
constexpr bool has_openmp() noexcept {
#if defined(DDPMKIT_HAS_OPENMP)
    return true;
#else
    return false;
#endif
}

DDPMKIT_END_NAMESPACE
