// ddpmkit — GEMM: C = alpha op(A) op(B) + beta C, row-major, with transposes and batches.
//
// Float runs a packed, register-blocked kernel (the Goto/BLIS scheme): for each block of
// KC values of k, op(A) is packed into panels of MR rows and op(B) into panels of NR
// columns, both k-major, so the micro-kernel streams them with unit stride and keeps an
// MR x NR tile of C in registers (MR rows x 2 vectors). Partial tiles are zero-padded in
// the packs and written back through a small buffer. Every element of C is computed by
// one thread in a fixed order of k: results do not depend on the thread count.
// Double and DDPMKIT_NO_SIMD run the reference.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

#if !defined(DDPMKIT_ARCH_SCALAR)
namespace gemm_detail {

constexpr int NR = 2 * simd::kWidth;  // columns of a register tile: two vectors
#if defined(DDPMKIT_ARCH_AVX512)
constexpr int MR = 12;  // 24 accumulators + 2 B vectors + 1 broadcast of 32 registers
#elif defined(DDPMKIT_ARCH_AVX2)
constexpr int MR = 6;  // 12 accumulators + 2 + 1 of 16 registers
#else
constexpr int MR = 8;  // NEON: 16 accumulators + 2 + 1 of 32 registers
#endif
constexpr int64_t KC = 256;  // depth of a packed block: an MR x KC panel of A stays in L1

// Ap[p][k][r] = op(A)(p MR + r, k0 + k), zero past row M.
inline void pack_a(bool trans, const float* A, int64_t lda, int64_t M, int64_t k0, int64_t kc, float* Ap) {
    const int64_t panels = (M + MR - 1) / MR;
    parallel_for(0, panels, 8, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            float* dst = Ap + p * MR * kc;
            const int64_t i0 = p * MR, rows = std::min<int64_t>(MR, M - i0);
            for (int64_t k = 0; k < kc; ++k, dst += MR) {
                for (int64_t r = 0; r < rows; ++r) dst[r] = trans ? A[(k0 + k) * lda + i0 + r] : A[(i0 + r) * lda + k0 + k];
                for (int64_t r = rows; r < MR; ++r) dst[r] = 0.0f;
            }
        }
    });
}

// Bp[p][k][c] = op(B)(k0 + k, p NR + c), zero past column N.
inline void pack_b(bool trans, const float* B, int64_t ldb, int64_t N, int64_t k0, int64_t kc, float* Bp) {
    const int64_t panels = (N + NR - 1) / NR;
    parallel_for(0, panels, 4, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            float* dst = Bp + p * NR * kc;
            const int64_t j0 = p * NR, cols = std::min<int64_t>(NR, N - j0);
            for (int64_t k = 0; k < kc; ++k, dst += NR) {
                if (trans)
                    for (int64_t c = 0; c < cols; ++c) dst[c] = B[(j0 + c) * ldb + k0 + k];
                else
                    std::copy(B + (k0 + k) * ldb + j0, B + (k0 + k) * ldb + j0 + cols, dst);
                std::fill(dst + cols, dst + NR, 0.0f);
            }
        }
    });
}

// C[0:rows, 0:cols] = alpha (Ap Bp) + beta C for one MR x NR tile (beta == 0: C not read).
inline void micro_kernel(int64_t kc, const float* a, const float* b, float* C, int64_t ldc, int64_t rows, int64_t cols,
                         float alpha, float beta) {
    using namespace simd;
    vfloat acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = zero();
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
        const vfloat b0 = load(b), b1 = load(b + kWidth);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            const vfloat ar = set1(a[r]);
            acc0[r] = fmadd(ar, b0, acc0[r]);
            acc1[r] = fmadd(ar, b1, acc1[r]);
        }
    }
    const vfloat va = set1(alpha), vb = set1(beta);
    if (rows == MR && cols == NR) {
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            float* c = C + r * ldc;
            vfloat c0 = mul(va, acc0[r]), c1 = mul(va, acc1[r]);
            if (beta != 0.0f) {
                c0 = fmadd(vb, load(c), c0);
                c1 = fmadd(vb, load(c + kWidth), c1);
            }
            store(c, c0);
            store(c + kWidth, c1);
        }
        return;
    }
    float tile[MR * NR];  // partial tile: through a buffer, then only the valid part
    for (int r = 0; r < MR; ++r) {
        store(tile + r * NR, acc0[r]);
        store(tile + r * NR + kWidth, acc1[r]);
    }
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            float& dst = C[r * ldc + c];
            dst = alpha * tile[r * NR + c] + (beta == 0.0f ? 0.0f : beta * dst);
        }
}

// Packing buffers of the calling thread, reused from call to call.
inline std::vector<float>& buffer(int which) {
    thread_local std::vector<float> buffers[2];
    return buffers[which];
}

inline void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    const int64_t mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
    std::vector<float>& Ap = buffer(0);
    std::vector<float>& Bp = buffer(1);
    Ap.resize(static_cast<size_t>(mp * MR * std::min(K, KC)));
    Bp.resize(static_cast<size_t>(np * NR * std::min(K, KC)));
    // Tiles per task: enough that a task is worth a thread (~1 MFLOP).
    const int64_t grain = std::max<int64_t>(1, (1 << 20) / (2 * MR * NR * std::min(K, KC)));
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = std::min(KC, K - k0);
        const float beta_k = k0 == 0 ? beta : 1.0f;  // later blocks add to the first
        pack_a(trans_a, A, lda, M, k0, kc, Ap.data());
        pack_b(trans_b, B, ldb, N, k0, kc, Bp.data());
        // Tiles in column-panel-major order: a thread reuses one B panel across row panels.
        parallel_for(0, mp * np, grain, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t jp = t / mp, ip = t % mp;
                micro_kernel(kc, Ap.data() + ip * MR * kc, Bp.data() + jp * NR * kc, C + ip * MR * ldc + jp * NR, ldc,
                             std::min<int64_t>(MR, M - ip * MR), std::min<int64_t>(NR, N - jp * NR), alpha, beta_k);
            }
        });
    }
}

}  // namespace gemm_detail
#endif

// C = alpha op(A) op(B) + beta C; op(A) is M x K, op(B) is K x N, op(X) = X^T when trans_x.
// With beta == 0, C is not read (it may hold NaN or garbage).
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
#if !defined(DDPMKIT_ARCH_SCALAR)
    if constexpr (use_simd<T>()) {
        if (K == 0) {  // no products: C = beta C
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
            return;
        }
        gemm_detail::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    ref::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// `batch` independent GEMMs; matrix b starts at A + b stride_a (likewise B and C).
// Large batches run one GEMM per thread; small ones let each GEMM use the threads.
template <class T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
                  int64_t stride_c) {
    const int64_t flops = 2 * M * N * std::max<int64_t>(K, 1);
    const int64_t grain = batch >= 2 * num_threads() ? std::max<int64_t>(1, (1 << 20) / flops) : batch;
    parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
            gemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c, ldc);
    });
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
