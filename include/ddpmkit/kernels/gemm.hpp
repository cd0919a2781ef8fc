// ddpmkit — GEMM: C = alpha op(A) op(B) + beta C, row-major, with transposes and batches.
//
// Float runs a packed, register-blocked kernel (the Goto/BLIS scheme): op(A) is packed once
// into panels of MR rows and op(B), one panel at a time, into panels of NR columns, both
// k-major, so the micro-kernel streams them with unit stride and keeps an MR x NR tile of C
// in registers (MR rows x NV vectors). Partial tiles are zero-padded in the packs and
// written back through a small buffer. Every element of C is computed by one thread in a
// fixed order of k: results do not depend on the thread count.
//
// The engine works on views (gemm_detail::View): a matrix whose columns may come in
// segments, X(r, c) = data[(c / seg) seg_stride + r ld + c % seg]. Seen that way, the
// activations of several images [B, C, P] are one [C, B P] matrix without a copy, which is
// how the convolutions batch images into one GEMM (kernels/conv2d.hpp).
// Double runs the reference.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

namespace gemm_detail {

// Longest k block: a cache size, not an instruction set's (measured with AVX-512: 320 beats 256
// and 384 at K = 576 and 1152).
constexpr int64_t kKC = 320;

constexpr int64_t kInPlaceFloats = int64_t(1) << 16;  // 256 KB: 64 pages of 4 KB
constexpr int64_t kNoSegment = std::numeric_limits<int64_t>::max();

// op(X) of a row-major matrix X whose columns may come in segments:
// X(r, c) = data[(c / seg) seg_stride + r ld + c % seg]; op(X) = X^T when trans.
struct View {
    const float* data;
    int64_t ld;
    bool trans = false;
    int64_t seg = kNoSegment, seg_stride = 0;
    const float* at(int64_t r, int64_t c) const {  // &X(r, c)
        return seg == kNoSegment ? data + r * ld + c : data + (c / seg) * seg_stride + r * ld + c % seg;
    }
};
// The output: C(r, c) = data[(c / seg) seg_stride + r ld + c % seg].
struct OutView {
    float* data;
    int64_t ld;
    int64_t seg = kNoSegment, seg_stride = 0;
    float* at(int64_t r, int64_t c) const {
        return seg == kNoSegment ? data + r * ld + c : data + (c / seg) * seg_stride + r * ld + c % seg;
    }
};

// Runs fn(t) for every t in [0, n) on the threads, handing tasks out one at a time: on a
// busy machine a thread that loses its core does not hold up the others at the barrier
// (static halves did: the other thread finished and spun). A task's result must not depend
// on the thread that runs it. Inside a parallel region, or with one thread, a plain loop.
template <class Fn>
void parallel_tasks(int64_t n, const Fn& fn) {
#if defined(DDPMKIT_HAS_OPENMP)
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), n));
    if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t t = 0; t < n; ++t) fn(t);
        return;
    }
#endif
    for (int64_t t = 0; t < n; ++t) fn(t);
}

// Equal k blocks of at most kKC.
inline int64_t k_block(int64_t K) {
    const int64_t blocks = (K + kKC - 1) / kKC;
    return (K + blocks - 1) / blocks;
}

// Calls fn(c0, c1, offset): [c0, c1) a run of column indices of X inside one segment,
// starting at offset c0's address minus row 0 (that is, &X(0, c0) - data).
template <class Fn>
void for_each_run(int64_t seg, int64_t seg_stride, int64_t c0, int64_t c1, const Fn& fn) {
    if (seg == kNoSegment) {
        fn(c0, c1, c0);
        return;
    }
    for (int64_t c = c0; c < c1;) {
        const int64_t s = c / seg, e = std::min(c1, (s + 1) * seg);
        fn(c, e, s * seg_stride + c % seg);
        c = e;
    }
}

// Ap[k][r] = op(A)(i0 + r, k0 + k) for one panel of MR rows, zero past row M.
template <int MR>
void pack_a_panel(const View& A, int64_t M, int64_t i0, int64_t k0, int64_t kc, float* dst) {
    const int64_t rows = std::min<int64_t>(MR, M - i0);
    if (rows < MR) std::fill(dst, dst + MR * kc, 0.0f);
    if (A.trans) {  // op(A)(i, k) = X(k, i): MR neighbours in a row of X
        for (int64_t k = 0; k < kc; ++k) {
            float* d = dst + k * MR;
            if (A.seg == kNoSegment) {
                const float* src = A.data + (k0 + k) * A.ld + i0;
                for (int64_t r = 0; r < rows; ++r) d[r] = src[r];
            } else {
                for (int64_t r = 0; r < rows; ++r) d[r] = *A.at(k0 + k, i0 + r);
            }
        }
        return;
    }
    // op(A)(i, k) = X(i, k): rows of X, in runs of k that share a segment, transposed kWidth
    // columns at a time when a panel's rows fit in one vector
    for_each_run(A.seg, A.seg_stride, k0, k0 + kc, [&](int64_t c0, int64_t c1, int64_t off) {
        const float* src = A.data + off + i0 * A.ld;  // row r of the panel at src + r ld
        float* d = dst + (c0 - k0) * MR;
        const int64_t len = c1 - c0;
        int64_t k = 0;
        if constexpr (MR <= simd::kWidth) {
            constexpr int W = simd::kWidth;
            for (; k + W <= len; k += W) {
                simd::vfloat v[W];
                for (int q = 0; q < W; ++q) v[q] = q < rows ? simd::load(src + q * A.ld + k) : simd::zero();
                simd::transpose(v);  // v[j] lane r = X(i0 + r, k + j)
                for (int j = 0; j < W; ++j) simd::store_partial(d + (k + j) * MR, v[j], MR);
            }
        }
        for (int64_t r = 0; r < rows; ++r)  // the rest of the run
            for (int64_t kk = k; kk < len; ++kk) d[kk * MR + r] = src[r * A.ld + kk];
    });
}

// Bp[k][c] = op(B)(k0 + k, j0 + c) for one panel of NR columns, zero past column N.
template <int NR>
void pack_b_panel(const View& B, int64_t N, int64_t j0, int64_t k0, int64_t kc, float* dst) {
    const int64_t cols = std::min<int64_t>(NR, N - j0);
    if (B.trans) {  // op(B)(k, j) = X(j, k): rows of X, transposed kWidth x kWidth blocks at a time
        constexpr int W = simd::kWidth;
        if (cols < NR)
            for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * NR + cols, dst + (k + 1) * NR, 0.0f);
        for_each_run(B.seg, B.seg_stride, k0, k0 + kc, [&](int64_t c0, int64_t c1, int64_t off) {
            const float* src = B.data + off + j0 * B.ld;  // row c of the panel at src + c ld
            float* d = dst + (c0 - k0) * NR;
            const int64_t len = c1 - c0;
            int64_t k = 0;
            for (; k + W <= len; k += W)
                for (int g = 0; g < NR; g += W) {
                    simd::vfloat v[W];
                    for (int q = 0; q < W; ++q) v[q] = g + q < cols ? simd::load(src + (g + q) * B.ld + k) : simd::zero();
                    simd::transpose(v);
                    for (int q = 0; q < W; ++q) simd::store(d + (k + q) * NR + g, v[q]);
                }
            for (int64_t c = 0; c < cols; ++c)  // leftovers of the run
                for (int64_t kk = k; kk < len; ++kk) d[kk * NR + c] = src[c * B.ld + kk];
        });
        return;
    }
    // op(B)(k, j) = X(k, j): each row of the panel is one or a few runs of a row of X
    struct Run {
        int64_t dst, src, len;
    };
    Run runs[NR];
    int nruns = 0;
    for_each_run(B.seg, B.seg_stride, j0, j0 + cols, [&](int64_t c0, int64_t c1, int64_t off) {
        runs[nruns++] = {c0 - j0, off, c1 - c0};
    });
    if (nruns == 1) {  // the common case: one run, as whole vectors, the last ones partial or zero
        // (a library call per row of a partial panel cost the Winograd forward at 16 -> 16, 28x28,
        // 6 % of its time)
        const float* src = B.data + runs[0].src + k0 * B.ld;
        const int64_t ld = B.ld;
        for (int64_t k = 0; k < kc; ++k, src += ld, dst += NR)
            for (int v = 0; v < NR; v += simd::kWidth) {
                const int64_t left = cols - v;
                simd::store(dst + v, left >= simd::kWidth ? simd::load(src + v)
                                     : left > 0           ? simd::load_partial(src + v, static_cast<int>(left))
                                                          : simd::zero());
            }
        return;
    }
    for (int64_t k = 0; k < kc; ++k, dst += NR) {
        const float* row = B.data + (k0 + k) * B.ld;
        for (int i = 0; i < nruns; ++i) std::copy(row + runs[i].src, row + runs[i].src + runs[i].len, dst + runs[i].dst);
        std::fill(dst + cols, dst + NR, 0.0f);
    }
}

// C[0:rows, 0:cols] = alpha tile + beta C + bias[r] for a tile of rows NR floats apart: the
// full tile's arithmetic on masked vectors (the Winograd forward's 196 tiles leave a partial
// 20-column tile; scalar, 36 GEMMs 16 x 196 x 32 took 4 % longer). Out of line: inside the
// micro-kernel it cost the full tiles their registers (1.4x the time at 16 x 208 x 16).
[[gnu::noinline]] inline void store_partial_tile(const float* tile, int64_t NR, float* C, int64_t ldc, int64_t rows,
                                                 int64_t cols, float alpha, float beta, const float* bias) {
    using namespace simd;
    const vfloat va = set1(alpha), vb = set1(beta);
    for (int64_t r = 0; r < rows; ++r) {
        float* c = C + r * ldc;
        const vfloat add_r = bias ? set1(bias[r]) : zero();
        for (int64_t j = 0; j < cols; j += kWidth) {
            const int n = static_cast<int>(std::min<int64_t>(kWidth, cols - j));
            vfloat x = fmadd(va, load(tile + r * NR + j), add_r);
            if (beta != 0.0f) x = fmadd(vb, load_partial(c + j, n), x);
            store_partial(c + j, x, n);
        }
    }
}

// The MR x NR tile: C[0:rows, 0:cols] = alpha (Ap Bp) + beta C + bias[r]
// (beta == 0: C is not read; bias may be null). Row k of Bp is at b + k ldb.
template <int MR, int NV>
DDPMKIT_AS_WRITTEN void micro_kernel(int64_t kc, const float* a, const float* b, int64_t ldb, float* C, int64_t ldc, int64_t rows,
                  int64_t cols, float alpha, float beta, const float* bias) {
    using namespace simd;
    constexpr int W = kWidth, NR = NV * W;
    vfloat acc[MR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = zero();
    for (int64_t k = 0; k < kc; ++k, a += MR, b += ldb) {
        vfloat bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = load(b + v * W);
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
            const vfloat ar = set1(a[r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = fmadd(ar, bv[v], acc[r][v]);
        }
    }
    const vfloat va = set1(alpha), vb = set1(beta);
    if (rows == MR && cols == NR) {
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
            float* c = C + r * ldc;
            const vfloat add_r = bias ? set1(bias[r]) : zero();
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                vfloat x = fmadd(va, acc[r][v], add_r);
                if (beta != 0.0f) x = fmadd(vb, load(c + v * W), x);
                store(c + v * W, x);
            }
        }
        return;
    }
    alignas(64) float tile[MR * NR];  // a partial tile: through a buffer, then its valid part
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) store(tile + r * NR + v * W, acc[r][v]);
    store_partial_tile(tile, NR, C, ldc, rows, cols, alpha, beta, bias);
}

// Packing buffers of the calling thread, reused from call to call.
inline std::vector<float>& buffer(int which) {
    thread_local std::vector<float> buffers[2];
    return buffers[which];
}

// The GEMM engine: MR x NR register tiles; the last column panel of a matrix takes the
// narrowest tile of whole vectors that covers it (N = 196 computes 208 columns, not 240).
struct Engine {
    static constexpr int MR = simd::kGemmRows, NV = simd::kGemmVectors, NR = NV * simd::kWidth;

    // Floats of a full pack of op(A), M x K.
    static int64_t packed_a_size(int64_t M, int64_t K) { return (M + MR - 1) / MR * MR * K; }

    // Packs all of op(A): k block kb (from k0 = kb kc) at Ap + k0 Mpad, its panel p at + p MR kc_b.
    static void pack_a(const View& A, int64_t M, int64_t K, float* Ap) {
        const int64_t grain = M * K < (int64_t(1) << 18) ? pack_a_tasks(M, K) : 1;  // small: not worth a barrier
        parallel_for(0, pack_a_tasks(M, K), grain, [&](int64_t t0, int64_t t1) { pack_a_range(A, M, K, Ap, t0, t1); });
    }

    // C = alpha op(A) op(B) + beta C + bias (bias[i] added to row i; may be null), with
    // op(A) packed by pack_a. Runs on the calling thread inside a parallel region.
    static void run_packed(int64_t M, int64_t N, int64_t K, float alpha, const float* Ap, const View& B, float beta,
                           const OutView& C, const float* bias) {
        const Tasks tasks(M, N, K);
        if (tasks.serial()) {
            for (int64_t t = 0; t < tasks.count; ++t) tasks.run(t, alpha, Ap, B, beta, C, bias);
            return;
        }
        parallel_tasks(tasks.count, [&](int64_t t) { tasks.run(t, alpha, Ap, B, beta, C, bias); });
    }

    // C = alpha op(A) op(B) + beta C + bias, packing op(A) into the calling thread's buffer:
    // the threads pack their share of it, then take tasks, in one parallel region.
    static void run(int64_t M, int64_t N, int64_t K, float alpha, const View& A, const View& B, float beta,
                    const OutView& C, const float* bias = nullptr) {
        std::vector<float>& Ap_buffer = buffer(0);
        grow(Ap_buffer, packed_a_size(M, K));
        float* Ap = Ap_buffer.data();
        const Tasks tasks(M, N, K);
        const int64_t packs = pack_a_tasks(M, K);
#if defined(DDPMKIT_HAS_OPENMP)
        if (!tasks.serial()) {
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(tasks.threads, tasks.count)))
            {
#pragma omp for schedule(static)
                for (int64_t t = 0; t < packs; ++t) pack_a_range(A, M, K, Ap, t, t + 1);
#pragma omp for schedule(dynamic, 1)
                for (int64_t t = 0; t < tasks.count; ++t) tasks.run(t, alpha, Ap, B, beta, C, bias);
            }
            return;
        }
#endif
        pack_a_range(A, M, K, Ap, 0, packs);
        for (int64_t t = 0; t < tasks.count; ++t) tasks.run(t, alpha, Ap, B, beta, C, bias);
    }

private:
    // Pack tasks: one per (k block, row panel).
    static int64_t pack_a_tasks(int64_t M, int64_t K) {
        const int64_t kc = k_block(K);
        return (K + kc - 1) / kc * ((M + MR - 1) / MR);
    }
    static void pack_a_range(const View& A, int64_t M, int64_t K, float* Ap, int64_t t0, int64_t t1) {
        const int64_t kc = k_block(K), mp = (M + MR - 1) / MR;
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t kb = t / mp, p = t % mp, k0 = kb * kc, kcb = std::min(kc, K - k0);
            pack_a_panel<MR>(A, M, p * MR, k0, kcb, Ap + k0 * mp * MR + p * MR * kcb);
        }
    }

    // The tasks of one product: a column panel times a share of the row panels. With few
    // column panels the rows are split too, so that the threads get about four tasks each
    // (whose sizes differ when the last panel is narrow; tasks are handed out one at a time).
    // Panels are NV vectors wide but the last, which takes what is left; when that would be one
    // vector after a full panel (NV = 3), the two share four vectors as two and two, because a
    // one-vector tile spends a load on every multiply-add.
    struct Tasks {
        int64_t M, N, K, kc, mp, vectors, np, mblocks = 1, count = 1, threads = 1;
        bool halves;  // the last two panels are two vectors each
        Tasks(int64_t m, int64_t n, int64_t k)
            : M(m), N(n), K(k), kc(k_block(k)), mp((m + MR - 1) / MR), vectors((n + simd::kWidth - 1) / simd::kWidth),
              np((vectors + NV - 1) / NV), halves(NV == 3 && vectors > 3 && vectors % 3 == 1) {
#if defined(DDPMKIT_HAS_OPENMP)
            if (!omp_in_parallel()) threads = num_threads();
#endif
            mblocks = std::min<int64_t>(mp, std::max<int64_t>(1, (4 * threads + np - 1) / np));
            count = np * mblocks;
        }
        bool serial() const { return threads == 1 || count == 1 || 2 * M * N * K < (int64_t(1) << 21); }

        void run(int64_t t, float alpha, const float* Ap, const View& B, float beta, const OutView& C,
                 const float* bias) const {
            const int64_t jp = t / mblocks, ib = t % mblocks;
            const int64_t ip0 = mp * ib / mblocks, ip1 = mp * (ib + 1) / mblocks;
            const int64_t v0 = halves && jp == np - 1 ? jp * NV - 1 : jp * NV;  // the panel's first vector
            const int64_t width = halves && jp >= np - 2 ? 2 : std::min<int64_t>(NV, vectors - v0);
            const int64_t j0 = v0 * simd::kWidth;
            if (width == 1) return column_panel<1>(ip0, ip1, j0, alpha, Ap, B, beta, C, bias);
            if constexpr (NV > 2)
                if (width == 2) return column_panel<2>(ip0, ip1, j0, alpha, Ap, B, beta, C, bias);
            column_panel<NV>(ip0, ip1, j0, alpha, Ap, B, beta, C, bias);
        }

        // Row panels [ip0, ip1) of the column panel at j0, with a tile of NVp vectors.
        template <int NVp>
        void column_panel(int64_t ip0, int64_t ip1, int64_t j0, float alpha, const float* Ap,
                          const View& B, float beta, const OutView& C, const float* bias) const {
            constexpr int NRp = NVp * simd::kWidth;
            const int64_t cols = std::min<int64_t>(NRp, N - j0);
            // Whole vectors of rows of op(B) in one segment are read in place: the micro-kernel
            // streams NRp contiguous floats per k either way, and packing would copy them once
            // more. Packing pays when many row panels reuse a k block whose rows are spread wider
            // than the first-level TLB reaches (measured: M = 128, K = 1152, N = 784 packed runs
            // 1.1-1.2x faster; M = 64, N = 3136 in place 1.25x faster).
            const bool spread = ip1 - ip0 > 8 && kc * B.ld > kInPlaceFloats;
            const bool in_place = !B.trans && cols == NRp && !spread &&
                                  (B.seg == kNoSegment || j0 / B.seg == (j0 + cols - 1) / B.seg);
            std::vector<float>& Bp = buffer(1);
            if (!in_place) grow(Bp, NR * kc);
            for (int64_t k0 = 0; k0 < K; k0 += kc) {
                const int64_t kcb = std::min(kc, K - k0);
                const float* b = in_place ? B.at(k0, j0) : Bp.data();
                if (!in_place) pack_b_panel<NRp>(B, N, j0, k0, kcb, Bp.data());
                const int64_t ldb = in_place ? B.ld : NRp;
                const float beta_k = k0 == 0 ? beta : 1.0f;  // later blocks add to the first
                const float* bias_k = k0 == 0 ? bias : nullptr;
                for (int64_t ip = ip0; ip < ip1; ++ip) {
                    const int64_t i0 = ip * MR, rows = std::min<int64_t>(MR, M - i0);
                    tile<NVp>(kcb, Ap + k0 * mp * MR + ip * MR * kcb, b, ldb, C, i0, j0, rows, cols, alpha, beta_k,
                              bias_k ? bias_k + i0 : nullptr);
                }
            }
        }
    };

    // One tile, straight into C when its columns share a segment, else through a buffer.
    template <int NVp>
    static void tile(int64_t kc, const float* a, const float* b, int64_t ldb, const OutView& C, int64_t i0, int64_t j0,
                     int64_t rows, int64_t cols, float alpha, float beta, const float* bias) {
        constexpr int NRp = NVp * simd::kWidth;  // a one-column tile is always in one segment
        if (NRp == 1 || C.seg == kNoSegment || j0 / C.seg == (j0 + cols - 1) / C.seg) {
            micro_kernel<MR, NVp>(kc, a, b, ldb, C.at(i0, j0), C.ld, rows, cols, alpha, beta, bias);
            return;
        }
        alignas(64) float buf[MR * NRp];
        micro_kernel<MR, NVp>(kc, a, b, ldb, buf, NRp, MR, NRp, alpha, 0.0f, nullptr);  // bias: only `rows` of it exist
        for_each_run(C.seg, C.seg_stride, j0, j0 + cols, [&](int64_t c0, int64_t c1, int64_t off) {
            for (int64_t r = 0; r < rows; ++r) {
                float* dst = C.data + off + (i0 + r) * C.ld;
                const float* src = buf + r * NRp + (c0 - j0);
                const float add = bias ? bias[r] : 0.0f;
                for (int64_t c = 0; c < c1 - c0; ++c) dst[c] = src[c] + add + (beta == 0.0f ? 0.0f : beta * dst[c]);
            }
        });
    }
};

inline void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    Engine::run(M, N, K, alpha, View{A, lda, trans_a}, View{B, ldb, trans_b}, beta, OutView{C, ldc});
}

}  // namespace gemm_detail

// Runs fn(c) for the chunks c in [0, chunks) of a batch (of images, or single images): with at
// least as many chunks as threads, as parallel_for's ranges (each thread its own block of
// chunks first, the part of the batch the layers before and after give it too), each chunk's
// GEMMs on its thread; with fewer, in order, each GEMM on all threads. Either way each chunk's
// result is computed the same way: the output does not depend on the thread count.
template <class Fn>
void for_each_chunk(int64_t chunks, const Fn& fn) {
    if (chunks >= num_threads())
        parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) fn(c);
        });
    else
        for (int64_t c = 0; c < chunks; ++c) fn(c);
}

// C = alpha op(A) op(B) + beta C; op(A) is M x K, op(B) is K x N, op(X) = X^T when trans_x.
// With beta == 0, C is not read (it may hold NaN or garbage).
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if constexpr (use_simd<T>()) {
        if (K == 0) {  // no products: C = beta C
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
            return;
        }
        gemm_detail::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
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
