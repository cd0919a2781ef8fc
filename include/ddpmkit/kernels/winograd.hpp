// ddpmkit — 3x3 convolutions with stride 1 and padding 1 by Winograd's minimal filtering
// (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks").
//
// F(m x m, 3x3) cuts the output into m x m tiles; each reads an (m + 2) x (m + 2) input patch
// d. With the weight transform U = G g G^T and the patch transform V = B^T d B, the tile is
//   Y = A^T (U . V) A                                       (. elementwise).
// Summed over input channels, each of the (m + 2)^2 positions xi of the transform is a GEMM,
// M[xi] [O, tiles] = U[xi] [O, C] V[xi] [C, tiles].
//
// The forward pass and the input gradient (the same convolution of dy with the weights flipped
// and transposed) run F(4x4, 3x3) unless its GEMMs would be larger than F(2x2)'s
// (forward_tiles); the weight gradient, dU[xi] = (A dY A^T)[xi] V[xi]^T summed over tiles,
// then dg = G^T dU G (the exact adjoint), where its GEMMs sum over 48 tiles or more
// (backward_weight). F(4x4) takes 36 multiplies per 16
// outputs, where a direct convolution takes 144 and F(2x2) 64, and 2.25 transformed values per
// pixel, where F(2x2) writes 4 and im2col 9. Its matrices (points 0, 1, -1, 2, -2, infinity):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// Its larger coefficients cost accuracy: errors of up to about 35 float epsilons of the sum
// of |x| |w| over an output's inputs (65 where that sum runs over a single input channel),
// against 1 to 2 for F(2x2) (tests/test_kernels.cpp).
// Elsewhere (the weight gradient at 7x7, say), F(2x2, 3x3):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Images are processed in chunks (a few hundred tiles each, one chunk per task); the weight
// gradient sums fixed chunks in index order, so every result is bitwise the same for any
// thread count. Float only; conv2d.hpp chooses it for 3x3, stride 1, padding 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/simd.hpp"


// The next loop's arrays do not overlap: without the promise GCC keeps the loops over the
// 16 transform planes scalar (too many pointers to check at run time).
#if defined(__clang__)
#define DDPMKIT_NO_ALIAS _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define DDPMKIT_NO_ALIAS _Pragma("GCC ivdep")
#else
#define DDPMKIT_NO_ALIAS
#endif

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {
// A convolution's input x [B, C, H, W]: in memory, or made on demand by make(b0, n, dst),
// which writes images b0 .. b0 + n - 1 to dst. The U-Net's GroupNorm + SiLU is made so, a
// chunk of images at a time as the convolution reads them (group_norm_silu_conv2d): the
// activation is never written out whole. conv2d_forward makes each image once; conv2d_backward
// makes each once after it has written dx, and only for dw (none without dw or with no output
// channels). A pointer converts to the first kind.
template <class T>
struct ConvInput {
    const T* data = nullptr;
    std::function<void(int64_t b0, int64_t n, T* dst)> make;
    ConvInput(const T* x) : data(x) {}  // NOLINT(google-explicit-constructor): a pointer is the usual input
    explicit ConvInput(std::function<void(int64_t, int64_t, T*)> f) : make(std::move(f)) {}
    // Images [b0, b0 + n) of `size` elements each: where they lie, or made into buf.
    const T* images(int64_t b0, int64_t n, int64_t size, std::vector<T>& buf) const {
        if (data) return data + b0 * size;
        grow(buf, n * size);
        make(b0, n, buf.data());
        return buf.data();
    }
};

namespace winograd {

using gemm_detail::Engine;
using gemm_detail::OutView;
using gemm_detail::View;

// Floats of transformed inputs and outputs per chunk of images: 1 MB, which stays in L2
// (measured: 2 and 4 MB chunks were slower, by up to a third at 28x28).
constexpr int64_t kChunkFloats = int64_t(1) << 18;

// Floats from one transform plane to the next for planes of `rows` rows `ld` apart: a whole,
// odd number of 64-byte lines, so that the 16 or 36 planes a transform reads or writes at
// once map to different L1 cache sets. (At a power-of-two stride they share a few sets and
// evict each other: the F(4x4) input transform of 8 14x14 images, planes of 8 KB, ran 2.6
// times slower.)
inline int64_t plane_stride(int64_t rows, int64_t ld) { return (((rows * ld + 15) / 16) | 1) * 16; }

// The m x m output tiles of an H x W image, (m + 2)^2 transform positions each.
struct Tiles {
    int64_t H, W, m, th, tw;
    Tiles(int64_t h, int64_t w, int64_t side)
        : H(h), W(w), m(side), th((h + side - 1) / side), tw((w + side - 1) / side) {}
    int64_t per_image() const { return th * tw; }
    int64_t points() const { return (m + 2) * (m + 2); }
    // Images per chunk (at most B): the fewest columns of register tiles wasted on padding
    // (the GEMMs compute N rounded up to whole vectors), and of those the most images (wider
    // GEMMs), with the transformed inputs and outputs of `channels` channels within
    // kChunkFloats and, where the batch allows, four chunks or more per thread.
    int64_t images_per_chunk(int64_t B, int64_t channels) const {
        const int64_t budget = std::max<int64_t>(1, std::min(kChunkFloats / (points() * channels * per_image()),
                                                             B / (4 * static_cast<int64_t>(num_threads()))));
        int64_t best = 1;
        double best_waste = 2.0;
        for (int64_t n = 1; n <= std::min(B, budget); ++n) {
            const int64_t N = n * per_image(), padded = (N + simd::kWidth - 1) / simd::kWidth * simd::kWidth;
            const double waste = static_cast<double>(padded) / static_cast<double>(N);
            if (waste < best_waste + 1e-9) best = n, best_waste = std::min(best_waste, waste);
        }
        return best;
    }
};

// ---- F(4x4, 3x3) ----

// G of F(4x4, 3x3), rows for the points 0, 1, -1, 2, -2 and infinity.
inline constexpr float kG[6][3] = {{1.0f / 4, 0, 0},
                                   {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                   {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                   {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                   {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                   {0, 0, 1}};

// U[6 k + l][r][c] = (G g G^T)[k][l] for the 3x3 kernel g = w[o = r][c] (w [O, C, 3, 3]), or,
// with `adjoint`, for g = w[c][o = r] rotated by 180 degrees (the kernel of the input
// gradient): then U is [36][C][O]. Blocks of kernels side by side, so each loop runs over
// the block's lanes.
inline void transform_weights(const float* w, int64_t O, int64_t C, bool adjoint, float* U) {
    constexpr int64_t kBlock = 64;
    const int64_t rows = adjoint ? C : O, cols = adjoint ? O : C, step = rows * cols;
    parallel_for(0, (step + kBlock - 1) / kBlock, 4, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
            const int64_t i0 = blk * kBlock, n = std::min(kBlock, step - i0);
            float g[9][kBlock], gg[6][3][kBlock];  // g, then G g
            for (int64_t j = 0; j < n; ++j) {
                const int64_t r = (i0 + j) / cols, c = (i0 + j) % cols;
                for (int e = 0; e < 9; ++e) g[e][j] = adjoint ? w[(c * C + r) * 9 + 8 - e] : w[(r * C + c) * 9 + e];
            }
            for (int k = 0; k < 6; ++k)
                for (int b = 0; b < 3; ++b)
                    for (int64_t j = 0; j < n; ++j)
                        gg[k][b][j] = kG[k][0] * g[b][j] + kG[k][1] * g[3 + b][j] + kG[k][2] * g[6 + b][j];
            for (int k = 0; k < 6; ++k)  // (G g) G^T
                for (int l = 0; l < 6; ++l) {
                    float* u = U + (6 * k + l) * step + i0;
                    for (int64_t j = 0; j < n; ++j)
                        u[j] = gg[k][0][j] * kG[l][0] + gg[k][1][j] * kG[l][1] + gg[k][2][j] * kG[l][2];
                }
        }
    });
}

// out = B^T d for the six values d of a patch column (or row), lane by lane.
inline void input_rows(const simd::vfloat d[6], simd::vfloat out[6]) {
    using namespace simd;
    const vfloat a = fmadd(set1(-4.0f), d[2], d[4]), b = fmadd(set1(-4.0f), d[1], d[3]);  // d4 - 4 d2, d3 - 4 d1
    const vfloat c = sub(d[4], d[2]), e = mul(set1(2.0f), sub(d[3], d[1]));
    out[0] = fmadd(set1(4.0f), d[0], fmadd(set1(-5.0f), d[2], d[4]));
    out[1] = add(a, b);
    out[2] = sub(a, b);
    out[3] = add(c, e);
    out[4] = sub(c, e);
    out[5] = fmadd(set1(4.0f), d[1], fmadd(set1(-5.0f), d[3], d[5]));
}

// q[j][m] = x[4 m + j] for m < kWidth: four vectors of the 4 kWidth floats at x, of which
// the first `avail` are read and the rest taken as 0.
inline void split4(const float* x, int64_t avail, simd::vfloat q[4]) {
    using namespace simd;
    vfloat v[4];
    for (int k = 0; k < 4; ++k) {
        const int64_t left = avail - k * kWidth;
        const float* p = x + k * kWidth;
        v[k] = left >= kWidth ? load(p) : left > 0 ? load_partial(p, static_cast<int>(left)) : zero();
    }
    vfloat e01, o01, e23, o23;
    unzip(v[0], v[1], e01, o01);
    unzip(v[2], v[3], e23, o23);
    unzip(e01, e23, q[0], q[2]);
    unzip(o01, o23, q[1], q[3]);
}

// x[4 m + j] = q[j][m] for m < kWidth: split4's inverse.
inline void merge4(const simd::vfloat q[4], simd::vfloat x[4]) {
    using namespace simd;
    vfloat e_lo, e_hi, o_lo, o_hi;  // the even and odd positions
    zip(q[0], q[2], e_lo, e_hi);
    zip(q[1], q[3], o_lo, o_hi);
    zip(e_lo, o_lo, x[0], x[1]);
    zip(e_hi, o_hi, x[2], x[3]);
}

// p[0..w) = the first w lanes of v (a whole vector's store where w = kWidth).
inline void store_lanes(float* p, simd::vfloat v, int w) {
    if (w == simd::kWidth)
        simd::store(p, v);
    else
        simd::store_partial(p, v, w);
}
// The w floats at p in the first w lanes, 0 in the others (a whole vector's load where w = kWidth).
inline simd::vfloat load_lanes(const float* p, int w) {
    return w == simd::kWidth ? simd::load(p) : simd::load_partial(p, w);
}

// S[r] for r < rows: image row 4 ty + r + offset of every tile row ty of the n images, as
// 4 tw floats (0 outside the image), the tiles of all the images side by side in V's order:
// float 4 t + j of S[r] is column 4 tx + j of that row of tile t. The rows outside the image
// are zeroed once (zero_outside); gather then copies one channel's rows.
struct TileRows {
    int64_t H, W, th, row, n, rows, offset;
    TileRows(const Tiles& tl, int64_t images, int64_t rows_, int64_t offset_)
        : H(tl.H), W(tl.W), th(tl.th), row(4 * tl.tw), n(images), rows(rows_), offset(offset_) {}
    void zero_outside(float* S) const {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t b = 0; b < n; ++b)
                for (int64_t ty = 0; ty < th; ++ty)
                    if (4 * ty + r + offset < 0 || 4 * ty + r + offset >= H) simd::fill_zero(S + ((r * n + b) * th + ty) * row, row);
    }
    // Channel ch of x [n, C, H, W]. Each image's next channel is sent towards the cache: the
    // images' channels lie far apart, each too short a stream for the hardware prefetchers
    // (without the hint the input transform spent 40 % of its time waiting on these loads).
    // Each row is copied as whole vectors and one tail vector of fixed counts, the sizes in
    // locals (a loop that worked out its masks per vector, with the sizes read back from
    // memory after every vector store, took twice the time).
    void gather(const float* x, int64_t C, int64_t ch, float* S) const {
        using namespace simd;
        const int64_t h = H, w = W, tiles_high = th, len = row, images = n, count = rows, off = offset;
        const int64_t whole = w / kWidth;
        const int tail_in = static_cast<int>(w - whole * kWidth), tail_out = static_cast<int>(len - whole * kWidth);
        for (int64_t b = 0; b < images; ++b) {
            const float* image = x + (b * C + ch) * h * w;
            for (int64_t ty = 0; ty < tiles_high; ++ty) {
                const int64_t first = std::max<int64_t>(0, -(4 * ty + off)), last = std::min(count, h - 4 * ty - off);
                for (int64_t r = first; r < last; ++r) {
                    const float* src = image + (4 * ty + r + off) * w;
                    float* dst = S + ((r * images + b) * tiles_high + ty) * len;
                    for (int64_t i = 0; i < whole; ++i) store(dst + i * kWidth, load(src + i * kWidth));
                    if (tail_out > 0) store_partial(dst + whole * kWidth, load_partial(src + whole * kWidth, tail_in), tail_out);
                }
            }
            if (ch + 1 < C)
                for (int64_t i = 0; i < h * w; i += 16) prefetch(image + h * w + i);
        }
    }
};

// V[xi][c][t] = (B^T d B)[xi] for the patches of n images x [n, C, H, W]; the tiles of image b
// at columns b th tw + t of V (t = ty tw + tx), its rows `ld` apart and planes xi `plane`
// apart. The 6x6 patch of tile (ty, tx) covers the padded rows 4 ty .. 4 ty + 5 and columns
// 4 tx .. 4 tx + 5 (a zero border of width 1). Per channel, the patches' rows r are gathered
// side by side (TileRows::gather: padded row 4 ty + r), so that split4 gives the patch columns
// 1 to 4 of kWidth consecutive tiles as whole vectors; columns 0 and 5 come from the tiles
// beside (slide_up, slide_down; 0 at the image's sides), and B^T d B is computed in registers
// and stored as whole vectors.
inline void transform_input(const float* x, int64_t n, int64_t C, const Tiles& tl, float* V, int64_t ld, int64_t plane) {
    using namespace simd;
    const int64_t tw = tl.tw, N = n * tl.per_image();
    std::vector<float> S(static_cast<size_t>(6 * 4 * N));
    const TileRows gather(tl, n, 6, -1);  // patch row r: image row 4 ty + r - 1
    gather.zero_outside(S.data());
    std::vector<float> column(static_cast<size_t>(N));  // tx of tile t, as a float
    for (int64_t t = 0; t < N; ++t) column[static_cast<size_t>(t)] = static_cast<float>(t % tw);
    const vfloat first = set1(0.5f), last = set1(static_cast<float>(tw) - 1.5f);  // tx < 0.5: the first tile of a row
    for (int64_t ch = 0; ch < C; ++ch) {
        gather.gather(x, C, ch, S.data());
        float* out = V + ch * ld;
        for (int64_t t = 0; t < N; t += kWidth) {
            const int w = static_cast<int>(std::min<int64_t>(kWidth, N - t));
            const vfloat tx = load_partial(column.data() + t, w);
            vfloat e[6][6];  // e[r] = d B for patch row r
            for (int r = 0; r < 6; ++r) {
                const float* s = S.data() + r * N * 4 + 4 * t;
                vfloat d[6];  // the patch columns of row r
                split4(s, 4 * (N - t), d + 1);
                // column 0 is the tile before's column 4, column 5 the tile after's column 1
                const vfloat before = t > 0 ? set1(s[-1]) : zero();
                const vfloat after = w == kWidth && t + w < N ? set1(s[4 * kWidth]) : zero();
                d[0] = select_less(tx, first, zero(), slide_up(before, d[4]));
                d[5] = select_less(tx, last, slide_down(d[1], after), zero());
                input_rows(d, e[r]);
            }
            for (int l = 0; l < 6; ++l) {  // B^T (d B): the same combination down the rows
                const vfloat col[6] = {e[0][l], e[1][l], e[2][l], e[3][l], e[4][l], e[5][l]};
                vfloat v[6];
                input_rows(col, v);
                for (int k = 0; k < 6; ++k) store_lanes(out + (6 * k + l) * plane + t, v[k], w);
            }
        }
    }
}

// out = A^T m for the six values m of a column (or row) of M, lane by lane.
inline void output_rows(const simd::vfloat m[6], simd::vfloat out[4]) {
    using namespace simd;
    const vfloat s1 = add(m[1], m[2]), d1 = sub(m[1], m[2]), s2 = add(m[3], m[4]), d2 = sub(m[3], m[4]);
    out[0] = add(add(m[0], s1), s2);
    out[1] = fmadd(set1(2.0f), d2, d1);
    out[2] = fmadd(set1(4.0f), s2, s1);
    out[3] = add(fmadd(set1(8.0f), d2, d1), m[5]);
}

// y[n, O, H, W] = A^T M A (+ bias[o]) (+ residual) from M[xi][o][t] (rows `ld`, planes `plane`
// apart), residual [n, O, H, W] or null (it may be y: y += ...); the parts of the last tiles
// outside the image are dropped. transform_input's steps run
// backwards: A^T M A for kWidth consecutive tiles in registers, each of its four rows r put
// together from its four columns (merge4) and stored as whole vectors into R[r], which holds
// row 4 ty + r of every image as 4 tw floats; then R's rows are copied into the images.
inline void transform_output(const float* M, int64_t ld, int64_t plane, int64_t n, int64_t O, const Tiles& tl, const float* bias,
                             const float* residual, float* y) {
    using namespace simd;
    const int64_t H = tl.H, W = tl.W, tw = tl.tw, T = tl.per_image(), N = n * T;
    const int64_t rows_apart = 4 * (N + kWidth);  // R[r]'s 4 N floats, and room for the last vector's lanes past them
    std::vector<float> R(static_cast<size_t>(4 * rows_apart));
    for (int64_t o = 0; o < O; ++o) {
        const float* m = M + o * ld;
        for (int64_t t = 0; t < N; t += kWidth) {
            const int w = static_cast<int>(std::min<int64_t>(kWidth, N - t));
            vfloat q[6][4];  // M A: row k of M combined along its columns
            for (int k = 0; k < 6; ++k) {
                vfloat mk[6];
                for (int l = 0; l < 6; ++l) mk[l] = load_lanes(m + (6 * k + l) * plane + t, w);
                output_rows(mk, q[k]);
            }
            vfloat tile[4][4];  // tile[r][s] = (A^T (M A))[r][s]
            for (int s = 0; s < 4; ++s) {
                const vfloat col[6] = {q[0][s], q[1][s], q[2][s], q[3][s], q[4][s], q[5][s]};
                vfloat yr[4];
                output_rows(col, yr);
                for (int r = 0; r < 4; ++r) tile[r][s] = yr[r];
            }
            for (int r = 0; r < 4; ++r) {
                vfloat px[4];  // floats 4 t .. 4 t + 4 kWidth of R[r]
                merge4(tile[r], px);
                for (int v = 0; v < 4; ++v) store(R.data() + r * rows_apart + 4 * t + v * kWidth, px[v]);
            }
        }
        // R's rows into the images: whole vectors, then a tail of fixed count (see TileRows::gather)
        const vfloat add_o = set1(bias ? bias[o] : 0.0f);
        const int64_t whole = W / kWidth;
        const int tail = static_cast<int>(W - whole * kWidth);
        const float* R0 = R.data();
        for (int64_t b = 0; b < n; ++b)
            for (int64_t py = 0; py < H; ++py) {
                const float* src = R0 + (py % 4) * rows_apart + (b * T + py / 4 * tw) * 4;
                const int64_t at = ((b * O + o) * H + py) * W;
                float* dst = y + at;
                if (residual) {
                    const float* res = residual + at;
                    for (int64_t i = 0; i < whole * kWidth; i += kWidth) store(dst + i, add(add(load(src + i), add_o), load(res + i)));
                    if (tail > 0) {
                        const int64_t i = whole * kWidth;
                        store_partial(dst + i, add(add(load_partial(src + i, tail), add_o), load_partial(res + i, tail)), tail);
                    }
                } else {
                    for (int64_t i = 0; i < whole * kWidth; i += kWidth) store(dst + i, add(load(src + i), add_o));
                    if (tail > 0) store_partial(dst + whole * kWidth, add(load_partial(src + whole * kWidth, tail), add_o), tail);
                }
            }
    }
}

// out = A u for the four values u of a tile column (or row) of dY, lane by lane (A = (A^T)^T,
// rows [1 0 0 0] [1 1 1 1] [1 -1 1 -1] [1 2 4 8] [1 -2 4 -8] [0 0 0 1]).
inline void grad_rows(const simd::vfloat u[4], simd::vfloat out[6]) {
    using namespace simd;
    const vfloat e = add(u[0], u[2]), o = add(u[1], u[3]);
    const vfloat e4 = fmadd(set1(4.0f), u[2], u[0]), o8 = fmadd(set1(8.0f), u[3], mul(set1(2.0f), u[1]));
    out[0] = u[0];
    out[1] = add(e, o);
    out[2] = sub(e, o);
    out[3] = add(e4, o8);
    out[4] = sub(e4, o8);
    out[5] = u[3];
}

// Mg[xi][o][t] = (A dY A^T)[xi] for the 4x4 tiles dY of dy [n, O, H, W] (0 outside), laid out
// as V in transform_input and computed as it is: dY's rows gathered side by side
// (TileRows::gather), split into their four columns (split4), A dY A^T in registers.
inline void transform_output_grad(const float* dy, int64_t n, int64_t O, const Tiles& tl, float* Mg, int64_t ld,
                                  int64_t plane) {
    using namespace simd;
    const int64_t N = n * tl.per_image();
    std::vector<float> S(static_cast<size_t>(4 * 4 * N));
    const TileRows gather(tl, n, 4, 0);
    gather.zero_outside(S.data());
    for (int64_t o = 0; o < O; ++o) {
        gather.gather(dy, O, o, S.data());
        float* out = Mg + o * ld;
        for (int64_t t = 0; t < N; t += kWidth) {
            const int w = static_cast<int>(std::min<int64_t>(kWidth, N - t));
            vfloat h[4][6];  // h[r] = A applied to row r of the tile
            for (int r = 0; r < 4; ++r) {
                vfloat u[4];
                split4(S.data() + r * 4 * N + 4 * t, 4 * (N - t), u);
                grad_rows(u, h[r]);
            }
            for (int l = 0; l < 6; ++l) {  // A (dY A^T): the same combination down the columns
                const vfloat u[4] = {h[0][l], h[1][l], h[2][l], h[3][l]};
                vfloat g[6];
                grad_rows(u, g);
                for (int k = 0; k < 6; ++k) store_lanes(out + (6 * k + l) * plane + t, g[k], w);
            }
        }
    }
}

// dw[o][c] += G^T dU[o][c] G for dU [36][O][C], in blocks of kernels as transform_weights.
inline void accumulate_weight_grad(const float* dU, int64_t O, int64_t C, float* dw) {
    constexpr int64_t kBlock = 64;
    const int64_t step = O * C;
    parallel_for(0, (step + kBlock - 1) / kBlock, 4, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
            const int64_t i0 = blk * kBlock, n = std::min(kBlock, step - i0);
            float h[3][6][kBlock], g[9][kBlock];  // G^T dU, then (G^T dU) G
            for (int a = 0; a < 3; ++a)
                for (int l = 0; l < 6; ++l) {
                    for (int64_t j = 0; j < n; ++j) h[a][l][j] = 0.0f;
                    for (int k = 0; k < 6; ++k) {
                        if (kG[k][a] == 0.0f) continue;
                        const float* u = dU + (6 * k + l) * step + i0;
                        for (int64_t j = 0; j < n; ++j) h[a][l][j] += kG[k][a] * u[j];
                    }
                }
            for (int a = 0; a < 3; ++a)
                for (int b = 0; b < 3; ++b)
                    for (int64_t j = 0; j < n; ++j)
                        g[3 * a + b][j] = h[a][0][j] * kG[0][b] + h[a][1][j] * kG[1][b] + h[a][2][j] * kG[2][b] +
                                          h[a][3][j] * kG[3][b] + h[a][4][j] * kG[4][b] + h[a][5][j] * kG[5][b];
            for (int64_t j = 0; j < n; ++j)
                for (int e = 0; e < 9; ++e) dw[(i0 + j) * 9 + e] += g[e][j];
        }
    });
}

// ---- F(2x2, 3x3): where F(4x4) would pad more ----

// even[m] = x[2m], odd[m] = x[2m + 1] for m < pairs.
inline void deinterleave(const float* x, int64_t pairs, float* even, float* odd) {
    DDPMKIT_NO_ALIAS
    for (int64_t m = 0; m < pairs; ++m) {
        even[m] = x[2 * m];
        odd[m] = x[2 * m + 1];
    }
}

// V[xi][c][t] = (B^T d B)[xi] as transform_input, for F(2x2). The 4x4 patch of tile (ty, tx)
// covers the padded rows 2 ty .. 2 ty + 3 and columns 2 tx .. 2 tx + 3 (a zero border of width
// 1). The padded image is split by row parity, column parity and a shift of one column: plane
// P[rp][cp][s] holds the padded pixels (2 i + rp, 2 (j + s) + cp), (th + 1) x tw of them. Then
// the patch's rows are P[.][.][.] rows ty and ty + 1 and its columns the four (cp, s), so every
// term of B^T d B is one flat loop over the tiles, stored straight into V.
inline void transform_input_2x2(const float* x, int64_t n, int64_t C, const Tiles& tl, float* V, int64_t ld,
                                int64_t plane) {
    using namespace simd;
    const int64_t tw = tl.tw, th = tl.th, T = th * tw, size = (th + 1) * tw, half = tl.W / 2;
    std::vector<float> planes(static_cast<size_t>(8 * size), 0.0f);  // the border entries are never written
    const auto P = [&](int rp, int cp, int s) { return planes.data() + ((rp * 2 + cp) * 2 + s) * size; };
    for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < C; ++c) {
            const float* xc = x + (b * C + c) * tl.H * tl.W;
            for (int64_t y = 0; y < tl.H; ++y) {  // image pixel (y, x) is padded pixel (y + 1, x + 1)
                const float* row = xc + y * tl.W;
                const int rp = static_cast<int>((y + 1) % 2);
                const int64_t i = (y + 1) / 2 * tw;
                // P(., 1, 0) and P(., 0, 1) hold the image columns 2m and 2m + 1, P(., 0, 0) the
                // columns 2m - 1 (from m = 1) and P(., 1, 1) the columns 2m + 2: all read from the
                // row itself (a vector load of what scalar stores just wrote would stall).
                deinterleave(row, half, P(rp, 1, 0) + i, P(rp, 0, 1) + i);
                if (tl.W % 2) P(rp, 1, 0)[i + half] = row[tl.W - 1];
                deinterleave(row + 1, tw - 1, P(rp, 0, 0) + i + 1, P(rp, 1, 1) + i);
            }
            float* out = V + c * ld + b * T;
            for (int64_t t = 0; t < T; t += kWidth) {
                const int w = static_cast<int>(std::min<int64_t>(kWidth, T - t));
                vfloat f[4][4];  // B^T d for the patch columns 0..3, that is (cp, s) = (0,0) (1,0) (0,1) (1,1)
                for (int col = 0; col < 4; ++col) {
                    const float *e = P(0, col % 2, col / 2) + t, *o = P(1, col % 2, col / 2) + t;  // rows 2 ty, 2 ty + 1
                    const vfloat e0 = load_partial(e, w), e1 = load_partial(e + tw, w);          // and + 2, + 3
                    const vfloat o0 = load_partial(o, w), o1 = load_partial(o + tw, w);
                    f[col][0] = sub(e0, e1);  // rows of B^T: [1 0 -1 0] [0 1 1 0] [0 -1 1 0] [0 1 0 -1]
                    f[col][1] = add(o0, e1);
                    f[col][2] = sub(e1, o0);
                    f[col][3] = sub(o0, o1);
                }
                for (int k = 0; k < 4; ++k) {  // (B^T d) B, the same rows on the columns
                    float* v = out + 4 * k * plane + t;
                    store_partial(v, sub(f[0][k], f[2][k]), w);
                    store_partial(v + plane, add(f[1][k], f[2][k]), w);
                    store_partial(v + 2 * plane, sub(f[2][k], f[1][k]), w);
                    store_partial(v + 3 * plane, sub(f[1][k], f[3][k]), w);
                }
            }
        }
}

// F(2x2): U[xi][o][c] = (G g G^T)[xi] for the 3x3 kernel g = w[o][c] (w [O, C, 3, 3]), or, with
// `adjoint`, for g = w[c][o] rotated by 180 degrees (the kernel of the input gradient):
// then U is [16][C][O].
inline void transform_weights_2x2(const float* w, int64_t O, int64_t C, bool adjoint, float* U) {
    const int64_t rows = adjoint ? C : O, cols = adjoint ? O : C;
    parallel_for(0, rows * cols, 256, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = i / cols, c = i % cols;
            float g[3][3];
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j)
                    g[i][j] = adjoint ? w[((c * C + r) * 3 + 2 - i) * 3 + 2 - j] : w[((r * C + c) * 3 + i) * 3 + j];
            float gg[4][3];  // G g
            for (int j = 0; j < 3; ++j) {
                gg[0][j] = g[0][j];
                gg[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                gg[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                gg[3][j] = g[2][j];
            }
            for (int k = 0; k < 4; ++k) {  // (G g) G^T
                float* u = U + (k * 4) * rows * cols + r * cols + c;
                const int64_t step = rows * cols;
                u[0] = gg[k][0];
                u[step] = 0.5f * (gg[k][0] + gg[k][1] + gg[k][2]);
                u[2 * step] = 0.5f * (gg[k][0] - gg[k][1] + gg[k][2]);
                u[3 * step] = gg[k][2];
            }
        }
    });
}

// F(2x2): y[n, O, H, W] = A^T M A (+ bias[o]) (+ residual) as transform_output.
inline void transform_output_2x2(const float* M, int64_t ld, int64_t plane, int64_t n, int64_t O, const Tiles& tl,
                                 const float* bias, const float* residual, float* y) {
    const int64_t tw = tl.tw, th = tl.th, T = th * tw;
    std::vector<float> out(static_cast<size_t>(4 * T));  // Y[r][s] of every tile: [r][s][t]
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < O; ++o) {
            const float* m = M + o * ld + b * T;
            float *y00 = out.data(), *y01 = y00 + T, *y10 = y01 + T, *y11 = y10 + T;
            DDPMKIT_NO_ALIAS
            for (int64_t t = 0; t < T; ++t) {  // M A (rows of A^T: [1 1 1 0] [0 1 -1 -1]), then A^T (M A)
                float q[4][2];
                for (int k = 0; k < 4; ++k) {
                    const float* mk = m + (4 * k) * plane + t;
                    q[k][0] = mk[0] + mk[plane] + mk[2 * plane];
                    q[k][1] = mk[plane] - mk[2 * plane] - mk[3 * plane];
                }
                y00[t] = q[0][0] + q[1][0] + q[2][0];
                y01[t] = q[0][1] + q[1][1] + q[2][1];
                y10[t] = q[1][0] - q[2][0] - q[3][0];
                y11[t] = q[1][1] - q[2][1] - q[3][1];
            }
            const float add = bias ? bias[o] : 0.0f;
            const int64_t image = (b * O + o) * tl.H * tl.W;
            const int64_t pairs = tl.W / 2;  // tiles with both columns in the image; an odd W has one more half tile
            for (int64_t ty = 0; ty < th; ++ty)
                for (int r = 0; r < 2 && 2 * ty + r < tl.H; ++r) {
                    float* row = y + image + (2 * ty + r) * tl.W;
                    const float *s0 = out.data() + (2 * r) * T + ty * tw, *s1 = s0 + T;
                    // one loop over both columns of a tile: the interleaved stores vectorize
                    if (residual) {
                        const float* res = residual + image + (2 * ty + r) * tl.W;
                        for (int64_t t = 0; t < pairs; ++t) {
                            row[2 * t] = res[2 * t] + (s0[t] + add);
                            row[2 * t + 1] = res[2 * t + 1] + (s1[t] + add);
                        }
                        if (tl.W % 2) row[tl.W - 1] = res[tl.W - 1] + (s0[pairs] + add);
                    } else {
                        for (int64_t t = 0; t < pairs; ++t) {
                            row[2 * t] = s0[t] + add;
                            row[2 * t + 1] = s1[t] + add;
                        }
                        if (tl.W % 2) row[tl.W - 1] = s0[pairs] + add;
                    }
                }
        }
}

// Mg[xi][o][t] = (A dY A^T)[xi] for the 2x2 tiles dY of dy [n, O, H, W] (0 outside), laid out
// as V in transform_input_2x2 (F(2x2)).
inline void transform_output_grad_2x2(const float* dy, int64_t n, int64_t O, const Tiles& tl, float* Mg, int64_t ld,
                                      int64_t plane) {
    using namespace simd;
    const int64_t tw = tl.tw, th = tl.th, T = th * tw, pairs = tl.W / 2;
    std::vector<float> d(static_cast<size_t>(4 * T), 0.0f);  // dY[r][s] of every tile: [r][s][t]
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < O; ++o) {
            const float* dyo = dy + (b * O + o) * tl.H * tl.W;
            for (int64_t ty = 0; ty < th; ++ty)
                for (int r = 0; r < 2 && 2 * ty + r < tl.H; ++r) {
                    float* d0 = d.data() + (2 * r) * T + ty * tw;
                    const float* row = dyo + (2 * ty + r) * tl.W;
                    deinterleave(row, pairs, d0, d0 + T);
                    if (tl.W % 2) d0[pairs] = row[tl.W - 1];
                }
            float* out = Mg + o * ld + b * T;
            for (int64_t t = 0; t < T; t += kWidth) {
                const int w = static_cast<int>(std::min<int64_t>(kWidth, T - t));
                const vfloat d00 = load_partial(d.data() + t, w), d01 = load_partial(d.data() + T + t, w);
                const vfloat d10 = load_partial(d.data() + 2 * T + t, w), d11 = load_partial(d.data() + 3 * T + t, w);
                // A dY (rows of A: [1 0] [1 1] [1 -1] [0 -1]), then (A dY) A^T
                const vfloat a[4][2] = {{d00, d01},
                                        {add(d00, d10), add(d01, d11)},
                                        {sub(d00, d10), sub(d01, d11)},
                                        {sub(zero(), d10), sub(zero(), d11)}};
                for (int k = 0; k < 4; ++k) {
                    float* v = out + 4 * k * plane + t;
                    store_partial(v, a[k][0], w);
                    store_partial(v + plane, add(a[k][0], a[k][1]), w);
                    store_partial(v + 2 * plane, sub(a[k][0], a[k][1]), w);
                    store_partial(v + 3 * plane, sub(zero(), a[k][1]), w);
                }
            }
        }
}

// dw[o][c] += G^T dU[o][c] G for dU [16][O][C].
inline void accumulate_weight_grad_2x2(const float* dU, int64_t O, int64_t C, float* dw) {
    const int64_t step = O * C;
    parallel_for(0, O * C, 256, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t o = i / C, c = i % C;
            float u[4][4];
            for (int k = 0; k < 16; ++k) u[k / 4][k % 4] = dU[k * step + o * C + c];
            float h[3][4];  // G^T dU; the columns of G are [1 1/2 1/2 0], [0 1/2 -1/2 0], [0 1/2 1/2 1]
            for (int l = 0; l < 4; ++l) {
                h[0][l] = u[0][l] + 0.5f * (u[1][l] + u[2][l]);
                h[1][l] = 0.5f * (u[1][l] - u[2][l]);
                h[2][l] = 0.5f * (u[1][l] + u[2][l]) + u[3][l];
            }
            float* g = dw + (o * C + c) * 9;
            for (int i = 0; i < 3; ++i) {
                g[i * 3 + 0] += h[i][0] + 0.5f * (h[i][1] + h[i][2]);
                g[i * 3 + 1] += 0.5f * (h[i][1] - h[i][2]);
                g[i * 3 + 2] += 0.5f * (h[i][1] + h[i][2]) + h[i][3];
            }
        }
    });
}

// Buffers of the calling thread, reused from call to call: 0 transformed inputs, 1 GEMM
// outputs or transformed output gradients, 2 the input gradient's packed weights,
// 3 weight-gradient partials, 4 transformed weights, 5 a chunk's input images when they are
// made (ConvInput).
inline std::vector<float>& buffer(int which) {
    thread_local std::vector<float> buffers[6];
    return buffers[which];
}

// The tiles of the forward pass and the input gradient: F(4x4) unless its GEMMs would be
// larger than F(2x2)'s (tiles times points: 1764 against 3136 at 28x28, 576 against 784 at
// 14x14, whose 16x16 of F(4x4) tiles pad the image). With plane_stride's strides, F(4x4) took
// 0.72 to 0.93 of F(2x2)'s time at 14x14 with 32 and 64 channels, forward and input gradient,
// and 0.70 to 0.75 at 28x28 (AMD EPYC).
inline Tiles forward_tiles(int64_t H, int64_t W) {
    const Tiles f4(H, W, 4), f2(H, W, 2);
    return f4.per_image() * f4.points() <= f2.per_image() * f2.points() ? f4 : f2;
}

// Floats of U packed for the GEMMs (rows x cols in each plane) on the tiles tl.
inline int64_t packed_weights_size(const Tiles& tl, int64_t rows, int64_t cols) {
    return tl.points() * Engine::packed_a_size(rows, cols);
}

// U for the tiles tl (transform_weights or transform_weights_2x2), packed for the GEMMs plane
// after plane (Engine::pack_a): O x C planes, or C x O with `adjoint`.
inline void pack_weights(const Tiles& tl, const float* w, int64_t O, int64_t C, bool adjoint, float* Up) {
    std::vector<float>& U = buffer(4);
    grow(U, tl.points() * O * C);
    if (tl.m == 4)
        transform_weights(w, O, C, adjoint, U.data());
    else
        transform_weights_2x2(w, O, C, adjoint, U.data());
    const int64_t rows = adjoint ? C : O, cols = adjoint ? O : C, packed = Engine::packed_a_size(rows, cols);
    // the planes on the threads (packed one after the other on the calling thread, they took
    // 1.4 % of its time in the ch-16 training step)
    parallel_for(0, tl.points(), 1, [&](int64_t xi0, int64_t xi1) {
        for (int64_t xi = xi0; xi < xi1; ++xi) Engine::pack_a(View{U.data() + xi * O * C, cols}, rows, cols, Up + xi * packed);
    });
}

// Floats the calling thread keeps of forward_weights' packed weights (and their copies): 128 MB.
constexpr int64_t kWeightCacheFloats = int64_t(1) << 25;

// The forward pass's packed U, kept from call to call: a sampler convolves with the same
// weights at every step (kept, the ch-16 U-Net's sampling step took 0.69 of the time at batch
// 1, 0.97 at batch 64; the reference U-Net's 0.77 and 0.95; AMD EPYC). An entry is found by
// the weights' address and shape and holds a copy of the weights it was made from, compared
// bit for bit on every use: weights changed in place (an optimizer's step) or freed and
// reallocated at that address are transformed afresh, and the result is bitwise that of a
// fresh transform. Past kWeightCacheFloats the thread's entries are all dropped.
inline const float* forward_weights(const Tiles& tl, const float* w, int64_t O, int64_t C) {
    struct Entry {
        const float* w;
        int64_t O, C, m;
        std::vector<float> weights, packed;
    };
    thread_local std::vector<Entry> entries;  // a model's convolutions: a few dozen
    const int64_t n = O * C * 9;
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.w == w && e.O == O && e.C == C && e.m == tl.m; });
    if (it != entries.end() && std::memcmp(w, it->weights.data(), static_cast<size_t>(n) * sizeof(float)) == 0)
        return it->packed.data();
    if (it == entries.end()) {
        int64_t floats = n + packed_weights_size(tl, O, C);
        for (const Entry& e : entries) floats += static_cast<int64_t>(e.weights.size() + e.packed.size());
        if (floats > kWeightCacheFloats) entries.clear();
        it = entries.insert(entries.end(), Entry{w, O, C, tl.m, {}, {}});
    }
    it->weights.assign(w, w + n);
    it->packed.resize(static_cast<size_t>(packed_weights_size(tl, O, C)));
    pack_weights(tl, w, O, C, false, it->packed.data());
    return it->packed.data();
}

// y = conv3x3(x) (+ bias) (+ residual) for x [B, C, H, W], y and residual [B, O, H, W] (the
// residual may be null, or y), on the tiles tl with U packed (pack_weights, O x C planes).
inline void convolve(const ConvInput<float>& x, int64_t B, int64_t C, int64_t O, const Tiles& tl, const float* Upacked,
                     const float* bias, const float* residual, float* y) {
    const int64_t HW = tl.H * tl.W, points = tl.points();
    // At most nb images a chunk, the images shared evenly, the chunks evenly over the threads
    // (not 9 chunks of 7 images and one of 1: the threads' work then differs by a chunk).
    const int64_t nb = tl.images_per_chunk(B, C + O), threads = num_threads(), ld = nb * tl.per_image();
    const int64_t chunks = std::min(B, ((B + nb - 1) / nb + threads - 1) / threads * threads);
    const int64_t packed = Engine::packed_a_size(O, C);
    const int64_t v_plane = plane_stride(C, ld), m_plane = plane_stride(O, ld);
    auto task = [&](int64_t chunk) {
        const int64_t b0 = B * chunk / chunks, n = B * (chunk + 1) / chunks - b0, N = n * tl.per_image();
        const float* chunk_residual = residual ? residual + b0 * O * HW : nullptr;
        std::vector<float>& V = buffer(0);
        std::vector<float>& M = buffer(1);
        grow(V, points * v_plane);
        grow(M, points * m_plane);
        const float* xc = x.images(b0, n, C * HW, buffer(5));
        if (tl.m == 4)
            transform_input(xc, n, C, tl, V.data(), ld, v_plane);
        else
            transform_input_2x2(xc, n, C, tl, V.data(), ld, v_plane);
        for (int64_t xi = 0; xi < points; ++xi)
            Engine::run_packed(O, N, C, 1.0f, Upacked + xi * packed, View{V.data() + xi * v_plane, ld}, 0.0f,
                               OutView{M.data() + xi * m_plane, ld}, nullptr);
        if (tl.m == 4)
            transform_output(M.data(), ld, m_plane, n, O, tl, bias, chunk_residual, y + b0 * O * HW);
        else
            transform_output_2x2(M.data(), ld, m_plane, n, O, tl, bias, chunk_residual, y + b0 * O * HW);
    };
    for_each_chunk(chunks, task);
}

// y = conv3x3(x, w) + bias + residual; w [O, C, 3, 3], bias [O] or null, residual [B, O, H, W]
// or null.
inline void forward(const ConvInput<float>& x, int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* w,
                    const float* bias, const float* residual, float* y) {
    const Tiles tl = forward_tiles(H, W);
    convolve(x, B, C, O, tl, forward_weights(tl, w, O, C), bias, residual, y);
}

// dx (+)= the input gradient of y = conv3x3(x, w) for dy [B, O, H, W] (added with `add`).
inline void backward_data(int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* w, const float* dy,
                          float* dx, bool add) {
    const Tiles tl = forward_tiles(H, W);
    std::vector<float>& Up = buffer(2);
    grow(Up, packed_weights_size(tl, C, O));
    pack_weights(tl, w, O, C, true, Up.data());
    convolve(dy, B, O, C, tl, Up.data(), nullptr, add ? dx : nullptr, dx);
}

// dw += the weight gradient of y = conv3x3(x, w) for dy [B, O, H, W], summed over images in
// fixed chunks combined in order (the same bits for any number of threads): 8, or 4 where an
// image has fewer than 48 F(4x4) tiles, for longer GEMMs (32 -> 32 at 7x7: 0.70 of the time
// with 8, at 14x14 0.88; the ch-16 training step 0.972; AMD EPYC).
inline void backward_weight(const ConvInput<float>& x, int64_t B, int64_t C, int64_t O, int64_t H, int64_t W,
                            const float* dy, float* dw) {
    const Tiles f4(H, W, 4), f2(H, W, 2);
    const int64_t chunks = std::min<int64_t>(B, f4.per_image() >= 48 ? 8 : 4);
    // Images per GEMM: as many as fit the budget (the tiles are the GEMMs' k: no padding waste)
    const auto images_per_gemm = [&](const Tiles& t) {
        const int64_t budget = kChunkFloats / (t.points() * (C + O) * t.per_image());
        return std::max<int64_t>(1, std::min<int64_t>((B + chunks - 1) / chunks, budget));
    };
    // F(4x4) where its GEMMs sum over 48 tiles or more. Against F(2x2) (AMD EPYC): 0.66 to 0.69
    // of the time at 28x28; at 14x14, padded to 16x16, 0.72 to 0.84 with 48 to 128 tiles a
    // GEMM, but 1.24 to 1.35 with 32 (96 -> 64 channels); at 7x7 0.97 with 64 (16 images of 4).
    const Tiles tl = images_per_gemm(f4) * f4.per_image() >= 48 ? f4 : f2;
    const int64_t points = tl.points(), nb = images_per_gemm(tl);
    const int64_t ld = nb * tl.per_image(), part = points * O * C;
    std::vector<float>& partials = buffer(3);
    grow(partials, chunks * part);
    const int64_t v_plane = plane_stride(C, ld), m_plane = plane_stride(O, ld);
    auto task = [&](int64_t chunk) {
        const int64_t first = B * chunk / chunks, last = B * (chunk + 1) / chunks;
        float* dU = partials.data() + chunk * part;
        std::vector<float>& V = buffer(0);
        std::vector<float>& Mg = buffer(1);
        grow(V, points * v_plane);
        grow(Mg, points * m_plane);
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            const int64_t n = std::min(nb, last - b0), N = n * tl.per_image();
            const float* xc = x.images(b0, n, C * H * W, buffer(5));
            if (tl.m == 4) {
                transform_input(xc, n, C, tl, V.data(), ld, v_plane);
                transform_output_grad(dy + b0 * O * H * W, n, O, tl, Mg.data(), ld, m_plane);
            } else {
                transform_input_2x2(xc, n, C, tl, V.data(), ld, v_plane);
                transform_output_grad_2x2(dy + b0 * O * H * W, n, O, tl, Mg.data(), ld, m_plane);
            }
            for (int64_t xi = 0; xi < points; ++xi)  // dU[xi] (+)= Mg[xi] [O, N] V[xi]^T [N, C]
                Engine::run(O, C, N, 1.0f, View{Mg.data() + xi * m_plane, ld}, View{V.data() + xi * v_plane, ld, true},
                            b0 == first ? 0.0f : 1.0f, OutView{dU + xi * O * C, C});
        }
    };
    for_each_chunk(chunks, task);
    parallel_for(0, part, kElementwiseGrain, [&](int64_t i0, int64_t i1) {  // the partials, in chunk order
        for (int64_t c = 1; c < chunks; ++c) axpy(i1 - i0, 1.0f, partials.data() + c * part + i0, partials.data() + i0);
    });
    if (tl.m == 4)
        accumulate_weight_grad(partials.data(), O, C, dw);
    else
        accumulate_weight_grad_2x2(partials.data(), O, C, dw);
}

}  // namespace winograd
}  // namespace kernels
DDPMKIT_END_NAMESPACE

#undef DDPMKIT_NO_ALIAS

